//! Replication, the replica's side: following the master `REPLICAOF` names.
//!
//! A link task connects, introduces itself (`REPLCONF`), asks to continue where it stopped
//! (`PSYNC replid offset`) or for a full copy, loads the copy, then applies the master's stream
//! as the master sent it, acknowledging its offset every second. The link reconnects after
//! any failure; `REPLICAOF` with another master, or `NO ONE`, replaces or stops it.
//!
//! While it follows a master the server refuses writes from its own clients (`READONLY`) and
//! neither expires nor evicts keys itself: the master's `DEL`s do that, so both hold the same.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use net::Env;
use resp::{Connection, ConnectionError, Limits, Request};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cmd;
use crate::state::Shared;
use crate::state::{Client, State};

/// How long connecting to the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the replica acknowledges its offset.
const ACK_PERIOD: Duration = Duration::from_secs(1);
/// How long to wait before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// The master this server follows, and how the link stands.
#[derive(Clone, Debug)]
pub struct MasterLink {
    /// The master's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `connect`, `connecting`, `sync` or `connected`, as Redis' `ROLE` says.
    pub state: &'static str,
    /// The master's replication id, once known.
    pub replid: Option<String>,
    /// The stream offset applied (`slave_repl_offset`).
    pub offset: u64,
    /// When the master was last heard from (Unix ms).
    pub last_io_ms: u64,
    /// The database the master's stream is in.
    pub db: usize,
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    #[error("the master answered {0}")]
    Refused(String),
    #[error("the master went silent")]
    Timeout,
    #[error("the master's snapshot does not load: {0}")]
    Snapshot(String),
    #[error("replaced by another REPLICAOF")]
    Replaced,
}

/// Starts following `host:port` (`REPLICAOF host port`), or stops following (`None`: `NO ONE`).
pub fn follow(state: &mut State, master: Option<(String, u16)>) {
    let replication = &mut state.replication;
    replication.generation += 1;
    let following = master.is_some();
    match master {
        Some((host, port)) => {
            let known = replication.master.take().filter(|link| link.host == host && link.port == port);
            let (replid, offset, db) = known.map_or((None, 0, 0), |link| (link.replid, link.offset, link.db));
            replication.master = Some(MasterLink { host, port, state: "connect", replid, offset, last_io_ms: 0, db });
        }
        None => replication.master = None,
    }
    // A replica keeps expired keys until its master deletes them.
    for db in state.keyspace.dbs_mut() {
        db.set_lazy_expiry(!following);
    }
    if let Some(orders) = &state.replication.orders {
        let _ = orders.send(());
    }
}

/// The service that runs the link task `REPLICAOF` asks for.
pub async fn service<E: Env>(env: E, shared: Arc<Shared>, mut orders: mpsc::UnboundedReceiver<()>) {
    let mut link: Option<JoinHandle<()>> = None;
    while orders.recv().await.is_some() {
        if let Some(task) = link.take() {
            task.abort();
        }
        let target = {
            let state = shared.lock();
            state
                .replication
                .master
                .as_ref()
                .map(|master| (master.host.clone(), master.port, state.replication.generation))
        };
        if let Some((host, port, generation)) = target {
            link = Some(env.spawn(run_link(env.clone(), shared.clone(), host, port, generation)));
        }
    }
}

/// Follows the master until another `REPLICAOF` replaces this link.
async fn run_link<E: Env>(env: E, shared: Arc<Shared>, host: String, port: u16, generation: u64) {
    loop {
        let result = follow_once(&env, &shared, &host, port, generation).await;
        let Err(error) = result;
        if matches!(error, LinkError::Replaced) {
            return;
        }
        warn!(%host, port, %error, "the link to the master is down; connecting again");
        set_state(&shared, generation, "connect");
        tokio::time::sleep(RETRY).await;
    }
}

fn set_state(shared: &Shared, generation: u64, link_state: &'static str) {
    let mut state = shared.lock();
    if state.replication.generation == generation
        && let Some(master) = state.replication.master.as_mut()
    {
        master.state = link_state;
    }
}

