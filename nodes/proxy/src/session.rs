//! One client connection: read a batch of pipelined requests, dispatch each to its backend
//! (they proceed in parallel across backends), then write the replies in request order with one
//! flush.
//!
//! Requests for a slot that is migrating or locked are handled in line: everything before them
//! is answered first, so no request overtakes an earlier one of the same client to the same slot.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use model::{ForwardMethod, slot_of};
use net::{Env, Stream};
use resp::{Connection, ConnectionError, Decoder, Limits, ProtocolError, Request, Version, encode};
use tokio::sync::oneshot;
use tracing::debug;

use crate::backend::{Acks, Backend, BackendConn, Reply};
use crate::commands::{self, KeyAt, Kind, UpperName};
use crate::proxy::Shared;
use crate::pubsub;
use crate::router::{InFlight, Route, Table};
use crate::stats::Recorder;
use crate::transaction::Transaction;

/// A backend reply on its way, counting its slots' requests in flight until it arrives (a
/// slot table change waits for them: see [`crate::router::Router::fill`]).
struct Tracked {
    receiver: oneshot::Receiver<Reply>,
    _in_flight: Vec<InFlight>,
}

/// A reply on its way.
enum Pending {
    /// Already known.
    Ready(Bytes),
    /// One backend reply, forwarded as it is.
    One(Tracked),
    /// `MGET` split across connections: each part's reply array holds the values of the listed
    /// positions.
    Mget { total: usize, parts: Vec<(Vec<usize>, Tracked)> },
    /// `DEL`/`UNLINK`/`EXISTS`/`TOUCH` split: the sum of the parts' integers.
    Sum(Vec<Tracked>),
    /// `MSET` split: `+OK` once every part said it.
    AllOk(Vec<Tracked>),
    /// A request for a locked or migrating slot: served when its turn comes in the replies
    /// (so after every earlier request), once the slot is not locked.
    Held(Pin<Box<dyn Future<Output = Bytes> + Send>>),
}

/// Which backend connections a client's requests use: its database and protocol.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    db: usize,
    version: Version,
}

/// A client's own state.
pub(crate) struct Client<E: Env> {
    id: u64,
    db: usize,
    pub(crate) version: Version,
    authenticated: bool,
    /// The client sent `QUIT`: its `+OK` is the last reply, and nothing pipelined after it runs
    /// (Redis stops parsing there, so a malformed request after it is never seen either).
    pub(crate) quit: bool,
    tx: Transaction<E>,
}

/// What is left to read of the client's side of the connection.
///
/// Kept apart from [`Client::quit`], which the client asks for: after `QUIT` nothing more runs,
/// while after a protocol error every request read before it still runs and is answered, in
/// order, and only then is the error written and the connection closed.
#[derive(Debug)]
pub(crate) enum Input {
    /// More requests may come.
    Open,
    /// The client closed its side, the connection failed or idled out, or the client sent more
    /// than its unprocessed input limit: what is owed is answered (if it still reads), then the
    /// connection closes.
    Ended,
    /// The bytes after the requests read so far cannot be framed: those requests run and are
    /// answered, then this error is the last reply and the connection closes, as Redis closes a
    /// client after a protocol error once its replies are written (`CLIENT_CLOSE_AFTER_REPLY`).
    Broken(ProtocolError),
}

impl Input {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Input::Open)
    }

    /// Records why a read gave no request.
    pub(crate) fn failed(&mut self, error: ConnectionError) {
        *self = match error {
            ConnectionError::Protocol(error) => {
                debug!(%error, "protocol error");
                Input::Broken(error)
            }
            error => {
                debug!(%error, "client connection ended");
                Input::Ended
            }
        };
    }

    /// What a read returned, as the next request (`None`: the input stopped here).
    pub(crate) fn take(&mut self, read: Result<Option<Request>, ConnectionError>) -> Option<Request> {
        match read {
            Ok(Some(request)) => Some(request),
            Ok(None) => {
                *self = Input::Ended;
                None
            }
            Err(error) => {
                self.failed(error);
                None
            }
        }
    }
}

impl<E: Env> Client<E> {
    fn target(&self) -> Target {
        Target { db: self.db, version: self.version }
    }
}

