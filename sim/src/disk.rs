//! The simulated disk: each host's files, kept by the harness so they survive the host's
//! restarts, and losing in a crash what was not synced.
//!
//! A write lands in the file's volatile tail, after a simulated delay proportional to its size;
//! `sync` makes the tail durable, after a delay of its own. A crash keeps the
//! durable part of every file and, of its volatile tail, a random prefix (the pages the kernel
//! happened to write back: the last write may be torn anywhere). Directory operations (create,
//! rename, remove, truncate) are durable as soon as they return, as `net::Disk` promises for
//! its production backend, which syncs the directory. Files are inodes with names, so a file
//! renamed or removed while open keeps receiving its writer's bytes, as on Unix.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::rand::Rng as _;
use net::{DirEntry, Disk, DiskFile, Rng};

/// One host's disk.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// Paths to inodes.
    names: BTreeMap<String, u64>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// Bumped by each crash: files opened before it belong to a dead process.
    epoch: u64,
    /// Files locked by [`Disk::lock`]; a crash releases them (the process holding them died).
    locks: BTreeSet<String>,
    /// Directories made by [`Disk::create_dir`] (and their parents): listed even when empty, as
    /// a real file system lists them.
    dirs: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    /// Written, not synced.
    volatile: Vec<u8>,
    /// Files of the living process open on it.
    open: u32,
}

impl DiskState {
    fn new_inode(&mut self, path: &str) -> u64 {
        self.next_inode += 1;
        let inode = self.next_inode;
        self.inodes.insert(inode, Inode::default());
        self.names.insert(path.to_string(), inode);
        inode
    }

    /// Forgets the inode if no name and no open file reaches it.
    fn collect(&mut self, inode: u64) {
        let named = self.names.values().any(|named| *named == inode);
        if !named && self.inodes.get(&inode).is_some_and(|found| found.open == 0) {
            self.inodes.remove(&inode);
        }
    }
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

impl SimDisk {
    fn lock(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The host crashed: every file keeps what was synced and a random prefix of the rest.
    pub fn crash(&self, rng: &mut Rng) {
        let mut state = self.lock();
        state.epoch += 1;
        state.locks.clear();
        for inode in state.inodes.values_mut() {
            let kept = rng.random_range(0..=inode.volatile.len());
            let tail: Vec<u8> = inode.volatile.drain(..).take(kept).collect();
            inode.durable.extend(tail);
            // The crash closed every file.
            inode.open = 0;
        }
        let inodes: Vec<u64> = state.inodes.keys().copied().collect();
        for inode in inodes {
            state.collect(inode);
        }
    }

    /// Every file and its durable size, by path (for tests and traces).
    pub fn listing(&self) -> Vec<(String, usize)> {
        let state = self.lock();
        state
            .names
            .iter()
            .map(|(path, inode)| (path.clone(), state.inodes.get(inode).map_or(0, |inode| inode.durable.len())))
            .collect()
    }

    fn open(&self, path: &str, truncate: bool) -> SimFile {
        let mut state = self.lock();
        let inode = match state.names.get(path) {
            Some(inode) if !truncate => *inode,
            replaced => {
                let replaced = replaced.copied();
                let inode = state.new_inode(path);
                if let Some(replaced) = replaced {
                    state.collect(replaced);
                }
                inode
            }
        };
        if let Some(found) = state.inodes.get_mut(&inode) {
            found.open += 1;
        }
        let epoch = state.epoch;
        SimFile { disk: self.clone(), inode, epoch }
    }
}

impl Disk for SimDisk {
    type File = SimFile;
    type Lock = SimLock;

    async fn append(&self, path: &str) -> io::Result<SimFile> {
        Ok(self.open(path, false))
    }

    async fn create(&self, path: &str) -> io::Result<SimFile> {
        Ok(self.open(path, true))
    }

    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let state = self.lock();
        Ok(state.names.get(path).and_then(|inode| state.inodes.get(inode)).map(|inode| {
            let mut content = inode.durable.clone();
            content.extend_from_slice(&inode.volatile);
            content
        }))
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.names.remove(from).ok_or_else(|| not_found(from))?;
        if let Some(replaced) = state.names.insert(to.to_string(), inode) {
            state.collect(replaced);
        }
        Ok(())
    }

    async fn remove(&self, path: &str) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(removed) = state.names.remove(path) {
            state.collect(removed);
        }
        Ok(())
    }

    /// Records the directory and its parents, so listings show them even while they hold no file.
    async fn create_dir(&self, path: &str) -> io::Result<()> {
        let mut state = self.lock();
        let mut dir = path.trim_end_matches('/');
        while !dir.is_empty() {
            state.dirs.insert(dir.to_string());
            dir = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
        }
        Ok(())
    }

    async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        let inode = *state.names.get(path).ok_or_else(|| not_found(path))?;
        let inode = state.inodes.get_mut(&inode).ok_or_else(|| not_found(path))?;
        let mut content = std::mem::take(&mut inode.durable);
        content.append(&mut inode.volatile);
        content.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        inode.durable = content;
        Ok(())
    }

    async fn list(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        // Directories are the ones made, and the prefixes of file names.
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let state = self.lock();
        let mut listed: Vec<DirEntry> = Vec::new();
        let dirs = state.dirs.iter().map(|dir| format!("{dir}/"));
        let names: Vec<String> = state.names.keys().cloned().chain(dirs).collect();
        for name in names.iter().filter_map(|name| name.strip_prefix(&prefix)).filter(|name| !name.is_empty()) {
            let entry = match name.split_once('/') {
                Some((dir, _)) => DirEntry { name: dir.to_string(), is_dir: true },
                None => DirEntry { name: name.to_string(), is_dir: false },
            };
            if listed.last() != Some(&entry) {
                listed.push(entry);
            }
        }
        listed.sort();
        listed.dedup();
        Ok(listed)
    }

    async fn lock(&self, path: &str, timeout: Duration) -> io::Result<SimLock> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut state = self.lock();
                if !state.names.contains_key(path) {
                    state.new_inode(path);
                }
                if state.locks.insert(path.to_string()) {
                    return Ok(SimLock { disk: self.clone(), path: path.to_string(), epoch: state.epoch });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, format!("{path} stayed locked")));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A held lock on a [`SimDisk`] file.
