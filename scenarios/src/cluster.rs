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
use model::{GroupId, SlotMapping};
use net::rand::Rng as _;
use resp::Frame;
use sim::{Fault, Harness, HostResult, Nemesis, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::info;

use crate::client::SimClient;
use crate::product::{
    DASHBOARD, OPERATOR, Operator, Shared, World, add_coordinator, check_replay, dashboard_config, final_reads,
    proxy_config, run_client, run_dashboard, run_proxy, run_server, server_config, violation,
};
use crate::{Scenario, replay};

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

const SERVERS: [&str; 3] = ["g1", "g2", "g3"];
const PROXIES: [&str; 2] = ["p1", "p2"];
const CLIENTS: [&str; 2] = ["c1", "c2"];

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

fn run(seed: u64, faults: Faults) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(400);
    let mut harness = Harness::new(config);
    let world: Shared = Rc::new(RefCell::new(World::default()));
    let store = MemoryStore::new();
    add_coordinator(&mut harness, &store);
    // Every third seed migrates synchronously (proxies pull each key with SLOTSMGRTTAGONE).
    let method = if seed.is_multiple_of(3) { "sync" } else { "semi-async" };
    harness.host(DASHBOARD, move |env| run_dashboard(env, dashboard_config(method)));
    for server in SERVERS {
        harness.host(server, |env| run_server(env, server_config()));
        world.borrow_mut().logs.push(replay::Logged {
            host: server.into(),
            config: server_config(),
            disk: harness.disk(server),
        });
    }
    for name in PROXIES {
        harness.host(name, move |env| run_proxy(env, name, proxy_config()));
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

async fn run_operator(
    env: SimEnv,
    seed: u64,
    world: Shared,
    store: MemoryStore,
    nemesis: Nemesis,
    faults: Faults,
) -> HostResult {
    let fail = |what: String| violation(&world, seed, OPERATOR, None, what);
    let operator = Operator::new(&env);
    // The cluster: three groups of one server, two proxies, every slot online in group 1.
    for group in ["1", "2", "3"] {
        operator.put("group/create", &[group]).await.map_err(&fail)?;
    }
    operator.put("group/add", &["1", "g1:6379"]).await.map_err(&fail)?;
    for proxy in PROXIES {
        operator.put("proxy/create", &[&format!("{proxy}:11080")]).await.map_err(&fail)?;
    }
    // A fresh cluster: every slot assigned to group 1 at once (nothing to move yet).
    operator.assign_all(|_| 1).await.map_err(&fail)?;
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
    check_end(&env, &operator, &world, seed, &slots).await?;
    check_replay(&env, &world, seed, &store).await
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
    operator.proxies_serve_the_table(&PROXIES).await.map_err(&fail)?;
    // No acknowledged write lost: every key reads what the model allows, through each proxy.
    final_reads(env, world, seed, &PROXIES).await
}
