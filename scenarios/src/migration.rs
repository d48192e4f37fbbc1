//! `migrate-*`: one slot moves from `source` to `target` with the asynchronous commands while
//! two writers read and write its keys the way Codis' proxy does in semi-async mode, and a fault
//! strikes mid-migration. After the fault heals, the driver (playing the dashboard) re-drives the
//! migration to the end, and the run checks:
//!
//! - every writer's every read matched a model of its keys, and at the end every key holds what
//!   its last acknowledged write left (or, where a server crashed after that write, possibly
//!   nothing: servers keep no files until the durability issue lands);
//! - the source holds no key of the slot (so no key exists on both sides);
//! - each preloaded key is on the target whole, or absent only where a crash lost it: no
//!   half-built big collection survives its temporary TTL (checked after that TTL has passed);
//! - `SLOTSCHECK` passes on both servers;
//! - the migration finished within a bounded simulated time after the fault healed.
//!
//! Writers route each command as Codis' proxy does for a slot migrating in semi-async mode:
//! `SLOTSMGRT-EXEC-WRAPPER key cmd…` to the source; code 2 carries the reply, code 1 (key in
//! flight) means retry shortly, code 0 (not on the source) means send the command to the target.
//!
//! Variants: `migrate-partition` (source ↔ target partitioned mid-batch, then a writer ↔ target),
//! `migrate-target-crash`, `migrate-source-crash`, and `migrate-cancel` (`SLOTSMGRT-ASYNC-CANCEL`
//! arriving at random moments during batches).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use model::{SlotId, slot_of};
use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Nemesis, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::{debug, info};

use crate::Scenario;
use crate::client::{SimClient, Unavailable};
use crate::known::Known;

/// The registry entries.
pub const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "migrate-partition",
        summary: "async slot migration with semi-async writers; source/target link partitioned mid-batch",
        run: run_partition,
    },
    Scenario {
        name: "migrate-target-crash",
        summary: "async slot migration with semi-async writers; the target crashes mid-batch and restarts",
        run: run_target_crash,
    },
    Scenario {
        name: "migrate-source-crash",
        summary: "async slot migration with semi-async writers; the source crashes mid-batch and restarts",
        run: run_source_crash,
    },
    Scenario {
        name: "migrate-cancel",
        summary: "async slot migration with semi-async writers; SLOTSMGRT-ASYNC-CANCEL arrives mid-batch",
        run: run_cancel,
    },
    Scenario {
        name: "migrate-sync-partition",
        summary: "sync slot migration with sync-routing writers; source/target link partitioned mid-migration",
        run: run_sync_partition,
    },
    Scenario {
        name: "migrate-sync-target-crash",
        summary: "sync slot migration with sync-routing writers; the target crashes mid-migration and restarts",
        run: run_sync_target_crash,
    },
];

fn run_partition(seed: u64) -> Outcome {
    run(seed, Variant::Partition, Method::SemiAsync)
}

fn run_target_crash(seed: u64) -> Outcome {
    run(seed, Variant::TargetCrash, Method::SemiAsync)
}

fn run_source_crash(seed: u64) -> Outcome {
    run(seed, Variant::SourceCrash, Method::SemiAsync)
}

fn run_cancel(seed: u64) -> Outcome {
    run(seed, Variant::Cancel, Method::SemiAsync)
}

fn run_sync_partition(seed: u64) -> Outcome {
    run(seed, Variant::Partition, Method::Sync)
}

fn run_sync_target_crash(seed: u64) -> Outcome {
    run(seed, Variant::TargetCrash, Method::Sync)
}

/// How the slot moves and how writers route, as Codis' two `forward_method`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// The driver moves one key (and its tag) at a time with `SLOTSMGRTTAGSLOT`; writers move
    /// their key with `SLOTSMGRTTAGONE` and then send the command to the target.
    Sync,
    /// The driver moves batches with `SLOTSMGRTTAGSLOT-ASYNC`; writers go through
    /// `SLOTSMGRT-EXEC-WRAPPER`.
    SemiAsync,
}

/// Which fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Partition,
    TargetCrash,
    SourceCrash,
    Cancel,
}

