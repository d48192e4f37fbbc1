//! `maxmemory`: evicting keys as the configured policy says, before commands run (Redis'
//! `performEvictions`).
//!
//! The approximate LRU/LFU/TTL policies work as Redis': each round samples `maxmemory-samples`
//! keys per database into a pool of the best 16 candidates seen so far, kept across rounds, and
//! evicts the best one still present. Samples come from the server's seeded random stream, and
//! the work per command is bounded by a count, not a time budget, so a simulated run stays a
//! function of its seed.

use crate::config::EvictionPolicy;
use crate::keyspace::Key;
use crate::state::State;

/// Redis' `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

/// Most keys evicted before one command at the default `maxmemory-eviction-tenacity` (10): past
/// it the command runs anyway and the background cycle goes on evicting (Redis bounds this by
/// time and says `EVICT_RUNNING`). Each 10 points of tenacity above 10 double it, as Redis'
/// time budget grows; 100 removes the bound.
const EVICTIONS_AT_DEFAULT_TENACITY: usize = 4096;

fn eviction_budget(tenacity: u32) -> usize {
    match tenacity {
        100.. => usize::MAX,
        0..=10 => EVICTIONS_AT_DEFAULT_TENACITY * tenacity.max(1) as usize / 10,
        _ => EVICTIONS_AT_DEFAULT_TENACITY << ((tenacity - 10) / 10),
    }
}

/// One candidate for eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Higher is evicted first.
    score: u64,
    /// Its database.
    db: usize,
    /// The key.
    key: Key,
}

/// The best candidates seen so far, worst first.
#[derive(Debug, Default)]
pub struct EvictionPool {
    candidates: Vec<Candidate>,
    /// Where `*-random` policies look next (they take databases in turn).
    next_db: usize,
}

impl EvictionPool {
    fn offer(&mut self, candidate: Candidate) {
        if self.candidates.iter().any(|known| known.db == candidate.db && known.key == candidate.key) {
            return;
        }
        if self.candidates.len() == POOL_SIZE {
            if candidate.score <= self.candidates[0].score {
                return;
            }
            self.candidates.remove(0);
        }
        let position = self.candidates.partition_point(|known| known.score <= candidate.score);
        self.candidates.insert(position, candidate);
    }

    /// Forgets everything (the data was flushed or swapped).
    pub fn clear(&mut self) {
        self.candidates.clear();
    }
}

/// What `maxmemory` compares: every database's data and indexes.
pub fn used_memory(state: &State) -> usize {
    state.keyspace.dbs().iter().map(|db| db.used_memory()).sum()
}

/// How an attempt to get under `maxmemory` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Under the limit (or no limit).
    Fits,
    /// Still over, but evicting goes on: commands may run.
    Running,
    /// Over the limit with nothing to evict: commands that would grow memory are refused.
    Failed,
}

/// Evicts keys until memory use is under `maxmemory`, as the policy allows.
pub fn perform_evictions(state: &mut State, now_ms: u64) -> Eviction {
    let limit = usize::try_from(state.config.maxmemory).unwrap_or(usize::MAX);
    if limit == 0 {
        return Eviction::Fits;
    }
    for _ in 0..eviction_budget(state.config.maxmemory_eviction_tenacity) {
        if used_memory(state) <= limit {
            return Eviction::Fits;
        }
        let Some(Candidate { db, key, .. }) = choose(state, now_ms) else {
            return Eviction::Failed;
        };
        state.keyspace.db(db).remove(&key);
        state.propagation.push_del(db, &key);
        state.stats.evicted_keys += 1;
    }
    if used_memory(state) <= limit { Eviction::Fits } else { Eviction::Running }
}

/// The key to evict next, if the policy finds one.
fn choose(state: &mut State, now_ms: u64) -> Option<Candidate> {
    let policy = state.config.maxmemory_policy;
    let volatile = matches!(
        policy,
        EvictionPolicy::VolatileLru
            | EvictionPolicy::VolatileLfu
            | EvictionPolicy::VolatileRandom
            | EvictionPolicy::VolatileTtl
    );
    match policy {
        EvictionPolicy::Noeviction => None,
        EvictionPolicy::AllkeysRandom | EvictionPolicy::VolatileRandom => {
            let databases = state.keyspace.len();
            for _ in 0..databases {
                let db = state.eviction.next_db % databases;
                state.eviction.next_db = state.eviction.next_db.wrapping_add(1);
                let database = state.keyspace.db(db);
                let key = if volatile {
                    database.random_volatile_key(&mut state.rng)
                } else {
                    database.random_key(&mut state.rng)
                };
                if let Some(key) = key {
                    return Some(Candidate { score: 0, db, key });
                }
            }
            None
        }
        _ => {
            let samples = state.config.maxmemory_samples.max(1);
            // A few rounds: candidates in the pool may have been deleted since they were seen.
            for _ in 0..4 {
                let mut any = false;
                for db in 0..state.keyspace.len() {
                    let database = state.keyspace.db(db);
                    for key in database.sample_keys(&mut state.rng, samples, volatile) {
                        if let Some(entry) = database.peek(&key) {
                            any = true;
                            let score = database.eviction_score(entry, policy, now_ms);
                            state.eviction.offer(Candidate { score, db, key });
                        }
                    }
                }
                while let Some(best) = state.eviction.candidates.pop() {
                    let present = state
                        .keyspace
                        .db(best.db)
                        .peek(&best.key)
                        .is_some_and(|entry| !volatile || entry.expire_at().is_some());
                    if present {
                        return Some(best);
                    }
                }
                if !any {
                    return None;
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_best_sixteen_in_order() {
        let mut pool = EvictionPool::default();
        for score in [5u64, 1, 9, 3, 7] {
            pool.offer(Candidate { score, db: 0, key: Key::from_slice(score.to_string().as_bytes()) });
        }
        pool.offer(Candidate { score: 9, db: 0, key: Key::from_slice(b"9") });
        let scores: Vec<u64> = pool.candidates.iter().map(|candidate| candidate.score).collect();
        assert_eq!(scores, [1, 3, 5, 7, 9]);
        for score in 10..40 {
            pool.offer(Candidate { score, db: 1, key: Key::from_slice(score.to_string().as_bytes()) });
        }
        assert_eq!(pool.candidates.len(), POOL_SIZE);
        assert_eq!(pool.candidates[0].score, 24);
        assert_eq!(pool.candidates.last().map(|candidate| candidate.score), Some(39));
    }
}
