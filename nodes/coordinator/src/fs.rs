//! The filesystem coordinator: the embedded default for a cluster on one machine.
//!
//! Laid out as Codis' (`pkg/models/fs`): under the root, `data/` mirrors the paths (so
//! `/codis3/demo/topom` is the file `data/codis3/demo/topom`, readable with `cat`), `temp/` holds
//! files being written, and every operation holds an exclusive `flock` on `data.lck`, so the
//! dashboard and `codis-admin` can share a root. Each record is written to `temp/`, synced and
//! renamed into place: a crash leaves the old record or the new one, never half of one.
//!
//! Beyond Codis: leases. A leased record (the dashboard's lock, a registration) has a sidecar
//! under `lease/` with its holder's id and expiry in wall-clock milliseconds; once expired the
//! record counts as gone (and is removed by the next operation that meets it). Versions for
//! compare-and-set are a digest of the content. Watches poll.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use net::rand::Rng as _;
use net::{Disk, DiskFile, Env};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::lease::{self, Fence, Keeper};
use crate::watch::{self, Watch};
use crate::{Coordinator, Error, Lease, Record, path};

const BACKEND: &str = "filesystem";

/// How long an operation waits for another process's operation to finish.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often a watch looks for changes.
const WATCH_POLL: Duration = Duration::from_millis(250);

/// Distinguishes lease ids drawn by coordinators sharing one environment.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// A coordinator over a directory.
#[derive(Clone, Debug)]
pub struct FsCoordinator<E> {
    env: E,
    root: String,
    fence: Option<Fence>,
}

/// A lease's sidecar file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseFile {
    id: u64,
    ttl_ms: u64,
    expires_ms: u64,
}

fn unavailable(what: &str, file: &str, error: std::io::Error) -> Error {
    Error::Unavailable { backend: BACKEND, reason: format!("{what} {file}: {error}") }
}

/// The version of a record: a digest of its content (never 0).
fn digest(content: &[u8]) -> u64 {
    let hash = Sha256::digest(content);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first).max(1)
}

impl<E: Env> FsCoordinator<E> {
    /// A coordinator keeping its records under `root` (created as needed).
    pub fn new(env: E, root: impl Into<String>) -> FsCoordinator<E> {
        let root = root.into().trim_end_matches('/').to_string();
        FsCoordinator { env, root, fence: None }
    }

