//! Slot migration: moving keys from this server (the source) to another (the target) while both
//! keep serving clients.
//!
//! Command handlers run under the state lock and cannot wait on a network, so a migration
//! command does its share under the lock (chooses the keys, fences them, encodes what the target
//! must receive), hands the rest to the migrator ([`service`]) as a [`Job`], and blocks its
//! client the way `BLPOP` does; the migrator talks to the target off the lock and, once the
//! target has acknowledged everything, takes the lock again to delete the moved keys, lift the
//! fence and post the caller's reply.
//!
//! - [`fence`]: the keys in flight, and the writers that wait for them.
//! - [`link`]: a connection to a target server, with its `AUTH`/`SELECT` state.
//! - [`service`]: the migrator: one task per target for the synchronous commands, one per
//!   database for the asynchronous batch.
//! - [`batch`]: the asynchronous batch: which keys, and the `SLOTSRESTORE-ASYNC` messages that
//!   carry them in chunks.

pub mod batch;
pub mod fence;
pub mod link;
pub mod service;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use model::SlotId;
use resp::Version;
use tokio::sync::mpsc;

use crate::keyspace::Key;
use crate::outbox::{Delivery, Outbox};
use crate::reply::Reply;
use crate::state::State;

pub use batch::AsyncBatch;
pub use fence::{FenceId, FenceWait, Fences};

/// Work for the migrator.
#[derive(Debug)]
pub enum Job {
    /// Move a few keys with one `SLOTSRESTORE` (the synchronous commands).
    Sync(Box<SyncJob>),
    /// Database `db` has a new asynchronous batch to send.
    AsyncStart {
        /// The database.
        db: usize,
    },
    /// Drop database `db`'s connection to its target (`SLOTSMGRT-ASYNC-CANCEL`).
    AsyncCancel {
        /// The database.
        db: usize,
    },
}

/// One synchronous migration, as encoded under the lock.
#[derive(Debug)]
pub struct SyncJob {
    /// `host:port` of the target.
    pub target: String,
    /// Deadline of each step (connect, write, read): Codis' `timeout`.
    pub timeout: Duration,
    /// The password to authenticate with at the target (ours: Codis assumes one password per
    /// cluster), empty for none.
    pub password: Bytes,
    /// The source database (selected at the target too).
    pub db: usize,
    /// The keys it moves, fenced by `fence`.
    pub keys: Vec<Key>,
    /// Their fence.
    pub fence: FenceId,
    /// The encoded requests: `SLOTSRESTORE key ttl payload …` for the keys that live here,
    /// `DEL …` for those whose stale copy at the target goes.
    pub restore: BytesMut,
    /// How many requests `restore` holds (each gets one reply).
    pub commands: usize,
    /// For the slot commands, the slot whose remaining size the reply reports.
    pub slot: Option<SlotId>,
    /// Who waits for the result.
    pub caller: Caller,
}

/// A client blocked in a migration command, and the shape of the reply it expects.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Where its reply goes.
    pub outbox: Outbox,
    /// Its protocol.
    pub version: Version,
    /// What it asked for.
    pub shape: ReplyShape,
}

/// What a migration command replies once its keys have moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyShape {
    /// `SLOTSMGRTONE`/`SLOTSMGRTTAGONE` and the `-ASYNC` key forms: the number of keys moved.
    Count,
    /// The slot forms: `[moved, remaining keys in the slot]`.
    CountAndRemaining,
    /// `SLOTSMGRT-ASYNC-FENCE`: `+OK`.
    Ok,
}

impl Caller {
    /// Posts the reply for `moved` keys (`remaining` in the slot, for the slot forms).
    pub fn succeed(&self, moved: usize, remaining: usize) {
        self.post(|reply| match self.shape {
            ReplyShape::Count => reply.count(moved),
            ReplyShape::CountAndRemaining => {
                reply.array(2);
                reply.count(moved);
                reply.count(remaining);
            }
            ReplyShape::Ok => reply.ok(),
        });
    }

    /// Posts an error reply (`text` starts with its code).
    pub fn fail(&self, text: &str) {
        self.post(|reply| reply.error(text));
    }

