//! Pub/sub through the proxy (Codis refuses it): `SUBSCRIBE`, `PSUBSCRIBE` and their `UN…`
//! forms, with fan-in from every group.
//!
//! `PUBLISH` is routed like a key, by its channel's slot, to one group. A subscribed client
//! therefore listens on every group: the session opens one link per server that is a backend or
//! a migration source in the slot table, each a connection of its own subscribed to the
//! client's channels and patterns, and merges what they deliver. A subscription is confirmed to
//! the client once every link confirmed it, so a message published after the confirmation
//! reaches the client wherever it was published (through any proxy, or straight to a server of
//! the table).
//!
//! Loss is never silent. Connected straight to Redis, a subscriber learns that it missed
//! messages because its connection closes (Redis closes a subscriber past its output buffer
//! limit, or dies). Through the proxy the same holds:
//! - a link that fails (its server closed it at its own output limit, crashed, answered an
//!   error, or went silent past `backend_recv_timeout`) is not reopened behind the client's
//!   back: the client's connection is closed once what the links delivered before is written
//!   (if it reads it within `session_pubsub_close_timeout`);
//! - what the session holds for a slow client is bounded like Redis'
//!   `client-output-buffer-limit pubsub` (`session_pubsub_*`): past it the client is
//!   disconnected at once, as Redis disconnects it;
//! - a slot table change keeps the client only when it cannot have hidden a message from it
//!   ([`crate::router::Router::fill`]): a server that joins through locked slots is listened on
//!   before any proxy can route a publish there; a server that leaves is drained first (a `PING`
//!   round trip on its link, so everything it sent before arrives); a change that let a server
//!   take publishes before this session listened there, or drops one that may still take them,
//!   closes the clients subscribed to a channel of the slots concerned or to any pattern;
//! - a fenced proxy (its lease from the dashboard ran out) closes its subscribers: the
//!   dashboard goes on without it, so its table no longer says where publishes land.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use net::{Env, Stream};
use resp::{Connection, Decoder, Frame, Limits, ReadOrWrote, Request, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::backend::{BackendOptions, connect};
use crate::proxy::{ProxyConfig, Shared};
use crate::router::{Hazard, Listener, linked_servers};
use crate::session::client::{Client, Input};
use crate::session::dispatch::answer_alone;
use crate::session::reply::error;

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

/// What a session's links tell it, each link's events in the order they happened.
enum Event {
    /// A message for the client.
    Message(Message),
    /// Link `link` is connected and subscribed to everything it started with.
    Ready(u64),
    /// Link `link` to `addr` failed: what its server published since (and anything it sent that
    /// was not read) never reaches the client.
    Lost { link: u64, addr: String, why: String },
}

/// A change of subscriptions, for one link.
struct Change {
    subscribe: bool,
    kind: Kind,
    names: Vec<Bytes>,
    /// Answered once the backend confirmed every name (dropped if the link fails first).
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

    /// Whether publishes in the slots `hazard` names may be ones this client listens for: any
    /// publish may match a pattern; a channel's publishes go to its slot.
    fn exposed_to(&self, hazard: &Hazard) -> bool {
        self.names.iter().any(|(kind, name)| match kind {
            Kind::Pattern => true,
            Kind::Channel => hazard.slots.contains(&model::slot_of(name).index()),
        })
    }
}

/// Redis' `client-output-buffer-limit pubsub`, from the proxy's `session_pubsub_*` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutputLimit {
    /// Disconnect at once at this many bytes (0: never).
    pub(crate) hard_bytes: usize,
    /// Disconnect when at or above this many bytes for longer than `soft_seconds` (0: never).
    pub(crate) soft_bytes: usize,
    /// How long the soft limit may be exceeded, in whole seconds.
    pub(crate) soft_seconds: u64,
}

impl OutputLimit {
    pub(crate) fn of(config: &ProxyConfig) -> OutputLimit {
        OutputLimit {
            hard_bytes: config.session_pubsub_hard_limit_bytes,
            soft_bytes: config.session_pubsub_soft_limit_bytes,
            soft_seconds: config.session_pubsub_soft_limit_seconds,
        }
    }

