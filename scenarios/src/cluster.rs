//! `cluster-*`: a whole product in simulation. A coordinator (the in-memory store behind the
//! etcd gateway), a dashboard, three single-server groups, two proxies, two clients and an
//! operator. The operator brings every slot online in group 1, then adds groups 2 and 3 and
//! rebalances while the clients write and read through the proxies and faults strike:
//!
//! - `cluster-rebalance`: no fault; the rebalance alone;
//! - `cluster-proxy-partition`: a proxy loses the dashboard mid-rebalance (its lease runs out,
//!   it refuses clients, the dashboard goes on without it, then takes it back);
//! - `cluster-dashboard-crash`: the dashboard crashes at a seeded moment (so, over seeds, in
//!   every action state) and restarts;
//! - `cluster-server-crash`: the source or a target master crashes mid-migration and restarts
//!   (its log synced on every write);
//! - `cluster-dashboard-partition`: the dashboard loses a server for a while;
//! - `cluster-swarm`: a seeded subset of all of the above.
//!
//! Every third seed migrates with the synchronous method, the others semi-asynchronously.
//!
//! Checked on every run: every read returns the last acknowledged write of its key or one still
//! in flight (each key has one writer and unique values, so this is single-key linearizability)
//! and no acknowledged write is lost, through the end; once faults heal every action finishes
//! within a bound; every slot is owned by exactly one group and the groups are balanced; every
//! key lives on its slot's owner only; every proxy serves the dashboard's table. A failure
//! names the seed, the fault schedule and the key's whole history.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use coordinator::memory::MemoryStore;
use coordinator::{AnyCoordinator, etcd::EtcdClient, etcd::EtcdCoordinator};
use dashboard::{Dashboard, DashboardConfig, Launch};
use model::{GroupId, SlotMapping};
use net::Env;
use net::http::{HttpClient, Method};
use net::rand::Rng as _;
use proxy::{Proxy, ProxyConfig};
use resp::Frame;
use server::ServerConfig;
use server::config::FsyncPolicy;
use sim::{Fault, Harness, HostResult, Nemesis, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::info;

use crate::Scenario;
use crate::client::SimClient;
use crate::known::Known;

/// The registry entries.
pub const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "cluster-rebalance",
        summary: "rebalance 1 → 3 groups while clients write",
        run: |seed| run(seed, Faults::NONE),
    },
    Scenario {
        name: "cluster-proxy-partition",
        summary: "rebalance while a proxy is cut from the dashboard past its lease",
        run: |seed| run(seed, Faults { proxy_partition: true, ..Faults::NONE }),
    },
    Scenario {
        name: "cluster-dashboard-crash",
        summary: "rebalance while the dashboard crashes and restarts",
        run: |seed| run(seed, Faults { dashboard_crash: true, ..Faults::NONE }),
    },
    Scenario {
        name: "cluster-server-crash",
        summary: "rebalance while a source or target master crashes and restarts",
        run: |seed| run(seed, Faults { server_crash: true, ..Faults::NONE }),
    },
    Scenario {
        name: "cluster-dashboard-partition",
        summary: "rebalance while the dashboard is cut from a server",
        run: |seed| run(seed, Faults { dashboard_partition: true, ..Faults::NONE }),
    },
    Scenario { name: "cluster-swarm", summary: "rebalance under a seeded subset of every fault above", run: run_swarm },
];

/// Which faults strike.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    proxy_partition: bool,
    dashboard_crash: bool,
    server_crash: bool,
    dashboard_partition: bool,
}

impl Faults {
    const NONE: Faults =
        Faults { proxy_partition: false, dashboard_crash: false, server_crash: false, dashboard_partition: false };
}

fn run_swarm(seed: u64) -> Outcome {
    let mut pick = net::rng_from_seed(seed, "swarm");
    let faults = Faults {
        proxy_partition: pick.random_bool(0.5),
        dashboard_crash: pick.random_bool(0.5),
        server_crash: pick.random_bool(0.5),
        dashboard_partition: pick.random_bool(0.5),
    };
    run(seed, faults)
}

