//! `replica-partition`: writers change a `codis-server` master while its replica (another
//! `codis-server`, following it by `replicaof`) is partitioned away twice and crashes once
//! (coming back empty: no log). Once the faults heal and the writes stop, the replica must hold
//! exactly the master's data: the same keys with the same values (compared by `DUMP`) and the
//! same expiry times, within a bounded simulated time.
//!
//! The writes mix what replication must carry faithfully: overwrites, counters, lists,
//! deletions, keys that expire on the master (which the replica learns as `DEL`s), relative
//! expiries (sent as absolute times; some still set at the comparison) and transactions. The
//! run also checks that the writes landed and that the crash cost the replica a second full copy.

use std::time::Duration;

use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::sleep;

use crate::client::SimClient;
use crate::{Scenario, replay};

/// The registry entry.
pub const SCENARIO: Scenario = Scenario {
    name: "replica-partition",
    summary: "a replica partitioned from its master twice and crashed once under writes converges to the master's exact data",
    run,
};

const MASTER: &str = "master";
const REPLICA: &str = "replica";
const WRITERS: usize = 3;
const KEYS: usize = 40;
/// The writers stop then; the faults are over before.
const WRITES_END: Duration = Duration::from_secs(14);
/// After the writes end, the replica has this long to hold the master's data.
const CONVERGE_WITHIN: Duration = Duration::from_secs(15);
/// The servers' databases (the writers use 0 and 1).
const DATABASES: usize = 16;

/// Runs the scenario with `seed`.
pub fn run(seed: u64) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(60);
    let mut harness = Harness::new(config);
    let config = |replicaof: &str| ServerConfig {
        bind: "0.0.0.0".into(),
        port: 6379,
        replicaof: replicaof.to_string(),
        repl_timeout: 3,
        repl_ping_replica_period: 1,
        ..ServerConfig::default()
    };
    // The master keeps a log, which must replay to exactly what it holds; the replica keeps
    // none, so its crash costs it a full copy.
    let master = ServerConfig { dir: "/data".into(), appendonly: true, ..config("") };
    let logged = replay::Logged { host: MASTER.into(), config: master.clone(), disk: harness.disk(MASTER) };
    for (host, config) in [(MASTER, master), (REPLICA, config("master 6379"))] {
        harness.host(host, move |env: SimEnv| {
            let config = config.clone();
            async move {
                let (bound, _) = tokio::sync::oneshot::channel();
                server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
                Ok(())
            }
        });
    }
    let mut schedule = net::rng_from_seed(seed, "schedule");
    let mut at = |from: u64, to: u64| Duration::from_millis(schedule.random_range(from..to));
    let (first, second, crash) = (at(1_000, 3_000), at(6_000, 8_000), at(10_000, 11_000));
    harness
        .at(first, Fault::Partition(MASTER.into(), REPLICA.into()))
        .at(first + at(500, 3_000), Fault::Repair(MASTER.into(), REPLICA.into()))
        .at(second, Fault::Partition(MASTER.into(), REPLICA.into()))
        .at(second + at(100, 1_000), Fault::Repair(MASTER.into(), REPLICA.into()))
        .at(crash, Fault::Crash(REPLICA.into()))
        .at(crash + at(200, 1_000), Fault::Restart(REPLICA.into()));
    harness.client("writers", move |env| checker(env, seed, logged));
    harness.run()
}

/// Runs the writers, then waits for the replica to hold the master's data.
async fn checker(env: SimEnv, seed: u64, logged: replay::Logged) -> HostResult {
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        writers.push(env.spawn(write_loop(env.clone(), writer)));
    }
    for writer in writers {
        writer.await.map_err(|error| format!("a writer failed: {error}"))??;
    }
    // Keys with an expiry die within 3 s of the last write; let the master delete them.
    sleep(Duration::from_secs(4)).await;
    let group = replay::Group { master: "master:6379".into(), replicas: vec!["replica:6379".into()] };
    let checked = replay::check(&env, seed, &[group], &[logged], DATABASES, CONVERGE_WITHIN).await?;
    if checked.keys == 0 {
        return Err("the master holds no key: the writes did not land".into());
    }
    let mut master = SimClient::new(env.clone(), "master:6379");
    let full_syncs = field_of(&mut master, "stats", "sync_full").await;
    if full_syncs.as_deref().and_then(|count| count.parse::<u64>().ok()).unwrap_or(0) < 2 {
        return Err(format!("the replica's crash should have cost a second full copy: sync_full {full_syncs:?}").into());
    }
    Ok(())
}