    /// The root directory.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn data(&self, path: &str) -> String {
        format!("{}/data{path}", self.root)
    }

    fn lease_file(&self, path: &str) -> String {
        format!("{}/lease{path}", self.root)
    }

    /// Holds the store's lock for one operation.
    async fn exclusive(&self) -> Result<<E::Disk as Disk>::Lock, Error> {
        let disk = self.env.disk();
        disk.create_dir(&self.root).await.map_err(|error| unavailable("creating", &self.root, error))?;
        let lock = format!("{}/data.lck", self.root);
        disk.lock(&lock, LOCK_WAIT).await.map_err(|error| unavailable("locking", &lock, error))
    }

    async fn read_file(&self, file: &str) -> Result<Option<Vec<u8>>, Error> {
        self.env.disk().read(file).await.map_err(|error| unavailable("reading", file, error))
    }

    /// Writes `file` atomically: a synced temporary file renamed into place.
    async fn write_file(&self, file: &str, content: &[u8]) -> Result<(), Error> {
        let disk = self.env.disk();
        if let Some((parent, _)) = file.rsplit_once('/') {
            disk.create_dir(parent).await.map_err(|error| unavailable("creating", parent, error))?;
        }
        let temp_dir = format!("{}/temp", self.root);
        disk.create_dir(&temp_dir).await.map_err(|error| unavailable("creating", &temp_dir, error))?;
        let name = file.rsplit('/').next().unwrap_or("record");
        let temp = format!("{temp_dir}/{name}.{}", self.env.rng("fs-temp").random::<u32>());
        let mut handle = disk.create(&temp).await.map_err(|error| unavailable("creating", &temp, error))?;
        handle.write_all(content).await.map_err(|error| unavailable("writing", &temp, error))?;
        handle.sync().await.map_err(|error| unavailable("syncing", &temp, error))?;
        drop(handle);
        disk.rename(&temp, file).await.map_err(|error| unavailable("renaming to", file, error))
    }

    async fn remove_file(&self, file: &str) -> Result<(), Error> {
        self.env.disk().remove(file).await.map_err(|error| unavailable("removing", file, error))
    }

    async fn read_lease(&self, path: &str) -> Result<Option<LeaseFile>, Error> {
        let file = self.lease_file(path);
        match self.read_file(&file).await? {
            // A damaged sidecar (cannot happen through rename, but a person may edit it)
            // counts as expired rather than as a lock nobody can ever take.
            Some(content) => {
                Ok(Some(serde_json::from_slice(&content).unwrap_or(LeaseFile { id: 0, ttl_ms: 0, expires_ms: 0 })))
            }
            None => Ok(None),
        }
    }

    /// The record at `path` if it is live; an expired leased record is removed.
    async fn read_live(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(lease) = self.read_lease(path).await?
            && lease.expires_ms <= self.env.unix_millis()
        {
            self.remove_file(&self.data(path)).await?;
            self.remove_file(&self.lease_file(path)).await?;
            return Ok(None);
        }
        self.read_file(&self.data(path)).await
    }

    /// Refuses the write if this handle is fenced by a lock it no longer holds.
    async fn check_fence(&self) -> Result<(), Error> {
        let Some(fence) = &self.fence else { return Ok(()) };
        let lost = || Error::LockLost { path: fence.path.clone() };
        let lease = self.read_lease(&fence.path).await?.ok_or_else(lost)?;
        if lease.id != fence.id || lease.expires_ms <= self.env.unix_millis() {
            return Err(lost());
        }
        Ok(())
    }

    /// Every live record below `dir` (at any depth) and its content (call with the lock held).
    async fn records_below(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_string()];
        while let Some(dir) = pending.pop() {
            let entries =
                self.env.disk().list(&self.data(&dir)).await.map_err(|error| unavailable("listing", &dir, error))?;
            for entry in entries {
                let child = format!("{dir}/{}", entry.name);
                if entry.is_dir {
                    pending.push(child);
                } else if let Some(content) = self.read_live(&child).await? {
                    found.push((child, content));
                }
            }
        }
        Ok(found)
    }

    /// Every live record below `dir` and its version, for watches.
    async fn fingerprint(&self, dir: &str) -> Result<Vec<(String, u64)>, Error> {
        let _guard = self.exclusive().await?;
        let mut found: Vec<(String, u64)> =
            self.records_below(dir).await?.into_iter().map(|(path, content)| (path, digest(&content))).collect();
        found.sort();
        Ok(found)
    }

    /// Writes `value` at `path` bound to a new lease of `ttl`; with `exclusive`, only if no live
    /// record is there.
    async fn lease(&self, path: &str, value: &[u8], ttl: Duration, exclusive: bool) -> Result<Lease, Error> {
        path::check(path)?;
        let ttl = ttl.max(Duration::from_millis(100));
        let asked = tokio::time::Instant::now();
        let id = {
            let _guard = self.exclusive().await?;
            if exclusive && let Some(holder) = self.read_live(path).await? {
                return Err(Error::Locked {
                    path: path.to_string(),
                    holder: String::from_utf8_lossy(&holder).into_owned(),
                });
            }
            let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
            let now = self.env.unix_millis();
            let id = self.env.rng(&format!("fs-lease-{path}-{now}-{instance}")).random::<u64>().max(1);
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let lease = LeaseFile { id, ttl_ms, expires_ms: now.saturating_add(ttl_ms) };
            let lease = serde_json::to_vec(&lease)
                .map_err(|error| Error::Protocol { backend: BACKEND, reason: error.to_string() })?;
            self.write_file(&self.lease_file(path), &lease).await?;
            if let Err(error) = self.write_file(&self.data(path), value).await {
                // No sidecar without its record: it would lease whatever is written there next.
                let _ = self.remove_file(&self.lease_file(path)).await;
                return Err(error);
            }
            id
        };
        let keeper = FsKeeper { store: FsCoordinator { fence: None, ..self.clone() }, path: path.to_string(), id };
        Ok(lease::start(&self.env, path.to_string(), id, ttl, asked, keeper))
    }
}

struct FsKeeper<E> {
    store: FsCoordinator<E>,
    path: String,
    id: u64,
}

impl<E: Env> Keeper for FsKeeper<E> {
    async fn renew(&mut self) -> Result<bool, Error> {
        let store = &self.store;
        let _guard = store.exclusive().await?;
        let Some(mut lease) = store.read_lease(&self.path).await? else { return Ok(false) };
        let now = store.env.unix_millis();
        if lease.id != self.id || lease.expires_ms <= now {
            return Ok(false);
        }
        lease.expires_ms = now.saturating_add(lease.ttl_ms);
        let lease = serde_json::to_vec(&lease)
            .map_err(|error| Error::Protocol { backend: BACKEND, reason: error.to_string() })?;
        store.write_file(&store.lease_file(&self.path), &lease).await?;
        Ok(true)
    }

