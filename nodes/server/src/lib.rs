//! The data server (`codis-server`): a Redis-compatible in-memory server whose keyspace is indexed
//! by Codis slot.
//!
//! Written once against `net::Env`, it runs in the `codis-server` binary on real sockets and under
//! the simulator. Commands follow Redis 7.0's semantics, arities, error texts and RESP2/RESP3
//! reply shapes; the differential tests in `tests/` hold it to that against a real `redis-server`.
//!
//! # Modules
//! - [`server`]: the accept loop and the background cycle ([`run`], [`bind_and_run`]).
//! - [`shutdown`]: stopping as Redis does (replicas given the last writes, a final snapshot).
//! - `session`: one connection: batches of pipelined requests executed under one lock.
//! - [`cmd`]: the command table and one module per command family.
//! - [`keyspace`]: databases of keys indexed by slot and by hash tag.
//! - [`state`]: what commands run against.
//! - [`blocking`], [`pubsub`], [`outbox`]: blocked clients, subscriptions, and how one client's
//!   command delivers to another client's connection.
//! - [`reply`]: writing replies for RESP2 or RESP3 clients.
//! - [`migrate`]: slot migration to another server: keys in flight, the migrator's tasks, the
//!   asynchronous batch.
//! - [`rdb`]: values in Redis' RDB object format (`DUMP`/`RESTORE`, migration, snapshots).
//! - [`config`]: [`ServerConfig`], with Redis' option names.
//! - [`args`], [`error`], [`glob`], [`ldouble`]: argument parsing, Redis' error texts, glob
//!   patterns (shared with the proxy, from `model`), and Redis' `long double` arithmetic.

pub mod aof;
pub mod args;
pub mod blocking;
pub mod cmd;
pub mod config;
pub mod error;
pub mod evict;
pub use model::glob;
pub mod keyspace;
pub mod ldouble;
pub mod migrate;
pub mod outbox;
pub mod persist;
pub mod propagate;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod reply;
pub mod server;
pub(crate) mod session;
pub mod shutdown;
pub mod slowlog;
pub mod state;

/// The version `HELLO` and `INFO` report: the Redis release whose behaviour we implement.
pub const REDIS_VERSION: &str = "7.0.15";

pub use config::{DebugCommand, EvictionPolicy, ServerConfig};
pub use server::{bind_and_run, run};