/// One connection to the master: handshake, copy or resume, then the stream until it fails.
async fn follow_once<E: Env>(
    env: &E,
    shared: &Shared,
    host: &str,
    port: u16,
    generation: u64,
) -> Result<std::convert::Infallible, LinkError> {
    let stream = env.connect(&format!("{host}:{port}"), CONNECT_TIMEOUT).await?;
    let limits = Limits { max_bulk_len: usize::MAX, max_buffered_input: usize::MAX, ..Limits::default() };
    let mut link = Connection::new(stream, limits);
    set_state(shared, generation, "connecting");
    let (auth, my_port, resume, timeout) = {
        let state = shared.lock();
        let master = state.replication.master.as_ref().filter(|_| state.replication.generation == generation);
        let resume = master.and_then(|master| master.replid.clone().map(|replid| (replid, master.offset + 1)));
        let timeout = Duration::from_secs(state.config.repl_timeout);
        (state.config.masterauth.clone(), state.port, resume, timeout)
    };
    if !auth.is_empty() {
        expect_ok(&mut link, timeout, &["AUTH", &auth]).await?;
    }
    expect_reply(&mut link, timeout, &["PING"]).await?;
    expect_ok(&mut link, timeout, &["REPLCONF", "listening-port", &my_port.to_string()]).await?;
    expect_ok(&mut link, timeout, &["REPLCONF", "capa", "psync2"]).await?;
    let psync = match &resume {
        Some((replid, from)) => vec!["PSYNC".to_string(), replid.clone(), from.to_string()],
        None => vec!["PSYNC".to_string(), "?".into(), "-1".into()],
    };
    link.write_request(&Request::from_args(&psync));
    link.flush().await?;
    set_state(shared, generation, "sync");
    let answer = read_line(&mut link, timeout).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let mut words = answer.split_whitespace();
    match words.next() {
        Some("+FULLRESYNC") => {
            let replid = words.next().unwrap_or_default().to_string();
            let offset: u64 = words.next().and_then(|offset| offset.parse().ok()).unwrap_or(0);
            let snapshot = read_snapshot(&mut link, timeout).await?;
            let mut state = shared.lock();
            if state.replication.generation != generation {
                return Err(LinkError::Replaced);
            }
            load_copy(&mut state, &snapshot, env.unix_millis()).map_err(LinkError::Snapshot)?;
            if let Some(master) = state.replication.master.as_mut() {
                master.replid = Some(replid);
                master.offset = offset;
                // The stream after a copy starts with its own SELECT.
                master.db = 0;
            }
            info!(host, port, bytes = snapshot.len(), "full copy from the master loaded");
        }
        Some("+CONTINUE") => {
            let mut state = shared.lock();
            if let (Some(master), Some(replid)) = (state.replication.master.as_mut(), words.next()) {
                master.replid = Some(replid.to_string());
            }
            info!(host, port, "resumed the master's stream");
        }
        _ => return Err(LinkError::Refused(answer)),
    }
    set_state(shared, generation, "connected");
    apply_stream(env, shared, &mut link, generation, timeout).await
}

/// Sends `args` and expects `+OK`.
async fn expect_ok<S: net::Stream>(
    link: &mut Connection<S>,
    timeout: Duration,
    args: &[&str],
) -> Result<(), LinkError> {
    let reply = expect_reply(link, timeout, args).await?;
    if reply != b"+OK"[..] {
        return Err(LinkError::Refused(String::from_utf8_lossy(&reply).into_owned()));
    }
    Ok(())
}

/// Sends `args` and reads the reply line; an error reply (other than `-NOAUTH` to `PING`,
/// which a master with a password gives before `AUTH`) ends the link.
async fn expect_reply<S: net::Stream>(
    link: &mut Connection<S>,
    timeout: Duration,
    args: &[&str],
) -> Result<bytes::Bytes, LinkError> {
    link.write_request(&Request::from_args(args));
    link.flush().await?;
    let reply = read_line(link, timeout).await?;
    if reply.starts_with(b"-") {
        return Err(LinkError::Refused(String::from_utf8_lossy(&reply).into_owned()));
    }
    Ok(reply)
}

/// The next non-empty line (a master keeps the link alive with bare newlines while it prepares a
/// copy).
async fn read_line<S: net::Stream>(link: &mut Connection<S>, timeout: Duration) -> Result<bytes::Bytes, LinkError> {
    loop {
        let line = tokio::time::timeout(timeout, link.read_line(64 * 1024)).await.map_err(|_| LinkError::Timeout)??;
        if !line.is_empty() {
            return Ok(line);
        }
    }
}

/// The snapshot after `+FULLRESYNC`: `$<length>` and that many bytes.
async fn read_snapshot<S: net::Stream>(link: &mut Connection<S>, timeout: Duration) -> Result<bytes::Bytes, LinkError> {
    let header = read_line(link, timeout).await?;
    let len = header
        .strip_prefix(b"$")
        .and_then(|len| std::str::from_utf8(len).ok()?.parse::<usize>().ok())
        .ok_or_else(|| LinkError::Refused(format!("a snapshot header {:?}", String::from_utf8_lossy(&header))))?;
    Ok(tokio::time::timeout(timeout, link.read_exact(len)).await.map_err(|_| LinkError::Timeout)??)
}

