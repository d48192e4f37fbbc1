//! The deterministic simulator.
//!
//! A whole cluster (servers, proxies, dashboard, coordinator and the clients that drive it) runs
//! in one thread under turmoil: simulated network, simulated time, one seed. Components are the
//! production code, instantiated with [`SimEnv`] instead of `net::TokioEnv`. A run is a function
//! of its seed: [`Outcome::digest`] summarises everything that happened, and the determinism test
//! in `scenarios` runs each scenario twice per seed and demands the same digest.
//!
//! Nothing here is linked into a shipped binary.
//!
//! # Modules
//! - [`env`]: [`SimEnv`], the turmoil backend of `net::Env`.
//! - [`disk`]: [`SimDisk`], each host's disk, which loses what was not synced in a crash.
//! - [`pause`]: a paused host (`kill -STOP`): connections to it open and are never answered.
//! - [`buggify`]: the fault hook's FoundationDB-style coin.
//! - [`determinism`]: [`replay`], the same-seed-same-trace check.
//! - [`fault`]: the [`Fault`]s a schedule can inject.
//! - [`trace`]: the event [`Trace`] (stamped with simulated time only) and its digest.
//! - [`shape`]: [`ClusterShape`], the named hosts of a cluster.
//! - [`harness`]: [`Harness`], which registers hosts, runs the schedule and returns an [`Outcome`].

pub mod buggify;
pub mod determinism;
pub mod disk;
pub mod env;
pub mod fault;
pub mod harness;
pub mod pause;
pub mod shape;
pub mod trace;

pub use determinism::{Divergence, replay};
pub use disk::{SimDisk, SimFile};
pub use env::{SimEnv, SimListener, SimStream};
pub use fault::Fault;
pub use harness::{Harness, HostResult, Nemesis, Outcome, SimConfig, Software, software};
pub use shape::{ClusterShape, HostSpec, Role};
pub use trace::Trace;
