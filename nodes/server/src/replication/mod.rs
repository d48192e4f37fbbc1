//! Replication, the master's side: replicas attach with `PSYNC` (or the older `SYNC`), get a
//! full copy (a snapshot) or, after a short disconnect, the part of the stream they missed from
//! the backlog, then follow the master's change stream.
//!
//! The change stream ([`crate::propagate`]) is encoded once for replication, with a `SELECT`
//! whenever the database changes, appended to the [`backlog::Backlog`] and to each replica's
//! pending bytes; the replica's connection task writes those out and reads the replica's
//! `REPLCONF ACK`s. Everything a replica is sent is counted by the stream's offset, as in Redis,
//! so a replica's offset names exactly what it has.

pub mod backlog;
pub mod replica;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::Notify;
use tracing::warn;

use self::backlog::Backlog;
use crate::propagate::Change;
use crate::state::State;

/// Redis' default `repl-backlog-size`.
pub const BACKLOG_SIZE: usize = 1024 * 1024;

/// One attached replica, as the master sees it.
#[derive(Debug)]
pub struct ReplicaLink {
    /// The replica's address as connected.
    pub addr: String,
    /// The port it listens on (`REPLCONF listening-port`), which `INFO` and `ROLE` report.
    pub listening_port: u16,
    /// The last offset it acknowledged.
    pub ack_offset: u64,
    /// When it last acknowledged (Unix ms; 0: not yet).
    pub ack_ms: u64,
    /// Stream bytes not yet handed to its connection.
    pending: BytesMut,
    /// Wakes its connection when bytes are pending.
    wake: Arc<Notify>,
}

/// The master's replication state.
#[derive(Debug)]
pub struct Replication {
    /// This master's replication id (`master_replid`).
    pub replid: String,
    /// The stream's tail, once a replica has attached (Redis creates it then too).
    backlog: Option<Backlog>,
    /// The database the encoded stream is in (`None`: the next change starts with `SELECT`).
    selected_db: Option<usize>,
    /// Attached replicas by client id.
    replicas: BTreeMap<u64, ReplicaLink>,
    /// When the replicas were last pinged (Unix ms).
    last_ping_ms: u64,
    /// The master this server follows (`REPLICAOF`), if any.
    pub master: Option<replica::MasterLink>,
    /// Bumped by every `REPLICAOF`: a link task of an earlier one stops.
    pub generation: u64,
    /// Tells the replica service to (re)start or stop its link task.
    pub orders: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    /// Clients in `WAIT`, by client id.
    waiters: BTreeMap<u64, Waiter>,
    /// The newest failover epoch this server was told of (`EPOCH`): each promotion in a group
    /// raises it, and whoever promotes tells every server it reaches.
    pub epoch: u64,
    /// The epoch at which this server last became (or was confirmed as) master. A master told of
    /// a newer epoch than this one was superseded by a promotion elsewhere: it is fenced, and
    /// refuses writes until `REPLICAOF` makes it a replica or a master again.
    pub master_epoch: u64,
}

/// A client in `WAIT`: until `needed` replicas acknowledged `offset`.
#[derive(Debug)]
struct Waiter {
    offset: u64,
    needed: usize,
    outbox: crate::outbox::Outbox,
    version: resp::Version,
}

impl ReplicaLink {
    /// The replica's IP address, as `INFO` and `ROLE` show it.
    pub fn ip(&self) -> &str {
        self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(ip, _)| ip)
    }
}

impl Replication {
    /// No replica yet; `replid` identifies this master's stream.
    pub fn new(replid: String) -> Replication {
        Replication {
            replid,
            backlog: None,
            selected_db: None,
            replicas: BTreeMap::new(),
            last_ping_ms: 0,
            master: None,
            generation: 0,
            orders: None,
            waiters: BTreeMap::new(),
            epoch: 0,
            master_epoch: 0,
        }
    }

    /// Takes `value` as the newest failover epoch. Epochs only grow: a smaller one is refused
    /// (`STALE`) before this is called, and taking it would unfence a superseded master.
    pub fn raise_epoch(&mut self, value: u64) {
        assert!(value >= self.epoch, "the failover epoch went back from {} to {value}", self.epoch);
        self.epoch = value;
    }

    /// Records that this server is master at `value`, an epoch it knows: never newer than the
    /// newest it was told of, never older than the one it was master at.
    pub fn set_master_epoch(&mut self, value: u64) {
        assert!(
            self.master_epoch <= value && value <= self.epoch,
            "master epoch {value} outside {}..={}",
            self.master_epoch,
            self.epoch
        );
        self.master_epoch = value;
    }