const SOURCE: &str = "source";
const TARGET: &str = "target";
const WRITERS: [&str; 2] = ["writer1", "writer2"];
/// The async migration's timeout (ms): batches fail after this much silence, and half-built keys
/// on the target live three times this long.
const TIMEOUT_MS: u64 = 1_000;
/// Small keys preloaded into the slot, and big collections (sent in chunks of `MAXBULKS`).
const SMALL_KEYS: usize = 400;
const BIG_HASHES: usize = 4;
const BIG_FIELDS: usize = 600;
const MAXBULKS: usize = 40;
/// The fault strikes after this many batches have completed.
const FAULT_AFTER_BATCHES: u32 = 4;
/// How long writers go on after the fault healed, at least.
const SETTLE: Duration = Duration::from_millis(700);
/// How long the migration may take once the fault has healed.
const FINISH_WITHIN: Duration = Duration::from_secs(20);

/// What the clients share: the driver's progress, for the writers and the nemesis.
#[derive(Debug, Default)]
struct Progress {
    /// The preload is done; writers may start.
    loaded: bool,
    /// Batches that completed.
    batches: u32,
    /// The fault has been applied and healed.
    healed: bool,
    /// When the fault healed.
    healed_at: Option<Instant>,
    /// Crashes applied so far, with when (writers mark their keys as possibly lost).
    crashes: Vec<Instant>,
    /// The migration is over: writers finish.
    migrated: bool,
    /// Writers that completed their final check.
    writers_done: usize,
    /// Batches the driver saw interrupted by a cancel.
    canceled: u32,
    /// The source has reported the slot empty at least once.
    emptied: bool,
}

type Shared = Rc<RefCell<Progress>>;

fn violation(who: &str, what: String) -> Box<dyn std::error::Error> {
    format!("{who}: {what}").into()
}

/// The slot that migrates, and `count` key names in it built from `prefix`.
fn slot() -> SlotId {
    slot_of(b"{mig}")
}

fn keys_in_slot(prefix: &str, count: usize) -> Vec<String> {
    let slot = slot();
    (0u64..)
        .map(|index| format!("{prefix}:{index}"))
        .filter(|key| slot_of(key.as_bytes()) == slot)
        .take(count)
        .collect()
}

fn big_hash(index: usize) -> String {
    keys_in_slot(&format!("big{index}"), 1).remove(0)
}

/// Runs one variant with `seed`.
fn run(seed: u64, variant: Variant, method: Method) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(90);
    let mut harness = Harness::new(config);
    for host in [SOURCE, TARGET] {
        harness.host(host, |env| async move {
            let config = ServerConfig { bind: "0.0.0.0".into(), port: 6379, ..ServerConfig::default() };
            let (bound, _) = tokio::sync::oneshot::channel();
            server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
            Ok(())
        });
    }
    let progress: Shared = Rc::new(RefCell::new(Progress::default()));
    let nemesis = harness.nemesis();
    {
        let progress = progress.clone();
        harness.client("driver", move |env| driver(env, progress, variant, method));
    }
    {
        let progress = progress.clone();
        harness.client("nemesis", move |env| faults(env, progress, nemesis, variant));
    }
    for (index, writer) in WRITERS.into_iter().enumerate() {
        let progress = progress.clone();
        harness.client(writer, move |env| write_and_check(env, writer, index, progress, method));
    }
    harness.run()
}

// ------------------------------------------------------------------------------------------
// The nemesis.

