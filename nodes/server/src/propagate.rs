//! The stream of changes that the append-only log and replicas follow: after each command
//! that changed the data, the commands that redo the change, as Redis 7.0 writes them.
//!
//! A command is propagated as it was sent when replaying it redoes exactly the same change.
//! Commands whose effect depends on when or by chance they ran say instead what to replay
//! ([`Propagation::replace_with`]): a relative expiry becomes `PEXPIREAT`, `SET … EX` becomes
//! `SET … PXAT`, `SPOP` the `SREM` of what it popped, `INCRBYFLOAT` the `SET` of its result.
//! Keys deleted because they expired (found so by a command or by the background cycle), evicted
//! keys and keys moved away by a migration go as `DEL`, so a replica never has to expire or
//! evict anything itself (Redis' rule).
//!
//! A command that runs other commands (`EXEC`, `SLOTSMGRT-EXEC-WRAPPER`, scripts) is never
//! propagated itself: each command it ran propagates itself, once, and replaying the outer
//! command as well would apply its writes twice. Everything one client command leads to (the
//! deletions of the keys it found expired, what it and the commands it ran wrote) is one
//! *execution unit*, handed to the stream at its end and wrapped in `MULTI` … `EXEC` when it is
//! more than one change, so a replay applies it whole (Redis' `propagatePendingCommands`).
//! Changes made outside any command (the expiry cycle, evictions, a migration's deletions, a
//! pop served to a blocked client) are units of their own.
//!
//! Nothing is recorded while nobody listens: the stream costs nothing until an append-only log
//! or a replica turns it on ([`Propagation::listen`]).

use std::sync::Arc;

use bytes::BytesMut;
use resp::Request;
use tokio::sync::Notify;
use tracing::warn;

use crate::keyspace::Key;
use crate::state::State;

/// One change: a command and the database it runs in.
#[derive(Clone, Debug)]
pub struct Change {
    /// The database.
    pub db: usize,
    /// The command that redoes the change.
    pub request: Request,
    /// Whether the append-only log takes it too (everything but `PUBLISH`, which only replicas
    /// receive, so their subscribers hear what the master's hear).
    pub logged: bool,
}

impl Change {
    /// A change for the log and the replicas.
    pub fn new(db: usize, request: Request) -> Change {
        Change { db, request, logged: true }
    }
}

/// One command running now, as propagation sees it.
#[derive(Debug, Default)]
struct Call {
    /// What it asked to be propagated as, instead of itself, and whether each goes to the log.
    replacement: Option<Vec<(Request, bool)>>,
    /// Whether it ran other commands (which propagated themselves).
    ran_commands: bool,
}

/// The changes not yet taken by their listeners, the execution unit being built, and what the
/// running commands replace themselves with.
#[derive(Debug, Default)]
pub struct Propagation {
    listening: bool,
    /// The commands running now, the one a client sent first, those it runs after it.
    calls: Vec<Call>,
    /// The changes of the execution unit under way.
    unit: Vec<Change>,
    stream: Vec<Change>,
    /// Changes taken by listeners so far: with the stream's length, the number of every change
    /// ever recorded, which is how the append-only log says how far it is on disk.
    taken: u64,
    /// Woken when a change is recorded.
    wake: Arc<Notify>,
}

impl Propagation {
    /// Starts recording; the keyspace must log expired keys from now on (see
    /// [`State::propagate_changes`], which does both).
    pub(crate) fn listen(&mut self) {
        self.listening = true;
    }

    /// Whether changes are recorded.
    pub fn is_listening(&self) -> bool {
        self.listening
    }

