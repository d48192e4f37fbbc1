//! A map of keys, like one slot's keys: an insertion-ordered vector of entries and a hash index of
//! positions into it, like `IndexMap`, but sized for a keyspace of millions of keys.
//!
//! It differs from `IndexMap` in three ways that matter for memory per key (the figure Redis
//! users compare): the index holds 4-byte positions instead of 8 (a slot never holds 4 billion
//! keys), the entries do not store their hash (it is recomputed on the rare rehash), and the
//! entry vector grows by a quarter instead of following the index's capacity (which doubles, so
//! `IndexMap` can hold 1.8 times the room its keys need). With 1,000,000 keys that is about 70
//! bytes a key less.
//!
//! Positions are what `SCAN`-like walks and random sampling use, so removal swaps the last entry
//! into the hole, as `IndexMap::swap_remove` does. Iteration is in vector order, which depends
//! only on the sequence of operations: deterministic in simulation.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::key::Key;
use super::memory::allocation;

/// Keys and their values (`Entry` for a slot's keys, `()` for the index of keys with an expiry).
#[derive(Clone, Debug)]
pub struct KeyMap<V> {
    entries: Vec<(Key, V)>,
    index: HashTable<u32>,
    hasher: FixedState,
}

impl<V> KeyMap<V> {
    /// An empty map hashing with `hasher`.
    pub fn with_hasher(hasher: FixedState) -> KeyMap<V> {
        KeyMap { entries: Vec::new(), index: HashTable::new(), hasher }
    }

    /// The hasher, to make an empty map like this one.
    pub fn hasher(&self) -> &FixedState {
        &self.hasher
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes of the entry vector and the index, as `malloc` hands them out.
    pub fn heap_bytes(&self) -> usize {
        let entries = allocation(self.entries.capacity() * std::mem::size_of::<(Key, V)>());
        let capacity = self.index.capacity();
        if capacity == 0 {
            return entries;
        }
        // hashbrown keeps 7/8 of a power of two of buckets usable (all but one below 8), stores
        // the 4-byte positions first (padded to 16), then a control byte per bucket and 16 more.
        let buckets = if capacity < 8 { capacity + 1 } else { capacity / 7 * 8 };
        entries + allocation((buckets * std::mem::size_of::<u32>()).next_multiple_of(16) + buckets + 16)
    }

    fn hash(hasher: &FixedState, key: &[u8]) -> u64 {
        hasher.hash_one(key)
    }

    /// The position of `key`.
    pub fn get_index_of(&self, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(Self::hash(&self.hasher, key), |&position| entries[position as usize].0.as_slice() == key)
            .map(|&position| position as usize)
    }

    /// The entry of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.get_index_of(key).map(|position| &self.entries[position].1)
    }

    /// The entry of `key`, to change.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.get_index_of(key).map(|position| &mut self.entries[position].1)
    }

    /// The stored key and entry of `key`.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Key, &V)> {
        self.get_index_of(key).map(|position| (&self.entries[position].0, &self.entries[position].1))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get_index_of(key).is_some()
    }

    /// The key and entry at `position`.
    pub fn get_index(&self, position: usize) -> Option<(&Key, &V)> {
        self.entries.get(position).map(|(key, entry)| (key, entry))
    }

    /// The key and entry at `position`, the entry to change.
    pub fn get_index_mut(&mut self, position: usize) -> Option<(&Key, &mut V)> {
        self.entries.get_mut(position).map(|(key, entry)| (&*key, entry))
    }

    /// Adds `key`, which must not be present. Returns its position.
    pub fn insert_new(&mut self, key: Key, entry: V) -> usize {
        debug_assert!(!self.contains_key(&key), "insert_new of a present key");
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact((self.entries.len() / 4).max(4));
        }
        let position = self.entries.len();
        // Positions are 4 bytes: 4 billion keys would take hundreds of gigabytes first.
        let position_u32 = u32::try_from(position).unwrap_or(u32::MAX);
        let hasher = &self.hasher;
        let entries = &self.entries;
        self.index.insert_unique(Self::hash(hasher, &key), position_u32, |&other| {
            Self::hash(hasher, &entries[other as usize].0)
        });
        self.entries.push((key, entry));
        position
    }

    /// Removes `key`, moving the last entry into its position.
    pub fn swap_remove_entry(&mut self, key: &[u8]) -> Option<(Key, V)> {
        let entries = &self.entries;
        let found = self
            .index
            .find_entry(Self::hash(&self.hasher, key), |&position| entries[position as usize].0.as_slice() == key)
            .ok()?;
        let (position, _) = found.remove();
        let position = position as usize;
        let last = self.entries.len() - 1;
        let removed = self.entries.swap_remove(position);
        if position != last {
            let moved = Self::hash(&self.hasher, &self.entries[position].0);
            if let Some(slot) = self.index.find_mut(moved, |&other| other as usize == last) {
                *slot = position as u32;
            }
        }
        Some(removed)
    }

    /// The keys, in position order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.entries.iter().map(|(key, _)| key)
    }

    /// The keys and entries, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.entries.iter().map(|(key, entry)| (key, entry))
    }

    /// Gives back the room that removed keys left.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        let hasher = &self.hasher;
        let entries = &self.entries;
        self.index.shrink_to_fit(|&position| Self::hash(hasher, &entries[position as usize].0));
    }
}

impl<V> std::ops::Index<usize> for KeyMap<V> {
    type Output = V;

    fn index(&self, position: usize) -> &V {
        &self.entries[position].1
    }
}

impl<V> std::ops::IndexMut<usize> for KeyMap<V> {
    fn index_mut(&mut self, position: usize) -> &mut V {
        &mut self.entries[position].1
    }
}

/// One slot's keys and their entries.
pub type SlotMap = KeyMap<super::value::Entry>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::value::{Entry, Str, Value};

    fn entry(value: &[u8]) -> Entry {
        Entry { value: Value::Str(Str::from_value(value)), expire_at: 0, accessed: 0, charged: 0 }
    }

    #[test]
    fn positions_stay_consistent_through_swap_removal() {
        let mut map = KeyMap::with_hasher(FixedState::with_seed(7));
        for index in 0..1000u32 {
            let key = Key::from_slice(format!("k{index}").as_bytes());
            assert_eq!(map.insert_new(key, entry(b"v")), index as usize);
        }
        for index in (0..1000).step_by(3) {
            let key = format!("k{index}");
            let (removed, _) = map.swap_remove_entry(key.as_bytes()).expect("present");
            assert_eq!(removed.as_slice(), key.as_bytes());
            assert!(map.swap_remove_entry(key.as_bytes()).is_none());
        }
        assert_eq!(map.len(), 666);
        for position in 0..map.len() {
            let (key, _) = map.get_index(position).expect("in range");
            assert_eq!(map.get_index_of(key), Some(position));
        }
        for index in 0..1000 {
            assert_eq!(map.contains_key(format!("k{index}").as_bytes()), index % 3 != 0);
        }
        map.shrink_to_fit();
        assert_eq!(map.get_index_of(b"k1"), map.keys().position(|key| key.as_slice() == b"k1"));
    }

    #[test]
    fn the_entry_vector_grows_by_a_quarter() {
        let mut map = KeyMap::with_hasher(FixedState::with_seed(7));
        for index in 0..977u32 {
            map.insert_new(Key::from_slice(&index.to_le_bytes()), entry(b"v"));
        }
        assert!(map.entries.capacity() <= 977 * 5 / 4, "{}", map.entries.capacity());
    }
}
