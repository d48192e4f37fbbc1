//! The state commands run against, behind the server's one lock.
//!
//! Like Redis, the server executes one command at a time against its data. Connection tasks parse
//! and write in parallel; to execute, a connection takes the lock once for its whole batch of
//! pipelined requests. A `std::sync::Mutex` (not an async one) because the lock is never held
//! across an `.await`: execution is pure computation on memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use net::Rng;
use resp::Version;
use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::keyspace::{Bulk, Keyspace};

/// Server-wide counters for `INFO stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_received: u64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: u64,
    /// Commands executed.
    pub commands_processed: u64,
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
    /// The server's random stream (`RANDOMKEY`, active expiry sampling).
    pub rng: Rng,
    /// 40 hex digits identifying this run of the server (`INFO server`'s `run_id`).
    pub run_id: String,
    /// When the server started (Unix ms).
    pub started_ms: u64,
    /// The port it listens on, as `INFO server` reports it.
    pub port: u16,
    next_client_id: u64,
}

impl State {
    /// Fresh state for a server configured by `config`, drawing randomness from `rng`.
    pub fn new(config: ServerConfig, mut rng: Rng, now_ms: u64, port: u16) -> State {
        use net::rand::Rng as _;
        let run_id: String = (0..40).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect();
        let keyspace = Keyspace::new(config.databases, rng.random());
        State {
            keyspace,
            config,
            clients: BTreeMap::new(),
            stats: Stats::default(),
            rng,
            run_id,
            started_ms: now_ms,
            port,
            next_client_id: 0,
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
}
