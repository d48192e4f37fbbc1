//! Pub/sub through the proxy (Codis refuses it): `SUBSCRIBE`, `PSUBSCRIBE` and their `UN…`
//! forms, with fan-in from every group.
//!
//! `PUBLISH` is routed like a key, by its channel's slot, to one group. A subscribed client
//! therefore listens on every group: the session opens one link per master in the slot table,
//! each a connection of its own subscribed to the client's channels and patterns, and merges
//! what they deliver. A subscription is confirmed to the client once every reachable group
//! confirmed it, so a message published after the confirmation reaches the client wherever it
//! was published (through any proxy, or straight to a server). Links follow the slot table (a
//! new group is subscribed to as soon as it appears) and reconnect with backoff, subscribing
//! again; messages published while a link is down are lost, as pub/sub promises no more.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use net::{Env, Stream};
use resp::{Connection, Decoder, Frame, Limits, Request, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::backend::{BackendOptions, backoff, connect, pause_serving};
use crate::proxy::Shared;
use crate::session::{Client, Input, answer_alone, error};

/// Messages a link may queue for its session before it waits (and the backend's own output
/// limit for the link takes over).
const LINK_QUEUE: usize = 1024;

/// Whether a name is a channel or a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn subscribe(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
        }
    }

    fn unsubscribe(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
        }
    }
}

/// A message from a link: the channel (or pattern) it matched, and its frame as it arrived.
struct Message {
    kind: Kind,
    name: Bytes,
    raw: Bytes,
}

/// A change of subscriptions, for one link.
struct Change {
    subscribe: bool,
    kind: Kind,
    names: Vec<Bytes>,
    /// Answered once the backend confirmed every name (or the link is down).
    done: oneshot::Sender<()>,
}

/// What the session subscribed to.
#[derive(Default)]
struct Subscriptions {
    names: BTreeSet<(Kind, Bytes)>,
}

impl Subscriptions {
    fn count(&self) -> usize {
        self.names.len()
    }

    fn of(&self, kind: Kind) -> Vec<Bytes> {
        self.names.iter().filter(|(of, _)| *of == kind).map(|(_, name)| name.clone()).collect()
    }
}