    /// Whether this server is a master superseded by a newer epoch (and so refuses writes).
    pub fn is_fenced(&self) -> bool {
        self.master.is_none() && self.epoch > self.master_epoch
    }

    /// Whether this server follows a master (and so refuses its clients' writes).
    pub fn is_replica(&self) -> bool {
        self.master.is_some()
    }

    /// The stream's offset (`master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.backlog.as_ref().map_or(0, Backlog::offset)
    }

    /// The backlog, if there is one.
    pub fn backlog(&self) -> Option<&Backlog> {
        self.backlog.as_ref()
    }

    /// The attached replicas, by client id.
    pub fn replicas(&self) -> &BTreeMap<u64, ReplicaLink> {
        &self.replicas
    }

    /// Encodes `changes` into the stream: the backlog and every replica's pending bytes. Returns
    /// the replicas whose pending bytes passed `limit` (0: none): their connections must close,
    /// as Redis drops a replica past its output buffer limit.
    pub(crate) fn absorb(&mut self, changes: &[Change], limit: u64) -> Vec<u64> {
        if self.backlog.is_none() {
            return Vec::new();
        }
        let mut encoded = BytesMut::new();
        crate::propagate::encode_changes(&mut encoded, &mut self.selected_db, changes, false);
        self.feed(&encoded, limit)
    }

    /// Pings the replicas through the stream every `period_ms` (`repl-ping-replica-period`),
    /// so a replica's `repl-timeout` tells a dead master from a quiet one. Returns the replicas
    /// to close, as [`Replication::absorb`] does.
    pub(crate) fn ping_if_due(&mut self, now_ms: u64, period_ms: u64, limit: u64) -> Vec<u64> {
        if self.replicas.is_empty() || now_ms.saturating_sub(self.last_ping_ms) < period_ms {
            return Vec::new();
        }
        self.last_ping_ms = now_ms;
        self.feed(b"*1\r\n$4\r\nPING\r\n", limit)
    }

    /// Appends encoded stream bytes to the backlog and every replica's pending bytes.
    fn feed(&mut self, encoded: &[u8], limit: u64) -> Vec<u64> {
        let Some(backlog) = self.backlog.as_mut() else {
            return Vec::new();
        };
        backlog.append(encoded);
        let mut over = Vec::new();
        for (id, link) in self.replicas.iter_mut() {
            link.pending.extend_from_slice(encoded);
            link.wake.notify_one();
            if limit > 0 && link.pending.len() as u64 > limit {
                over.push(*id);
            }
        }
        over
    }

    /// Takes replica `id`'s pending bytes, with its waker.
    pub(crate) fn take_pending(&mut self, id: u64) -> Option<BytesMut> {
        self.replicas.get_mut(&id).map(|link| link.pending.split())
    }

    /// What wakes replica `id`'s connection.
    pub(crate) fn waker(&self, id: u64) -> Option<Arc<Notify>> {
        self.replicas.get(&id).map(|link| link.wake.clone())
    }

    /// Records replica `id`'s acknowledgement of `offset`, and answers the `WAIT`s it satisfies.
    pub(crate) fn acknowledge(&mut self, id: u64, offset: u64, now_ms: u64) {
        if let Some(link) = self.replicas.get_mut(&id) {
            link.ack_offset = link.ack_offset.max(offset);
            link.ack_ms = now_ms;
        }
        let done: Vec<(u64, usize)> = self
            .waiters
            .iter()
            .map(|(client, waiter)| (*client, self.acknowledged(waiter.offset), waiter.needed))
            .filter(|(_, count, needed)| count >= needed)
            .map(|(client, count, _)| (client, count))
            .collect();
        for (client, count) in done {
            if let Some(waiter) = self.waiters.remove(&client) {
                let mut out = BytesMut::new();
                crate::reply::Reply::new(&mut out, waiter.version).count(count);
                waiter.outbox.send(crate::outbox::Delivery::Unblocked(out.freeze()));
            }
        }
    }

    /// How many replicas acknowledged `offset`.
    pub fn acknowledged(&self, offset: u64) -> usize {
        self.replicas.values().filter(|link| link.ack_offset >= offset).count()
    }

    /// How many replicas acknowledged within the last `max_lag_ms` (`min-replicas-max-lag`); one
    /// still loading its copy has not acknowledged yet and does not count.
    pub fn good_replicas(&self, now_ms: u64, max_lag_ms: u64) -> usize {
        let good = |link: &&ReplicaLink| link.ack_ms > 0 && now_ms.saturating_sub(link.ack_ms) <= max_lag_ms;
        self.replicas.values().filter(good).count()
    }

    /// Client `id` waits (`WAIT`) until `needed` replicas acknowledged `offset`; the replicas are
    /// asked to acknowledge at once (`REPLCONF GETACK`, through the stream).
    pub(crate) fn wait(
        &mut self,
        id: u64,
        offset: u64,
        needed: usize,
        outbox: crate::outbox::Outbox,
        version: resp::Version,
    ) {
        self.waiters.insert(id, Waiter { offset, needed, outbox, version });
        self.request_acks();
    }

    /// Asks every replica to acknowledge its offset at once (`REPLCONF GETACK *`, through the
    /// stream) rather than at its next second.
    pub(crate) fn request_acks(&mut self) {
        let _ = self.feed(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n", 0);
    }

    /// Ends client `id`'s `WAIT` at its timeout; returns how many replicas acknowledged, or
    /// `None` if it was no longer waiting (answered just now).
    pub fn time_out_waiter(&mut self, id: u64) -> Option<usize> {
        let waiter = self.waiters.remove(&id)?;
        Some(self.acknowledged(waiter.offset))
    }

    /// Forgets client `id` as a replica and as a waiter (its connection ended).
    pub fn detach(&mut self, id: u64) {
        self.replicas.remove(&id);
        self.waiters.remove(&id);
    }
}

