//! The production [`Disk`]: the operating system's files through `tokio::fs`.

use std::io;
use std::path::Path;

#[allow(clippy::disallowed_types)] // the production backend owns the real files
use tokio::fs::{File, OpenOptions};

use crate::disk::{DirEntry, Disk, DiskFile};

/// The machine's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

/// A file of the machine's file system.
///
/// Small writes go straight to the operating system from the calling task: a write into the
/// page cache takes microseconds, as Redis' own `write()` in its event loop does, where handing
/// each one to a blocking thread (as `tokio::fs` does) costs more than the write. Big writes and
/// syncs, which take milliseconds, run on a blocking thread.
#[allow(clippy::disallowed_types)] // the production backend owns the real files
#[derive(Debug)]
pub struct OsFile(std::sync::Arc<std::fs::File>);

/// Writes up to this size go to the operating system from the calling task; bigger ones from a
/// blocking thread.
const INLINE_WRITE: usize = 256 * 1024;

/// Syncs the directory holding `path`, so a rename or a new file in it survives a power cut.
async fn sync_parent(path: &str) -> io::Result<()> {
    let parent = match Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    #[allow(clippy::disallowed_types)] // the production backend owns the real files
    let directory = File::open(parent).await?;
    directory.sync_all().await
}

#[allow(clippy::disallowed_types)] // the production backend owns the real files
impl Disk for OsDisk {
    type File = OsFile;
    type Lock = OsLock;

    async fn append(&self, path: &str) -> io::Result<OsFile> {
        let file = OpenOptions::new().create(true).append(true).open(path).await?;
        sync_parent(path).await?;
        Ok(OsFile(std::sync::Arc::new(file.into_std().await)))
    }

    async fn create(&self, path: &str) -> io::Result<OsFile> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path).await?;
        sync_parent(path).await?;
        Ok(OsFile(std::sync::Arc::new(file.into_std().await)))
    }

    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        tokio::fs::rename(from, to).await?;
        sync_parent(to).await
    }

    async fn remove(&self, path: &str) -> io::Result<()> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => sync_parent(path).await,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn create_dir(&self, path: &str) -> io::Result<()> {
        if tokio::fs::metadata(path).await.is_ok_and(|found| found.is_dir()) {
            return Ok(());
        }
        tokio::fs::create_dir_all(path).await?;
        sync_parent(path.trim_end_matches('/')).await
    }

    async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path).await?;
        file.set_len(len).await?;
        file.sync_all().await
    }

    async fn list(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let mut entries = match tokio::fs::read_dir(path).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut listed = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            listed.push(DirEntry { name, is_dir: entry.file_type().await?.is_dir() });
        }
        listed.sort();
        Ok(listed)
    }

    async fn lock(&self, path: &str, timeout: std::time::Duration) -> io::Result<OsLock> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).await?.into_std().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(OsLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                    // flock(2) has no timed wait; a short poll keeps the runtime thread free.
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{path} stayed locked by another holder for {} ms", timeout.as_millis()),
                    ));
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(error),
            }
        }
    }
}

/// A held lock on a file of the machine (`flock`); the kernel releases it when the file closes,
/// which dropping this does, or when the process dies.
#[allow(clippy::disallowed_types)] // the production backend owns the real files
#[derive(Debug)]
pub struct OsLock {
    _file: std::fs::File,
}

impl DiskFile for OsFile {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write as _;
        if bytes.len() <= INLINE_WRITE {
            return (&*self.0).write_all(bytes);
        }
        // A snapshot's megabytes would hold a runtime thread for milliseconds.
        let (file, bytes) = (self.0.clone(), bytes.to_vec());
        #[allow(clippy::disallowed_methods)] // the production backend: real blocking I/O
        tokio::task::spawn_blocking(move || (&*file).write_all(&bytes)).await.map_err(io::Error::other)?
    }

    async fn sync(&mut self) -> io::Result<()> {
        let file = self.0.clone();
        #[allow(clippy::disallowed_methods)] // the production backend: real blocking I/O
        tokio::task::spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)?
    }
}