/// Serves one client until it leaves, `QUIT`s, idles out, or breaks the protocol.
pub(crate) async fn serve<E: Env>(shared: Arc<Shared<E>>, stream: E::Stream, id: u64) {
    let config = &shared.config;
    if !config.session_keepalive_period.is_zero()
        && let Err(error) = stream.set_keepalive(config.session_keepalive_period)
    {
        debug!(%error, "no TCP keep-alive");
    }
    let limits = Limits {
        max_bulk_len: config.session_max_bulk_len,
        max_array_len: config.session_max_array_len,
        ..Limits::default()
    };
    let mut connection = Connection::new(stream, limits);
    let mut client = Client {
        id,
        db: 0,
        version: Version::Resp2,
        authenticated: config.session_auth.is_empty(),
        quit: false,
        tx: Transaction::default(),
    };
    let idle = config.session_recv_timeout;
    let room = config.session_max_pipeline.max(1);
    let mut recorder = Recorder::default();
    let mut input = Input::Open;
    // Requests read and not yet dispatched.
    let mut batch: VecDeque<Request> = VecDeque::new();
    // Requests dispatched, in order, with when each was read.
    let mut pending: VecDeque<Owed> = VecDeque::new();
    // Slots with a held request among the pending ones: later requests to them are held too,
    // so none overtakes it.
    let mut held: Vec<usize> = Vec::new();
    loop {
        if batch.is_empty() && pending.is_empty() {
            // Nothing read and nothing owed: wait for the client, unless it is done.
            if client.quit || !input.is_open() {
                break;
            }
            let read = match tokio::time::timeout(idle, connection.read_request()).await {
                Ok(read) => read,
                Err(_) => Ok(None),
            };
            let Some(first) = input.take(read) else {
                break;
            };
            batch.push_back(first);
            read_buffered(&mut connection, &mut batch, room, &mut input);
        }
        let started = tokio::time::Instant::now();
        while let Some(request) = batch.pop_front() {
            let upper = commands::upper(request.name());
            if enters_subscribed_mode(&shared, &client, &upper, &request) {
                // Subscribed mode, until the client unsubscribes from everything.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                recorder.merge_into(&shared.stats);
                batch.push_front(request);
                match pubsub::serve(&shared, &mut connection, &mut client, &mut batch, &mut input).await {
                    pubsub::Outcome::Unsubscribed => continue,
                    pubsub::Outcome::Close => {
                        // A subscriber may be owed megabytes as it is closed (a lost link, a
                        // table change): one that never reads them does not keep its session.
                        let patience = shared.config.session_pubsub_close_timeout;
                        if tokio::time::timeout(patience, finish(&mut connection, &client, input)).await.is_err() {
                            debug!("a closed subscriber did not read what it was owed in time: dropped");
                        }
                        return;
                    }
                    pubsub::Outcome::Drop => return,
                }
            }
            let in_line = if client.tx.intercepts(upper.as_str()) {
                // Transactions are served in line, after everything before them.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                transaction(&shared, &mut client, &request, upper.as_str()).await
            } else if upper.as_str() == "SCAN" && client.authenticated {
                // One SCAN may visit many slots, one backend round trip each: in line.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                scan(&shared, &client, &request).await
            } else {
                let behind_held = !held.is_empty() && slots_of(&upper, &request).iter().any(|slot| held.contains(slot));
                let dispatched = if behind_held { Dispatch::InLine } else { dispatch(&shared, &mut client, &request) };
                let reply = match dispatched {
                    Dispatch::Now(reply) => reply,
                    Dispatch::InLine => {
                        held.extend(slots_of(&upper, &request));
                        let (shared, target) = (shared.clone(), client.target());
                        Pending::Held(Box::pin(async move { serve_in_line(&shared, target, &request).await }))
                    }
                };
                pending.push_back(Owed { name: upper, started, reply });
                if client.quit {
                    // Nothing after QUIT runs.
                    batch.clear();
                }
                continue;
            };
            write_reply(connection.write_buffer(), &mut recorder, started, &upper, &in_line);
            if client.quit {
                batch.clear();
            }
        }
        let may_read = !client.quit;
        drain_reading(&mut pending, &mut connection, &mut recorder, &mut batch, room, &mut input, may_read).await;
        if pending.is_empty() {
            held.clear();
            recorder.merge_into(&shared.stats);
        }
        if !connection.write_buffer().is_empty() && connection.flush().await.is_err() {
            return;
        }
    }
    finish(&mut connection, &client, input).await;
}

/// Whether `request` puts the client in subscribed mode: a (un)subscription outside a
/// transaction, once authenticated, while the proxy serves clients. Otherwise it is answered in
/// normal mode: a `SUBSCRIBE` or `PSUBSCRIBE` without a name with Redis' arity error, as Redis
/// answers it (rather than leaving the client subscribed to nothing), and any of them while the
/// proxy is not started or is fenced with the error every command gets then (a fenced proxy's
/// slot table may be stale: the dashboard goes on without it).
fn enters_subscribed_mode<E: Env>(
    shared: &Shared<E>,
    client: &Client<E>,
    upper: &UpperName,
    request: &Request,
) -> bool {
    let named = match upper.as_str() {
        "SUBSCRIBE" | "PSUBSCRIBE" => request.len() >= 2,
        "UNSUBSCRIBE" | "PUNSUBSCRIBE" => true,
        _ => return false,
    };
    named && client.authenticated && client.tx.is_idle() && shared.refusal().is_none()
}

/// Ends a session whose requests are all answered: after a protocol error, its reply goes last
/// (unless the client sent `QUIT` before the malformed bytes: Redis never parses past `QUIT`).
async fn finish<S: Stream>(connection: &mut Connection<S>, client: &Client<impl Env>, input: Input) {
    if let Input::Broken(error) = input
        && !client.quit
    {
        encode::write_error(connection.write_buffer(), format!("ERR {error}").as_bytes());
    }
    let _ = connection.flush().await;
}

/// A request dispatched and not yet answered.
struct Owed {
    name: UpperName,
    /// When its batch was read.
    started: tokio::time::Instant,
    reply: Pending,
}

/// Moves the requests already buffered into `batch`, up to `room`. Bytes that cannot be framed
/// stop the input (see [`Input::Broken`]); the requests before them stay in `batch`, to be run.
fn read_buffered<S: Stream>(
    connection: &mut Connection<S>,
    batch: &mut VecDeque<Request>,
    room: usize,
    input: &mut Input,
) {
    while batch.len() < room {
        match connection.try_read_request() {
            Ok(Some(request)) => batch.push_back(request),
            Ok(None) => break,
            Err(error) => {
                input.failed(ConnectionError::Protocol(error));
                break;
            }
        }
    }
}

