//! Walking the keys: `SCAN` cursors (slot and position), a slot's keys, the keys sharing a
//! hash tag, and a random key.

use model::{KeyHash, MAX_SLOT_NUM, SlotId};
use net::Rng;
use net::rand::Rng as _;

use crate::keyspace::value::Entry;

use super::{Db, Key};

/// Where a `SCAN` over a whole database resumes: the slot, and how many positions of that slot
/// remain unvisited (0: start the slot from its top).
///
/// Each slot's map is walked from its last position down. Maps remove by swapping the last entry
/// into the hole, so an entry can only move from a visited position to an unvisited one, never
/// the other way, and new entries are appended above the cursor: every key present for the whole
/// scan is returned at least once, which is `SCAN`'s guarantee.
pub(super) fn split_cursor(cursor: u64) -> (usize, usize) {
    ((cursor >> 32) as usize, (cursor & 0xffff_ffff) as usize)
}

pub(super) fn join_cursor(slot: usize, remaining: usize) -> u64 {
    ((slot as u64) << 32) | remaining as u64
}

impl Db {
    /// Visits up to `count` entries of the whole database from `cursor` (0 starts), calling
    /// `visit` for each; returns the cursor to continue from (0 when the scan is complete).
    /// Expired keys are visited too: the caller filters them (and may expire them) afterwards.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> u64 {
        let (mut slot, mut remaining) = split_cursor(cursor);
        let mut visited = 0;
        while slot < MAX_SLOT_NUM {
            let map = &self.slots[slot].map;
            if remaining == 0 || remaining > map.len() {
                remaining = map.len();
            }
            while remaining > 0 && visited < count {
                remaining -= 1;
                if let Some((key, entry)) = map.get_index(remaining) {
                    visit(key, entry);
                }
                visited += 1;
            }
            if remaining > 0 {
                return join_cursor(slot, remaining);
            }
            slot += 1;
            if visited >= count {
                break;
            }
        }
        if slot >= MAX_SLOT_NUM { 0 } else { join_cursor(slot, 0) }
    }

    /// Visits up to `count` entries of one slot from `cursor` (0 starts); returns the cursor to
    /// continue from (0 when done). The same walk as [`Db::scan`], within one slot.
    pub fn scan_slot(&self, slot: SlotId, cursor: u64, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> u64 {
        let map = &self.slots[slot.index()].map;
        let mut remaining = usize::try_from(cursor).unwrap_or(usize::MAX);
        if remaining == 0 || remaining > map.len() {
            remaining = map.len();
        }
        let mut visited = 0;
        while remaining > 0 && visited < count {
            remaining -= 1;
            if let Some((key, entry)) = map.get_index(remaining) {
                visit(key, entry);
            }
            visited += 1;
        }
        remaining as u64
    }

    /// Every key, in slot order, for `KEYS`; the caller filters by pattern and expiry.
    pub fn keys(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.slots.iter().flat_map(|slot| slot.map.iter())
    }

    /// The keys of `slot` sharing `key`'s hash tag, or just `key` if it has no tag (and exists).
    pub fn keys_sharing_tag(&self, key: &[u8]) -> Vec<Key> {
        let hash = KeyHash::of(key);
        let slot = &self.slots[hash.slot().index()];
        if !hash.tagged {
            return slot.map.get_key_value(key).map(|(key, _)| vec![key.clone()]).unwrap_or_default();
        }
        slot.tagged
            .range((hash.crc, Key::new())..)
            .take_while(|(crc, _)| *crc == hash.crc)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// A key chosen uniformly at random, or `None` if the database is empty. It may have expired:
    /// `RANDOMKEY` deletes it and draws again.
    pub fn random_key(&self, rng: &mut Rng) -> Option<Key> {
        if self.len == 0 {
            return None;
        }
        let mut index = rng.random_range(0..self.len);
        for slot in self.slots.iter() {
            if index < slot.map.len() {
                return slot.map.get_index(index).map(|(key, _)| key.clone());
            }
            index -= slot.map.len();
        }
        None
    }
}