const PRODUCT: &str = "sim";
const COORDINATOR: &str = "coordinator";
const DASHBOARD: &str = "dashboard";
const DASHBOARD_ADDR: &str = "dashboard:18080";
const SERVERS: [&str; 3] = ["g1", "g2", "g3"];
const PROXIES: [&str; 2] = ["p1", "p2"];
const CLIENTS: [&str; 2] = ["c1", "c2"];
const OPERATOR: &str = "operator";
/// Keys per client.
const KEYS: usize = 48;
/// The dashboard's lock and the proxies' leases, short so faults play out quickly.
const LOCK_TTL: Duration = Duration::from_secs(3);
const PROXY_LEASE: Duration = Duration::from_secs(3);
/// One thing the nemesis does.
enum Step {
    Inject(Fault),
    /// Crash the dashboard once a slot is stored in `state`; restart it `down` later.
    CrashDashboardIn {
        state: &'static str,
        down: Duration,
    },
}

/// The action states a dashboard crash is aimed at.
const CRASH_STATES: [&str; 5] = ["pending", "preparing", "prepared", "migrating", "finished"];
/// Once the last fault healed, every action must be done within this.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

/// What clients, the operator and the hosts share.
#[derive(Default)]
struct World {
    /// Set by the operator when the clients should stop.
    stop: bool,
    /// Faults injected so far, with their simulated time, for reports.
    schedule: Vec<String>,
    /// Each key's model and history (each key has one writer).
    keys: BTreeMap<String, KeyRecord>,
}

#[derive(Default)]
struct KeyRecord {
    known: Option<Known>,
    history: Vec<String>,
}

type Shared = Rc<RefCell<World>>;

