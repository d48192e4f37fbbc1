//! `proxy-*`: two clients pipeline reads and writes through `codis-proxy` in front of two
//! servers while a fault strikes, and check every reply against a model of their keys:
//!
//! - each reply has the shape of its own request (`+OK` for `SET`, a bulk or nil for `GET`, a
//!   two-element array for `MGET`, an integer for `DEL`, `+QUEUED` and then an array of results
//!   for a transaction): a reply belonging to another request would break the shape or the
//!   model;
//! - a transaction's two keys (one slot, written only by transactions) always read equal: a
//!   transaction is applied whole or not at all, whatever fails around it;
//! - every read returns what the model allows: the last acknowledged write, or one of the writes
//!   whose outcome is unknown (an error, a timeout: it may land late) and not yet seen, or
//!   nothing after a server crashed (servers keep no files yet);
//! - after the fault heals, a streak of pipelines succeeds, with no restart of anything.
//!
//! Variants: `proxy-backend-crash` (a server crashes and returns), `proxy-partition` (the proxy
//! loses a server for a while), `proxy-restart` (the proxy crashes and restarts with the same
//! slot table), `proxy-refill` (slots migrate from one server to the other while clients
//! pipeline: the table changes under them twice, and a driver moves the keys).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use model::{ForwardMethod, Slot, SlotId, slot_of};
use net::Env;
use net::rand::Rng as _;
use proxy::{Proxy, ProxyConfig};
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::{debug, info};

use crate::Scenario;
use crate::client::{SimClient, Unavailable};
use crate::known::Known;

/// The registry entries.
pub const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "proxy-backend-crash",
        summary: "pipelining clients through the proxy; a backend crashes and returns",
        run: run_backend_crash,
    },
    Scenario {
        name: "proxy-partition",
        summary: "pipelining clients through the proxy; the proxy loses a backend for a while",
        run: run_partition,
    },
    Scenario {
        name: "proxy-restart",
        summary: "pipelining clients through the proxy; the proxy crashes and restarts",
        run: run_restart,
    },
    Scenario {
        name: "proxy-refill",
        summary: "pipelining clients through the proxy; slots migrate between backends under them",
        run: run_refill,
    },
];

fn run_backend_crash(seed: u64) -> Outcome {
    run(seed, Variant::BackendCrash)
}

fn run_partition(seed: u64) -> Outcome {
    run(seed, Variant::Partition)
}

fn run_restart(seed: u64) -> Outcome {
    run(seed, Variant::ProxyRestart)
}

fn run_refill(seed: u64) -> Outcome {
    run(seed, Variant::Refill)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    BackendCrash,
    Partition,
    ProxyRestart,
    Refill,
}

const SERVERS: [&str; 2] = ["s1", "s2"];
const PROXY: &str = "proxy";
const CLIENTS: [&str; 2] = ["client1", "client2"];
/// Slots that migrate from s1 to s2 in `proxy-refill`.
const MOVING: std::ops::Range<u32> = 0..64;
/// Faults strike here and heal by here.
const FAULT_AT: Duration = Duration::from_millis(1_500);
const HEAL_BY: Duration = Duration::from_millis(3_500);
/// Clients run at least this long, then until a streak of good pipelines.
const ACTIVE_FOR: Duration = Duration::from_secs(6);
const HEALTHY_STREAK: u32 = 25;
const RECOVER_BY: Duration = Duration::from_secs(20);

/// Slots below 512 on s1, the rest on s2.
fn initial_table() -> Vec<Slot> {
    (0..1024u32)
        .map(|id| Slot {
            id: SlotId::new(id).unwrap_or_default(),
            backend_addr: format!("{}:6379", SERVERS[usize::from(id >= 512)]),
            ..Slot::default()
        })
        .collect()
}

/// What the clients and the nemesis share with the proxy host.
#[derive(Default)]
struct World {
    /// The slot table the proxy starts with (the dashboard's job, later).
    table: Vec<Slot>,
    /// The running proxy, for the nemesis to refill.
    proxy: Option<Arc<Proxy<SimEnv>>>,
    /// Server crashes so far (a client's keys may be gone after one).
    crashes: usize,
}

type Shared = Rc<RefCell<World>>;

fn violation(who: &str, what: String) -> Box<dyn std::error::Error> {
    format!("{who}: {what}").into()
}

