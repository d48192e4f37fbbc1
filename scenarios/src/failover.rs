//! `failover-*`: a product with replicated groups losing masters under write load. Group 1 is
//! `a1` (master), `a2` and `a3` (`a3` in another datacenter); group 2 is `b1` and `b2`; three
//! proxies, a client writing and reading its own keys through each, the dashboard failing over
//! on its own (`failover_down_after` 3 s, a majority of proxies must agree).
//!
//! - `failover-kill`: `a1` crashes, and restarts much later (it rejoins as a replica);
//! - `failover-isolate`: `a1` is cut from every other host, then healed;
//! - `failover-dashboard-alone`: the dashboard is cut from every server and proxy (and, on
//!   odd seeds, from the coordinator): nothing may be failed over;
//! - `failover-master-dashboard`: `a1` is cut from the dashboard only (the proxies still reach
//!   it): nothing may be failed over;
//! - `failover-flap`: `a1`'s links to a seeded subset of the others go down and up at seeded
//!   intervals, some shorter than `down_after`, some longer (so a proxy or the dashboard may
//!   still reach the master the rest gave up on), sometimes with a proxy cut from the dashboard;
//! - `failover-twice`: `a1` crashes; once its replacement is in place, that one crashes too;
//! - `failover-migration`: slots move from group 1 to group 2 while the source (`a1`) or the
//!   target (`b1`) master crashes;
//! - `failover-pause`: `a1` is paused as `kill -STOP` pauses a process (connections to it still
//!   open, nothing answers), then resumed much later: it must be failed over within
//!   `down_after` and two probe periods, though every proxy's reconnects succeed;
//! - `failover-wrapper`: one slot, filled with a thousand keys, moves from group 1 to group 2
//!   a key at a time while a client appends to and increments a few keys of it (the proxies send
//!   those writes through `SLOTSMGRT-EXEC-WRAPPER` while the keys are still on the source), and
//!   the source master `a1` crashes mid-migration: its replica takes over with whatever the
//!   wrapper replicated, so a write replicated twice shows in the client's reads.
//!
//! Odd seeds run in synchronous mode (`sync_replicas = 1`: a proxy answers a write once a
//! replica has it), even seeds asynchronously, as Redis replicates.
//!
//! Checked on every run: every read returns the last acknowledged write of its key or one
//! still in flight. In synchronous mode there is no exception. Asynchronously, a write may be
//! lost only if its master could not have replicated it: acknowledged within a replication lag
//! bound before the master crashed, or while it was cut from its replicas (until they could
//! catch up after the cut healed), and never after the failover's fencing point (`prepared`
//! stored: a write acknowledged after it would mean two masters took writes); losses are
//! counted.
//! After healing, within a bound: no promotion or slot action left; every group's first server
//! answers as master at the group's epoch, every other one follows it; every proxy serves the
//! dashboard's table; every replica, and every server's append-only log loaded afresh, holds
//! exactly what its group's master holds. The clients also append to lists and strings and
//! increment counters, so a write applied twice (on a replica later promoted) shows in a read. Each scenario also checks whether a failover happened when it must (or
//! must not). The time from a master's failure to the first write accepted again on its slots
//! is measured for `failover-report`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use coordinator::memory::MemoryStore;
use model::{ActionState, Group, GroupId};
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Nemesis, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::info;

use crate::client::SimClient;
use crate::product::{
    COORDINATOR, DASHBOARD, OPERATOR, Operator, Shared, Worker, World, add_coordinator, check_replay, dashboard_config,
    final_reads, proxy_config, run_client, run_dashboard, run_proxy, run_server, server_config, sim_ms, stored_groups,
    violation,
};
use crate::{Scenario, replay};