/// Answers the pending requests in order. While the reply due next is held (its slot locked or
/// migrating) and the client may still send (`may_read`, and its input is open), reads the
/// client's next requests into `batch` and returns, so the caller dispatches them: requests to
/// other slots flow meanwhile. Returns once everything is answered, new requests were read, or
/// the input stopped (then the caller answers what is still owed without reading).
async fn drain_reading<S: Stream>(
    pending: &mut VecDeque<Owed>,
    connection: &mut Connection<S>,
    recorder: &mut Recorder,
    batch: &mut VecDeque<Request>,
    room: usize,
    input: &mut Input,
    may_read: bool,
) {
    while let Some(owed) = pending.pop_front() {
        let reply = match owed.reply {
            Pending::Held(mut serve) if may_read && input.is_open() && pending.len() < room => {
                let outcome = tokio::select! {
                    biased;
                    reply = &mut serve => Ok(reply),
                    read = connection.read_request() => Err(read),
                };
                match outcome {
                    Ok(reply) => reply,
                    Err(read) => {
                        pending.push_front(Owed { reply: Pending::Held(serve), ..owed });
                        if let Some(request) = input.take(read) {
                            batch.push_back(request);
                            read_buffered(connection, batch, room.saturating_sub(pending.len()), input);
                        }
                        return;
                    }
                }
            }
            reply => resolve(reply).await,
        };
        write_reply(connection.write_buffer(), recorder, owed.started, &owed.name, &reply);
    }
}

/// The slots a request's keys are in (slot 0 for a request without a key, as it is routed).
fn slots_of(upper: &UpperName, request: &Request) -> Vec<usize> {
    let keys = commands::routing_keys(upper.as_str(), commands::lookup_upper(upper), request);
    if keys.is_empty() {
        return vec![0];
    }
    keys.iter().map(|key| slot_of(key).index()).collect()
}

/// Appends a reply, counted for its command with the time since its batch was read.
fn write_reply(
    out: &mut BytesMut,
    recorder: &mut Recorder,
    started: tokio::time::Instant,
    name: &UpperName,
    reply: &Bytes,
) {
    let usecs = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    recorder.record(name.as_str(), usecs, reply);
    out.extend_from_slice(reply);
}

/// Answers one request by itself, waiting for its reply (a RESP3 client's commands while it is
/// subscribed).
pub(crate) async fn answer_alone<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let upper = commands::upper(request.name());
    if client.tx.intercepts(upper.as_str()) {
        return transaction(shared, client, request, upper.as_str()).await;
    }
    if upper.as_str() == "SCAN" && client.authenticated {
        return scan(shared, client, request).await;
    }
    match dispatch(shared, client, request) {
        Dispatch::Now(pending) => resolve(pending).await,
        Dispatch::InLine => serve_in_line(shared, client.target(), request).await,
    }
}

/// A request the client's transaction intercepts, once the client has authenticated.
async fn transaction<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request, upper: &str) -> Bytes {
    if !client.authenticated {
        return error("NOAUTH Authentication required.");
    }
    client.tx.handle(shared, client.db, client.version, request, upper).await
}

/// What to do with one request.
enum Dispatch {
    /// Sent (or answered): its reply is on its way.
    Now(Pending),
    /// Its slot migrates or is locked: serve it after everything before it.
    InLine,
}

pub(crate) fn error(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_error(&mut out, text.as_bytes());
    out.freeze()
}

pub(crate) fn simple(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_line(&mut out, b'+', text.as_bytes());
    out.freeze()
}

fn bulk(bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_bulk(&mut out, bytes);
    out.freeze()
}

fn ready(reply: Bytes) -> Dispatch {
    Dispatch::Now(Pending::Ready(reply))
}

