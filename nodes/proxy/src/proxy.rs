//! The proxy: the accept loop, and what every session shares.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use net::{Env, Listener};
use resp::encode;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::backend::{BackendOptions, Pool};
use crate::router::Router;
use crate::session;
use crate::stats::Stats;

/// The proxy's settings, with Codis' names and defaults (`proxy.toml`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// The product (cluster) this proxy serves.
    pub product_name: String,
    /// Password for the backend servers (each connection `AUTH`s with it); empty for none.
    pub product_auth: String,
    /// Password clients must `AUTH` with; empty for none.
    pub session_auth: String,
    /// Where clients connect.
    pub proxy_addr: String,
    /// Where the admin HTTP API listens.
    pub admin_addr: String,
    /// Most clients at once; more get `-ERR max number of clients reached`.
    pub proxy_max_clients: usize,
    /// Connections per backend address and database.
    pub backend_primary_parallel: usize,
    /// Connections per replica address and database (reads from replicas).
    pub backend_replica_parallel: usize,
    /// Read from primaries only, even for slots whose group lists replicas for reads.
    pub backend_primary_only: bool,
    /// Databases a client may `SELECT`.
    pub backend_number_databases: usize,
    /// How long a backend connect may take.
    #[serde(with = "duration")]
    pub backend_connect_timeout: Duration,
    /// How long requests may wait with no reply from their backend before its connection is
    /// declared dead and reopened.
    #[serde(with = "duration")]
    pub backend_recv_timeout: Duration,
    /// How often an idle backend connection sends `PING`, which tells its health (`0s`: never).
    #[serde(with = "duration")]
    pub backend_ping_period: Duration,
    /// TCP keep-alive on backend connections (`0s`: off).
    #[serde(with = "duration")]
    pub backend_keepalive_period: Duration,
    /// In synchronous mode (the dashboard's `sync_replicas`), how long a write waits for its
    /// replicas before the client is told it may not be kept.
    #[serde(with = "duration")]
    pub backend_sync_timeout: Duration,
    /// Most requests read from one client before their replies are written.
    pub session_max_pipeline: usize,
    /// A client silent this long is disconnected.
    #[serde(with = "duration")]
    pub session_recv_timeout: Duration,
    /// TCP keep-alive on client connections (`0s`: off), so a vanished client's session ends.
    #[serde(with = "duration")]
    pub session_keepalive_period: Duration,
    /// The longest bulk string a client may send, in bytes (Redis' `proto-max-bulk-len`).
    pub session_max_bulk_len: usize,
    /// The most elements a client's request may have.
    pub session_max_array_len: usize,
    /// A subscriber the proxy holds this many bytes for (messages and replies not yet written
    /// to it) is disconnected at once: Redis' `client-output-buffer-limit pubsub` hard limit
    /// (0: none). The proxy reads its links to the servers as fast as they deliver, so this,
    /// not the servers' own limit on those links, is what bounds a slow subscriber's backlog.
    pub session_pubsub_hard_limit_bytes: usize,
    /// A subscriber held at or above this many bytes for longer than
    /// `session_pubsub_soft_limit_seconds` is disconnected: Redis' soft limit (0: none).
    pub session_pubsub_soft_limit_bytes: usize,
    /// How long a subscriber may stay over the soft limit, in whole seconds.
    pub session_pubsub_soft_limit_seconds: u64,
    /// Most bytes of messages a subscriber's session moves to its write buffer before it
    /// writes to the client and looks at its other inputs again: Redis' limit on what it writes
    /// to one client per turn of its event loop (`NET_MAX_WRITES_PER_EVENT`). Batching is what
    /// lets a subscriber that reads fast keep up with small messages; the bound keeps one
    /// session's flood from delaying its client's requests and its table changes.
    pub session_pubsub_batch_bytes: usize,
    /// How long a subscriber being closed (a link lost, a table change that may have hidden
    /// messages from it, `QUIT`) has to read what the proxy still holds for it, up to the hard
    /// limit, before its connection is dropped: long enough for a client that reads to take
    /// megabytes, short enough that one that never reads frees its memory soon.
    #[serde(with = "duration")]
    pub session_pubsub_close_timeout: Duration,
    /// How long a slot table change that brings in a server waits for every subscriber to
    /// listen there before it is acknowledged; one that does not by then is disconnected if it
    /// listens to a pattern or to a channel of that server's slots (once the dashboard unlocks
    /// them, it could miss what is published there). Subscribing is one round trip, so a second
    /// is plenty for a session that is not stuck, and the change (a step the dashboard waits
    /// on) is not held up longer.
    #[serde(with = "duration")]
    pub session_pubsub_follow_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            product_name: "codis-demo".into(),
            product_auth: String::new(),
            session_auth: String::new(),
            proxy_addr: "0.0.0.0:19000".into(),
            admin_addr: "0.0.0.0:11080".into(),
            proxy_max_clients: 1000,
            backend_primary_parallel: 1,
            backend_replica_parallel: 1,
            backend_primary_only: false,
            backend_number_databases: 16,
            backend_connect_timeout: Duration::from_secs(5),
            backend_recv_timeout: Duration::from_secs(30),
            backend_ping_period: Duration::from_secs(5),
            backend_keepalive_period: Duration::from_secs(75),
            backend_sync_timeout: Duration::from_secs(1),
            session_max_pipeline: 10_000,
            session_recv_timeout: Duration::from_secs(30 * 60),
            session_keepalive_period: Duration::from_secs(75),
            session_max_bulk_len: 512 * 1024 * 1024,
            session_max_array_len: 1024 * 1024,
            // Redis' defaults: `client-output-buffer-limit pubsub 32mb 8mb 60`.
            session_pubsub_hard_limit_bytes: 32 * 1024 * 1024,
            session_pubsub_soft_limit_bytes: 8 * 1024 * 1024,
            session_pubsub_soft_limit_seconds: 60,
            session_pubsub_batch_bytes: 64 * 1024,
            session_pubsub_close_timeout: Duration::from_secs(10),
            session_pubsub_follow_timeout: Duration::from_secs(1),
        }
    }
}

