//! The environment every component runs in.
//!
//! A component (server, proxy, dashboard) is generic over [`Env`] and takes from it everything
//! that would otherwise make a run irreproducible: sockets, files, the wall clock, randomness,
//! task spawning, and a fault-injection hook. Production instantiates it with [`TokioEnv`]; the
//! simulator (the `sim` crate, never linked into a shipped binary) instantiates it with turmoil's
//! network and virtual clock. Because the traits use associated types, the production build
//! monomorphises down to plain `tokio::net` types: no `dyn`, no boxing on the data path.
//!
//! Monotonic time, sleeps, timeouts and intervals come from `tokio::time` directly: turmoil
//! already virtualises them, so wrapping them would buy nothing.
//!
//! # Modules
//! - [`env`]: the [`Env`], [`Listener`] and [`Stream`] traits.
//! - [`disk`]: the [`Disk`] and [`DiskFile`] traits: files that must outlive the process.
//! - [`http`]: an HTTP/1.1 client over the environment's streams, for the REST APIs the
//!   components call (dashboard → proxies, admin → dashboard, etcd's gateway).
//! - [`seed`]: independent random streams derived from one seed and a label.
//! - [`tokio_env`]: the production backend over real sockets and the real clock.
//! - [`tokio_disk`]: the production disk, the machine's file system.

pub mod disk;
pub mod env;
pub mod http;
pub mod seed;
pub mod tokio_disk;
pub mod tokio_env;

pub use disk::{DirEntry, Disk, DiskFile};
pub use env::{Env, Listener, ProcessUsage, Stream};
pub use seed::{Rng, derive_seed, rng_from_seed};
pub use tokio_disk::OsDisk;
pub use tokio_env::TokioEnv;

/// The `rand` version the environment's generators implement, re-exported so components use the
/// same traits (`rand::Rng`, `rand::seq::SliceRandom`) without pinning a version of their own.
pub use rand;
