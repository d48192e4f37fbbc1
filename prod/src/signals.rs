//! Shutdown on the signals operators and service managers send.

use futures_util::{Stream, StreamExt};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Completes when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown() {
    let _ = std::pin::pin!(stops()).next().await;
}

/// Every SIGTERM or SIGINT the process receives from now on, one item each: a server may refuse
/// to stop (a snapshot that fails) and then, as Redis, tries again at the next signal.
pub fn stops() -> impl Stream<Item = ()> {
    let terminate = signal(SignalKind::terminate())
        .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop the process"))
        .ok();
    futures_util::stream::unfold(terminate, |mut terminate: Option<Signal>| async move {
        match terminate.as_mut() {
            Some(signal) => tokio::select! {
                biased;
                _ = signal.recv() => tracing::info!("received SIGTERM, shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT, shutting down"),
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("received SIGINT, shutting down");
            }
        }
        Some(((), terminate))
    })
}
