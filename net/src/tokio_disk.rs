//! The production [`Disk`]: the operating system's files through `tokio::fs`.

use std::io;
use std::path::Path;

#[allow(clippy::disallowed_types)] // the production backend owns the real files
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use crate::disk::{Disk, DiskFile};

/// The machine's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

/// A file of the machine's file system.
#[allow(clippy::disallowed_types)] // the production backend owns the real files
#[derive(Debug)]
pub struct OsFile(File);

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

    async fn append(&self, path: &str) -> io::Result<OsFile> {
        let file = OpenOptions::new().create(true).append(true).open(path).await?;
        sync_parent(path).await?;
        Ok(OsFile(file))
    }

    async fn create(&self, path: &str) -> io::Result<OsFile> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path).await?;
        sync_parent(path).await?;
        Ok(OsFile(file))
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
}

impl DiskFile for OsFile {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes).await?;
        // tokio's file buffers the write in a background task: flush hands it to the OS.
        self.0.flush().await
    }

    async fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data().await
    }
}
