//! The migrator: the tasks that talk to migration targets off the state lock.
//!
//! - One task per target for the synchronous commands, holding one cached connection that
//!   closes after 15 s unused (Codis' `slotsmgrt_cleanup`). Jobs to one target run one after
//!   another, as Codis runs them; different targets proceed in parallel.
//! - One task per database for asynchronous batches, holding that database's connection, which
//!   closes after 60 s without a batch. It prepares messages in rounds of at most
//!   [`ROUND_BYTES`] (the lock is held only for that, so other clients wait at most one round's
//!   encoding) and keeps up to `maxbytes` of them unacknowledged (at least two rounds), so the
//!   target always has work while the source prepares more.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use net::Env;
use resp::Frame;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::link::{Link, LinkError};
use super::{AsyncBatch, Job, SyncJob};
use crate::keyspace::{Entry, Value};
use crate::state::Shared;
use crate::state::State;

/// Codis closes a cached synchronous connection unused this long.
const SYNC_IDLE: Duration = Duration::from_secs(15);
/// Codis releases an asynchronous connection without a batch this long.
const ASYNC_IDLE: Duration = Duration::from_secs(60);
/// The most message bytes prepared under one hold of the lock.
const ROUND_BYTES: usize = 128 * 1024;
/// The most messages unacknowledged, whatever `maxbytes` allows: the source reads
/// acknowledgements only between sends, so their bytes (about 40 each) must fit the socket
/// buffers, or a target blocked writing them would stop reading and both would wait.
const MAX_MESSAGES_IN_FLIGHT: usize = 4096;

/// Aborts the tasks it holds when dropped: the migrator's workers end with it.
struct Workers(Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &self.0 {
            worker.abort();
        }
    }
}