    /// Whether a client owed `pending` bytes must be disconnected: over the hard limit, or over
    /// the soft one for longer than its seconds (`since` remembers when it first was), as Redis'
    /// `checkClientOutputBufferLimits` decides.
    fn exceeded(&self, pending: usize, since: &mut Option<tokio::time::Instant>, now: tokio::time::Instant) -> bool {
        let hard = self.hard_bytes > 0 && pending >= self.hard_bytes;
        let mut soft = self.soft_bytes > 0 && pending >= self.soft_bytes;
        if soft {
            match *since {
                None => {
                    *since = Some(now);
                    soft = false;
                }
                Some(first) => soft = now.saturating_duration_since(first).as_secs() > self.soft_seconds,
            }
        } else {
            *since = None;
        }
        hard || soft
    }
}

/// What a subscriber's session owes its client and has not written yet: the messages its links
/// posted and it has not taken, plus its write buffer. Shared with the links, which check the
/// limit as they post, so a session busy elsewhere (answering a RESP3 subscriber's command, say)
/// still has its client cut off once over it.
struct Backlog {
    limit: OutputLimit,
    /// Bytes of messages posted and not yet taken by the session.
    queued: AtomicUsize,
    /// Bytes in the session's write buffer, as of its last look.
    buffered: AtomicUsize,
    /// Since when the soft limit has been exceeded.
    soft_since: Mutex<Option<tokio::time::Instant>>,
    /// Whether `soft_since` is set, so a check under both limits (the usual case, made for
    /// every message a link posts) need not lock it.
    soft_timing: AtomicBool,
    /// The limit was exceeded: the client is to be disconnected.
    over: AtomicBool,
    wake: Notify,
}

impl Backlog {
    fn new(limit: OutputLimit) -> Backlog {
        Backlog {
            limit,
            queued: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
            soft_since: Mutex::new(None),
            soft_timing: AtomicBool::new(false),
            over: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Checks the limit against what is owed now.
    fn check(&self) {
        let pending = self.queued.load(Ordering::Acquire) + self.buffered.load(Ordering::Acquire);
        let limit = &self.limit;
        let under = (limit.hard_bytes == 0 || pending < limit.hard_bytes)
            && (limit.soft_bytes == 0 || pending < limit.soft_bytes);
        if under && !self.soft_timing.load(Ordering::Acquire) {
            return;
        }
        let mut since = self.soft_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let exceeded = limit.exceeded(pending, &mut since, tokio::time::Instant::now());
        self.soft_timing.store(since.is_some(), Ordering::Release);
        if exceeded && !self.over.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// The session's write buffer now holds `len` bytes.
    fn buffered(&self, len: usize) {
        self.buffered.store(len, Ordering::Release);
        self.check();
    }

    /// The session took a message of `len` bytes off the queue.
    fn taken(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }

    fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// Completes once the limit has been exceeded.
    async fn exceeded(&self) {
        while !self.is_over() {
            self.wake.notified().await;
        }
    }
}

/// A link's way to its session.
#[derive(Clone)]
struct Poster {
    events: mpsc::UnboundedSender<Event>,
    backlog: Arc<Backlog>,
}

impl Poster {
    /// Hands `event` to the session; `false` once the session is gone.
    fn post(&self, event: Event) -> bool {
        if self.backlog.is_over() {
            // The client is being disconnected: nothing more is kept for it.
            return !self.events.is_closed();
        }
        let len = match &event {
            Event::Message(message) => message.raw.len(),
            Event::Ready(_) | Event::Lost { .. } => 0,
        };
        // Counted before sending, so the session never takes bytes not yet added.
        self.backlog.queued.fetch_add(len, Ordering::AcqRel);
        if self.events.send(event).is_err() {
            return false;
        }
        if len > 0 {
            self.backlog.check();
        }
        true
    }
}

/// How a subscribed session ended.
pub(crate) enum Outcome {
    /// The client unsubscribed from everything: back to normal mode, with what is left of the
    /// batch.
    Unsubscribed,
    /// Close once what is owed is written (`QUIT`, the input ended, a link was lost or a table
    /// change may have hidden messages).
    Close,
    /// Close at once, dropping what is owed: the client is over its output limit (as Redis frees
    /// such a client) or its connection failed.
    Drop,
}

/// One open link, as its session holds it. Dropping it retires the link: it drains (a `PING`
/// round trip, so whatever its server sent before arrives) and closes.
struct LinkHandle {
    id: u64,
    changes: mpsc::UnboundedSender<Change>,
}

/// A subscribed session's state.
struct Subscribed<'a, E: Env> {
    shared: &'a Shared<E>,
    version: Version,
    options: BackendOptions,
    subscriptions: Subscriptions,
    links: BTreeMap<String, LinkHandle>,
    next_link: u64,
    /// A table version not yet followed, and the links opened for it not yet subscribed.
    following: Option<(u64, BTreeSet<u64>)>,
    changes: watch::Receiver<u64>,
    /// Registered with the router once the session asks for its first subscription: a session
    /// that listens to nothing has nothing to miss, so no table change waits for it.
    listener: Option<Arc<Listener>>,
    poster: Poster,
    events: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<Backlog>,
}

impl<E: Env> Drop for Subscribed<'_, E> {
    /// A session that leaves subscribed mode holds no table change back.
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            self.shared.router.leave(listener);
        }
    }
}