fn run(seed: u64, variant: Variant) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(40);
    let mut harness = Harness::new(config);
    for server in SERVERS {
        harness.host(server, |env| async move {
            let config = ServerConfig { bind: "0.0.0.0".into(), port: 6379, ..ServerConfig::default() };
            let (bound, _) = tokio::sync::oneshot::channel();
            server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
            Ok(())
        });
    }
    let world: Shared = Rc::new(RefCell::new(World { table: initial_table(), ..World::default() }));
    {
        let world = world.clone();
        harness.host(PROXY, move |env| {
            let world = world.clone();
            async move {
                let config = ProxyConfig {
                    backend_connect_timeout: Duration::from_millis(300),
                    backend_recv_timeout: Duration::from_secs(1),
                    ..ProxyConfig::default()
                };
                let listener = env.bind("0.0.0.0:19000").await?;
                let proxy = Arc::new(Proxy::new(env.clone(), config));
                let table = world.borrow().table.clone();
                proxy.router().fill(&table).await?;
                proxy.start();
                world.borrow_mut().proxy = Some(proxy.clone());
                proxy.run(env, listener, "proxy", std::future::pending()).await?;
                Ok(())
            }
        });
    }
    for client in CLIENTS {
        let world = world.clone();
        harness.client(client, move |env| workload(env, client, world));
    }
    let nemesis = harness.nemesis();
    match variant {
        Variant::BackendCrash => {
            harness.at(FAULT_AT, Fault::Crash(SERVERS[0].into()));
            harness.at(FAULT_AT + Duration::from_millis(1_000), Fault::Restart(SERVERS[0].into()));
            let world = world.clone();
            harness.client("observer", move |_env| async move {
                sleep(FAULT_AT).await;
                world.borrow_mut().crashes += 1;
                Ok(())
            });
        }
        Variant::Partition => {
            harness.at(FAULT_AT, Fault::Partition(PROXY.into(), SERVERS[1].into()));
            harness.at(HEAL_BY, Fault::Repair(PROXY.into(), SERVERS[1].into()));
        }
        Variant::ProxyRestart => {
            harness.at(FAULT_AT, Fault::Crash(PROXY.into()));
            harness.at(FAULT_AT + Duration::from_millis(500), Fault::Restart(PROXY.into()));
        }
        Variant::Refill => {
            let world = world.clone();
            harness.client("driver", move |env| migrate_slots(env, world));
        }
    }
    drop(nemesis);
    harness.run()
}

/// `proxy-refill`: marks the moving slots as migrating (semi-async) on the proxy, empties them
/// from s1 to s2 with the async commands, then gives them to s2 alone, as the dashboard would.
async fn migrate_slots(env: SimEnv, world: Shared) -> HostResult {
    sleep(FAULT_AT).await;
    let mut rng = env.rng("driver");
    let migrating: Vec<Slot> = MOVING
        .map(|id| Slot {
            id: SlotId::new(id).unwrap_or_default(),
            backend_addr: "s2:6379".into(),
            migrate_from: "s1:6379".into(),
            forward_method: ForwardMethod::SemiAsync,
            ..Slot::default()
        })
        .collect();
    refill(&world, &migrating).await?;
    let mut source = SimClient::new(env.clone(), "s1:6379");
    for id in MOVING {
        loop {
            let reply = source
                .call_with_timeout(
                    &["SLOTSMGRTTAGSLOT-ASYNC", "s2", "6379", "1000", "0", "0", &id.to_string(), "10"],
                    Duration::from_secs(3),
                )
                .await;
            match reply {
                Ok(Frame::Array(parts)) if parts.get(1) == Some(&Frame::Integer(0)) => break,
                Ok(Frame::Array(_)) => {}
                other => {
                    debug!(?other, "batch failed; again");
                    sleep(Duration::from_millis(rng.random_range(5..=30))).await;
                }
            }
        }
    }
    let done: Vec<Slot> = MOVING
        .map(|id| Slot { id: SlotId::new(id).unwrap_or_default(), backend_addr: "s2:6379".into(), ..Slot::default() })
        .collect();
    refill(&world, &done).await?;
    info!("slots moved to s2");
    Ok(())
}

