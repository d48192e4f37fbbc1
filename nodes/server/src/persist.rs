//! Snapshots: `SAVE`, `BGSAVE`, the `save` rules, and loading the snapshot at start.
//!
//! Commands run under the state's lock and cannot wait for a disk. So a snapshot is encoded
//! there, every key at one instant (what Redis' fork captures), and handed to the snapshot
//! writer: a task that writes it to a temporary file, syncs it, and renames it over the previous
//! snapshot, so a crash mid-write leaves the previous one whole. `SAVE`'s caller waits for the
//! writer as a blocked client waits; `BGSAVE` and the rules do not. Encoding under the lock
//! pauses other clients for a time proportional to the dataset (Redis' fork pauses them far
//! less): the price of this first version, measured in `reports/server.md`.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use net::{Disk, DiskFile, Env};
use resp::Version;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::CmdError;
use crate::keyspace::Keyspace;
use crate::outbox::{Delivery, Outbox};
use crate::rdb::file::{self, Header};
use crate::rdb::{LoadOptions, RdbError};
use crate::reply::Reply;
use crate::state::Shared;
use crate::state::State;

/// After a failed snapshot, the rules wait this long before trying again (Redis'
/// `CONFIG_BGSAVE_RETRY_DELAY`).
pub(crate) const RETRY_DELAY_MS: u64 = 5_000;

/// What the server knows of its snapshots.
#[derive(Debug)]
pub struct Persistence {
    /// The keyspace's change count when the last snapshot that succeeded was taken.
    changes_at_last_save: u64,
    /// When that was (Unix ms; the start time until a first snapshot).
    pub last_save_ms: u64,
    /// Whether the last snapshot succeeded.
    pub last_save_ok: bool,
    /// When the last failure was (Unix ms).
    last_failure_ms: u64,
    /// The change count of the snapshot being written, if one is.
    in_progress: Option<u64>,
    /// Snapshots written since start.
    pub saves: u64,
    writer: Option<mpsc::UnboundedSender<Job>>,
}

/// A snapshot for the writer.
#[derive(Debug)]
pub struct Job {
    bytes: Vec<u8>,
    path: String,
    changes: u64,
    caller: Option<Caller>,
}

/// A client waiting for its `SAVE`.
#[derive(Debug)]
pub struct Caller {
    /// Where its reply goes.
    pub outbox: Outbox,
    /// Its protocol.
    pub version: Version,
}

impl Persistence {
    /// No snapshot yet; `now_ms` counts as the last one (as Redis starts its clock).
    pub fn new(now_ms: u64) -> Persistence {
        Persistence {
            changes_at_last_save: 0,
            last_save_ms: now_ms,
            last_save_ok: true,
            last_failure_ms: 0,
            in_progress: None,
            saves: 0,
            writer: None,
        }
    }

    /// Connects the snapshot writer.
    pub fn attach(&mut self, writer: mpsc::UnboundedSender<Job>) {
        self.writer = Some(writer);
    }

    /// Changes since the last snapshot (`rdb_changes_since_last_save`).
    pub fn changes_since_save(&self, keyspace: &Keyspace) -> u64 {
        keyspace.changes().saturating_sub(self.changes_at_last_save)
    }

    /// What was just loaded is what is on disk: no changes since.
    pub fn mark_clean(&mut self, changes: u64) {
        self.changes_at_last_save = changes;
    }

    /// Whether a snapshot is being written.
    pub fn in_progress(&self) -> bool {
        self.in_progress.is_some()
    }
}

/// Takes a snapshot of `state` now and hands it to the writer; `caller`, if any, gets `+OK` or
/// the error once it is on disk.
pub fn start(state: &mut State, now_ms: u64, caller: Option<Caller>) -> Result<(), CmdError> {
    if state.persistence.in_progress() {
        return Err(CmdError::other("ERR Background save already in progress"));
    }
    let Some(writer) = state.persistence.writer.clone() else {
        return Err(CmdError::other("ERR this server has no snapshot writer"));
    };
    let bytes = encode_snapshot(state, now_ms);
    let changes = state.keyspace.changes();
    let job = Job { bytes, path: state.config.snapshot_path(), changes, caller };
    writer.send(job).map_err(|_| CmdError::other("ERR the snapshot writer is gone"))?;
    state.persistence.in_progress = Some(changes);
    Ok(())
}

/// The state as an RDB snapshot taken at `now_ms` (also the append-only log's base).
pub fn encode_snapshot(state: &State, now_ms: u64) -> Vec<u8> {
    let header = Header {
        version: crate::REDIS_VERSION.into(),
        ctime_secs: now_ms / 1000,
        used_memory: crate::evict::used_memory(state) as u64,
    };
    file::write(&state.keyspace, &header, now_ms)
}

