//! `aof-*-crash`: writers change keys of one `codis-server` with the append-only log on while the
//! server crashes and restarts three times, at moments the seed picks. The simulated disk keeps
//! what was synced and a random prefix of the rest, so a crash may tear the log's last command,
//! or fall in the middle of a rewrite (`aof-rewrite-crash` rewrites every few hundred ms).
//!
//! After each restart the checker reads every key and holds the server to its `appendfsync`
//! promise, exactly:
//! - `always`: every acknowledged write survived;
//! - `everysec`: every write acknowledged more than [`EVERYSEC_WINDOW`] before the crash
//!   survived;
//! - `no`: nothing is promised beyond what follows;
//! - every policy: each key holds a value that was written to it and nothing older than what an
//!   earlier check found, and what survived is a prefix of the log: if a write issued at time
//!   `t` survived, so did every write acknowledged before `t` (a log never loses the middle).
//!
//! Each key has one writer, which waits for each reply, so its writes reach the log in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use server::config::FsyncPolicy;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::sleep;
use tracing::{debug, info};

use crate::client::{SimClient, Unavailable};
use crate::durability::{read_all, wait_up};
use crate::sequence::Counters;
use crate::{Scenario, replay};

/// The registry entries.
pub const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "aof-always-crash",
        summary: "writers under appendfsync always while the server crashes three times: no acknowledged write is lost",
        run: |seed| run(seed, FsyncPolicy::Always, false),
    },
    Scenario {
        name: "aof-everysec-crash",
        summary: "writers under appendfsync everysec while the server crashes three times: only writes of about the last second are lost",
        run: |seed| run(seed, FsyncPolicy::Everysec, false),
    },
    Scenario {
        name: "aof-no-crash",
        summary: "writers under appendfsync no while the server crashes three times: what survives is a prefix of the log",
        run: |seed| run(seed, FsyncPolicy::No, false),
    },
    Scenario {
        name: "aof-rewrite-crash",
        summary: "writers under appendfsync always while the log is rewritten over and over and the server crashes mid-rewrite: no acknowledged write is lost",
        run: |seed| run(seed, FsyncPolicy::Always, true),
    },
];

const SERVER: &str = "server";
const WRITERS: usize = 4;
const KEYS: usize = 64;
/// Values this long make the log grow fast enough for automatic rewrites.
const VALUE_LEN: usize = 100;
const CRASHES: usize = 3;
/// Under `everysec`, a write acknowledged this long before a crash must have survived: a second
/// between syncs, plus the time a round of writing and syncing takes.
pub const EVERYSEC_WINDOW: Duration = Duration::from_millis(1_500);

/// Runs the scenario with `seed`, the server syncing as `policy` says, rewriting its log over
/// and over if `rewrites`.
pub fn run(seed: u64, policy: FsyncPolicy, rewrites: bool) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(60);
    let mut harness = Harness::new(config);
    harness.host(SERVER, move |env| async move {
        let (bound, _) = tokio::sync::oneshot::channel();
        server::bind_and_run(env, server_config(policy, rewrites), bound, futures_util::stream::pending()).await?;
        Ok(())
    });
    // The crashes fall where the seed says: mid-sync, mid-write, mid-rewrite.
    let mut schedule = net::rng_from_seed(seed, "schedule");
    let mut crashes = Vec::new();
    let mut at = Duration::ZERO;
    for _ in 0..CRASHES {
        at += Duration::from_millis(schedule.random_range(1_500..4_000));
        crashes.push(at);
        let down = Duration::from_millis(schedule.random_range(100..800));
        harness.at(at, Fault::Crash(SERVER.into())).at(at + down, Fault::Restart(SERVER.into()));
        at += down;
    }
    let logged =
        replay::Logged { host: SERVER.into(), config: server_config(policy, rewrites), disk: harness.disk(SERVER) };
    harness.client("writers", move |env| checker(env, seed, policy, rewrites, crashes, logged));
    harness.run()
}

