//! `snapshot-crash`: a writer changes keys of one `codis-server` and takes a snapshot (`SAVE`)
//! now and then, while the server crashes and restarts twice. The simulated disk keeps only what
//! was synced, and a crash may fall in the middle of writing a snapshot.
//!
//! The writer is the only client and waits for each reply, so the keyspace at each `SAVE` is
//! exactly the writes acknowledged before it. After a restart the server must hold exactly the
//! last acknowledged snapshot, or, if a `SAVE` was in flight at the crash, possibly that one:
//! never a mix, never a torn file, never nothing while a snapshot was acknowledged.

use std::collections::BTreeMap;
use std::time::Duration;

use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::sleep;
use tracing::{debug, info};

use crate::Scenario;
use crate::client::{SimClient, Unavailable};

/// The registry entry.
pub const SCENARIO: Scenario = Scenario {
    name: "snapshot-crash",
    summary: "a writer snapshots codis-server with SAVE while it crashes and restarts; the restarted server holds exactly an acknowledged snapshot",
    run,
};

const SERVER: &str = "server";
const KEYS: usize = 300;
/// Each value is this long, so a snapshot takes a while to write on the simulated disk.
const VALUE_LEN: usize = 1000;
const ROUNDS: usize = 3;

/// Runs the scenario with `seed`.
pub fn run(seed: u64) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(60);
    let mut harness = Harness::new(config);
    harness.host(SERVER, |env| async move {
        let config =
            ServerConfig { bind: "0.0.0.0".into(), port: 6379, dir: "/data".into(), ..ServerConfig::default() };
        let (bound, _) = tokio::sync::oneshot::channel();
        server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
        Ok(())
    });
    harness.client("writer", writer);
    let ms = Duration::from_millis;
    harness
        .at(ms(2_000), Fault::Crash(SERVER.into()))
        .at(ms(2_500), Fault::Restart(SERVER.into()))
        .at(ms(5_000), Fault::Crash(SERVER.into()))
        .at(ms(5_500), Fault::Restart(SERVER.into()));
    harness.run()
}

type Snapshot = BTreeMap<String, String>;

/// Writes, saves, and after each crash checks what came back.
async fn writer(env: SimEnv) -> HostResult {
    let mut rng = env.rng("writer");
    let mut client = SimClient::new(env.clone(), "server:6379");
    let keys: Vec<String> = (0..KEYS).map(|index| format!("key:{index}")).collect();
    // What the server holds (acknowledged writes), the last acknowledged snapshot, and the
    // snapshot of a SAVE whose answer never came.
    let mut current: Snapshot = Snapshot::new();
    let mut saved: Snapshot = Snapshot::new();
    let mut in_flight: Option<Snapshot> = None;
    let mut sequence = 0u64;
    let mut restarts_seen = 0usize;
    let mut run_id = wait_up(&mut client).await;
    // A write whose answer never came, if any: it may or may not have happened.
    let mut uncertain: Option<(String, String)> = None;
    while restarts_seen < ROUNDS - 1 {
        // First: has the server restarted? Then it must hold an acknowledged snapshot.
        let now = wait_up(&mut client).await;
        if now != run_id {
            run_id = now;
            restarts_seen += 1;
            let found = read_all(&mut client, &keys).await?;
            let matches_saved = found == saved;
            let matches_in_flight = in_flight.as_ref().is_some_and(|snapshot| *snapshot == found);
            if !matches_saved && !matches_in_flight {
                let differing: Vec<&String> =
                    keys.iter().filter(|key| found.get(*key) != saved.get(*key)).take(5).collect();
                return Err(format!(
                    "after restart {restarts_seen}: {} keys, the last acknowledged snapshot has {} (keys differing: {differing:?}); a SAVE in flight: {}",
                    found.len(),
                    saved.len(),
                    in_flight.is_some()
                )
                .into());
            }
            info!(restarts_seen, keys = found.len(), matches_saved, "the restarted server holds a snapshot");
            if !matches_saved {
                saved = found.clone();
            }
            current = found;
            in_flight = None;
            uncertain = None;
        } else if let Some((key, value)) = uncertain.take() {
            // No restart: learn whether the unanswered write happened.
            match client.call(&["GET", key.as_str()]).await {
                Ok(Frame::Bulk(found)) if found == value.as_bytes() => {
                    current.insert(key, value);
                }
                Ok(Frame::Bulk(_) | Frame::NullBulk) => {}
                _ => {
                    uncertain = Some((key, value));
                    continue;
                }
            }
        }
        // A few writes, then sometimes a snapshot.
        let mut answered = true;
        for _ in 0..rng.random_range(1..=20) {
            sequence += 1;
            let key = keys[rng.random_range(0..keys.len())].clone();
            let value = format!("{sequence:0width$}", width = VALUE_LEN);
            match client.call(&["SET", key.as_str(), value.as_str()]).await {
                Ok(Frame::Simple(ok)) if ok == "OK" => {
                    current.insert(key, value);
                }
                Ok(other) => return Err(format!("SET replied {other:?}").into()),
                Err(Unavailable(reason)) => {
                    debug!(reason, "write unanswered");
                    uncertain = Some((key, value));
                    answered = false;
                    break;
                }
            }
        }
        if answered && rng.random_range(0..3) == 0 {
            match client.call(&["SAVE"]).await {
                Ok(Frame::Simple(ok)) if ok == "OK" => {
                    saved = current.clone();
                    in_flight = None;
                }
                Ok(other) => return Err(format!("SAVE replied {other:?}").into()),
                Err(Unavailable(reason)) => {
                    debug!(reason, "SAVE unanswered");
                    in_flight = Some(current.clone());
                }
            }
        }
        sleep(Duration::from_millis(rng.random_range(5..=40))).await;
    }
    Ok(())
}

/// The server's `run_id` once it answers (a new one means it restarted).
pub(crate) async fn wait_up(client: &mut SimClient) -> String {
    loop {
        if let Some(id) = run_id_if_up(client).await {
            return id;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

async fn run_id_if_up(client: &mut SimClient) -> Option<String> {
    match client.call(&["INFO", "server"]).await {
        Ok(Frame::Bulk(text)) => {
            String::from_utf8_lossy(&text).lines().find_map(|line| line.strip_prefix("run_id:").map(str::to_string))
        }
        _ => None,
    }
}

/// Every key's value in one `MGET` (one instant), retrying until the server answers.
pub(crate) async fn read_all(client: &mut SimClient, keys: &[String]) -> Result<Snapshot, Box<dyn std::error::Error>> {
    let mut args = vec!["MGET".to_string()];
    args.extend(keys.iter().cloned());
    let values = loop {
        match client.call(&args).await {
            Ok(Frame::Array(values)) if values.len() == keys.len() => break values,
            Ok(other) => return Err(format!("MGET replied {other:?}").into()),
            Err(Unavailable(_)) => sleep(Duration::from_millis(50)).await,
        }
    };
    let mut found = Snapshot::new();
    for (key, value) in keys.iter().zip(values) {
        match value {
            Frame::Bulk(value) => {
                found.insert(key.clone(), String::from_utf8_lossy(&value).into_owned());
            }
            Frame::NullBulk => {}
            other => return Err(format!("MGET gave {other:?} for {key}").into()),
        }
    }
    Ok(found)
}
