//! Replay equivalence, checked on the servers themselves: once the writes have stopped, every
//! replica, and a fresh server loaded from each server's append-only log, must hold exactly what
//! its master holds — the same keys in the same databases, the same values, the same expiry
//! times. A write applied twice wherever it is replayed (a replica, a restart) shows here even
//! when no client ever reads it, and before a failover promotes the replica that holds it.
//!
//! Values are compared by content (a string's bytes, a list in order, a hash's fields, a set's
//! members, a sorted set's members and scores), not as `DUMP` bytes: a migration target builds
//! a big collection chunk by chunk into the encoding its final size calls for, while its
//! replica replays the same elements in one command and may keep the compact encoding. The
//! data is the same; its layout in memory need not be.
//!
//! The log is loaded in the checker, into a fresh server state over the host's own simulated
//! disk, exactly as the server loads it at a restart (`server::aof::load`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use resp::{Frame, Request};
use server::ServerConfig;
use server::state::{Client, State};
use sim::{SimDisk, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::info;

use crate::client::SimClient;

/// One key as the comparison sees it: its type and content, and its absolute expiry time in
/// milliseconds (`-1`: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The content, in a canonical form.
    pub value: String,
    /// `PEXPIRETIME`.
    pub expires_at_ms: i64,
}

/// Everything a server holds, by database and key.
pub type Holdings = BTreeMap<(usize, String), Held>;

/// A server whose log the checker loads: its simulated host, its configuration (where the log
/// is), and its disk.
#[derive(Clone, Debug)]
pub struct Logged {
    /// The host's name (its address is `<host>:<port>`).
    pub host: String,
    /// The configuration it runs with.
    pub config: ServerConfig,
    /// Its disk.
    pub disk: SimDisk,
}

/// A group to check: its master and its replicas, as `host:port` addresses.
#[derive(Clone, Debug)]
pub struct Group {
    /// The master's address.
    pub master: String,
    /// Its replicas' addresses.
    pub replicas: Vec<String>,
}

/// What a check compared, for the run's trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checked {
    /// Keys held by the masters.
    pub keys: usize,
    /// Replicas compared with their masters.
    pub replicas: usize,
    /// Logs loaded and compared with their servers.
    pub logs: usize,
}

/// How a server is asked: over the network, or in the checker's own state.
trait Pipeline {
    async fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Frame>, String>;
}

impl Pipeline for SimClient {
    async fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Frame>, String> {
        SimClient::pipeline(self, commands)
            .await
            .map_err(|error| format!("{} does not answer: {}", self.addr(), error.0))
    }
}

/// A server state loaded in the checker, asked directly.
struct Loaded {
    state: State,
    client: Client,
    now_ms: u64,
}

impl Pipeline for Loaded {
    async fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Frame>, String> {
        let mut replies = Vec::with_capacity(commands.len());
        for command in commands {
            let mut out = BytesMut::new();
            let request = Request::from_args(command.iter().map(String::as_bytes));
            server::cmd::execute(&mut self.state, &mut self.client, &mut out, &request, self.now_ms);
            let reply = resp::Decoder::new(resp::Limits::default())
                .decode(&mut out)
                .map_err(|error| format!("{command:?}: an undecodable reply ({error})"))?
                .ok_or_else(|| format!("{command:?}: no reply"))?;
            replies.push(reply);
        }
        Ok(replies)
    }
}

