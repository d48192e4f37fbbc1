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

/// Runs `scenario` twice with `seed` and compares the traces. Returns the first run's outcome when
/// they match, so a caller can also check that it passed.
pub fn run_twice(seed: u64, scenario: impl Fn(u64) -> Outcome) -> Result<Outcome, Divergence> {
    let first = scenario(seed);
    let second = scenario(seed);
    if first.digest == second.digest && first.trace == second.trace {
        return Ok(first);
    }
    let length = first.trace.len().max(second.trace.len());
    let first_difference = (0..length).find_map(|index| {
        let a = first.trace.get(index).cloned().unwrap_or_default();
        let b = second.trace.get(index).cloned().unwrap_or_default();
        (a != b).then_some((index + 1, a, b))
    });
    Err(Divergence { seed, digests: (first.digest, second.digest), first_difference })
}