    async fn release(&mut self) -> Result<(), Error> {
        let store = &self.store;
        let _guard = store.exclusive().await?;
        if store.read_lease(&self.path).await?.is_some_and(|lease| lease.id == self.id) {
            store.remove_file(&store.data(&self.path)).await?;
            store.remove_file(&store.lease_file(&self.path)).await?;
        }
        Ok(())
    }
}

impl<E: Env> Coordinator for FsCoordinator<E> {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let _guard = self.exclusive().await?;
        self.check_fence().await?;
        if self.read_live(path).await?.is_some() {
            return Err(Error::Exists { path: path.to_string() });
        }
        // A sidecar left by an interrupted lease must not bind the new record.
        self.remove_file(&self.lease_file(path)).await?;
        self.write_file(&self.data(path), value).await?;
        Ok(digest(value))
    }

    async fn update(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let _guard = self.exclusive().await?;
        self.check_fence().await?;
        self.write_file(&self.data(path), value).await?;
        // A plain write detaches the record from any lease, as etcd's put does.
        self.remove_file(&self.lease_file(path)).await?;
        Ok(digest(value))
    }

    async fn read(&self, path: &str) -> Result<Option<Record>, Error> {
        path::check(path)?;
        let _guard = self.exclusive().await?;
        Ok(self.read_live(path).await?.map(|value| Record { version: digest(&value), value }))
    }

    async fn delete(&self, path: &str) -> Result<(), Error> {
        path::check(path)?;
        let _guard = self.exclusive().await?;
        self.check_fence().await?;
        self.remove_file(&self.data(path)).await?;
        self.remove_file(&self.lease_file(path)).await
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, Error> {
        path::check(dir)?;
        let _guard = self.exclusive().await?;
        let entries =
            self.env.disk().list(&self.data(dir)).await.map_err(|error| unavailable("listing", dir, error))?;
        let mut children = Vec::new();
        for entry in entries {
            let child = format!("{dir}/{}", entry.name);
            let live = if entry.is_dir {
                !self.records_below(&child).await?.is_empty()
            } else {
                self.read_live(&child).await?.is_some()
            };
            if live {
                children.push(child);
            }
        }
        Ok(children)
    }

    async fn read_dir(&self, dir: &str) -> Result<Vec<(String, Record)>, Error> {
        path::check(dir)?;
        let _guard = self.exclusive().await?;
        let entries =
            self.env.disk().list(&self.data(dir)).await.map_err(|error| unavailable("listing", dir, error))?;
        let mut records = Vec::new();
        for entry in entries.into_iter().filter(|entry| !entry.is_dir) {
            let child = format!("{dir}/{}", entry.name);
            if let Some(value) = self.read_live(&child).await? {
                records.push((child, Record { version: digest(&value), value }));
            }
        }
        Ok(records)
    }

    async fn compare_and_set(&self, path: &str, expected: Option<u64>, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let _guard = self.exclusive().await?;
        self.check_fence().await?;
        let current = self.read_live(path).await?.map(|content| digest(&content));
        if current != expected {
            return Err(Error::Conflict { path: path.to_string() });
        }
        self.write_file(&self.data(path), value).await?;
        self.remove_file(&self.lease_file(path)).await?;
        Ok(digest(value))
    }

    async fn lock(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        self.lease(path, value, ttl, true).await
    }

    async fn register(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        self.lease(path, value, ttl, false).await
    }

    async fn watch(&self, dir: &str) -> Result<Watch, Error> {
        path::check(dir)?;
        let store = FsCoordinator { fence: None, ..self.clone() };
        let dir = dir.to_string();
        let mut last = store.fingerprint(&dir).await?;
        Ok(watch::start(&self.env, |notifier| async move {
            loop {
                tokio::time::sleep(WATCH_POLL).await;
                match store.fingerprint(&dir).await {
                    Ok(now) if now != last => {
                        last = now;
                        notifier.notify();
                    }
                    Ok(_) => {}
                    Err(error) => return error,
                }
            }
        }))
    }

    fn fenced(&self, lease: &Lease) -> Self {
        FsCoordinator { fence: Some(lease.fence()), ..self.clone() }
    }
}
