//! etcd's data model as a trait: a revisioned key-value store with transactions, leases and
//! watches. Two engines implement it, [`crate::memory::MemoryStore`] (in memory) and
//! [`crate::etcd::EtcdClient`] (a real etcd through its JSON gateway), and
//! [`crate::kv_coordinator::KvCoordinator`] builds the [`crate::Coordinator`] on it once, so the
//! two cannot drift apart.

use std::future::Future;

use crate::Error;

/// A stored key as etcd reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty when asked for keys only).
    pub value: Vec<u8>,
    /// The store revision that created it.
    pub create_revision: i64,
    /// The store revision of its last change.
    pub mod_revision: i64,
    /// Changes since creation (1 after creation).
    pub version: i64,
    /// The lease it is bound to (0: none).
    pub lease: i64,
}

/// What a comparison of a transaction looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The key's creation revision (0: absent).
    Create(i64),
    /// The key's last modification revision (0: absent).
    Mod(i64),
    /// The lease the key is bound to (0: none or absent).
    Lease(i64),
}

/// A condition of a transaction: `key`'s `target` equals the given value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key.
    pub key: String,
    /// What must be equal.
    pub target: Target,
}

/// A request inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read one key.
    Range {
        /// The key.
        key: String,
    },
    /// Write a key, bound to `lease` (0: none).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The lease.
        lease: i64,
    },
    /// Remove one key.
    Delete {
        /// The key.
        key: String,
    },
}

/// What one [`Op`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// The keys read.
    Range(Vec<KeyValue>),
    /// Written.
    Put,
    /// How many keys were removed.
    Delete(i64),
}

/// A transaction: if every comparison holds, `success` runs, else `failure`; atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions.
    pub compare: Vec<Compare>,
    /// Run if they all hold.
    pub success: Vec<Op>,
    /// Run otherwise.
    pub failure: Vec<Op>,
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the comparisons held.
    pub succeeded: bool,
    /// The store's revision after it.
    pub revision: i64,
    /// One result per op of the branch that ran.
    pub results: Vec<OpResult>,
}

/// One change a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Whether the key was removed (otherwise written).
    pub deleted: bool,
    /// The key after the change (for a removal: the key and the removal's revision).
    pub kv: KeyValue,
}

/// A stream of changes.
pub trait Watcher: Send + 'static {
    /// The next changes (at least one); an error ends the stream.
    fn next(&mut self) -> impl Future<Output = Result<Vec<Event>, Error>> + Send;
}

/// A revisioned key-value store with etcd's semantics.
pub trait Kv: Clone + Send + Sync + 'static {
    /// Its watch streams.
    type Watcher: Watcher;

    /// The backend's name for errors.
    fn backend(&self) -> &'static str;

    /// The keys in `[key, range_end)` (`range_end` `None`: `key` alone), sorted, and the store's
    /// revision.
    fn range(
        &self,
        key: &str,
        range_end: Option<&str>,
        keys_only: bool,
    ) -> impl Future<Output = Result<(Vec<KeyValue>, i64), Error>> + Send;

    /// Runs `txn` atomically.
    fn txn(&self, txn: Txn) -> impl Future<Output = Result<TxnResult, Error>> + Send;

    /// A new lease of `ttl_seconds`: its id and the time to live granted (etcd may raise it).
    fn grant(&self, ttl_seconds: i64) -> impl Future<Output = Result<(i64, i64), Error>> + Send;

    /// Renews lease `id`: `false` if the store no longer has it.
    fn keep_alive(&self, id: i64) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Ends lease `id`, removing every key bound to it.
    fn revoke(&self, id: i64) -> impl Future<Output = Result<(), Error>> + Send;

    /// Changes to keys in `[key, range_end)` from `start_revision` on.
    fn watch(
        &self,
        key: &str,
        range_end: &str,
        start_revision: i64,
    ) -> impl Future<Output = Result<Self::Watcher, Error>> + Send;
}

/// The end of the range holding every key that starts with `prefix` (etcd's convention: the
/// prefix with its last byte incremented).
pub fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0x7f {
            end.push(last + 1);
            // Paths are ASCII ([`crate::path::check`]), so this stays valid UTF-8.
            return String::from_utf8_lossy(&end).into_owned();
        }
    }
    "\0".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_every_key_below() {
        assert_eq!(prefix_end("/a/"), "/a0");
        assert!("/a/zzz" < prefix_end("/a/").as_str());
        assert!("/a0" >= prefix_end("/a/").as_str());
    }
}
