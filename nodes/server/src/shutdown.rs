//! Stopping the server as Redis' `prepareForShutdown` does, whether a signal (SIGTERM, Ctrl-C)
//! or `SHUTDOWN` asked: clients' commands stop, replicas are given the last writes (waiting up
//! to `shutdown-timeout` for them to acknowledge), a snapshot is saved when save rules exist
//! (or `SAVE` asks), and the append-only log is written and synced by its writer as the server
//! stops. A snapshot that cannot be written keeps the server running, unless `FORCE`: exiting
//! would lose every write since the last one, so Redis refuses to exit too ("Error trying to
//! save the DB, can't exit").
//!
//! The preparation runs in the accept loop's task (see [`crate::server::run`]), not under the
//! state's lock, because it waits for replicas and the disk; commands are held meanwhile by
//! pausing every client, as `CLIENT PAUSE` does.

use std::time::Duration;

use net::Env;
use tracing::{info, warn};

use crate::persist::{self, Caller};
use crate::state::Shared;

/// Whether to save a snapshot on the way out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Save {
    /// When save rules exist (a signal, or `SHUTDOWN` without `SAVE`/`NOSAVE`).
    #[default]
    IfRules,
    /// Always (`SHUTDOWN SAVE`).
    Yes,
    /// Never (`SHUTDOWN NOSAVE`).
    No,
}

/// A request to stop.
#[derive(Debug, Default)]
pub struct Request {
    /// Whether to save a snapshot.
    pub save: Save,
    /// Stop without waiting for replicas (`NOW`).
    pub now: bool,
    /// Stop even if the snapshot fails (`FORCE`).
    pub force: bool,
    /// The `SHUTDOWN` client, told when the shutdown fails (on success its connection closes).
    pub caller: Option<Caller>,
}

/// Prepares to stop as `request` says; returns whether the server may stop now. On `false`
/// clients run again (the caller, if any, has been told why).
pub(crate) async fn prepare<E: Env>(env: &E, shared: &Shared, request: Request) -> bool {
    let (paused_before, wait_for_replicas, timeout) = {
        let mut state = shared.lock();
        let paused_before = std::mem::replace(&mut state.paused_until_ms, u64::MAX);
        crate::propagate::distribute(&mut state);
        let wait = !request.now && !state.replication.replicas().is_empty() && state.config.shutdown_timeout > 0;
        if wait {
            state.replication.request_acks();
        }
        (paused_before, wait, Duration::from_secs(state.config.shutdown_timeout))
    };
    if wait_for_replicas {
        wait_for_replicas_to_catch_up(shared, timeout).await;
    }
    let save = match request.save {
        Save::Yes => true,
        Save::No => false,
        Save::IfRules => !shared.lock().config.save.0.is_empty(),
    };
    if save && let Err(error) = save_snapshot(env, shared).await {
        if request.force {
            warn!(%error, "error trying to save the DB; exiting anyway (FORCE)");
            return true;
        }
        warn!(%error, "error trying to save the DB, can't exit; SHUTDOWN NOSAVE (or FORCE) stops the server without it");
        let mut state = shared.lock();
        state.paused_until_ms = paused_before;
        if let Some(caller) = &request.caller {
            persist::post(caller, |reply| reply.error("ERR Errors trying to SHUTDOWN. Check logs."));
        }
        return false;
    }
    true
}

/// Waits until every replica acknowledged the whole stream, or `timeout`.
async fn wait_for_replicas_to_catch_up(shared: &Shared, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let lagging: Vec<(String, u64, u64)> = {
            let state = shared.lock();
            let offset = state.replication.offset();
            state
                .replication
                .replicas()
                .values()
                .filter(|link| link.ack_offset < offset)
                .map(|link| (link.addr.clone(), link.ack_offset, offset))
                .collect()
        };
        if lagging.is_empty() {
            info!("every replica has the last writes");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            for (addr, acked, offset) in lagging {
                warn!(replica = %addr, acked, offset, "a replica is still behind at shutdown-timeout; stopping anyway");
            }
            return;
        }
        // Acknowledgements arrive on the replicas' own connections, which keep running.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Encodes the data and writes it as the snapshot file, once any snapshot being written in the
/// background is done (they share the temporary file).
async fn save_snapshot<E: Env>(env: &E, shared: &Shared) -> std::io::Result<()> {
    while shared.lock().persistence.in_progress() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (bytes, path) = {
        let state = shared.lock();
        (persist::encode_snapshot(&state, env.unix_millis()), state.config.snapshot_path())
    };
    persist::write_file(&env.disk(), &path, &bytes).await?;
    info!(%path, bytes = bytes.len(), "DB saved on disk before stopping");
    Ok(())
}

/// Completes once the server is shutting down.
pub(crate) async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held by the caller across an await. An
    // error means the state (and its sender) is gone: the server is shutting down as well.
    let _ = stopping.wait_for(|stop| *stop).await;
}
