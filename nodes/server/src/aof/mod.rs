//! The append-only log: every change, in RESP, in files a restart replays.
//!
//! The files are Redis 7's multi-part layout in `dir/appenddirname`: a base (an RDB snapshot),
//! increments holding the commands since, and a manifest naming them ([`manifest`]). A stock
//! `redis-server` 7.0 loads our directory and we load its.
//!
//! Commands never wait for the disk under the state's lock. They record their changes in the
//! change stream ([`crate::propagate`]); the log's writer ([`writer`]) takes them, encodes them,
//! appends them to the current increment and syncs as `appendfsync` says. With `always`, no
//! reply leaves the server before everything recorded up to its batch is synced
//! ([`AppendOnly::reply_barrier`]): the connection waits for the writer, as Redis writes its
//! replies only after `beforeSleep` synced the log. Many connections wait for one sync.
//!
//! A rewrite (`BGREWRITEAOF`, or on its own once the log doubled) compacts the log without
//! stopping writes: at one instant, under the lock, the state is encoded as a snapshot and the
//! stream is split there. The writer finishes the old increment, opens a new one and names it in
//! the manifest beside the old files (a crash now loads old base, old and new increments), then
//! writes the snapshot as the new base and replaces the manifest with new base and new
//! increment. Every manifest ever written describes the whole data.

pub mod load;
pub mod manifest;
pub mod writer;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::config::FsyncPolicy;
use crate::error::CmdError;
use crate::propagate::Change;
use crate::state::State;

/// What commands and `INFO` see of the log; the files themselves belong to the writer.
#[derive(Debug)]
pub struct AppendOnly {
    enabled: bool,
    /// Changes encoded and not yet taken by the writer.
    buffer: BytesMut,
    /// The database the encoded stream is in (`None`: the next change starts with `SELECT`).
    selected_db: Option<usize>,
    /// A rewrite the writer has not started yet.
    rewrite_request: Option<RewriteRequest>,
    /// How many changes (counted as [`crate::propagate::Propagation::total`]) the disk holds,
    /// as far as the policy syncs them: connections under `always` wait on this.
    durable: watch::Sender<u64>,
    /// A rewrite is running (from `BGREWRITEAOF` until the new manifest is in place).
    pub rewrite_in_progress: bool,
    /// A rewrite was asked for while one could not start; the background cycle starts it.
    pub rewrite_scheduled: bool,
    /// When the running rewrite started (Unix ms).
    pub rewrite_started_ms: u64,
    /// How long the last rewrite took (seconds; -1: none yet).
    pub last_rewrite_secs: i64,
    /// Whether the last rewrite succeeded.
    pub last_rewrite_ok: bool,
    /// When the last rewrite failed (Unix ms): automatic rewrites wait a while after one.
    pub last_rewrite_failure_ms: u64,
    /// Rewrites that succeeded since start.
    pub rewrites: u64,
    /// Whether the last write to the log succeeded; while it did not, writes are refused
    /// (`MISCONF`), as Redis refuses them.
    pub last_write_ok: bool,
    /// The last write error, for the `MISCONF` reply.
    pub last_write_error: String,
    /// The log's size (base and increments, bytes).
    pub current_size: u64,
    /// The base's size after the last rewrite (the yardstick of automatic rewrites).
    pub base_size: u64,
}

/// A rewrite for the writer: the stream up to the snapshot, and the snapshot.
#[derive(Debug)]
pub struct RewriteRequest {
    /// The encoded changes before the snapshot: they end the old increment.
    pub tail: Bytes,
    /// The changes counted up to the snapshot.
    pub tail_upto: u64,
    /// The snapshot, in RDB form: the new base.
    pub base: Vec<u8>,
}

/// What the writer takes in one round.
#[derive(Debug)]
pub struct Work {
    /// A rewrite to start first.
    pub rewrite: Option<RewriteRequest>,
    /// Encoded changes to append.
    pub bytes: Bytes,
    /// The changes counted up to the end of `bytes`.
    pub upto: u64,
    /// The sync policy in force.
    pub policy: FsyncPolicy,
}

impl Default for AppendOnly {
    fn default() -> Self {
        AppendOnly {
            enabled: false,
            buffer: BytesMut::new(),
            selected_db: None,
            rewrite_request: None,
            durable: watch::Sender::new(0),
            rewrite_in_progress: false,
            rewrite_scheduled: false,
            rewrite_started_ms: 0,
            last_rewrite_secs: -1,
            last_rewrite_ok: true,
            last_rewrite_failure_ms: 0,
            rewrites: 0,
            last_write_ok: true,
            last_write_error: String::new(),
            current_size: 0,
            base_size: 0,
        }
    }
}