/// Serves a client in subscribed mode, starting with `batch` (its first request is the
/// `SUBSCRIBE` that got it here) and then what it sends while `input` stays open.
pub(crate) async fn serve<E: Env>(
    shared: &Shared<E>,
    connection: &mut Connection<E::Stream>,
    client: &mut Client<E>,
    batch: &mut VecDeque<Request>,
    input: &mut Input,
) -> Outcome {
    let changes = shared.router.changes();
    let backlog = Arc::new(Backlog::new(OutputLimit::of(&shared.config)));
    let (events_sender, events) = mpsc::unbounded_channel();
    let mut session = Subscribed {
        shared,
        version: client.version,
        options: shared.router.pool().options().clone(),
        subscriptions: Subscriptions::default(),
        links: BTreeMap::new(),
        next_link: 0,
        following: None,
        changes,
        listener: None,
        poster: Poster { events: events_sender, backlog: backlog.clone() },
        events,
        backlog,
    };
    let outcome = session.run(connection, client, batch, input).await;
    if let Outcome::Drop = outcome {
        connection.write_buffer().clear();
    }
    outcome
}

/// Completes when a warning may have arrived for `listener` (never without one).
async fn warned(listener: Option<&Listener>) {
    match listener {
        Some(listener) => listener.warned().await,
        None => std::future::pending().await,
    }
}