/// Routes one request, or answers it here.
fn dispatch<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Dispatch {
    let name = request.name();
    let upper = commands::upper(name);
    match upper.as_str() {
        "QUIT" => {
            client.quit = true;
            return ready(simple("OK"));
        }
        "AUTH" => return ready(auth(shared, client, request)),
        "HELLO" => return ready(hello(shared, client, request)),
        _ if !client.authenticated => return ready(error("NOAUTH Authentication required.")),
        "SUBSCRIBE" | "PSUBSCRIBE" if request.len() < 2 => {
            let name = upper.as_str().to_ascii_lowercase();
            return ready(error(&format!("ERR wrong number of arguments for '{name}' command")));
        }
        "SELECT" => return ready(select(shared, client, request)),
        "ECHO" if request.len() == 2 => return ready(bulk(request.arg(1).unwrap_or_default())),
        "PING" if request.len() == 1 => return ready(simple("PONG")),
        "INFO" if request.len() == 1 => return ready(info(shared)),
        "SLOTSMAPPING" => return ready(slots_mapping(shared, request)),
        "PING" | "INFO" | "SLOTSINFO" if request.len() >= 2 => {
            // Codis' forms: the first argument names a backend.
            let addr = String::from_utf8_lossy(request.arg(1).unwrap_or_default()).into_owned();
            let Some(backend) = shared.router.pool().find(&addr) else {
                return ready(error(&format!("ERR backend server '{addr}' not found")));
            };
            let forwarded = Request::from_args(std::iter::once(name).chain(request.args().skip(2)));
            let receiver = backend.conn(client.db, 0, client.version).send(forwarded.wire().clone());
            return Dispatch::Now(Pending::One(Tracked { receiver, _in_flight: Vec::new() }));
        }
        _ => {}
    }
    if let Some(refusal) = shared.refusal() {
        return ready(error(refusal));
    }
    let info = commands::lookup_upper(&upper);
    if info.kind == Kind::NotAllowed {
        let name = commands::upper_name(name);
        return ready(error(&format!("ERR handle request, command '{name}' is not allowed")));
    }
    let keys_from = |first: usize, step: usize| request.args().skip(first).step_by(step).collect::<Vec<&[u8]>>();
    match upper.as_str() {
        "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" if request.len() > 2 => {
            return split(shared, client, request, upper.as_str(), info.kind, &keys_from(1, 1));
        }
        "MSET" if request.len() > 3 && request.len() % 2 == 1 => {
            return split(shared, client, request, upper.as_str(), info.kind, &keys_from(1, 2));
        }
        // Atomic over its keys, so it cannot be split: one slot only.
        "MSETNX" if keys_from(1, 2).windows(2).any(|pair| slot_of(pair[0]) != slot_of(pair[1])) => {
            return ready(error("CROSSSLOT Keys in request don't hash to the same slot"));
        }
        _ => {}
    }
    let key = info.key.position().and_then(|at| request.arg(at)).unwrap_or_default();
    let slot = slot_of(key).index();
    // Counted before the table is read: a table change either sees this request in flight, or
    // this request sees the slot held.
    let in_flight = shared.router.track(slot);
    let table = shared.router.table();
    let route = &table[slot];
    if route.slot.locked || route.migrate_from.is_some() {
        return Dispatch::InLine;
    }
    match &route.backend {
        Some(backend) => {
            // Reads may go to a replica that is up (as in Codis, replicas may lag: such reads
            // can miss the latest writes).
            let replica = if info.kind.replica_ok() { route.replica(client.id as usize) } else { None };
            let target = replica.unwrap_or(backend);
            // A replica cannot `WAIT`: reads sent there are as fresh as it is (`replica_groups`).
            let acks = if replica.is_some() { None } else { write_acks(shared, route, info.kind) };
            let receiver = target.conn(client.db, slot, client.version).send_acked(request.wire().clone(), acks);
            Dispatch::Now(Pending::One(Tracked { receiver, _in_flight: vec![in_flight] }))
        }
        None => ready(error("ERR handle request, slot is not ready, may be offline")),
    }
}

fn auth<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let expected = &shared.config.session_auth;
    if request.len() != 2 {
        return error("ERR wrong number of arguments for 'auth' command");
    }
    if expected.is_empty() {
        return error("ERR Client sent AUTH, but no password is set");
    }
    if request.arg(1) == Some(expected.as_bytes()) {
        client.authenticated = true;
        simple("OK")
    } else {
        client.authenticated = false;
        error("ERR invalid password")
    }
}

/// `HELLO [protover [AUTH user password] [SETNAME name]]`: switches the client's protocol (its
/// requests then use RESP3 backend connections) and describes the proxy.
fn hello<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let mut version = client.version;
    if let Some(protover) = request.arg(1) {
        version = match resp::parse_i64(protover) {
            Some(2) => Version::Resp2,
            Some(3) => Version::Resp3,
            Some(_) => return error("NOPROTO unsupported protocol version"),
            None => return error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        if option.eq_ignore_ascii_case(b"AUTH") && request.len() > index + 2 {
            let password = request.arg(index + 2).unwrap_or_default();
            let expected = &shared.config.session_auth;
            // Without a password, any is accepted (Redis' `nopass` default user).
            if !expected.is_empty() && password != expected.as_bytes() {
                return error("WRONGPASS invalid username-password pair or user is disabled.");
            }
            client.authenticated = true;
            index += 3;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && request.len() > index + 1 {
            index += 2;
        } else {
            return error(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(option)));
        }
    }
    if !client.authenticated {
        return error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    client.version = version;
    let mut out = BytesMut::new();
    encode::write_map_header(&mut out, 7, version);
    for (field, value) in [("server", "codis-proxy"), ("version", env!("CARGO_PKG_VERSION"))] {
        encode::write_bulk(&mut out, field.as_bytes());
        encode::write_bulk(&mut out, value.as_bytes());
    }
    encode::write_bulk(&mut out, b"proto");
    encode::write_integer(&mut out, if version == Version::Resp3 { 3 } else { 2 });
    encode::write_bulk(&mut out, b"id");
    encode::write_integer(&mut out, i64::try_from(client.id).unwrap_or(i64::MAX));
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        encode::write_bulk(&mut out, field.as_bytes());
        encode::write_bulk(&mut out, value.as_bytes());
    }
    encode::write_bulk(&mut out, b"modules");
    encode::write_array_header(&mut out, 0);
    out.freeze()
}

fn select<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    if request.len() != 2 {
        return error("ERR wrong number of arguments for 'select' command");
    }
    let databases = shared.router.pool().options().databases;
    match resp::parse_i64(request.arg(1).unwrap_or_default()).and_then(|db| usize::try_from(db).ok()) {
        Some(db) if db < databases => {
            client.db = db;
            simple("OK")
        }
        Some(_) => error("ERR DB index is out of range"),
        None => error("ERR invalid DB index"),
    }
}

