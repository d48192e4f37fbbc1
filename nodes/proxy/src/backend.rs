//! Connections to backend servers: each one pipelines every request sent through it and hands
//! each reply, as its raw bytes, to whoever sent the matching request, in order.
//!
//! One task per connection: it connects when the first request comes (then `AUTH` with the
//! product's password and `SELECT` of its database), writes requests in batches, reads replies
//! as they come, and on any failure answers every request in flight with an error, reconnects
//! with backoff, and meanwhile fails new requests at once rather than queueing them (Codis'
//! "fail fast").

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use net::{Env, Stream};
use resp::{Decoder, Frame, Limits, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Why a backend gave no reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The connection failed with the request in flight, or was down when it arrived.
    #[error("backend conn reset ({0})")]
    Reset(String),
    /// The backend's reply was not RESP.
    #[error("backend sent a malformed reply ({0})")]
    Protocol(String),
}

/// A backend's reply: a whole RESP frame as it arrived.
pub type Reply = Result<Bytes, BackendError>;

/// One request for a backend.
#[derive(Debug)]
pub struct Call {
    /// The request, encoded.
    pub wire: Bytes,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Reply>,
    /// In synchronous mode: the replicas that must have everything the request wrote or saw
    /// before it is answered.
    pub acks: Option<Acks>,
}

/// How many replicas must acknowledge a write, and how long to wait for them (`WAIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acks {
    /// Replicas needed.
    pub replicas: u32,
    /// How long `WAIT` may block.
    pub timeout: Duration,
}

/// How long requests that need replicas fail at once after a `WAIT` fell short.
const SHORT_REPLICAS_PAUSE_MS: u64 = 1_000;

impl Acks {
    /// How many replicas `WAIT`'s reply says acknowledged (0 for an error).
    fn acknowledged(self, wait: &[u8]) -> i64 {
        wait.strip_prefix(b":").and_then(|body| body.strip_suffix(b"\r\n")).and_then(resp::parse_i64).unwrap_or(0)
    }

    /// The answer while the backend lacks replicas (its last `WAIT` fell short): the request
    /// was not sent.
    fn short_answer(self) -> Bytes {
        Bytes::from(format!(
            "-NOREPLICAS fewer than {} replicas acknowledged lately; the request was not sent\r\n",
            self.replicas
        ))
    }

    /// The `WAIT` that follows the write on its connection.
    pub fn wait_wire(self) -> Bytes {
        let mut out = BytesMut::new();
        encode::write_array_header(&mut out, 3);
        encode::write_bulk(&mut out, b"WAIT");
        encode::write_bulk(&mut out, self.replicas.to_string().as_bytes());
        encode::write_bulk(&mut out, self.timeout.as_millis().to_string().as_bytes());
        out.freeze()
    }

    /// The client's answer from the request's reply and `WAIT`'s: the request's, once enough
    /// replicas have what it wrote or read; otherwise an error that says a write may still be
    /// applied.
    pub fn answer(self, write: Bytes, wait: &[u8]) -> Bytes {
        if write.starts_with(b"-") {
            return write;
        }
        let acknowledged = self.acknowledged(wait);
        if acknowledged >= i64::from(self.replicas) {
            return write;
        }
        Bytes::from(format!(
            "-NOREPLICAS {acknowledged} of the {} replicas needed acknowledged within {} ms; a write may still be applied\r\n",
            self.replicas,
            self.timeout.as_millis()
        ))
    }
}

/// How backend connections authenticate and how long they wait.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// `AUTH` with this on connect (Codis' `product_auth`), empty for none.
    pub password: String,
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// How long requests may wait with no reply at all before the connection is declared dead
    /// (Codis' `backend_recv_timeout`): a black-holed connection otherwise holds them forever.
    pub recv_timeout: Duration,
    /// Connections per address and database (Codis' `backend_primary_parallel`).
    pub parallel: usize,
    /// Databases a session may `SELECT` (Codis' `backend_number_databases`).
    pub databases: usize,
    /// How often an idle connection sends `PING` (Codis' `backend_ping_period`); zero: never.
    pub ping_period: Duration,
    /// TCP keep-alive period (Codis' `backend_keepalive_period`); zero: off.
    pub keepalive: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            password: String::new(),
            connect_timeout: Duration::from_secs(5),
            recv_timeout: Duration::from_secs(30),
            parallel: 1,
            databases: 16,
            ping_period: Duration::from_secs(5),
            keepalive: Duration::from_secs(75),
        }
    }
}