/// Serves a client in subscribed mode, starting with `batch` (its first request is the
/// `SUBSCRIBE` that got it here), then what it sends while `input` stays open. Returns whether
/// the session goes on (in normal mode, after the client unsubscribed from everything) or ends
/// (`QUIT`, the client left, or a protocol error, whose reply the caller writes after what is
/// owed).
pub(crate) async fn serve<E: Env>(
    shared: &Shared<E>,
    connection: &mut Connection<E::Stream>,
    client: &mut Client<E>,
    batch: &mut VecDeque<Request>,
    input: &mut Input,
) -> bool {
    let (messages_sender, mut messages) = mpsc::channel::<Message>(LINK_QUEUE);
    let mut subscriptions = Subscriptions::default();
    let mut links: BTreeMap<String, mpsc::UnboundedSender<Change>> = BTreeMap::new();
    let mut changes = shared.router.changes();
    let options = shared.router.pool().options().clone();
    let version = client.version;
    loop {
        let request = match batch.pop_front() {
            Some(request) => request,
            None => {
                if !input.is_open() {
                    // Everything read before the input stopped is answered.
                    return false;
                }
                if connection.flush().await.is_err() {
                    return false;
                }
                tokio::select! {
                    // The client first, so a flood of messages cannot keep its UNSUBSCRIBE
                    // waiting; then table changes; then messages.
                    biased;
                    read = connection.read_request() => match input.take(read) {
                        Some(request) => request,
                        None => return false,
                    },
                    _ = changes.changed() => {
                        follow_table(shared, &mut links, &subscriptions, &messages_sender, version, &options);
                        continue;
                    }
                    message = messages.recv() => {
                        if let Some(message) = message {
                            deliver(&subscriptions, message, connection.write_buffer());
                        }
                        while let Ok(message) = messages.try_recv() {
                            deliver(&subscriptions, message, connection.write_buffer());
                        }
                        continue;
                    }
                }
            }
        };
        let upper = crate::commands::upper(request.name());
        match upper.as_str() {
            name @ ("SUBSCRIBE" | "PSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE") => {
                let kind = if name.starts_with('P') { Kind::Pattern } else { Kind::Channel };
                let subscribe = !name.contains("UNSUB");
                if subscribe && request.len() < 2 {
                    let reply =
                        error(&format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()));
                    connection.write_buffer().extend_from_slice(&reply);
                    continue;
                }
                if subscribe && links.is_empty() {
                    follow_table(shared, &mut links, &subscriptions, &messages_sender, version, &options);
                }
                let mut names: Vec<Bytes> = request.args().skip(1).map(Bytes::copy_from_slice).collect();
                if !subscribe && names.is_empty() {
                    names = subscriptions.of(kind);
                }
                let out = connection.write_buffer();
                if names.is_empty() {
                    // Nothing to unsubscribe from: one confirmation without a name.
                    encode::write_push_header(out, 3, version);
                    encode::write_bulk(out, kind.unsubscribe());
                    encode::write_null(out, version);
                    encode::write_integer(out, subscriptions.count() as i64);
                } else {
                    change_links(&links, subscribe, kind, &names, &mut messages, &subscriptions, out, &options).await;
                    for name in names {
                        if subscribe {
                            subscriptions.names.insert((kind, name.clone()));
                        } else {
                            subscriptions.names.remove(&(kind, name.clone()));
                        }
                        encode::write_push_header(out, 3, version);
                        encode::write_bulk(out, if subscribe { kind.subscribe() } else { kind.unsubscribe() });
                        encode::write_bulk(out, &name);
                        encode::write_integer(out, subscriptions.count() as i64);
                    }
                }
                if subscriptions.count() == 0 {
                    // Out of subscribed mode: the links close as they are dropped.
                    while let Some(request) = batch.pop_front() {
                        // Requests read along with the last UNSUBSCRIBE go back to the normal path.
                        let reply = answer_alone(shared, client, &request).await;
                        connection.write_buffer().extend_from_slice(&reply);
                        if client.quit {
                            return false;
                        }
                    }
                    return true;
                }
            }
            "QUIT" => {
                encode::write_line(connection.write_buffer(), b'+', b"OK");
                client.quit = true;
                return false;
            }
            "PING" if version == Version::Resp2 => {
                let out = connection.write_buffer();
                encode::write_array_header(out, 2);
                encode::write_bulk(out, b"pong");
                encode::write_bulk(out, request.arg(1).unwrap_or_default());
            }
            _ if version == Version::Resp3 => {
                // RESP3 clients may run any command while subscribed.
                let reply = answer_alone(shared, client, &request).await;
                connection.write_buffer().extend_from_slice(&reply);
                if client.quit {
                    return false;
                }
            }
            _ => {
                let reply = error(&format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    String::from_utf8_lossy(request.name()).to_ascii_lowercase()
                ));
                connection.write_buffer().extend_from_slice(&reply);
            }
        }
    }
}

/// Writes `message` if the client still listens to its channel or pattern (one that arrives
/// after an `UNSUBSCRIBE` was confirmed is dropped).
fn deliver(subscriptions: &Subscriptions, message: Message, out: &mut BytesMut) {
    if subscriptions.names.contains(&(message.kind, message.name)) {
        out.extend_from_slice(&message.raw);
    }
}