impl AppendOnly {
    /// Whether the log is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Bytes encoded and not yet handed to the writer (`aof_buffer_length`).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Follows how far the log is durable (see [`AppendOnly::reply_barrier`]).
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Records that the disk holds every change counted up to `upto`.
    pub(crate) fn set_durable(&self, upto: u64) {
        self.durable.send_if_modified(|durable| {
            let advanced = upto > *durable;
            *durable = (*durable).max(upto);
            advanced
        });
    }

    /// Encodes `changes` into the buffer, if the log is on.
    pub(crate) fn absorb(&mut self, changes: &[Change]) {
        if !self.enabled {
            return;
        }
        crate::propagate::encode_changes(&mut self.buffer, &mut self.selected_db, changes, true);
    }
}

/// Turns the log on, from a writer that holds every change counted so far.
pub fn enable(state: &mut State, log_size: u64, base_size: u64) {
    state.propagate_changes();
    let aof = &mut state.aof;
    aof.enabled = true;
    aof.current_size = log_size;
    aof.base_size = base_size;
    aof.set_durable(state.propagation.total());
}

/// Everything the writer has to do now (called by the writer, under the lock).
pub fn take_work(state: &mut State) -> Work {
    crate::propagate::distribute(state);
    let aof = &mut state.aof;
    Work {
        rewrite: aof.rewrite_request.take(),
        bytes: aof.buffer.split().freeze(),
        upto: state.propagation.total(),
        policy: state.config.appendfsync,
    }
}

/// How far the log must be durable before replies written now may leave: every change recorded
/// so far under `appendfsync always` (a reply must not show data a crash could take back), 0
/// (nothing to wait for) otherwise.
pub fn reply_barrier(state: &State) -> u64 {
    if state.aof.enabled && state.config.appendfsync == FsyncPolicy::Always { state.propagation.total() } else { 0 }
}

/// Starts a rewrite now: the snapshot and the split of the stream happen at this instant.
/// Fails if the log is off or a rewrite is running.
pub fn start_rewrite(state: &mut State, now_ms: u64) -> Result<(), CmdError> {
    if !state.aof.enabled {
        return Err(CmdError::other("ERR Append only file is disabled"));
    }
    if state.aof.rewrite_in_progress {
        return Err(CmdError::other("ERR Background append only file rewriting already in progress"));
    }
    crate::propagate::distribute(state);
    let base = crate::persist::encode_snapshot(state, now_ms);
    let aof = &mut state.aof;
    let tail = aof.buffer.split().freeze();
    // The new increment starts with its own SELECT.
    aof.selected_db = None;
    aof.rewrite_request = Some(RewriteRequest { tail, tail_upto: state.propagation.total(), base });
    aof.rewrite_in_progress = true;
    aof.rewrite_scheduled = false;
    aof.rewrite_started_ms = now_ms;
    state.propagation.waker().notify_one();
    Ok(())
}

/// Starts a rewrite if one is scheduled or the log has grown enough (the background cycle
/// asks).
pub fn rewrite_if_due(state: &mut State, now_ms: u64) {
    let aof = &state.aof;
    if !aof.enabled || aof.rewrite_in_progress {
        return;
    }
    if !aof.last_rewrite_ok && now_ms.saturating_sub(aof.last_rewrite_failure_ms) < crate::persist::RETRY_DELAY_MS {
        return;
    }
    let percentage = state.config.auto_aof_rewrite_percentage;
    let grown = percentage > 0
        && aof.current_size >= state.config.auto_aof_rewrite_min_size
        && aof.current_size.saturating_sub(aof.base_size) * 100 >= aof.base_size.max(1) * percentage;
    if aof.rewrite_scheduled || grown {
        tracing::info!(
            size = aof.current_size,
            base = aof.base_size,
            "starting an automatic rewrite of the append-only log"
        );
        if let Err(error) = start_rewrite(state, now_ms) {
            tracing::warn!(%error, "could not start a rewrite of the append-only log");
        }
    }
}

/// The `MISCONF` refusal of writes while the log cannot be written, if it cannot.
pub fn write_refusal(state: &State) -> Option<CmdError> {
    (state.aof.enabled && !state.aof.last_write_ok)
        .then(|| CmdError::message(format!("MISCONF Errors writing to the AOF file: {}", state.aof.last_write_error)))
}