/// Runs the migrator until the server stops (the caller aborts it).
pub async fn run<E: Env>(env: E, shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut sync_targets: BTreeMap<String, mpsc::UnboundedSender<Box<SyncJob>>> = BTreeMap::new();
    let mut async_dbs: BTreeMap<usize, mpsc::UnboundedSender<AsyncSignal>> = BTreeMap::new();
    let mut workers = Workers(Vec::new());
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Sync(job) => {
                let sender = sync_targets.entry(job.target.clone()).or_insert_with(|| {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    let target = job.target.clone();
                    workers.0.push(env.spawn(sync_worker(env.clone(), shared.clone(), target, receiver)));
                    sender
                });
                // Workers never end on their own, so the channel is open.
                let _ = sender.send(job);
            }
            Job::AsyncStart { db } | Job::AsyncCancel { db } => {
                let signal =
                    if matches!(job, Job::AsyncStart { .. }) { AsyncSignal::Start } else { AsyncSignal::Cancel };
                let sender = async_dbs.entry(db).or_insert_with(|| {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    workers.0.push(env.spawn(async_worker(env.clone(), shared.clone(), db, receiver)));
                    sender
                });
                let _ = sender.send(signal);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Synchronous migration.

/// Runs the synchronous jobs for one target, one at a time.
async fn sync_worker<E: Env>(
    env: E,
    shared: Arc<Shared>,
    target: String,
    mut jobs: mpsc::UnboundedReceiver<Box<SyncJob>>,
) {
    let mut link: Option<Link<E::Stream>> = None;
    loop {
        let job = if link.is_some() {
            match tokio::time::timeout(SYNC_IDLE, jobs.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(_) => {
                    debug!(%target, "closing an idle migration connection");
                    link = None;
                    continue;
                }
            }
        } else {
            match jobs.recv().await {
                Some(job) => job,
                None => return,
            }
        };
        let result = restore_at_target(&env, &mut link, &job).await;
        if let Err(error) = &result {
            warn!(%target, %error, keys = job.keys.len(), "synchronous migration failed");
            // Whatever state the connection is in, it is not to be trusted.
            link = None;
        }
        release(finish_sync(&shared, &job, result)).await;
    }
}

/// Sends one `SLOTSRESTORE` (after `AUTH`/`SELECT` as needed) and waits for its `+OK`.
async fn restore_at_target<E: Env>(
    env: &E,
    link: &mut Option<Link<E::Stream>>,
    job: &SyncJob,
) -> Result<(), LinkError> {
    if link.is_none() {
        *link = Some(Link::open(env, &job.target, job.timeout).await?);
    }
    let Some(link) = link.as_mut() else {
        return Ok(());
    };
    let mut out = BytesMut::with_capacity(job.restore.len() + 64);
    let auth = link.prepare_auth(&mut out, &job.password, "AUTH");
    let select = link.prepare_select(&mut out, job.db, "SELECT");
    out.extend_from_slice(&job.restore);
    link.send(&out, job.timeout).await?;
    if env.buggify("migrate-sync-reply-lost") {
        // The target applies the restore, and the source never hears of it: its copies stay,
        // and the target's become stale.
        return Err(LinkError::Io { doing: "reading from", target: job.target.clone() });
    }
    if auth == 1 {
        link.expect_ok(job.timeout, "AUTH").await?;
    }
    if select == 1 {
        link.expect_ok(job.timeout, "SELECT").await?;
    }
    for _ in 0..job.commands {
        match link.receive(job.timeout).await? {
            Frame::Simple(text) if text.as_ref() == b"OK" => {}
            Frame::Integer(_) => {}
            other => return Err(link.refused("SLOTSRESTORE", &other)),
        }
    }
    Ok(())
}

/// Ends a synchronous job under the lock: on success deletes the moved keys; either way lifts
/// the fence and answers the caller. Returns the deleted entries, to be freed off the lock.
fn finish_sync(shared: &Shared, job: &SyncJob, result: Result<(), LinkError>) -> Vec<Entry> {
    {
        let mut state = shared.lock();
        let state = &mut *state;
        let removed = match &result {
            Ok(()) => delete_moved(state, job.db, &job.keys),
            Err(_) => Vec::new(),
        };
        state.migrations.fences.lift(job.db, job.fence, &job.keys);
        match &result {
            Ok(()) => state.migrations.clear_stale(job.db, &job.keys),
            // The target may have applied the restore before the failure.
            Err(_) => state.migrations.mark_stale(job.db, &job.keys, &job.target),
        }
        match &result {
            Ok(()) => {
                let remaining = job.slot.map_or(0, |slot| crate::migrate::remaining_in_slot(state, job.db, slot));
                job.caller.succeed(job.keys.len(), remaining);
            }
            Err(error) => job.caller.fail(&error.to_string()),
        }
        removed
    }
}

/// Deletes keys the target now holds; replicas and the append-only log get each as a `DEL` of
/// its own. This is the one place migrations delete.
fn delete_moved(state: &mut State, db: usize, keys: &[crate::keyspace::Key]) -> Vec<Entry> {
    let mut removed = Vec::new();
    for key in keys {
        if let Some(entry) = state.keyspace.db(db).remove(key) {
            state.propagation.push_del(db, key);
            removed.push(entry);
        }
    }
    removed
}

// ------------------------------------------------------------------------------------------
// Asynchronous migration.

/// What a database's asynchronous worker is told.
#[derive(Debug)]
enum AsyncSignal {
    /// A batch is waiting in the state.
    Start,
    /// `SLOTSMGRT-ASYNC-CANCEL`: drop the connection (the batch is already gone).
    Cancel,
}

/// Sends the batches of database `db`.
async fn async_worker<E: Env>(
    env: E,
    shared: Arc<Shared>,
    db: usize,
    mut signals: mpsc::UnboundedReceiver<AsyncSignal>,
) {
    let mut link: Option<Link<E::Stream>> = None;
    loop {
        let signal = if link.is_some() {
            match tokio::time::timeout(ASYNC_IDLE, signals.recv()).await {
                Ok(Some(signal)) => signal,
                Ok(None) => return,
                Err(_) => {
                    debug!(db, "closing an idle asynchronous migration connection");
                    link = None;
                    shared.lock().migrations.async_links[db] = None;
                    continue;
                }
            }
        } else {
            match signals.recv().await {
                Some(signal) => signal,
                None => return,
            }
        };
        match signal {
            AsyncSignal::Cancel => link = None,
            AsyncSignal::Start => {
                if let Err(error) = send_batch(&env, &shared, db, &mut link, &mut signals).await {
                    link = None;
                    shared.lock().migrations.async_links[db] = None;
                    fail_batch(&shared, db, &error);
                }
            }
        }
    }
}

/// Why a batch stopped before its end.
#[derive(Debug)]
enum BatchError {
    /// The connection or the target failed.
    Link(LinkError),
    /// The target answered a message with an error.
    Refused(String),
    /// Cancelled while sending: the batch is already gone from the state.
    Canceled,
    /// The target stayed silent longer than the batch's timeout.
    Timeout,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Link(error) => write!(f, "{error}"),
            BatchError::Refused(message) => write!(f, "ERR target refused the migration: {message}"),
            BatchError::Canceled => write!(f, "ERR interrupted: canceled"),
            BatchError::Timeout => write!(f, "ERR interrupted: migration timeout"),
        }
    }
}