/// How a replica's `PSYNC` is answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Sync {
    /// `+CONTINUE`: the backlog has everything from the replica's offset on.
    Continue,
    /// `+FULLRESYNC <replid> <offset>` and a snapshot taken at that offset.
    Full {
        /// The stream offset the snapshot stands for.
        offset: u64,
        /// The snapshot (RDB).
        snapshot: Vec<u8>,
    },
}

/// Attaches client `id` as a replica asking to continue `replid` from byte `from` (`None`: a
/// full copy wanted, as `PSYNC ? -1` or `SYNC` ask).
pub fn attach(state: &mut State, id: u64, listening_port: u16, resume: Option<(&[u8], u64)>, now_ms: u64) -> Sync {
    // Everything recorded so far goes into the stream before the replica's place in it is fixed.
    state.propagate_changes();
    crate::propagate::distribute(state);
    let replication = &mut state.replication;
    let backlog = replication.backlog.get_or_insert_with(|| Backlog::new(BACKLOG_SIZE, 0));
    let addr = state.clients.get(&id).map(|info| info.addr.clone()).unwrap_or_default();
    let continued =
        resume.filter(|(replid, _)| *replid == replication.replid.as_bytes()).and_then(|(_, from)| backlog.since(from));
    let offset = backlog.offset();
    let asked_to_resume = resume.is_some_and(|(replid, _)| replid != b"?");
    let (sync, pending) = match continued {
        Some(missed) => {
            state.stats.sync_partial_ok += 1;
            (Sync::Continue, BytesMut::from(&missed[..]))
        }
        None => {
            state.stats.sync_full += 1;
            state.stats.sync_partial_err += u64::from(asked_to_resume);
            // The stream after the snapshot starts with its own SELECT.
            replication.selected_db = None;
            let snapshot = crate::persist::encode_snapshot(state, now_ms);
            (Sync::Full { offset, snapshot }, BytesMut::new())
        }
    };
    let link = ReplicaLink { addr, listening_port, ack_offset: 0, ack_ms: 0, pending, wake: Arc::new(Notify::new()) };
    link.wake.notify_one();
    if state.replication.replicas.insert(id, link).is_some() {
        warn!(client = id, "a replica attached twice on one connection");
    }
    sync
}

#[cfg(test)]
mod tests {
    use super::Replication;

    #[test]
    fn epochs_only_grow() {
        let mut replication = Replication::new("id".into());
        replication.raise_epoch(3);
        replication.set_master_epoch(3);
        replication.raise_epoch(5);
        assert!(replication.is_fenced());
        let refused = std::panic::catch_unwind(move || replication.raise_epoch(4));
        assert!(refused.is_err(), "the epoch went back");
        let mut replication = Replication::new("id".into());
        replication.raise_epoch(2);
        let refused = std::panic::catch_unwind(move || replication.set_master_epoch(3));
        assert!(refused.is_err(), "a master epoch newer than the epoch");
    }
}
