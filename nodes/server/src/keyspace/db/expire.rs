//! Expiry: keys with a time to live, deleted when touched after it or by the active cycle
//! (on a master; a replica waits for its master's deletions).

use model::KeyHash;
use net::Rng;
use net::rand::Rng as _;

use super::{Db, Key, key_heap};

impl Db {
    /// Sets the expiry of an existing `key` (0 removes it). Returns `false` if the key does not
    /// exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: u64) -> bool {
        let slot = KeyHash::of(key).slot().index();
        let Some(entry) = self.slots[slot].map.get_mut(key) else {
            return false;
        };
        let was_volatile = entry.expire_at != 0;
        entry.expire_at = expire_at_ms;
        self.track_expiry(key, was_volatile, expire_at_ms != 0);
        self.bump_watch(key);
        true
    }

    /// Keeps the index of keys with an expiry in step when `key` gains or loses one.
    pub(super) fn track_expiry(&mut self, key: &[u8], was_volatile: bool, is_volatile: bool) {
        match (was_volatile, is_volatile) {
            (false, true) if !self.volatile.contains_key(key) => {
                self.volatile.insert_new(Key::from_slice(key), ());
                self.memory.volatile_keys += key_heap(key.len());
            }
            (true, false) if self.volatile.swap_remove_entry(key).is_some() => {
                self.memory.volatile_keys -= key_heap(key.len());
            }
            _ => {}
        }
    }

    /// Turns the deletion of expired keys on or off (off while replaying changes).
    pub fn set_lazy_expiry(&mut self, on: bool) {
        self.lazy_expiry = on;
    }

    /// Whether this database deletes expired keys itself (see [`Db::set_lazy_expiry`]).
    pub fn deletes_expired(&self) -> bool {
        self.lazy_expiry
    }

    /// Starts (or stops) keeping the keys deleted because they expired, for
    /// [`Db::take_expired`].
    pub fn set_log_expired(&mut self, on: bool) {
        self.log_expired = on;
        if !on {
            self.expired_log.clear();
        }
    }

    /// The keys deleted because they expired since the last call.
    pub fn take_expired(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.expired_log)
    }

    /// Deletes an expired `key`, counting it.
    pub(super) fn expire(&mut self, key: &[u8]) {
        if self.remove(key).is_some() {
            self.stats.expired_keys += 1;
            if self.log_expired {
                self.expired_log.push(Key::from_slice(key));
            }
            if let Some(watched) = self.watched.get_mut(key) {
                watched.expiry_deletion = watched.version;
            }
        }
    }

    /// One pass of active expiry, as Redis' `activeExpireCycle`: sample `sample` keys with an
    /// expiry, delete the expired ones, and go again while more than a tenth of a sample had
    /// expired, at most `max_rounds` times. Returns how many keys expired.
    pub fn expire_cycle(&mut self, now_ms: u64, rng: &mut Rng, sample: usize, max_rounds: usize) -> usize {
        let mut total = 0;
        for _ in 0..max_rounds {
            let draws = sample.min(self.volatile.len());
            if draws == 0 {
                break;
            }
            let mut expired = 0;
            for _ in 0..draws {
                if self.volatile.is_empty() {
                    break;
                }
                let index = rng.random_range(0..self.volatile.len());
                let Some(key) = self.volatile.get_index(index).map(|(key, _)| key.clone()) else {
                    break;
                };
                if self.peek(&key).is_some_and(|entry| entry.is_expired(now_ms)) {
                    self.expire(&key);
                    expired += 1;
                }
            }
            total += expired;
            if expired * 10 <= draws {
                break;
            }
        }
        total
    }
}
