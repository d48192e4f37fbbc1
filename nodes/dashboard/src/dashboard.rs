//! The running dashboard: its lock, its copy of the model, its proxies, and the background work
//! (keeping proxies in step, driving slot actions).
//!
//! Every change follows one order: store the new record (through the lock-fenced handle), then
//! update the copy in memory, then push to proxies. One change runs at a time (`changes`, as
//! Codis' global mutex), so a proxy's table is always some prefix of the stored history; long
//! work (moving keys) runs outside it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use coordinator::{AnyCoordinator, Coordinator, Lease};
use model::SlotId;
use net::Env;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{DashboardConfig, Settings};
use crate::error::{DashboardError, Result};
use crate::model::Model;
use crate::proxies::{LeaseConfig, LinkState, ProxyClient, ProxyLink};
use crate::store::Store;

/// What the dashboard says about itself in its lock record (Codis' `models.Topom`), filled by
/// whoever starts it.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// The REST address others reach it at (proxies ask it for leases there).
    pub admin_addr: String,
    /// Its process id.
    pub pid: u32,
    /// Its working directory.
    pub pwd: String,
    /// `uname -a`.
    pub sys: String,
}

/// Why the dashboard did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Another dashboard holds the product.
    #[error(
        "product {product} is locked by another dashboard: {holder} (a dead dashboard's lock expires {ttl_secs} s after it stopped; `codis-admin --remove-lock` removes it at once)"
    )]
    Locked {
        /// The product.
        product: String,
        /// The holder's record.
        holder: String,
        /// The lock's lease.
        ttl_secs: u64,
    },
    /// The coordinator failed, or the stored model cannot be read.
    #[error("loading the product: {0}")]
    Load(#[from] DashboardError),
}

/// Slot actions' controls and what they report.
#[derive(Debug, Default)]
pub struct ActionControl {
    /// Pending actions are not started and running ones pause between steps.
    pub disabled: AtomicBool,
    /// Pause between executor steps, in microseconds.
    pub interval_us: AtomicU64,
    /// The last word on each slot's action (progress, or why it waits), with the index of the
    /// action it was said of: a line outlives neither its action nor a later one's start.
    pub status: Mutex<BTreeMap<u32, (u64, String)>>,
    /// Wakes the action loop (a new action, a control changed).
    pub wake: Notify,
}

pub(crate) struct Inner<E: Env> {
    pub(crate) env: E,
    pub(crate) settings: Settings,
    pub(crate) launch: Launch,
    pub(crate) xauth: String,
    pub(crate) store: Store<E>,
    pub(crate) lock: Lease,
    pub(crate) model: Mutex<Model>,
    /// One change (store + push) at a time.
    pub(crate) changes: tokio::sync::Mutex<()>,
    pub(crate) links: Mutex<BTreeMap<String, ProxyLink<E>>>,
    pub(crate) actions: ActionControl,
    pub(crate) failover: crate::failover::FailoverControl,
    pub(crate) observations: crate::observe::Observations,
    pub(crate) closing: watch::Sender<bool>,
    pub(crate) topom: model::Topom,
}

/// A running dashboard. Cheap to clone.
pub struct Dashboard<E: Env> {
    pub(crate) inner: Arc<Inner<E>>,
}

impl<E: Env> Clone for Dashboard<E> {
    fn clone(&self) -> Self {
        Dashboard { inner: self.inner.clone() }
    }
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a starting dashboard waits for a predecessor's lock to expire.
fn lock_patience(ttl: Duration) -> Duration {
    ttl * 2 + Duration::from_secs(1)
}

impl<E: Env> Dashboard<E> {
    /// Takes the product's lock (waiting for a dead predecessor's to expire), loads the model,
    /// and starts the background work. Serve the REST API with [`Dashboard::serve`].
    pub async fn start(env: E, config: &DashboardConfig, launch: Launch) -> std::result::Result<Self, StartError> {
        let settings = config.settings()?;
        let coordinator = AnyCoordinator::connect(env.clone(), &settings.coordinator, Duration::from_secs(5));
        Self::start_with(env, settings, coordinator, launch).await
    }

