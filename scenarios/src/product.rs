//! The parts of a whole product in simulation that the `cluster-*` and `failover-*` scenarios
//! share: the coordinator host (the in-memory store behind the etcd gateway), the dashboard
//! under a supervisor's loop, proxies, clients writing and reading their own keys through a
//! proxy with every reply checked against the key's model, and the operator's REST calls.
//!
//! Clients account for lost writes: a read that shows an older value than the key's last
//! acknowledged (or already seen) write is a loss. A loss is allowed only inside a *loss
//! window* the scenario opens (from just before a master's failure to the fencing point of the
//! failover that replaced it: what asynchronous replication may drop); anywhere else it fails
//! the run, as does every loss when no window is open.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use coordinator::memory::MemoryStore;
use coordinator::{AnyCoordinator, etcd::EtcdClient, etcd::EtcdCoordinator};
use dashboard::{Dashboard, DashboardConfig, Launch};
use model::SlotMapping;
use net::Env;
use net::http::{HttpClient, Method};
use net::rand::Rng as _;
use proxy::{Proxy, ProxyConfig};
use resp::Frame;
use server::ServerConfig;
use server::config::FsyncPolicy;
use sim::{Harness, HostResult, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::info;

use crate::client::SimClient;
use crate::known::Known;
use crate::replay;
use crate::sequence::{Counters, Sequence, split_appended};

/// The product every simulated cluster runs.
pub const PRODUCT: &str = "sim";
/// The coordinator's host.
pub const COORDINATOR: &str = "coordinator";
/// The dashboard's host.
pub const DASHBOARD: &str = "dashboard";
/// The dashboard's REST address.
pub const DASHBOARD_ADDR: &str = "dashboard:18080";
/// The operator's host.
pub const OPERATOR: &str = "operator";
/// Keys per client.
pub const KEYS: usize = 48;
/// The dashboard's lock, short so faults play out quickly.
pub const LOCK_TTL: Duration = Duration::from_secs(3);
/// The proxies' leases, as short.
pub const PROXY_LEASE: Duration = Duration::from_secs(3);

/// What clients, the operator and the hosts share.
#[derive(Default)]
pub struct World {
    /// Set by the operator when the clients should stop.
    pub stop: bool,
    /// Faults injected so far, with their simulated time, for reports.
    pub schedule: Vec<String>,
    /// Each key's model and history (each key has one writer).
    pub keys: BTreeMap<String, KeyRecord>,
    /// Where losses are allowed: `[from, to]` in simulated ms.
    pub loss_windows: Vec<(u64, u64)>,
    /// Acknowledged (or seen) writes found lost, inside a window.
    pub lost: u64,
    /// Writes acknowledged.
    pub acknowledged: u64,
    /// Every write with its key, its invocation and whether (and when) it was acknowledged.
    pub writes: Vec<WriteRecord>,
    /// Lists and strings clients append unique elements to (`RPUSH`, `APPEND`), by key.
    pub sequences: BTreeMap<String, Sequence>,
    /// Counters clients increment.
    pub counters: Counters,
    /// Set by a scenario's operator when its targeted client should start (`failover-wrapper`'s
    /// writes to a migrating slot).
    pub hot: bool,
    /// Every server's log, for the replay check at the end.
    pub logs: Vec<replay::Logged>,
}

/// One client write, for outage measurements.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    /// Its key.
    pub key: String,
    /// When it was sent (simulated ms).
    pub invoked_ms: u64,
    /// When it was acknowledged, if it was.
    pub acked_ms: Option<u64>,
}

/// One key: its model, its writes in order, and everything that happened to it.
#[derive(Default)]
pub struct KeyRecord {
    /// What it may hold.
    pub known: Option<Known>,
    /// Every operation on it, for reports.
    pub history: Vec<String>,
    /// Values written, in order, each with when it became visible (acknowledged or read), if
    /// it did.
    pub written: Vec<(String, Option<u64>)>,
}