/// What the proxy knows of a backend connection (Codis' connection states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not connected: never used yet, or failed and not back.
    Down,
    /// Connected, and the last keep-alive `PING` was answered.
    Up,
    /// Connected, but the server said `MASTERDOWN` (a replica cut from its master) or `LOADING`:
    /// it answers, but not with current data. Reads are not sent to such a replica.
    Stale,
}

impl Health {
    fn from_u8(value: u8) -> Health {
        match value {
            1 => Health::Up,
            2 => Health::Stale,
            _ => Health::Down,
        }
    }

    /// Its name in the admin API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Down => "down",
            Health::Up => "up",
            Health::Stale => "stale",
        }
    }
}

/// A connection's health, shared between its task and whoever routes through it, and how long
/// it has been in trouble: down, or owing replies with none coming. The dashboard asks proxies
/// for the latter before it declares a master dead (a quorum of them must agree).
#[derive(Debug)]
struct HealthCell {
    state: AtomicU8,
    /// Since when (ms after `base`, plus one; 0: no trouble) the connection has been down or
    /// silent while owing replies.
    trouble_since: AtomicU64,
    base: tokio::time::Instant,
    /// Cuts a reconnect back-off short (the backend was just given slots: try it now).
    kick: tokio::sync::Notify,
    /// Drops the connection, failing what it owes (its slots went elsewhere, and a silent
    /// backend must not hold the table change for `backend_recv_timeout`).
    reset: tokio::sync::Notify,
    /// Until when (as `trouble_since`) requests that need replicas fail at once: the last
    /// `WAIT` fell short, and each would otherwise hold the connection for the whole timeout.
    short_until: AtomicU64,
}

impl HealthCell {
    fn new() -> HealthCell {
        HealthCell {
            state: AtomicU8::new(0),
            trouble_since: AtomicU64::new(0),
            base: tokio::time::Instant::now(),
            kick: tokio::sync::Notify::new(),
            reset: tokio::sync::Notify::new(),
            short_until: AtomicU64::new(0),
        }
    }

