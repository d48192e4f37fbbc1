//! The proxy scenarios over many seeds: each checks every reply against its request and a model
//! of the keys, through a backend crash, a partition, a proxy restart, or slots migrating under
//! the clients. `just soak COUNT=… SCENARIO=proxy-…` runs thousands.

/// Seeds per scenario in `just test` (the determinism test adds its own few).
const SEEDS: std::ops::Range<u64> = 100..124;

#[test]
fn every_proxy_scenario_holds_its_invariants_for_many_seeds() {
    let scenarios: Vec<_> = scenarios::all().iter().filter(|scenario| scenario.name.starts_with("proxy-")).collect();
    assert_eq!(scenarios.len(), 4, "backend crash, partition, proxy restart, refill");
    for scenario in scenarios {
        for seed in SEEDS {
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