impl From<LinkError> for BatchError {
    fn from(error: LinkError) -> BatchError {
        BatchError::Link(error)
    }
}

/// Sends database `db`'s batch to the end: rounds of messages, up to `maxbytes` (and at least
/// two rounds) unacknowledged, then the local deletes and the callers' replies.
async fn send_batch<E: Env>(
    env: &E,
    shared: &Shared,
    db: usize,
    link: &mut Option<Link<E::Stream>>,
    signals: &mut mpsc::UnboundedReceiver<AsyncSignal>,
) -> Result<(), BatchError> {
    let (fence, target, timeout, maxbytes, password) = {
        let state = shared.lock();
        let Some(batch) = &state.migrations.batches[db] else {
            return Ok(());
        };
        let password = bytes::Bytes::from(state.config.requirepass.clone().into_bytes());
        (batch.fence, batch.target.clone(), batch.timeout, batch.maxbytes, password)
    };
    let round_bytes = maxbytes.min(ROUND_BYTES);
    if link.as_ref().is_some_and(|link| link.target() != target) {
        *link = None;
    }
    if link.is_none() {
        *link = Some(Link::open(env, &target, timeout).await?);
        info!(db, %target, "asynchronous migration connection open");
    }
    shared.lock().migrations.async_links[db] = Some(target.clone());
    let Some(link) = link.as_mut() else {
        return Ok(());
    };
    // Each round in flight: its messages and bytes.
    let mut rounds: VecDeque<(usize, usize)> = VecDeque::new();
    let (mut bytes_in_flight, mut messages_in_flight) = (0, 0);
    loop {
        // Prepare and send rounds while the window has room.
        while rounds.len() < 2 || (bytes_in_flight < maxbytes && messages_in_flight < MAX_MESSAGES_IN_FLIGHT) {
            let mut out = BytesMut::new();
            let produced = {
                let mut state = shared.lock();
                let state = &mut *state;
                let now = env.unix_millis();
                let Some(batch) = state.migrations.batches[db].as_mut().filter(|batch| batch.fence == fence) else {
                    return Err(BatchError::Canceled);
                };
                if batch.exhausted() {
                    None
                } else {
                    let mut messages = link.prepare_auth(&mut out, &password, "SLOTSRESTORE-ASYNC-AUTH");
                    messages += link.prepare_select(&mut out, db, "SLOTSRESTORE-ASYNC-SELECT");
                    messages += batch.produce(state.keyspace.db(db), now, &mut out, round_bytes);
                    batch.sending += messages;
                    Some(messages)
                }
            };
            match produced {
                Some(messages) if messages > 0 => {
                    link.send(&out, timeout).await?;
                    rounds.push_back((messages, out.len()));
                    bytes_in_flight += out.len();
                    messages_in_flight += messages;
                    // Let the connections waiting on this worker thread run between rounds: a
                    // socket with room never makes the send wait, and a window of `maxbytes`
                    // could otherwise keep this task busy for many rounds in a row.
                    tokio::task::yield_now().await;
                }
                _ => break,
            }
        }
        let Some((expected, bytes)) = rounds.pop_front() else {
            if env.buggify("migrate-async-link-lost-at-end") {
                // Everything arrived, but the source fails before it knows: it keeps its copies.
                return Err(BatchError::Link(LinkError::Closed { target }));
            }
            return finish_batch(shared, db, fence).await;
        };
        bytes_in_flight -= bytes;
        messages_in_flight -= expected;
        let mut acknowledged = 0;
        while acknowledged < expected {
            tokio::select! {
                biased;
                signal = signals.recv() => match signal {
                    Some(AsyncSignal::Cancel) | None => return Err(BatchError::Canceled),
                    // A new batch cannot start while this one runs: nothing to do.
                    Some(AsyncSignal::Start) => {}
                },
                reply = link.receive(timeout) => {
                    let reply = reply.map_err(|error| match error {
                        LinkError::Io { doing: "reading from", .. } => BatchError::Timeout,
                        other => BatchError::Link(other),
                    })?;
                    check_ack(&reply)?;
                    acknowledged += 1;
                }
            }
        }
        let mut state = shared.lock();
        let now = env.unix_millis();
        let Some(batch) = state.migrations.batches[db].as_mut().filter(|batch| batch.fence == fence) else {
            return Err(BatchError::Canceled);
        };
        batch.sending -= expected;
        batch.last_use_ms = now;
    }
}

