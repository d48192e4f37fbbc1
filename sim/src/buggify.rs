//! The fault hook behind `Env::buggify`, after FoundationDB's `BUGGIFY`.
//!
//! Each call site is *activated* for a whole run with probability 1/4, decided the first time the
//! site is reached; an active site then *fires* with probability 1/4 each time. Different seeds so
//! explore different combinations of rare paths (swarm testing at the granularity of a line),
//! while a site that never activates costs its run nothing.

use std::collections::BTreeMap;

use net::Rng;
use net::rand::Rng as _;

/// Per-host buggify state: which sites are active in this run, and the coin.
#[derive(Debug)]
pub struct Buggify {
    enabled: bool,
    rng: Rng,
    sites: BTreeMap<&'static str, bool>,
}

impl Buggify {
    /// Chance that a site is active for a run, and that an active site fires on one visit.
    const PROBABILITY: f64 = 0.25;

    /// Buggify state drawing from `rng`; never fires when not `enabled`.
    pub fn new(enabled: bool, rng: Rng) -> Self {
        Self { enabled, rng, sites: BTreeMap::new() }
    }

    /// Whether `site` takes its unlucky path this time.
    pub fn fire(&mut self, site: &'static str) -> bool {
        if !self.enabled {
            return false;
        }
        let rng = &mut self.rng;
        let active = *self.sites.entry(site).or_insert_with(|| rng.random_bool(Self::PROBABILITY));
        active && self.rng.random_bool(Self::PROBABILITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_never_fires_and_active_sites_fire_sometimes() {
        let mut off = Buggify::new(false, net::rng_from_seed(1, "b"));
        assert!((0..100).all(|_| !off.fire("site")));

        // Over many sites, about a quarter activate, and an active one fires about a quarter of
        // the time: check both happen without depending on exact counts.
        let mut on = Buggify::new(true, net::rng_from_seed(1, "b"));
        const SITES: [&str; 16] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"];
        let fired: Vec<usize> = SITES.iter().map(|site| (0..200).filter(|_| on.fire(site)).count()).collect();
        assert!(fired.contains(&0), "some sites stay inactive: {fired:?}");
        assert!(fired.iter().any(|count| (20..100).contains(count)), "active sites fire sometimes: {fired:?}");
    }
}