/// A multi-key command split by backend connection (keys of one connection go together; on one
/// server a multi-key command across slots is fine), or served key by key in line if any slot
/// migrates or is locked.
fn split<E: Env>(
    shared: &Shared<E>,
    client: &Client<E>,
    request: &Request,
    upper: &str,
    kind: commands::Kind,
    keys: &[&[u8]],
) -> Dispatch {
    let pairs = upper == "MSET";
    let slots: Vec<usize> = keys.iter().map(|key| slot_of(key).index()).collect();
    // Counted before the table is read (see `dispatch`).
    let mut in_flight: Vec<(usize, InFlight)> = Vec::new();
    for slot in &slots {
        if !in_flight.iter().any(|(tracked, _)| tracked == slot) {
            in_flight.push((*slot, shared.router.track(*slot)));
        }
    }
    let table = shared.router.table();
    // Group positions by (backend, connection).
    let mut groups: Vec<(Arc<Backend>, usize, Vec<usize>)> = Vec::new();
    for (position, slot) in slots.iter().copied().enumerate() {
        let route = &table[slot];
        if route.slot.locked || route.migrate_from.is_some() {
            return Dispatch::InLine;
        }
        let Some(backend) = &route.backend else {
            return ready(error("ERR handle request, slot is not ready, may be offline"));
        };
        let conn = slot % shared.router.pool().options().parallel.max(1);
        match groups.iter_mut().find(|(other, index, _)| Arc::ptr_eq(other, backend) && *index == conn) {
            Some((_, _, positions)) => positions.push(position),
            None => groups.push((backend.clone(), conn, vec![position])),
        }
    }
    let parts = groups.into_iter().map(|(backend, conn, positions)| {
        // The part's request, encoded straight into one buffer.
        let per_key = if pairs { 2 } else { 1 };
        let mut wire = BytesMut::with_capacity(16 + 16 * (1 + positions.len() * per_key) + request.wire().len());
        encode::write_array_header(&mut wire, 1 + positions.len() * per_key);
        encode::write_bulk(&mut wire, upper.as_bytes());
        for position in &positions {
            if pairs {
                for arg in request.args().skip(1 + position * 2).take(2) {
                    encode::write_bulk(&mut wire, arg);
                }
            } else {
                encode::write_bulk(&mut wire, keys[*position]);
            }
        }
        let wire = wire.freeze();
        let acks = write_acks(shared, &table[slots[positions[0]]], kind);
        let receiver = backend.conn(client.db, conn, client.version).send_acked(wire, acks);
        // Each part holds the counts of its own slots.
        let mut mine = Vec::new();
        for position in &positions {
            if let Some(at) = in_flight.iter().position(|(slot, _)| *slot == slots[*position]) {
                mine.push(in_flight.swap_remove(at).1);
            }
        }
        (positions, Tracked { receiver, _in_flight: mine })
    });
    Dispatch::Now(match upper {
        "MGET" => Pending::Mget { total: keys.len(), parts: parts.collect() },
        "MSET" => Pending::AllOk(parts.map(|(_, receiver)| receiver).collect()),
        _ => Pending::Sum(parts.map(|(_, receiver)| receiver).collect()),
    })
}

/// Waits for every pending reply, in order, and appends it to `out`.
async fn drain(pending: &mut VecDeque<Owed>, out: &mut BytesMut, recorder: &mut Recorder) {
    while let Some(owed) = pending.pop_front() {
        let reply = resolve(owed.reply).await;
        write_reply(out, recorder, owed.started, &owed.name, &reply);
    }
}

/// The reply a backend error becomes.
pub(crate) fn backend_error(failure: &impl std::fmt::Display) -> Bytes {
    error(&format!("ERR handle response, {failure}"))
}

async fn receive(tracked: Tracked) -> Result<Bytes, Bytes> {
    receive_raw(tracked.receiver).await
}

/// A reply whose slot the caller keeps counted in flight itself.
async fn receive_raw(receiver: oneshot::Receiver<Reply>) -> Result<Bytes, Bytes> {
    match receiver.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(backend_error(&error)),
        Err(_) => Err(backend_error(&"backend conn closed")),
    }
}

/// The elements of an array reply, as raw frames.
fn elements(reply: &Bytes) -> Option<Vec<Bytes>> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let end = line_end(reply, 0)?;
    let count = usize::try_from(resp::parse_i64(&reply[1..end - 1])?).unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(1024));
    // Bulk strings and nulls (all an MGET returns) are sliced out of the reply, not copied.
    let mut at = end + 1;
    while out.len() < count {
        let end = line_end(reply, at)?;
        let stop = match reply.get(at) {
            Some(b'$') => match usize::try_from(resp::parse_i64(&reply[at + 1..end - 1])?) {
                Ok(len) => end + 1 + len + 2,
                Err(_) => end + 1,
            },
            Some(b'_') => end + 1,
            _ => return elements_decoded(reply),
        };
        if stop > reply.len() {
            return None;
        }
        out.push(reply.slice(at..stop));
        at = stop;
    }
    Some(out)
}

/// The index of the `\n` ending the line that starts at `from`.
fn line_end(reply: &[u8], from: usize) -> Option<usize> {
    Some(from + reply.get(from..)?.iter().position(|byte| *byte == b'\n')?).filter(|end| *end > from)
}

/// [`elements`] for any element type, through the decoder.
fn elements_decoded(reply: &Bytes) -> Option<Vec<Bytes>> {
    let end = line_end(reply, 0)?;
    let mut rest = BytesMut::from(&reply[end + 1..]);
    let mut decoder =
        Decoder::new(Limits { max_bulk_len: usize::MAX / 2, max_array_len: usize::MAX / 2, ..Limits::default() });
    let mut out = Vec::new();
    while let Ok(Some(element)) = decoder.decode_raw(&mut rest) {
        out.push(element);
    }
    Some(out)
}