impl<E: Env> Subscribed<'_, E> {
    async fn run(
        &mut self,
        connection: &mut Connection<E::Stream>,
        client: &mut Client<E>,
        batch: &mut VecDeque<Request>,
        input: &mut Input,
    ) -> Outcome {
        let shared = self.shared;
        let fenced = shared.lease.fenced();
        tokio::pin!(fenced);
        loop {
            self.backlog.buffered(connection.write_buffer().len());
            if self.backlog.is_over() {
                warn!(
                    pending = self.backlog.queued.load(Ordering::Acquire) + connection.write_buffer().len(),
                    "closing a subscriber over its output buffer limit"
                );
                return Outcome::Drop;
            }
            if let Some(request) = batch.pop_front() {
                if let Some(outcome) = self.request(connection, client, &request).await {
                    return outcome;
                }
                continue;
            }
            if !input.is_open() {
                return Outcome::Close;
            }
            tokio::select! {
                // What closes the client first (its output limit, the proxy fenced, a table change
                // that may have hidden messages); then the client, read even while it is behind
                // on reading its output (as Redis reads it), so a flood of messages cannot keep its
                // UNSUBSCRIBE, PING or QUIT waiting; then table changes; then the links, which
                // the client's side cannot starve for long: it is ready only while the client
                // sends or output is owed, and what the links queue meanwhile counts against the
                // output limit.
                biased;
                () = self.backlog.exceeded() => {}
                () = &mut fenced => {
                    debug!("closing a subscriber: the proxy is fenced");
                    return Outcome::Close;
                }
                () = warned(self.listener.as_deref()) => {
                    for hazard in self.listener.iter().flat_map(|listener| listener.warnings()) {
                        if self.subscriptions.exposed_to(&hazard) {
                            debug!(why = %hazard.why, "closing a subscriber that may have missed messages");
                            return Outcome::Close;
                        }
                    }
                }
                io = connection.read_request_or_write_some() => match io {
                    Ok(ReadOrWrote::Read(read)) => batch.extend(input.take(Ok(read))),
                    Ok(ReadOrWrote::Wrote(written)) if written > 0 => {}
                    Ok(ReadOrWrote::Wrote(_)) => return Outcome::Drop,
                    // The input stops here (a broken connection's output fails at once).
                    Err(error) => batch.extend(input.take(Err(error))),
                },
                _ = self.changes.changed() => {
                    if self.listener.is_some() {
                        self.follow_table();
                    }
                }
                event = self.events.recv() => {
                    if let Some(event) = event
                        && let Err(why) = self.on_events(event, connection.write_buffer())
                    {
                        debug!(%why, "closing a subscriber");
                        return Outcome::Close;
                    }
                }
            }
        }
    }

    /// Serves one request; `Some` when the session leaves subscribed mode.
    async fn request(
        &mut self,
        connection: &mut Connection<E::Stream>,
        client: &mut Client<E>,
        request: &Request,
    ) -> Option<Outcome> {
        let version = self.version;
        let upper = crate::commands::upper(request.name());
        match upper.as_str() {
            name @ ("SUBSCRIBE" | "PSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE") => {
                let kind = if name.starts_with('P') { Kind::Pattern } else { Kind::Channel };
                let subscribe = !name.contains("UNSUB");
                if subscribe && request.len() < 2 {
                    let reply =
                        error(&format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()));
                    connection.write_buffer().extend_from_slice(&reply);
                    return None;
                }
                if subscribe && let Some(refusal) = self.shared.refusal() {
                    // Fenced meanwhile: nothing can be promised to this client any more.
                    connection.write_buffer().extend_from_slice(&error(refusal));
                    return Some(Outcome::Close);
                }
                if subscribe && self.listener.is_none() {
                    // Registered before the table is first read (see `Router::listen`).
                    self.listener = Some(self.shared.router.listen());
                    self.follow_table();
                }
                let mut names: Vec<Bytes> = request.args().skip(1).map(Bytes::copy_from_slice).collect();
                if !subscribe && names.is_empty() {
                    names = self.subscriptions.of(kind);
                }
                if names.is_empty() {
                    // Nothing to unsubscribe from: one confirmation without a name.
                    let out = connection.write_buffer();
                    encode::write_push_header(out, 3, version);
                    encode::write_bulk(out, kind.unsubscribe());
                    encode::write_null(out, version);
                    encode::write_integer(out, self.subscriptions.count() as i64);
                } else {
                    if let Err(outcome) = self.change_links(subscribe, kind, &names, connection.write_buffer()).await {
                        return Some(outcome);
                    }
                    let out = connection.write_buffer();
                    for name in names {
                        if subscribe {
                            self.subscriptions.names.insert((kind, name.clone()));
                        } else {
                            self.subscriptions.names.remove(&(kind, name.clone()));
                        }
                        encode::write_push_header(out, 3, version);
                        encode::write_bulk(out, if subscribe { kind.subscribe() } else { kind.unsubscribe() });
                        encode::write_bulk(out, &name);
                        encode::write_integer(out, self.subscriptions.count() as i64);
                    }
                }
                // Out of subscribed mode: the links retire as they are dropped, and the rest of
                // the batch goes back to the normal path.
                (self.subscriptions.count() == 0).then_some(Outcome::Unsubscribed)
            }
            "QUIT" => {
                encode::write_line(connection.write_buffer(), b'+', b"OK");
                client.quit = true;
                Some(Outcome::Close)
            }
            "PING" if version == Version::Resp2 => {
                let out = connection.write_buffer();
                encode::write_array_header(out, 2);
                encode::write_bulk(out, b"pong");
                encode::write_bulk(out, request.arg(1).unwrap_or_default());
                None
            }
            _ if version == Version::Resp3 => {
                // RESP3 clients may run any command while subscribed. Meanwhile (up to the
                // command's own bounds: `backend_recv_timeout`, the wait for a locked slot) the
                // session takes no messages and no table changes: the links still enforce the
                // output limit as they post, and a change that waits for this session warns it
                // after `session_pubsub_follow_timeout`, which it heeds once the reply is in.
                let reply = answer_alone(self.shared, client, request).await;
                connection.write_buffer().extend_from_slice(&reply);
                client.quit.then_some(Outcome::Close)
            }
            _ => {
                let reply = error(&format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    String::from_utf8_lossy(request.name()).to_ascii_lowercase()
                ));
                connection.write_buffer().extend_from_slice(&reply);
                None
            }
        }
    }

    /// Handles `first` and the events queued behind it, until `session_pubsub_batch_bytes` more
    /// of output are in `out`, then counts `out` against the output limit once (the bytes moved
    /// from the queue are still owed); `Err(why)` when the client must be closed. A stream of
    /// small messages thus costs a write and a turn of the session's loop per batch, not per
    /// message, so a client that reads fast keeps up with a server that publishes fast.
    fn on_events(&mut self, first: Event, out: &mut BytesMut) -> Result<(), String> {
        let full = out.len().saturating_add(self.shared.config.session_pubsub_batch_bytes);
        let mut event = first;
        loop {
            self.on_event(event, out)?;
            if out.len() >= full {
                break;
            }
            match self.events.try_recv() {
                Ok(next) => event = next,
                Err(_) => break,
            }
        }
        self.backlog.buffered(out.len());
        Ok(())
    }

    /// Handles one event from a link, writing messages to `out`; `Err(why)` when the client
    /// must be closed.
    fn on_event(&mut self, event: Event, out: &mut BytesMut) -> Result<(), String> {
        match event {
            Event::Message(message) => {
                self.backlog.taken(message.raw.len());
                // One that arrives after its UNSUBSCRIBE was confirmed is dropped.
                if self.subscriptions.names.contains(&(message.kind, message.name)) {
                    out.extend_from_slice(&message.raw);
                }
            }
            Event::Ready(link) => {
                if let Some((_, waiting)) = &mut self.following {
                    waiting.remove(&link);
                }
                self.maybe_followed();
            }
            Event::Lost { link, addr, why } => return Err(format!("pub/sub link {link} to {addr} lost: {why}")),
        }
        Ok(())
    }

    /// Tells the router once every link opened for the table version being followed is
    /// subscribed.
    fn maybe_followed(&mut self) {
        if let Some((version, waiting)) = &self.following
            && waiting.is_empty()
        {
            if let Some(listener) = &self.listener {
                self.shared.router.followed(listener, *version);
            }
            self.following = None;
        }
    }

    /// Sends a change to every link and waits until each confirmed it, writing the messages
    /// that arrive meanwhile to `out`; `Err` when the client must be closed instead of being
    /// told the change was made (a link failed, or did not confirm within the backend receive
    /// timeout).
    async fn change_links(
        &mut self,
        subscribe: bool,
        kind: Kind,
        names: &[Bytes],
        out: &mut BytesMut,
    ) -> Result<(), Outcome> {
        let mut waiting = Vec::new();
        for link in self.links.values() {
            let (done, confirmed) = oneshot::channel();
            if link.changes.send(Change { subscribe, kind, names: names.to_vec(), done }).is_ok() {
                waiting.push(confirmed);
            }
        }
        let deadline = tokio::time::Instant::now() + self.options.recv_timeout;
        for confirmed in waiting {
            tokio::pin!(confirmed);
            loop {
                tokio::select! {
                    biased;
                    () = self.backlog.exceeded() => return Err(Outcome::Drop),
                    confirmed = &mut confirmed => match confirmed {
                        Ok(()) => break,
                        // The link failed first: the subscription cannot be promised.
                        Err(_) => {
                            debug!("closing a subscriber: a pub/sub link failed before it confirmed");
                            return Err(Outcome::Close);
                        }
                    },
                    () = tokio::time::sleep_until(deadline) => {
                        // Not confirmed in time: the subscription cannot be promised, and the
                        // link's replies may no longer match what it was sent.
                        debug!("closing a subscriber: a pub/sub link did not confirm a change in time");
                        return Err(Outcome::Close);
                    }
                    event = self.events.recv() => {
                        if let Some(event) = event
                            && let Err(why) = self.on_events(event, out)
                        {
                            debug!(%why, "closing a subscriber");
                            return Err(Outcome::Close);
                        }
                    }
                }
            }
        }
        // What a link delivered before its confirmation is in the queue by now (it posts in
        // order): it goes to the client before the confirmation, as Redis orders them, so the
        // messages published before an UNSUBSCRIBE still reach the client.
        while let Ok(event) = self.events.try_recv() {
            if let Err(why) = self.on_event(event, out) {
                debug!(%why, "closing a subscriber");
                return Err(Outcome::Close);
            }
        }
        self.backlog.buffered(out.len());
        if self.backlog.is_over() {
            return Err(Outcome::Drop);
        }
        Ok(())
    }

    /// Opens a link to every server of the slot table that has none, subscribed to what the
    /// client listens to, and retires the links to servers no slot names any more.
    fn follow_table(&mut self) {
        let version = *self.changes.borrow_and_update();
        let table = self.shared.router.table();
        let servers = linked_servers(&table);
        self.links.retain(|addr, _| servers.contains(addr.as_str()));
        let mut opened = BTreeSet::new();
        for addr in servers {
            if self.links.contains_key(addr) {
                continue;
            }
            let (changes, receiver) = mpsc::unbounded_channel();
            let id = self.next_link;
            self.next_link += 1;
            let env = self.shared.router.pool().env().clone();
            let link = Link {
                env: env.clone(),
                id,
                addr: addr.to_string(),
                version: self.version,
                options: self.options.clone(),
                poster: self.poster.clone(),
            };
            env.spawn(link.run(self.subscriptions.names.clone(), receiver));
            self.links.insert(addr.to_string(), LinkHandle { id, changes });
            opened.insert(id);
        }
        // Links retired before they were subscribed are not waited for.
        let open: BTreeSet<u64> = self.links.values().map(|link| link.id).collect();
        let mut waiting = self.following.take().map(|(_, waiting)| waiting).unwrap_or_default();
        waiting.retain(|id| open.contains(id));
        waiting.extend(opened);
        self.following = Some((version, waiting));
        self.maybe_followed();
    }
}