    /// The running command is propagated as `request` (after any earlier replacement) rather
    /// than as it was sent. Costs nothing while nobody listens; callers that would allocate to
    /// build `args` check [`Propagation::is_listening`] first.
    pub fn replace_with<I>(&mut self, args: I)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.replace(args, true);
    }

    /// The running command is propagated as `args` to replicas only, whether or not it changed
    /// anything (`PUBLISH`, as Redis forwards it).
    pub fn replicate_only<I>(&mut self, args: I)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.replace(args, false);
    }

    fn replace<I>(&mut self, args: I, logged: bool)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        if self.listening
            && let Some(call) = self.calls.last_mut()
        {
            call.replacement.get_or_insert_with(Vec::new).push((Request::from_args(args), logged));
        }
    }

    /// The running command propagates nothing itself.
    pub fn replace_with_nothing(&mut self) {
        if self.listening
            && let Some(call) = self.calls.last_mut()
        {
            call.replacement.get_or_insert_with(Vec::new);
        }
    }

    /// A command starts (see [`Propagation::end_call`]); the one running, if any, ran another.
    pub(crate) fn begin_call(&mut self) {
        if let Some(outer) = self.calls.last_mut() {
            outer.ran_commands = true;
        }
        self.calls.push(Call::default());
    }

    /// Records `request` for database `db`: a change made outside any command, a unit of its
    /// own (the expiry cycle, an eviction, a migration's deletion). A change that may have found
    /// keys expired on its way goes through [`push_unit`] instead.
    pub fn push(&mut self, db: usize, request: Request) {
        debug_assert!(self.unit.is_empty(), "a change of its own while an execution unit is under way");
        if self.listening {
            self.stream.push(Change::new(db, request));
            self.wake.notify_one();
        }
    }

    /// How many changes were ever recorded.
    pub fn total(&self) -> u64 {
        self.taken + self.stream.len() as u64
    }

    /// What a listener waits on for new changes.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Records the deletion of `key` in database `db`, as a unit of its own.
    pub fn push_del(&mut self, db: usize, key: &[u8]) {
        if self.listening {
            self.push(db, Request::from_args([&b"DEL"[..], key]));
        }
    }

    /// Takes every change recorded so far.
    pub fn take(&mut self) -> Vec<Change> {
        self.taken += self.stream.len() as u64;
        std::mem::take(&mut self.stream)
    }

    /// Ends the execution unit: its changes go to the stream, in `MULTI` … `EXEC` when there
    /// are several (the `MULTI` in the first change's database, the `EXEC` in the last's, so no
    /// `SELECT` comes between them and the changes) unless `atomic` is false (a command that
    /// touches arbitrary keys, whose expired keys Redis deletes one by one).
    fn end_unit(&mut self, atomic: bool) {
        let wrap = atomic && self.unit.len() > 1;
        if self.unit.is_empty() {
            return;
        }
        if wrap {
            let (first, last) = (self.unit[0].db, self.unit[self.unit.len() - 1].db);
            self.stream.push(Change::new(first, Request::from_args([&b"MULTI"[..]])));
            self.stream.append(&mut self.unit);
            self.stream.push(Change::new(last, Request::from_args([&b"EXEC"[..]])));
        } else {
            self.stream.append(&mut self.unit);
        }
        self.wake.notify_one();
    }
}

/// Appends `changes` to `out` as RESP commands, each preceded by a `SELECT` when its database
/// differs from the one the stream is in (`selected`, updated; `None` forces a `SELECT`: a new
/// log increment, or the stream after a replica's copy). The log (`for_log`) leaves out what
/// only replicas take.
pub fn encode_changes(out: &mut BytesMut, selected: &mut Option<usize>, changes: &[Change], for_log: bool) {
    for change in changes.iter().filter(|change| change.logged || !for_log) {
        if *selected != Some(change.db) {
            resp::encode::write_array_header(out, 2);
            resp::encode::write_bulk(out, b"SELECT");
            resp::encode::write_bulk(out, change.db.to_string().as_bytes());
            *selected = Some(change.db);
        }
        out.extend_from_slice(change.request.wire());
    }
}

/// Hands the changes recorded so far to their listeners: the append-only log's buffer and the
/// replication stream. Cheap when there are none; called after every batch of commands, by the
/// background cycle, and by the log's writer.
pub fn distribute(state: &mut State) {
    if state.propagation.stream.is_empty() {
        return;
    }
    let changes = state.propagation.take();
    state.aof.absorb(&changes);
    let limit = state.config.client_output_buffer_limit.replica.hard_bytes;
    let over = state.replication.absorb(&changes, limit);
    close_replicas(state, &over);
}

