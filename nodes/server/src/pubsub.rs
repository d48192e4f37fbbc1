//! Pub/sub subscriptions: which clients listen on which channels and patterns.
//!
//! Every list keeps subscription order (a client's channels, a channel's subscribers), so the
//! order of messages and of `UNSUBSCRIBE`'s confirmations depends only on what clients did.

use std::collections::BTreeMap;

use foldhash::fast::FixedState;
use indexmap::IndexSet;

use crate::glob;
use crate::keyspace::Bulk;

type Ordered<T> = IndexSet<T, FixedState>;

fn ordered<T>() -> Ordered<T> {
    IndexSet::with_hasher(FixedState::with_seed(0))
}

/// One client's subscriptions.
#[derive(Debug)]
pub struct Subscriptions {
    /// Channels, in subscription order.
    pub channels: Ordered<Bulk>,
    /// Patterns, in subscription order.
    pub patterns: Ordered<Bulk>,
}

impl Subscriptions {
    /// Channels and patterns together: the count subscription replies report.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// Who gets a published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// A subscriber of the channel itself (`message`).
    Channel(u64),
    /// A subscriber of a pattern the channel matches (`pmessage`).
    Pattern(u64, Bulk),
}

/// Every subscription of every client.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: BTreeMap<Bulk, Ordered<u64>>,
    patterns: BTreeMap<Bulk, Ordered<u64>>,
    clients: BTreeMap<u64, Subscriptions>,
}

impl PubSub {
    /// How many channels and patterns client `id` is subscribed to.
    pub fn count(&self, id: u64) -> usize {
        self.clients.get(&id).map_or(0, Subscriptions::count)
    }

    /// Client `id`'s subscriptions, if any.
    pub fn of(&self, id: u64) -> Option<&Subscriptions> {
        self.clients.get(&id)
    }

    fn client(&mut self, id: u64) -> &mut Subscriptions {
        self.clients.entry(id).or_insert_with(|| Subscriptions { channels: ordered(), patterns: ordered() })
    }

    fn forget_if_idle(&mut self, id: u64) {
        if self.clients.get(&id).is_some_and(|subscriptions| subscriptions.count() == 0) {
            self.clients.remove(&id);
        }
    }

    /// Subscribes client `id` to `channel`; `false` if it already was.
    pub fn subscribe(&mut self, id: u64, channel: &[u8]) -> bool {
        if !self.client(id).channels.insert(Bulk::from_slice(channel)) {
            return false;
        }
        self.channels.entry(Bulk::from_slice(channel)).or_insert_with(ordered).insert(id);
        true
    }

    /// Unsubscribes client `id` from `channel`; `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, id: u64, channel: &[u8]) -> bool {
        let removed = self.clients.get_mut(&id).is_some_and(|client| client.channels.shift_remove(channel));
        if removed {
            remove_member(&mut self.channels, channel, id);
            self.forget_if_idle(id);
        }
        removed
    }

    /// Subscribes client `id` to `pattern`; `false` if it already was.
    pub fn psubscribe(&mut self, id: u64, pattern: &[u8]) -> bool {
        if !self.client(id).patterns.insert(Bulk::from_slice(pattern)) {
            return false;
        }
        self.patterns.entry(Bulk::from_slice(pattern)).or_insert_with(ordered).insert(id);
        true
    }

    /// Unsubscribes client `id` from `pattern`; `false` if it was not subscribed.
    pub fn punsubscribe(&mut self, id: u64, pattern: &[u8]) -> bool {
        let removed = self.clients.get_mut(&id).is_some_and(|client| client.patterns.shift_remove(pattern));
        if removed {
            remove_member(&mut self.patterns, pattern, id);
            self.forget_if_idle(id);
        }
        removed
    }

    /// Drops every subscription of client `id` (it disconnected).
    pub fn remove_client(&mut self, id: u64) {
        if let Some(client) = self.clients.remove(&id) {
            for channel in &client.channels {
                remove_member(&mut self.channels, channel, id);
            }
            for pattern in &client.patterns {
                remove_member(&mut self.patterns, pattern, id);
            }
        }
    }

    /// Who receives a message on `channel`: its subscribers in subscription order, then each
    /// matching pattern's subscribers.
    pub fn receivers(&self, channel: &[u8]) -> Vec<Receiver> {
        let mut receivers: Vec<Receiver> =
            self.channels.get(channel).into_iter().flatten().map(|id| Receiver::Channel(*id)).collect();
        for (pattern, subscribers) in &self.patterns {
            if glob::matches(pattern, channel, false) {
                receivers.extend(subscribers.iter().map(|id| Receiver::Pattern(*id, pattern.clone())));
            }
        }
        receivers
    }

    /// Channels with at least one subscriber, optionally only those matching `pattern`
    /// (`PUBSUB CHANNELS`).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bulk> {
        self.channels
            .keys()
            .filter(|channel| pattern.is_none_or(|pattern| glob::matches(pattern, channel, false)))
            .cloned()
            .collect()
    }

    /// How many clients subscribe to `channel` (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, IndexSet::len)
    }

    /// How many distinct channels have subscribers (`INFO stats`' `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// How many distinct patterns have subscribers (`PUBSUB NUMPAT`, `pubsub_patterns`).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }
}

/// Removes `id` from the subscribers of `name`, dropping the entry when none remain.
fn remove_member(map: &mut BTreeMap<Bulk, Ordered<u64>>, name: &[u8], id: u64) {
    if let Some(members) = map.get_mut(name) {
        members.shift_remove(&id);
        if members.is_empty() {
            map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_counted_and_dropped_with_the_client() {
        let mut pubsub = PubSub::default();
        assert!(pubsub.subscribe(1, b"news"));
        assert!(!pubsub.subscribe(1, b"news"));
        assert!(pubsub.subscribe(2, b"news"));
        assert!(pubsub.psubscribe(2, b"n*"));
        assert_eq!(pubsub.count(2), 2);
        assert_eq!(
            pubsub.receivers(b"news"),
            vec![Receiver::Channel(1), Receiver::Channel(2), Receiver::Pattern(2, Bulk::from_slice(b"n*"))]
        );
        assert_eq!(pubsub.receivers(b"other"), vec![]);
        pubsub.remove_client(2);
        assert_eq!(pubsub.subscribers(b"news"), 1);
        assert_eq!(pubsub.pattern_count(), 0);
        assert!(pubsub.unsubscribe(1, b"news"));
        assert_eq!(pubsub.channel_count(), 0);
        assert!(pubsub.of(1).is_none());
    }
}
