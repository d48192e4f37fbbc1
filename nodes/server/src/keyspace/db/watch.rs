//! Who is told when a key changes: `WATCH` versions, and the clients blocked on a key
//! (`BLPOP`…), woken when a write makes it ready.

use super::{Db, Key, WatchVersion};

impl Db {
    /// Records that `key` changed, for `WATCH` and the snapshot rules (every mutation in
    /// `db/mod.rs` calls it).
    pub(super) fn bump_watch(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.watched.is_empty()
            && let Some(watched) = self.watched.get_mut(key)
        {
            watched.version += 1;
        }
    }

    /// Registers a watcher of `key`; returns the version to compare at `EXEC`.
    pub fn watch(&mut self, key: &[u8]) -> WatchVersion {
        let watched = self.watched.entry(Key::from_slice(key)).or_default();
        watched.watchers += 1;
        WatchVersion { version: watched.version, expiry_deletion: watched.expiry_deletion }
    }

    /// Drops a watcher of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(watched) = self.watched.get_mut(key) {
            watched.watchers = watched.watchers.saturating_sub(1);
            if watched.watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// After the data of two databases was swapped: give the watch registrations back to their
    /// database index and touch every watched key that exists on either side (Redis'
    /// `touchAllWatchedKeysInDb`).
    pub(crate) fn swap_watches(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.watched, &mut other.watched);
        self.touch_watched_existing_in(other);
        other.touch_watched_existing_in(self);
    }

    /// Touches this database's watched keys that exist here or in `other`.
    pub(super) fn touch_watched_existing_in(&mut self, other: &Db) {
        let keys: Vec<Key> =
            self.watched.keys().filter(|key| self.peek(key).is_some() || other.peek(key).is_some()).cloned().collect();
        for key in keys {
            self.bump_watch(&key);
        }
    }

    /// The current version of a watched `key` (`None` if nobody watches it).
    pub fn watched_version(&self, key: &[u8]) -> Option<WatchVersion> {
        self.watched
            .get(key)
            .map(|watched| WatchVersion { version: watched.version, expiry_deletion: watched.expiry_deletion })
    }

    /// Queues `client` among the waiters of `key` (a client waits once per key).
    pub fn add_waiter(&mut self, key: &[u8], client: u64) {
        let queue = self.waiters.entry(Key::from_slice(key)).or_default();
        if !queue.contains(&client) {
            queue.push_back(client);
        }
    }

    /// Removes `client` from the waiters of `key`.
    pub fn remove_waiter(&mut self, key: &[u8], client: u64) {
        if let Some(queue) = self.waiters.get_mut(key) {
            queue.retain(|waiter| *waiter != client);
            if queue.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    /// The clients waiting on `key`, first come first.
    pub fn waiters(&self, key: &[u8]) -> Vec<u64> {
        self.waiters.get(key).map(|queue| queue.iter().copied().collect()).unwrap_or_default()
    }

    /// The keys with waiters created since the last call, in the order they were.
    pub fn take_ready(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.ready)
    }

    /// Whether a key with waiters was created since the last [`Db::take_ready`].
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Notes that `key` was created or replaced, if some client waits on it (Redis'
    /// `signalKeyAsReady`). Whether its value suits the waiters is checked when serving them.
    pub(super) fn signal_ready(&mut self, key: &[u8]) {
        if !self.waiters.is_empty()
            && self.waiters.contains_key(key)
            && !self.ready.iter().any(|ready| ready[..] == *key)
        {
            self.ready.push(Key::from_slice(key));
        }
    }

    /// After `SWAPDB` exchanged two databases' data: give waiters back to their database index
    /// and mark ready every key with waiters that now exists (Redis' `scanDatabaseForReadyKeys`).
    pub(crate) fn swap_waiters(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.waiters, &mut other.waiters);
        std::mem::swap(&mut self.ready, &mut other.ready);
        for db in [self, other] {
            let existing: Vec<Key> = db.waiters.keys().filter(|key| db.peek(key).is_some()).cloned().collect();
            for key in existing {
                db.signal_ready(&key);
            }
        }
    }
}