/// The server's settings: the log on, synced as `policy` says, rewritten by itself every few
/// tens of kilobytes if `rewrites`.
fn server_config(policy: FsyncPolicy, rewrites: bool) -> ServerConfig {
    let mut config = ServerConfig {
        bind: "0.0.0.0".into(),
        port: 6379,
        dir: "/data".into(),
        appendonly: true,
        appendfsync: policy,
        ..ServerConfig::default()
    };
    if rewrites {
        config.auto_aof_rewrite_min_size = 32 * 1024;
        config.auto_aof_rewrite_percentage = 50;
    }
    config
}

/// One write to a key.
#[derive(Clone, Debug)]
struct Write {
    value: String,
    issued_ms: u64,
    /// When its `OK` arrived; `None` while unanswered (it may or may not have happened).
    acked_ms: Option<u64>,
}

/// One key's story since the last check.
#[derive(Debug, Default)]
struct History {
    /// What the last check found (it survived a crash, so it must survive every later one).
    checked: Option<String>,
    /// The writes since, in order.
    writes: Vec<Write>,
}

/// What the writers did and the checker knows.
#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<String, History>,
    /// Bumped by the checker after each check: a writer that lost its connection waits for it.
    epoch: u64,
    /// Writers waiting for the next epoch.
    stalled: usize,
    done: bool,
}

type Shared = Arc<Mutex<Model>>;

fn lock(model: &Shared) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Watches the server's incarnations, checks each restart, and drives the writers; at the end,
/// checks that the log replays to exactly what the server holds.
async fn checker(
    env: SimEnv,
    seed: u64,
    policy: FsyncPolicy,
    rewrites: bool,
    crashes: Vec<Duration>,
    logged: replay::Logged,
) -> HostResult {
    // The crash times are simulated time since the start; the model's times are the clock's.
    let started_ms = env.unix_millis();
    let model: Shared = Arc::default();
    let keys: Vec<String> = (0..KEYS).map(|index| format!("key:{index}")).collect();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let owned: Vec<String> = keys.iter().skip(writer).step_by(WRITERS).cloned().collect();
        writers.push(env.spawn(write_loop(env.clone(), model.clone(), writer, owned)));
    }
    let rewriter = rewrites.then(|| env.spawn(rewrite_loop(env.clone(), model.clone())));
    let mixer = env.spawn(mix_loop(env.clone(), model.clone()));
    let mut client = SimClient::new(env.clone(), "server:6379");
    let mut run_id = wait_up(&mut client).await;
    let mut restarts = 0;
    while restarts < CRASHES {
        sleep(Duration::from_millis(20)).await;
        // A writer that stopped on an error would never stall: report it rather than wait.
        if let Some(index) = writers.iter().position(|writer| writer.is_finished()) {
            writers.remove(index).await.map_err(|error| format!("a writer failed: {error}"))??;
            return Err("a writer stopped before the run ended".into());
        }
        let stalled = lock(&model).stalled;
        if stalled == 0 {
            continue;
        }
        let now = wait_up(&mut client).await;
        if now == run_id {
            // A reply was late, no crash: the stalled writers go on, their writes uncertain.
            lock(&model).epoch += 1;
            continue;
        }
        run_id = now;
        let crash_ms = started_ms + u64::try_from(crashes[restarts].as_millis()).unwrap_or(u64::MAX);
        restarts += 1;
        // Let every writer notice the crash and stop before reading.
        while lock(&model).stalled < WRITERS {
            sleep(Duration::from_millis(20)).await;
        }
        let found = read_all(&mut client, &keys).await.map_err(|error| error.to_string())?;
        check(&mut lock(&model), &found, policy, crash_ms, started_ms)
            .map_err(|why| format!("after crash {restarts}: {why}"))?;
        info!(restarts, keys = found.len(), "the restarted server kept what its policy promised");
        lock(&model).epoch += 1;
    }
    lock(&model).done = true;
    for writer in writers {
        writer.await.map_err(|error| format!("a writer failed: {error}"))??;
    }
    if let Some(rewriter) = rewriter {
        rewriter.await.map_err(|error| format!("the rewriter failed: {error}"))??;
    }
    let counters = mixer.await.map_err(|error| format!("the mixer failed: {error}"))?;
    // A counter is never more than its increments (a write applied twice on a restart would
    // make it so); fewer is what the policy allows to be lost.
    let mut client = SimClient::new(env.clone(), "server:6379");
    for key in counters.keys() {
        let value = match client.call(&["GET", key]).await {
            Ok(Frame::Bulk(value)) => String::from_utf8_lossy(&value).parse().ok(),
            Ok(Frame::NullBulk) => Some(0),
            _ => None,
        };
        let value = value.ok_or_else(|| format!("the final read of counter {key} failed"))?;
        counters.check(key, value)?;
    }
    let group = replay::Group { master: "server:6379".into(), replicas: Vec::new() };
    replay::check(&env, seed, &[group], &[logged], 16, Duration::from_secs(10)).await?;
    Ok(())
}

