//! The proxy's lease from its dashboard (beyond Codis): once a dashboard configured it, the
//! proxy serves clients only while it holds a lease, asked for every fifth of its length. The
//! lease runs from when the proxy *asked*, so however late the answer comes the proxy stops no
//! later than the dashboard counts on; the dashboard, which grants only to proxies that have
//! every slot change, can then go on without a proxy it cannot reach (see the dashboard's
//! `proxies` module). A proxy never configured (started with `--fillslots`, or by a dashboard
//! that predates leases) serves without one, as in Codis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use net::Env;
use net::http::{HttpClient, Method};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::proxy::Shared;

/// What the dashboard sends to `PUT /api/proxy/lease/<xauth>`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LeaseConfig {
    /// The dashboard's REST address, where leases are asked for.
    pub dashboard: String,
    /// The lease's length.
    pub lease_ms: u64,
}

/// No lease is needed (the proxy was never configured for one).
const UNLEASED: u64 = u64::MAX;

/// The proxy's standing with its dashboard.
///
/// The lease is a deadline every request checks against the clock, not a flag a task sets:
/// so the proxy stops serving at the very moment its lease runs out, even while a renewal is
/// on its way.
#[derive(Debug)]
pub struct LeaseState {
    /// The instant deadlines count from.
    base: Instant,
    /// Milliseconds after `base` when the lease runs out ([`UNLEASED`]: never).
    deadline_ms: AtomicU64,
    /// Where to ask, and for how long (`None`: no lease needed).
    config: watch::Sender<Option<LeaseConfig>>,
}

impl Default for LeaseState {
    fn default() -> Self {
        LeaseState { base: Instant::now(), deadline_ms: AtomicU64::new(UNLEASED), config: watch::Sender::new(None) }
    }
}

impl LeaseState {
    /// Whether the proxy refuses clients for want of a lease.
    pub fn is_fenced(&self) -> bool {
        let deadline = self.deadline_ms.load(Ordering::Acquire);
        deadline != UNLEASED && self.millis(Instant::now()) >= deadline
    }

    /// Completes once the proxy is fenced. A subscribed session waits on this beside its
    /// client: refusing new requests is not enough for a subscriber, which sends none. The
    /// dashboard goes on without a fenced proxy (servers join and slots unlock without this
    /// proxy's `fillslots`), so the table its subscribers follow no longer tells where publishes
    /// land, and they must be closed as the lease runs out.
    pub(crate) async fn fenced(&self) {
        // Subscribed before the deadline is read: a configuration that sets the first one
        // after that read wakes this.
        let mut configs = self.config.subscribe();
        loop {
            let deadline = self.deadline_ms.load(Ordering::Acquire);
            if deadline == UNLEASED {
                // No lease needed until the proxy is configured for one.
                if configs.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            if self.is_fenced() {
                return;
            }
            // A renewal meanwhile moves the deadline on: looked at again when this one passes.
            tokio::time::sleep_until(self.base + Duration::from_millis(deadline)).await;
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(UNLEASED - 1)
    }

    /// Holds a lease until `until`.
    fn hold_until(&self, until: Instant) {
        self.deadline_ms.store(self.millis(until).min(UNLEASED - 1), Ordering::Release);
    }

    /// Starts (or moves) asking `config.dashboard` for leases. A proxy that served without a
    /// lease gets one from now (the dashboard counts it from later, when it heard back): that
    /// only restricts it. A configuration never extends a lease, since one delayed in the
    /// network could otherwise revive a proxy the dashboard has given up on: only grants do.
    pub fn configure(&self, config: LeaseConfig) {
        let lease = Duration::from_millis(config.lease_ms.max(100));
        if self.deadline_ms.load(Ordering::Acquire) == UNLEASED {
            self.hold_until(Instant::now() + lease);
        }
        self.config.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&config);
            *current = Some(config);
            changed
        });
    }

    /// The configuration, if any.
    pub fn config(&self) -> Option<LeaseConfig> {
        self.config.borrow().clone()
    }
}

/// Asks for leases while the proxy runs (every fifth of the lease's length).
pub(crate) async fn keep<E: Env>(env: E, shared: Arc<Shared<E>>, token: String) {
    let mut configs = shared.lease.config.subscribe();
    let mut closing = shared.closing.subscribe();
    let product = shared.config.product_name.clone();
    let xauth = model::auth::dashboard_xauth(&product, &shared.config.product_auth);
    loop {
        let Some(config) = configs.borrow_and_update().clone() else {
            tokio::select! {
                () = crate::proxy::closed(&mut closing) => return,
                changed = configs.changed() => if changed.is_err() { return } else { continue },
            }
        };
        let lease = Duration::from_millis(config.lease_ms.max(100));
        let period = lease / 5;
        let client = HttpClient::new(env.clone(), config.dashboard.clone(), period);
        let path = format!("/api/topom/proxy/lease/{xauth}/{token}");
        let mut fenced_logged = false;
        loop {
            // The lease runs from when the proxy asked: however late the answer arrives, it
            // ends no later than the dashboard counts on.
            let asked = Instant::now();
            match client.request(Method::PUT, &path, None).await {
                Ok(response) if response.is_success() => {
                    let was_fenced = shared.lease.is_fenced();
                    shared.lease.hold_until(asked + lease);
                    if was_fenced {
                        info!(dashboard = %config.dashboard, "lease granted again: serving");
                    }
                    fenced_logged = false;
                }
                Ok(response) => {
                    warn!(dashboard = %config.dashboard, status = response.status, body = %response.text(), "lease refused")
                }
                Err(error) => warn!(dashboard = %config.dashboard, %error, "lease not renewed"),
            }
            if shared.lease.is_fenced() && !fenced_logged {
                warn!(dashboard = %config.dashboard, "lease ran out: refusing clients until the dashboard grants a new one");
                fenced_logged = true;
            }
            // A fenced proxy asks again soon: the dashboard grants as soon as it has brought the
            // proxy back in step.
            let pause = if shared.lease.is_fenced() { period.min(Duration::from_millis(250)) } else { period };
            tokio::select! {
                () = crate::proxy::closed(&mut closing) => return,
                changed = configs.changed() => if changed.is_err() { return } else { break },
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
