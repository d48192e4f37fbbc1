//! The dashboard (`codis-dashboard`, Codis' "topom"): the one controller of a product. It keeps
//! the model (groups, servers, proxies, slots and their actions) in the coordinator under a
//! leased lock, pushes slot tables to proxies, migrates and rebalances slots, and resumes from
//! the coordinator after a crash.
//!
//! Written against `net::Env`, like every component, so the simulator runs it, crashes it and
//! partitions it.
//!
//! # Modules
//! - [`config`]: `dashboard.toml` with Codis' keys, and the leases Codis lacks.
//! - [`dashboard`]: [`Dashboard`]: the lock, the model in memory, pushing to proxies, keeping
//!   them in step.
//! - [`ops`]: what the REST API does: groups, servers, proxies, slot actions, rebalance.
//! - [`migration`]: moving slots: the slot action state machine and its rounds, the executor
//!   (moving a slot's keys on the servers, and verifying none is left), the rebalance plan.
//! - [`failover`]: detecting dead masters, promoting replicas, keeping replicas following.
//! - [`observe`]: servers' memory, keys and links, proxies' counters, for the web console.
//! - [`proxies`]: calls to proxies, and their leases.
//! - [`model`]: the model and what each proxy is told per slot.
//! - [`store`]: the model in the coordinator, with Codis' paths and JSON.
//! - [`api`]: the REST API on Codis' paths.
//! - [`error`]: what operations fail with ([`DashboardError`]).

pub mod api;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod failover;
pub mod migration;
pub mod model;
pub mod observe;
pub mod ops;
pub mod proxies;
pub mod store;

pub use config::DashboardConfig;
pub use dashboard::{Dashboard, Launch, StartError};
pub use error::DashboardError;