/// Writes whose replay would show a double application (counters, appends, pops, writes
/// through Codis' wrapper, transactions) on keys of their own, which the durability check
/// leaves alone: the final checks hold the log and the counters to them. Errors (a crash) are
/// ignored. Returns the increments sent to each counter.
async fn mix_loop(env: SimEnv, model: Shared) -> Counters {
    let mut counters = Counters::default();
    let mut rng = env.rng("mixer");
    let mut client = SimClient::new(env.clone(), "server:6379");
    let mut sequence = 0u64;
    while !lock(&model).done {
        sequence += 1;
        let list = format!("mix:list:{}", rng.random_range(0..4));
        let counter = format!("mix:counter:{}", rng.random_range(0..4));
        let roll = rng.random_range(0..7);
        if matches!(roll, 0 | 4 | 6) {
            counters.sending(&counter);
        }
        let commands: Vec<Vec<String>> = match roll {
            0 => vec![vec!["INCR".into(), counter]],
            1 => vec![vec!["RPUSH".into(), list, sequence.to_string()]],
            2 => vec![vec!["APPEND".into(), "mix:appended".into(), format!("{sequence},")]],
            3 => vec![vec!["LPOP".into(), list]],
            4 => vec![vec!["SLOTSMGRT-EXEC-WRAPPER".into(), counter.clone(), "INCR".into(), counter]],
            5 => vec![vec![
                "SET".into(),
                format!("mix:ttl:{}", rng.random_range(0..4)),
                "v".into(),
                "PX".into(),
                "300".into(),
            ]],
            _ => vec![
                vec!["MULTI".into()],
                vec!["INCR".into(), counter],
                vec!["RPUSH".into(), list, sequence.to_string()],
                vec!["EXEC".into()],
            ],
        };
        let _ = client.pipeline(&commands).await;
        sleep(Duration::from_millis(rng.random_range(1..=20))).await;
    }
    counters
}