impl KeyRecord {
    fn visible(&mut self, value: &str, at_ms: u64) {
        if let Some((_, visible)) = self.written.iter_mut().find(|(written, _)| written == value) {
            visible.get_or_insert(at_ms);
        }
    }
}

/// The world, shared by the hosts of one run.
pub type Shared = Rc<RefCell<World>>;

/// A failure report: what went wrong, the seed, the faults and the key's history.
pub fn violation(world: &Shared, seed: u64, who: &str, key: Option<&str>, what: String) -> Box<dyn std::error::Error> {
    let world = world.borrow();
    let mut report = format!(
        "{who}: {what}\nseed {seed}; faults: {}",
        if world.schedule.is_empty() { "none".into() } else { world.schedule.join(", ") }
    );
    if let Some(record) = key.and_then(|key| world.keys.get(key)) {
        report.push_str(&format!("\nhistory of {}:\n  {}", key.unwrap_or_default(), record.history.join("\n  ")));
    }
    report.into()
}

/// Checks a read of `observed` at `now_ms` against the key's model: fine, a loss inside a
/// window (counted), or a violation (why).
fn check_read(world: &mut World, key: &str, observed: &Option<String>, now_ms: u64) -> Result<(), String> {
    let windows = world.loss_windows.clone();
    let record = world.keys.entry(key.to_string()).or_default();
    let known = record.known.get_or_insert_with(|| Known::value(None));
    if known.allows(observed) {
        known.saw(observed.clone());
        if let Some(value) = observed {
            record.visible(value, now_ms);
        }
        return Ok(());
    }
    // Older than what was acknowledged or seen: the writes after it that had become visible
    // are lost.
    let after = match observed {
        None => 0,
        Some(value) => match record.written.iter().position(|(written, _)| written == value) {
            Some(index) => index + 1,
            None => return Err(format!("read {observed:?}, which no write left")),
        },
    };
    let lost: Vec<(String, u64)> =
        record.written[after..].iter().filter_map(|(value, visible)| visible.map(|at| (value.clone(), at))).collect();
    if lost.is_empty() {
        return Err(format!("read {observed:?}, which no write left"));
    }
    if let Some((value, at)) = lost.iter().find(|(_, at)| !windows.iter().any(|(from, to)| from <= at && at <= to)) {
        return Err(format!(
            "read {observed:?}: the write of {value:?}, visible at {at} ms, was lost outside any failover's loss window {windows:?}"
        ));
    }
    record.history.push(format!("  (lost: {lost:?})"));
    for (_, visible) in &mut record.written[after..] {
        *visible = None;
    }
    world.lost += lost.len() as u64;
    let record = world.keys.entry(key.to_string()).or_default();
    record.known.get_or_insert_with(|| Known::value(None)).rewind(observed.clone());
    Ok(())
}

/// Adds the coordinator host: the gateway over `store` (kept outside the host, so it survives
/// everything the scenario does to hosts).
pub fn add_coordinator(harness: &mut Harness, store: &MemoryStore) {
    let store = store.clone();
    harness.host(COORDINATOR, move |env| {
        let store = store.clone();
        async move {
            let listener = env.bind("0.0.0.0:2379").await?;
            coordinator::gateway::serve(env, store, listener).await;
            Ok(())
        }
    });
}

/// A codis-server's settings in simulation: port 6379, an append-only log synced on every
/// write (a restarted server keeps everything it acknowledged).
pub fn server_config() -> ServerConfig {
    ServerConfig {
        bind: "0.0.0.0".into(),
        port: 6379,
        dir: "/data".into(),
        appendonly: true,
        appendfsync: FsyncPolicy::Always,
        ..ServerConfig::default()
    }
}

/// A codis-server host.
pub async fn run_server(env: SimEnv, config: ServerConfig) -> HostResult {
    let (bound, _) = tokio::sync::oneshot::channel();
    server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
    Ok(())
}