/// The registry entries.
pub const SCENARIOS: [Scenario; 9] = [
    Scenario { name: "failover-kill", summary: "a master crashes under writes", run: |seed| run(seed, Plot::Kill) },
    Scenario {
        name: "failover-isolate",
        summary: "a master is cut from every other host",
        run: |seed| run(seed, Plot::Isolate),
    },
    Scenario {
        name: "failover-dashboard-alone",
        summary: "the dashboard is cut from servers and proxies: no failover",
        run: |seed| run(seed, Plot::DashboardAlone),
    },
    Scenario {
        name: "failover-master-dashboard",
        summary: "a master is cut from the dashboard only: no failover",
        run: |seed| run(seed, Plot::MasterFromDashboard),
    },
    Scenario { name: "failover-flap", summary: "a master's links flap", run: |seed| run(seed, Plot::Flap) },
    Scenario {
        name: "failover-twice",
        summary: "a master crashes, then its replacement",
        run: |seed| run(seed, Plot::Twice),
    },
    Scenario {
        name: "failover-migration",
        summary: "the source or target master crashes mid-migration",
        run: |seed| run(seed, Plot::Migration),
    },
    Scenario {
        name: "failover-pause",
        summary: "a master is paused (connections open, nothing answers): failed over in time",
        run: |seed| run(seed, Plot::Pause),
    },
    Scenario {
        name: "failover-wrapper",
        summary: "the source master fails over while writes to its migrating slot go through the wrapper",
        run: |seed| run(seed, Plot::Wrapper),
    },
];

/// What happens in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plot {
    Kill,
    Isolate,
    DashboardAlone,
    MasterFromDashboard,
    Flap,
    Twice,
    Migration,
    Wrapper,
    Pause,
}

const GROUP1: [&str; 3] = ["a1", "a2", "a3"];
const GROUP2: [&str; 2] = ["b1", "b2"];
const PROXIES: [&str; 3] = ["p1", "p2", "p3"];
const CLIENTS: [&str; 3] = ["w1", "w2", "w3"];
const WATCHER: &str = "watcher";
/// `failover-wrapper`'s client of the migrating slot.
const HOT: &str = "hot";
/// The slot `failover-wrapper` moves (group 1's).
const HOT_SLOT: usize = 7;
/// Keys it fills the slot with before moving it.
const FILL_KEYS: usize = 1_000;
/// How long a master must look dead before it is failed over.
const DOWN_AFTER: Duration = Duration::from_secs(3);
/// How often the dashboard probes servers and asks proxies (its failover loop's period).
const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// A write acknowledged this long before its master failed has reached the replicas.
const REPLICATION_LAG_BOUND_MS: u64 = 1_000;
/// How long after a cut between a master and a replica heals the replica may still be behind:
/// its wedged link times out (`repl-timeout` 3 s here), it reconnects and catches up.
const REPLICA_RECOVERY_MS: u64 = 6_000;
/// Once the last fault healed, the cluster must be whole again within this.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// What one run measured, for `failover-report`.
#[derive(Clone, Debug, Default)]
pub struct RunMetrics {
    /// The seed.
    pub seed: u64,
    /// Replicas each write waited for (0: asynchronous).
    pub sync_replicas: u32,
    /// Promotions that happened.
    pub failovers: usize,
    /// Per master failure that led to a failover: ms from the failure to the first write
    /// accepted again on the group's slots.
    pub outages_ms: Vec<u64>,
    /// Per failover: ms from the failure to the fencing point (`prepared` stored).
    pub detections_ms: Vec<u64>,
    /// Acknowledged writes lost.
    pub lost: u64,
    /// Acknowledged writes.
    pub acknowledged: u64,
}

thread_local! {
    static METRICS: RefCell<Vec<RunMetrics>> = const { RefCell::new(Vec::new()) };
}

/// The metrics of the runs on this thread since the last call.
pub fn take_metrics() -> Vec<RunMetrics> {
    METRICS.with(|metrics| std::mem::take(&mut *metrics.borrow_mut()))
}

/// One promotion as the watcher saw it in the coordinator.
#[derive(Clone, Debug)]
struct Promotion {
    group: GroupId,
    old_master: String,
    /// When `preparing` was first seen (simulated ms).
    started_ms: u64,
    /// When `prepared` (or, if that was missed, `finished`) was first seen: the fencing point
    /// had passed by then.
    fenced_ms: Option<u64>,
}