    fn post(&self, write: impl FnOnce(&mut Reply<'_>)) {
        let mut out = BytesMut::new();
        write(&mut Reply::new(&mut out, self.version));
        self.outbox.send(Delivery::Unblocked(out.freeze()));
    }
}

/// The migration state every command can reach.
#[derive(Debug)]
pub struct Migrations {
    /// Keys in flight.
    pub fences: Fences,
    /// Per database, the asynchronous batch being sent, if any.
    pub batches: Vec<Option<AsyncBatch>>,
    /// Per database, whether the migrator holds a connection for asynchronous batches (what
    /// `SLOTSMGRT-ASYNC-CANCEL` reports having closed).
    pub async_links: Vec<Option<String>>,
    /// Per database, keys a migration that did not complete may have left on a target (with
    /// that target): see [`Migrations::mark_stale`].
    stale: Vec<BTreeMap<Key, String>>,
    jobs: Option<mpsc::UnboundedSender<Job>>,
}

impl Migrations {
    /// No migration, for `databases` databases, and no migrator yet: a server state built
    /// without [`crate::run`] (unit tests) refuses migration commands.
    pub fn new(databases: usize) -> Migrations {
        Migrations {
            fences: Fences::new(databases),
            batches: (0..databases).map(|_| None).collect(),
            async_links: vec![None; databases],
            stale: vec![BTreeMap::new(); databases],
            jobs: None,
        }
    }

    /// Connects the migrator.
    pub fn attach(&mut self, jobs: mpsc::UnboundedSender<Job>) {
        self.jobs = Some(jobs);
    }

    /// Hands `job` to the migrator; gives it back if there is none.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|returned| returned.0),
            None => Err(job),
        }
    }

    /// Records that `keys` of database `db` may have a copy at `target` that is now out of date:
    /// a batch or a synchronous move to it failed or was cancelled after sending some of them,
    /// so the source kept its copies and went on changing them.
    ///
    /// Codis forgets these copies, and they resurface: once the source deletes such a key,
    /// routing (`SLOTSMGRT-EXEC-WRAPPER` code 0) sends readers to the target's stale copy, and a
    /// deletion the client saw acknowledged is undone. Here such a key, while absent on the
    /// source, is reported "being migrated" (code 1) until a later migration to the same target
    /// has deleted or replaced the copy there; the migration commands pick these keys up and
    /// count them as remaining.
    pub fn mark_stale(&mut self, db: usize, keys: &[Key], target: &str) {
        if let Some(stale) = self.stale.get_mut(db) {
            for key in keys {
                stale.insert(key.clone(), target.to_string());
            }
        }
    }

    /// The target now holds what the source holds for `keys` (or nothing, like the source).
    pub fn clear_stale(&mut self, db: usize, keys: &[Key]) {
        if let Some(stale) = self.stale.get_mut(db) {
            for key in keys {
                stale.remove(key.as_slice());
            }
        }
    }

    /// Whether `key` of database `db` may have an out-of-date copy on a target.
    pub fn is_stale(&self, db: usize, key: &[u8]) -> bool {
        self.stale.get(db).is_some_and(|stale| !stale.is_empty() && stale.contains_key(key))
    }

    /// The possibly stale keys of database `db` that `key` stands for: itself, or (`with_tag`)
    /// every key sharing its hash tag.
    pub fn stale_keys(&self, db: usize, key: &[u8], with_tag: bool) -> Vec<Key> {
        let Some(stale) = self.stale.get(db).filter(|stale| !stale.is_empty()) else {
            return Vec::new();
        };
        let hash = model::KeyHash::of(key);
        stale
            .keys()
            .filter(|candidate| {
                candidate.as_slice() == key || (with_tag && hash.tagged && model::KeyHash::of(candidate) == hash)
            })
            .cloned()
            .collect()
    }

    /// The possibly stale keys of `slot` in database `db`.
    pub fn stale_in_slot(&self, db: usize, slot: SlotId) -> Vec<Key> {
        self.stale
            .get(db)
            .map(|stale| stale.keys().filter(|key| model::slot_of(key) == slot).cloned().collect())
            .unwrap_or_default()
    }

    /// A migration of database `db` now goes to `target`: copies left at another target are no
    /// longer reachable through routing, so they stop holding their keys back.
    pub fn forget_stale_elsewhere(&mut self, db: usize, target: &str) {
        if let Some(stale) = self.stale.get_mut(db) {
            stale.retain(|_, at| at == target);
        }
    }

    /// Whether a migrator is attached.
    pub fn available(&self) -> bool {
        self.jobs.as_ref().is_some_and(|jobs| !jobs.is_closed())
    }
}

/// What a slot command reports as remaining: the slot's keys here, and the keys of the slot
/// whose stale copies at a target still need deleting.
pub fn remaining_in_slot(state: &mut State, db: usize, slot: SlotId) -> usize {
    state.keyspace.db(db).slot_len(slot) + state.migrations.stale_in_slot(db, slot).len()
}

/// Codis' temporary TTL on a key being rebuilt in chunks: three timeouts, so a half-built key on
/// the target disappears if the migration dies.
pub fn chunk_ttl(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis().saturating_mul(3)).unwrap_or(u64::MAX)
}
