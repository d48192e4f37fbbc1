//! [`KvCoordinator`]: the [`Coordinator`] built once on etcd's data model, for both engines that
//! have it ([`crate::memory::MemoryStore`] and [`crate::etcd::EtcdClient`]).
//!
//! Every write is a transaction: create is "put if the key's creation revision is 0", a fenced
//! write adds "and the lock key is bound to my lease", compare-and-set compares the key's
//! modification revision. When a transaction fails, its failure branch reads the key and the
//! lock so the error can say which condition broke.

use std::time::Duration;

use net::Env;
use tokio::time::Instant;

use crate::kv::{Compare, KeyValue, Kv, Op, OpResult, Target, Txn, TxnResult, Watcher, prefix_end};
use crate::lease::{self, Fence, Keeper};
use crate::watch::{self, Watch};
use crate::{Coordinator, Error, Lease, Record, path};

/// A coordinator over a [`Kv`] engine.
#[derive(Clone, Debug)]
pub struct KvCoordinator<K, E> {
    kv: K,
    env: E,
    fence: Option<Fence>,
}

impl<K: Kv, E: Env> KvCoordinator<K, E> {
    /// A coordinator over `kv`; `env` runs lease renewals and watches.
    pub fn new(kv: K, env: E) -> KvCoordinator<K, E> {
        KvCoordinator { kv, env, fence: None }
    }

    /// The engine.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// Runs a write: `compare` plus the fence, if any; on failure, reads `path` and the lock to
    /// say what broke (`on_conflict` for a failed comparison of `path` itself).
    async fn write(
        &self,
        path: &str,
        mut compare: Vec<Compare>,
        ops: Vec<Op>,
        on_conflict: Error,
    ) -> Result<TxnResult, Error> {
        if let Some(fence) = &self.fence {
            compare.push(Compare { key: fence.path.clone(), target: Target::Lease(lease_id(fence.id)) });
        }
        let mut failure = vec![Op::Range { key: path.to_string() }];
        if let Some(fence) = &self.fence {
            failure.push(Op::Range { key: fence.path.clone() });
        }
        let result = self.kv.txn(Txn { compare, success: ops, failure }).await?;
        if result.succeeded {
            return Ok(result);
        }
        if let Some(fence) = &self.fence {
            let lock = match result.results.get(1) {
                Some(OpResult::Range(found)) => found.first(),
                _ => None,
            };
            if lock.is_none_or(|lock| lock.lease != lease_id(fence.id)) {
                return Err(Error::LockLost { path: fence.path.clone() });
            }
        }
        Err(on_conflict)
    }

    /// Grants a lease of `ttl` (rounded up to whole seconds, as etcd counts; at most a year):
    /// its id, its time to live as granted, and when it was asked for.
    async fn grant(&self, ttl: Duration) -> Result<(i64, Duration, Instant), Error> {
        let seconds = i64::try_from(ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX).clamp(1, MAX_LEASE_SECONDS);
        let asked = Instant::now();
        let (id, granted) = self.kv.grant(seconds).await?;
        Ok((id, Duration::from_secs(granted.max(1).unsigned_abs()), asked))
    }

    fn keep(&self, path: &str, id: i64, ttl: Duration, asked: Instant) -> Lease {
        let keeper = KvKeeper { kv: self.kv.clone(), id, path: path.to_string() };
        lease::start(&self.env, path.to_string(), id.unsigned_abs(), ttl, asked, keeper)
    }
}

/// The longest lease asked for.
const MAX_LEASE_SECONDS: i64 = 365 * 24 * 3600;

/// Lease ids are positive in etcd; the [`Lease`] carries them as `u64`.
fn lease_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn version(kv: &KeyValue) -> u64 {
    kv.mod_revision.unsigned_abs()
}

struct KvKeeper<K> {
    kv: K,
    id: i64,
    path: String,
}

impl<K: Kv> Keeper for KvKeeper<K> {
    /// Renews the lease, and checks its record is still bound to it: a lock removed by hand
    /// (`--remove-lock`) or overwritten is lost even though the lease lives on.
    async fn renew(&mut self) -> Result<bool, Error> {
        if !self.kv.keep_alive(self.id).await? {
            return Ok(false);
        }
        let (found, _) = self.kv.range(&self.path, None, true).await?;
        Ok(found.first().is_some_and(|kv| kv.lease == self.id))
    }