/// What the operator and the watcher share beyond the clients' world.
#[derive(Default)]
struct Log {
    /// When each host was struck (crashed, or cut from others), simulated ms.
    struck: BTreeMap<String, Vec<u64>>,
    /// Cuts between two hosts: from, and until (once repaired).
    cuts: Vec<(String, String, u64, Option<u64>)>,
    /// When each host crashed.
    crashed: BTreeMap<String, Vec<u64>>,
    promotions: Vec<Promotion>,
}

type SharedLog = Rc<RefCell<Log>>;

fn servers() -> impl Iterator<Item = &'static str> {
    GROUP1.into_iter().chain(GROUP2)
}

fn run(seed: u64, plot: Plot) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(400);
    // `failover-wrapper` moves a thousand keys one batch each: a source that loses its link at
    // the end of one batch in four (a fault hook) would take minutes.
    config.buggify = plot != Plot::Wrapper;
    let mut harness = Harness::new(config);
    let world: Shared = Rc::new(RefCell::new(World::default()));
    let log: SharedLog = Rc::new(RefCell::new(Log::default()));
    let store = MemoryStore::new();
    add_coordinator(&mut harness, &store);
    // The wrapper is the semi-asynchronous method's.
    let method = if seed.is_multiple_of(3) && plot != Plot::Wrapper { "sync" } else { "semi-async" };
    // Odd seeds replicate synchronously: no acknowledged write may be lost.
    let sync_replicas = u32::from(seed % 2 == 1);
    harness.host(DASHBOARD, move |env| {
        let mut config =
            dashboard::DashboardConfig { failover_down_after: DOWN_AFTER, sync_replicas, ..dashboard_config(method) };
        if plot == Plot::Wrapper {
            // A key per batch: the slot takes seconds to move, its keys wait on the source.
            config.migration_async_numkeys = 1;
        }
        run_dashboard(env, config)
    });
    for server in servers() {
        // Replicas notice a silent (or wedged) link within seconds, as an HA deployment sets
        // them up.
        let config = ServerConfig { repl_timeout: 3, repl_ping_replica_period: 1, ..server_config() };
        world.borrow_mut().logs.push(replay::Logged {
            host: server.into(),
            config: config.clone(),
            disk: harness.disk(server),
        });
        harness.host(server, move |env| run_server(env, config.clone()));
    }
    for name in PROXIES {
        harness.host(name, move |env| {
            let config = proxy::ProxyConfig { backend_ping_period: Duration::from_millis(500), ..proxy_config() };
            run_proxy(env, name, config)
        });
    }
    for (index, name) in CLIENTS.into_iter().enumerate() {
        let world = world.clone();
        harness.client(name, move |env| run_client(env, seed, world, name, PROXIES[index]));
    }
    if plot == Plot::Wrapper {
        let world = world.clone();
        harness.client(HOT, move |env| run_hot_client(env, seed, world));
    }
    {
        let (world, log, store) = (world.clone(), log.clone(), store.clone());
        harness.client(WATCHER, move |env| watch(env, world, log, store, sync_replicas > 0));
    }
    let nemesis = harness.nemesis();
    {
        let (world, log) = (world.clone(), log.clone());
        harness.client(OPERATOR, move |env| run_operator(env, seed, plot, world, log, store, nemesis));
    }
    let outcome = harness.run();
    let world = world.borrow();
    let log = log.borrow();
    let metrics = RunMetrics {
        seed,
        sync_replicas,
        failovers: log.promotions.iter().filter(|promotion| promotion.fenced_ms.is_some()).count(),
        outages_ms: outages(&world, &log),
        detections_ms: log
            .promotions
            .iter()
            .filter_map(|promotion| {
                let fenced = promotion.fenced_ms?;
                let struck = last_strike(&log, &promotion.old_master, promotion.started_ms)?;
                Some(fenced.saturating_sub(struck))
            })
            .collect(),
        lost: world.lost,
        acknowledged: world.acknowledged,
    };
    METRICS.with(|all| all.borrow_mut().push(metrics));
    outcome
}

/// The last time `host` was struck before `before`.
fn last_strike(log: &Log, host: &str, before: u64) -> Option<u64> {
    log.struck.get(host)?.iter().copied().filter(|at| *at <= before).max()
}