/// Sends a change to every link and waits until each confirmed it (at most the backend receive
/// timeout), writing the messages that arrive meanwhile.
#[allow(clippy::too_many_arguments)]
async fn change_links(
    links: &BTreeMap<String, mpsc::UnboundedSender<Change>>,
    subscribe: bool,
    kind: Kind,
    names: &[Bytes],
    messages: &mut mpsc::Receiver<Message>,
    subscriptions: &Subscriptions,
    out: &mut BytesMut,
    options: &BackendOptions,
) {
    let mut waiting = Vec::new();
    for link in links.values() {
        let (done, confirmed) = oneshot::channel();
        if link.send(Change { subscribe, kind, names: names.to_vec(), done }).is_ok() {
            waiting.push(confirmed);
        }
    }
    let deadline = tokio::time::Instant::now() + options.recv_timeout;
    for confirmed in waiting {
        tokio::pin!(confirmed);
        loop {
            tokio::select! {
                biased;
                _ = &mut confirmed => break,
                () = tokio::time::sleep_until(deadline) => return,
                message = messages.recv() => match message {
                    Some(message) => deliver(subscriptions, message, out),
                    None => break,
                },
            }
        }
    }
}

/// Opens a link to every master of the slot table that has none, subscribed to what the client
/// listens to, and closes the links to backends no slot points at any more.
fn follow_table<E: Env>(
    shared: &Shared<E>,
    links: &mut BTreeMap<String, mpsc::UnboundedSender<Change>>,
    subscriptions: &Subscriptions,
    messages: &mpsc::Sender<Message>,
    version: Version,
    options: &BackendOptions,
) {
    let table = shared.router.table();
    let masters: BTreeSet<&str> = table.iter().filter_map(|route| route.backend.as_ref().map(|b| b.addr())).collect();
    links.retain(|addr, _| masters.contains(addr.as_str()));
    for addr in masters {
        if links.contains_key(addr) {
            continue;
        }
        let (changes, receiver) = mpsc::unbounded_channel();
        let env = shared.router.pool().env().clone();
        shared.router.pool().env().spawn(link(
            env,
            addr.to_string(),
            version,
            options.clone(),
            subscriptions.names.clone(),
            receiver,
            messages.clone(),
        ));
        links.insert(addr.to_string(), changes);
    }
}

/// Failures in a row retried at once before backing off.
const QUICK_RETRIES: u32 = 3;

/// One link: a connection to `addr` subscribed to `names`, kept up until the session drops its
/// end.
async fn link<E: Env>(
    env: E,
    addr: String,
    version: Version,
    options: BackendOptions,
    mut names: BTreeSet<(Kind, Bytes)>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    messages: mpsc::Sender<Message>,
) {
    let mut failures = 0u32;
    loop {
        let error = match connect(&env, &addr, 0, version, &options, 0).await {
            Ok(stream) => {
                failures = 0;
                serve_link(stream, &mut names, &mut changes, &messages, options.recv_timeout).await
            }
            Err(error) => Some(error),
        };
        let Some(error) = error else {
            return;
        };
        failures += 1;
        debug!(%addr, %error, failures, "pub/sub link down");
        // While down, changes apply to what the next connection subscribes to.
        let delay = backoff(failures, QUICK_RETRIES).max(Duration::from_millis(10));
        let changed = |change: Change| {
            apply(&mut names, &change);
            let _ = change.done.send(());
        };
        if !pause_serving(delay, &mut changes, changed).await {
            return;
        }
    }
}

fn apply(names: &mut BTreeSet<(Kind, Bytes)>, change: &Change) {
    for name in &change.names {
        if change.subscribe {
            names.insert((change.kind, name.clone()));
        } else {
            names.remove(&(change.kind, name.clone()));
        }
    }
}

/// The request that makes a change.
fn change_request(subscribe: bool, kind: Kind, names: &[Bytes]) -> Bytes {
    let command: &[u8] = match (subscribe, kind) {
        (true, Kind::Channel) => b"SUBSCRIBE",
        (true, Kind::Pattern) => b"PSUBSCRIBE",
        (false, Kind::Channel) => b"UNSUBSCRIBE",
        (false, Kind::Pattern) => b"PUNSUBSCRIBE",
    };
    Request::from_args(std::iter::once(command).chain(names.iter().map(|name| &name[..]))).wire().clone()
}