/// One link: a connection to `addr` subscribed to what its session listens to.
struct Link<E> {
    env: E,
    id: u64,
    addr: String,
    version: Version,
    options: BackendOptions,
    poster: Poster,
}

impl<E: Env> Link<E> {
    /// Connects, subscribes to `names`, and serves the link until it is retired (its session
    /// dropped its end of `changes`) or the session is gone; a failure is posted as
    /// [`Event::Lost`] and ends the link: it is never reopened behind the client's back.
    async fn run(self, names: BTreeSet<(Kind, Bytes)>, mut changes: mpsc::UnboundedReceiver<Change>) {
        let served = match connect(&self.env, &self.addr, 0, self.version, &self.options, 0).await {
            Ok(stream) => self.serve(stream, names, &mut changes).await,
            Err(error) => Err(error),
        };
        if let Err(why) = served {
            info!(addr = %self.addr, %why, "pub/sub link down: its subscriber is disconnected");
            self.poster.post(Event::Lost { link: self.id, addr: self.addr.clone(), why });
        }
    }

    /// Serves a connected link until it fails (`Err(why)`), drains after being retired, or its
    /// session is gone (`Ok`). Between confirmations, a `PING` every `backend_ping_period` of
    /// silence finds a server that stopped answering within `backend_recv_timeout`.
    async fn serve<S: Stream>(
        &self,
        stream: S,
        names: BTreeSet<(Kind, Bytes)>,
        changes: &mut mpsc::UnboundedReceiver<Change>,
    ) -> Result<(), String> {
        let (mut reader, mut writer) = stream.into_split();
        // Replies expected, in order.
        let mut expected: VecDeque<Expect> = VecDeque::new();
        // Subscribe to everything the session listens to.
        let mut out = BytesMut::new();
        for kind in [Kind::Channel, Kind::Pattern] {
            let of_kind: Vec<Bytes> =
                names.iter().filter(|(of, _)| *of == kind).map(|(_, name)| name.clone()).collect();
            if !of_kind.is_empty() {
                out.extend_from_slice(&change_request(true, kind, &of_kind));
                expected.push_back(Expect::Confirmations { left: of_kind.len(), done: None });
            }
        }
        if !out.is_empty() {
            writer.write_all(&out).await.map_err(|error| format!("write: {error}"))?;
            expected.push_back(Expect::Ready);
        } else if !self.poster.post(Event::Ready(self.id)) {
            return Ok(());
        }
        let mut retired = false;
        // A message bigger than the client's hard output limit would get it disconnected anyway:
        // the link fails at its header rather than buffering it whole.
        let max_bulk_len = match self.poster.backlog.limit.hard_bytes {
            0 => usize::MAX / 2,
            hard => hard,
        };
        let mut decoder = Decoder::new(Limits { max_bulk_len, ..Limits::default() });
        let mut buf = BytesMut::with_capacity(4096);
        let idle =
            if self.options.ping_period.is_zero() { Duration::from_secs(24 * 3600) } else { self.options.ping_period };
        loop {
            // Silence is normal on a subscribed connection, unless a reply is due.
            let silence = if expected.is_empty() { idle } else { self.options.recv_timeout };
            tokio::select! {
                biased;
                change = changes.recv(), if !retired => {
                    let wire = match change {
                        Some(change) => {
                            expected.push_back(Expect::Confirmations { left: change.names.len(), done: Some(change.done) });
                            change_request(change.subscribe, change.kind, &change.names)
                        }
                        None => {
                            // Retired: drain, so whatever the server sent before arrives.
                            retired = true;
                            expected.push_back(Expect::Pong { last: true });
                            ping()
                        }
                    };
                    writer.write_all(&wire).await.map_err(|error| format!("write: {error}"))?;
                }
                read = tokio::time::timeout(silence, reader.read_buf(&mut buf)) => match read {
                    Ok(Ok(0)) => return Err("closed by the server".into()),
                    Ok(Ok(_)) => loop {
                        let raw = match decoder.decode_raw(&mut buf) {
                            Ok(Some(raw)) => raw,
                            Ok(None) => break,
                            Err(error) => return Err(format!("protocol: {error}")),
                        };
                        match classify(&raw) {
                            Some(Delivery::Message(kind, name)) => {
                                let posted = self.poster.post(Event::Message(Message { kind, name, raw }));
                                if !posted {
                                    // The session is gone.
                                    return Ok(());
                                }
                            }
                            Some(Delivery::Confirmation) => {
                                if let Some(Expect::Confirmations { left, .. }) = expected.front_mut() {
                                    *left = left.saturating_sub(1);
                                    if *left == 0
                                        && let Some(Expect::Confirmations { done: Some(done), .. }) = expected.pop_front()
                                    {
                                        let _ = done.send(());
                                    }
                                }
                            }
                            Some(Delivery::Pong) if matches!(expected.front(), Some(Expect::Pong { .. })) => {
                                if let Some(Expect::Pong { last: true }) = expected.pop_front() {
                                    return Ok(());
                                }
                            }
                            Some(Delivery::Pong) => return Err("an unexpected PONG".into()),
                            // Only changes and PINGs are sent here, and each one refused (a
                            // subscription denied by an ACL, a server -BUSY with a script, or
                            // -LOADING) leaves the link short of what the client was promised:
                            // it cannot be counted as anything else.
                            Some(Delivery::Error(text)) => {
                                return Err(format!("the server answered {}", String::from_utf8_lossy(&text)));
                            }
                            None => {}
                        }
                        // Confirmations already counted down, and the start's end marker.
                        while let Some(front) = expected.front() {
                            match front {
                                Expect::Confirmations { left: 0, .. } => {}
                                Expect::Ready => {
                                    if !self.poster.post(Event::Ready(self.id)) {
                                        return Ok(());
                                    }
                                }
                                _ => break,
                            }
                            expected.pop_front();
                        }
                    },
                    Ok(Err(error)) => return Err(format!("read: {error}")),
                    Err(_) if expected.is_empty() => {
                        // Idle: make sure the server is still there.
                        expected.push_back(Expect::Pong { last: false });
                        writer.write_all(&ping()).await.map_err(|error| format!("write: {error}"))?;
                    }
                    Err(_) => return Err(format!("no reply for {} ms", self.options.recv_timeout.as_millis())),
                },
            }
        }
    }
}

