//! The migration scenarios over many seeds: each seed moves the fault to a different moment of
//! the migration (and reorders everything else), and every run checks the invariants listed in
//! `scenarios::migration`. `just soak COUNT=… SCENARIO=migrate-…` runs thousands.

/// Seeds per scenario in `just test` (the determinism test adds its own few).
const SEEDS: std::ops::Range<u64> = 100..124;

#[test]
fn every_migration_scenario_holds_its_invariants_for_many_seeds() {
    let scenarios: Vec<_> = scenarios::all().iter().filter(|scenario| scenario.name.starts_with("migrate-")).collect();
    assert_eq!(scenarios.len(), 6, "partition, target crash, source crash, cancel; sync partition, target crash");
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