/// Serves a connected link until it fails (`Some(why)`) or the session is gone (`None`).
async fn serve_link<S: Stream>(
    stream: S,
    names: &mut BTreeSet<(Kind, Bytes)>,
    changes: &mut mpsc::UnboundedReceiver<Change>,
    messages: &mpsc::Sender<Message>,
    recv_timeout: Duration,
) -> Option<String> {
    let (mut reader, mut writer) = stream.into_split();
    // Confirmations expected, in order: how many, and who waits for them.
    let mut expected: VecDeque<(usize, Option<oneshot::Sender<()>>)> = VecDeque::new();
    // Subscribe again to everything.
    let mut out = BytesMut::new();
    for kind in [Kind::Channel, Kind::Pattern] {
        let of_kind: Vec<Bytes> = names.iter().filter(|(of, _)| *of == kind).map(|(_, name)| name.clone()).collect();
        if !of_kind.is_empty() {
            out.extend_from_slice(&change_request(true, kind, &of_kind));
            expected.push_back((of_kind.len(), None));
        }
    }
    if !out.is_empty()
        && let Err(error) = writer.write_all(&out).await
    {
        return Some(format!("write: {error}"));
    }
    let mut decoder = Decoder::new(Limits { max_bulk_len: usize::MAX / 2, ..Limits::default() });
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        // Silence is normal on a subscribed connection, unless a confirmation is due.
        let silence = if expected.is_empty() { Duration::from_secs(24 * 3600) } else { recv_timeout };
        tokio::select! {
            biased;
            change = changes.recv() => {
                // The session is gone when its end of the channel is.
                let change = change?;
                apply(names, &change);
                let wire = change_request(change.subscribe, change.kind, &change.names);
                expected.push_back((change.names.len(), Some(change.done)));
                if let Err(error) = writer.write_all(&wire).await {
                    return Some(format!("write: {error}"));
                }
            }
            read = tokio::time::timeout(silence, reader.read_buf(&mut buf)) => match read {
                Ok(Ok(0)) => return Some("closed by the backend".into()),
                Ok(Ok(_)) => loop {
                    let raw = match decoder.decode_raw(&mut buf) {
                        Ok(Some(raw)) => raw,
                        Ok(None) => break,
                        Err(error) => return Some(format!("protocol: {error}")),
                    };
                    match classify(&raw) {
                        Some(Delivery::Message(kind, name)) => {
                            messages.send(Message { kind, name, raw }).await.ok()?;
                        }
                        Some(Delivery::Confirmation) => {
                            if let Some((left, _)) = expected.front_mut() {
                                *left = left.saturating_sub(1);
                                if *left == 0
                                    && let Some((_, Some(done))) = expected.pop_front()
                                {
                                    let _ = done.send(());
                                }
                            }
                            while expected.front().is_some_and(|(left, _)| *left == 0) {
                                expected.pop_front();
                            }
                        }
                        None => {}
                    }
                },
                Ok(Err(error)) => return Some(format!("read: {error}")),
                Err(_) => return Some(format!("no confirmation for {} ms", recv_timeout.as_millis())),
            },
        }
    }
}

/// What a frame from a subscribed connection is.
enum Delivery {
    /// A `message` (for a channel) or `pmessage` (for a pattern).
    Message(Kind, Bytes),
    /// A `(p)(un)subscribe` confirmation.
    Confirmation,
}

fn classify(raw: &Bytes) -> Option<Delivery> {
    let mut buf = BytesMut::from(&raw[..]);
    let frame = Decoder::new(Limits { max_bulk_len: usize::MAX / 2, ..Limits::default() }).decode(&mut buf).ok()??;
    let (Frame::Array(parts) | Frame::Push(parts)) = frame else {
        return None;
    };
    let kind = parts.first()?.as_bytes()?.to_ascii_lowercase();
    match kind.as_slice() {
        b"message" => Some(Delivery::Message(Kind::Channel, parts.get(1)?.as_bytes()?.clone())),
        b"pmessage" => Some(Delivery::Message(Kind::Pattern, parts.get(1)?.as_bytes()?.clone())),
        b"subscribe" | b"psubscribe" | b"unsubscribe" | b"punsubscribe" => Some(Delivery::Confirmation),
        _ => None,
    }
}
