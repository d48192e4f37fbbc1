//! The slow log and the latency monitor: what operators look at when a server is slow.
//!
//! Durations come from `tokio::time::Instant`, which the simulator virtualises: under simulation
//! a command takes no time at all, so what is logged depends only on the seed.

use std::collections::{BTreeMap, VecDeque};

use crate::keyspace::Bulk;

/// Redis' `SLOWLOG_ENTRY_MAX_ARGC`: more arguments are summarised.
const MAX_ARGS: usize = 32;
/// Redis' `SLOWLOG_ENTRY_MAX_STRING`: longer arguments are cut.
const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowEntry {
    /// Increasing across the server's life (not reset by `SLOWLOG RESET`).
    pub id: u64,
    /// When it ran (Unix seconds).
    pub unix_seconds: u64,
    /// How long it took (microseconds).
    pub micros: u64,
    /// Its arguments, shortened as Redis shortens them.
    pub args: Vec<Bulk>,
    /// The client's address.
    pub addr: String,
    /// The client's name.
    pub name: Bulk,
}

/// The most recent slow commands, newest first.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<SlowEntry>,
    next_id: u64,
}

impl SlowLog {
    /// Records a command, keeping at most `max_len` entries.
    pub fn push(&mut self, mut entry: SlowEntry, max_len: usize) {
        entry.id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    /// The newest `count` entries (all of them for `None`).
    pub fn newest(&self, count: Option<usize>) -> impl Iterator<Item = &SlowEntry> {
        self.entries.iter().take(count.unwrap_or(usize::MAX))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry (ids go on increasing).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Keeps at most `max_len` entries (after `CONFIG SET slowlog-max-len`).
    pub fn truncate(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}

/// A command's arguments as the slow log keeps them: at most 32, the last of which says how many
/// more there were, each at most 128 bytes with a note of how many more it had.
pub fn shorten<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<Bulk> {
    let total = args.len();
    let kept = if total > MAX_ARGS { MAX_ARGS - 1 } else { total };
    let mut shortened: Vec<Bulk> = args
        .take(kept)
        .map(|arg| {
            if arg.len() > MAX_STRING {
                let mut cut = Bulk::from_slice(&arg[..MAX_STRING]);
                cut.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_STRING).as_bytes());
                cut
            } else {
                Bulk::from_slice(arg)
            }
        })
        .collect();
    if total > kept {
        shortened.push(Bulk::from_slice(format!("... ({} more arguments)", total - kept).as_bytes()));
    }
    shortened
}

/// One latency sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySample {
    /// When (Unix seconds).
    pub unix_seconds: u64,
    /// How long (milliseconds).
    pub millis: u64,
}

/// Redis' `LATENCY_TS_LEN`: samples kept per event.
const LATENCY_HISTORY: usize = 160;

/// The latency monitor: for each event, its recent samples (one per second at most, keeping the
/// worst) and the worst ever.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    events: BTreeMap<&'static str, LatencyEvent>,
}

/// One event's record.
#[derive(Debug, Default)]
pub struct LatencyEvent {
    /// Samples, oldest first.
    pub samples: VecDeque<LatencySample>,
    /// The worst sample ever (milliseconds).
    pub max_millis: u64,
}

impl LatencyMonitor {
    /// Records that `event` took `millis` at `unix_seconds`.
    pub fn add(&mut self, event: &'static str, unix_seconds: u64, millis: u64) {
        let record = self.events.entry(event).or_default();
        record.max_millis = record.max_millis.max(millis);
        match record.samples.back_mut() {
            Some(last) if last.unix_seconds == unix_seconds => last.millis = last.millis.max(millis),
            _ => {
                record.samples.push_back(LatencySample { unix_seconds, millis });
                if record.samples.len() > LATENCY_HISTORY {
                    record.samples.pop_front();
                }
            }
        }
    }

    /// Every event with samples, by name.
    pub fn events(&self) -> impl Iterator<Item = (&'static str, &LatencyEvent)> {
        self.events.iter().map(|(name, event)| (*name, event))
    }

    /// One event's record.
    pub fn event(&self, name: &[u8]) -> Option<&LatencyEvent> {
        self.events.iter().find(|(event, _)| event.as_bytes() == name).map(|(_, event)| event)
    }

    /// Forgets the named events (all of them for an empty list); returns how many had samples.
    pub fn reset(&mut self, names: &[&[u8]]) -> usize {
        if names.is_empty() {
            let count = self.events.len();
            self.events.clear();
            return count;
        }
        let before = self.events.len();
        self.events.retain(|event, _| !names.contains(&event.as_bytes()));
        before - self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_shortened_as_redis_does() {
        let long = vec![b'x'; 200];
        let args: Vec<&[u8]> = vec![b"SET", b"k", &long];
        let shortened = shorten(args.into_iter());
        assert_eq!(shortened[2].len(), 128 + "... (72 more bytes)".len());
        let many: Vec<Vec<u8>> = (0..40).map(|index| index.to_string().into_bytes()).collect();
        let shortened = shorten(many.iter().map(Vec::as_slice));
        assert_eq!(shortened.len(), 32);
        assert_eq!(&shortened[31][..], b"... (9 more arguments)");
    }

    #[test]
    fn the_slow_log_keeps_the_newest() {
        let mut log = SlowLog::default();
        for micros in 0..5 {
            let entry =
                SlowEntry { id: 0, unix_seconds: 1, micros, args: vec![], addr: String::new(), name: Bulk::new() };
            log.push(entry, 3);
        }
        let ids: Vec<u64> = log.newest(None).map(|entry| entry.id).collect();
        assert_eq!(ids, [4, 3, 2]);
        log.reset();
        assert!(log.is_empty());
    }

    #[test]
    fn latency_keeps_one_sample_a_second_and_the_worst() {
        let mut monitor = LatencyMonitor::default();
        monitor.add("command", 10, 5);
        monitor.add("command", 10, 9);
        monitor.add("command", 11, 2);
        let event = monitor.event(b"command").expect("recorded");
        assert_eq!(event.samples.len(), 2);
        assert_eq!(event.max_millis, 9);
        assert_eq!(monitor.reset(&[b"other"]), 0);
        assert_eq!(monitor.reset(&[]), 1);
    }
}