/// Per failover: from the old master's failure to the first write, sent after it, that was
/// acknowledged on a key of the group's slots (group 1 owns slots 0–511, group 2 the rest).
fn outages(world: &World, log: &Log) -> Vec<u64> {
    log.promotions
        .iter()
        .filter(|promotion| promotion.fenced_ms.is_some())
        .filter_map(|promotion| {
            let struck = last_strike(log, &promotion.old_master, promotion.started_ms)?;
            let group_of =
                |key: &str| if model::slot_of(key.as_bytes()).index() < 512 { GroupId(1) } else { GroupId(2) };
            world
                .writes
                .iter()
                .filter(|write| write.invoked_ms >= struck && group_of(&write.key) == promotion.group)
                .filter_map(|write| write.acked_ms)
                .min()
                .map(|acked| acked - struck)
        })
        .collect()
}

/// Follows promotions in the coordinator; opens a loss window for each once its fencing point
/// has passed.
async fn watch(env: SimEnv, world: Shared, log: SharedLog, store: MemoryStore, synchronous: bool) -> HostResult {
    let mut last: BTreeMap<GroupId, Group> = BTreeMap::new();
    let mut revision = 0;
    while !world.borrow().stop {
        sleep(Duration::from_millis(2)).await;
        if store.revision() == revision {
            continue;
        }
        revision = store.revision();
        let now = sim_ms(&env);
        for group in stored_groups(&store) {
            let state = group.promoting.state;
            let mut log = log.borrow_mut();
            let open = log.promotions.iter().rposition(|promotion| promotion.group == group.id);
            let previous = last.get(&group.id);
            let started = previous.is_none_or(|previous| previous.promoting.state == ActionState::Nothing);
            if state == ActionState::Preparing && started {
                let old_master = group.master().unwrap_or_default().split(':').next().unwrap_or_default().to_string();
                log.promotions.push(Promotion { group: group.id, old_master, started_ms: now, fenced_ms: None });
            } else if matches!(state, ActionState::Prepared | ActionState::Finished)
                && let Some(index) = open
                && log.promotions[index].fenced_ms.is_none()
            {
                log.promotions[index].fenced_ms = Some(now);
                let promotion = log.promotions[index].clone();
                // A crash loses what the replicas had not received yet (acknowledged within the
                // lag bound before it).
                let mut windows: Vec<(u64, u64)> = log
                    .crashed
                    .get(&promotion.old_master)
                    .and_then(|crashes| crashes.iter().copied().filter(|at| *at <= promotion.started_ms).max())
                    .map(|crash| vec![(crash.saturating_sub(REPLICATION_LAG_BOUND_MS), crash)])
                    .unwrap_or_default();
                // Writes the old master took while cut from its replicas (and until they
                // caught up after the cut healed) may be missing from the one promoted.
                let peers: Vec<String> = group
                    .servers
                    .iter()
                    .filter_map(|server| server.addr.split(':').next().map(str::to_string))
                    .collect();
                for (a, b, from, to) in &log.cuts {
                    let other = if *a == promotion.old_master {
                        b
                    } else if *b == promotion.old_master {
                        a
                    } else {
                        continue;
                    };
                    if peers.contains(other) {
                        let until = to.map_or(now, |to| (to + REPLICA_RECOVERY_MS).min(now));
                        windows.push((from.saturating_sub(REPLICATION_LAG_BOUND_MS), until));
                    }
                }
                // Synchronous replication promises no loss at all.
                if !synchronous {
                    info!(group = group.id.0, ?windows, "failover fenced: loss windows");
                    world.borrow_mut().loss_windows.extend(windows);
                }
            } else if state == ActionState::Nothing
                && let Some(index) = open
                && log.promotions[index].fenced_ms.is_none()
                && previous.is_some_and(|previous| previous.promoting.state != ActionState::Nothing)
            {
                // Called off before its fencing point: no window.
                log.promotions.remove(index);
            }
            last.insert(group.id, group);
        }
    }
    Ok(())
}

