//! Clients blocked on keys (`BLPOP`, `BLMOVE`, `BZPOPMIN` …): who waits, on what, for what.
//!
//! As in Redis, a blocked client is served by the command that makes one of its keys ready, in
//! the same step, before any other command runs: the pusher's execution pops on the waiter's
//! behalf and posts the reply to the waiter's connection (see `cmd::blocking`). So an element
//! pushed to a key with waiters goes to the first waiter, never to a client that happens to ask
//! later, and the order is first blocked, first served.
//!
//! The waiter queues per key live in the databases ([`crate::keyspace::Db::add_waiter`]), which
//! also notice when a waited-on key is created; this registry holds what each blocked client
//! will do once served.

use std::collections::BTreeMap;

use resp::Version;

use crate::cmd::lists::End;
use crate::keyspace::{Key, Keyspace};

/// What a blocked client does once a key it waits on holds data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `BLPOP`/`BRPOP` (`count: None`, one element) and `BLMPOP` (up to `count`).
    ListPop {
        /// Which end to pop.
        end: End,
        /// `BLMPOP`'s count; `None` for the single-element reply shape.
        count: Option<usize>,
    },
    /// `BLMOVE`/`BRPOPLPUSH`.
    ListMove {
        /// Which end of the source to pop.
        from: End,
        /// Which end of the destination to push.
        to: End,
        /// The destination list.
        destination: Key,
        /// `BRPOPLPUSH`, which is replayed as `RPOPLPUSH` (`BLMOVE` as `LMOVE`).
        rpoplpush: bool,
    },
    /// `BZPOPMIN`/`BZPOPMAX` (`count: None`) and `BZMPOP`.
    ZPop {
        /// Pop the highest scores.
        highest: bool,
        /// `BZMPOP`'s count; `None` for the single-pair reply shape.
        count: Option<usize>,
    },
}

/// The kind of value a wait is for: a waiter is served only by a key of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    /// A list.
    List,
    /// A sorted set.
    ZSet,
}

impl Wait {
    /// The kind of value that serves this wait.
    pub fn kind(&self) -> WaitKind {
        match self {
            Wait::ListPop { .. } | Wait::ListMove { .. } => WaitKind::List,
            Wait::ZPop { .. } => WaitKind::ZSet,
        }
    }
}

/// One blocked client.
#[derive(Clone, Debug)]
pub struct BlockedClient {
    /// The database its keys are in.
    pub db: usize,
    /// The keys it waits on, in the order it named them.
    pub keys: Vec<Key>,
    /// What it will do.
    pub wait: Wait,
    /// Its protocol, to encode the reply.
    pub version: Version,
    /// When it gives up (Unix ms); `None`: never.
    pub deadline_ms: Option<u64>,
}

/// Every blocked client, by id.
#[derive(Debug, Default)]
pub struct Blocked {
    clients: BTreeMap<u64, BlockedClient>,
}

impl Blocked {
    /// How many clients are blocked (`INFO clients`' `blocked_clients`).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is blocked: then no command needs to look for ready keys.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// How many blocked clients have a deadline (`clients_in_timeout_table`).
    pub fn with_deadline(&self) -> usize {
        self.clients.values().filter(|client| client.deadline_ms.is_some()).count()
    }

    /// Whether client `id` is blocked.
    pub fn contains(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }

    /// The blocked client `id`.
    pub fn get(&self, id: u64) -> Option<&BlockedClient> {
        self.clients.get(&id)
    }

    /// Blocks client `id` as `client` says, queueing it on each of its keys.
    pub fn block(&mut self, keyspace: &mut Keyspace, id: u64, client: BlockedClient) {
        let db = keyspace.db(client.db);
        for key in &client.keys {
            db.add_waiter(key, id);
        }
        self.clients.insert(id, client);
    }

    /// Unblocks client `id` (served, timed out, or gone), taking it off every queue. Returns
    /// what it was waiting for, or `None` if it was not blocked.
    pub fn unblock(&mut self, keyspace: &mut Keyspace, id: u64) -> Option<BlockedClient> {
        let client = self.clients.remove(&id)?;
        let db = keyspace.db(client.db);
        for key in &client.keys {
            db.remove_waiter(key, id);
        }
        Some(client)
    }
}
