//! Self-checks the tests and debug builds run: every key charged for what it holds, every
//! index in step with the data.

use model::KeyHash;

use super::{Db, charge, lossy};

impl Db {
    /// Checks that `key`'s memory charge matches what it holds (debug builds run this after every
    /// command, so a command that changes a value without [`Db::touch`] is caught at once).
    pub fn check_charge(&self, key: &[u8]) -> Result<(), String> {
        match self.peek(key) {
            Some(entry) if entry.charged != charge(key.len(), &entry.value) => {
                Err(format!("key '{}' changed without Db::touch", lossy(key)))
            }
            _ => Ok(()),
        }
    }

    /// Checks that the indexes agree with the keys (`SLOTSCHECK`, and tests): every key in the
    /// slot its hash says, every tagged key in the tag index and back, every key with an expiry in
    /// the expiry index and back, and the count right.
    pub fn check(&self) -> Result<(), String> {
        let mut count = 0;
        let mut volatile = 0;
        let mut charged = 0;
        for (index, slot) in self.slots.iter().enumerate() {
            for (key, entry) in slot.map.iter() {
                count += 1;
                charged += entry.charged as usize * 8;
                if entry.charged != charge(key.len(), &entry.value) {
                    return Err(format!("key '{}' changed without its memory being recounted", lossy(key)));
                }
                let hash = KeyHash::of(key);
                if hash.slot().index() != index {
                    return Err(format!("key '{}' is in slot {index}, hashes to {}", lossy(key), hash.slot()));
                }
                if hash.tagged && !slot.tagged.contains(&(hash.crc, key.clone())) {
                    return Err(format!("tagged key '{}' is missing from the tag index", lossy(key)));
                }
                if entry.expire_at != 0 {
                    volatile += 1;
                    if !self.volatile.contains_key(key) {
                        return Err(format!("key '{}' has an expiry but is not in the expiry index", lossy(key)));
                    }
                }
            }
            for (crc, key) in &slot.tagged {
                if !slot.map.contains_key(key) || KeyHash::of(key).crc != *crc {
                    return Err(format!("tag index holds '{}', which is not a key of slot {index}", lossy(key)));
                }
            }
        }
        if count != self.len {
            return Err(format!("key count is {}, but {count} keys exist", self.len));
        }
        if volatile != self.volatile.len() {
            return Err(format!("{} keys in the expiry index, {volatile} keys with an expiry", self.volatile.len()));
        }
        if charged != self.memory.data {
            return Err(format!("entries are charged {charged} bytes, the database counts {}", self.memory.data));
        }
        let tables: usize = self.slots.iter().map(|slot| slot.map.heap_bytes()).sum();
        if tables != self.memory.tables {
            return Err(format!("slot tables take {tables} bytes, the database counts {}", self.memory.tables));
        }
        Ok(())
    }
}