/// Injects `fault` and notes it.
fn strike(nemesis: &Nemesis, world: &Shared, log: &SharedLog, env: &SimEnv, fault: Fault, struck: &[&str]) {
    let now = sim_ms(env);
    world.borrow_mut().schedule.push(format!("{fault:?} at {now} ms"));
    match &fault {
        Fault::Partition(a, b) => log.borrow_mut().cuts.push((a.clone(), b.clone(), now, None)),
        Fault::Crash(host) => log.borrow_mut().crashed.entry(host.clone()).or_default().push(now),
        Fault::Repair(a, b) => {
            for cut in &mut log.borrow_mut().cuts {
                if (&cut.0, &cut.1) == (a, b) && cut.3.is_none() {
                    cut.3 = Some(now);
                }
            }
        }
        _ => {}
    }
    for host in struck {
        log.borrow_mut().struck.entry((*host).to_string()).or_default().push(now);
    }
    info!(?fault, "nemesis");
    nemesis.inject(fault);
}

/// Every host but `host` (the clients and the operator talk to no server).
fn others(host: &str) -> Vec<&'static str> {
    [DASHBOARD, COORDINATOR].into_iter().chain(servers()).chain(PROXIES).filter(|other| *other != host).collect()
}

async fn run_operator(
    env: SimEnv,
    seed: u64,
    plot: Plot,
    world: Shared,
    log: SharedLog,
    store: MemoryStore,
    nemesis: Nemesis,
) -> HostResult {
    let fail = |what: String| violation(&world, seed, OPERATOR, None, what);
    let operator = Operator::new(&env);
    for group in ["1", "2"] {
        operator.put("group/create", &[group]).await.map_err(&fail)?;
    }
    for (group, servers) in [("1", &GROUP1[..]), ("2", &GROUP2[..])] {
        for server in servers {
            let datacenter = if *server == "a3" { "west" } else { "east" };
            operator.put("group/add", &[group, &format!("{server}:6379"), datacenter]).await.map_err(&fail)?;
        }
    }
    for proxy in PROXIES {
        operator.put("proxy/create", &[&format!("{proxy}:11080")]).await.map_err(&fail)?;
    }
    operator.assign_all(|slot| if slot < 512 { 1 } else { 2 }).await.map_err(&fail)?;
    whole(&env, &store, Duration::from_secs(30)).await.map_err(&fail)?;
    info!("both groups replicated; the load runs");
    sleep(Duration::from_secs(2)).await;

    let mut rng = net::rng_from_seed(seed, "failover-plot");
    let ms = |rng: &mut net::Rng, low: u64, high: u64| Duration::from_millis(rng.random_range(low..high));
    let hit = |fault: Fault, struck: &[&str]| strike(&nemesis, &world, &log, &env, fault, struck);
    match plot {
        Plot::Kill => {
            sleep(ms(&mut rng, 0, 2_000)).await;
            hit(Fault::Crash("a1".into()), &["a1"]);
            sleep(ms(&mut rng, 12_000, 25_000)).await;
            hit(Fault::Restart("a1".into()), &[]);
        }
        Plot::Isolate => {
            sleep(ms(&mut rng, 0, 2_000)).await;
            for other in others("a1") {
                hit(Fault::Partition("a1".into(), other.into()), &["a1"]);
            }
            sleep(ms(&mut rng, 12_000, 25_000)).await;
            for other in others("a1") {
                hit(Fault::Repair("a1".into(), other.into()), &[]);
            }
        }
        Plot::DashboardAlone => {
            let cut: Vec<&str> =
                others(DASHBOARD).into_iter().filter(|other| *other != COORDINATOR || seed.is_multiple_of(2)).collect();
            sleep(ms(&mut rng, 0, 2_000)).await;
            for other in &cut {
                hit(Fault::Partition(DASHBOARD.into(), (*other).into()), &[DASHBOARD]);
            }
            sleep(ms(&mut rng, 6_000, 15_000)).await;
            for other in &cut {
                hit(Fault::Repair(DASHBOARD.into(), (*other).into()), &[]);
            }
        }
        Plot::MasterFromDashboard => {
            sleep(ms(&mut rng, 0, 2_000)).await;
            hit(Fault::Partition("a1".into(), DASHBOARD.into()), &["a1"]);
            sleep(ms(&mut rng, 6_000, 15_000)).await;
            hit(Fault::Repair("a1".into(), DASHBOARD.into()), &[]);
        }
        Plot::Flap => {
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                sleep(ms(&mut rng, 300, 3_000)).await;
                // Cut from some of the others: sometimes a proxy (or the dashboard) still
                // reaches the master the rest gave up on.
                let cut: Vec<&str> = others("a1").into_iter().filter(|_| rng.random_bool(0.75)).collect();
                for other in &cut {
                    hit(Fault::Partition("a1".into(), (*other).into()), &["a1"]);
                }
                // Sometimes a proxy loses the dashboard too: if it still reaches the master, it
                // must stop writing there (its lease runs out) before a replica is promoted.
                let stale = rng.random_bool(0.4).then(|| PROXIES[rng.random_range(0..PROXIES.len())]);
                if let Some(proxy) = stale {
                    hit(Fault::Partition(proxy.into(), DASHBOARD.into()), &[]);
                }
                sleep(ms(&mut rng, 300, 4_500)).await;
                for other in &cut {
                    hit(Fault::Repair("a1".into(), (*other).into()), &[]);
                }
                if let Some(proxy) = stale {
                    hit(Fault::Repair(proxy.into(), DASHBOARD.into()), &[]);
                }
            }
        }
        Plot::Twice => {
            sleep(ms(&mut rng, 0, 2_000)).await;
            hit(Fault::Crash("a1".into()), &["a1"]);
            let first = wait_epoch(&store, GroupId(1), 1, Duration::from_secs(30)).await.map_err(&fail)?;
            // Its replacement crashes once the other replica follows it.
            whole_but(&env, &store, &["a1"], Duration::from_secs(30)).await.map_err(&fail)?;
            sleep(ms(&mut rng, 0, 2_000)).await;
            let second = first.split(':').next().unwrap_or_default().to_string();
            hit(Fault::Crash(second.clone()), &[second.as_str()]);
            wait_epoch(&store, GroupId(1), 2, Duration::from_secs(30)).await.map_err(&fail)?;
            sleep(ms(&mut rng, 0, 5_000)).await;
            hit(Fault::Restart("a1".into()), &[]);
            hit(Fault::Restart(second), &[]);
        }
        Plot::Pause => {
            sleep(ms(&mut rng, 0, 2_000)).await;
            hit(Fault::Pause("a1".into()), &["a1"]);
            let paused_at = sim_ms(&env);
            sleep(ms(&mut rng, 12_000, 25_000)).await;
            hit(Fault::Resume("a1".into()), &[]);
            // Detection must not depend on a proxy's connection staying open: a reconnect to a
            // stopped process succeeds and answers nothing.
            let fenced = log
                .borrow()
                .promotions
                .iter()
                .find(|promotion| promotion.group == GroupId(1))
                .and_then(|promotion| promotion.fenced_ms);
            let bound = DOWN_AFTER + 2 * PROBE_PERIOD;
            match fenced {
                Some(fenced) if fenced.saturating_sub(paused_at) <= bound.as_millis() as u64 => {
                    info!(after_ms = fenced - paused_at, "the paused master was failed over in time");
                }
                other => {
                    return Err(fail(format!(
                        "the paused master was fenced at {other:?}, {} ms after the pause; the bound is {} ms",
                        other.map_or(u64::MAX, |fenced| fenced.saturating_sub(paused_at)),
                        bound.as_millis()
                    )));
                }
            }
        }
        Plot::Wrapper => {
            fill_hot_slot(&env).await.map_err(&fail)?;
            // The hot keys exist on the source before the slot starts to move, so writes to
            // them go through the wrapper until their turn comes.
            world.borrow_mut().hot = true;
            sleep(Duration::from_secs(1)).await;
            operator.put("slots/action/create", &[&HOT_SLOT.to_string(), "2"]).await.map_err(&fail)?;
            // Mid-migration: a thousand keys take several seconds to move one by one.
            sleep(ms(&mut rng, 1_000, 3_000)).await;
            hit(Fault::Crash("a1".into()), &["a1"]);
            sleep(ms(&mut rng, 12_000, 20_000)).await;
            hit(Fault::Restart("a1".into()), &[]);
        }
        Plot::Migration => {
            operator.put("slots/action/create-range", &["0", "127", "2"]).await.map_err(&fail)?;
            let victim = if rng.random_bool(0.5) { "a1" } else { "b1" };
            sleep(ms(&mut rng, 100, 3_000)).await;
            hit(Fault::Crash(victim.into()), &[victim]);
            sleep(ms(&mut rng, 12_000, 20_000)).await;
            hit(Fault::Restart(victim.into()), &[]);
        }
    }

    operator.settle(&store, SETTLE_WITHIN).await.map_err(&fail)?;
    whole(&env, &store, SETTLE_WITHIN).await.map_err(&fail)?;
    let groups: BTreeMap<GroupId, Group> = stored_groups(&store).into_iter().map(|group| (group.id, group)).collect();
    let epoch = |group: u32| groups.get(&GroupId(group)).map_or(0, |group| group.epoch);
    let master = |group: u32| groups.get(&GroupId(group)).and_then(Group::master).unwrap_or_default().to_string();
    let expected = match plot {
        Plot::Kill | Plot::Isolate | Plot::Pause => (epoch(1) >= 1 && master(1) != "a1:6379", "group 1 failed over"),
        Plot::Twice => (epoch(1) >= 2, "group 1 failed over twice"),
        Plot::DashboardAlone | Plot::MasterFromDashboard => {
            (epoch(1) == 0 && epoch(2) == 0, "no group failed over (no quorum agreed a master was down)")
        }
        Plot::Migration => (epoch(1) + epoch(2) >= 1, "the crashed group failed over"),
        Plot::Wrapper => (epoch(1) >= 1, "group 1 failed over"),
        Plot::Flap => (true, ""),
    };
    if !expected.0 {
        return Err(fail(format!("expected: {}; groups are {groups:?}", expected.1)));
    }
    // Clients go on a little on the final layout, then stop.
    sleep(Duration::from_secs(2)).await;
    world.borrow_mut().stop = true;
    sleep(Duration::from_secs(2)).await;
    operator.proxies_serve_the_table(&PROXIES).await.map_err(&fail)?;
    final_reads(&env, &world, seed, &PROXIES).await?;
    check_replay(&env, &world, seed, &store).await?;
    info!(lost = world.borrow().lost, acknowledged = world.borrow().acknowledged, "failover run checked");
    Ok(())
}