/// Accepts `["SLOTSRESTORE-ASYNC-ACK", 0, message]`; anything else fails the batch.
fn check_ack(reply: &Frame) -> Result<(), BatchError> {
    let refused = |message: String| Err(BatchError::Refused(message));
    let Frame::Array(parts) = reply else {
        return refused(format!("unexpected reply {reply:?}"));
    };
    let code = match parts.get(1) {
        Some(Frame::Integer(code)) => Some(*code),
        Some(Frame::Bulk(text)) => resp::parse_i64(text),
        _ => None,
    };
    let message = match parts.get(2) {
        Some(Frame::Bulk(text)) => String::from_utf8_lossy(text).into_owned(),
        _ => String::new(),
    };
    match (parts.first(), code) {
        (Some(Frame::Bulk(name)), Some(0)) if name.eq_ignore_ascii_case(b"SLOTSRESTORE-ASYNC-ACK") => Ok(()),
        (_, Some(code)) => refused(format!("ack {code} {message}")),
        _ => refused(format!("unexpected reply {reply:?}")),
    }
}

/// The batch is acknowledged whole: delete its keys here, lift the fence, answer the callers,
/// then free the deleted values off the lock.
async fn finish_batch(shared: &Shared, db: usize, fence: super::FenceId) -> Result<(), BatchError> {
    let removed = {
        let mut state = shared.lock();
        let state = &mut *state;
        let Some(batch) = state.migrations.batches[db].take_if(|batch| batch.fence == fence) else {
            return Err(BatchError::Canceled);
        };
        let removed = delete_moved(state, db, &batch.moved);
        state.migrations.fences.lift(db, batch.fence, &batch.keys);
        state.migrations.clear_stale(db, &batch.keys);
        let remaining = batch.slot.map_or(0, |slot| crate::migrate::remaining_in_slot(state, db, slot));
        for caller in &batch.callers {
            caller.succeed(batch.moved.len(), remaining);
        }
        removed
    };
    release(removed).await;
    Ok(())
}

/// Values bigger than this many elements are freed a piece at a time.
const RELEASE_STEP: usize = 16 * 1024;

/// Frees migrated values without holding a worker thread for long: a big collection goes a
/// piece at a time, yielding between pieces (Codis frees them on a "lazy release" thread).
async fn release(entries: Vec<Entry>) {
    for entry in entries {
        let mut value = entry.value;
        loop {
            let len = match &mut value {
                Value::Hash(hash) => hash.len(),
                Value::Set(set) => set.len(),
                Value::List(list) => list.len(),
                Value::ZSet(_) | Value::Str(_) => 0,
            };
            if len <= RELEASE_STEP {
                break;
            }
            let keep = len - RELEASE_STEP;
            match &mut value {
                Value::Hash(hash) => hash.truncate(keep),
                Value::Set(set) => set.truncate(keep),
                Value::List(list) => list.truncate(keep),
                Value::ZSet(_) | Value::Str(_) => {}
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The batch failed: it ends with nothing deleted here (the target may hold some keys, which the
/// next attempt overwrites, and half-built ones there expire), the fence lifts, and the callers
/// get the error.
fn fail_batch(shared: &Shared, db: usize, error: &BatchError) {
    let mut state = shared.lock();
    let state = &mut *state;
    if matches!(error, BatchError::Canceled) {
        // SLOTSMGRT-ASYNC-CANCEL already ended the batch and answered its callers.
        return;
    }
    warn!(db, %error, "asynchronous migration failed");
    if let Some(batch) = state.migrations.batches[db].take() {
        abort_batch(state, db, batch, &error.to_string());
    }
}

/// Ends `batch` without deleting anything: lifts its fence and gives its callers `error`.
pub fn abort_batch(state: &mut State, db: usize, batch: AsyncBatch, error: &str) {
    state.migrations.fences.lift(db, batch.fence, &batch.keys);
    state.migrations.mark_stale(db, &batch.keys, &batch.target);
    for caller in &batch.callers {
        caller.fail(error);
    }
}
