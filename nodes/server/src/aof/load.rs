//! Loading the append-only log at start: the manifest, the base, then every increment replayed
//! command by command.
//!
//! Commands replay as they were logged: nothing expires by itself meanwhile (an expiry is in
//! the log as the `DEL` that performed it), and `maxmemory` does not apply (evictions are in the
//! log too). A last increment cut short by a crash (a torn write, or a transaction without its
//! `EXEC`) is truncated to its last whole command with a warning, as `redis-check-aof --fix`
//! would; anything else that does not parse refuses the start, naming the file and the offset.

use std::io;

use bytes::BytesMut;
use net::{Disk, Env};
use resp::{Limits, RequestDecoder};
use tracing::{info, warn};

use super::manifest::{LogFile, Manifest, ManifestError, manifest_name};
use crate::cmd;
use crate::rdb::RdbError;
use crate::state::{Client, State};

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    /// The log's files.
    pub manifest: Manifest,
    /// The base's size.
    pub base_size: u64,
    /// The size of the log (base and increments, after any truncation).
    pub size: u64,
    /// The last increment's size (after any truncation): where appending goes on.
    pub last_incr_size: u64,
    /// Commands replayed.
    pub commands: u64,
}

/// Why the log could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: io::Error,
    },
    /// The manifest does not parse.
    #[error("{path} is not a valid manifest ({error}); restore it or move the log directory away")]
    Manifest {
        /// The manifest.
        path: String,
        /// What is wrong.
        error: ManifestError,
    },
    /// A file the manifest names is missing.
    #[error("{path} is in the manifest but missing; restore it or move the log directory away")]
    Missing {
        /// The file.
        path: String,
    },
    /// The base snapshot does not load.
    #[error("the log's base {path} is not a loadable snapshot ({error})")]
    Base {
        /// The file.
        path: String,
        /// What is wrong.
        error: RdbError,
    },
    /// A file is damaged before its end.
    #[error("{path} is damaged at byte {offset}: {why}; `redis-check-aof` can show it")]
    Corrupt {
        /// The file.
        path: String,
        /// Where the bad command starts.
        offset: usize,
        /// What is wrong.
        why: String,
    },
    /// A file ends in the middle of a command and may not be truncated.
    #[error(
        "{path} ends in the middle of a command at byte {offset} (only the last increment may be cut short, and only with aof-load-truncated yes); `redis-check-aof --fix` truncates it"
    )]
    Truncated {
        /// The file.
        path: String,
        /// Where the unfinished command starts.
        offset: usize,
    },
}

/// Joins `name` to the log's directory.
pub(crate) fn path_in(dir: &str, name: &str) -> String {
    std::path::Path::new(dir).join(name).to_string_lossy().into_owned()
}

async fn read<D: Disk>(disk: &D, path: &str) -> Result<Option<Vec<u8>>, LoadError> {
    disk.read(path).await.map_err(|error| LoadError::Read { path: path.to_string(), error })
}

/// Loads the log into `state`, if there is one (a manifest in the log's directory).
pub async fn load<E: Env>(env: &E, state: &mut State) -> Result<Option<Loaded>, LoadError> {
    let dir = state.config.aof_dir();
    let disk = env.disk();
    let manifest_path = path_in(&dir, &manifest_name(&state.config.appendfilename));
    let Some(text) = read(&disk, &manifest_path).await? else {
        return Ok(None);
    };
    let manifest = std::str::from_utf8(&text)
        .map_err(|_| ManifestError { line: 0, why: "not text" })
        .and_then(Manifest::parse)
        .map_err(|error| LoadError::Manifest { path: manifest_path.clone(), error })?;
    let now = env.unix_millis();
    // Replay as the log says, not as the clock or the memory limit would.
    let maxmemory = std::mem::replace(&mut state.config.maxmemory, 0);
    for db in state.keyspace.dbs_mut() {
        db.set_lazy_expiry(false);
    }
    let loaded = load_files(&disk, state, &dir, manifest, now).await;
    for db in state.keyspace.dbs_mut() {
        db.set_lazy_expiry(true);
    }
    state.config.maxmemory = maxmemory;
    // Loading is not activity: counters start from here.
    state.stats = crate::state::Stats::default();
    state.slowlog = crate::slowlog::SlowLog::default();
    for db in state.keyspace.dbs_mut() {
        db.reset_stats();
    }
    state.persistence.mark_clean(state.keyspace.changes());
    let loaded = loaded?;
    info!(dir = %dir, size = loaded.size, commands = loaded.commands, keys = state.keyspace.dbs().iter().map(|db| db.len()).sum::<usize>(), "DB loaded from append only file");
    Ok(Some(loaded))
}