    fn get(&self) -> Health {
        Health::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set(&self, health: Health) {
        self.state.store(health as u8, Ordering::Relaxed);
        if health == Health::Down {
            self.trouble_begins();
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Starts counting trouble, unless it is already counting.
    fn trouble_begins(&self) {
        let _ = self.trouble_since.compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The backend answered: no trouble if nothing else is owed, else count again from now.
    fn heard(&self, owing: bool) {
        self.trouble_since.store(if owing { self.now() } else { 0 }, Ordering::Relaxed);
    }

    /// A `WAIT` fell short (or did not): requests needing replicas fail at once for a while.
    fn replicas_short(&self, short: bool) {
        let until = if short { self.now() + SHORT_REPLICAS_PAUSE_MS } else { 0 };
        self.short_until.store(until, Ordering::Relaxed);
    }

    /// Whether requests needing replicas fail at once now.
    fn is_short(&self) -> bool {
        self.now() < self.short_until.load(Ordering::Relaxed)
    }

    /// How long the connection has been down or silent while owing replies (zero: it is fine).
    fn trouble_for(&self) -> Duration {
        match self.trouble_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now().saturating_sub(since)),
        }
    }
}

/// A handle on one backend connection's task.
#[derive(Clone, Debug)]
pub struct BackendConn {
    calls: mpsc::UnboundedSender<Call>,
    health: Arc<HealthCell>,
}

impl BackendConn {
    /// Starts the task for `addr`, database `db`, speaking `version` (RESP3 connections say
    /// `HELLO 3` on connect, so RESP3 clients get the backend's RESP3 replies as they are).
    ///
    /// An `eager` connection connects at once and keeps trying while the backend is down, so
    /// its health says whether the backend is up even before anyone used it; the others connect
    /// when first needed.
    pub fn start<E: Env>(
        env: &E,
        addr: &str,
        db: usize,
        version: Version,
        options: &BackendOptions,
        eager: bool,
        epoch: Arc<AtomicU64>,
    ) -> BackendConn {
        let (calls, receiver) = mpsc::unbounded_channel();
        let health = Arc::new(HealthCell::new());
        let link =
            Link { addr: addr.to_string(), db, version, options: options.clone(), health: health.clone(), epoch };
        env.spawn(run(env.clone(), link, receiver, eager));
        BackendConn { calls, health }
    }

    /// The connection's health.
    pub fn health(&self) -> Health {
        self.health.get()
    }

    /// How long the connection has been down, or silent while owing replies (zero: fine).
    pub fn trouble_for(&self) -> Duration {
        self.health.trouble_for()
    }

    /// Sends `wire`; the reply arrives on the returned receiver.
    pub fn send(&self, wire: Bytes) -> oneshot::Receiver<Reply> {
        self.send_acked(wire, None)
    }

    /// Sends `wire`, a write that, with `acks`, is answered only once that many replicas have
    /// it (a `WAIT` follows it on the connection).
    pub fn send_acked(&self, wire: Bytes, acks: Option<Acks>) -> oneshot::Receiver<Reply> {
        let (reply, receiver) = oneshot::channel();
        if let Some(acks) = acks
            && self.health.is_short()
        {
            let _ = reply.send(Ok(acks.short_answer()));
            return receiver;
        }
        if let Err(returned) = self.calls.send(Call { wire, reply, acks }) {
            let _ = returned.0.reply.send(Err(BackendError::Reset("connection closed".into())));
        }
        receiver
    }
}

/// Every connection to one backend address: `protocols × databases × parallel` (each connects
/// when first used).
#[derive(Debug)]
pub struct Backend {
    addr: String,
    conns: Vec<BackendConn>,
    parallel: usize,
    databases: usize,
    /// The newest failover epoch the slot table gives this server's group: each new
    /// connection tells the server (`EPOCH`), so a master superseded by a promotion learns it
    /// from any proxy that knows, and refuses writes.
    epoch: Arc<AtomicU64>,
}

impl Backend {
    /// The address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The connection for database `db` and protocol `version` that carries `slot`'s requests:
    /// always the same one, so one client's requests to one slot keep their order even with
    /// parallel connections.
    pub fn conn(&self, db: usize, slot: usize, version: Version) -> &BackendConn {
        let protocol = usize::from(version == Version::Resp3);
        let index = (protocol * self.databases + db) * self.parallel + slot % self.parallel;
        &self.conns[index.min(self.conns.len() - 1)]
    }

    /// The backend's health, as its first connection (database 0, always kept connected) sees
    /// it.
    pub fn health(&self) -> Health {
        self.conns.first().map_or(Health::Down, BackendConn::health)
    }

    /// How long the backend has been down or silent, as its first connection sees it.
    pub fn trouble_for(&self) -> Duration {
        self.conns.first().map_or(Duration::ZERO, BackendConn::trouble_for)
    }

    /// Drops every connection that owes replies, failing them: the requests of slots that
    /// are being moved away from this backend end now.
    pub fn reset(&self) {
        for conn in &self.conns {
            conn.health.reset.notify_waiters();
        }
    }

    /// Raises the epoch new connections tell the server.
    pub fn raise_epoch(&self, epoch: u64) {
        self.epoch.fetch_max(epoch, Ordering::Relaxed);
    }

    /// Makes connections waiting out a reconnect back-off try again now.
    pub fn kick(&self) {
        for conn in &self.conns {
            if conn.health() == Health::Down {
                conn.health.kick.notify_one();
            }
        }
    }
}

/// The backends in use, shared by every slot that points at them.
#[derive(Debug)]
pub struct Pool<E> {
    env: E,
    options: BackendOptions,
    backends: Mutex<BTreeMap<String, Arc<Backend>>>,
}

impl<E: Env> Pool<E> {
    /// An empty pool.
    pub fn new(env: E, options: BackendOptions) -> Pool<E> {
        Pool { env, options, backends: Mutex::new(BTreeMap::new()) }
    }

    /// The environment connections are made in.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// The connection options.
    pub fn options(&self) -> &BackendOptions {
        &self.options
    }

    /// The backend at `addr`, starting its connections if it is new. One that is down is
    /// tried again at once (it is being given slots: a promoted replica, a restarted master).
    pub fn get(&self, addr: &str) -> Arc<Backend> {
        self.get_at_epoch(addr, 0)
    }

    /// [`Pool::get`] for a backend whose group is at `epoch` (told to the server by each new
    /// connection, the first one included).
    pub fn get_at_epoch(&self, addr: &str, epoch: u64) -> Arc<Backend> {
        let mut backends = self.backends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(backend) = backends.get(addr) {
            backend.raise_epoch(epoch);
            backend.kick();
            return backend.clone();
        }
        backends
            .entry(addr.to_string())
            .or_insert_with(|| {
                let parallel = self.options.parallel.max(1);
                let databases = self.options.databases.max(1);
                let epoch = Arc::new(AtomicU64::new(epoch));
                let conns = [Version::Resp2, Version::Resp3]
                    .into_iter()
                    .flat_map(|version| (0..databases).map(move |db| (version, db)))
                    .flat_map(|(version, db)| (0..parallel).map(move |_| (version, db)))
                    .enumerate()
                    .map(|(index, (version, db))| {
                        BackendConn::start(&self.env, addr, db, version, &self.options, index == 0, epoch.clone())
                    })
                    .collect();
                Arc::new(Backend { addr: addr.to_string(), conns, parallel, databases, epoch })
            })
            .clone()
    }

    /// Every backend's address, health, and how long it has been in trouble, by address.
    pub fn health(&self) -> Vec<(String, Health, Duration)> {
        let backends = self.backends.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        backends.iter().map(|(addr, backend)| (addr.clone(), backend.health(), backend.trouble_for())).collect()
    }

    /// The backend at `addr` if the pool has it (Codis' `PING addr`, `INFO addr`).
    pub fn find(&self, addr: &str) -> Option<Arc<Backend>> {
        self.backends.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(addr).cloned()
    }
}

/// A connection one session owns: a transaction's `WATCH` lives on it. Each call waits for its
/// replies, and a failure ends the connection instead of reconnecting behind the session's back,
/// so the session learns that what the server kept for it is gone.
pub struct Dedicated<E: Env> {
    addr: String,
    /// Only ever used through `&mut self` (`get_mut`, no locking): the mutex makes the
    /// connection `Sync`, so a session holding one stays `Send` across awaits.
    stream: tokio::sync::Mutex<E::Stream>,
    buf: BytesMut,
    decoder: Decoder,
    recv_timeout: Duration,
}

impl<E: Env> Dedicated<E> {
    /// Connects to `addr`, authenticated and on database `db`, speaking `version`.
    pub async fn open(
        env: &E,
        addr: &str,
        db: usize,
        version: Version,
        options: &BackendOptions,
    ) -> Result<Dedicated<E>, BackendError> {
        let stream = connect(env, addr, db, version, options, 0).await.map_err(BackendError::Reset)?;
        Ok(Dedicated {
            addr: addr.to_string(),
            stream: tokio::sync::Mutex::new(stream),
            buf: BytesMut::new(),
            decoder: Decoder::new(Limits {
                max_bulk_len: usize::MAX / 2,
                max_array_len: usize::MAX / 2,
                ..Limits::default()
            }),
            recv_timeout: options.recv_timeout,
        })
    }

    /// The backend's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `wires` in one write and returns their replies, in order. After an error the
    /// connection is unusable: drop it.
    pub async fn call(&mut self, wires: &[Bytes]) -> Result<Vec<Bytes>, BackendError> {
        let mut out = BytesMut::new();
        for wire in wires {
            out.extend_from_slice(wire);
        }
        let stream = self.stream.get_mut();
        stream.write_all(&out).await.map_err(|error| BackendError::Reset(format!("write: {error}")))?;
        let mut replies = Vec::with_capacity(wires.len());
        while replies.len() < wires.len() {
            match self.decoder.decode_raw(&mut self.buf) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => match tokio::time::timeout(self.recv_timeout, stream.read_buf(&mut self.buf)).await {
                    Ok(Ok(0)) => return Err(BackendError::Reset("closed by the backend".into())),
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(BackendError::Reset(format!("read: {error}"))),
                    Err(_) => {
                        return Err(BackendError::Reset(format!("no reply for {} ms", self.recv_timeout.as_millis())));
                    }
                },
                Err(error) => return Err(BackendError::Protocol(error.to_string())),
            }
        }
        Ok(replies)
    }
}

/// Failures in a row answered by reconnecting at once, before backing off.
const QUICK_RETRIES: u32 = 10;

/// The pause before reconnecting after `failures` failures in a row: none for the first
/// `quick` (a link that just broke is retried at once), then 50 ms doubling up to 5 s.
pub(crate) fn backoff(failures: u32, quick: u32) -> Duration {
    match failures.checked_sub(quick) {
        None | Some(0) => Duration::ZERO,
        Some(over) => Duration::from_millis(50u64 << over.min(7)).min(Duration::from_secs(5)),
    }
}

/// Waits `delay`, handing what arrives on `inbox` meanwhile to `handle`; `false` if the inbox
/// closed (its owner is gone).
pub(crate) async fn pause_serving<T>(
    delay: Duration,
    inbox: &mut mpsc::UnboundedReceiver<T>,
    mut handle: impl FnMut(T),
) -> bool {
    if delay.is_zero() {
        return true;
    }
    let deadline = tokio::time::sleep(delay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            () = &mut deadline => return true,
            message = inbox.recv() => match message {
                Some(message) => handle(message),
                None => return false,
            },
        }
    }
}