async fn refill(world: &Shared, slots: &[Slot]) -> HostResult {
    let proxy = {
        let mut world = world.borrow_mut();
        for slot in slots {
            world.table[slot.id.index()] = slot.clone();
        }
        world.proxy.clone()
    };
    if let Some(proxy) = proxy {
        proxy.router().fill(slots).await?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The clients.

/// One step of a pipeline (a request, or a transaction's requests) and what it means for the
/// model.
enum Op {
    Set(String, String),
    Get(String),
    Mget(String, String),
    Del(String),
    /// `MULTI`, `SET` of both keys (one slot) to the value, `EXEC`.
    Txn([String; 2], String),
    /// `MGET` of a transaction's two keys: only transactions write them, so they must be equal.
    MgetTxn([String; 2]),
}

impl Op {
    fn commands(&self) -> Vec<Vec<String>> {
        match self {
            Op::Set(key, value) => vec![vec!["SET".into(), key.clone(), value.clone()]],
            Op::Get(key) => vec![vec!["GET".into(), key.clone()]],
            Op::Mget(first, second) => vec![vec!["MGET".into(), first.clone(), second.clone()]],
            Op::Del(key) => vec![vec!["DEL".into(), key.clone()]],
            Op::Txn([first, second], value) => vec![
                vec!["MULTI".into()],
                vec!["SET".into(), first.clone(), value.clone()],
                vec!["SET".into(), second.clone(), value.clone()],
                vec!["EXEC".into()],
            ],
            Op::MgetTxn([first, second]) => vec![vec!["MGET".into(), first.clone(), second.clone()]],
        }
    }

    /// What a lost reply leaves the model unsure of.
    fn unknown(&self, model: &mut Model) {
        match self {
            Op::Set(key, value) => model.unknown(key, Some(value.clone())),
            Op::Del(key) => model.unknown(key, None),
            Op::Txn(keys, value) => {
                for key in keys {
                    model.unknown(key, Some(value.clone()));
                }
            }
            Op::Get(_) | Op::Mget(..) | Op::MgetTxn(_) => {}
        }
    }
}

fn bulk_value(frame: &Frame) -> Option<Option<String>> {
    match frame {
        Frame::Bulk(value) => Some(Some(String::from_utf8_lossy(value).into_owned())),
        Frame::NullBulk => Some(None),
        _ => None,
    }
}

struct Model {
    keys: BTreeMap<String, Known>,
    crashes_seen: usize,
}

impl Model {
    fn known(&mut self, who: &str, key: &str) -> Result<&mut Known, Box<dyn std::error::Error>> {
        self.keys.get_mut(key).ok_or_else(|| violation(who, format!("{key}: a key the model does not know")))
    }

    fn read(&mut self, who: &str, key: &str, observed: Option<String>) -> HostResult {
        let known = self.known(who, key)?;
        if !known.allows(&observed) {
            return Err(violation(who, format!("{key} read {observed:?}; the model allows {known:?}")));
        }
        known.saw(observed);
        Ok(())
    }

    fn unknown(&mut self, key: &str, possible: Option<String>) {
        if let Some(known) = self.keys.get_mut(key) {
            known.maybe_wrote(possible);
        }
    }

    fn apply_crashes(&mut self, crashes: usize) {
        if crashes > self.crashes_seen {
            self.crashes_seen = crashes;
            for known in self.keys.values_mut() {
                known.maybe_lost();
            }
        }
    }

    /// Checks `replies` (one per command of `op`) against it; an error reply leaves writes
    /// unknown. Returns whether every reply was a success.
    fn apply(&mut self, who: &str, op: &Op, replies: &[Frame]) -> Result<bool, Box<dyn std::error::Error>> {
        let wrong = || violation(who, format!("{:?} got another request's reply: {replies:?}", op.commands()));
        if let Op::Txn(keys, value) = op {
            // MULTI and the queued SETs are answered by the proxy itself; EXEC tells.
            let [multi, first, second, exec] = replies else { return Err(wrong()) };
            let queued = Frame::Simple("QUEUED".into());
            if *multi != Frame::Simple("OK".into()) || *first != queued || *second != queued {
                return Err(wrong());
            }
            match exec {
                Frame::Array(results) if results.iter().all(|result| *result == Frame::Simple("OK".into())) => {
                    if results.len() != 2 {
                        return Err(wrong());
                    }
                    for key in keys {
                        self.known(who, key)?.saw(Some(value.clone()));
                    }
                    return Ok(true);
                }
                Frame::Error(text) if text.starts_with(b"ERR handle") || text.starts_with(b"TRYAGAIN") => {
                    op.unknown(self);
                    return Ok(false);
                }
                _ => return Err(wrong()),
            }
        }
        let [reply] = replies else { return Err(wrong()) };
        if let Frame::Error(text) = reply {
            let text = String::from_utf8_lossy(text);
            if !text.starts_with("ERR handle") {
                return Err(violation(who, format!("{:?} got an unexpected error: {text}", op.commands())));
            }
            op.unknown(self);
            return Ok(false);
        }
        match op {
            Op::Txn(..) => {}
            Op::MgetTxn([first, second]) => {
                let Frame::Array(values) = reply else { return Err(wrong()) };
                let [a, b] = values.as_slice() else { return Err(wrong()) };
                let (a, b) = (bulk_value(a).ok_or_else(wrong)?, bulk_value(b).ok_or_else(wrong)?);
                if a != b {
                    return Err(violation(
                        who,
                        format!("a transaction was half applied: {first} = {a:?}, {second} = {b:?}"),
                    ));
                }
                self.read(who, first, a)?;
                self.read(who, second, b)?;
            }
            Op::Set(key, value) => {
                if *reply != Frame::Simple("OK".into()) {
                    return Err(wrong());
                }
                self.known(who, key)?.saw(Some(value.clone()));
            }
            Op::Del(key) => {
                let Frame::Integer(count) = reply else { return Err(wrong()) };
                let existed = Some(*count == 1).filter(|_| *count <= 1).ok_or_else(wrong)?;
                let known = self.known(who, key)?;
                if !known.could_be(|value| value.is_some() == existed) {
                    return Err(violation(who, format!("DEL {key} said {count}; the model allows {known:?}")));
                }
                known.saw(None);
            }
            Op::Get(key) => {
                let observed = bulk_value(reply).ok_or_else(wrong)?;
                self.read(who, key, observed)?;
            }
            Op::Mget(first, second) => {
                let Frame::Array(values) = reply else { return Err(wrong()) };
                let [a, b] = values.as_slice() else { return Err(wrong()) };
                let (a, b) = (bulk_value(a).ok_or_else(wrong)?, bulk_value(b).ok_or_else(wrong)?);
                self.read(who, first, a)?;
                if first != second {
                    self.read(who, second, b)?;
                }
            }
        }
        Ok(true)
    }
}

async fn workload(env: SimEnv, name: &'static str, world: Shared) -> HostResult {
    let mut rng = env.rng("workload");
    let mut client = SimClient::new(env.clone(), "proxy:19000");
    // Keys spread over both servers, some in the slots that migrate.
    let mut keys: Vec<String> = (0..6).map(|index| format!("{name}:k{index}")).collect();
    keys.extend(
        (0u64..)
            .map(|index| format!("{name}:m{index}"))
            .filter(|key| MOVING.contains(&u32::from(slot_of(key.as_bytes()))))
            .take(3),
    );
    // Two keys of one slot that only transactions write: a tag in the slots that migrate, so
    // `proxy-refill` runs transactions against a migrating slot too.
    let tag = (0u64..)
        .map(|index| format!("{{{name}:t{index}}}"))
        .find(|tag| MOVING.contains(&u32::from(slot_of(tag.as_bytes()))))
        .unwrap_or_default();
    let txn_keys = [format!("{tag}a"), format!("{tag}b")];
    let mut model = Model {
        keys: keys.iter().chain(&txn_keys).map(|key| (key.clone(), Known::value(None))).collect(),
        crashes_seen: 0,
    };
    let started = Instant::now();
    let (mut streak, mut failures, mut sequence) = (0u32, 0u32, 0u64);
    while started.elapsed() < ACTIVE_FOR || streak < HEALTHY_STREAK {
        if started.elapsed() > RECOVER_BY {
            return Err(violation(name, format!("no recovery: {streak} good pipelines in a row by {RECOVER_BY:?}")));
        }
        let ops: Vec<Op> = (0..rng.random_range(1..=6))
            .map(|_| {
                sequence += 1;
                let key = keys[rng.random_range(0..keys.len())].clone();
                match rng.random_range(0..12) {
                    0..=3 => Op::Set(key, format!("{name}-{sequence}")),
                    4..=6 => Op::Get(key),
                    7..=8 => Op::Mget(key, keys[rng.random_range(0..keys.len())].clone()),
                    9 => Op::Del(key),
                    10 => Op::Txn(txn_keys.clone(), format!("{name}-{sequence}")),
                    _ => Op::MgetTxn(txn_keys.clone()),
                }
            })
            .collect();
        let commands: Vec<Vec<String>> = ops.iter().flat_map(Op::commands).collect();
        let result = client.pipeline(&commands).await;
        let crashes = world.borrow().crashes;
        match result {
            Ok(replies) => {
                let mut clean = true;
                let mut replies = replies.as_slice();
                for op in &ops {
                    let (mine, rest) = replies.split_at(op.commands().len().min(replies.len()));
                    clean &= model.apply(name, op, mine)?;
                    replies = rest;
                }
                if clean { streak += 1 } else { streak = 0 }
            }
            Err(Unavailable(reason)) => {
                debug!(reason, "pipeline unanswered");
                failures += 1;
                streak = 0;
                for op in &ops {
                    op.unknown(&mut model);
                }
                sleep(Duration::from_millis(rng.random_range(10..=50))).await;
            }
        }
        model.apply_crashes(crashes);
        sleep(Duration::from_millis(rng.random_range(1..=8))).await;
    }
    info!(sequence, failures, "done");
    Ok(())
}
