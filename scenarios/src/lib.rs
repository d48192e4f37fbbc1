//! Named fault scenarios: each builds a simulated cluster, drives it with clients, injects faults
//! on a schedule, checks what clients observed, and returns the run's [`sim::Outcome`].
//!
//! `just sim SEED=7 [SCENARIO=ping]` runs one (the `sim` binary in `src/bin/sim.rs`); the
//! determinism test runs every scenario twice per seed and compares the traces.
//!
//! # Modules
//! - [`client`]: a reconnecting RESP client with deadlines, for workloads.
//! - [`echo`]: a tiny RESP node written against `net::Env`, the subject of the first scenario.
//! - [`ping`]: clients pinging the echo node through a partition, a crash and restart, a hold, a
//!   flapping link and added latency.
//! - [`data_server`]: clients reading and writing `codis-server` through a partition and a crash
//!   and restart, checked against a model; expiry on simulated time.
//! - [`durability`]: `SAVE` snapshots through crashes on the simulated disk: a restarted
//!   server holds exactly an acknowledged snapshot.
//! - [`log_crash`]: writers under each `appendfsync` policy while the server crashes (and
//!   rewrites its log): exactly what the policy promises survives.
//! - [`known`]: the per-key model the workload checkers share.
//! - [`migration`]: one slot migrating asynchronously between two servers while writers route
//!   through `SLOTSMGRT-EXEC-WRAPPER`, through a partition, a crash of either side, or a cancel.
//! - [`proxy_faults`]: clients pipelining through the proxy in front of two servers while a
//!   backend crashes, is partitioned away, the proxy restarts, or slots migrate under them.
//! - [`replica_sync`]: a replica partitioned and crashed under writes converges to its master's
//!   exact data.
//! - [`sequence`]: appends and counters checked as Elle checks list-append histories (a write
//!   applied twice, reordered, invented or lost shows in a read).
//! - [`replay`]: replay equivalence, the check every scenario with replicas or a log ends with:
//!   each replica, and each server's log loaded afresh, holds exactly what its master holds.
//! - [`cluster`]: a whole product (coordinator, dashboard, three groups, two proxies) rebalancing
//!   under faults: dashboard crashes, proxy and server partitions, master crashes.
//! - [`product`]: what the cluster and failover scenarios share: hosts, clients checked against
//!   a per-key model with lost-write accounting, the operator's REST calls.
//! - [`failover`]: replicated groups losing masters (crashes, isolation, flapping links, twice in
//!   a row, mid-migration) and the cases that must not fail over; losses counted and bounded.
//! - [`queue`]: a reliable work queue on `BLMOVE` with a producer and two consumers through
//!   partitions: nothing acknowledged is lost, delivery is FIFO, blocks time out on simulated time.

pub mod client;
pub mod cluster;
pub mod data_server;
pub mod durability;
pub mod echo;
pub mod failover;
pub mod known;
pub mod log_crash;
pub mod migration;
pub mod ping;
pub mod product;
pub mod proxy_faults;
pub mod queue;
pub mod replay;
pub mod replica_sync;
pub mod sequence;

use sim::Outcome;

/// A scenario: a name to select it by, one line on what it exercises, and the run itself.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The name `just sim SCENARIO=…` selects it by.
    pub name: &'static str,
    /// What it exercises, in one line.
    pub summary: &'static str,
    /// Runs it with a seed.
    pub run: fn(u64) -> Outcome,
}

/// Every scenario, in the order `just sim` lists them.
pub fn all() -> &'static [Scenario] {
    static ALL: std::sync::LazyLock<Vec<Scenario>> = std::sync::LazyLock::new(|| {
        let mut all =
            vec![ping::SCENARIO, data_server::SCENARIO, queue::SCENARIO, durability::SCENARIO, replica_sync::SCENARIO];
        all.extend(log_crash::SCENARIOS);
        all.extend(migration::SCENARIOS);
        all.extend(proxy_faults::SCENARIOS);
        all.extend(cluster::SCENARIOS);
        all.extend(failover::SCENARIOS);
        all
    });
    &ALL
}

/// The scenario named `name` (`swarm` is short for `cluster-swarm`).
pub fn find(name: &str) -> Option<&'static Scenario> {
    let name = if name == "swarm" { "cluster-swarm" } else { name };
    all().iter().find(|scenario| scenario.name == name)
}
