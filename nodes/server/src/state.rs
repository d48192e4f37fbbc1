//! The state commands run against, behind the server's one lock.
//!
//! Like Redis, the server executes one command at a time against its data. Connection tasks parse
//! and write in parallel; to execute, a connection takes the lock once for its whole batch of
//! pipelined requests. A `std::sync::Mutex` (not an async one) because the lock is never held
//! across an `.await`: execution is pure computation on memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use net::Rng;
use resp::{Request, Version};
use tokio::sync::Notify;

use crate::aof::AppendOnly;
use crate::blocking::Blocked;
use crate::config::{EvictionPolicy, ServerConfig};
use crate::evict::EvictionPool;
use crate::keyspace::{AccessTracking, Bulk, Key, Keyspace, WatchVersion};
use crate::migrate::{FenceWait, Migrations};
use crate::outbox::Outbox;
use crate::persist::Persistence;
use crate::propagate::Propagation;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::slowlog::{LatencyMonitor, SlowLog};

/// What every connection task shares: the state behind its lock.
pub struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Puts `state` behind its lock.
    pub fn new(state: State) -> Shared {
        Shared { state: Mutex::new(state) }
    }

    /// The state, locked. A panic while the lock was held (a bug) poisons it; the state is still
    /// the best there is, so later commands go on rather than all failing.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Server-wide counters for `INFO stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_received: u64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: u64,
    /// Commands executed.
    pub commands_processed: u64,
    /// Clients closed for exceeding an output buffer limit.
    pub output_limit_disconnections: u64,
    /// Keys evicted to stay under `maxmemory`.
    pub evicted_keys: u64,
    /// Replicas sent a full copy.
    pub sync_full: u64,
    /// Replicas that resumed from the backlog.
    pub sync_partial_ok: u64,
    /// Replicas that asked to resume and could not (they got a full copy).
    pub sync_partial_err: u64,
}

/// A key a client watches (`WATCH`), with what `EXEC` compares.
#[derive(Clone, Debug)]
pub struct WatchedKey {
    /// Its database.
    pub db: usize,
    /// The key.
    pub key: Key,
    /// Its version when watched.
    pub seen: WatchVersion,
    /// Whether it had already expired (but not yet been deleted) when watched.
    pub expired: bool,
}

/// What other connections may know about a client (`CLIENT LIST`, `CLIENT KILL`, `INFO clients`).
#[derive(Debug)]
pub struct ClientInfo {
    /// The client's address.
    pub addr: String,
    /// The server address it connected to.
    pub laddr: String,
    /// `CLIENT SETNAME`.
    pub name: Bulk,
    /// Its selected database.
    pub db: usize,
    /// Its protocol.
    pub version: Version,
    /// When it connected (Unix ms).
    pub created_ms: u64,
    /// When it last sent a command (Unix ms).
    pub last_interaction_ms: u64,
    /// The last command it ran, as `CLIENT LIST` shows it.
    pub last_command: &'static str,
    /// Wakes the client's connection task to close it (`CLIENT KILL`).
    pub kill: Arc<Notify>,
    /// Where other clients' commands send it messages and the reply that ends a block.
    pub outbox: Outbox,
    /// The keys it watches.
    pub watched: Vec<WatchedKey>,
    /// Commands queued in its transaction; `None` outside `MULTI`.
    pub multi: Option<usize>,
    /// Scheduled to close (it exceeded an output buffer limit): nothing more is sent to it.
    pub closing: bool,
    /// Since when (Unix ms) its pending output has exceeded the soft limit, if it has.
    pub soft_limit_since_ms: Option<u64>,
}

/// Everything commands read and change.
pub struct State {
    /// The data.
    pub keyspace: Keyspace,
    /// The configuration in force (`CONFIG SET` changes it).
    pub config: ServerConfig,
    /// Connected clients by id, in id order.
    pub clients: BTreeMap<u64, ClientInfo>,
    /// Counters.
    pub stats: Stats,
    /// Clients blocked on keys.
    pub blocked: Blocked,
    /// Pub/sub subscriptions.
    pub pubsub: PubSub,
    /// Candidates for eviction under `maxmemory`.
    pub eviction: EvictionPool,
    /// Commands slower than `slowlog-log-slower-than`.
    pub slowlog: SlowLog,
    /// Events slower than `latency-monitor-threshold`.
    pub latency: LatencyMonitor,
    /// The most memory the data has used (`used_memory_peak`).
    pub peak_memory: usize,
    /// Memory used by the empty server (`used_memory_startup`).
    pub startup_memory: usize,
    /// The process' use of the machine as last sampled by the background cycle (`None` where
    /// the environment has no process to measure, as under the simulator).
    pub process: Option<net::ProcessUsage>,
    /// The server's random stream (`RANDOMKEY`, active expiry sampling).
    pub rng: Rng,
    /// 40 hex digits identifying this run of the server (`INFO server`'s `run_id`).
    pub run_id: String,
    /// When the server started (Unix ms).
    pub started_ms: u64,
    /// The port it listens on, as `INFO server` reports it.
    pub port: u16,
    /// No command runs before this time (Unix ms): `DEBUG SLEEP` stops the server until then.
    pub paused_until_ms: u64,
    /// Whether the background cycle expires keys (`DEBUG SET-ACTIVE-EXPIRE`).
    pub active_expire: bool,
    /// Slot migrations in progress: keys in flight, asynchronous batches, the migrator.
    pub migrations: Migrations,
    /// Snapshots: the last one, the one being written, the writer.
    pub persistence: Persistence,
    /// The changes the append-only log and replicas follow.
    pub propagation: Propagation,
    /// The append-only log, as commands see it.
    pub aof: AppendOnly,
    /// Replicas following this server.
    pub replication: Replication,
    /// Set to `true` to stop the server (`SHUTDOWN`, or the owner's shutdown signal): the accept
    /// loop and every connection watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// A `SHUTDOWN` waiting for the accept loop to prepare the stop (see [`crate::shutdown`]).
    pub shutdown_request: Option<crate::shutdown::Request>,
    /// Wakes the accept loop for `shutdown_request`.
    pub shutdown_requested: Arc<Notify>,
    next_client_id: u64,
}