async fn load_files<D: Disk>(
    disk: &D,
    state: &mut State,
    dir: &str,
    manifest: Manifest,
    now: u64,
) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded { manifest, base_size: 0, size: 0, last_incr_size: 0, commands: 0 };
    if let Some(base) = &loaded.manifest.base {
        let path = path_in(dir, &base.name);
        let bytes = read(disk, &path).await?.ok_or_else(|| LoadError::Missing { path: path.clone() })?;
        if bytes.starts_with(b"REDIS") {
            crate::persist::load_bytes(state, &bytes, now, true).map_err(|error| LoadError::Base { path, error })?;
        } else {
            let replayed = replay(state, &bytes, now);
            loaded.commands += replayed.commands;
            match replayed.end {
                End::Complete => {}
                End::Torn { offset } => return Err(LoadError::Truncated { path, offset }),
                End::Corrupt { offset, why } => return Err(LoadError::Corrupt { path, offset, why }),
            }
        }
        loaded.base_size = bytes.len() as u64;
        loaded.size += bytes.len() as u64;
    }
    let count = loaded.manifest.incrs.len();
    let incrs: Vec<LogFile> = loaded.manifest.incrs.clone();
    for (index, incr) in incrs.iter().enumerate() {
        let path = path_in(dir, &incr.name);
        let bytes = read(disk, &path).await?.ok_or_else(|| LoadError::Missing { path: path.clone() })?;
        let replayed = replay(state, &bytes, now);
        loaded.commands += replayed.commands;
        let kept = match replayed.end {
            End::Complete => bytes.len(),
            End::Corrupt { offset, why } => return Err(LoadError::Corrupt { path, offset, why }),
            End::Torn { offset } if index + 1 == count && state.config.aof_load_truncated => {
                warn!(%path, offset, cut = bytes.len() - offset, "the append only file ends in the middle of a command (a crash mid-write): truncating it to its last whole command");
                disk.truncate(&path, offset as u64)
                    .await
                    .map_err(|error| LoadError::Read { path: path.clone(), error })?;
                offset
            }
            End::Torn { offset } => return Err(LoadError::Truncated { path, offset }),
        };
        loaded.size += kept as u64;
        loaded.last_incr_size = kept as u64;
    }
    Ok(loaded)
}

/// How a file's replay ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was a whole command.
    Complete,
    /// The file ends inside the command (or transaction) starting at `offset`.
    Torn { offset: usize },
    /// The bytes at `offset` are not a command.
    Corrupt { offset: usize, why: String },
}

struct Replayed {
    commands: u64,
    end: End,
}

/// Replays the commands in `bytes` against `state`.
fn replay(state: &mut State, bytes: &[u8], now: u64) -> Replayed {
    let limits = Limits {
        max_bulk_len: usize::MAX,
        max_array_len: usize::MAX,
        max_inline_len: 64 * 1024,
        max_buffered_input: usize::MAX,
        ..Limits::default()
    };
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::from(bytes);
    let mut client = Client::new(0, true);
    client.deny_blocking = true;
    let mut out = BytesMut::new();
    let mut commands = 0;
    // Where the transaction being replayed started: a log ending inside one loses it whole.
    let mut multi_start = None;
    let end = loop {
        let offset = bytes.len() - buf.len();
        match buf.first() {
            None if multi_start.is_none() => break End::Complete,
            None => break End::Torn { offset: multi_start.unwrap_or(offset) },
            // An annotation (Redis' `aof-timestamp-enabled`).
            Some(b'#') => match buf.iter().position(|&byte| byte == b'\n') {
                Some(newline) => {
                    let _ = buf.split_to(newline + 1);
                    continue;
                }
                None => break End::Torn { offset: multi_start.unwrap_or(offset) },
            },
            Some(b'*') => {}
            Some(_) => break End::Corrupt { offset, why: "a command must start with '*'".into() },
        }
        let request = match decoder.decode(&mut buf) {
            Ok(Some(request)) => request,
            Ok(None) => break End::Torn { offset: multi_start.unwrap_or(offset) },
            Err(error) => break End::Corrupt { offset, why: error.to_string() },
        };
        let Some(command) = cmd::table().resolve(&request) else {
            break End::Corrupt {
                offset,
                why: format!("unknown command '{}'", String::from_utf8_lossy(request.name())),
            };
        };
        if !command.arity_ok(request.len()) {
            break End::Corrupt { offset, why: format!("wrong number of arguments for '{}'", command.name) };
        }
        match command.name {
            "multi" => multi_start = Some(offset),
            "exec" => multi_start = None,
            _ => {}
        }
        cmd::execute(state, &mut client, &mut out, &request, now);
        out.clear();
        commands += 1;
    };
    Replayed { commands, end }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn state() -> State {
        State::new(ServerConfig::default(), net::rng_from_seed(1, "aof"), 1_000, 6379)
    }

    #[test]
    fn whole_commands_replay_and_a_torn_tail_is_found() {
        let mut state = state();
        let log = b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let replayed = replay(&mut state, log, 1_000);
        assert_eq!((replayed.commands, replayed.end), (2, End::Complete));
        assert_eq!(state.keyspace.db(2).len(), 1);
        let mut torn = log.to_vec();
        torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhel");
        assert_eq!(replay(&mut state, &torn, 1_000).end, End::Torn { offset: log.len() });
    }

    #[test]
    fn a_transaction_without_its_exec_is_torn_at_its_multi() {
        let mut state = state();
        let log = b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
        assert_eq!(replay(&mut state, log, 1_000).end, End::Torn { offset: 0 });
        assert_eq!(state.keyspace.db(0).len(), 0, "nothing of the unfinished transaction applied");
    }

    #[test]
    fn garbage_and_unknown_commands_are_corruption() {
        let mut state = state();
        let log = b"*1\r\n$4\r\nPING\r\nhello\r\n";
        assert!(matches!(replay(&mut state, log, 1_000).end, End::Corrupt { offset: 14, .. }));
        let unknown = b"*1\r\n$5\r\nNOSUC\r\n";
        assert!(matches!(replay(&mut state, unknown, 1_000).end, End::Corrupt { offset: 0, .. }));
        let arity = b"*1\r\n$3\r\nSET\r\n";
        assert!(matches!(replay(&mut state, arity, 1_000).end, End::Corrupt { offset: 0, .. }));
    }
}
