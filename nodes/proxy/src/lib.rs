//! The proxy (`codis-proxy`): clients connect as to one Redis; each request goes to the server
//! group that owns its key's slot, pipelined, with replies in request order.
//!
//! Written against `net::Env`, like every component, so it runs on real sockets and in the
//! simulator.
//!
//! # Modules
//! - [`proxy`]: the accept loop and [`ProxyConfig`].
//! - [`admin`]: the admin HTTP API on Codis' paths, and Prometheus metrics.
//! - `session`: one client: batches of requests dispatched in parallel, replies in order;
//!   split multi-key commands; migration-aware forwarding.
//! - `pubsub`: subscriptions fanned in from every group; a subscriber that may have missed
//!   messages is disconnected, never left unaware.
//! - `transaction`: `MULTI`/`EXEC`/`WATCH` of one slot on a connection the client owns.
//! - [`lease`]: the lease from the dashboard without which a configured proxy refuses clients.
//! - [`register`]: `--dashboard`: asking the dashboard to take the proxy online.
//! - [`router`]: the slot table.
//! - [`stats`]: counters per command, with latency histograms.
//! - [`backend`]: pipelined backend connections and the pool.
//! - [`commands`]: Codis' command table, matched on whole names.

pub mod admin;
pub mod backend;
pub mod commands;
pub mod lease;
pub mod proxy;
mod pubsub;
pub mod register;
pub mod router;
mod session;
pub mod stats;
mod transaction;

pub use proxy::{Proxy, ProxyConfig};