/// Replaces the data with the master's copy. With the append-only log on, the log is rewritten
/// from the copy (it holds nothing of it otherwise), as Redis restarts its log after a sync.
fn load_copy(state: &mut State, snapshot: &[u8], now_ms: u64) -> Result<(), String> {
    for db in state.keyspace.dbs_mut() {
        db.clear();
    }
    crate::persist::load_bytes(state, snapshot, now_ms, true).map_err(|error| error.to_string())?;
    if state.aof.is_enabled()
        && !state.aof.rewrite_in_progress
        && let Err(error) = crate::aof::start_rewrite(state, now_ms)
    {
        warn!(%error, "could not rewrite the append only file after the full copy");
    }
    Ok(())
}

/// Applies the master's stream, acknowledging the offset every second and when asked.
async fn apply_stream<E: Env, S: net::Stream>(
    env: &E,
    shared: &Shared,
    link: &mut Connection<S>,
    generation: u64,
    timeout: Duration,
) -> Result<std::convert::Infallible, LinkError> {
    let mut master = Client::new(0, true);
    master.deny_blocking = true;
    master.from_master = true;
    // Bytes of a transaction whose EXEC has not arrived yet: counted into the offset only once
    // it has run, so a stream resumed after a break mid-transaction starts again at its MULTI
    // (this client, and the commands it queued, are gone by then). Redis' `reploff` does the same.
    let mut in_transaction = 0u64;
    let mut acks = tokio::time::interval(ACK_PERIOD);
    // The master pings every `repl-ping-replica-period`: silence past `timeout` means it is gone.
    let mut silent_until = tokio::time::Instant::now() + timeout;
    // The handshake may have read the stream's first bytes already.
    let mut ready = link.has_buffered_input();
    loop {
        if ready {
            ready = false;
            if let Some(offset) = apply_buffered(env, shared, link, &mut master, &mut in_transaction, generation)? {
                send_ack(link, offset).await?;
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(silent_until) => return Err(LinkError::Timeout),
            _ = acks.tick() => {
                let offset = shared.lock().replication.master.as_ref().map_or(0, |master| master.offset);
                send_ack(link, offset).await?;
            }
            read = link.read_more() => {
                if read? == 0 {
                    return Err(LinkError::Connection(ConnectionError::ClosedMidFrame));
                }
                silent_until = tokio::time::Instant::now() + timeout;
                ready = true;
            }
        }
    }
}

async fn send_ack<S: net::Stream>(link: &mut Connection<S>, offset: u64) -> Result<(), LinkError> {
    link.write_request(&Request::from_args(["REPLCONF", "ACK", &offset.to_string()]));
    Ok(link.flush().await?)
}

/// Applies every whole command buffered, as the master client (in the database the stream left
/// it in, kept across reconnections: a resumed stream carries no `SELECT` until the master
/// changes database), counting each byte into the offset once what it belongs to has been
/// applied (`in_transaction` holds the bytes of a transaction still open). Returns the offset to
/// acknowledge if the master asked (`REPLCONF GETACK`).
fn apply_buffered<E: Env, S: net::Stream>(
    env: &E,
    shared: &Shared,
    link: &mut Connection<S>,
    master: &mut Client,
    in_transaction: &mut u64,
    generation: u64,
) -> Result<Option<u64>, LinkError> {
    let mut state = shared.lock();
    if state.replication.generation != generation {
        return Err(LinkError::Replaced);
    }
    let now = env.unix_millis();
    master.db = state.replication.master.as_ref().map_or(0, |link| link.db);
    let mut out = BytesMut::new();
    let mut answer_ack = None;
    loop {
        let before = link.buffered_input_len();
        let request = link
            .try_read_request()
            .map_err(|error| LinkError::Refused(format!("a stream it cannot parse ({error})")))?;
        // Every byte consumed counts, the empty requests a decoder skips included.
        let consumed = (before - link.buffered_input_len()) as u64;
        let getack = request.as_ref().is_some_and(|request| {
            request.name().eq_ignore_ascii_case(b"REPLCONF")
                && request.arg(1).is_some_and(|option| option.eq_ignore_ascii_case(b"GETACK"))
        });
        if let Some(request) = &request
            && !getack
        {
            cmd::execute(&mut state, master, &mut out, request, now);
            out.clear();
        }
        if let Some(link_state) = state.replication.master.as_mut() {
            *in_transaction += consumed;
            if master.multi.is_none() {
                link_state.offset += std::mem::take(in_transaction);
            }
            link_state.last_io_ms = now;
            link_state.db = master.db;
            if getack {
                answer_ack = Some(link_state.offset);
            }
        }
        if request.is_none() {
            break;
        }
    }
    crate::propagate::distribute(&mut state);
    Ok(answer_ack)
}