/// Where a connection task connects, and where it reports its health.
struct Link {
    addr: String,
    db: usize,
    version: Version,
    options: BackendOptions,
    health: Arc<HealthCell>,
    epoch: Arc<AtomicU64>,
}

/// The connection task.
async fn run<E: Env>(env: E, link: Link, mut calls: mpsc::UnboundedReceiver<Call>, eager: bool) {
    let addr = &link.addr;
    let mut failures = 0u32;
    let mut first = None;
    if !eager {
        // Nothing happens until someone needs this connection.
        first = match calls.recv().await {
            Some(call) => Some(call),
            None => return,
        };
    }
    loop {
        let epoch = link.epoch.load(Ordering::Relaxed);
        let error = match connect_answered(&env, addr, link.db, link.version, &link.options, epoch).await {
            Ok((stream, answered)) => {
                // Only a backend that answered is up and out of trouble: a connection that
                // merely opened may lead to a stopped process (its kernel accepts for it), and
                // forgetting the trouble at every reconnect would hide a dead master from the
                // failover quorum for ever. The keep-alive asks it at once instead.
                if answered {
                    link.health.set(Health::Up);
                    link.health.heard(false);
                }
                let served = serve(stream, &mut calls, first.take(), &link, !answered).await;
                if answered || served.answered {
                    failures = 0;
                }
                link.health.set(Health::Down);
                served.error
            }
            Err(error) => {
                // Requests that came while connecting fail with it: none waits for a later
                // connect and runs long after its client gave up.
                if let Some(first) = first.take() {
                    let _ = first.reply.send(Err(BackendError::Reset(error.clone())));
                }
                while let Ok(call) = calls.try_recv() {
                    let _ = call.reply.send(Err(BackendError::Reset(error.clone())));
                }
                Some(error)
            }
        };
        // No error: the pool is gone.
        let Some(error) = error else {
            return;
        };
        failures += 1;
        debug!(%addr, db = link.db, %error, failures, "backend connection down");
        // Back off, failing whatever arrives meanwhile.
        let fail = |call: Call| {
            let _ = call.reply.send(Err(BackendError::Reset(format!("{addr} is down"))));
        };
        let pause = pause_serving(backoff(failures, QUICK_RETRIES), &mut calls, fail);
        tokio::select! {
            alive = pause => if !alive { return },
            () = link.health.kick.notified() => {}
        }
        if !eager {
            first = match calls.recv().await {
                Some(call) => Some(call),
                None => return,
            };
        }
    }
}