/// Starts a snapshot if the `save` rules say one is due (the background cycle asks).
pub fn save_if_due(state: &mut State, now_ms: u64) {
    let persistence = &state.persistence;
    if state.config.save.0.is_empty() || persistence.in_progress() {
        return;
    }
    if !persistence.last_save_ok && now_ms.saturating_sub(persistence.last_failure_ms) < RETRY_DELAY_MS {
        return;
    }
    let changes = persistence.changes_since_save(&state.keyspace);
    if state.config.save.due(changes, now_ms.saturating_sub(persistence.last_save_ms)) {
        info!(changes, "snapshot due by the save rules");
        if let Err(error) = start(state, now_ms, None) {
            warn!(%error, "could not start a snapshot");
        }
    }
}

/// The snapshot writer: writes each job's snapshot and records the outcome.
pub async fn writer<E: Env>(env: E, shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let disk = env.disk();
    while let Some(job) = jobs.recv().await {
        let written = write_file(&disk, &job.path, &job.bytes).await;
        let now = env.unix_millis();
        let mut state = shared.lock();
        let persistence = &mut state.persistence;
        persistence.in_progress = None;
        match &written {
            Ok(()) => {
                persistence.changes_at_last_save = job.changes;
                persistence.last_save_ms = now;
                persistence.last_save_ok = true;
                persistence.saves += 1;
                info!(path = %job.path, bytes = job.bytes.len(), "DB saved on disk");
            }
            Err(error) => {
                persistence.last_save_ok = false;
                persistence.last_failure_ms = now;
                warn!(path = %job.path, %error, "snapshot failed");
            }
        }
        if let Some(caller) = job.caller {
            match written {
                Ok(()) => post(&caller, |reply| reply.ok()),
                Err(error) => post(&caller, |reply| reply.error(&format!("ERR snapshot failed: {error}"))),
            }
        }
    }
}

/// Sends `caller` the reply `write` writes.
pub(crate) fn post(caller: &Caller, write: impl FnOnce(&mut Reply<'_>)) {
    let mut out = BytesMut::new();
    write(&mut Reply::new(&mut out, caller.version));
    caller.outbox.send(Delivery::Unblocked(out.freeze()));
}

/// Writes `bytes` to `path` by way of a synced temporary file renamed over it.
/// A failed write leaves no temporary file behind.
pub(crate) async fn write_file<D: Disk>(disk: &D, path: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = format!("{path}.tmp");
    let written = async {
        let mut file = disk.create(&temp).await?;
        file.write_all(bytes).await?;
        file.sync().await?;
        drop(file);
        disk.rename(&temp, path).await
    }
    .await;
    if written.is_err() {
        let _ = disk.remove(&temp).await;
    }
    written
}

/// Why the snapshot found at start could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: io::Error,
    },
    /// The file is not a snapshot this server can load.
    #[error("{path} is not a loadable snapshot ({error}); move it away to start empty")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong.
        error: RdbError,
    },
}

/// Loads the snapshot at the configured path into `state`, if there is one; returns how many
/// keys it held (keys already expired are counted but dropped, as Redis drops them).
pub async fn load<E: Env>(env: &E, state: &mut State) -> Result<Option<u64>, LoadError> {
    let path = state.config.snapshot_path();
    let bytes = match env.disk().read(&path).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(error) => return Err(LoadError::Read { path, error }),
    };
    let now = env.unix_millis();
    let keys = load_bytes(state, &bytes, now, false).map_err(|error| LoadError::Bad { path: path.clone(), error })?;
    info!(%path, keys, "DB loaded from disk");
    Ok(Some(keys))
}

/// Loads snapshot `bytes` into `state`'s keyspace. Keys already expired are dropped, unless
/// `keep_expired`: the base of an append-only log keeps them, as Redis does, because the
/// commands logged after it may still refer to them (a `PERSIST` logged before the expiry).
pub fn load_bytes(state: &mut State, bytes: &[u8], now_ms: u64, keep_expired: bool) -> Result<u64, RdbError> {
    let limits = state.config.encoding_limits();
    let seeds: Vec<u64> = state.keyspace.dbs().iter().map(|db| db.collection_seed()).collect();
    let databases = seeds.len();
    let keyspace = &mut state.keyspace;
    let summary = file::read(
        bytes,
        |db| LoadOptions { limits, seed: seeds.get(db).copied().unwrap_or_default() },
        |loaded| {
            if loaded.db >= databases {
                return Err(RdbError::Corrupt { what: "snapshot", why: "a database beyond `databases`" });
            }
            let expire_at = loaded.expire_at_ms.unwrap_or(0);
            if keep_expired || expire_at == 0 || expire_at > now_ms {
                keyspace.db(loaded.db).set(&loaded.key, loaded.value, expire_at, now_ms);
            }
            Ok(())
        },
    )?;
    // What was loaded is what is on disk.
    state.persistence.changes_at_last_save = state.keyspace.changes();
    state.persistence.last_save_ms = now_ms;
    Ok(summary.keys)
}
