//! `server`: two clients read and write one `codis-server` through a partition and a crash and
//! restart, and check every reply against a model of what each key must hold.
//!
//! The model, per client (each client owns its keys):
//! - a key whose last write was acknowledged holds exactly that value (or is absent, after `DEL`);
//! - a write that got no answer (partition, crash) leaves the key unknown until it is next read or
//!   written: it may or may not have happened;
//! - a restarted server has lost everything: the server keeps no files yet (persistence is its own
//!   issue), so when a new connection finds a different `run_id`, the model empties.
//!
//! Expiry runs on the simulated clock: a key set with `PX 300` is gone when read 400 ms later, and
//! keys with an expiry that nobody reads vanish anyway (the active cycle), seen through `DBSIZE`.
//!
//! The schedule, after both clients' expiry checks (about 1.5 s): 3.0 s partition
//! `server ↔ client1`, 4.5 s repair, 7.0 s crash `server`, 8.5 s restart it.

use std::collections::BTreeMap;
use std::time::Duration;

use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use server::ServerConfig;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::{debug, info};

use crate::Scenario;
use crate::client::{SimClient, Unavailable};

/// The registry entry.
pub const SCENARIO: Scenario = Scenario {
    name: "server",
    summary: "clients read and write codis-server through a partition and a crash/restart against a model; expiry on simulated time",
    run,
};

const SERVER: &str = "server";
const CLIENTS: [&str; 2] = ["client1", "client2"];
const ACTIVE_FOR: Duration = Duration::from_secs(13);
const HEALTHY_STREAK: u32 = 30;
const RECOVER_BY: Duration = Duration::from_secs(25);

/// Runs the scenario with `seed`.
pub fn run(seed: u64) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(40);
    let mut harness = Harness::new(config);
    harness.host(SERVER, |env| async move {
        let config = ServerConfig { bind: "0.0.0.0".into(), port: 6379, ..ServerConfig::default() };
        let (bound, _) = tokio::sync::oneshot::channel();
        server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
        Ok(())
    });
    for (index, client) in CLIENTS.into_iter().enumerate() {
        harness.client(client, move |env| workload(env, client, index + 1));
    }
    let ms = Duration::from_millis;
    harness
        .at(ms(3_000), Fault::Partition(SERVER.into(), CLIENTS[0].into()))
        .at(ms(4_500), Fault::Repair(SERVER.into(), CLIENTS[0].into()))
        .at(ms(7_000), Fault::Crash(SERVER.into()))
        .at(ms(8_500), Fault::Restart(SERVER.into()));
    harness.run()
}

/// What a key must hold.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// Exactly this (`None`: absent).
    Value(Option<Vec<u8>>),
    /// A write to it got no answer.
    Unknown,
}

/// One client's view of its keys and of the server it talks to.
struct Model {
    keys: BTreeMap<String, Known>,
    run_id: Option<String>,
    restarts_seen: u32,
}

fn violation(name: &str, what: String) -> Box<dyn std::error::Error> {
    format!("{name}: {what}").into()
}

async fn workload(env: SimEnv, name: &'static str, expiry_db: usize) -> HostResult {
    let mut rng = env.rng("workload");
    let mut client = SimClient::new(env, "server:6379");
    let mut model = Model { keys: BTreeMap::new(), run_id: None, restarts_seen: 0 };
    check_expiry(&mut client, name, expiry_db).await?;
    model.run_id = Some(learn_run_id(&mut client).await.map_err(|Unavailable(reason)| violation(name, reason))?);

    let started = Instant::now();
    let (mut failures, mut streak, mut sequence) = (0u32, 0u32, 0u64);
    while started.elapsed() < ACTIVE_FOR || streak < HEALTHY_STREAK {
        if started.elapsed() > RECOVER_BY {
            return Err(violation(name, format!("no recovery: {streak} consecutive successes by {RECOVER_BY:?}")));
        }
        if !client.is_connected() {
            // A new connection may reach a new incarnation of the server: find out which before
            // anything else is sent on it, so every reply is judged against the right data.
            match learn_run_id(&mut client).await {
                Ok(run_id) => {
                    if model.run_id.as_ref().is_some_and(|known| *known != run_id) {
                        info!(%run_id, "server restarted: its data is gone");
                        model.restarts_seen += 1;
                        model.keys.clear();
                    }
                    model.run_id = Some(run_id);
                }
                Err(Unavailable(reason)) => {
                    failures += 1;
                    streak = 0;
                    debug!(reason, "INFO failed");
                    // Back off: a refused connect takes no time, and retrying at once would spin.
                    sleep(Duration::from_millis(rng.random_range(10..=50))).await;
                    continue;
                }
            }
        }
        sequence += 1;
        let key = format!("{name}:k{}", rng.random_range(0..6));
        let outcome = match rng.random_range(0..10) {
            0..=3 => set(&mut client, &mut model, &key, format!("{name}-{sequence}")).await,
            4..=7 => get(&mut client, &mut model, &key, name).await?,
            8 => incr(&mut client, &mut model, &format!("{name}:counter"), name).await?,
            _ => del(&mut client, &mut model, &key, name).await?,
        };
        match outcome {
            Ok(()) => streak += 1,
            Err(Unavailable(reason)) => {
                failures += 1;
                streak = 0;
                debug!(sequence, reason, "no answer");
                sleep(Duration::from_millis(rng.random_range(10..=50))).await;
            }
        }
        sleep(Duration::from_millis(rng.random_range(2..=10))).await;
    }
    info!(failures, restarts = model.restarts_seen, "done");
    if failures == 0 {
        return Err(violation(name, "never saw a failure: the faults missed it".into()));
    }
    if model.restarts_seen == 0 {
        return Err(violation(name, "never saw the server restart".into()));
    }
    Ok(())
}