/// `count` key names of slot `slot`, starting with `prefix`.
fn keys_of_slot(prefix: &str, slot: usize, count: usize) -> Vec<String> {
    (0u64..)
        .map(|n| format!("{prefix}{n}"))
        .filter(|key| model::slot_of(key.as_bytes()).index() == slot)
        .take(count)
        .collect()
}

/// Fills [`HOT_SLOT`] with [`FILL_KEYS`] keys, through a proxy.
async fn fill_hot_slot(env: &SimEnv) -> Result<(), String> {
    let mut client = SimClient::new(env.clone(), &format!("{}:19000", PROXIES[0]))
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
    for keys in keys_of_slot("fill:", HOT_SLOT, FILL_KEYS).chunks(100) {
        let commands: Vec<Vec<String>> = keys.iter().map(|key| vec!["SET".into(), key.clone(), "x".into()]).collect();
        let replies = client.pipeline(&commands).await.map_err(|error| format!("filling the hot slot: {}", error.0))?;
        if let Some(bad) = replies.iter().find(|reply| **reply != Frame::ok()) {
            return Err(format!("filling the hot slot: {bad:?}"));
        }
    }
    Ok(())
}

/// `failover-wrapper`'s client: once the migration starts, appends to and increments a few keys
/// of the migrating slot, reading them back now and then, through a proxy.
async fn run_hot_client(env: SimEnv, seed: u64, world: Shared) -> HostResult {
    let sequences = keys_of_slot(&format!("{HOT}:list:"), HOT_SLOT, 4)
        .into_iter()
        .chain(keys_of_slot(&format!("{HOT}:appended:"), HOT_SLOT, 4))
        .collect::<Vec<_>>();
    let counters = keys_of_slot(&format!("{HOT}:counter:"), HOT_SLOT, 4);
    let mut worker = Worker::new(env, seed, world, HOT, PROXIES[1], "hot");
    while !worker.world.borrow().hot {
        if worker.world.borrow().stop {
            return Ok(());
        }
        sleep(Duration::from_millis(10)).await;
    }
    while !worker.world.borrow().stop {
        if worker.rng.random_bool(0.6) {
            let key = &sequences[worker.rng.random_range(0..sequences.len())];
            worker.append_or_read(key).await?;
        } else {
            let key = &counters[worker.rng.random_range(0..counters.len())];
            worker.increment_or_read(key).await?;
        }
        let pause = worker.rng.random_range(1..5);
        sleep(Duration::from_millis(pause)).await;
    }
    Ok(())
}