/// Closes the replicas that fell too far behind.
pub(crate) fn close_replicas(state: &mut State, ids: &[u64]) {
    for id in ids {
        if let Some(info) = state.clients.get(id) {
            warn!(client = id, addr = %info.addr, "closing a replica over its output buffer limit");
            info.kill.notify_one();
        }
        state.replication.detach(*id);
    }
}

/// Records the deletions of expired keys every database logged by the background cycle, each a
/// unit of its own; returns how many there were.
pub fn expired_keys(state: &mut State) -> u64 {
    take_expired(state, |propagation, db, key| propagation.push_del(db, &key))
}

/// Adds the deletions of the keys found expired since the last look to the execution unit;
/// returns how many there were.
fn expired_into_unit(state: &mut State) -> u64 {
    take_expired(state, |propagation, db, key| {
        propagation.unit.push(Change::new(db, Request::from_args([&b"DEL"[..], &key[..]])));
    })
}

/// Hands every key the databases logged as expired since the last look to `record`; returns how
/// many there were.
fn take_expired(state: &mut State, mut record: impl FnMut(&mut Propagation, usize, Key)) -> u64 {
    let mut count = 0;
    for db in 0..state.keyspace.len() {
        let expired: Vec<Key> = state.keyspace.db(db).take_expired();
        count += expired.len() as u64;
        for key in expired {
            record(&mut state.propagation, db, key);
        }
    }
    count
}

/// Records `request`, a change made outside any command that may have found keys expired on its
/// way (a pop served to a blocked client after the command that readied its key, whose
/// destination may have expired), as a unit of its own: the deletions first, then the change,
/// in `MULTI` … `EXEC` when there are several, as Redis 7.0 ends a served client's unit.
pub fn push_unit(state: &mut State, db: usize, request: Request) {
    debug_assert!(state.propagation.calls.is_empty(), "a unit of its own while a command runs");
    debug_assert!(state.propagation.unit.is_empty(), "a unit of its own while another is under way");
    if !state.propagation.listening {
        return;
    }
    expired_into_unit(state);
    state.propagation.unit.push(Change::new(db, request));
    state.propagation.end_unit(true);
}

/// After a command ran in database `db`: the deletions of the keys it found expired join the
/// execution unit, then the command itself, or what it asked to be replaced with, if it changed
/// the data, unless it ran other commands (they propagated themselves). The command a client
/// sent ends the unit: `touches_arbitrary_keys` (`SCAN`, `RANDOMKEY`) leaves it unwrapped.
///
/// `changes_before` is the change count when the command started, `None` if nobody listened
/// then: a command that turned listening on (`PSYNC`) is not itself a change.
pub fn end_call(
    state: &mut State,
    db: usize,
    request: &Request,
    changes_before: Option<u64>,
    touches_arbitrary_keys: bool,
) {
    let call = state.propagation.calls.pop().unwrap_or_default();
    let Some(changes_before) = changes_before.filter(|_| state.propagation.listening) else {
        // Nothing of this command's own to record; a unit its inner commands built still ends
        // with it.
        if state.propagation.calls.is_empty() {
            state.propagation.end_unit(!touches_arbitrary_keys);
        }
        return;
    };
    let expired = expired_into_unit(state);
    match call.replacement {
        Some(requests) => {
            let unit = &mut state.propagation.unit;
            unit.extend(requests.into_iter().map(|(request, logged)| Change { db, request, logged }));
        }
        None if call.ran_commands => {}
        None => {
            // Deletions by expiry count as changes too.
            let changed = state.keyspace.changes().saturating_sub(changes_before).saturating_sub(expired);
            if changed > 0 {
                state.propagation.unit.push(Change::new(db, request.clone()));
            }
        }
    }
    if state.propagation.calls.is_empty() {
        state.propagation.end_unit(!touches_arbitrary_keys);
    }
}