/// Every key of every database `server` has, read in two pipelined rounds per database.
async fn holdings(server: &mut impl Pipeline, databases: usize) -> Result<Holdings, String> {
    let mut all = Holdings::new();
    for db in 0..databases {
        let listed = server.pipeline(&[vec!["SELECT".into(), db.to_string()], vec!["KEYS".into(), "*".into()]]).await?;
        let keys: Vec<String> = match listed.get(1) {
            Some(Frame::Array(keys)) => keys.iter().map(text).collect(),
            other => return Err(format!("KEYS * in db {db} replied {other:?}")),
        };
        if keys.is_empty() {
            continue;
        }
        let described: Vec<Vec<String>> = keys
            .iter()
            .flat_map(|key| [vec!["TYPE".into(), key.clone()], vec!["PEXPIRETIME".into(), key.clone()]])
            .collect();
        let described = server.pipeline(&described).await?;
        let kinds: Vec<String> = described.iter().step_by(2).map(text).collect();
        let reads: Vec<Vec<String>> = keys
            .iter()
            .zip(&kinds)
            .map(|(key, kind)| {
                let words: &[&str] = match kind.as_str() {
                    "string" => &["GET", key],
                    "list" => &["LRANGE", key, "0", "-1"],
                    "hash" => &["HGETALL", key],
                    "set" => &["SMEMBERS", key],
                    "zset" => &["ZRANGE", key, "0", "-1", "WITHSCORES"],
                    // Gone meanwhile (it expired): read as what it is now, nothing.
                    _ => &["EXISTS", key],
                };
                words.iter().map(|word| word.to_string()).collect()
            })
            .collect();
        let values = server.pipeline(&reads).await?;
        for (index, key) in keys.into_iter().enumerate() {
            let kind = &kinds[index];
            let expires_at_ms = match described.get(index * 2 + 1) {
                Some(Frame::Integer(at)) => *at,
                other => return Err(format!("PEXPIRETIME {key} replied {other:?}")),
            };
            let value = canonical(kind, &values[index]);
            all.insert((db, key), Held { value: format!("{kind}:{value}"), expires_at_ms });
        }
    }
    Ok(all)
}

/// A reply's content in one canonical text: unordered replies (a hash's fields, a set's
/// members) sorted.
fn canonical(kind: &str, reply: &Frame) -> String {
    let items: Vec<String> = match reply {
        Frame::Array(items) | Frame::Set(items) => items.iter().map(text).collect(),
        Frame::Map(pairs) => pairs.iter().flat_map(|(field, value)| [text(field), text(value)]).collect(),
        other => return text(other),
    };
    match kind {
        "hash" => {
            let mut pairs: Vec<String> = items.chunks(2).map(|pair| pair.join("=")).collect();
            pairs.sort();
            pairs.join(",")
        }
        "set" => {
            let mut members = items;
            members.sort();
            members.join(",")
        }
        _ => items.join(","),
    }
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(bytes) | Frame::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Frame::Integer(value) => value.to_string(),
        Frame::Double(value) => resp::encode::format_double(*value),
        other => format!("{other:?}"),
    }
}

/// One field of an `INFO` section, if the server answers.
async fn info_field(client: &mut SimClient, section: &str, name: &str) -> Option<String> {
    let Ok(Frame::Bulk(text)) = client.call(&["INFO", section]).await else {
        return None;
    };
    String::from_utf8_lossy(&text).lines().find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::to_string))
}

/// Whether `client`'s append-only log has everything written (nothing buffered, no rewrite
/// under way): what is on its disk is then the whole log.
async fn log_settled(client: &mut SimClient) -> bool {
    info_field(client, "persistence", "aof_buffer_length").await.as_deref() == Some("0")
        && info_field(client, "persistence", "aof_rewrite_in_progress").await.as_deref() == Some("0")
}

/// Loads `logged`'s log into a fresh state, as the server does at a restart, and reads it.
async fn holdings_from_log(env: &SimEnv, seed: u64, logged: &Logged) -> Result<Holdings, String> {
    let disk_env = SimEnv::new(seed, &format!("{}-log-check", logged.host), 0, false, logged.disk.clone());
    let now_ms = net::Env::unix_millis(env);
    let mut state = State::new(logged.config.clone(), net::rng_from_seed(seed, "log-check"), now_ms, 0);
    let loaded = server::aof::load::load(&disk_env, &mut state)
        .await
        .map_err(|error| format!("{}'s log does not load: {error}", logged.host))?;
    if loaded.is_none() {
        return Err(format!("{} has no append-only log to load", logged.host));
    }
    let databases = logged.config.databases;
    let mut loaded = Loaded { state, client: Client::new(1, true), now_ms };
    holdings(&mut loaded, databases).await
}

