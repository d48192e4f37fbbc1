//! `queue`: a reliable work queue on `codis-server`'s blocking commands, through partitions.
//!
//! A producer `RPUSH`es numbered items onto `queue`. Two consumers take them with
//! `BLMOVE queue processing:<consumer> LEFT RIGHT 0.5`, record each, and acknowledge it with
//! `LREM`; a consumer that lost a reply (partitioned while blocked, or after) reconnects and
//! re-processes whatever its processing list holds, which is what the pattern is for. Each
//! consumer is partitioned from the server while blocked once, and the producer once (so the
//! consumers' blocks time out on simulated time).
//!
//! Checked at the end by an auditor that reads the queue and the processing lists:
//! - nothing acknowledged to the producer is lost: every such item was processed or is still in
//!   the queue or a processing list;
//! - nothing is invented: every item seen was pushed (acknowledged or not);
//! - an item is processed twice only if an acknowledgement of it got no answer;
//! - each consumer receives items in push order (the queue is FIFO, one producer);
//! - both consumers saw blocks time out, and were served while blocked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
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
    name: "queue",
    summary: "a BLMOVE work queue with two consumers and a producer through partitions: nothing acknowledged lost, FIFO, timeouts on simulated time",
    run,
};

const SERVER: &str = "server";
const PRODUCER: &str = "producer";
const CONSUMERS: [&str; 2] = ["consumer1", "consumer2"];
const AUDITOR: &str = "auditor";
const PRODUCE_FOR: Duration = Duration::from_secs(10);
const CONSUME_UNTIL: Duration = Duration::from_secs(13);
const AUDIT_AT: Duration = Duration::from_secs(14);
/// What a consumer's `BLMOVE` waits, and how long its client waits for that reply.
const BLOCK_SECONDS: &str = "0.5";
const BLOCK_REPLY_TIMEOUT: Duration = Duration::from_millis(1_500);

/// What every client recorded, for the auditor.
#[derive(Debug, Default)]
struct Log {
    /// Items whose `RPUSH` was acknowledged.
    acknowledged: BTreeSet<u64>,
    /// Items whose `RPUSH` got no answer: pushed or not.
    maybe_pushed: BTreeSet<u64>,
    /// How many times each item was processed.
    processed: BTreeMap<u64, u32>,
    /// Items whose `LREM` acknowledgement got no answer (these may be processed again).
    unacknowledged: BTreeSet<u64>,
    /// Per consumer: blocks that timed out, and items served after waiting.
    timeouts: BTreeMap<&'static str, u32>,
    served_after_waiting: BTreeMap<&'static str, u32>,
}

type Shared = Rc<RefCell<Log>>;

/// Runs the scenario with `seed`.
pub fn run(seed: u64) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(30);
    let mut harness = Harness::new(config);
    harness.host(SERVER, |env| async move {
        let config = ServerConfig { bind: "0.0.0.0".into(), port: 6379, ..ServerConfig::default() };
        let (bound, _) = tokio::sync::oneshot::channel();
        server::bind_and_run(env, config, bound, futures_util::stream::pending()).await?;
        Ok(())
    });
    let log = Shared::default();
    let shared = log.clone();
    harness.client(PRODUCER, move |env| produce(env, shared));
    for consumer in CONSUMERS {
        let shared = log.clone();
        harness.client(consumer, move |env| consume(env, consumer, shared));
    }
    harness.client(AUDITOR, move |env| audit(env, log));
    let ms = Duration::from_millis;
    harness
        .at(ms(2_000), Fault::Partition(SERVER.into(), CONSUMERS[0].into()))
        .at(ms(3_000), Fault::Repair(SERVER.into(), CONSUMERS[0].into()))
        .at(ms(4_500), Fault::Partition(SERVER.into(), PRODUCER.into()))
        .at(ms(5_500), Fault::Repair(SERVER.into(), PRODUCER.into()))
        .at(ms(7_000), Fault::Partition(SERVER.into(), CONSUMERS[1].into()))
        .at(ms(7_700), Fault::Repair(SERVER.into(), CONSUMERS[1].into()));
    harness.run()
}

fn violation(name: &str, what: String) -> Box<dyn std::error::Error> {
    format!("{name}: {what}").into()
}

fn item_name(item: u64) -> String {
    format!("item-{item}")
}

fn parse_item(name: &str, bytes: &[u8]) -> Result<u64, Box<dyn std::error::Error>> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.strip_prefix("item-"))
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| violation(name, format!("not an item: {:?}", String::from_utf8_lossy(bytes))))
}

async fn produce(env: SimEnv, log: Shared) -> HostResult {
    let mut rng = env.rng("producer");
    let mut client = SimClient::new(env, "server:6379");
    let started = Instant::now();
    let mut item = 0;
    sleep(Duration::from_millis(200)).await;
    while started.elapsed() < PRODUCE_FOR {
        item += 1;
        match client.call(&["RPUSH", "queue", item_name(item).as_str()]).await {
            Ok(Frame::Integer(_)) => {
                log.borrow_mut().acknowledged.insert(item);
            }
            Ok(other) => return Err(violation(PRODUCER, format!("RPUSH replied {other:?}"))),
            Err(Unavailable(reason)) => {
                debug!(item, reason, "RPUSH got no answer");
                log.borrow_mut().maybe_pushed.insert(item);
                sleep(Duration::from_millis(rng.random_range(20..=60))).await;
            }
        }
        sleep(Duration::from_millis(rng.random_range(5..=60))).await;
    }
    info!(items = item, "produced");
    Ok(())
}

