//! The log's writer: one task that appends the change stream to the current increment, syncs
//! it as `appendfsync` says, and carries out rewrites.
//!
//! Each round takes, under the lock, everything recorded since the last round
//! ([`super::take_work`]), then writes it without the lock: commands go on meanwhile, and the
//! next round takes what they recorded, so one write and one sync serve many commands. A write
//! that fails is kept and tried again every second; meanwhile writes are refused (`MISCONF`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use net::{Disk, DiskFile, Env};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::load::{Loaded, path_in};
use super::manifest::{LogFile, Manifest, base_name, incr_name, manifest_name};
use super::{RewriteRequest, Work};
use crate::config::FsyncPolicy;
use crate::persist;
use crate::shutdown::stopped;
use crate::state::Shared;
use crate::state::State;

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// How often `everysec` syncs.
const EVERY_SECOND: Duration = Duration::from_secs(1);

/// The log's files, as the writer keeps them.
pub struct Log<D: Disk> {
    disk: D,
    dir: String,
    name: String,
    manifest: Manifest,
    /// The current increment, open for appending.
    incr: D::File,
    incr_size: u64,
    /// The base and the increments before the current one.
    other_size: u64,
    base_size: u64,
    /// Encoded changes not written yet (a write failed), and how far they count.
    unwritten: BytesMut,
    unwritten_upto: u64,
    /// The size of the current increment known whole: at the last sync (or, under `no`, the last
    /// write), with the bytes written since, kept while the policy syncs.
    checkpoint_size: u64,
    since_checkpoint: BytesMut,
    /// A write or sync failed: what follows the checkpoint may be missing or half there (after a
    /// failed fsync, Linux may drop the pages and a retry would report success), so the file is
    /// cut back to the checkpoint and the bytes since are written again.
    damaged: bool,
    /// How far the written bytes count, and whether they are synced.
    written_upto: u64,
    synced: bool,
    last_sync: Instant,
    /// The sync policy of the last round.
    policy: FsyncPolicy,
}

/// A rewrite whose new base is being written.
struct Rewrite {
    base: LogFile,
    /// The increment opened when the rewrite started: it and the later ones stay.
    first_kept_incr: u64,
    writing: JoinHandle<io::Result<u64>>,
}

impl<D: Disk> Log<D> {
    fn path(&self, name: &str) -> String {
        path_in(&self.dir, name)
    }

    fn size(&self) -> u64 {
        self.other_size + self.incr_size
    }

    /// The log's size and its base's.
    pub fn sizes(&self) -> (u64, u64) {
        (self.size(), self.base_size)
    }

