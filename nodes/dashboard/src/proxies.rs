//! The dashboard's side of its proxies: calls to their admin API, and what it knows of each
//! (in step with the model, or stale and waiting for its lease to run out).
//!
//! Leases (beyond Codis): a proxy the dashboard configured asks the dashboard for a lease every
//! few seconds and stops serving when it holds none; the lease runs from the moment the *proxy*
//! asked, so however late an answer arrives, the proxy's lease ends no later than the grant's
//! time plus its length. The dashboard grants only to proxies that have every change it pushed.
//! So when a proxy cannot be told about a change, the dashboard stops granting it, waits out
//! the last grant (plus a margin for clock rates), and goes on without it: by then the proxy
//! refuses clients. It comes back through a full re-initialisation.

use std::time::Duration;

use model::{Proxy, Slot};
use net::Env;
use net::http::{HttpClient, Method};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{DashboardError, Result};

/// Calls to one proxy's admin API.
#[derive(Clone, Debug)]
pub struct ProxyClient<E> {
    http: HttpClient<E>,
    xauth: String,
}

/// What `PUT /api/proxy/lease/<xauth>` carries: where to ask for leases, and their length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseConfig {
    /// The dashboard's REST address.
    pub dashboard: String,
    /// The lease's length.
    pub lease_ms: u64,
}

fn unreachable(addr: &str, what: &str, reason: impl std::fmt::Display) -> DashboardError {
    DashboardError::Unreachable(format!("proxy {addr}: {what}: {reason}"))
}

/// Reads the model of the proxy whose admin API is at `addr` (open, no secret needed).
pub async fn fetch_model<E: Env>(env: &E, addr: &str, timeout: Duration) -> Result<Proxy> {
    let http = HttpClient::new(env.clone(), addr, timeout);
    let response =
        http.request(Method::GET, "/api/proxy/model", None).await.map_err(|error| unreachable(addr, "model", error))?;
    if !response.is_success() {
        return Err(unreachable(addr, "model", format!("HTTP {}: {}", response.status, response.text())));
    }
    serde_json::from_slice(&response.body)
        .map_err(|error| unreachable(addr, "model", format!("not a proxy model: {error}")))
}

impl<E: Env> ProxyClient<E> {
    /// A client of `proxy` for a dashboard of `product` with password `product_auth`.
    pub fn new(env: E, proxy: &Proxy, product_auth: &str, timeout: Duration) -> ProxyClient<E> {
        let xauth = model::auth::proxy_xauth(&proxy.product_name, product_auth, &proxy.token);
        ProxyClient { http: HttpClient::new(env, proxy.admin_addr.clone(), timeout), xauth }
    }

    /// The proxy's admin address.
    pub fn addr(&self) -> &str {
        self.http.addr()
    }

    async fn call(&self, method: Method, what: &str, body: Option<Vec<u8>>) -> Result<bytes::Bytes> {
        let path = format!("/api/proxy/{what}/{}", self.xauth);
        let response =
            self.http.request(method, &path, body).await.map_err(|error| unreachable(self.addr(), what, error))?;
        if !response.is_success() {
            return Err(unreachable(self.addr(), what, format!("HTTP {}: {}", response.status, response.text())));
        }
        Ok(response.body)
    }

    /// Checks the secret.
    pub async fn xping(&self) -> Result<()> {
        self.call(Method::GET, "xping", None).await.map(drop)
    }

    /// Replaces the given slots of the proxy's table.
    pub async fn fill(&self, slots: &[Slot]) -> Result<()> {
        let body = serde_json::to_vec(slots).map_err(|error| DashboardError::Invalid(error.to_string()))?;
        self.call(Method::PUT, "fillslots", Some(body)).await.map(drop)
    }

    /// Starts serving clients.
    pub async fn start(&self) -> Result<()> {
        self.call(Method::PUT, "start", None).await.map(drop)
    }

    /// Tells the proxy to hold leases from this dashboard.
    pub async fn configure_lease(&self, config: &LeaseConfig) -> Result<()> {
        let body = serde_json::to_vec(config).map_err(|error| DashboardError::Invalid(error.to_string()))?;
        self.call(Method::PUT, "lease", Some(body)).await.map(drop)
    }

    /// Stops the proxy.
    pub async fn shutdown(&self) -> Result<()> {
        self.call(Method::PUT, "shutdown", None).await.map(drop)
    }

    /// Its counters (Codis' stats JSON).
    pub async fn stats(&self) -> Result<serde_json::Value> {
        let body = self.call(Method::GET, "stats", None).await?;
        serde_json::from_slice(&body).map_err(|error| unreachable(self.addr(), "stats", error))
    }
}

/// Whether a proxy has every change the dashboard pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// It has: it may be granted leases.
    InSync,
    /// A push failed (or the dashboard just started): no more leases until a full
    /// re-initialisation succeeds.
    Stale {
        /// What went wrong.
        reason: String,
    },
}

/// What the dashboard knows of one proxy.
#[derive(Clone, Debug)]
pub struct ProxyLink<E> {
    /// Its admin API.
    pub client: ProxyClient<E>,
    /// In step or not.
    pub state: LinkState,
    /// When it was last granted a lease (the dashboard's start for proxies not granted since:
    /// a predecessor may have granted one just before it died).
    pub last_grant: Instant,
}

impl<E: Env> ProxyLink<E> {
    /// A link that needs a re-initialisation before any lease.
    pub fn stale(client: ProxyClient<E>, reason: &str, since: Instant) -> ProxyLink<E> {
        ProxyLink { client, state: LinkState::Stale { reason: reason.to_string() }, last_grant: since }
    }

    /// When a stale proxy has certainly stopped serving: its last lease plus a margin for
    /// clocks running at slightly different rates.
    pub fn fenced_at(&self, lease: Duration) -> Instant {
        self.last_grant + lease + lease / 10 + Duration::from_millis(500)
    }

    /// Whether the dashboard may go on without this proxy: it is stale and its lease has run
    /// out.
    pub fn fenced(&self, lease: Duration, now: Instant) -> bool {
        matches!(self.state, LinkState::Stale { .. }) && now >= self.fenced_at(lease)
    }
}
