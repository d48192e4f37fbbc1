//! Moving slots between groups: the slot action's state machine and its rounds (`actions`), the
//! executor that moves a slot's keys on the servers and verifies none is left ([`executor`]),
//! and the rebalance plan ([`rebalance`]).

pub(crate) mod actions;
pub mod executor;
pub mod rebalance;