/// Records that `consumer` processed `item`, and acknowledges it.
async fn process(client: &mut SimClient, consumer: &'static str, item: u64, log: &Shared) -> Result<(), Unavailable> {
    *log.borrow_mut().processed.entry(item).or_default() += 1;
    let list = format!("processing:{consumer}");
    match client.call(&["LREM", list.as_str(), "1", item_name(item).as_str()]).await {
        Ok(_) => Ok(()),
        Err(error) => {
            log.borrow_mut().unacknowledged.insert(item);
            Err(error)
        }
    }
}

/// After a lost reply: process whatever the consumer's processing list holds.
async fn recover(
    client: &mut SimClient,
    consumer: &'static str,
    log: &Shared,
) -> Result<Result<(), Unavailable>, Box<dyn std::error::Error>> {
    let list = format!("processing:{consumer}");
    let items = match client.call(&["LRANGE", list.as_str(), "0", "-1"]).await {
        Ok(Frame::Array(items)) => items,
        Ok(other) => return Err(violation(consumer, format!("LRANGE replied {other:?}"))),
        Err(error) => return Ok(Err(error)),
    };
    for item in items {
        let Frame::Bulk(bytes) = item else {
            return Err(violation(consumer, format!("LRANGE held {item:?}")));
        };
        let item = parse_item(consumer, &bytes)?;
        debug!(item, "recovered");
        if let Err(error) = process(client, consumer, item, log).await {
            return Ok(Err(error));
        }
    }
    Ok(Ok(()))
}

async fn consume(env: SimEnv, consumer: &'static str, log: Shared) -> HostResult {
    let mut rng = env.rng(consumer);
    let mut client = SimClient::new(env, "server:6379");
    let started = Instant::now();
    let processing = format!("processing:{consumer}");
    let mut last_received = 0;
    let mut must_recover = false;
    while started.elapsed() < CONSUME_UNTIL {
        if must_recover {
            match recover(&mut client, consumer, &log).await? {
                Ok(()) => must_recover = false,
                Err(Unavailable(reason)) => {
                    debug!(reason, "recovery got no answer");
                    sleep(Duration::from_millis(rng.random_range(20..=80))).await;
                    continue;
                }
            }
        }
        let asked = Instant::now();
        let reply = client
            .call_with_timeout(
                &["BLMOVE", "queue", processing.as_str(), "LEFT", "RIGHT", BLOCK_SECONDS],
                BLOCK_REPLY_TIMEOUT,
            )
            .await;
        match reply {
            Ok(Frame::Bulk(bytes)) => {
                let item = parse_item(consumer, &bytes)?;
                if item <= last_received {
                    return Err(violation(consumer, format!("received item {item} after item {last_received}")));
                }
                last_received = item;
                if asked.elapsed() >= Duration::from_millis(15) {
                    *log.borrow_mut().served_after_waiting.entry(consumer).or_default() += 1;
                }
                if process(&mut client, consumer, item, &log).await.is_err() {
                    must_recover = true;
                }
            }
            Ok(Frame::NullArray) => {
                *log.borrow_mut().timeouts.entry(consumer).or_default() += 1;
            }
            Ok(other) => return Err(violation(consumer, format!("BLMOVE replied {other:?}"))),
            Err(Unavailable(reason)) => {
                debug!(reason, "BLMOVE got no answer");
                must_recover = true;
                sleep(Duration::from_millis(rng.random_range(20..=80))).await;
            }
        }
    }
    Ok(())
}

async fn audit(env: SimEnv, log: Shared) -> HostResult {
    sleep(AUDIT_AT).await;
    let mut client = SimClient::new(env, "server:6379");
    let mut remaining = BTreeSet::new();
    let lists = ["queue".to_string(), format!("processing:{}", CONSUMERS[0]), format!("processing:{}", CONSUMERS[1])];
    for list in &lists {
        let reply = client
            .call(&["LRANGE", list.as_str(), "0", "-1"])
            .await
            .map_err(|Unavailable(reason)| violation(AUDITOR, format!("the healed server did not answer: {reason}")))?;
        let Frame::Array(items) = reply else {
            return Err(violation(AUDITOR, format!("LRANGE {list} replied {reply:?}")));
        };
        for item in items {
            let Frame::Bulk(bytes) = item else {
                return Err(violation(AUDITOR, format!("{list} held {item:?}")));
            };
            remaining.insert(parse_item(AUDITOR, &bytes)?);
        }
    }
    let log = log.borrow();
    for item in &log.acknowledged {
        if !log.processed.contains_key(item) && !remaining.contains(item) {
            return Err(violation(AUDITOR, format!("item {item} was acknowledged to the producer and is lost")));
        }
    }
    for item in log.processed.keys().chain(&remaining) {
        if !log.acknowledged.contains(item) && !log.maybe_pushed.contains(item) {
            return Err(violation(AUDITOR, format!("item {item} was never pushed")));
        }
    }
    for (item, times) in &log.processed {
        if *times > 1 && !log.unacknowledged.contains(item) {
            return Err(violation(
                AUDITOR,
                format!("item {item} processed {times} times, every acknowledgement answered"),
            ));
        }
    }
    for consumer in CONSUMERS {
        if log.timeouts.get(consumer).copied().unwrap_or(0) == 0 {
            return Err(violation(AUDITOR, format!("{consumer} never saw a block time out")));
        }
        if log.served_after_waiting.get(consumer).copied().unwrap_or(0) == 0 {
            return Err(violation(AUDITOR, format!("{consumer} was never served while blocked")));
        }
    }
    info!(
        acknowledged = log.acknowledged.len(),
        maybe = log.maybe_pushed.len(),
        processed = log.processed.len(),
        remaining = remaining.len(),
        "audit passed"
    );
    Ok(())
}
