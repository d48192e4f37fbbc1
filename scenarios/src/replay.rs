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

/// Loads `logged`'s log into a fresh state, as the server does at a restart, and reads it as
/// of `now_ms` (when its master was read: a key that expired since is still compared).
async fn holdings_from_log(seed: u64, logged: &Logged, now_ms: u64) -> Result<Holdings, String> {
    let disk_env = SimEnv::new(seed, &format!("{}-log-check", logged.host), 0, false, logged.disk.clone());
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

/// Whether some key held on one side only has an expiry time at or before `ended_ms`: it may
/// have expired between the two reads (a server hides a key past its time without deleting it,
/// so the master's expired-keys count need not have moved), and the comparison must be made
/// again rather than judged.
fn expired_between_reads(one: &Holdings, other: &Holdings, ended_ms: u64) -> bool {
    let expired = |held: &Held| u64::try_from(held.expires_at_ms).is_ok_and(|at| at <= ended_ms);
    let only_in =
        |these: &Holdings, those: &Holdings| these.iter().any(|(key, held)| !those.contains_key(key) && expired(held));
    only_in(one, other) || only_in(other, one)
}

/// Checks every group: its replicas, and the logs of its servers listed in `logs`, must hold
/// exactly what its master holds. Waits up to `within` for the replicas to catch up and the
/// logs to be written; the writers must have stopped. A comparison made while the master still
/// changed (a key it expired meanwhile) is made again.
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
        let logs_here: Vec<&Logged> = logs
            .iter()
            .filter(|logged| {
                std::iter::once(&group.master)
                    .chain(&group.replicas)
                    .any(|addr| addr.split(':').next() == Some(logged.host.as_str()))
            })
            .collect();
        loop {
            match check_group(env, seed, group, &logs_here, databases).await {
                Ok(Attempt::Equal(keys)) => {
                    checked.keys += keys;
                    checked.replicas += group.replicas.len();
                    checked.logs += logs_here.len();
                    break;
                }
                Ok(Attempt::Differ(why)) => return Err(why),
                Ok(Attempt::Unsettled(why)) | Err(why) if Instant::now() >= deadline => {
                    return Err(format!("group of {}: not settled within {within:?}: {why}", group.master));
                }
                Ok(Attempt::Unsettled(_)) | Err(_) => sleep(Duration::from_millis(100)).await,
            }
        }
    }
    info!(?checked, "replicas and logs hold exactly what their masters hold");
    Ok(checked)
}

/// How one comparison of a group went.
enum Attempt {
    /// Everything holds what the master holds (this many keys).
    Equal(usize),
    /// Something differs while the master stood still: a replay went wrong.
    Differ(String),
    /// Not comparable yet (a replica behind, a log not written, the master changed meanwhile).
    Unsettled(String),
}

/// What says the master changed: its stream's offset and its expired and evicted keys (a
/// master without replicas has no stream, but still expires keys on its own).
async fn fingerprint(master: &mut SimClient) -> Option<(String, String, String)> {
    Some((
        info_field(master, "replication", "master_repl_offset").await?,
        info_field(master, "stats", "expired_keys").await?,
        info_field(master, "stats", "evicted_keys").await?,
    ))
}

/// One comparison of `group`: once its replicas have everything the master sent and its logs
/// everything written, the master's holdings (read at a moment `as_of`) against each replica's
/// and each log's loaded as of that moment.
async fn check_group(
    env: &SimEnv,
    seed: u64,
    group: &Group,
    logs: &[&Logged],
    databases: usize,
) -> Result<Attempt, String> {
    let client =
        |addr: &str| SimClient::new(env.clone(), addr).with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
    let mut master = client(&group.master);
    let Some(before) = fingerprint(&mut master).await else {
        return Ok(Attempt::Unsettled(format!("{} does not answer", group.master)));
    };
    for replica in &group.replicas {
        let mut replica_client = client(replica);
        let link = info_field(&mut replica_client, "replication", "master_link_status").await;
        let applied = info_field(&mut replica_client, "replication", "slave_repl_offset").await;
        if link.as_deref() != Some("up") || applied.as_deref() != Some(before.0.as_str()) {
            return Ok(Attempt::Unsettled(format!(
                "{replica} is behind (link {link:?}, at {applied:?} of {})",
                before.0
            )));
        }
    }
    for logged in logs {
        let addr = std::iter::once(&group.master)
            .chain(&group.replicas)
            .find(|addr| addr.split(':').next() == Some(logged.host.as_str()))
            .cloned()
            .unwrap_or_default();
        if !log_settled(&mut client(&addr)).await {
            return Ok(Attempt::Unsettled(format!("{addr}'s log is still being written")));
        }
    }
    let as_of = net::Env::unix_millis(env);
    let held = holdings(&mut master, databases).await?;
    let mut differences_found = Vec::new();
    let mut found = Vec::new();
    for replica in &group.replicas {
        let theirs = holdings(&mut client(replica), databases).await?;
        found.push(theirs.clone());
        if theirs != held {
            differences_found.push(format!(
                "replica {replica} does not hold what its master {} holds: {}",
                group.master,
                differences(&held, &theirs)
            ));
        }
    }
    for logged in logs {
        let from_log = holdings_from_log(seed, logged, as_of).await?;
        found.push(from_log.clone());
        if from_log != held {
            differences_found.push(format!(
                "{}'s append-only log, loaded, does not hold what {} (its group's master) holds: {}",
                logged.host,
                group.master,
                differences(&held, &from_log)
            ));
        }
    }
    // Judged only if the master stood still meanwhile (it may have expired a key).
    if fingerprint(&mut master).await.as_ref() != Some(&before) {
        return Ok(Attempt::Unsettled(format!("{} changed while it was compared", group.master)));
    }
    let ended = net::Env::unix_millis(env);
    if found.iter().any(|theirs| expired_between_reads(&held, theirs, ended)) {
        return Ok(Attempt::Unsettled(format!("a key of {} expired while it was compared", group.master)));
    }
    match differences_found.is_empty() {
        true => Ok(Attempt::Equal(held.len())),
        false => Ok(Attempt::Differ(differences_found.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(keys: &[(&str, i64)]) -> Holdings {
        keys.iter()
            .map(|(key, at)| ((0, key.to_string()), Held { value: "string:v".into(), expires_at_ms: *at }))
            .collect()
    }

    #[test]
    fn a_key_past_its_time_on_one_side_only_is_compared_again() {
        let master = holding(&[("a", -1), ("b", 1_000)]);
        let replica = holding(&[("a", -1)]);
        assert!(expired_between_reads(&master, &replica, 1_000));
        assert!(expired_between_reads(&replica, &master, 1_000), "either side");
    }

    #[test]
    fn a_missing_key_that_had_not_expired_is_a_difference() {
        let master = holding(&[("a", -1), ("b", 2_000)]);
        assert!(!expired_between_reads(&master, &holding(&[("a", -1)]), 1_000), "not yet expired");
        assert!(!expired_between_reads(&master, &holding(&[("b", 2_000)]), 5_000), "no expiry time");
    }
}