/// Connects, authenticates, selects the database and, with a non-zero `epoch`, tells the
/// server the failover epoch of its group.
pub(crate) async fn connect<E: Env>(
    env: &E,
    addr: &str,
    db: usize,
    version: Version,
    options: &BackendOptions,
    epoch: u64,
) -> Result<E::Stream, String> {
    connect_answered(env, addr, db, version, options, epoch).await.map(|(stream, _)| stream)
}

/// [`connect`], saying whether the server answered anything (a handshake it replied to): a
/// connection that merely opened proves nothing, since the kernel of a stopped process still
/// accepts connections for it.
async fn connect_answered<E: Env>(
    env: &E,
    addr: &str,
    db: usize,
    version: Version,
    options: &BackendOptions,
    epoch: u64,
) -> Result<(E::Stream, bool), String> {
    let mut stream =
        env.connect(addr, options.connect_timeout).await.map_err(|error| format!("connect {addr}: {error}"))?;
    if !options.keepalive.is_zero()
        && let Err(error) = stream.set_keepalive(options.keepalive)
    {
        debug!(%addr, %error, "no TCP keep-alive");
    }
    let mut handshake = BytesMut::new();
    let mut expected = 0;
    if version == Version::Resp3 {
        // HELLO 3 authenticates too.
        let mut args: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if !options.password.is_empty() {
            args.extend([&b"AUTH"[..], b"default", options.password.as_bytes()]);
        }
        encode::write_array_header(&mut handshake, args.len());
        for arg in args {
            encode::write_bulk(&mut handshake, arg);
        }
        expected += 1;
    } else if !options.password.is_empty() {
        encode::write_array_header(&mut handshake, 2);
        encode::write_bulk(&mut handshake, b"AUTH");
        encode::write_bulk(&mut handshake, options.password.as_bytes());
        expected += 1;
    }
    if db != 0 {
        encode::write_array_header(&mut handshake, 2);
        encode::write_bulk(&mut handshake, b"SELECT");
        encode::write_bulk(&mut handshake, db.to_string().as_bytes());
        expected += 1;
    }
    // Last, so its answer is the last one: any answer will do (a server that knows a newer
    // epoch says `STALE`; this proxy's table is behind and a fresher one is on its way).
    if epoch > 0 {
        encode::write_array_header(&mut handshake, 2);
        encode::write_bulk(&mut handshake, b"EPOCH");
        encode::write_bulk(&mut handshake, epoch.to_string().as_bytes());
        expected += 1;
    }
    if expected == 0 {
        return Ok((stream, false));
    }
    let timeout = options.connect_timeout;
    let exchange = async {
        stream.write_all(&handshake).await.map_err(|error| format!("write {addr}: {error}"))?;
        let mut decoder = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut seen = 0;
        while seen < expected {
            match decoder.decode(&mut buf).map_err(|error| error.to_string())? {
                Some(Frame::Simple(_) | Frame::Map(_)) => seen += 1,
                Some(_) if epoch > 0 && seen + 1 == expected => seen += 1,
                Some(other) => return Err(format!("{addr} refused the handshake: {other:?}")),
                None => {
                    if stream.read_buf(&mut buf).await.map_err(|error| error.to_string())? == 0 {
                        return Err(format!("{addr} closed the connection"));
                    }
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => Ok((stream, true)),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!("{addr}: handshake timed out")),
    }
}

/// Who waits for a reply.
enum Waiter {
    /// A request's sender.
    Call(oneshot::Sender<Reply>),
    /// A write followed by `WAIT`: two replies, combined (the first, once it came).
    Acked { reply: oneshot::Sender<Reply>, acks: Acks, write: Option<Bytes> },
    /// The keep-alive `PING`: its reply tells the connection's health.
    Ping,
}

/// Whether a reply says the server's data is not current (`MASTERDOWN`, `LOADING`).
fn says_stale(reply: &[u8]) -> bool {
    reply.starts_with(b"-MASTERDOWN") || reply.starts_with(b"-LOADING")
}

/// How serving a connection ended.
struct Served {
    /// Why it failed, after answering everything in flight with it; `None`: the pool is gone.
    error: Option<String>,
    /// Whether the backend answered anything on it.
    answered: bool,
}

/// Serves calls on a connected stream until it fails or the pool is gone. Every `ping_period`
/// without a request, it sends a `PING` whose reply sets the connection's health; with `probe`,
/// it sends one at once (the backend has not answered anything yet).
async fn serve<S: Stream>(
    stream: S,
    calls: &mut mpsc::UnboundedReceiver<Call>,
    first: Option<Call>,
    link: &Link,
    probe: bool,
) -> Served {
    let recv_timeout = link.options.recv_timeout;
    let (mut reader, mut writer) = stream.into_split();
    let in_flight: Mutex<VecDeque<Waiter>> = Mutex::new(VecDeque::new());
    let lock = || in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let answered = AtomicBool::new(false);
    let write = async {
        let mut out = BytesMut::new();
        let mut next = first;
        if probe {
            {
                let mut queue = lock();
                link.health.trouble_begins();
                queue.push_back(Waiter::Ping);
            }
            if let Err(error) = writer.write_all(b"*1\r\n$4\r\nPING\r\n").await {
                return Some(format!("write: {error}"));
            }
        }
        let mut ticker = (!link.options.ping_period.is_zero()).then(|| {
            let period = link.options.ping_period;
            tokio::time::interval_at(tokio::time::Instant::now() + period, period)
        });
        let mut busy = false;
        loop {
            let call = match next.take() {
                Some(call) => Some(call),
                None => tokio::select! {
                    biased;
                    call = calls.recv() => match call {
                        Some(call) => Some(call),
                        None => return None,
                    },
                    _ = async {
                        match ticker.as_mut() {
                            Some(ticker) => ticker.tick().await,
                            None => std::future::pending().await,
                        }
                    } => None,
                },
            };
            let Some(call) = call else {
                // A tick: PING if nothing was sent since the last one.
                if !std::mem::take(&mut busy) {
                    {
                        let mut queue = lock();
                        if queue.is_empty() {
                            link.health.trouble_begins();
                        }
                        queue.push_back(Waiter::Ping);
                    }
                    if let Err(error) = writer.write_all(b"*1\r\n$4\r\nPING\r\n").await {
                        return Some(format!("write: {error}"));
                    }
                }
                continue;
            };
            busy = true;
            // Let the other sessions that are ready dispatch too, so their requests share this
            // write (one syscall, and one wake-up of the backend, for many clients).
            tokio::task::yield_now().await;
            {
                let mut queue = lock();
                if queue.is_empty() {
                    link.health.trouble_begins();
                }
                let mut enqueue = |call: Call| {
                    out.extend_from_slice(&call.wire);
                    match call.acks {
                        None => queue.push_back(Waiter::Call(call.reply)),
                        Some(acks) => {
                            out.extend_from_slice(&acks.wait_wire());
                            queue.push_back(Waiter::Acked { reply: call.reply, acks, write: None });
                        }
                    }
                };
                enqueue(call);
                // Everything already waiting goes in the same write.
                while let Ok(call) = calls.try_recv() {
                    enqueue(call);
                }
            }
            if let Err(error) = writer.write_all(&out).await {
                return Some(format!("write: {error}"));
            }
            out.clear();
        }
    };
    let read = async {
        let mut decoder =
            Decoder::new(Limits { max_bulk_len: usize::MAX / 2, max_array_len: usize::MAX / 2, ..Limits::default() });
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            match tokio::time::timeout(recv_timeout, reader.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return "closed by the backend".to_string(),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return format!("read: {error}"),
                // Silence is fine while nothing is asked; with requests waiting it is a dead link.
                Err(_) if lock().is_empty() => continue,
                Err(_) => return format!("no reply for {} ms", recv_timeout.as_millis()),
            }
            loop {
                match decoder.decode_raw(&mut buf) {
                    Ok(Some(reply)) => {
                        let waiter = {
                            let mut queue = lock();
                            // A write's reply: its `WAIT`'s comes next.
                            if let Some(Waiter::Acked { write: first @ None, .. }) = queue.front_mut() {
                                *first = Some(reply);
                                continue;
                            }
                            queue.pop_front()
                        };
                        match waiter {
                            Some(Waiter::Call(waiter)) => {
                                if says_stale(&reply) {
                                    link.health.set(Health::Stale);
                                }
                                let _ = waiter.send(Ok(reply));
                            }
                            Some(Waiter::Acked { reply: waiter, acks, write }) => {
                                link.health.replicas_short(acks.acknowledged(&reply) < i64::from(acks.replicas));
                                let _ = waiter.send(Ok(acks.answer(write.unwrap_or_default(), &reply)));
                            }
                            Some(Waiter::Ping) => {
                                link.health.set(if reply.starts_with(b"+PONG") { Health::Up } else { Health::Stale });
                            }
                            None => return "a reply nobody asked for".to_string(),
                        }
                    }
                    // The backend spoke: trouble counts again from now if it still owes
                    // replies (once per read, not per reply).
                    Ok(None) => {
                        link.health.heard(!lock().is_empty());
                        answered.store(true, Ordering::Relaxed);
                        break;
                    }
                    Err(error) => return format!("protocol: {error}"),
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
        }
    };
    let error = tokio::select! {
        biased;
        error = read => Some(error),
        error = write => error,
        () = link.health.reset.notified() => Some("reset: the slots it served went elsewhere while it owed replies".to_string()),
    };
    let answered = answered.load(Ordering::Relaxed);
    let Some(error) = error else {
        return Served { error: None, answered };
    };
    warn!(addr = %link.addr, %error, "backend connection failed");
    for waiter in lock().drain(..) {
        if let Waiter::Call(waiter) | Waiter::Acked { reply: waiter, .. } = waiter {
            let _ = waiter.send(Err(BackendError::Reset(error.clone())));
        }
    }
    Served { error: Some(error), answered }
}