/// The dashboard's settings in simulation.
pub fn dashboard_config(method: &str) -> DashboardConfig {
    DashboardConfig {
        product_name: PRODUCT.into(),
        coordinator_name: "etcd".into(),
        coordinator_addr: format!("{COORDINATOR}:2379"),
        admin_addr: "0.0.0.0:18080".into(),
        dashboard_lock_ttl: LOCK_TTL,
        proxy_lease: PROXY_LEASE,
        proxy_timeout: Duration::from_millis(800),
        migration_timeout: Duration::from_secs(3),
        migration_method: method.into(),
        ..DashboardConfig::default()
    }
}

/// The dashboard under a supervisor's loop: one that lost its lock stops and is started again.
pub async fn run_dashboard(env: SimEnv, config: DashboardConfig) -> HostResult {
    let settings = config.settings()?;
    loop {
        let client = EtcdClient::new(env.clone(), &[format!("{COORDINATOR}:2379")], Duration::from_secs(1));
        let coordinator = AnyCoordinator::Etcd(EtcdCoordinator::new(client, env.clone()));
        let launch = Launch { admin_addr: DASHBOARD_ADDR.into(), ..Launch::default() };
        let dashboard = match Dashboard::start_with(env.clone(), settings.clone(), coordinator, launch).await {
            Ok(dashboard) => dashboard,
            Err(error) => {
                info!(%error, "dashboard did not start; retrying");
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let listener = env.bind("0.0.0.0:18080").await?;
        // Serves until the dashboard stops (its lock lost), then starts over.
        dashboard.serve(listener).await;
    }
}

/// A proxy's settings in simulation.
pub fn proxy_config() -> ProxyConfig {
    ProxyConfig {
        product_name: PRODUCT.into(),
        backend_connect_timeout: Duration::from_millis(300),
        backend_recv_timeout: Duration::from_secs(2),
        ..ProxyConfig::default()
    }
}

/// A proxy named `name`, serving clients on 19000 and its admin API on 11080.
pub async fn run_proxy(env: SimEnv, name: &'static str, config: ProxyConfig) -> HostResult {
    let listener = env.bind("0.0.0.0:19000").await?;
    let admin = env.bind("0.0.0.0:11080").await?;
    let identity = proxy::admin::Identity::new(PRODUCT, "", &format!("{name}:19000"), &format!("{name}:11080"), name);
    let token = identity.model.token.clone();
    let proxy = Proxy::new(env.clone(), config);
    env.spawn(proxy::admin::serve(env.clone(), proxy.shared().clone(), identity, None, admin));
    proxy.run(env, listener, &token, std::future::pending()).await?;
    Ok(())
}

/// Whether an error reply says the request was refused before any server applied it (so it
/// certainly did not happen).
fn refused(reply: &Frame) -> bool {
    let Frame::Error(text) = reply else { return false };
    let text = String::from_utf8_lossy(text);
    [
        "ERR router is not online",
        "ERR proxy is fenced",
        "ERR handle request, slot is not ready",
        "ERR handle request, slot is locked",
        "READONLY",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
}

/// A client: its own keys, unique values, through one proxy; every reply checked against the
/// key's model as it comes. Besides plain values it appends to lists and strings and increments
/// counters, whose replay elsewhere (a replica, a log) would show a write applied twice.
pub async fn run_client(env: SimEnv, seed: u64, world: Shared, name: &'static str, proxy: &'static str) -> HostResult {
    let mut worker = Worker::new(env, seed, world, name, proxy, "workload");
    while !worker.world.borrow().stop {
        let roll = worker.rng.random_range(0..100);
        if roll < 20 {
            let index = worker.rng.random_range(0..SEQUENCES);
            worker.append_or_read(&sequence_key(name, index)).await?;
        } else if roll < 30 {
            let key = format!("{name}:counter:{}", worker.rng.random_range(0..4));
            worker.increment_or_read(&key).await?;
        } else {
            worker.set_or_get().await?;
        }
        let pause = worker.rng.random_range(2..12);
        sleep(Duration::from_millis(pause)).await;
    }
    Ok(())
}

/// One client's means: where it runs, its random stream, its connection (to one proxy), the
/// world its operations are checked against, and its name (its keys and values carry it).
pub struct Worker {
    env: SimEnv,
    /// The client's random stream.
    pub rng: net::Rng,
    client: SimClient,
    seed: u64,
    /// The shared model.
    pub world: Shared,
    name: &'static str,
    /// Writes so far: values and elements are numbered by it, so each is unique.
    writes: u64,
}

impl Worker {
    /// Client `name` of `proxy`, drawing from the random stream `label`.
    pub fn new(env: SimEnv, seed: u64, world: Shared, name: &'static str, proxy: &str, label: &str) -> Worker {
        let rng = env.rng(label);
        let client = SimClient::new(env.clone(), &format!("{proxy}:19000"))
            .with_timeouts(Duration::from_millis(500), Duration::from_millis(1500));
        Worker { env, rng, client, seed, world, name, writes: 0 }
    }

    /// A plain write (a unique value) or read of one of the client's keys.
    async fn set_or_get(&mut self) -> HostResult {
        let (env, seed, world, name) = (&self.env, self.seed, &self.world, self.name);
        let (rng, client, writes) = (&mut self.rng, &mut self.client, &mut self.writes);
        let key = format!("{name}:{}", rng.random_range(0..KEYS));
        let write = rng.random_bool(0.6);
        let invoked_ms = sim_ms(env);
        if write {
            *writes += 1;
            let value = format!("{name}-{writes}");
            world.borrow_mut().keys.entry(key.clone()).or_default().written.push((value.clone(), None));
            let reply = client.call(&["SET", &key, &value]).await;
            let now = sim_ms(env);
            let mut state = world.borrow_mut();
            let acked = matches!(&reply, Ok(reply) if *reply == Frame::ok());
            state.writes.push(WriteRecord { key: key.clone(), invoked_ms, acked_ms: acked.then_some(now) });
            if acked {
                state.acknowledged += 1;
            }
            let record = state.keys.entry(key.clone()).or_default();
            record.history.push(format!("[{invoked_ms}..{now} ms] SET {value} -> {reply:?}"));
            let known = record.known.get_or_insert_with(|| Known::value(None));
            match reply {
                Ok(reply) if reply == Frame::ok() => {
                    known.saw(Some(value.clone()));
                    record.visible(&value, now);
                }
                Ok(reply) if refused(&reply) => {}
                // An error after the request may have reached a server, or no reply at all:
                // the write may have happened, or may still happen.
                _ => known.maybe_wrote(Some(value)),
            }
        } else {
            let reply = client.call(&["GET", &key]).await;
            let now = sim_ms(env);
            let observed = match &reply {
                Ok(Frame::Bulk(value)) => Some(Some(String::from_utf8_lossy(value).into_owned())),
                Ok(Frame::NullBulk | Frame::Null) => Some(None),
                _ => None,
            };
            let mut state = world.borrow_mut();
            let record = state.keys.entry(key.clone()).or_default();
            record.history.push(format!("[{invoked_ms}..{now} ms] GET -> {reply:?}"));
            if let Some(observed) = observed
                && let Err(why) = check_read(&mut state, &key, &observed, now)
            {
                drop(state);
                return Err(violation(world, seed, name, Some(&key), format!("GET {key}: {why}")));
            }
        }
        Ok(())
    }

    /// Appends a unique element to sequence `key` (a list if its name says `:list:`, else a
    /// string), or reads it.
    pub async fn append_or_read(&mut self, key: &str) -> HostResult {
        let (env, seed, world, name) = (&self.env, self.seed, &self.world, self.name);
        let (rng, client, writes) = (&mut self.rng, &mut self.client, &mut self.writes);
        let key = key.to_string();
        let list = is_list(&key);
        let invoked_ms = sim_ms(env);
        if rng.random_bool(0.6) {
            *writes += 1;
            let element = format!("{name}-{writes}");
            world.borrow_mut().sequences.entry(key.clone()).or_default().appending(&element);
            let reply = if list {
                client.call(&["RPUSH", &key, &element]).await
            } else {
                client.call(&["APPEND", &key, &format!("{element},")]).await
            };
            let now = sim_ms(env);
            let mut state = world.borrow_mut();
            let acked = matches!(&reply, Ok(Frame::Integer(_)));
            state.writes.push(WriteRecord { key: key.clone(), invoked_ms, acked_ms: acked.then_some(now) });
            if acked {
                state.acknowledged += 1;
            }
            state.keys.entry(key.clone()).or_default().history.push(format!(
                "[{invoked_ms}..{now} ms] {} {element} -> {reply:?}",
                if list { "RPUSH" } else { "APPEND" }
            ));
            let sequence = state.sequences.entry(key.clone()).or_default();
            match reply {
                Ok(Frame::Integer(_)) => sequence.acknowledged(&element, now),
                Ok(reply) if refused(&reply) => sequence.refused(&element),
                _ => {}
            }
            return Ok(());
        }
        let reply =
            if list { client.call(&["LRANGE", &key, "0", "-1"]).await } else { client.call(&["GET", &key]).await };
        let now = sim_ms(env);
        let observed = match &reply {
            Ok(Frame::Array(items)) => Some(texts(items)),
            Ok(Frame::Bulk(value)) => Some(split_appended(value)),
            Ok(Frame::NullBulk | Frame::Null) => Some(Vec::new()),
            _ => None,
        };
        world
            .borrow_mut()
            .keys
            .entry(key.clone())
            .or_default()
            .history
            .push(format!("[{invoked_ms}..{now} ms] read -> {reply:?}"));
        if let Some(observed) = observed {
            check_sequence(world, seed, name, &key, &observed, invoked_ms, now)?;
        }
        Ok(())
    }

    /// Increments counter `key`, or reads it.
    pub async fn increment_or_read(&mut self, key: &str) -> HostResult {
        let (env, seed, world, name) = (&self.env, self.seed, &self.world, self.name);
        let (rng, client) = (&mut self.rng, &mut self.client);
        let key = key.to_string();
        let invoked_ms = sim_ms(env);
        let increment = rng.random_bool(0.7);
        if increment {
            world.borrow_mut().counters.sending(&key);
        }
        let reply = if increment { client.call(&["INCR", &key]).await } else { client.call(&["GET", &key]).await };
        let now = sim_ms(env);
        let mut state = world.borrow_mut();
        state
            .keys
            .entry(key.clone())
            .or_default()
            .history
            .push(format!("[{invoked_ms}..{now} ms] {} -> {reply:?}", if increment { "INCR" } else { "GET" }));
        let value = match &reply {
            Ok(Frame::Integer(value)) => Some(*value),
            Ok(Frame::Bulk(value)) => String::from_utf8_lossy(value).parse().ok(),
            Ok(reply) if increment && refused(reply) => {
                state.counters.refused(&key);
                None
            }
            _ => None,
        };
        if let Some(value) = value
            && let Err(why) = state.counters.check(&key, value)
        {
            drop(state);
            return Err(violation(world, seed, name, Some(&key), why));
        }
        Ok(())
    }
}

/// The client's sequence keys: lists it `RPUSH`es to and strings it `APPEND`s to.
fn sequence_key(name: &str, index: usize) -> String {
    if index.is_multiple_of(2) { format!("{name}:list:{index}") } else { format!("{name}:appended:{index}") }
}

/// Whether a sequence key is a list (else a string appended to).
fn is_list(key: &str) -> bool {
    key.contains(":list:")
}

/// Sequence keys per client.
const SEQUENCES: usize = 8;

/// The texts of a list's elements.
fn texts(items: &[Frame]) -> Vec<String> {
    items
        .iter()
        .map(|item| item.as_bytes().map(|bytes| String::from_utf8_lossy(bytes).into_owned()).unwrap_or_default())
        .collect()
}

/// Checks a read of a sequence key; a loss inside a window is counted.
fn check_sequence(
    world: &Shared,
    seed: u64,
    who: &str,
    key: &str,
    observed: &[String],
    started_ms: u64,
    now_ms: u64,
) -> HostResult {
    let mut state = world.borrow_mut();
    let windows = state.loss_windows.clone();
    let checked = state.sequences.entry(key.to_string()).or_default().read(observed, started_ms, now_ms, &windows);
    match checked {
        Ok(lost) => {
            state.lost += lost.len() as u64;
            if !lost.is_empty() {
                state.keys.entry(key.to_string()).or_default().history.push(format!("  (lost: {lost:?})"));
            }
            Ok(())
        }
        Err(anomaly) => {
            drop(state);
            Err(violation(world, seed, who, Some(key), format!("read of {key}: {anomaly}")))
        }
    }
}

/// Simulated time, for histories.
pub fn sim_ms(env: &SimEnv) -> u64 {
    env.unix_millis()
}

/// The operator: calls the dashboard's REST API as `codis-admin` would, injects the faults,
/// and checks the end state.
pub struct Operator {
    /// Where it runs.
    pub env: SimEnv,
    http: HttpClient<SimEnv>,
    xauth: String,
}

impl Operator {
    /// The operator of the product's dashboard.
    pub fn new(env: &SimEnv) -> Operator {
        Operator {
            env: env.clone(),
            http: HttpClient::new(env.clone(), DASHBOARD_ADDR, Duration::from_secs(5)),
            xauth: model::auth::dashboard_xauth(PRODUCT, ""),
        }
    }

    /// `PUT /api/topom/<verb>/<xauth>/<args>`, retried while the dashboard is away (crashed,
    /// restarting); an answer that is an error fails the run.
    pub async fn put(&self, verb: &str, args: &[&str]) -> Result<serde_json::Value, String> {
        self.put_body(verb, args, None).await
    }

    /// [`Operator::put`] with a body.
    pub async fn put_body(
        &self,
        verb: &str,
        args: &[&str],
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value, String> {
        let mut path = format!("/api/topom/{verb}/{}", self.xauth);
        for arg in args {
            path.push('/');
            path.push_str(arg);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.http.request(Method::PUT, &path, body.clone()).await {
                Ok(answer) if answer.is_success() => {
                    return serde_json::from_slice(&answer.body).map_err(|error| error.to_string());
                }
                // 503: the dashboard lost its lock and is restarting.
                Ok(answer) if answer.status == 503 => {}
                Ok(answer) => return Err(format!("PUT {path}: HTTP {}: {}", answer.status, answer.text())),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(format!("PUT {path}: the dashboard did not answer for 60 s"));
            }
            sleep(Duration::from_millis(500)).await;
        }
    }

    /// `GET addr/path` as JSON, if it answers.
    pub async fn get(&self, addr: &str, path: &str) -> Option<serde_json::Value> {
        let http = HttpClient::new(self.env.clone(), addr, Duration::from_secs(2));
        let answer = http.request(Method::GET, path, None).await.ok()?;
        answer.is_success().then(|| serde_json::from_slice(&answer.body).ok()).flatten()
    }

    /// Assigns every slot at once (a fresh cluster: nothing to move), `owner` picking each
    /// slot's group.
    pub async fn assign_all(&self, owner: impl Fn(usize) -> u32) -> Result<(), String> {
        let all: Vec<SlotMapping> = dashboard::model::all_slots()
            .map(|id| SlotMapping { id, group_id: model::GroupId(owner(id.index())), ..SlotMapping::default() })
            .collect();
        let body = serde_json::to_vec(&all).map_err(|error| error.to_string())?;
        self.put_body("slots/assign", &[], Some(body)).await.map(drop)
    }

    /// Waits until no slot has an action, reading the stored model.
    pub async fn settle(&self, store: &MemoryStore, within: Duration) -> Result<Vec<SlotMapping>, String> {
        let deadline = Instant::now() + within;
        loop {
            let slots = stored_slots(store);
            if slots.len() == model::MAX_SLOT_NUM
                && slots.iter().all(|slot| slot.action.state == model::ActionState::Nothing)
            {
                return Ok(slots);
            }
            if Instant::now() >= deadline {
                let busy: Vec<String> = slots
                    .iter()
                    .filter(|slot| slot.action.state != model::ActionState::Nothing)
                    .take(5)
                    .map(|slot| format!("slot {} {}", slot.id.index(), slot.action.state.as_str()))
                    .collect();
                let status = self
                    .get(DASHBOARD_ADDR, "/topom/stats")
                    .await
                    .map(|stats| stats["slot_action"]["progress"].to_string());
                return Err(format!(
                    "actions not finished {within:?} after the faults healed: {busy:?}; dashboard says {status:?}"
                ));
            }
            sleep(Duration::from_millis(250)).await;
        }
    }

    /// Checks every proxy serves the dashboard's table (a proxy cut off by a fault is taken
    /// back within a few lease periods).
    pub async fn proxies_serve_the_table(&self, proxies: &[&str]) -> Result<(), String> {
        let table = self.get(DASHBOARD_ADDR, "/topom/slots").await.ok_or("the dashboard's table could not be read")?;
        for proxy in proxies {
            let mut same = false;
            for _ in 0..40 {
                if self.get(&format!("{proxy}:11080"), "/proxy/slots").await.as_ref() == Some(&table) {
                    same = true;
                    break;
                }
                sleep(Duration::from_millis(250)).await;
            }
            if !same {
                return Err(format!("{proxy} does not serve the dashboard's table"));
            }
        }
        Ok(())
    }
}

/// Replay equivalence at the end of a run: in every group the model stores, each replica and
/// each server's log (the world's `logs`, every server of the run) holds exactly what the
/// master holds. The clients must have stopped.
pub async fn check_replay(env: &SimEnv, world: &Shared, seed: u64, store: &MemoryStore) -> HostResult {
    let logs = world.borrow().logs.clone();
    let groups: Vec<replay::Group> = stored_groups(store)
        .into_iter()
        .filter_map(|group| {
            let mut addrs = group.servers.iter().map(|server| server.addr.clone());
            Some(replay::Group { master: addrs.next()?, replicas: addrs.collect() })
        })
        .collect();
    let databases = logs.first().map_or(16, |logged| logged.config.databases);
    replay::check(env, seed, &groups, &logs, databases, Duration::from_secs(30))
        .await
        .map_err(|why| violation(world, seed, OPERATOR, None, why))?;
    Ok(())
}

/// The records under `/codis3/<product>/<dir>/` in the coordinator.
fn stored<T: serde::de::DeserializeOwned>(store: &MemoryStore, dir: &str) -> Vec<T> {
    let prefix = format!("/codis3/{PRODUCT}/{dir}/");
    store.snapshot_under(&prefix).into_iter().filter_map(|(_, value)| serde_json::from_slice(&value).ok()).collect()
}

/// The slot mappings in the coordinator.
pub fn stored_slots(store: &MemoryStore) -> Vec<SlotMapping> {
    stored(store, "slots")
}

/// The groups in the coordinator.
pub fn stored_groups(store: &MemoryStore) -> Vec<model::Group> {
    stored(store, "group")
}

/// One read through `proxy` after the faults: a backend back from a fault may still be in the
/// proxy's reconnect back-off for a few seconds, so error replies are retried (for up to ten
/// seconds), as a client would; the connection failing is an error.
async fn final_read(env: &SimEnv, proxy: &str, read: &[&str]) -> Result<Frame, String> {
    let mut client = SimClient::new(env.clone(), &format!("{proxy}:19000"))
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
    for _ in 1..40 {
        match client.call(read).await {
            Ok(Frame::Error(_)) => sleep(Duration::from_millis(250)).await,
            Ok(reply) => return Ok(reply),
            Err(error) => return Err(format!("final {} through {proxy}: {}", read.join(" "), error.0)),
        }
    }
    client.call(read).await.map_err(|error| format!("final {} through {proxy}: {}", read.join(" "), error.0))
}

/// Every sequence and counter, read once more at the end.
async fn final_sequence_reads(env: &SimEnv, world: &Shared, seed: u64, proxies: &[&str]) -> HostResult {
    let (sequences, counters): (Vec<String>, Vec<String>) = {
        let world = world.borrow();
        (world.sequences.keys().cloned().collect(), world.counters.keys().cloned().collect())
    };
    for (turn, key) in sequences.iter().chain(&counters).enumerate() {
        let proxy = proxies[turn % proxies.len()];
        let read: Vec<&str> = if is_list(key) { vec!["LRANGE", key, "0", "-1"] } else { vec!["GET", key] };
        let started = sim_ms(env);
        let reply = final_read(env, proxy, &read).await.map_err(|why| violation(world, seed, OPERATOR, None, why))?;
        let now = sim_ms(env);
        if counters.contains(key) {
            let value = match &reply {
                Frame::Bulk(value) => String::from_utf8_lossy(value).parse().ok(),
                // Never incremented (or every increment lost inside a window).
                Frame::NullBulk | Frame::Null => Some(0),
                _ => None,
            };
            let Some(value) = value else {
                let why = format!("final read of {key} through {proxy}: {reply:?}");
                return Err(violation(world, seed, OPERATOR, Some(key), why));
            };
            let checked = world.borrow().counters.check(key, value);
            checked.map_err(|why| violation(world, seed, OPERATOR, Some(key), why))?;
            continue;
        }
        let observed = match &reply {
            Frame::Array(items) => texts(items),
            Frame::Bulk(value) => split_appended(value),
            Frame::NullBulk | Frame::Null => Vec::new(),
            other => {
                return Err(violation(
                    world,
                    seed,
                    OPERATOR,
                    None,
                    format!("final read of {key} through {proxy}: {other:?}"),
                ));
            }
        };
        check_sequence(world, seed, OPERATOR, key, &observed, started, now)?;
    }
    Ok(())
}

/// Every key reads what its model allows (losses only inside a window), through each proxy
/// in turn.
pub async fn final_reads(env: &SimEnv, world: &Shared, seed: u64, proxies: &[&str]) -> HostResult {
    final_sequence_reads(env, world, seed, proxies).await?;
    let keys: Vec<String> = {
        let world = world.borrow();
        world
            .keys
            .keys()
            .filter(|key| !world.sequences.contains_key(*key) && !key.contains(":counter:"))
            .cloned()
            .collect()
    };
    for (turn, key) in keys.iter().enumerate() {
        let proxy = proxies[turn % proxies.len()];
        let reply =
            final_read(env, proxy, &["GET", key]).await.map_err(|why| violation(world, seed, OPERATOR, None, why))?;
        let observed = match &reply {
            Frame::Bulk(value) => Some(String::from_utf8_lossy(value).into_owned()),
            Frame::NullBulk | Frame::Null => None,
            other => {
                return Err(violation(
                    world,
                    seed,
                    OPERATOR,
                    None,
                    format!("final GET {key} through {proxy}: {other:?}"),
                ));
            }
        };
        let now = sim_ms(env);
        let checked = check_read(&mut world.borrow_mut(), key, &observed, now);
        if let Err(why) = checked {
            return Err(violation(world, seed, OPERATOR, Some(key), format!("final GET {key}: {why}")));
        }
    }
    Ok(())
}
