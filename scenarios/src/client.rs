//! A reconnecting RESP client for scenario workloads: `resp::client::Client` on the simulated
//! network.

pub use resp::client::Unavailable;

/// The client scenarios use.
pub type SimClient = resp::client::Client<sim::SimEnv>;
