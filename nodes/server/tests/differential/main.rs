//! Differential tests: the same commands against Debian's `redis-server` 7.0 and our server, with
//! the replies compared. Any difference is a bug in ours or a deviation documented in the README.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod blocking;
mod command;
mod connection;
mod dump;
mod generated;
mod hashes;
mod keys;
mod lists;
mod memory;
mod monitoring;
mod pubsub;
mod sets;
mod stream;
mod strings;
mod transactions;
mod zsets;
