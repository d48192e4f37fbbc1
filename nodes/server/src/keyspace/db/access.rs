//! How keys are accessed, for eviction: the LRU clock or the LFU counter each entry carries
//! (Redis' `maxmemory-policy`), and sampling keys to evict.

use model::{KeyHash, MAX_SLOT_NUM};
use net::Rng;
use net::rand::Rng as _;

use crate::keyspace::value::{Entry, lru_clock};

use super::{Db, Key};

/// What an entry's access field holds, following `maxmemory-policy` as Redis does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTracking {
    /// The LRU clock of the last access.
    #[default]
    Lru,
    /// Redis' LFU: 16 bits of minutes since the last decrement, 8 bits of logarithmic counter.
    Lfu {
        /// `lfu-log-factor`: how slowly the counter grows.
        log_factor: u32,
        /// `lfu-decay-time`: minutes per decrement of an idle key's counter.
        decay_minutes: u32,
    },
}

/// Redis' `LFU_INIT_VAL`: a new key's counter, so it is not evicted at once.
pub(super) const LFU_INIT_VAL: u32 = 5;

pub(super) fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// The LFU counter of `accessed` after the decay its idle minutes call for (Redis'
/// `LFUDecrAndReturn`).
pub fn lfu_counter(accessed: u32, now_ms: u64, decay_minutes: u32) -> u32 {
    let last = accessed >> 8;
    let counter = accessed & 0xff;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last { now - last } else { 65_535 - last + now };
    let periods = elapsed.checked_div(decay_minutes).unwrap_or(0);
    counter.saturating_sub(periods)
}

impl Db {
    /// Sets what accesses record (the server calls it when `maxmemory-policy` changes).
    pub fn set_access_tracking(&mut self, access: AccessTracking) {
        self.access = access;
    }

    /// The access field of a new entry.
    pub(super) fn initial_access(&self, now_ms: u64) -> u32 {
        match self.access {
            AccessTracking::Lru => lru_clock(now_ms),
            AccessTracking::Lfu { .. } => (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL,
        }
    }

    /// Records an access in an entry's access field: the time, or a decayed and probabilistically
    /// incremented frequency (Redis' `updateLFU`, with its `LFULogIncr`).
    pub(super) fn record_access(access: AccessTracking, draws: &mut u64, accessed: &mut u32, now_ms: u64) {
        match access {
            AccessTracking::Lru => *accessed = lru_clock(now_ms),
            AccessTracking::Lfu { log_factor, decay_minutes } => {
                let mut counter = lfu_counter(*accessed, now_ms, decay_minutes);
                if counter < 255 {
                    *draws = draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut bits = *draws;
                    bits = (bits ^ (bits >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    bits = (bits ^ (bits >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    bits ^= bits >> 31;
                    let draw = (bits >> 11) as f64 / (1u64 << 53) as f64;
                    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
                    if draw < 1.0 / (base * f64::from(log_factor) + 1.0) {
                        counter += 1;
                    }
                }
                *accessed = (lfu_minutes(now_ms) << 8) | counter;
            }
        }
    }

    /// The LFU frequency of `key` (`OBJECT FREQ`), without counting this as an access.
    pub fn frequency(&self, key: &[u8], now_ms: u64) -> Option<u32> {
        let AccessTracking::Lfu { decay_minutes, .. } = self.access else {
            return None;
        };
        self.peek(key).map(|entry| lfu_counter(entry.accessed, now_ms, decay_minutes))
    }

    /// Backdates or seeds `key`'s access record as `RESTORE … IDLETIME seconds` or `FREQ count`
    /// asks (Redis' `objectSetLRUOrLFU`): under an LFU policy a given frequency becomes the
    /// counter; under any other a given idle time moves the 24-bit LRU clock back that far,
    /// wrapping as the clock wraps. The option that does not fit the policy is ignored, as Redis
    /// ignores it.
    pub fn restore_access(&mut self, key: &[u8], idle_seconds: Option<i64>, frequency: Option<u8>, now_ms: u64) {
        let access = self.access;
        let slot = KeyHash::of(key).slot().index();
        let Some(entry) = self.slots[slot].map.get_mut(key) else {
            return;
        };
        match (access, idle_seconds, frequency) {
            (AccessTracking::Lfu { .. }, _, Some(frequency)) => {
                entry.accessed = (lfu_minutes(now_ms) << 8) | u32::from(frequency);
            }
            (AccessTracking::Lru, Some(idle), _) => {
                // Redis scales by its clock resolution (x1000/1000) in 64-bit arithmetic, which
                // wraps for absurd idle times; the 24-bit field keeps the low bits.
                let idle = idle.wrapping_mul(1000) / 1000;
                let mut accessed = i64::from(lru_clock(now_ms)) - idle;
                if accessed < 0 {
                    accessed += 0x00ff_ffff;
                }
                entry.accessed = (accessed as u64 & 0x00ff_ffff) as u32;
            }
            _ => {}
        }
    }

    /// How good a candidate for eviction `entry` is under `policy` (higher is better): idle
    /// seconds, infrequency, or nearness of expiry, as Redis scores its eviction pool.
    pub fn eviction_score(&self, entry: &Entry, policy: crate::config::EvictionPolicy, now_ms: u64) -> u64 {
        use crate::config::EvictionPolicy as P;
        match policy {
            P::AllkeysLfu | P::VolatileLfu => {
                let decay = match self.access {
                    AccessTracking::Lfu { decay_minutes, .. } => decay_minutes,
                    AccessTracking::Lru => 0,
                };
                255 - u64::from(lfu_counter(entry.accessed, now_ms, decay))
            }
            P::VolatileTtl => u64::MAX - entry.expire_at,
            _ => u64::from(entry.idle_seconds(now_ms)),
        }
    }

    /// Up to `count` keys drawn at random for eviction: from the keys with an expiry
    /// (`volatile`), or from all keys by random slot then random position (not exactly uniform,
    /// like Redis' `dictGetSomeKeys`, which is enough to approximate LRU).
    pub fn sample_keys(&self, rng: &mut Rng, count: usize, volatile: bool) -> Vec<Key> {
        let mut keys = Vec::with_capacity(count);
        if volatile {
            for _ in 0..count.min(self.volatile.len()) {
                if let Some((key, _)) = self.volatile.get_index(rng.random_range(0..self.volatile.len())) {
                    keys.push(key.clone());
                }
            }
            return keys;
        }
        if self.len == 0 {
            return keys;
        }
        for _ in 0..count {
            let start = rng.random_range(0..MAX_SLOT_NUM);
            let Some(slot) = (0..MAX_SLOT_NUM)
                .map(|offset| &self.slots[(start + offset) % MAX_SLOT_NUM])
                .find(|slot| !slot.map.is_empty())
            else {
                break;
            };
            if let Some((key, _)) = slot.map.get_index(rng.random_range(0..slot.map.len())) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// A key with an expiry chosen at random (`volatile-random`).
    pub fn random_volatile_key(&self, rng: &mut Rng) -> Option<Key> {
        if self.volatile.is_empty() {
            return None;
        }
        self.volatile.get_index(rng.random_range(0..self.volatile.len())).map(|(key, _)| key.clone())
    }
}