#[derive(Debug)]
pub struct SimLock {
    disk: SimDisk,
    path: String,
    /// The process (between crashes) that holds it.
    epoch: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.disk.lock();
        if state.epoch == self.epoch {
            state.locks.remove(&self.path);
        }
    }
}

/// A file open on a [`SimDisk`].
#[derive(Debug)]
pub struct SimFile {
    disk: SimDisk,
    inode: u64,
    epoch: u64,
}

impl SimFile {
    fn with_inode<T>(&self, action: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let mut state = self.disk.lock();
        if state.epoch != self.epoch {
            return Err(io::Error::other("the file was opened before the host crashed"));
        }
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("the file is gone"))?;
        Ok(action(inode))
    }
}

/// How long a write of `len` bytes takes on the simulated disk (about 100 MB/s), and a sync:
/// long enough, in simulated time, for a crash to fall in the middle of a snapshot.
fn write_time(len: usize) -> Duration {
    Duration::from_micros(20 + (len as u64) / 100)
}

/// How long a sync takes: a loaded disk's fsync, longer than the network's latency, so a reply
/// sent before its sync finished would reach the client before the data is safe (the race a
/// server under `appendfsync always` must not lose).
const SYNC_TIME: Duration = Duration::from_millis(8);

impl DiskFile for SimFile {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::sleep(write_time(bytes.len())).await;
        self.with_inode(|inode| inode.volatile.extend_from_slice(bytes))
    }

    async fn sync(&mut self) -> io::Result<()> {
        tokio::time::sleep(SYNC_TIME).await;
        self.with_inode(|inode| {
            let mut tail = std::mem::take(&mut inode.volatile);
            inode.durable.append(&mut tail);
        })
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.disk.lock();
        if state.epoch != self.epoch {
            return;
        }
        if let Some(inode) = state.inodes.get_mut(&self.inode) {
            inode.open = inode.open.saturating_sub(1);
        }
        // An unnamed file nobody has open is gone.
        state.collect(self.inode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        // Paused time: the disk's simulated latencies pass at once.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn rng(label: &str) -> Rng {
        net::rng_from_seed(7, label)
    }

    #[test]
    fn a_crash_keeps_what_was_synced_and_a_prefix_of_the_rest() {
        run(async {
            let disk = SimDisk::default();
            let mut file = disk.append("log").await.expect("open");
            file.write_all(b"synced;").await.expect("write");
            file.sync().await.expect("sync");
            file.write_all(b"0123456789").await.expect("write");
            assert_eq!(disk.read("log").await.expect("read").as_deref(), Some(&b"synced;0123456789"[..]));
            disk.crash(&mut rng("crash"));
            let after = disk.read("log").await.expect("read").expect("the file is still there");
            assert!(after.starts_with(b"synced;"), "{after:?}");
            assert!(b"synced;0123456789".starts_with(&after), "only a prefix of the unsynced tail: {after:?}");
            // The dead process's handle writes nowhere.
            assert!(file.write_all(b"late").await.is_err());
        });
    }

    #[test]
    fn different_crashes_tear_at_different_places() {
        let torn: std::collections::BTreeSet<usize> = (0..20)
            .map(|attempt| {
                run(async {
                    let disk = SimDisk::default();
                    let mut file = disk.create("f").await.expect("open");
                    file.write_all(&[b'x'; 100]).await.expect("write");
                    disk.crash(&mut rng(&format!("crash-{attempt}")));
                    disk.read("f").await.expect("read").map_or(0, |content| content.len())
                })
            })
            .collect();
        assert!(torn.len() > 5, "tears: {torn:?}");
    }

    #[test]
    fn rename_replaces_atomically_and_open_files_follow_their_inode() {
        run(async {
            let disk = SimDisk::default();
            let mut old = disk.create("data").await.expect("create");
            old.write_all(b"old").await.expect("write");
            old.sync().await.expect("sync");
            let mut new = disk.create("data.tmp").await.expect("create");
            new.write_all(b"new").await.expect("write");
            new.sync().await.expect("sync");
            disk.rename("data.tmp", "data").await.expect("rename");
            assert_eq!(disk.read("data").await.expect("read").as_deref(), Some(&b"new"[..]));
            assert_eq!(disk.read("data.tmp").await.expect("read"), None);
            // The renamed file's writer still writes to it.
            new.write_all(b"+").await.expect("write");
            assert_eq!(disk.read("data").await.expect("read").as_deref(), Some(&b"new+"[..]));
            assert!(disk.rename("absent", "x").await.is_err());
            disk.truncate("data", 2).await.expect("truncate");
            disk.crash(&mut rng("crash"));
            assert_eq!(disk.read("data").await.expect("read").as_deref(), Some(&b"ne"[..]));
            disk.remove("data").await.expect("remove");
            assert_eq!(disk.listing(), Vec::<(String, usize)>::new());
        });
    }
}