    async fn release(&mut self) -> Result<(), Error> {
        // Revoking removes every key bound to the lease; a lease already gone is released.
        match self.kv.revoke(self.id).await {
            Ok(()) => Ok(()),
            Err(Error::Protocol { reason, .. }) if reason.contains("lease not found") => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl<K: Kv, E: Env> Coordinator for KvCoordinator<K, E> {
    fn backend(&self) -> &'static str {
        self.kv.backend()
    }

    async fn create(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let compare = vec![Compare { key: path.to_string(), target: Target::Create(0) }];
        let put = vec![Op::Put { key: path.to_string(), value: value.to_vec(), lease: 0 }];
        let result = self.write(path, compare, put, Error::Exists { path: path.to_string() }).await?;
        Ok(result.revision.unsigned_abs())
    }

    async fn update(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let put = vec![Op::Put { key: path.to_string(), value: value.to_vec(), lease: 0 }];
        let result = self.write(path, Vec::new(), put, Error::Conflict { path: path.to_string() }).await?;
        Ok(result.revision.unsigned_abs())
    }

    async fn read(&self, path: &str) -> Result<Option<Record>, Error> {
        path::check(path)?;
        let (found, _) = self.kv.range(path, None, false).await?;
        Ok(found.into_iter().next().map(|kv| Record { version: version(&kv), value: kv.value }))
    }

    async fn delete(&self, path: &str) -> Result<(), Error> {
        path::check(path)?;
        let delete = vec![Op::Delete { key: path.to_string() }];
        self.write(path, Vec::new(), delete, Error::Conflict { path: path.to_string() }).await?;
        Ok(())
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, Error> {
        path::check(dir)?;
        let prefix = format!("{dir}/");
        let (found, _) = self.kv.range(&prefix, Some(&prefix_end(&prefix)), true).await?;
        // A set: keys sort with their `/`, so a child's records need not be adjacent.
        let children: std::collections::BTreeSet<String> =
            found.iter().filter_map(|kv| path::child_of(dir, &kv.key)).map(|child| format!("{dir}/{child}")).collect();
        Ok(children.into_iter().collect())
    }

    async fn read_dir(&self, dir: &str) -> Result<Vec<(String, Record)>, Error> {
        path::check(dir)?;
        let prefix = format!("{dir}/");
        let (found, _) = self.kv.range(&prefix, Some(&prefix_end(&prefix)), false).await?;
        Ok(found
            .into_iter()
            .filter(|kv| kv.key.get(prefix.len()..).is_some_and(|name| !name.contains('/')))
            .map(|kv| (kv.key.clone(), Record { version: version(&kv), value: kv.value }))
            .collect())
    }

    async fn compare_and_set(&self, path: &str, expected: Option<u64>, value: &[u8]) -> Result<u64, Error> {
        path::check(path)?;
        let target = match expected {
            None => Target::Create(0),
            Some(version) => Target::Mod(i64::try_from(version).unwrap_or(i64::MAX)),
        };
        let compare = vec![Compare { key: path.to_string(), target }];
        let put = vec![Op::Put { key: path.to_string(), value: value.to_vec(), lease: 0 }];
        let result = self.write(path, compare, put, Error::Conflict { path: path.to_string() }).await?;
        Ok(result.revision.unsigned_abs())
    }

    async fn lock(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        path::check(path)?;
        let (id, granted, asked) = self.grant(ttl).await?;
        let txn = Txn {
            compare: vec![Compare { key: path.to_string(), target: Target::Create(0) }],
            success: vec![Op::Put { key: path.to_string(), value: value.to_vec(), lease: id }],
            failure: vec![Op::Range { key: path.to_string() }],
        };
        let result = match self.kv.txn(txn).await {
            Ok(result) => result,
            Err(error) => {
                let _ = self.kv.revoke(id).await;
                return Err(error);
            }
        };
        if !result.succeeded {
            let _ = self.kv.revoke(id).await;
            let holder = match result.results.first() {
                Some(OpResult::Range(found)) => {
                    found.first().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()).unwrap_or_default()
                }
                _ => String::new(),
            };
            return Err(Error::Locked { path: path.to_string(), holder });
        }
        Ok(self.keep(path, id, granted, asked))
    }

    async fn register(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        path::check(path)?;
        let (id, granted, asked) = self.grant(ttl).await?;
        let txn = Txn {
            compare: Vec::new(),
            success: vec![Op::Put { key: path.to_string(), value: value.to_vec(), lease: id }],
            failure: Vec::new(),
        };
        if let Err(error) = self.kv.txn(txn).await {
            let _ = self.kv.revoke(id).await;
            return Err(error);
        }
        Ok(self.keep(path, id, granted, asked))
    }

    async fn watch(&self, dir: &str) -> Result<Watch, Error> {
        path::check(dir)?;
        let prefix = format!("{dir}/");
        let end = prefix_end(&prefix);
        // Start right after the current revision: every later change is reported.
        let (_, revision) = self.kv.range(&prefix, Some(&end), true).await?;
        let mut watcher = self.kv.watch(&prefix, &end, revision + 1).await?;
        Ok(watch::start(&self.env, |notifier| async move {
            loop {
                match watcher.next().await {
                    Ok(_) => notifier.notify(),
                    Err(error) => return error,
                }
            }
        }))
    }

    fn fenced(&self, lease: &Lease) -> Self {
        KvCoordinator { kv: self.kv.clone(), env: self.env.clone(), fence: Some(lease.fence()) }
    }
}