async fn resolve(pending: Pending) -> Bytes {
    match pending {
        Pending::Ready(reply) => reply,
        Pending::Held(serve) => serve.await,
        Pending::One(receiver) => receive(receiver).await.unwrap_or_else(|error| error),
        Pending::Mget { total, parts } => {
            let mut values: Vec<Bytes> = vec![Bytes::new(); total];
            let mut failure = None;
            for (positions, receiver) in parts {
                match receive(receiver).await {
                    Ok(reply) => match elements(&reply) {
                        Some(found) if found.len() == positions.len() => {
                            for (position, value) in positions.into_iter().zip(found) {
                                values[position] = value;
                            }
                        }
                        _ => failure = failure.or(Some(reply)),
                    },
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            if let Some(failure) = failure {
                return failure;
            }
            let mut out = BytesMut::new();
            encode::write_array_header(&mut out, total);
            for value in values {
                out.extend_from_slice(&value);
            }
            out.freeze()
        }
        Pending::Sum(parts) => {
            let mut sum = 0i64;
            let mut failure = None;
            for receiver in parts {
                match receive(receiver).await {
                    Ok(reply) => match integer(&reply) {
                        Some(count) => sum += count,
                        None => failure = failure.or(Some(reply)),
                    },
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            failure.unwrap_or_else(|| {
                let mut out = BytesMut::new();
                encode::write_integer(&mut out, sum);
                out.freeze()
            })
        }
        Pending::AllOk(parts) => {
            let mut failure = None;
            for receiver in parts {
                match receive(receiver).await {
                    Ok(reply) if reply.starts_with(b"+OK") => {}
                    Ok(reply) | Err(reply) => failure = failure.or(Some(reply)),
                }
            }
            failure.unwrap_or_else(|| simple("OK"))
        }
    }
}

/// The value of an integer reply.
fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    resp::parse_i64(body)
}

/// How long a request waits for its locked slot before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Serves a request whose slot migrates or is locked (or, for a split command, one of whose
/// slots does), key by key, after everything before it.
async fn serve_in_line<E: Env>(shared: &Shared<E>, client: Target, request: &Request) -> Bytes {
    let upper = commands::upper(request.name());
    let info = commands::lookup_upper(&upper);
    // Split commands go key by key through the single-key path.
    let keys: Vec<(Vec<&[u8]>, &[u8])> = match upper.as_str() {
        "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" if request.len() > 2 => {
            request.args().skip(1).map(|key| (vec![request.name(), key], key)).collect()
        }
        "MSET" if request.len() > 3 && request.len() % 2 == 1 => {
            let args: Vec<&[u8]> = request.args().skip(1).collect();
            args.chunks(2)
                .map(|pair| (vec![request.name(), pair[0], pair.get(1).copied().unwrap_or_default()], pair[0]))
                .collect()
        }
        "MSETNX" => {
            // Its keys may be on both sides of a migration, and it must see them all.
            let key = request.arg(1).unwrap_or_default();
            let slot = slot_of(key).index();
            return match unlocked(shared, slot).await {
                Ok((_in_flight, table)) if table[slot].migrate_from.is_some() => {
                    error("TRYAGAIN the slot is migrating, retry MSETNX")
                }
                Ok((in_flight, table)) => {
                    let reply = forward_one(
                        &table,
                        client,
                        request.wire().clone(),
                        request,
                        key,
                        shared.config.backend_sync_timeout,
                    )
                    .await;
                    drop(in_flight);
                    reply
                }
                Err(refusal) => refusal,
            };
        }
        _ => {
            let key = info.key.position().and_then(|at| request.arg(at)).unwrap_or_default();
            return forward_held(shared, client, request.wire().clone(), request, key).await;
        }
    };
    let mut replies = Vec::new();
    for (args, key) in keys {
        let sub = Request::from_args(args);
        replies.push(forward_held(shared, client, sub.wire().clone(), &sub, key).await);
    }
    match upper.as_str() {
        "MGET" => {
            let mut out = BytesMut::new();
            encode::write_array_header(&mut out, replies.len());
            for reply in &replies {
                match elements(reply) {
                    Some(found) if found.len() == 1 => out.extend_from_slice(&found[0]),
                    _ => return reply.clone(),
                }
            }
            out.freeze()
        }
        "MSET" => replies.into_iter().find(|reply| !reply.starts_with(b"+OK")).unwrap_or_else(|| simple("OK")),
        _ => {
            let mut sum = 0;
            for reply in &replies {
                match integer(reply) {
                    Some(count) => sum += count,
                    None => return reply.clone(),
                }
            }
            let mut out = BytesMut::new();
            encode::write_integer(&mut out, sum);
            out.freeze()
        }
    }
}

/// Forwards one single-key request once its slot is not held (a locked slot waits until the
/// dashboard unlocks it, or a table change is applied), counted in flight meanwhile.
async fn forward_held<E: Env>(shared: &Shared<E>, client: Target, wire: Bytes, request: &Request, key: &[u8]) -> Bytes {
    let slot = slot_of(key).index();
    match unlocked(shared, slot).await {
        Ok((in_flight, table)) => {
            let reply = forward_one(&table, client, wire, request, key, shared.config.backend_sync_timeout).await;
            drop(in_flight);
            reply
        }
        Err(refusal) => refusal,
    }
}

/// The slot table once `slot` is not locked, with the slot counted in flight until the returned
/// guard drops (so the route stays current meanwhile); an error after [`LOCK_WAIT`].
pub(crate) async fn unlocked<E: Env>(shared: &Shared<E>, slot: usize) -> Result<(InFlight, Arc<Table>), Bytes> {
    let mut changes = shared.router.changes();
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        let in_flight = shared.router.track(slot);
        let table = shared.router.table();
        if !table[slot].slot.locked {
            return Ok((in_flight, table));
        }
        drop(in_flight);
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Err(error("ERR handle request, slot is locked"));
        }
    }
}

/// For a request to a slot's master in synchronous mode: the replicas that must have every
/// write it may have seen or made before it is answered. Writes wait for their own; reads wait
/// too (usually not at all: `WAIT` answers at once when the replicas are caught up), so no
/// client ever sees a value a failover could take back.
fn acks_for(route: &Route, kind: commands::Kind, timeout: Duration) -> Option<Acks> {
    (kind != commands::Kind::NotAllowed && route.slot.sync_replicas > 0)
        .then_some(Acks { replicas: route.slot.sync_replicas, timeout })
}

/// [`acks_for`] with the proxy's `backend_sync_timeout`.
fn write_acks<E: Env>(shared: &Shared<E>, route: &Route, kind: commands::Kind) -> Option<Acks> {
    acks_for(route, kind, shared.config.backend_sync_timeout)
}

/// Forwards one single-key request, moving its key out of a migration source first.
async fn forward_one(
    table: &[Arc<Route>],
    client: Target,
    wire: Bytes,
    request: &Request,
    key: &[u8],
    sync_timeout: Duration,
) -> Bytes {
    let slot = slot_of(key).index();
    let route = &table[slot];
    let Some(backend) = &route.backend else {
        return error("ERR handle request, slot is not ready, may be offline");
    };
    let info = commands::lookup_upper(&commands::upper(request.name()));
    let acks = acks_for(route, info.kind, sync_timeout);
    let target: &BackendConn = backend.conn(client.db, slot, client.version);
    let source = route.migrate_from.as_ref().filter(|_| !matches!(info.key, KeyAt::Channel(_)));
    let Some(source) = source else {
        return receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error);
    };
    let source = source.conn(client.db, slot, client.version);
    let (host, port) = backend.addr().rsplit_once(':').unwrap_or((backend.addr(), "0"));
    match route.method() {
        ForwardMethod::Sync => {
            // Pull the key (and its tag family) to the target, then serve it there.
            let moved = Request::from_args([&b"SLOTSMGRTTAGONE"[..], host.as_bytes(), port.as_bytes(), b"3000", key]);
            match receive_raw(source.send(moved.wire().clone())).await {
                Ok(reply) if reply.starts_with(b":") => {
                    receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error)
                }
                Ok(reply) => reply,
                Err(error) => error,
            }
        }
        ForwardMethod::SemiAsync => {
            let wrapped =
                Request::from_args(std::iter::once(&b"SLOTSMGRT-EXEC-WRAPPER"[..]).chain([key]).chain(request.args()));
            for attempt in 0u64.. {
                let reply = match receive_raw(source.send_acked(wrapped.wire().clone(), acks)).await {
                    Ok(reply) => reply,
                    Err(error) => return error,
                };
                let Some(parts) = elements(&reply).filter(|parts| parts.len() == 2) else {
                    return reply;
                };
                match integer(&parts[0]) {
                    Some(2) => return parts[1].clone(),
                    Some(0) => return receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error),
                    // In flight: retry, at once for the first few tries, then up to 20 ms apart.
                    Some(1) if attempt < 1000 => {
                        if attempt >= 5 {
                            tokio::time::sleep(Duration::from_millis((attempt - 4).min(20))).await;
                        }
                    }
                    _ => return parts[1].clone(),
                }
            }
            error("ERR handle request, key is being migrated")
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count]` across the cluster, slot by slot with each
/// backend's `SLOTSSCAN`. The cursor carries the slot in its low 10 bits, then one bit for the
/// side of a migrating slot (its source first, then its target, so a key that moves during the
/// scan is still seen), then the backend's own cursor: `redis-cli --scan` works through the
/// proxy. As with Redis' `SCAN`, a key present for the whole scan is returned at least once.
async fn scan<E: Env>(shared: &Shared<E>, client: &Client<E>, request: &Request) -> Bytes {
    if let Some(refusal) = shared.refusal() {
        return error(refusal);
    }
    let Some(cursor) = request.arg(1).and_then(|cursor| std::str::from_utf8(cursor).ok()?.parse::<u64>().ok()) else {
        return error("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        let value = request.arg(index + 1);
        if option.eq_ignore_ascii_case(b"COUNT") && value.is_some() {
            match value.and_then(resp::parse_i64).and_then(|count| usize::try_from(count).ok()).filter(|c| *c >= 1) {
                Some(value) => count = value,
                None => return error("ERR syntax error"),
            }
        } else if option.eq_ignore_ascii_case(b"MATCH") && value.is_some() {
            pattern = value;
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            return error("ERR SCAN TYPE is not supported through the proxy");
        } else {
            return error("ERR syntax error");
        }
        index += 2;
    }
    let mut slot = (cursor & 0x3ff) as usize;
    let mut side = (cursor >> 10) & 1;
    let mut inner = cursor >> 11;
    let mut keys: Vec<Bytes> = Vec::new();
    let mut visited = 0usize;
    while slot < model::MAX_SLOT_NUM && keys.len() < count && visited < count.max(64) {
        let _in_flight = shared.router.track(slot);
        let table = shared.router.table();
        let route = &table[slot];
        let Some(backend) = &route.backend else {
            return error("ERR handle request, slot is not ready, may be offline");
        };
        let backend = match (&route.migrate_from, side) {
            (Some(source), 0) => source,
            (_, _) => backend,
        };
        let request = Request::from_args([
            &b"SLOTSSCAN"[..],
            slot.to_string().as_bytes(),
            inner.to_string().as_bytes(),
            b"COUNT",
            count.to_string().as_bytes(),
        ]);
        let reply = match receive_raw(backend.conn(client.db, slot, client.version).send(request.wire().clone())).await
        {
            Ok(reply) => reply,
            Err(error) => return error,
        };
        let mut buf = BytesMut::from(&reply[..]);
        let frame = Decoder::new(Limits { max_array_len: usize::MAX / 2, ..Limits::default() }).decode(&mut buf);
        let Ok(Some(resp::Frame::Array(parts))) = frame else {
            return reply;
        };
        let (Some(resp::Frame::Bulk(next)), Some(resp::Frame::Array(found))) = (parts.first(), parts.get(1)) else {
            return reply;
        };
        for key in found {
            if let resp::Frame::Bulk(key) = key
                && pattern.is_none_or(|pattern| model::glob::matches(pattern, key, false))
            {
                keys.push(key.clone());
            }
        }
        visited += 1;
        inner = std::str::from_utf8(next).ok().and_then(|next| next.parse().ok()).unwrap_or(0);
        if inner == 0 {
            if route.migrate_from.is_some() && side == 0 {
                side = 1;
            } else {
                side = 0;
                slot += 1;
            }
        }
    }
    let next = if slot >= model::MAX_SLOT_NUM { 0 } else { (inner << 11) | (side << 10) | slot as u64 };
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, 2);
    encode::write_bulk(&mut out, next.to_string().as_bytes());
    encode::write_array_header(&mut out, keys.len());
    for key in keys {
        encode::write_bulk(&mut out, &key);
    }
    out.freeze()
}

/// `INFO` without arguments: the proxy's own sections (Codis' form `INFO <backend address>`
/// asks a backend).
fn info<E: Env>(shared: &Shared<E>) -> Bytes {
    use std::sync::atomic::Ordering;
    let stats = &shared.stats;
    let text = format!(
        "# Server\r\nproxy_version:{}\r\nproduct_name:{}\r\nonline:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_error_replies:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        shared.config.product_name,
        u8::from(shared.online.load(Ordering::Acquire)),
        shared.sessions_alive(),
        stats.sessions_total.load(Ordering::Relaxed),
        stats.ops_total.load(Ordering::Relaxed),
        stats.ops_fails.load(Ordering::Relaxed),
    );
    bulk(text.as_bytes())
}

/// `SLOTSMAPPING [slot]` (Codis, proxy only): per slot `[id, backend, migrate_from, replica
/// groups]`.
fn slots_mapping<E: Env>(shared: &Shared<E>, request: &Request) -> Bytes {
    let table = shared.router.table();
    let range = match request.arg(1) {
        None => 0..model::MAX_SLOT_NUM,
        Some(arg) => match resp::parse_i64(arg).and_then(|slot| usize::try_from(slot).ok()) {
            Some(slot) if slot < model::MAX_SLOT_NUM && request.len() == 2 => slot..slot + 1,
            _ => return error(&format!("ERR invalid slot number = {}", String::from_utf8_lossy(arg))),
        },
    };
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, range.len());
    for route in &table[range] {
        encode::write_array_header(&mut out, 4);
        encode::write_integer(&mut out, route.slot.id.index() as i64);
        encode::write_bulk(&mut out, route.slot.backend_addr.as_bytes());
        encode::write_bulk(&mut out, route.slot.migrate_from.as_bytes());
        encode::write_array_header(&mut out, route.slot.replica_groups.len());
        for group in &route.slot.replica_groups {
            encode::write_array_header(&mut out, group.len());
            for addr in group {
                encode::write_bulk(&mut out, addr.as_bytes());
            }
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(reply: &'static [u8]) -> Option<Vec<Bytes>> {
        elements(&Bytes::from_static(reply))
    }

    fn expected(parts: &[&'static str]) -> Option<Vec<Bytes>> {
        Some(parts.iter().map(|part| Bytes::from_static(part.as_bytes())).collect())
    }

    #[test]
    fn array_elements_are_sliced_whole() {
        assert_eq!(parts(b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n"), expected(&["$1\r\na\r\n", "$-1\r\n", "$0\r\n\r\n"]));
        assert_eq!(parts(b"*2\r\n_\r\n$2\r\nbc\r\n"), expected(&["_\r\n", "$2\r\nbc\r\n"]));
        // Other element types go through the decoder.
        assert_eq!(parts(b"*2\r\n:1\r\n*1\r\n+x\r\n"), expected(&[":1\r\n", "*1\r\n+x\r\n"]));
        assert_eq!(parts(b"*-1\r\n"), expected(&[]));
        assert_eq!(parts(b"*2\r\n$5\r\nab\r\n"), None, "a bulk string longer than the reply");
        assert_eq!(parts(b"+OK\r\n"), None);
    }
}