/// The first differences between two holdings, for a report.
fn differences(expected: &Holdings, found: &Holdings) -> String {
    let mut lines = Vec::new();
    for (key, held) in expected {
        match found.get(key) {
            None => lines.push(format!("db{} {:?}: missing (master: {held:?})", key.0, key.1)),
            Some(other) if other != held => {
                lines.push(format!("db{} {:?}: {other:?} (master: {held:?})", key.0, key.1));
            }
            Some(_) => {}
        }
    }
    for (key, held) in found {
        if !expected.contains_key(key) {
            lines.push(format!("db{} {:?}: {held:?} (master: none)", key.0, key.1));
        }
    }
    let total = lines.len();
    lines.truncate(6);
    format!("{total} keys differ: {}", lines.join("; "))
}

/// Checks every group: its replicas, and the logs of its servers listed in `logs`, must hold
/// exactly what its master holds. Waits up to `within` for the replicas to catch up and the
/// logs to be written; the writers must have stopped.
pub async fn check(
    env: &SimEnv,
    seed: u64,
    groups: &[Group],
    logs: &[Logged],
    databases: usize,
    within: Duration,
) -> Result<Checked, String> {
    let deadline = Instant::now() + within;
    let mut checked = Checked::default();
    for group in groups {
        let mut master =
            SimClient::new(env.clone(), &group.master).with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
        let logs_here: Vec<&Logged> = logs
            .iter()
            .filter(|logged| {
                std::iter::once(&group.master)
                    .chain(&group.replicas)
                    .any(|addr| addr.split(':').next() == Some(logged.host.as_str()))
            })
            .collect();
        let held = loop {
            match settled_holdings(env, &mut master, group, &logs_here, databases).await {
                Ok(Some(held)) => break held,
                Ok(None) | Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(100)).await,
                Ok(None) => {
                    return Err(format!(
                        "group of {}: replicas and logs did not settle within {within:?}",
                        group.master
                    ));
                }
                Err(error) => return Err(format!("group of {}: {error}", group.master)),
            }
        };
        for replica in &group.replicas {
            let mut client =
                SimClient::new(env.clone(), replica).with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
            let theirs = holdings(&mut client, databases).await?;
            if theirs != held {
                return Err(format!(
                    "replica {replica} does not hold what its master {} holds: {}",
                    group.master,
                    differences(&held, &theirs)
                ));
            }
            checked.replicas += 1;
        }
        for logged in &logs_here {
            let from_log = holdings_from_log(env, seed, logged).await?;
            if from_log != held {
                return Err(format!(
                    "{}'s append-only log, loaded, does not hold what {} (its group's master) holds: {}",
                    logged.host,
                    group.master,
                    differences(&held, &from_log)
                ));
            }
            checked.logs += 1;
        }
        checked.keys += held.len();
    }
    info!(?checked, "replicas and logs hold exactly what their masters hold");
    Ok(checked)
}

/// The master's holdings once its replicas have everything it sent and every log listed has
/// everything written, read while nothing moved; `None` if not settled yet.
async fn settled_holdings(
    env: &SimEnv,
    master: &mut SimClient,
    group: &Group,
    logs: &[&Logged],
    databases: usize,
) -> Result<Option<Holdings>, String> {
    let Some(sent) = info_field(master, "replication", "master_repl_offset").await else {
        return Ok(None);
    };
    for replica in &group.replicas {
        let mut client =
            SimClient::new(env.clone(), replica).with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
        let link = info_field(&mut client, "replication", "master_link_status").await;
        let applied = info_field(&mut client, "replication", "slave_repl_offset").await;
        if link.as_deref() != Some("up") || applied.as_deref() != Some(sent.as_str()) {
            return Ok(None);
        }
    }
    for logged in logs {
        let addr = std::iter::once(&group.master)
            .chain(&group.replicas)
            .find(|addr| addr.split(':').next() == Some(logged.host.as_str()))
            .cloned()
            .unwrap_or_default();
        let mut client =
            SimClient::new(env.clone(), &addr).with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
        if !log_settled(&mut client).await {
            return Ok(None);
        }
    }
    let held = holdings(master, databases).await?;
    // Judged only if nothing moved while reading (a key expired meanwhile, say).
    if info_field(master, "replication", "master_repl_offset").await.as_deref() != Some(sent.as_str()) {
        return Ok(None);
    }
    Ok(Some(held))
}