    /// [`Dashboard::start`] with a coordinator already built (tests, the simulator).
    pub async fn start_with(
        env: E,
        settings: Settings,
        coordinator: AnyCoordinator<E>,
        launch: Launch,
    ) -> std::result::Result<Self, StartError> {
        let product = settings.product.clone();
        let ttl = settings.config.dashboard_lock_ttl;
        let token = model::auth::sha256_hex32(&format!(
            "Codis-Dashboard@{}-{}-{}",
            product,
            launch.admin_addr,
            net::rand::Rng::random::<u64>(&mut env.rng("dashboard-token"))
        ));
        let topom = model::Topom {
            token,
            start_time: env.unix_millis().to_string(),
            admin_addr: launch.admin_addr.clone(),
            product_name: product.to_string(),
            pid: launch.pid,
            pwd: launch.pwd.clone(),
            sys: launch.sys.clone(),
        };
        let record = model::json::encode(&topom).map_err(|error| DashboardError::Invalid(error.to_string()))?;
        let lock = take_lock(&coordinator, &product, &record, ttl).await?;
        let store = Store::new(coordinator.fenced(&lock), product.clone());
        let model = store.load().await?;
        info!(%product, groups = model.groups.len(), proxies = model.proxies.len(), "dashboard holds the product");
        let xauth = model::auth::dashboard_xauth(product.as_str(), &settings.product_auth);
        let inner = Arc::new(Inner {
            env: env.clone(),
            settings,
            launch,
            xauth,
            store,
            lock,
            model: Mutex::new(model),
            changes: tokio::sync::Mutex::new(()),
            links: Mutex::new(BTreeMap::new()),
            actions: ActionControl::default(),
            failover: crate::failover::FailoverControl::default(),
            observations: crate::observe::Observations::default(),
            closing: watch::Sender::new(false),
            topom,
        });
        let dashboard = Dashboard { inner };
        dashboard.relink("the dashboard started");
        env.spawn(dashboard.clone().watch_lock());
        env.spawn(dashboard.clone().keep_proxies());
        env.spawn(crate::migration::actions::run(dashboard.clone()));
        env.spawn(crate::failover::run(dashboard.clone()));
        env.spawn(crate::observe::run(dashboard.clone()));
        Ok(dashboard)
    }

    /// The product's model as the dashboard holds it.
    pub fn model(&self) -> Model {
        guard(&self.inner.model).clone()
    }

    /// The secret its REST API's `/api/topom/…` paths take.
    pub fn xauth(&self) -> &str {
        &self.inner.xauth
    }

