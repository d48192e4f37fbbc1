//! The coordinator: where a product's model (groups, slots, proxies, the dashboard's lock) lives,
//! so that a dashboard can crash and another pick up exactly where it stopped.
//!
//! Components see one small trait, [`Coordinator`], with Codis' operations (create-if-absent,
//! upsert, read, delete, list) plus what Codis lacked: compare-and-set, a lock and registrations
//! bound to a lease (a crashed holder's lock expires instead of needing `--remove-lock`), writes
//! fenced by a lock (a holder that lost its lock cannot overwrite its successor), and watches.
//!
//! Three backends, one conformance suite (`tests/conformance.rs`):
//! - [`fs`]: the embedded default, a directory tree laid out as Codis' (`data/…` mirrors the
//!   paths; atomic writes by rename; every operation under a `flock` on `data.lck`).
//! - [`etcd`]: etcd v3, the distributed engine. We talk to etcd's v3 JSON gateway over HTTP
//!   rather than through the gRPC `etcd-client` crate, for two reasons: the gRPC client opens its
//!   own sockets (tonic), so it could not run over [`net::Env`] and the simulator could never put
//!   it through a partition; and it needs `protoc` at build time, which a fresh machine lacks.
//!   The gateway is part of every etcd server since 3.3 and speaks the same requests.
//! - [`memory`]: a store in memory with etcd's semantics. In-process it backs unit tests; the
//!   simulator hosts it behind [`gateway`] (the same JSON subset etcd serves), so simulated
//!   dashboards use the etcd client against it and a dashboard–coordinator partition is a real
//!   network fault, and its state outlives any dashboard crash.
//!
//! # Modules
//! - [`error`]: [`Error`], what every operation can fail with.
//! - [`path`]: which paths are valid.
//! - [`lease`]: [`Lease`], a held lock or registration, kept alive in the background.
//! - [`watch`]: [`Watch`], notice of changes under a directory.
//! - [`kv`]: etcd's data model (revisions, transactions, leases) as a trait, [`kv::Kv`], and
//!   [`kv_coordinator::KvCoordinator`], the coordinator built once on top of it.
//! - [`memory`], [`etcd`], [`gateway`], [`wire`]: the in-memory engine, the etcd client, the
//!   gateway server and the JSON they share.
//! - [`fs`]: the filesystem backend.
//! - [`any`]: [`AnyCoordinator`], the backend chosen at run time from a config.

pub mod any;
pub mod error;
pub mod etcd;
pub mod fs;
pub mod gateway;
pub mod kv;
pub mod kv_coordinator;
pub mod lease;
pub mod memory;
pub mod path;
pub mod watch;
pub mod wire;

use std::future::Future;
use std::time::Duration;

pub use any::{AnyCoordinator, CoordinatorAddr};
pub use error::Error;
pub use lease::Lease;
pub use watch::Watch;

/// A record and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What was stored.
    pub value: Vec<u8>,
    /// An opaque token that changes whenever the record does: what [`Coordinator::compare_and_set`]
    /// compares. Only equality means anything (etcd's `mod_revision`; a digest of the content on
    /// the filesystem).
    pub version: u64,
}

/// The operations the dashboard, the admin CLI and the web console need from a store.
///
/// Paths are absolute, `/`-separated, and validated by [`path::check`]. Values are bytes (JSON,
/// 4-space indented, in practice). Every operation is atomic on its own; none waits for a lock
/// another process holds longer than the backend's request timeout.
pub trait Coordinator: Clone + Send + Sync + 'static {
    /// The backend's name as configs spell it (`filesystem`, `etcd`, `memory`).
    fn backend(&self) -> &'static str;

    /// Creates `path` holding `value`; [`Error::Exists`] if it is there already. Returns the new
    /// version.
    fn create(&self, path: &str, value: &[u8]) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Writes `value` at `path`, creating it or replacing what was there (and detaching it from
    /// any lease). Returns the new version.
    fn update(&self, path: &str, value: &[u8]) -> impl Future<Output = Result<u64, Error>> + Send;

    /// The record at `path`, or `None`.
    fn read(&self, path: &str) -> impl Future<Output = Result<Option<Record>, Error>> + Send;

    /// Removes `path`; removing what is not there is not an error.
    fn delete(&self, path: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The full paths of `dir`'s children (records, or directories with records below them),
    /// sorted.
    fn list(&self, dir: &str) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// The records directly in `dir` (not in its subdirectories), sorted by path: how a
    /// dashboard loads 1024 slots in one round trip.
    fn read_dir(&self, dir: &str) -> impl Future<Output = Result<Vec<(String, Record)>, Error>> + Send;

    /// Writes `value` at `path` only if the record is still at `expected` (`None`: only if there
    /// is no record); [`Error::Conflict`] otherwise. Returns the new version.
    fn compare_and_set(
        &self,
        path: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Takes the lock `path`, writing `value` there (who holds it), bound to a lease of `ttl`
    /// that the returned [`Lease`] keeps alive. [`Error::Locked`] (with the holder's record) if
    /// someone holds it. If the holder dies, the lock goes away after `ttl`.
    fn lock(&self, path: &str, value: &[u8], ttl: Duration) -> impl Future<Output = Result<Lease, Error>> + Send;

    /// Writes `value` at `path` (replacing what was there) bound to a lease of `ttl`: a
    /// registration that disappears when its owner stops renewing it (Codis' ephemeral nodes).
    fn register(&self, path: &str, value: &[u8], ttl: Duration) -> impl Future<Output = Result<Lease, Error>> + Send;

    /// Notice of every change under `dir` from now on.
    fn watch(&self, dir: &str) -> impl Future<Output = Result<Watch, Error>> + Send;

    /// A handle whose writes (create, update, delete, compare-and-set) happen only while `lease`
    /// still holds its lock, atomically with the check: a dashboard that lost its lock (paused,
    /// partitioned past its lease) gets [`Error::LockLost`] instead of overwriting its successor.
    fn fenced(&self, lease: &Lease) -> Self;
}

/// The lease length to use when nothing else is configured: long enough to ride out a slow
/// coordinator, short enough that a crashed dashboard's successor waits seconds, not minutes.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
