//! The migration, proxy, durability, cluster and failover scenarios over many seeds: each seed moves the fault to a
//! different moment and reorders everything else, and every run checks its scenario's invariants.
//! `just soak COUNT=… SCENARIO=…` runs thousands.

/// Seeds per scenario in `just test` (the determinism test adds its own few).
const SEEDS: std::ops::Range<u64> = 100..124;

/// Seeds per cluster scenario (the issue asks for at least 50).
const CLUSTER_SEEDS: std::ops::Range<u64> = 100..150;

/// Runs every scenario whose name starts with `prefix` (there must be `expected` of them) for
/// every seed.
fn hold_for_many_seeds(prefix: &str, expected: usize) {
    hold_for_seeds(prefix, expected, SEEDS);
}

fn hold_for_seeds(prefix: &str, expected: usize, seeds: std::ops::Range<u64>) {
    let scenarios: Vec<_> = scenarios::all().iter().filter(|scenario| scenario.name.starts_with(prefix)).collect();
    assert_eq!(scenarios.len(), expected, "{prefix}* scenarios");
    for scenario in scenarios {
        for seed in seeds.clone() {
            let outcome = (scenario.run)(seed);
            assert!(
                outcome.passed(),
                "{} seed {seed} failed: {:?} (replay: just sim SEED={seed} SCENARIO={})",
                scenario.name,
                outcome.result,
                scenario.name
            );
        }
    }
}

#[test]
fn every_migration_scenario_holds_its_invariants_for_many_seeds() {
    // Partition, target crash, source crash, cancel; sync partition, sync target crash.
    hold_for_many_seeds("migrate-", 6);
}

#[test]
fn every_proxy_scenario_holds_its_invariants_for_many_seeds() {
    // Backend crash, partition, proxy restart, refill.
    hold_for_many_seeds("proxy-", 4);
}

#[test]
fn every_durability_scenario_holds_its_invariants_for_many_seeds() {
    // Snapshots through crashes.
    hold_for_many_seeds("snapshot-", 1);
    // The append-only log through crashes: always, everysec, no, rewrites.
    hold_for_many_seeds("aof-", 4);
    // A replica through partitions and a crash converges to its master.
    hold_for_many_seeds("replica-", 1);
}

// The cluster scenarios, one test each so they run side by side.

#[test]
fn a_rebalance_under_writes_holds_for_many_seeds() {
    hold_for_seeds("cluster-rebalance", 1, CLUSTER_SEEDS);
}

#[test]
fn a_proxy_cut_from_the_dashboard_holds_for_many_seeds() {
    hold_for_seeds("cluster-proxy-partition", 1, CLUSTER_SEEDS);
}

#[test]
fn a_dashboard_crash_in_any_action_state_holds_for_many_seeds() {
    hold_for_seeds("cluster-dashboard-crash", 1, CLUSTER_SEEDS);
}

#[test]
fn a_master_crash_mid_migration_holds_for_many_seeds() {
    hold_for_seeds("cluster-server-crash", 1, CLUSTER_SEEDS);
}

#[test]
fn a_dashboard_cut_from_a_server_holds_for_many_seeds() {
    hold_for_seeds("cluster-dashboard-partition", 1, CLUSTER_SEEDS);
}

#[test]
fn a_swarm_of_cluster_faults_holds_for_many_seeds() {
    hold_for_seeds("cluster-swarm", 1, CLUSTER_SEEDS);
}

// The failover scenarios, one test each; odd seeds replicate synchronously, even ones
// asynchronously.

#[test]
fn a_master_crash_fails_over_for_many_seeds() {
    hold_for_seeds("failover-kill", 1, CLUSTER_SEEDS);
}

#[test]
fn an_isolated_master_fails_over_for_many_seeds() {
    hold_for_seeds("failover-isolate", 1, CLUSTER_SEEDS);
}

#[test]
fn a_lone_dashboard_fails_nothing_over_for_many_seeds() {
    hold_for_seeds("failover-dashboard-alone", 1, CLUSTER_SEEDS);
}

#[test]
fn a_master_cut_from_the_dashboard_only_is_not_failed_over_for_many_seeds() {
    hold_for_seeds("failover-master-dashboard", 1, CLUSTER_SEEDS);
}

#[test]
fn a_flapping_master_holds_for_many_seeds() {
    hold_for_seeds("failover-flap", 1, CLUSTER_SEEDS);
}

#[test]
fn two_failovers_in_a_row_hold_for_many_seeds() {
    hold_for_seeds("failover-twice", 1, CLUSTER_SEEDS);
}

#[test]
fn a_failover_mid_migration_holds_for_many_seeds() {
    hold_for_seeds("failover-migration", 1, CLUSTER_SEEDS);
}

#[test]
fn a_failover_under_wrapped_writes_holds_for_many_seeds() {
    hold_for_seeds("failover-wrapper", 1, CLUSTER_SEEDS);
}

#[test]
fn a_paused_master_fails_over_in_time_for_many_seeds() {
    hold_for_seeds("failover-pause", 1, CLUSTER_SEEDS);
}
