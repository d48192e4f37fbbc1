//! The proxy's lease from its dashboard (beyond Codis): once a dashboard configured it, the
//! proxy serves clients only while it holds a lease, asked for every fifth of its length. The
//! lease runs from when the proxy *asked*, so however late the answer comes the proxy stops no
//! later than the dashboard counts on; the dashboard, which grants only to proxies that have
//! every slot change, can then go on without a proxy it cannot reach (see the dashboard's
//! `proxies` module). A proxy never configured (started with `--fillslots`, or by a dashboard
//! that predates leases) serves without one, as in Codis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The proxy's standing with its dashboard.
#[derive(Debug)]
pub struct LeaseState {
    /// Set when the lease ran out: every request is refused until a new one is granted.
    fenced: AtomicBool,
    /// Where to ask, and for how long (`None`: no lease needed).
    config: watch::Sender<Option<LeaseConfig>>,
}

impl Default for LeaseState {
    fn default() -> Self {
        LeaseState { fenced: AtomicBool::new(false), config: watch::Sender::new(None) }
    }
}

impl LeaseState {
    /// Whether the proxy refuses clients for want of a lease.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Starts (or moves) asking `config.dashboard` for leases.
    pub fn configure(&self, config: LeaseConfig) {
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

/// Asks for leases while the proxy runs; fences it when one runs out.
pub(crate) async fn keep<E: Env>(env: E, shared: Arc<Shared<E>>, token: String) {
    let mut configs = shared.lease.config.subscribe();
    let mut closing = shared.closing.subscribe();
    let product = shared.config.product_name.clone();
    let xauth = model::auth::dashboard_xauth(&product, &shared.config.product_auth);
    // Until a first grant, a freshly configured proxy keeps serving (it was just given the
    // whole table): `until` starts at "now plus one lease" only once something was granted.
    let mut until: Option<Instant> = None;
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
        loop {
            let asked = Instant::now();
            match client.request(Method::PUT, &path, None).await {
                Ok(response) if response.is_success() => {
                    until = Some(asked + lease);
                    if shared.lease.fenced.swap(false, Ordering::AcqRel) {
                        info!(dashboard = %config.dashboard, "lease granted again: serving");
                    }
                }
                Ok(response) => {
                    warn!(dashboard = %config.dashboard, status = response.status, body = %response.text(), "lease refused")
                }
                Err(error) => warn!(dashboard = %config.dashboard, %error, "lease not renewed"),
            }
            // Wake for the next renewal, or earlier to fence the proxy when the lease runs out
            // first (an expiry already past must not turn this into a busy loop).
            let now = Instant::now();
            let next = now + period;
            let wake = match until {
                Some(until) if until > now => until.min(next),
                _ => next,
            };
            tokio::select! {
                () = crate::proxy::closed(&mut closing) => return,
                changed = configs.changed() => if changed.is_err() { return } else { break },
                () = tokio::time::sleep_until(wake) => {}
            }
            if until.is_some_and(|until| Instant::now() >= until) && !shared.lease.fenced.swap(true, Ordering::AcqRel) {
                warn!(dashboard = %config.dashboard, "lease ran out: refusing clients until the dashboard grants a new one");
            }
        }
    }
}