/// A reply a link waits for.
enum Expect {
    /// Confirmations of a (un)subscription: how many are still due, and who waits for them.
    Confirmations { left: usize, done: Option<oneshot::Sender<()>> },
    /// The end of the initial subscriptions: the link is ready.
    Ready,
    /// The reply to a `PING`; the `last` one is the retired link's drain.
    Pong { last: bool },
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

fn ping() -> Bytes {
    Request::from_args([&b"PING"[..]]).wire().clone()
}

/// What a frame from a subscribed connection is.
enum Delivery {
    /// A `message` (for a channel) or `pmessage` (for a pattern).
    Message(Kind, Bytes),
    /// A `(p)(un)subscribe` confirmation.
    Confirmation,
    /// The reply to `PING`: `pong` in an array (RESP2 while subscribed), or `+PONG` (RESP3).
    Pong,
    /// An error reply, with its text.
    Error(Bytes),
}

fn classify(raw: &Bytes) -> Option<Delivery> {
    let mut buf = BytesMut::from(&raw[..]);
    let frame = Decoder::new(Limits { max_bulk_len: usize::MAX / 2, ..Limits::default() }).decode(&mut buf).ok()??;
    let parts = match frame {
        Frame::Array(parts) | Frame::Push(parts) => parts,
        Frame::Simple(text) if text.eq_ignore_ascii_case(b"PONG") => return Some(Delivery::Pong),
        Frame::Error(text) | Frame::BlobError(text) => return Some(Delivery::Error(text)),
        _ => return None,
    };
    let kind = parts.first()?.as_bytes()?.to_ascii_lowercase();
    match kind.as_slice() {
        b"message" => Some(Delivery::Message(Kind::Channel, parts.get(1)?.as_bytes()?.clone())),
        b"pmessage" => Some(Delivery::Message(Kind::Pattern, parts.get(1)?.as_bytes()?.clone())),
        b"subscribe" | b"psubscribe" | b"unsubscribe" | b"punsubscribe" => Some(Delivery::Confirmation),
        b"pong" => Some(Delivery::Pong),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_limit_is_redis_client_output_buffer_limit() {
        let limit = OutputLimit { hard_bytes: 100, soft_bytes: 50, soft_seconds: 2 };
        let start = tokio::time::Instant::now();
        let at = |seconds: u64| start + Duration::from_millis(seconds * 1000);
        let mut since = None;
        assert!(!limit.exceeded(49, &mut since, at(0)));
        assert!(limit.exceeded(100, &mut since, at(0)), "the hard limit cuts at once");
        // Over the soft limit: tolerated for its seconds, counted from the first time.
        let mut since = None;
        assert!(!limit.exceeded(60, &mut since, at(0)));
        assert!(!limit.exceeded(60, &mut since, at(2)));
        assert!(limit.exceeded(60, &mut since, at(3)));
        // Dropping below it starts the count again.
        let mut since = None;
        assert!(!limit.exceeded(60, &mut since, at(0)));
        assert!(!limit.exceeded(10, &mut since, at(2)));
        assert!(!limit.exceeded(60, &mut since, at(3)));
        assert!(!limit.exceeded(60, &mut since, at(5)));
        assert!(limit.exceeded(60, &mut since, at(6)));
        // Zero turns a limit off.
        let off = OutputLimit { hard_bytes: 0, soft_bytes: 0, soft_seconds: 0 };
        assert!(!off.exceeded(usize::MAX, &mut None, at(0)));
    }

    #[test]
    fn pongs_confirmations_and_messages_are_told_apart() {
        let classify = |raw: &'static [u8]| classify(&Bytes::from_static(raw));
        assert!(matches!(classify(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"), Some(Delivery::Pong)));
        assert!(matches!(classify(b"+PONG\r\n"), Some(Delivery::Pong)));
        assert!(matches!(classify(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"), Some(Delivery::Confirmation)));
        assert!(matches!(classify(b"-BUSY a script\r\n"), Some(Delivery::Error(text)) if text == "BUSY a script"));
        let message = classify(b">3\r\n$7\r\nmessage\r\n$4\r\npong\r\n$1\r\nx\r\n");
        assert!(matches!(message, Some(Delivery::Message(Kind::Channel, name)) if name == "pong"));
    }

    #[test]
    fn a_hazard_concerns_pattern_subscribers_and_those_of_its_slots_channels() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.names.insert((Kind::Channel, Bytes::from_static(b"news")));
        let news = model::slot_of(b"news").index();
        let hazard = |slots: Vec<usize>| Hazard { why: String::new(), slots: BTreeSet::from_iter(slots) };
        assert!(subscriptions.exposed_to(&hazard(vec![news])));
        assert!(!subscriptions.exposed_to(&hazard(vec![(news + 1) % 1024])));
        subscriptions.names.insert((Kind::Pattern, Bytes::from_static(b"x*")));
        assert!(subscriptions.exposed_to(&hazard(vec![(news + 1) % 1024])));
    }
}
