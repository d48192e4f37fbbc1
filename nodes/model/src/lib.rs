//! The cluster model: one definition of slots, groups, proxies and products, shared by the server,
//! the proxy, the dashboard, the admin CLI and the web page.
//!
//! Field names and JSON shapes are Codis 3.2's (`pkg/models`), so the data a Codis dashboard
//! stored in its coordinator reads here unchanged, and tools written against Codis' REST API see
//! the shapes they expect.
//!
//! # Modules
//! - [`slot_hash`]: which slot a key lives in (CRC-32 of its hash tag, 1024 slots).
//! - [`slot`]: [`Slot`] (what a proxy routes by) and [`SlotMapping`] (what the dashboard stores),
//!   with the migration [`ActionState`]s.
//! - [`group`]: [`Group`]s of servers, master first.
//! - [`proxy`]: the [`Proxy`] registration record.
//! - [`topom`]: the dashboard's lock record, [`Topom`].
//! - [`sentinel`]: the [`Sentinel`] set.
//! - [`product`]: validated [`ProductName`]s and the coordinator paths under `/codis3/<product>`.
//! - [`json`]: encoding as Codis does (4-space indented).
//! - [`auth`]: the secrets in REST paths (proxy and dashboard `xauth`).
//! - [`config`]: Codis' durations and byte sizes in config files.
//! - [`glob`]: Redis' glob patterns (`KEYS`, `SCAN MATCH`, pub/sub), for the server and the proxy.

pub mod action;
pub mod auth;
pub mod config;
pub mod glob;
pub mod group;
pub mod json;
pub mod product;
pub mod proxy;
pub mod sentinel;
pub mod slot;
pub mod slot_hash;
pub mod topom;

pub use group::{Group, GroupId, GroupServer, ServerAction};
pub use product::{ProductName, ProductNameError};
pub use proxy::Proxy;
pub use sentinel::Sentinel;
pub use slot::{ActionState, ForwardMethod, Slot, SlotAction, SlotMapping};
pub use slot_hash::{KeyHash, MAX_SLOT_NUM, SlotId, hash_tag, slot_of};
pub use topom::Topom;