impl ProxyConfig {
    /// How backend connections are made.
    pub fn backend(&self) -> BackendOptions {
        BackendOptions {
            password: self.product_auth.clone(),
            connect_timeout: self.backend_connect_timeout,
            recv_timeout: self.backend_recv_timeout,
            parallel: self.backend_primary_parallel.max(1),
            databases: self.backend_number_databases.max(1),
            ping_period: self.backend_ping_period,
            keepalive: self.backend_keepalive_period,
        }
    }
}

/// Codis' durations (`"30s"`), shared with the dashboard's config.
pub use model::config::duration;

/// What every session shares.
pub struct Shared<E> {
    /// The settings.
    pub config: ProxyConfig,
    /// The slot table and backends.
    pub router: Router<E>,
    /// Serving clients (after `start`); before, every request gets "router is not online".
    pub online: AtomicBool,
    /// Set to stop the proxy (`shutdown` through the admin API).
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Counters for `/proxy/stats` and `/metrics`.
    pub stats: Stats,
    /// The lease from the dashboard.
    pub lease: crate::lease::LeaseState,
    sessions: AtomicUsize,
    next_session: std::sync::atomic::AtomicU64,
}

/// Completes once the proxy is closing (the guard `wait_for` returns is dropped here, so the
/// caller's future stays `Send`).
pub(crate) async fn closed(closing: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

impl<E> Shared<E> {
    /// Why clients are refused now, if they are: not started yet, or fenced for want of a
    /// lease from the dashboard.
    pub(crate) fn refusal(&self) -> Option<&'static str> {
        if !self.online.load(Ordering::Acquire) {
            Some("ERR router is not online")
        } else if self.lease.is_fenced() {
            Some("ERR proxy is fenced: it holds no lease from the dashboard (unreachable?); retry shortly")
        } else {
            None
        }
    }

    /// Sessions open now.
    pub fn sessions_alive(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }
}

/// A running proxy's handle: the slot table, for whoever fills it (the admin API, tests).
pub struct Proxy<E> {
    shared: Arc<Shared<E>>,
}

impl<E: Env> Proxy<E> {
    /// A proxy with every slot offline.
    pub fn new(env: E, config: ProxyConfig) -> Proxy<E> {
        let replicas = (!config.backend_primary_only).then(|| {
            let options = BackendOptions { parallel: config.backend_replica_parallel.max(1), ..config.backend() };
            Pool::new(env.clone(), options)
        });
        let router = Router::new(Pool::new(env, config.backend()), replicas, config.session_pubsub_follow_timeout);
        Proxy {
            shared: Arc::new(Shared {
                config,
                router,
                online: AtomicBool::new(false),
                closing: tokio::sync::watch::Sender::new(false),
                stats: Stats::default(),
                lease: crate::lease::LeaseState::default(),
                sessions: AtomicUsize::new(0),
                next_session: std::sync::atomic::AtomicU64::new(1),
            }),
        }
    }

    /// The slot table.
    pub fn router(&self) -> &Router<E> {
        &self.shared.router
    }

    /// Starts serving clients (Codis' `start`): until then every request is refused with
    /// "router is not online", so no client reaches a half-filled slot table.
    pub fn start(&self) {
        self.shared.online.store(true, Ordering::Release);
    }

    /// What the admin API and the sessions share.
    pub fn shared(&self) -> &Arc<Shared<E>> {
        &self.shared
    }

    /// Serves clients on `listener` until `shutdown` completes; `token` is the proxy's identity
    /// when it asks its dashboard for leases.
    pub async fn run(
        &self,
        env: E,
        listener: E::Listener,
        token: &str,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let addr = listener.local_addr()?;
        info!(%addr, "proxy ready");
        env.spawn(sample_qps(self.shared.clone()));
        env.spawn(crate::lease::keep(env.clone(), self.shared.clone(), token.to_string()));
        tokio::pin!(shutdown);
        let mut closing = self.shared.closing.subscribe();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    // The admin API and the samplers stop with the proxy.
                    self.shared.closing.send_replace(true);
                    return Ok(());
                }
                () = crate::proxy::closed(&mut closing) => {
                    info!("shut down through the admin API");
                    return Ok(());
                }
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
                        let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
                        shared.stats.sessions_total.fetch_add(1, Ordering::Relaxed);
                        env.spawn(async move {
                            session::serve(shared.clone(), stream, id).await;
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

/// Samples the requests answered each second into `Stats::qps`, until the proxy closes.
async fn sample_qps<E: Send + Sync + 'static>(shared: Arc<Shared<E>>) {
    let mut closing = shared.closing.subscribe();
    let mut last = shared.stats.ops_total.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            biased;
            () = closed(&mut closing) => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let total = shared.stats.ops_total.load(Ordering::Relaxed);
        // A reset between samples makes the total go down.
        shared.stats.qps.store(total.saturating_sub(last), Ordering::Relaxed);
        last = total;
    }
}
