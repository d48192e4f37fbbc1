//! The proxy: the accept loop, and what every session shares.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use net::{Env, Listener};
use resp::encode;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::backend::{BackendOptions, Pool};
use crate::router::Router;
use crate::session;

/// The proxy's settings, with Codis' names (`proxy.toml`).
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Password clients must `AUTH` with (empty: none).
    pub session_auth: String,
    /// Most requests read from one client before their replies are written.
    pub session_max_pipeline: usize,
    /// A client silent this long is disconnected.
    pub session_recv_timeout: Duration,
    /// Most clients at once.
    pub proxy_max_clients: usize,
    /// How backend connections are made.
    pub backend: BackendOptions,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            session_auth: String::new(),
            session_max_pipeline: 10_000,
            session_recv_timeout: Duration::from_secs(30 * 60),
            proxy_max_clients: 1000,
            backend: BackendOptions::default(),
        }
    }
}

/// What every session shares.
pub struct Shared<E> {
    /// The settings.
    pub config: ProxyConfig,
    /// The slot table and backends.
    pub router: Router<E>,
    sessions: AtomicUsize,
}

/// A running proxy's handle: the slot table, for whoever fills it (the admin API, tests).
pub struct Proxy<E> {
    shared: Arc<Shared<E>>,
}

impl<E: Env> Proxy<E> {
    /// A proxy with every slot offline.
    pub fn new(env: E, config: ProxyConfig) -> Proxy<E> {
        let router = Router::new(Pool::new(env, config.backend.clone()));
        Proxy { shared: Arc::new(Shared { config, router, sessions: AtomicUsize::new(0) }) }
    }

    /// The slot table.
    pub fn router(&self) -> &Router<E> {
        &self.shared.router
    }

    /// Serves clients on `listener` until `shutdown` completes.
    pub async fn run(&self, env: E, listener: E::Listener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let addr = listener.local_addr()?;
        info!(%addr, "proxy ready");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((mut stream, _peer)) => {
                        let shared = self.shared.clone();
                        if shared.sessions.fetch_add(1, Ordering::Relaxed) >= shared.config.proxy_max_clients {
                            shared.sessions.fetch_sub(1, Ordering::Relaxed);
                            env.spawn(async move {
                                let mut out = bytes::BytesMut::new();
                                encode::write_error(&mut out, b"ERR max number of clients reached");
                                let _ = stream.write_all(&out).await;
                            });
                            continue;
                        }
                        env.spawn(async move {
                            session::serve(shared.clone(), stream).await;
                            shared.sessions.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }
}