/// Waits until group `group`'s stored epoch reaches `epoch` with no promotion under way;
/// returns its master.
async fn wait_epoch(store: &MemoryStore, group: GroupId, epoch: u64, within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    loop {
        let found = stored_groups(store).into_iter().find(|found| found.id == group);
        if let Some(found) = &found
            && found.epoch >= epoch
            && found.promoting.state == ActionState::Nothing
        {
            return Ok(found.master().unwrap_or_default().to_string());
        }
        if Instant::now() >= deadline {
            return Err(format!("group {group} did not reach epoch {epoch} within {within:?}: {found:?}"));
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every group is whole: no promotion, its first server a master at the group's
/// epoch accepting writes, every other one following it with its link up.
async fn whole(env: &SimEnv, store: &MemoryStore, within: Duration) -> Result<(), String> {
    whole_but(env, store, &[], within).await
}

/// [`whole`], leaving out servers in `down` (crashed on purpose).
async fn whole_but(env: &SimEnv, store: &MemoryStore, down: &[&str], within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let problem = first_problem(env, store, down).await;
        let Some(problem) = problem else { return Ok(()) };
        if Instant::now() >= deadline {
            return Err(format!("the cluster is not whole {within:?} after the faults: {problem}"));
        }
        sleep(Duration::from_millis(250)).await;
    }
}

/// What keeps the cluster from being whole, if anything.
async fn first_problem(env: &SimEnv, store: &MemoryStore, down: &[&str]) -> Option<String> {
    for group in stored_groups(store) {
        if group.promoting.state != ActionState::Nothing {
            return Some(format!("group {} is being promoted", group.id));
        }
        let Some(master) = group.master().map(str::to_string) else { continue };
        for (index, server) in group.servers.iter().enumerate() {
            if down.iter().any(|host| server.addr.starts_with(&format!("{host}:"))) {
                continue;
            }
            let mut client = SimClient::new(env.clone(), &server.addr)
                .with_timeouts(Duration::from_millis(500), Duration::from_millis(500));
            let replies = client.pipeline(&[vec!["ROLE".into()], vec!["INFO".into(), "replication".into()]]).await;
            let Ok(replies) = replies else { return Some(format!("{} does not answer", server.addr)) };
            let info = match replies.get(1) {
                Some(Frame::Bulk(text)) => String::from_utf8_lossy(text).into_owned(),
                other => return Some(format!("{}: INFO replied {other:?}", server.addr)),
            };
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::to_string))
                    .unwrap_or_default()
            };
            if field("codis_epoch") != group.epoch.to_string() {
                return Some(format!(
                    "{} is at epoch {}, its group at {}",
                    server.addr,
                    field("codis_epoch"),
                    group.epoch
                ));
            }
            if index == 0 {
                if field("role") != "master" || field("codis_fenced") != "0" {
                    return Some(format!(
                        "{} (group {}'s master) is {} fenced={}",
                        server.addr,
                        group.id,
                        field("role"),
                        field("codis_fenced")
                    ));
                }
            } else {
                let follows = format!("{}:{}", field("master_host"), field("master_port"));
                if field("role") != "slave" || follows != master || field("master_link_status") != "up" {
                    return Some(format!(
                        "{} (group {}) is {} following {follows} (link {}), not {master}",
                        server.addr,
                        group.id,
                        field("role"),
                        field("master_link_status")
                    ));
                }
            }
        }
    }
    None
}