    /// Its lock record.
    pub fn topom(&self) -> &model::Topom {
        &self.inner.topom
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Slot actions' controls.
    pub fn actions(&self) -> &ActionControl {
        &self.inner.actions
    }

    /// What the web console shows of servers and proxies ([`crate::observe`]).
    pub fn observations(&self) -> &crate::observe::Observations {
        &self.inner.observations
    }

    /// Completes when the dashboard stops (shut down, or its lock lost).
    pub async fn closed(&self) {
        let mut closing = self.inner.closing.subscribe();
        let _ = closing.wait_for(|closing| *closing).await;
    }

    /// Whether it is stopping.
    pub fn is_closing(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// Stops the background work and releases the lock, so a successor can start at once.
    pub async fn shutdown(&self) {
        self.inner.closing.send_replace(true);
        let _changes = self.inner.changes.lock().await;
        if let Err(error) = self.inner.lock.release().await {
            warn!(%error, "releasing the dashboard lock");
        }
    }

    async fn watch_lock(self) {
        tokio::select! {
            () = self.inner.lock.lost() => {
                warn!("the dashboard lock was lost (its lease expired): stopping, a successor may take over");
                self.inner.closing.send_replace(true);
            }
            () = self.closed() => {}
        }
    }

    /// Keeps proxies in step: re-initialises stale ones, and re-onlines a proxy that restarted
    /// (it reports itself offline), every second.
    async fn keep_proxies(self) {
        loop {
            tokio::select! {
                () = self.closed() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let (stale, in_sync): (Vec<_>, Vec<_>) = {
                let links = guard(&self.inner.links);
                links
                    .iter()
                    .map(|(token, link)| (token.clone(), link.state == LinkState::InSync, link.client.clone()))
                    .partition(|(_, in_sync, _)| !in_sync)
            };
            self.forget_departed();
            for (token, _, _) in stale {
                if !self.model_guard().proxies.contains_key(&token) {
                    continue;
                }
                if let Err(error) = self.reinit(&token).await {
                    tracing::debug!(%token, %error, "stale proxy still unreachable");
                }
            }
            for (token, _, client) in in_sync {
                if let Ok(stats) = client.stats().await
                    && stats.get("online") == Some(&serde_json::Value::Bool(false))
                    && stats.get("closed") != Some(&serde_json::Value::Bool(true))
                {
                    info!(%token, "proxy reports itself offline (restarted?): re-initialising");
                    self.mark_stale(&token, "restarted");
                    let _ = self.reinit(&token).await;
                }
            }
        }
    }

    /// Forgets links of proxies removed from the model once their last lease has run out.
    fn forget_departed(&self) {
        let lease = self.inner.settings.config.proxy_lease;
        let now = Instant::now();
        let model = guard(&self.inner.model);
        guard(&self.inner.links).retain(|token, link| model.proxies.contains_key(token) || !link.fenced(lease, now));
    }

    /// Links for every proxy of the model, all stale (at start, after a reload): none is
    /// trusted with a table this dashboard has not pushed to it.
    pub(crate) fn relink(&self, reason: &str) {
        let now = Instant::now();
        let model = guard(&self.inner.model);
        let mut links = guard(&self.inner.links);
        for (token, proxy) in &model.proxies {
            let keep_grant = links.get(token).map(|link| link.last_grant);
            let mut link = ProxyLink::stale(self.proxy_client(proxy), reason, now);
            link.last_grant = keep_grant.unwrap_or(now);
            links.insert(token.clone(), link);
        }
    }

    /// A client of `proxy`'s admin API with this product's secret.
    pub(crate) fn proxy_client(&self, proxy: &model::Proxy) -> ProxyClient<E> {
        let settings = &self.inner.settings;
        ProxyClient::new(self.inner.env.clone(), proxy, &settings.product_auth, settings.config.proxy_timeout)
    }

    /// Marks a proxy stale: no lease for it until a re-initialisation succeeds.
    pub(crate) fn mark_stale(&self, token: &str, reason: &str) {
        if let Some(link) = guard(&self.inner.links).get_mut(token)
            && link.state == LinkState::InSync
        {
            warn!(%token, addr = link.client.addr(), reason, "proxy is stale: no more leases until it is re-initialised");
            link.state = LinkState::Stale { reason: reason.to_string() };
        }
    }

    /// Sends a proxy the whole table, starts it and gives it this dashboard for its leases; it
    /// is then in step.
    pub async fn reinit(&self, token: &str) -> Result<()> {
        // A proxy that does not answer is found out before taking the change lock, which slot
        // actions need too: an unreachable proxy must not slow every migration down.
        let probe = guard(&self.inner.links).get(token).map(|link| link.client.clone());
        if let Some(client) = probe {
            client.xping().await?;
        }
        let _changes = self.inner.changes.lock().await;
        let (client, table) = {
            let model = guard(&self.inner.model);
            let proxy = model
                .proxies
                .get(token)
                .ok_or_else(|| DashboardError::NotFound(format!("no proxy with token {token}")))?;
            let client = guard(&self.inner.links)
                .get(token)
                .map(|link| link.client.clone())
                .ok_or_else(|| DashboardError::NotFound(format!("no link to proxy {token}")))?;
            (client, model.table(self.inner.settings.routing(), Some(proxy)))
        };
        // The table, then the lease (which the proxy counts as a first grant), and only then
        // clients: a proxy that cannot take a lease is not started.
        client.fill(&table).await?;
        let lease = LeaseConfig {
            dashboard: self.inner.launch.admin_addr.clone(),
            lease_ms: u64::try_from(self.inner.settings.config.proxy_lease.as_millis()).unwrap_or(u64::MAX),
        };
        client.configure_lease(&lease).await?;
        let configured = Instant::now();
        client.start().await?;
        if let Some(link) = guard(&self.inner.links).get_mut(token) {
            if link.state != LinkState::InSync {
                info!(%token, addr = client.addr(), "proxy re-initialised: in step");
            }
            link.state = LinkState::InSync;
            link.last_grant = link.last_grant.max(configured);
        }
        Ok(())
    }

    /// Grants the proxy `token` a lease if it is in step (`None` otherwise).
    pub fn grant_lease(&self, token: &str) -> Option<Duration> {
        // A dashboard that lost its lock (or is stopping) must not keep proxies serving: its
        // successor counts on leases from it running out.
        if !self.inner.lock.is_held() || self.is_closing() {
            return None;
        }
        let mut links = guard(&self.inner.links);
        let link = links.get_mut(token)?;
        if link.state != LinkState::InSync {
            return None;
        }
        link.last_grant = Instant::now();
        Some(self.inner.settings.config.proxy_lease)
    }

    /// Pushes `slots` as the model has them now to every proxy in step (call with `changes`
    /// held). Proxies that fail turn stale.
    pub(crate) async fn push(&self, slots: &[SlotId]) {
        let pushes: Vec<_> = {
            let model = guard(&self.inner.model);
            let links = guard(&self.inner.links);
            links
                .iter()
                .filter(|(_, link)| link.state == LinkState::InSync)
                .filter_map(|(token, link)| {
                    let proxy = model.proxies.get(token)?;
                    let table: Vec<_> = slots
                        .iter()
                        .map(|slot| model.to_slot(*slot, self.inner.settings.routing(), Some(proxy)))
                        .collect();
                    Some((token.clone(), link.client.clone(), table))
                })
                .collect()
        };
        let results = futures_util::future::join_all(pushes.into_iter().map(|(token, client, table)| async move {
            let result = client.fill(&table).await;
            (token, result)
        }))
        .await;
        for (token, result) in results {
            if let Err(error) = result {
                self.mark_stale(&token, &error.to_string());
            }
        }
    }

    /// The first proxy that keeps a change from going ahead: stale (it may not have the
    /// change) and maybe still serving (its lease has not run out). `None`: every proxy has
    /// the change or has stopped serving.
    pub(crate) fn held_back_by(&self) -> Option<String> {
        let now = Instant::now();
        let lease = self.inner.settings.config.proxy_lease;
        let links = guard(&self.inner.links);
        links.iter().find(|(_, link)| matches!(link.state, LinkState::Stale { .. }) && !link.fenced(lease, now)).map(
            |(token, link)| {
                let reason = match &link.state {
                    LinkState::Stale { reason } => reason.as_str(),
                    LinkState::InSync => "",
                };
                let left = link.fenced_at(lease).saturating_duration_since(now);
                format!(
                    "proxy {} (token {token}) has not taken the change ({reason}); it stops serving in {} ms, then the change goes ahead without it",
                    link.client.addr(),
                    left.as_millis()
                )
            },
        )
    }

    /// Makes `model` the dashboard's copy (call with `changes` held, once it is stored).
    pub(crate) fn replace_model(&self, model: Model) {
        *guard(&self.inner.model) = model;
    }

    pub(crate) fn links(&self) -> MutexGuard<'_, BTreeMap<String, ProxyLink<E>>> {
        guard(&self.inner.links)
    }

    pub(crate) fn model_guard(&self) -> MutexGuard<'_, Model> {
        guard(&self.inner.model)
    }
}

/// Takes the lock, waiting for a dead holder's lease to run out.
async fn take_lock<E: Env>(
    coordinator: &AnyCoordinator<E>,
    product: &model::ProductName,
    record: &[u8],
    ttl: Duration,
) -> std::result::Result<Lease, StartError> {
    let deadline = Instant::now() + lock_patience(ttl);
    let mut announced = false;
    loop {
        match coordinator.lock(&product.topom_path(), record, ttl).await {
            Ok(lease) => return Ok(lease),
            Err(coordinator::Error::Locked { holder, .. }) if Instant::now() < deadline => {
                if !announced {
                    info!(%product, %holder, "waiting for the lock held by another dashboard (it expires if that one is dead)");
                    announced = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(coordinator::Error::Locked { holder, .. }) => {
                return Err(StartError::Locked { product: product.to_string(), holder, ttl_secs: ttl.as_secs() });
            }
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                warn!(%error, "coordinator unreachable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(StartError::Load(error.into())),
        }
    }
}