/// Applies the variant's fault once enough batches have completed, at a random moment (so it
/// lands inside a batch), and heals it.
async fn faults(env: SimEnv, progress: Shared, nemesis: Nemesis, variant: Variant) -> HostResult {
    let mut rng = env.rng("nemesis");
    while progress.borrow().batches < FAULT_AFTER_BATCHES {
        sleep(Duration::from_millis(1)).await;
    }
    sleep(Duration::from_millis(rng.random_range(0..=6))).await;
    let ms = |millis: u64| Duration::from_millis(millis);
    match variant {
        Variant::Partition => {
            info!("nemesis: partition source <-> target");
            nemesis.inject(Fault::Partition(SOURCE.into(), TARGET.into()));
            sleep(ms(rng.random_range(1_500..=2_500))).await;
            nemesis.inject(Fault::Repair(SOURCE.into(), TARGET.into()));
            sleep(ms(rng.random_range(50..=300))).await;
            info!("nemesis: partition writer1 <-> target");
            nemesis.inject(Fault::Partition(WRITERS[0].into(), TARGET.into()));
            sleep(ms(rng.random_range(300..=800))).await;
            nemesis.inject(Fault::Repair(WRITERS[0].into(), TARGET.into()));
        }
        Variant::TargetCrash | Variant::SourceCrash => {
            let host = if variant == Variant::TargetCrash { TARGET } else { SOURCE };
            info!(host, "nemesis: crash");
            nemesis.inject(Fault::Crash(host.into()));
            progress.borrow_mut().crashes.push(Instant::now());
            sleep(ms(rng.random_range(500..=1_500))).await;
            info!(host, "nemesis: restart");
            nemesis.inject(Fault::Restart(host.into()));
        }
        Variant::Cancel => {
            // Cancel only while a batch is in flight (STATUS says `used`), until three batches
            // were interrupted that way.
            let mut client = SimClient::new(env.clone(), "source:6379");
            let started = Instant::now();
            while progress.borrow().canceled < 3 && !progress.borrow().emptied {
                if started.elapsed() > Duration::from_secs(30) {
                    return Err(violation("nemesis", "the migration never ended".into()));
                }
                let status = client.call(&["SLOTSMGRT-ASYNC-STATUS"]).await;
                let in_flight = matches!(&status, Ok(Frame::Array(fields))
                    if fields.get(4) == Some(&Frame::Bulk("used".into())) && fields.get(5) == Some(&Frame::Integer(1)));
                if in_flight {
                    let reply = client.call(&["SLOTSMGRT-ASYNC-CANCEL"]).await;
                    info!(?reply, "nemesis: SLOTSMGRT-ASYNC-CANCEL");
                }
                sleep(ms(rng.random_range(1..=10))).await;
            }
        }
    }
    let mut progress = progress.borrow_mut();
    progress.healed = true;
    progress.healed_at = Some(Instant::now());
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The driver.

/// Preloads the slot, migrates it batch by batch until the source reports it empty after the
/// fault healed, then checks the end state once the writers are done.
async fn driver(env: SimEnv, progress: Shared, variant: Variant, method: Method) -> HostResult {
    let mut rng = env.rng("driver");
    let mut source = SimClient::new(env.clone(), "source:6379");
    let mut target = SimClient::new(env.clone(), "target:6379");
    preload(&mut source).await?;
    progress.borrow_mut().loaded = true;
    let slot = u32::from(slot()).to_string();
    let timeout = TIMEOUT_MS.to_string();
    let maxbulks = MAXBULKS.to_string();
    let mut errors = 0u32;
    loop {
        let healed_at = progress.borrow().healed_at;
        if let Some(healed_at) = healed_at
            && healed_at.elapsed() > FINISH_WITHIN
        {
            return Err(violation(
                "driver",
                format!("the migration did not finish within {FINISH_WITHIN:?} of healing"),
            ));
        }
        let reply = match method {
            Method::SemiAsync => {
                source
                    .call_with_timeout(
                        &["SLOTSMGRTTAGSLOT-ASYNC", "target", "6379", &timeout, &maxbulks, "4096", &slot, "20"],
                        Duration::from_millis(TIMEOUT_MS * 3),
                    )
                    .await
            }
            // Codis' default synchronous timeout; a big hash takes one round trip.
            Method::Sync => {
                source
                    .call_with_timeout(&["SLOTSMGRTTAGSLOT", "target", "6379", "100", &slot], Duration::from_secs(1))
                    .await
            }
        };
        match reply {
            Ok(Frame::Array(parts)) => {
                let (Some(Frame::Integer(moved)), Some(Frame::Integer(remaining))) = (parts.first(), parts.get(1))
                else {
                    return Err(violation("driver", format!("unexpected reply {parts:?}")));
                };
                debug!(moved, remaining, "batch");
                progress.borrow_mut().batches += 1;
                progress.borrow_mut().emptied |= *remaining == 0;
                // Done once the slot is empty after the fault healed, and the writers have had a
                // while on the healed cluster (after a crash of the source, say, which comes back
                // empty).
                let settled = progress.borrow().healed_at.is_some_and(|at| at.elapsed() >= SETTLE);
                if *remaining == 0 && settled {
                    break;
                }
            }
            Ok(Frame::Error(error)) => {
                errors += 1;
                if error.ends_with(b"canceled") {
                    progress.borrow_mut().canceled += 1;
                }
                info!(error = %String::from_utf8_lossy(&error), "batch failed; driving on");
                sleep(Duration::from_millis(rng.random_range(20..=100))).await;
            }
            Ok(other) => return Err(violation("driver", format!("unexpected reply {other:?}"))),
            Err(Unavailable(reason)) => {
                errors += 1;
                debug!(reason, "no answer from the source");
                sleep(Duration::from_millis(rng.random_range(20..=100))).await;
            }
        }
        // The dashboard's pause between batches, so the writers and the fault meet a migration
        // in progress (a synchronous step moves far fewer keys).
        let pause = if method == Method::Sync { 1..=8 } else { 10..=40 };
        sleep(Duration::from_millis(rng.random_range(pause))).await;
    }
    info!(errors, batches = progress.borrow().batches, "migration finished");
    if errors == 0 && variant != Variant::SourceCrash {
        return Err(violation("driver", "no batch ever failed: the fault missed the migration".into()));
    }
    if variant == Variant::Cancel && progress.borrow().canceled == 0 {
        return Err(violation("driver", "no cancel interrupted a batch".into()));
    }
    progress.borrow_mut().migrated = true;
    while progress.borrow().writers_done < WRITERS.len() {
        sleep(Duration::from_millis(10)).await;
    }
    // Past every temporary TTL a failed batch may have left on the target.
    sleep(Duration::from_millis(TIMEOUT_MS * 3 + 500)).await;
    let crashed = !progress.borrow().crashes.is_empty();
    check_end(&mut source, &mut target, crashed).await
}

async fn call(client: &mut SimClient, args: &[&str]) -> Result<Frame, Box<dyn std::error::Error>> {
    // Setup and final checks run on a healed network: an unanswered call there is a failure.
    for _ in 0..20 {
        match client.call(args).await {
            Ok(frame) => return Ok(frame),
            Err(Unavailable(reason)) => {
                debug!(reason, ?args, "retrying");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Err(violation("driver", format!("{args:?} got no answer")))
}

/// The keys writer `name` owns: half plain keys of the slot, half sharing its hash tag (they
/// migrate together).
fn writer_keys(name: &str) -> Vec<String> {
    let mut keys = keys_in_slot(name, 3);
    keys.extend((0..3).map(|key| format!("{{mig}}:{name}:{key}")));
    keys
}

/// What the driver preloads into a writer's key.
fn initial_value(key: &str) -> String {
    format!("init-{key}")
}

/// Small keys and big hashes that travel in chunks (none written afterwards), and the writers'
/// keys with their first values.
async fn preload(source: &mut SimClient) -> HostResult {
    for key in WRITERS.iter().flat_map(|writer| writer_keys(writer)) {
        call(source, &["SET", &key, &initial_value(&key)]).await?;
    }
    for key in keys_in_slot("small", SMALL_KEYS) {
        call(source, &["SET", &key, &format!("v-{key}")]).await?;
    }
    for index in 0..BIG_HASHES {
        let key = big_hash(index);
        for start in (0..BIG_FIELDS).step_by(50) {
            let mut args = vec!["HSET".to_string(), key.clone()];
            for field in start..start + 50 {
                args.extend([format!("f{field}"), format!("v{field}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            call(source, &args).await?;
        }
    }
    Ok(())
}

/// The end state: nothing of the slot left on the source; preloaded keys whole on the target
/// (or lost to a crash, never half there); `SLOTSCHECK` on both.
async fn check_end(source: &mut SimClient, target: &mut SimClient, crashed: bool) -> HostResult {
    let slot = u32::from(slot()).to_string();
    let left = call(source, &["SLOTSINFO", &slot, "1"]).await?;
    if left != Frame::Array(Vec::new()) {
        return Err(violation("driver", format!("the source still holds keys of the slot: {left:?}")));
    }
    for client in [&mut *source, &mut *target] {
        let check = call(client, &["SLOTSCHECK"]).await?;
        if check != Frame::Simple("OK".into()) {
            return Err(violation("driver", format!("SLOTSCHECK: {check:?}")));
        }
    }
    let mut lost = 0;
    for key in keys_in_slot("small", SMALL_KEYS) {
        match call(target, &["GET", &key]).await? {
            Frame::Bulk(value) if value.as_ref() == format!("v-{key}").as_bytes() => {}
            Frame::NullBulk if crashed => lost += 1,
            other => return Err(violation("driver", format!("{key} on the target: {other:?}"))),
        }
    }
    for index in 0..BIG_HASHES {
        let key = big_hash(index);
        let fields = call(target, &["HLEN", &key]).await?;
        match fields {
            Frame::Integer(0) if crashed => lost += 1,
            Frame::Integer(count) if count == BIG_FIELDS as i64 => {
                for field in [0, BIG_FIELDS / 2, BIG_FIELDS - 1] {
                    let value = call(target, &["HGET", &key, &format!("f{field}")]).await?;
                    if value != Frame::Bulk(format!("v{field}").into()) {
                        return Err(violation("driver", format!("{key} field f{field} on the target: {value:?}")));
                    }
                }
                let ttl = call(target, &["PTTL", &key]).await?;
                if ttl != Frame::Integer(-1) {
                    return Err(violation("driver", format!("{key} kept a TTL on the target: {ttl:?}")));
                }
            }
            other => {
                return Err(violation(
                    "driver",
                    format!("{key} is half-built on the target past its TTL: HLEN {other:?}"),
                ));
            }
        }
    }
    info!(lost, crashed, "end state checked");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The writers.

/// One writer: reads and writes its own keys of the slot through the semi-async routing until
/// the migration is over, then reads every key once more.
async fn write_and_check(
    env: SimEnv,
    name: &'static str,
    index: usize,
    progress: Shared,
    method: Method,
) -> HostResult {
    let mut rng = env.rng("writer");
    let mut router = Router {
        source: SimClient::new(env.clone(), "source:6379"),
        target: SimClient::new(env.clone(), "target:6379"),
        method,
    };
    let keys = writer_keys(name);
    let mut model: BTreeMap<String, Known> =
        keys.iter().map(|key| (key.clone(), Known::value(Some(initial_value(key))))).collect();
    let mut crashes_seen = 0;
    while !progress.borrow().loaded {
        sleep(Duration::from_millis(5)).await;
    }
    let (mut sequence, mut acknowledged) = (0u64, 0u64);
    let started = Instant::now();
    while !progress.borrow().migrated {
        if started.elapsed() > Duration::from_secs(80) {
            return Err(violation(name, "the migration never ended".into()));
        }
        apply_crashes(&progress, &mut crashes_seen, &mut model);
        sequence += 1;
        let key = keys[rng.random_range(0..keys.len())].clone();
        let write = rng.random_range(0..10) < 6;
        if write {
            let value = (rng.random_range(0..8) != 0).then(|| format!("{name}-{index}-{sequence}"));
            let reply = match &value {
                Some(value) => router.call(&key, &["SET", &key, value]).await,
                None => router.call(&key, &["DEL", &key]).await,
            };
            debug!(key, ?value, ?reply, "write");
            match reply {
                Ok(Frame::Simple(_) | Frame::Integer(_)) => {
                    acknowledged += 1;
                    if let Some(known) = model.get_mut(&key) {
                        known.saw(value);
                    }
                }
                Ok(other) => return Err(violation(name, format!("write of {key} replied {other:?}"))),
                Err(Unavailable(reason)) => {
                    debug!(key, reason, "write unanswered");
                    if let Some(known) = model.get_mut(&key) {
                        known.maybe_wrote(value);
                    }
                }
            }
        } else {
            let reply = router.call(&key, &["GET", &key]).await;
            debug!(key, ?reply, "read");
            if let Ok(reply) = reply {
                check_read(name, &mut model, &key, &reply)?;
            }
        }
        // A crash during the call may have lost what it acknowledged (the reply can arrive after
        // the crash), so crashes apply after the call's outcome, to it as well.
        apply_crashes(&progress, &mut crashes_seen, &mut model);
        sleep(Duration::from_millis(rng.random_range(3..=12))).await;
    }
    // The final reads, once the migration is over: every key where its last write left it.
    for key in &keys {
        let reply = loop {
            match router.call(key, &["GET", key]).await {
                Ok(reply) => break reply,
                Err(Unavailable(reason)) => {
                    debug!(reason, "final read unanswered; retrying");
                    sleep(Duration::from_millis(50)).await;
                }
            }
        };
        check_read(name, &mut model, key, &reply)?;
        let on_source = router.source.call(&["EXISTS", key]).await;
        if !matches!(on_source, Ok(Frame::Integer(0))) {
            return Err(violation(name, format!("{key} still on the source after the migration: {on_source:?}")));
        }
    }
    info!(sequence, acknowledged, "writer done");
    if acknowledged == 0 {
        return Err(violation(name, "no write was acknowledged".into()));
    }
    progress.borrow_mut().writers_done += 1;
    Ok(())
}

/// After a crash, any key may be gone (servers keep no files yet).
fn apply_crashes(progress: &Shared, seen: &mut usize, model: &mut BTreeMap<String, Known>) {
    let crashes = progress.borrow().crashes.len();
    if crashes > *seen {
        *seen = crashes;
        for known in model.values_mut() {
            known.maybe_lost();
        }
    }
}

fn check_read(name: &str, model: &mut BTreeMap<String, Known>, key: &str, reply: &Frame) -> HostResult {
    let observed = match reply {
        Frame::Bulk(value) => Some(String::from_utf8_lossy(value).into_owned()),
        Frame::NullBulk => None,
        other => return Err(violation(name, format!("GET {key} replied {other:?}"))),
    };
    let Some(known) = model.get_mut(key) else {
        return Err(violation(name, format!("GET {key}: a key the model does not know")));
    };
    if !known.allows(&observed) {
        return Err(violation(name, format!("GET {key} read {observed:?}; the model allows {known:?}")));
    }
    known.saw(observed);
    Ok(())
}

/// Routes a command as Codis' proxy does for a slot in migration.
struct Router {
    source: SimClient,
    target: SimClient,
    method: Method,
}

impl Router {
    async fn call(&mut self, key: &str, args: &[&str]) -> Result<Frame, Unavailable> {
        if self.method == Method::Sync {
            // Move the key (and its tag) first; only a completed move lets the command go on.
            let moved = self.source.call(&["SLOTSMGRTTAGONE", "target", "6379", "100", key]).await?;
            debug!(key, ?moved, "moved");
            if !matches!(moved, Frame::Integer(_)) {
                return Err(Unavailable(format!("SLOTSMGRTTAGONE replied {moved:?}")));
            }
            return self.target.call(args).await;
        }
        let mut wrapped = vec!["SLOTSMGRT-EXEC-WRAPPER", key];
        wrapped.extend_from_slice(args);
        for _ in 0..100 {
            let reply = self.source.call(&wrapped).await?;
            let Frame::Array(parts) = &reply else {
                return Err(Unavailable(format!("wrapper replied {reply:?}")));
            };
            debug!(key, code = ?parts.first(), "routed");
            match parts.first() {
                Some(Frame::Integer(2)) => {
                    return parts.get(1).cloned().ok_or_else(|| Unavailable("short reply".into()));
                }
                Some(Frame::Integer(1)) => sleep(Duration::from_millis(10)).await,
                Some(Frame::Integer(0)) => return self.target.call(args).await,
                _ => return Err(Unavailable(format!("wrapper replied {reply:?}"))),
            }
        }
        Err(Unavailable("key in flight for too long".into()))
    }
}
