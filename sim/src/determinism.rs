//! The determinism check: a run is a function of its seed, or the simulator proves nothing.

use std::fmt;

use crate::harness::Outcome;

/// Two runs of the same seed that did not produce the same trace.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// The seed that was run twice.
    pub seed: u64,
    /// The two digests.
    pub digests: (u64, u64),
    /// The first line where the traces differ (1-based), with each run's version of it (empty
    /// when one trace ended first).
    pub first_difference: Option<(usize, String, String)>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} is not deterministic: digests {:016x} and {:016x}",
            self.seed, self.digests.0, self.digests.1
        )?;
        if let Some((line, first, second)) = &self.first_difference {
            write!(f, "\n  first difference at trace line {line}:\n    run 1: {first}\n    run 2: {second}")?;
        }
        Ok(())
    }
}

/// Runs `scenario` `runs` times with `seed`, in this process, and compares every trace with the
/// first. Returns the first run's outcome when all match, so a caller can also check that it
/// passed.
///
/// Repeating in one process matters: state that lives for the whole process (a global counter in
/// a dependency, the heap's layout) is the same in the first run of every process, so separate
/// processes can agree while a second run in the same process differs.
pub fn replay(seed: u64, runs: usize, scenario: impl Fn(u64) -> Outcome) -> Result<Outcome, Divergence> {
    let first = scenario(seed);
    for _ in 1..runs {
        let again = scenario(seed);
        if again.digest == first.digest && again.trace == first.trace {
            continue;
        }
        let length = first.trace.len().max(again.trace.len());
        let first_difference = (0..length).find_map(|index| {
            let a = first.trace.get(index).cloned().unwrap_or_default();
            let b = again.trace.get(index).cloned().unwrap_or_default();
            (a != b).then_some((index + 1, a, b))
        });
        return Err(Divergence { seed, digests: (first.digest, again.digest), first_difference });
    }
    Ok(first)
}