async fn learn_run_id(client: &mut SimClient) -> Result<String, Unavailable> {
    let reply = client.call(&["INFO", "server"]).await?;
    let text = match &reply {
        Frame::Bulk(text) | Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => return Err(Unavailable(format!("INFO replied {other:?}"))),
    };
    text.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .map(str::to_string)
        .ok_or_else(|| Unavailable("INFO without run_id".into()))
}

type Step = Result<(), Unavailable>;

async fn set(client: &mut SimClient, model: &mut Model, key: &str, value: String) -> Step {
    let reply = client.call(&["SET", key, value.as_str()]).await;
    debug!(key, value, ?reply, "SET");
    match reply {
        Ok(_) => {
            model.keys.insert(key.to_string(), Known::Value(Some(value.into_bytes())));
            Ok(())
        }
        Err(error) => {
            model.keys.insert(key.to_string(), Known::Unknown);
            Err(error)
        }
    }
}

async fn get(
    client: &mut SimClient,
    model: &mut Model,
    key: &str,
    name: &str,
) -> Result<Step, Box<dyn std::error::Error>> {
    let reply = client.call(&["GET", key]).await;
    debug!(key, ?reply, "GET");
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => return Ok(Err(error)),
    };
    let observed = match reply {
        Frame::Bulk(value) => Some(value.to_vec()),
        Frame::NullBulk => None,
        other => return Err(violation(name, format!("GET {key} replied {other:?}"))),
    };
    match model.keys.get(key).cloned().unwrap_or(Known::Value(None)) {
        Known::Value(expected) if expected != observed => {
            return Err(violation(name, format!("GET {key} read {observed:?}, the model holds {expected:?}")));
        }
        _ => {}
    }
    model.keys.insert(key.to_string(), Known::Value(observed));
    Ok(Ok(()))
}

async fn incr(
    client: &mut SimClient,
    model: &mut Model,
    key: &str,
    name: &str,
) -> Result<Step, Box<dyn std::error::Error>> {
    let reply = client.call(&["INCR", key]).await;
    debug!(key, ?reply, "INCR");
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            model.keys.insert(key.to_string(), Known::Unknown);
            return Ok(Err(error));
        }
    };
    let Frame::Integer(value) = reply else {
        return Err(violation(name, format!("INCR {key} replied {reply:?}")));
    };
    let expected = match model.keys.get(key).cloned().unwrap_or(Known::Value(None)) {
        Known::Value(None) => Some(1),
        Known::Value(Some(bytes)) => String::from_utf8_lossy(&bytes).parse::<i64>().ok().map(|current| current + 1),
        Known::Unknown => None,
    };
    if expected.is_some_and(|expected| expected != value) {
        return Err(violation(name, format!("INCR {key} gave {value}, the model expected {expected:?}")));
    }
    model.keys.insert(key.to_string(), Known::Value(Some(value.to_string().into_bytes())));
    Ok(Ok(()))
}

async fn del(
    client: &mut SimClient,
    model: &mut Model,
    key: &str,
    name: &str,
) -> Result<Step, Box<dyn std::error::Error>> {
    let reply = client.call(&["DEL", key]).await;
    debug!(key, ?reply, "DEL");
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            model.keys.insert(key.to_string(), Known::Unknown);
            return Ok(Err(error));
        }
    };
    let expected = match model.keys.get(key).cloned().unwrap_or(Known::Value(None)) {
        Known::Value(Some(_)) => Some(1),
        Known::Value(None) => Some(0),
        Known::Unknown => None,
    };
    match reply {
        Frame::Integer(deleted) if expected.is_none_or(|expected| expected == deleted) => {}
        other => return Err(violation(name, format!("DEL {key} replied {other:?}, the model expected {expected:?}"))),
    }
    model.keys.insert(key.to_string(), Known::Value(None));
    Ok(Ok(()))
}

/// Before any fault: a key read after its expiry is gone (lazy expiry), and volatile keys nobody
/// reads are deleted by the background cycle (`DBSIZE` of a database of only such keys drops to
/// 0), all on simulated time.
async fn check_expiry(client: &mut SimClient, name: &str, db: usize) -> HostResult {
    let unavailable =
        |Unavailable(reason)| violation(name, format!("expiry check got no answer before any fault: {reason}"));
    let expect = |reply: Frame, wanted: Frame, what: &str| {
        if reply == wanted { Ok(()) } else { Err(violation(name, format!("{what}: {reply:?}, expected {wanted:?}"))) }
    };
    let key = format!("{name}:ttl");
    client.call(&["SET", key.as_str(), "v", "PX", "300"]).await.map_err(unavailable)?;
    sleep(Duration::from_millis(400)).await;
    expect(client.call(&["GET", key.as_str()]).await.map_err(unavailable)?, Frame::NullBulk, "GET after expiry")?;

    let db = db.to_string();
    client.call(&["SELECT", db.as_str()]).await.map_err(unavailable)?;
    for index in 0..30 {
        let key = format!("{name}:volatile:{index}");
        client.call(&["SET", key.as_str(), "v", "PX", "100"]).await.map_err(unavailable)?;
    }
    expect(client.call(&["DBSIZE"]).await.map_err(unavailable)?, Frame::Integer(30), "DBSIZE before expiry")?;
    sleep(Duration::from_millis(1_000)).await;
    expect(client.call(&["DBSIZE"]).await.map_err(unavailable)?, Frame::Integer(0), "DBSIZE after the active cycle")?;
    client.call(&["SELECT", "0"]).await.map_err(unavailable)?;
    info!("expiry checks passed");
    Ok(())
}