/// One writer: random writes to the master until [`WRITES_END`].
async fn write_loop(env: SimEnv, writer: usize) -> Result<(), String> {
    let mut rng = env.rng(&format!("writer-{writer}"));
    let mut client = SimClient::new(env.clone(), "master:6379");
    let end = tokio::time::Instant::now() + WRITES_END;
    let mut sequence = 0u64;
    let mut answered = 0u64;
    while tokio::time::Instant::now() < end {
        sequence += 1;
        let key = format!("key:{}", rng.random_range(0..KEYS));
        let value = format!("{writer}-{sequence}");
        let ttl = rng.random_range(50..3_000).to_string();
        let long_ttl = rng.random_range(60_000..600_000).to_string();
        let list = format!("list:{}", rng.random_range(0..4));
        let commands: Vec<Vec<String>> = match rng.random_range(0..14) {
            0 => vec![vec!["SET".into(), key, value]],
            1 => vec![vec!["INCR".into(), format!("counter:{}", rng.random_range(0..8))]],
            2 => vec![vec!["RPUSH".into(), format!("list:{}", rng.random_range(0..4)), value]],
            3 => vec![vec!["DEL".into(), key]],
            4 => vec![vec!["SET".into(), key, value, "PX".into(), ttl]],
            5 => vec![vec!["EXPIRE".into(), key, "2".into()]],
            6 => vec![vec!["LPOP".into(), format!("list:{}", rng.random_range(0..4))]],
            // Still set when the data is compared: expiry times must match exactly.
            7 => vec![vec!["SET".into(), format!("kept:{}", rng.random_range(0..8)), value, "PX".into(), long_ttl]],
            8 => vec![vec!["APPEND".into(), format!("log:{}", rng.random_range(0..4)), format!("{value},")]],
            // Through Codis' wrapper, as a proxy writes to a migrating slot.
            9 => vec![vec!["SLOTSMGRT-EXEC-WRAPPER".into(), list.clone(), "RPUSH".into(), list, value]],
            10 => {
                let counter = format!("counter:{}", rng.random_range(0..8));
                vec![vec!["SLOTSMGRT-EXEC-WRAPPER".into(), counter.clone(), "INCR".into(), counter]]
            }
            11 => vec![vec![
                "LMPOP".into(),
                "2".into(),
                list,
                "list:0".into(),
                "RIGHT".into(),
                "COUNT".into(),
                "2".into(),
            ]],
            // Another database, inside a transaction.
            12 => vec![
                vec!["MULTI".into()],
                vec!["SELECT".into(), "1".into()],
                vec!["RPUSH".into(), list, value],
                vec!["SELECT".into(), "0".into()],
                vec!["EXEC".into()],
            ],
            _ => vec![
                vec!["MULTI".into()],
                vec!["INCR".into(), "counter:tx".into()],
                vec!["SET".into(), key, value],
                vec!["EXEC".into()],
            ],
        };
        // Errors (a WRONGTYPE, a lost connection) are fine: the check is only that the replica
        // ends up with whatever the master holds; but some writes must land.
        if client.pipeline(&commands).await.is_ok() {
            answered += 1;
        }
        sleep(Duration::from_millis(rng.random_range(1..=15))).await;
    }
    if answered == 0 {
        return Err(format!("writer {writer}: no write was answered"));
    }
    Ok(())
}

/// One field of an `INFO` section, if the server answers.
async fn field_of(client: &mut SimClient, section: &str, name: &str) -> Option<String> {
    let Ok(Frame::Bulk(text)) = client.call(&["INFO", section]).await else {
        return None;
    };
    String::from_utf8_lossy(&text).lines().find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::to_string))
}