fn violation(world: &Shared, seed: u64, who: &str, key: Option<&str>, what: String) -> Box<dyn std::error::Error> {
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

fn run(seed: u64, faults: Faults) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(400);
    let mut harness = Harness::new(config);
    let world: Shared = Rc::new(RefCell::new(World::default()));
    let store = MemoryStore::new();
    {
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
    // Every third seed migrates synchronously (proxies pull each key with SLOTSMGRTTAGONE).
    let method = if seed.is_multiple_of(3) { "sync" } else { "semi-async" };
    harness.host(DASHBOARD, move |env| run_dashboard(env, method));
    for server in SERVERS {
        harness.host(server, |env| async move {
            let config = ServerConfig {
                bind: "0.0.0.0".into(),
                port: 6379,
                dir: "/data".into(),
                appendonly: true,
                appendfsync: FsyncPolicy::Always,
                ..ServerConfig::default()
            };
            let (bound, _) = tokio::sync::oneshot::channel();
            server::bind_and_run(env, config, bound, std::future::pending()).await?;
            Ok(())
        });
    }
    for name in PROXIES {
        harness.host(name, move |env| run_proxy(env, name));
    }
    for (index, name) in CLIENTS.into_iter().enumerate() {
        let world = world.clone();
        harness.client(name, move |env| run_client(env, seed, world, name, PROXIES[index]));
    }
    let nemesis = harness.nemesis();
    {
        let world = world.clone();
        harness.client(OPERATOR, move |env| run_operator(env, seed, world, store, nemesis, faults));
    }
    harness.run()
}

async fn run_dashboard(env: SimEnv, method: &'static str) -> HostResult {
    let config = DashboardConfig {
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
    };
    let settings = config.settings()?;
    // A supervisor's loop: a dashboard that lost its lock stops, and is started again.
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

async fn run_proxy(env: SimEnv, name: &'static str) -> HostResult {
    let config = ProxyConfig {
        product_name: PRODUCT.into(),
        backend_connect_timeout: Duration::from_millis(300),
        backend_recv_timeout: Duration::from_secs(2),
        ..ProxyConfig::default()
    };
    let listener = env.bind("0.0.0.0:19000").await?;
    let admin = env.bind("0.0.0.0:11080").await?;
    let identity = proxy::admin::Identity::new(PRODUCT, "", &format!("{name}:19000"), &format!("{name}:11080"), name);
    let token = identity.model.token.clone();
    let proxy = Proxy::new(env.clone(), config);
    env.spawn(proxy::admin::serve(env.clone(), proxy.shared().clone(), identity, None, admin));
    proxy.run(env, listener, &token, std::future::pending()).await?;
    Ok(())
}

/// Whether an error reply says the request was refused before it reached any server (so it
/// certainly did not happen).
fn refused(reply: &Frame) -> bool {
    let Frame::Error(text) = reply else { return false };
    let text = String::from_utf8_lossy(text);
    ["ERR router is not online", "ERR proxy is fenced", "ERR handle request, slot is not ready"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}

/// A client: its own keys, unique values, through one proxy; every reply checked against the
/// key's model as it comes.
async fn run_client(env: SimEnv, seed: u64, world: Shared, name: &'static str, proxy: &'static str) -> HostResult {
    let mut rng = env.rng("workload");
    let mut client = SimClient::new(env.clone(), &format!("{proxy}:19000"))
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(1500));
    let mut writes = 0u64;
    while !world.borrow().stop {
        let key = format!("{name}:{}", rng.random_range(0..KEYS));
        let write = rng.random_bool(0.6);
        let invoked_ms = sim_ms(&env);
        if write {
            writes += 1;
            let value = format!("{name}-{writes}");
            let reply = client.call(&["SET", &key, &value]).await;
            let mut state = world.borrow_mut();
            let record = state.keys.entry(key.clone()).or_default();
            record.history.push(format!("[{}..{} ms] SET {value} -> {reply:?}", invoked_ms, sim_ms(&env)));
            let known = record.known.get_or_insert_with(|| Known::value(None));
            match reply {
                Ok(reply) if reply == Frame::ok() => known.saw(Some(value)),
                Ok(reply) if refused(&reply) => {}
                // An error after the request may have reached a server, or no reply at all:
                // the write may have happened, or may still happen.
                _ => known.maybe_wrote(Some(value)),
            }
        } else {
            let reply = client.call(&["GET", &key]).await;
            let observed = match &reply {
                Ok(Frame::Bulk(value)) => Some(Some(String::from_utf8_lossy(value).into_owned())),
                Ok(Frame::NullBulk | Frame::Null) => Some(None),
                _ => None,
            };
            let mut state = world.borrow_mut();
            let record = state.keys.entry(key.clone()).or_default();
            record.history.push(format!("[{}..{} ms] GET -> {reply:?}", invoked_ms, sim_ms(&env)));
            let known = record.known.get_or_insert_with(|| Known::value(None));
            if let Some(observed) = observed {
                if !known.allows(&observed) {
                    drop(state);
                    return Err(violation(
                        &world,
                        seed,
                        name,
                        Some(&key),
                        format!("GET {key} read {observed:?}, which no write left"),
                    ));
                }
                known.saw(observed);
            }
        }
        sleep(Duration::from_millis(rng.random_range(2..12))).await;
    }
    Ok(())
}

/// Simulated time, for histories.
fn sim_ms(env: &SimEnv) -> u64 {
    env.unix_millis()
}

/// The operator: calls the dashboard's REST API as `codis-admin` would, injects the faults,
/// and checks the end state.
struct Operator {
    env: SimEnv,
    http: HttpClient<SimEnv>,
    xauth: String,
}

impl Operator {
    /// `PUT /api/topom/<verb>/<xauth>/<args>`, retried while the dashboard is away (crashed,
    /// restarting); an answer that is an error fails the run.
    async fn put(&self, verb: &str, args: &[&str]) -> Result<serde_json::Value, String> {
        self.put_body(verb, args, None).await
    }

    async fn put_body(&self, verb: &str, args: &[&str], body: Option<Vec<u8>>) -> Result<serde_json::Value, String> {
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

    async fn get(&self, addr: &str, path: &str) -> Option<serde_json::Value> {
        let http = HttpClient::new(self.env.clone(), addr, Duration::from_secs(2));
        let answer = http.request(Method::GET, path, None).await.ok()?;
        answer.is_success().then(|| serde_json::from_slice(&answer.body).ok()).flatten()
    }

    /// Waits until no slot has an action, reading the stored model.
    async fn settle(&self, store: &MemoryStore, within: Duration) -> Result<Vec<SlotMapping>, String> {
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
}

/// The slot mappings in the coordinator.
fn stored_slots(store: &MemoryStore) -> Vec<SlotMapping> {
    let prefix = format!("/codis3/{PRODUCT}/slots/");
    store
        .snapshot()
        .into_iter()
        .filter(|(key, _)| key.starts_with(&prefix))
        .filter_map(|(_, value)| serde_json::from_slice(&value).ok())
        .collect()
}

async fn run_operator(
    env: SimEnv,
    seed: u64,
    world: Shared,
    store: MemoryStore,
    nemesis: Nemesis,
    faults: Faults,
) -> HostResult {
    let fail = |what: String| violation(&world, seed, OPERATOR, None, what);
    let operator = Operator {
        env: env.clone(),
        http: HttpClient::new(env.clone(), DASHBOARD_ADDR, Duration::from_secs(5)),
        xauth: model::auth::dashboard_xauth(PRODUCT, ""),
    };
    // The cluster: three groups of one server, two proxies, every slot online in group 1.
    for group in ["1", "2", "3"] {
        operator.put("group/create", &[group]).await.map_err(&fail)?;
    }
    operator.put("group/add", &["1", "g1:6379"]).await.map_err(&fail)?;
    for proxy in PROXIES {
        operator.put("proxy/create", &[&format!("{proxy}:11080")]).await.map_err(&fail)?;
    }
    // A fresh cluster: every slot assigned to group 1 at once (nothing to move yet).
    let all: Vec<SlotMapping> = dashboard::model::all_slots()
        .map(|id| SlotMapping { id, group_id: GroupId(1), ..SlotMapping::default() })
        .collect();
    let body = serde_json::to_vec(&all).map_err(|error| fail(error.to_string()))?;
    operator.put_body("slots/assign", &[], Some(body)).await.map_err(&fail)?;
    operator.settle(&store, Duration::from_secs(120)).await.map_err(&fail)?;
    info!("every slot online in group 1; rebalancing onto three groups");

    // The rebalance, and the faults at seeded moments while it runs.
    sleep(Duration::from_millis(500)).await;
    operator.put("group/add", &["2", "g2:6379"]).await.map_err(&fail)?;
    operator.put("group/add", &["3", "g3:6379"]).await.map_err(&fail)?;
    let plan = operator.put("slots/rebalance", &["1"]).await.map_err(&fail)?;
    if plan.as_object().is_none_or(|plan| plan.len() < 600) {
        return Err(fail(format!("the rebalance plan moves too little: {plan}")));
    }
    let mut schedule = net::rng_from_seed(seed, "cluster-faults");
    let mut strikes: Vec<(Duration, Fault, Duration, Fault)> = Vec::new();
    let window = |schedule: &mut net::Rng, low: u64, high: u64, down_low: u64, down_high: u64| {
        let at = Duration::from_millis(schedule.random_range(low..high));
        (at, Duration::from_millis(schedule.random_range(down_low..down_high)))
    };
    if faults.proxy_partition {
        let (at, down) = window(&mut schedule, 200, 15_000, 5_000, 12_000);
        strikes.push((
            at,
            Fault::Partition(DASHBOARD.into(), "p2".into()),
            down,
            Fault::Repair(DASHBOARD.into(), "p2".into()),
        ));
    }
    // The dashboard crashes once a slot is stored in the state the seed picks, so over the seeds
    // every state of an action is crashed in.
    let dashboard_crash = faults.dashboard_crash.then(|| {
        let (at, down) = window(&mut schedule, 100, 15_000, 500, 6_000);
        (at, down, CRASH_STATES[schedule.random_range(0..CRASH_STATES.len())])
    });
    if faults.server_crash {
        let server = SERVERS[schedule.random_range(0..SERVERS.len())];
        let (at, down) = window(&mut schedule, 100, 20_000, 300, 4_000);
        strikes.push((at, Fault::Crash(server.into()), down, Fault::Restart(server.into())));
    }
    if faults.dashboard_partition {
        let server = SERVERS[schedule.random_range(0..SERVERS.len())];
        let (at, down) = window(&mut schedule, 100, 20_000, 1_000, 10_000);
        strikes.push((
            at,
            Fault::Partition(DASHBOARD.into(), server.into()),
            down,
            Fault::Repair(DASHBOARD.into(), server.into()),
        ));
    }
    // Strike and heal in time order.
    let mut steps: Vec<(Duration, Step)> = Vec::new();
    for (at, strike, down, heal) in strikes {
        steps.push((at, Step::Inject(strike)));
        steps.push((at + down, Step::Inject(heal)));
    }
    if let Some((at, down, state)) = dashboard_crash {
        steps.push((at, Step::CrashDashboardIn { state, down }));
    }
    let started = Instant::now();
    while !steps.is_empty() {
        steps.sort_by_key(|(at, _)| *at);
        let (at, step) = steps.remove(0);
        tokio::time::sleep_until(started + at).await;
        let fault = match step {
            Step::Inject(fault) => fault,
            Step::CrashDashboardIn { state, down } => {
                // Watch the store for a slot in `state` (a few seconds at most, then crash anyway).
                let pattern = format!("\"state\": \"{state}\"");
                let give_up = Instant::now() + Duration::from_secs(5);
                while Instant::now() < give_up
                    && !store
                        .snapshot()
                        .values()
                        .any(|value| value.windows(pattern.len()).any(|window| window == pattern.as_bytes()))
                {
                    sleep(Duration::from_millis(2)).await;
                }
                world.borrow_mut().schedule.push(format!("(the next crash aimed at a slot {state})"));
                steps.push((started.elapsed() + down, Step::Inject(Fault::Restart(DASHBOARD.into()))));
                Fault::Crash(DASHBOARD.into())
            }
        };
        world.borrow_mut().schedule.push(format!("{fault:?} at +{} ms", started.elapsed().as_millis()));
        info!(?fault, "nemesis");
        nemesis.inject(fault);
    }
    let slots = operator.settle(&store, SETTLE_WITHIN).await.map_err(&fail)?;

    // Let the clients go on a little on the final layout, then stop them.
    sleep(Duration::from_secs(2)).await;
    world.borrow_mut().stop = true;
    sleep(Duration::from_secs(2)).await;
    check_end(&env, &operator, &world, seed, &slots).await
}

/// The end state: balanced, each key on its owner only, each proxy on the dashboard's table, and
/// every key reads what its writer last had acknowledged (or one still in flight).
async fn check_end(env: &SimEnv, operator: &Operator, world: &Shared, seed: u64, slots: &[SlotMapping]) -> HostResult {
    let fail = |what: String| violation(world, seed, OPERATOR, None, what);
    let mut owned: BTreeMap<GroupId, usize> = BTreeMap::new();
    for slot in slots {
        *owned.entry(slot.group_id).or_default() += 1;
    }
    if owned.len() != 3 || owned.values().any(|count| !(341..=342).contains(count)) || owned.contains_key(&GroupId(0)) {
        return Err(fail(format!("slots per group after the rebalance: {owned:?}")));
    }
    for (index, server) in SERVERS.iter().enumerate() {
        let group = GroupId(index as u32 + 1);
        let mut direct = SimClient::new(env.clone(), &format!("{server}:6379"))
            .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
        let reply =
            direct.call(&["SLOTSINFO"]).await.map_err(|error| fail(format!("{server}: SLOTSINFO: {}", error.0)))?;
        let Frame::Array(entries) = reply else { return Err(fail(format!("{server}: SLOTSINFO replied {reply:?}"))) };
        for entry in entries {
            if let Frame::Array(pair) = entry
                && let Some(Frame::Integer(slot)) = pair.first()
                && let Some(mapping) = usize::try_from(*slot).ok().and_then(|slot| slots.get(slot))
                && mapping.group_id != group
            {
                return Err(fail(format!(
                    "{server} (group {group}) still holds keys of slot {slot}, owned by group {}",
                    mapping.group_id
                )));
            }
        }
    }
    let table = operator
        .get(DASHBOARD_ADDR, "/topom/slots")
        .await
        .ok_or_else(|| fail("the dashboard's table could not be read".into()))?;
    for proxy in PROXIES {
        let mut same = false;
        // A proxy cut off by a fault is taken back within a few lease periods.
        for _ in 0..40 {
            if operator.get(&format!("{proxy}:11080"), "/proxy/slots").await.as_ref() == Some(&table) {
                same = true;
                break;
            }
            sleep(Duration::from_millis(250)).await;
        }
        if !same {
            return Err(fail(format!("{proxy} does not serve the dashboard's table")));
        }
    }
    // No acknowledged write lost: every key reads what the model allows, through each proxy.
    let keys: Vec<String> = world.borrow().keys.keys().cloned().collect();
    for (turn, key) in keys.iter().enumerate() {
        let proxy = PROXIES[turn % PROXIES.len()];
        let mut client = SimClient::new(env.clone(), &format!("{proxy}:19000"))
            .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
        let reply = client
            .call(&["GET", key])
            .await
            .map_err(|error| fail(format!("final GET {key} through {proxy}: {}", error.0)))?;
        let observed = match &reply {
            Frame::Bulk(value) => Some(String::from_utf8_lossy(value).into_owned()),
            Frame::NullBulk | Frame::Null => None,
            other => return Err(fail(format!("final GET {key} through {proxy}: {other:?}"))),
        };
        let allowed = world
            .borrow()
            .keys
            .get(key)
            .and_then(|record| record.known.as_ref())
            .is_none_or(|known| known.allows(&observed));
        if !allowed {
            return Err(violation(
                world,
                seed,
                OPERATOR,
                Some(key),
                format!("final GET {key} read {observed:?}: an acknowledged write was lost"),
            ));
        }
    }
    Ok(())
}