    /// Replaces the manifest on disk with `manifest`.
    async fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        write_manifest(&self.disk, &self.dir, &self.name, manifest).await
    }

    /// Writes what is pending (after repairing a damaged increment first).
    async fn write_pending(&mut self) -> io::Result<()> {
        if self.damaged {
            self.repair().await?;
        }
        if self.unwritten.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.incr.write_all(&self.unwritten).await {
            self.damaged = true;
            return Err(error);
        }
        self.incr_size += self.unwritten.len() as u64;
        if self.policy == FsyncPolicy::No {
            // Nothing is promised beyond what the OS has: a whole write is a checkpoint.
            self.checkpoint_size = self.incr_size;
        } else {
            self.since_checkpoint.extend_from_slice(&self.unwritten);
        }
        self.unwritten.clear();
        self.written_upto = self.unwritten_upto;
        self.synced = false;
        Ok(())
    }

    /// Cuts the current increment back to its checkpoint, reopens it, and queues the bytes
    /// written since to go again, ahead of what is pending.
    async fn repair(&mut self) -> io::Result<()> {
        let path = self.path(&self.current_incr().name);
        self.disk.truncate(&path, self.checkpoint_size).await?;
        self.incr = self.disk.append(&path).await?;
        self.incr_size = self.checkpoint_size;
        let mut again = std::mem::take(&mut self.since_checkpoint);
        again.extend_from_slice(&self.unwritten);
        self.unwritten = again;
        self.damaged = false;
        warn!(%path, "cut the append only file back to its last sync after a failure; writing again what followed");
        Ok(())
    }

    fn current_incr(&self) -> &LogFile {
        // A log always has a current increment (see `open`).
        &self.manifest.incrs[self.manifest.incrs.len() - 1]
    }

    async fn sync(&mut self) -> io::Result<()> {
        if !self.synced {
            if let Err(error) = self.incr.sync().await {
                self.damaged = true;
                return Err(error);
            }
            self.synced = true;
            self.checkpoint_size = self.incr_size;
            self.since_checkpoint.clear();
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Ends the current increment and starts the next one, named in the manifest beside it.
    async fn rotate(&mut self) -> io::Result<()> {
        self.write_pending().await?;
        self.sync().await?;
        let seq = self.current_incr().seq + 1;
        let next = LogFile { name: incr_name(&self.name, seq), seq };
        let file = self.disk.create(&self.path(&next.name)).await?;
        let mut manifest = self.manifest.clone();
        manifest.incrs.push(next);
        self.write_manifest(&manifest).await?;
        self.manifest = manifest;
        self.incr = file;
        self.other_size += self.incr_size;
        self.incr_size = 0;
        self.checkpoint_size = 0;
        Ok(())
    }
}

/// Opens the log for writing at start: goes on appending to the one just loaded, or makes a new
/// one whose base is the state as loaded (from the snapshot, if there was one; else empty).
pub async fn open<E: Env>(env: &E, state: &State, loaded: Option<Loaded>) -> io::Result<Log<E::Disk>> {
    let disk = env.disk();
    let dir = state.config.aof_dir();
    let name = state.config.appendfilename.clone();
    disk.create_dir(&dir).await?;
    let (mut manifest, base_size, size, last_incr_size) = match loaded {
        Some(loaded) => (loaded.manifest, loaded.base_size, loaded.size, loaded.last_incr_size),
        None => {
            let bytes = persist::encode_snapshot(state, env.unix_millis());
            let base = LogFile { name: base_name(&name, 1), seq: 1 };
            persist::write_file(&disk, &path_in(&dir, &base.name), &bytes).await?;
            info!(%dir, "created the append only file's base");
            let size = bytes.len() as u64;
            (Manifest { base: Some(base), incrs: Vec::new() }, size, size, 0)
        }
    };
    let (incr, incr_size) = match manifest.incrs.last() {
        Some(last) => {
            // Go on where the last increment ends (its size is part of `size`).
            (disk.append(&path_in(&dir, &last.name)).await?, last_incr_size)
        }
        None => {
            let first = LogFile { name: incr_name(&name, 1), seq: 1 };
            let file = disk.create(&path_in(&dir, &first.name)).await?;
            manifest.incrs.push(first);
            write_manifest(&disk, &dir, &name, &manifest).await?;
            (file, 0)
        }
    };
    Ok(Log {
        disk,
        dir,
        name,
        manifest,
        incr,
        incr_size,
        other_size: size.saturating_sub(incr_size),
        base_size,
        unwritten: BytesMut::new(),
        unwritten_upto: 0,
        checkpoint_size: incr_size,
        since_checkpoint: BytesMut::new(),
        damaged: false,
        written_upto: 0,
        synced: true,
        last_sync: Instant::now(),
        policy: state.config.appendfsync,
    })
}

/// Replaces the manifest of log `name` in `dir` with `manifest`.
async fn write_manifest<D: Disk>(disk: &D, dir: &str, name: &str, manifest: &Manifest) -> io::Result<()> {
    persist::write_file(disk, &path_in(dir, &manifest_name(name)), manifest.render().as_bytes()).await
}

/// The writer task: runs until the server stops, then writes and syncs what is left.
pub async fn run<E: Env>(env: E, shared: Arc<Shared>, mut log: Log<E::Disk>) {
    let (wake, mut stopping) = {
        let state = shared.lock();
        (state.propagation.waker(), state.shutdown.subscribe())
    };
    let mut rewrite: Option<Rewrite> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        // Under `everysec`, unsynced bytes wake the writer a second after the last sync.
        let sync_at = (log.policy == FsyncPolicy::Everysec && !log.synced).then(|| log.last_sync + EVERY_SECOND);
        // After a failure, only the retry: a sync that failed is due again at once otherwise.
        let timer = retry_at.or(sync_at);
        let rewrite_done = async {
            match rewrite.as_mut() {
                Some(running) => (&mut running.writing).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stopped(&mut stopping) => {
                if round(&env, &shared, &mut log, &mut rewrite, true).await {
                    info!("append only file synced at shutdown");
                } else {
                    warn!("the append only file could not be synced at shutdown");
                }
                return;
            }
            written = rewrite_done => {
                if let Some(finished) = rewrite.take() {
                    finish_rewrite(&env, &shared, &mut log, finished, written).await;
                }
                continue;
            }
            () = wake.notified() => {}
            () = sleep_until(timer), if timer.is_some() => {}
        }
        // Let the connections that are ready run their batches first, so one write (and, under
        // `always`, one sync) takes them all, as Redis writes once per turn of its event loop.
        tokio::task::yield_now().await;
        let ok = round(&env, &shared, &mut log, &mut rewrite, false).await;
        retry_at = (!ok).then(|| Instant::now() + RETRY);
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// One round: take the work, start a rewrite if asked, write, sync as the policy says, and tell
/// the state. Returns whether the writes succeeded.
async fn round<E: Env>(
    env: &E,
    shared: &Shared,
    log: &mut Log<E::Disk>,
    rewrite: &mut Option<Rewrite>,
    final_round: bool,
) -> bool {
    let Work { rewrite: request, bytes, upto, policy } = super::take_work(&mut shared.lock());
    log.policy = policy;
    if let Some(request) = request {
        start_rewrite(env, shared, log, rewrite, request).await;
    }
    log.unwritten.extend_from_slice(&bytes);
    log.unwritten_upto = upto;
    let mut result = log.write_pending().await;
    let sync_now = final_round
        || match policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::Everysec => log.last_sync.elapsed() >= EVERY_SECOND,
            FsyncPolicy::No => false,
        };
    if result.is_ok() && sync_now {
        result = log.sync().await;
    }
    let mut state = shared.lock();
    let aof = &mut state.aof;
    aof.current_size = log.size();
    match result {
        Ok(()) => {
            if !aof.last_write_ok {
                info!("writing the append only file works again");
            }
            aof.last_write_ok = true;
            if log.synced {
                aof.set_durable(log.written_upto);
            }
            true
        }
        Err(error) => {
            if aof.last_write_ok {
                warn!(%error, "writing the append only file failed; writes are refused until it works again");
            }
            aof.last_write_ok = false;
            aof.last_write_error = error.to_string();
            false
        }
    }
}

/// Splits the log at the rewrite's snapshot: the old increment ends with the changes before it,
/// a new one takes the changes after, and the snapshot is written as the next base meanwhile.
/// If any step fails the rewrite is given up and the log goes on in whichever increment is
/// current: each starts with its own `SELECT`, so the stream is whole either way.
async fn start_rewrite<E: Env>(
    env: &E,
    shared: &Shared,
    log: &mut Log<E::Disk>,
    rewrite: &mut Option<Rewrite>,
    request: RewriteRequest,
) {
    log.unwritten.extend_from_slice(&request.tail);
    log.unwritten_upto = request.tail_upto;
    if let Err(error) = log.rotate().await {
        warn!(%error, "could not start a new increment for the rewrite");
        rewrite_failed(env, shared);
        return;
    }
    let seq = log.manifest.base.as_ref().map_or(1, |base| base.seq + 1);
    let base = LogFile { name: base_name(&log.name, seq), seq };
    let (disk, path, bytes) = (log.disk.clone(), log.path(&base.name), Bytes::from(request.base));
    let writing = env.spawn(async move {
        persist::write_file(&disk, &path, &bytes).await?;
        Ok(bytes.len() as u64)
    });
    info!(base = %base.name, "append only file rewrite started");
    *rewrite = Some(Rewrite { base, first_kept_incr: log.current_incr().seq, writing });
}

/// The new base is written (or failed): on success the manifest names it with the increments
/// since the rewrite started, and the files it replaced are deleted.
async fn finish_rewrite<E: Env>(
    env: &E,
    shared: &Shared,
    log: &mut Log<E::Disk>,
    finished: Rewrite,
    written: Result<io::Result<u64>, tokio::task::JoinError>,
) {
    let base_size = match written {
        Ok(Ok(size)) => size,
        Ok(Err(error)) => {
            warn!(%error, "writing the rewritten base failed");
            rewrite_failed(env, shared);
            return;
        }
        Err(error) => {
            warn!(%error, "the rewrite's writer stopped");
            rewrite_failed(env, shared);
            return;
        }
    };
    let kept: Vec<LogFile> =
        log.manifest.incrs.iter().filter(|incr| incr.seq >= finished.first_kept_incr).cloned().collect();
    let manifest = Manifest { base: Some(finished.base), incrs: kept };
    if let Err(error) = log.write_manifest(&manifest).await {
        warn!(%error, "could not write the manifest naming the rewritten base");
        rewrite_failed(env, shared);
        return;
    }
    let replaced = std::mem::replace(&mut log.manifest, manifest);
    for file in replaced.base.iter().chain(&replaced.incrs) {
        if !log.manifest.incrs.contains(file)
            && let Err(error) = log.disk.remove(&log.path(&file.name)).await
        {
            warn!(file = %file.name, %error, "could not delete a file the rewrite replaced");
        }
    }
    log.base_size = base_size;
    log.other_size = base_size;
    let now = env.unix_millis();
    let mut state = shared.lock();
    let aof = &mut state.aof;
    aof.rewrite_in_progress = false;
    aof.last_rewrite_ok = true;
    aof.rewrites += 1;
    aof.last_rewrite_secs = i64::try_from(now.saturating_sub(aof.rewrite_started_ms) / 1000).unwrap_or(i64::MAX);
    aof.base_size = base_size;
    aof.current_size = log.size();
    info!(size = base_size, "background AOF rewrite finished successfully");
}

fn rewrite_failed<E: Env>(env: &E, shared: &Shared) {
    let now = env.unix_millis();
    let mut state = shared.lock();
    let aof = &mut state.aof;
    aof.rewrite_in_progress = false;
    aof.last_rewrite_ok = false;
    aof.last_rewrite_failure_ms = now;
    aof.last_rewrite_secs = i64::try_from(now.saturating_sub(aof.rewrite_started_ms) / 1000).unwrap_or(i64::MAX);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use net::{Disk, DiskFile};

    use super::*;

    /// A disk whose next write can fail halfway and whose next sync can fail losing what it
    /// should have synced (as Linux may after an fsync error), both reporting errors.
    #[derive(Clone, Default)]
    struct FlakyDisk(Arc<Mutex<Flaky>>);

    #[derive(Default)]
    struct Flaky {
        files: BTreeMap<String, (Vec<u8>, usize)>,
        fail_write: bool,
        fail_sync: bool,
    }

    struct FlakyFile(FlakyDisk, String);

    impl FlakyDisk {
        fn content(&self, path: &str) -> Vec<u8> {
            self.0.lock().unwrap().files.get(path).map(|(bytes, _)| bytes.clone()).unwrap_or_default()
        }
    }

    impl Disk for FlakyDisk {
        type File = FlakyFile;
        type Lock = ();
        async fn append(&self, path: &str) -> io::Result<FlakyFile> {
            self.0.lock().unwrap().files.entry(path.into()).or_default();
            Ok(FlakyFile(self.clone(), path.into()))
        }
        async fn create(&self, path: &str) -> io::Result<FlakyFile> {
            self.0.lock().unwrap().files.insert(path.into(), (Vec::new(), 0));
            Ok(FlakyFile(self.clone(), path.into()))
        }
        async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.lock().unwrap().files.get(path).map(|(bytes, _)| bytes.clone()))
        }
        async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            let mut disk = self.0.lock().unwrap();
            let file = disk.files.remove(from).ok_or_else(|| io::Error::other("no file"))?;
            disk.files.insert(to.into(), file);
            Ok(())
        }
        async fn remove(&self, path: &str) -> io::Result<()> {
            self.0.lock().unwrap().files.remove(path);
            Ok(())
        }
        async fn create_dir(&self, _path: &str) -> io::Result<()> {
            Ok(())
        }
        async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
            let mut disk = self.0.lock().unwrap();
            let (bytes, synced) = disk.files.get_mut(path).ok_or_else(|| io::Error::other("no file"))?;
            bytes.truncate(len as usize);
            *synced = (*synced).min(bytes.len());
            Ok(())
        }
        async fn list(&self, _path: &str) -> io::Result<Vec<net::DirEntry>> {
            Ok(Vec::new())
        }
        async fn lock(&self, _path: &str, _timeout: std::time::Duration) -> io::Result<()> {
            Ok(())
        }
    }

    impl DiskFile for FlakyFile {
        async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut disk = self.0.0.lock().unwrap();
            let fail = std::mem::take(&mut disk.fail_write);
            let file = &mut disk.files.get_mut(&self.1).ok_or_else(|| io::Error::other("no file"))?.0;
            if fail {
                file.extend_from_slice(&bytes[..bytes.len() / 2]);
                return Err(io::Error::other("disk full"));
            }
            file.extend_from_slice(bytes);
            Ok(())
        }
        async fn sync(&mut self) -> io::Result<()> {
            let mut disk = self.0.0.lock().unwrap();
            let fail = std::mem::take(&mut disk.fail_sync);
            let (bytes, synced) = disk.files.get_mut(&self.1).ok_or_else(|| io::Error::other("no file"))?;
            if fail {
                // The unsynced pages are gone, and the error reported once.
                bytes.truncate(*synced);
                return Err(io::Error::other("EIO"));
            }
            *synced = bytes.len();
            Ok(())
        }
    }

    fn log(disk: &FlakyDisk, policy: FsyncPolicy) -> Log<FlakyDisk> {
        let manifest = Manifest { base: None, incrs: vec![LogFile { name: "log.1.incr.aof".into(), seq: 1 }] };
        Log {
            incr: FlakyFile(disk.clone(), "dir/log.1.incr.aof".into()),
            disk: disk.clone(),
            dir: "dir".into(),
            name: "log".into(),
            manifest,
            incr_size: 0,
            other_size: 0,
            base_size: 0,
            unwritten: BytesMut::new(),
            unwritten_upto: 0,
            checkpoint_size: 0,
            since_checkpoint: BytesMut::new(),
            damaged: false,
            written_upto: 0,
            synced: true,
            last_sync: Instant::now(),
            policy,
        }
    }

    async fn append(log: &mut Log<FlakyDisk>, bytes: &[u8]) -> io::Result<()> {
        log.unwritten.extend_from_slice(bytes);
        log.write_pending().await?;
        log.sync().await
    }

    #[tokio::test]
    async fn a_failed_sync_or_write_is_repaired_not_trusted() {
        let disk = FlakyDisk::default();
        disk.append("dir/log.1.incr.aof").await.unwrap();
        let mut log = log(&disk, FsyncPolicy::Always);
        append(&mut log, b"one;").await.unwrap();
        // The sync fails and the pages are lost: a plain retry would sync nothing and succeed.
        disk.0.lock().unwrap().fail_sync = true;
        assert!(append(&mut log, b"two;").await.is_err());
        append(&mut log, b"three;").await.unwrap();
        assert_eq!(disk.content("dir/log.1.incr.aof"), b"one;two;three;");
        // A write that fails halfway leaves no half command behind.
        disk.0.lock().unwrap().fail_write = true;
        assert!(append(&mut log, b"four;").await.is_err());
        append(&mut log, b"five;").await.unwrap();
        assert_eq!(disk.content("dir/log.1.incr.aof"), b"one;two;three;four;five;");
    }
}