/// Holds what the restarted server holds (`found`) to the policy; on success the found values
/// become each key's history. Times are the clock's; messages show them since `started_ms`.
fn check(
    model: &mut Model,
    found: &BTreeMap<String, String>,
    policy: FsyncPolicy,
    crash_ms: u64,
    started_ms: u64,
) -> Result<(), String> {
    let at = |ms: u64| ms.saturating_sub(started_ms);
    let window = match policy {
        FsyncPolicy::Always => Some(0),
        FsyncPolicy::Everysec => Some(u64::try_from(EVERYSEC_WINDOW.as_millis()).unwrap_or(u64::MAX)),
        FsyncPolicy::No => None,
    };
    // Which write each key's value is (`None`: the value the last check found), and the
    // latest issue time among the writes that survived.
    if let Some(stranger) = found.keys().find(|key| !model.keys.contains_key(*key)) {
        return Err(format!("{stranger} holds a value though no writer ever wrote it"));
    }
    let mut survivors: BTreeMap<&String, Option<usize>> = BTreeMap::new();
    let mut latest_survivor_issued = 0;
    for (key, history) in &model.keys {
        let value = found.get(key);
        let index = if value == history.checked.as_ref() {
            None
        } else {
            let position = value.and_then(|value| history.writes.iter().position(|write| write.value == *value));
            match (position, value) {
                (Some(index), _) => Some(index),
                (None, Some(value)) => {
                    return Err(format!("{key} holds {value:?}, which is older than a checked value or never written"));
                }
                (None, None) => return Err(format!("{key} lost {:?}, which an earlier check found", history.checked)),
            }
        };
        if let Some(index) = index {
            latest_survivor_issued = latest_survivor_issued.max(history.writes[index].issued_ms);
        }
        survivors.insert(key, index);
    }
    for (key, history) in &model.keys {
        let index = survivors.get(key).copied().flatten();
        for (position, write) in history.writes.iter().enumerate() {
            let Some(acked) = write.acked_ms else { continue };
            if index.is_some_and(|index| index >= position) {
                continue;
            }
            if let Some(window) = window
                && acked + window <= crash_ms
            {
                return Err(format!(
                    "{key} lost {:?}, acknowledged at {} ms, {} ms before the crash at {} ms ({policy:?})",
                    write.value,
                    at(acked),
                    crash_ms - acked,
                    at(crash_ms)
                ));
            }
            if acked < latest_survivor_issued {
                return Err(format!(
                    "{key} lost {:?} (acknowledged at {} ms) while a write issued later, at {} ms, survived: not a prefix",
                    write.value,
                    at(acked),
                    at(latest_survivor_issued)
                ));
            }
        }
    }
    for (key, history) in model.keys.iter_mut() {
        history.checked = found.get(key).cloned();
        history.writes.clear();
    }
    Ok(())
}

/// One writer: sets its keys to fresh values, one at a time; after a failed call waits for the
/// checker.
async fn write_loop(env: SimEnv, model: Shared, writer: usize, keys: Vec<String>) -> Result<(), String> {
    let mut rng = env.rng(&format!("writer-{writer}"));
    let mut client = SimClient::new(env.clone(), "server:6379");
    let mut sequence = 0u64;
    loop {
        if lock(&model).done {
            return Ok(());
        }
        sequence += 1;
        let key = keys[rng.random_range(0..keys.len())].clone();
        let value = format!("{writer}-{sequence:0width$}", width = VALUE_LEN);
        let issued_ms = env.unix_millis();
        let index = {
            let mut model = lock(&model);
            let writes = &mut model.keys.entry(key.clone()).or_default().writes;
            writes.push(Write { value: value.clone(), issued_ms, acked_ms: None });
            writes.len() - 1
        };
        match client.call(&["SET", key.as_str(), value.as_str()]).await {
            Ok(Frame::Simple(ok)) if ok == "OK" => {
                let acked = env.unix_millis();
                if let Some(write) = lock(&model).keys.get_mut(&key).and_then(|history| history.writes.get_mut(index)) {
                    write.acked_ms = Some(acked);
                }
            }
            Ok(other) => return Err(format!("SET replied {other:?}")),
            Err(Unavailable(reason)) => {
                debug!(writer, reason, "write unanswered; waiting for the checker");
                let epoch = {
                    let mut model = lock(&model);
                    model.stalled += 1;
                    model.epoch
                };
                loop {
                    sleep(Duration::from_millis(20)).await;
                    let mut model = lock(&model);
                    if model.epoch != epoch || model.done {
                        model.stalled -= 1;
                        break;
                    }
                }
            }
        }
        sleep(Duration::from_millis(rng.random_range(0..=10))).await;
    }
}

/// Asks for a rewrite every few hundred milliseconds, so crashes fall in the middle of some.
async fn rewrite_loop(env: SimEnv, model: Shared) -> Result<(), String> {
    let mut rng = env.rng("rewriter");
    let mut client = SimClient::new(env.clone(), "server:6379");
    while !lock(&model).done {
        sleep(Duration::from_millis(rng.random_range(100..400))).await;
        match client.call(&["BGREWRITEAOF"]).await {
            Ok(Frame::Simple(_)) | Err(_) => {}
            Ok(Frame::Error(error)) if String::from_utf8_lossy(&error).contains("already in progress") => {}
            Ok(other) => return Err(format!("BGREWRITEAOF replied {other:?}")),
        }
    }
    Ok(())
}
