//! Keys in flight: what a migration has sent (or is sending) to another server and will delete
//! once the target has acknowledged it.
//!
//! A key in flight stays readable on the source, but a write to it would be lost: the source
//! deletes its copy when the migration completes, so the write would vanish with it. Codis lets
//! such writes through (its proxy avoids them with `SLOTSMGRT-EXEC-WRAPPER`, but any other client
//! loses data). Here a write to a fenced key waits until the fence is lifted, and then runs
//! against whatever the source holds by then (usually nothing: the key has moved).
//!
//! Fences are tag-aware, as Codis' `batchedObjectIteratorContains`: while a key with hash tag
//! `{t}` is in flight, every key tagged `{t}` in that database counts as in flight, so a
//! multi-key command over one tag never sees half of its keys moved.

use std::collections::BTreeMap;

use model::KeyHash;
use tokio::sync::watch;

use crate::keyspace::Key;

/// Identifies one fence (one migration's set of keys).
pub type FenceId = u64;

/// What a client waiting on a fence waits for: `true` once the fence is lifted (or the sender is
/// gone, which also means it will never be set again).
pub type FenceWait = watch::Receiver<bool>;

/// The keys in flight in every database.
#[derive(Debug, Default)]
pub struct Fences {
    /// Per database: fenced keys, and fenced tag CRCs (of tagged keys only).
    dbs: Vec<DbFences>,
    /// The lifting signal of each active fence.
    lifted: BTreeMap<FenceId, watch::Sender<bool>>,
    next: FenceId,
}

#[derive(Debug, Default)]
struct DbFences {
    keys: BTreeMap<Key, FenceId>,
    tags: BTreeMap<u32, FenceId>,
}

impl Fences {
    /// No fences, for `databases` databases.
    pub fn new(databases: usize) -> Fences {
        Fences { dbs: (0..databases).map(|_| DbFences::default()).collect(), lifted: BTreeMap::new(), next: 1 }
    }

    /// Whether no key is in flight anywhere: the one check every write pays when nothing migrates.
    pub fn is_empty(&self) -> bool {
        self.lifted.is_empty()
    }

    /// Whether database `db` has any key in flight.
    pub fn db_has_fences(&self, db: usize) -> bool {
        self.dbs.get(db).is_some_and(|fences| !fences.keys.is_empty())
    }

    /// Fences `keys` of database `db`; returns the new fence.
    pub fn raise(&mut self, db: usize, keys: &[Key]) -> FenceId {
        let id = self.next;
        self.next += 1;
        self.lifted.insert(id, watch::Sender::new(false));
        if let Some(fences) = self.dbs.get_mut(db) {
            for key in keys {
                fences.keys.insert(key.clone(), id);
                let hash = KeyHash::of(key);
                if hash.tagged {
                    fences.tags.insert(hash.crc, id);
                }
            }
        }
        id
    }

    /// Adds `key` to fence `id` (a batch growing by tag expansion).
    pub fn extend(&mut self, db: usize, id: FenceId, key: &Key) {
        if let Some(fences) = self.dbs.get_mut(db) {
            fences.keys.insert(key.clone(), id);
            let hash = KeyHash::of(key);
            if hash.tagged {
                fences.tags.insert(hash.crc, id);
            }
        }
    }

    /// Lifts fence `id` over `keys` of database `db`, waking every client waiting on it.
    pub fn lift(&mut self, db: usize, id: FenceId, keys: &[Key]) {
        if let Some(fences) = self.dbs.get_mut(db) {
            for key in keys {
                if fences.keys.get(key.as_slice()) == Some(&id) {
                    fences.keys.remove(key.as_slice());
                }
                let hash = KeyHash::of(key);
                if hash.tagged && fences.tags.get(&hash.crc) == Some(&id) {
                    fences.tags.remove(&hash.crc);
                }
            }
        }
        if let Some(lifted) = self.lifted.remove(&id) {
            lifted.send_replace(true);
        }
    }

    /// The fence `key` of database `db` is behind, if any (by the key itself or by its tag).
    pub fn fence_of(&self, db: usize, key: &[u8]) -> Option<FenceId> {
        let fences = self.dbs.get(db)?;
        if let Some(id) = fences.keys.get(key) {
            return Some(*id);
        }
        if fences.tags.is_empty() {
            return None;
        }
        let hash = KeyHash::of(key);
        if hash.tagged { fences.tags.get(&hash.crc).copied() } else { None }
    }

    /// The fence of any key of database `db`, if one exists (commands that write the whole
    /// database wait for all of them, one at a time).
    pub fn any_fence(&self, db: usize) -> Option<FenceId> {
        self.dbs.get(db)?.keys.values().next().copied()
    }

    /// A way to wait for fence `id` to be lifted.
    pub fn wait(&self, id: FenceId) -> Option<FenceWait> {
        self.lifted.get(&id).map(watch::Sender::subscribe)
    }

    /// How many keys are in flight in database `db`.
    pub fn len(&self, db: usize) -> usize {
        self.dbs.get(db).map_or(0, |fences| fences.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        Key::from_slice(text.as_bytes())
    }

    #[test]
    fn a_fence_covers_its_keys_and_their_tags_until_lifted() {
        let mut fences = Fences::new(2);
        assert!(fences.is_empty());
        let keys = [key("plain"), key("{user1}name")];
        let id = fences.raise(0, &keys);
        assert_eq!(fences.fence_of(0, b"plain"), Some(id));
        assert_eq!(fences.fence_of(0, b"{user1}email"), Some(id), "same tag, not yet existing");
        assert_eq!(fences.fence_of(0, b"other"), None);
        assert_eq!(fences.fence_of(1, b"plain"), None, "another database");
        let mut wait = fences.wait(id).expect("active");
        fences.lift(0, id, &keys);
        assert!(*wait.borrow_and_update());
        assert!(fences.is_empty());
        assert_eq!(fences.fence_of(0, b"{user1}email"), None);
    }
}