impl State {
    /// Fresh state for a server configured by `config`, drawing randomness from `rng`.
    pub fn new(config: ServerConfig, mut rng: Rng, now_ms: u64, port: u16) -> State {
        use net::rand::Rng as _;
        let mut hex_id =
            || -> String { (0..40).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect() };
        let (run_id, replid) = (hex_id(), hex_id());
        let keyspace = Keyspace::new(config.databases, rng.random());
        let migrations = Migrations::new(config.databases);
        let mut state = State {
            keyspace,
            config,
            clients: BTreeMap::new(),
            stats: Stats::default(),
            blocked: Blocked::default(),
            pubsub: PubSub::default(),
            eviction: EvictionPool::default(),
            slowlog: SlowLog::default(),
            latency: LatencyMonitor::default(),
            peak_memory: 0,
            startup_memory: 0,
            process: None,
            rng,
            run_id,
            started_ms: now_ms,
            port,
            paused_until_ms: 0,
            active_expire: true,
            migrations,
            persistence: Persistence::new(now_ms),
            propagation: Propagation::default(),
            aof: AppendOnly::default(),
            replication: Replication::new(replid),
            shutdown: tokio::sync::watch::Sender::new(false),
            shutdown_request: None,
            shutdown_requested: Arc::new(Notify::new()),
            next_client_id: 0,
        };
        state.apply_access_tracking();
        state.startup_memory = crate::evict::used_memory(&state);
        state.peak_memory = state.startup_memory;
        state
    }

    /// Makes every database record accesses as the eviction policy needs (frequency for the LFU
    /// policies, time otherwise); called at start and whenever the configuration changes.
    pub fn apply_access_tracking(&mut self) {
        let tracking = match self.config.maxmemory_policy {
            EvictionPolicy::AllkeysLfu | EvictionPolicy::VolatileLfu => AccessTracking::Lfu {
                log_factor: self.config.lfu_log_factor,
                decay_minutes: self.config.lfu_decay_time,
            },
            _ => AccessTracking::Lru,
        };
        for db in self.keyspace.dbs_mut() {
            db.set_access_tracking(tracking);
        }
    }

    /// Starts recording the change stream (`propagation`), with the keys that expire from now
    /// on, for the append-only log or a first replica. Recording never stops: Redis too keeps
    /// its backlog once it has one.
    pub fn propagate_changes(&mut self) {
        self.propagation.listen();
        for db in self.keyspace.dbs_mut() {
            db.set_log_expired(true);
        }
    }

    /// Registers a new connection; returns its id (ids start at 1 and never repeat).
    pub fn register_client(&mut self, info: ClientInfo) -> u64 {
        self.next_client_id += 1;
        let id = self.next_client_id;
        self.clients.insert(id, info);
        id
    }
}

/// A connection's own state, owned by its task and lent to commands.
#[derive(Debug)]
pub struct Client {
    /// The client's id.
    pub id: u64,
    /// The selected database.
    pub db: usize,
    /// The protocol it speaks (`HELLO 3` switches to RESP3).
    pub version: Version,
    /// Whether it has authenticated (always, when no password is configured).
    pub authenticated: bool,
    /// Close the connection once the current reply is written (`QUIT`, protocol errors).
    pub close_after_reply: bool,
    /// The open transaction, between `MULTI` and `EXEC`/`DISCARD`.
    pub multi: Option<Transaction>,
    /// Set while `EXEC` runs: blocking commands answer at once instead of blocking.
    pub deny_blocking: bool,
    /// Set by a blocking command that found nothing: the connection waits for the reply another
    /// client's command will post, or for the deadline.
    pub blocked: Option<Block>,
    /// Channels and patterns subscribed: in RESP2, a subscribed client may only run the pub/sub
    /// commands, `PING`, `QUIT` and `RESET`.
    pub subscriptions: usize,
    /// Set when the command would write a key a migration has in flight: it did not run, and
    /// runs again once the fence lifts.
    pub fenced: Option<FenceWait>,
    /// Set by `PSYNC`/`SYNC`: from now on the connection carries the replication stream to a
    /// replica.
    pub feeds_replica: bool,
    /// The port the client says it listens on as a replica (`REPLCONF listening-port`).
    pub replica_port: u16,
    /// The master's stream, applied by a replica: its writes are not refused as read-only.
    pub from_master: bool,
}

impl Client {
    /// A freshly connected client.
    pub fn new(id: u64, authenticated: bool) -> Client {
        Client {
            id,
            db: 0,
            version: Version::Resp2,
            authenticated,
            close_after_reply: false,
            multi: None,
            deny_blocking: false,
            blocked: None,
            subscriptions: 0,
            fenced: None,
            feeds_replica: false,
            replica_port: 0,
            from_master: false,
        }
    }
}

/// Commands queued between `MULTI` and `EXEC`.
#[derive(Debug, Default)]
pub struct Transaction {
    /// The commands, in order.
    pub queued: Vec<Request>,
    /// A command was refused while queueing: `EXEC` will discard the transaction.
    pub aborted: bool,
    /// A queued command may grow memory: `EXEC` is refused when out of memory.
    pub denyoom: bool,
}

/// A blocked client's wait, as its connection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// When it times out (Unix ms); `None`: never.
    pub deadline_ms: Option<u64>,
}
