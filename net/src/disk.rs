//! Files that must outlive the process (the append-only log, snapshots), behind a small
//! interface the simulator can implement with a disk that loses what was not synced.
//!
//! The interface is the handful of operations durability needs: append or write a file from its
//! start, make what was written durable (`sync`, fsync's promise), read a whole file at start,
//! replace a file atomically (`rename`, durable once it returns: the directory is synced too),
//! cut a torn tail off (`truncate`), and remove; and, for the filesystem coordinator, list a
//! directory and take a lock that other processes on the machine respect. Paths are plain
//! strings; the production backend takes them as the operating system does (relative to the
//! working directory).

use std::future::Future;
use std::io;
use std::time::Duration;

/// A place to keep files.
pub trait Disk: Clone + Send + Sync + 'static {
    /// An open file.
    type File: DiskFile;
    /// A held [`Disk::lock`]; dropping it releases the lock.
    type Lock: Send + Sync + 'static;

    /// Opens `path` to append to it, creating it empty if it does not exist.
    fn append(&self, path: &str) -> impl Future<Output = io::Result<Self::File>> + Send;

    /// Creates `path` empty, replacing what was there, to write it from the start.
    fn create(&self, path: &str) -> impl Future<Output = io::Result<Self::File>> + Send;

    /// The whole content of `path`, or `None` if there is no such file.
    fn read(&self, path: &str) -> impl Future<Output = io::Result<Option<Vec<u8>>>> + Send;

    /// Renames `from` to `to`, replacing `to` atomically: a crash leaves one or the other,
    /// never a mix. Durable once it returns.
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = io::Result<()>> + Send;

    /// Removes `path`; a file that does not exist is not an error.
    fn remove(&self, path: &str) -> impl Future<Output = io::Result<()>> + Send;

    /// Creates the directory `path` (and its parents) if missing, durably.
    fn create_dir(&self, path: &str) -> impl Future<Output = io::Result<()>> + Send;

    /// Cuts `path` to its first `len` bytes, durably.
    fn truncate(&self, path: &str, len: u64) -> impl Future<Output = io::Result<()>> + Send;

    /// What the directory `path` holds, sorted by name; a missing directory holds nothing.
    fn list(&self, path: &str) -> impl Future<Output = io::Result<Vec<DirEntry>>> + Send;

    /// Takes the exclusive lock on the file `path` (created if missing), waiting while another
    /// holder, in this process or another, has it; `timeout` bounds the wait
    /// ([`io::ErrorKind::WouldBlock`] after it). Held until the returned guard is dropped, or
    /// the process dies.
    fn lock(&self, path: &str, timeout: Duration) -> impl Future<Output = io::Result<Self::Lock>> + Send;
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    /// Its name in the directory.
    pub name: String,
    /// Whether it is a directory (otherwise a file).
    pub is_dir: bool,
}

/// A file open for writing.
pub trait DiskFile: Send + Sync + 'static {
    /// Writes `bytes` after what was written before. Not durable until [`DiskFile::sync`].
    fn write_all(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Makes everything written so far durable (fsync).
    fn sync(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}
