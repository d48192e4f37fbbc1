//! Independent random streams derived from one seed.
//!
//! A simulated run is a function of one `u64`. Every consumer of randomness (a host, a session, the
//! fault injector) gets a stream derived from its parent's seed and a label, rather than drawing
//! from a shared generator: drawing from a shared generator would make every consumer's numbers
//! depend on how many draws every other consumer made before it, so adding a log line that happens
//! to roll a die would reshuffle an unrelated failure.

use rand::SeedableRng;

/// The generator handed to components: ChaCha with 8 rounds, seedable, portable across platforms
/// and `rand` releases (the output for a seed is part of ChaCha's specification).
pub type Rng = rand_chacha::ChaCha8Rng;

/// Derives the seed of the child stream `label` from `parent`.
///
/// FNV-1a over the label, folded with the parent, then the SplitMix64 finaliser for avalanche. It
/// is written out here rather than taken from `std::hash` because the result is part of the replay
/// contract: `just sim SEED=7` must print the same digest on every toolchain, and std documents
/// its hashers as unstable across releases.
pub fn derive_seed(parent: u64, label: &str) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET ^ parent;
    for byte in label.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    splitmix64(hash ^ parent.rotate_left(32))
}

/// A generator for the child stream `label` of `parent`.
pub fn rng_from_seed(parent: u64, label: &str) -> Rng {
    Rng::seed_from_u64(derive_seed(parent, label))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn same_seed_and_label_give_the_same_stream() {
        let mut a = rng_from_seed(7, "session");
        let mut b = rng_from_seed(7, "session");
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn labels_and_parents_separate_streams() {
        assert_ne!(derive_seed(7, "a"), derive_seed(7, "b"));
        assert_ne!(derive_seed(7, "a"), derive_seed(8, "a"));
        assert_ne!(derive_seed(7, "ab"), derive_seed(7, "a"));
        assert_ne!(derive_seed(0, ""), derive_seed(1, ""));
    }

    #[test]
    fn derivation_is_stable_across_releases() {
        // These values are part of the replay contract: a recorded failing seed must replay the
        // same run after a toolchain upgrade. Change them only with a note in the README.
        assert_eq!(derive_seed(0, ""), 0xc381_7c01_6ba4_ff30);
        assert_eq!(derive_seed(7, "ping"), 0x47cf_f8d3_3349_a1c8);
        assert_eq!(derive_seed(8, "ping"), 0x4980_dbe0_4878_eabc);
    }
}
