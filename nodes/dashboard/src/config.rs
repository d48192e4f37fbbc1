//! The dashboard's settings, with Codis' names and defaults (`dashboard.toml`), plus the leases
//! Codis lacks.

use std::time::Duration;

use coordinator::CoordinatorAddr;
use model::config::{bytesize, duration};
use model::{ForwardMethod, ProductName};
use serde::Deserialize;

/// `dashboard.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// `filesystem` (or `fs`) or `etcd`.
    pub coordinator_name: String,
    /// The directory, or etcd's endpoints (comma-separated).
    pub coordinator_addr: String,
    /// The product (cluster) this dashboard controls.
    pub product_name: String,
    /// The servers' password; also what the REST API's secret is derived from.
    pub product_auth: String,
    /// Where the REST API listens.
    pub admin_addr: String,
    /// `semi-async` (chunked, non-blocking) or `sync`.
    pub migration_method: String,
    /// Most slots migrating at once (at most one per group).
    pub migration_parallel_slots: usize,
    /// Most elements per message of an asynchronous migration.
    pub migration_async_maxbulks: u64,
    /// Most bytes in flight per asynchronous batch.
    #[serde(deserialize_with = "bytesize::deserialize")]
    pub migration_async_maxbytes: u64,
    /// Keys per asynchronous batch.
    pub migration_async_numkeys: u64,
    /// How long one migration step may take.
    #[serde(with = "duration")]
    pub migration_timeout: Duration,
    /// The dashboard lock's lease: a dashboard that dies loses the lock after this, and another
    /// may start (Codis' lock never expires).
    #[serde(with = "duration")]
    pub dashboard_lock_ttl: Duration,
    /// The lease proxies hold from the dashboard: a proxy that could not renew it for this long
    /// stops serving, so a slot change may go ahead without a proxy that cannot be reached.
    #[serde(with = "duration")]
    pub proxy_lease: Duration,
    /// How long a call to a proxy's admin API may take.
    #[serde(with = "duration")]
    pub proxy_timeout: Duration,
    /// Whether the dashboard fails over a dead master by itself (groups can opt out one by
    /// one). Codis leaves this to redis-sentinel.
    pub failover_auto: bool,
    /// How long a master must look dead, to the dashboard and to a majority of proxies, before
    /// a replica is promoted (redis-sentinel's `down-after-milliseconds`, 30 s by default).
    #[serde(with = "duration")]
    pub failover_down_after: Duration,
    /// How long a manual promotion waits for the chosen replica to catch up with a live master.
    #[serde(with = "duration")]
    pub failover_catch_up: Duration,
    /// Proxies answer a write only once this many replicas of its group have it (`WAIT`), so a
    /// failover loses no acknowledged write; 0 (the default) replicates asynchronously, as
    /// Redis and Codis do.
    pub sync_replicas: u32,
    /// Host names browsers may call the dashboard by (its web console and API), besides IP
    /// addresses, `localhost` and the name it announces; others are refused (DNS rebinding).
    pub console_allowed_hosts: Vec<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            coordinator_name: "filesystem".into(),
            coordinator_addr: "/tmp/codis".into(),
            product_name: "codis-demo".into(),
            product_auth: String::new(),
            admin_addr: "0.0.0.0:18080".into(),
            migration_method: "semi-async".into(),
            migration_parallel_slots: 100,
            migration_async_maxbulks: 200,
            migration_async_maxbytes: 32 << 20,
            migration_async_numkeys: 500,
            migration_timeout: Duration::from_secs(30),
            dashboard_lock_ttl: Duration::from_secs(10),
            proxy_lease: Duration::from_secs(30),
            proxy_timeout: Duration::from_secs(5),
            failover_auto: true,
            failover_down_after: Duration::from_secs(5),
            failover_catch_up: Duration::from_secs(10),
            sync_replicas: 0,
            console_allowed_hosts: Vec::new(),
        }
    }
}

/// A setting that makes no sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid dashboard setting {key}: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

/// The settings, checked and parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The product.
    pub product: ProductName,
    /// Its password.
    pub product_auth: String,
    /// The coordinator.
    pub coordinator: CoordinatorAddr,
    /// How proxies serve migrating slots, and how the executor moves them.
    pub method: ForwardMethod,
    /// Everything else as configured.
    pub config: DashboardConfig,
}

impl Settings {
    /// What proxies are told about serving slots, beyond the model.
    pub fn routing(&self) -> crate::model::Routing {
        crate::model::Routing { method: self.method, sync_replicas: self.config.sync_replicas }
    }
}

impl DashboardConfig {
    /// Checks the settings.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let product = ProductName::new(self.product_name.clone())
            .map_err(|error| ConfigError { key: "product_name", reason: error.to_string() })?;
        let coordinator = CoordinatorAddr::new(&self.coordinator_name, &self.coordinator_addr)
            .map_err(|error| ConfigError { key: "coordinator_name", reason: error.to_string() })?;
        let method = ForwardMethod::parse(&self.migration_method).ok_or_else(|| ConfigError {
            key: "migration_method",
            reason: format!("{:?}: use semi-async or sync", self.migration_method),
        })?;
        if self.proxy_lease < Duration::from_secs(1) {
            return Err(ConfigError { key: "proxy_lease", reason: "must be at least 1s".into() });
        }
        if self.failover_down_after < Duration::from_secs(1) {
            return Err(ConfigError { key: "failover_down_after", reason: "must be at least 1s".into() });
        }
        if self.dashboard_lock_ttl < Duration::from_secs(2) {
            return Err(ConfigError { key: "dashboard_lock_ttl", reason: "must be at least 2s".into() });
        }
        Ok(Settings { product, product_auth: self.product_auth.clone(), coordinator, method, config: self.clone() })
    }
}
