//! The proxy's counters: totals, and per command its calls, failures, time spent and a latency
//! histogram, for `/proxy/stats` (Codis' shape) and `/metrics` (Prometheus).
//!
//! Sessions count into a [`Recorder`] of their own and merge it into the shared [`Stats`] once
//! per batch of requests: one uncontended lock per batch instead of shared counters per request.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram's buckets, in microseconds (a last bucket counts the
/// rest).
pub const BUCKETS_US: [u64; 14] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000];

/// Distinct command names tracked one by one; past this, further names count as `OTHER` (a
/// client sending random names must not grow the proxy's memory).
const MAX_NAMES: usize = 512;

/// One command's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// Requests answered.
    pub calls: u64,
    /// Replies that were errors.
    pub fails: u64,
    /// Microseconds from reading the request's batch to its reply, summed.
    pub usecs: u64,
    /// How many replies took at most each of [`BUCKETS_US`], one more for the rest (not
    /// cumulative).
    pub buckets: [u64; BUCKETS_US.len() + 1],
}

impl CommandStats {
    fn observe(&mut self, usecs: u64, failed: bool) {
        self.calls += 1;
        self.fails += u64::from(failed);
        self.usecs += usecs;
        let bucket = BUCKETS_US.iter().position(|bound| usecs <= *bound).unwrap_or(BUCKETS_US.len());
        self.buckets[bucket] += 1;
    }

    fn merge(&mut self, other: &CommandStats) {
        self.calls += other.calls;
        self.fails += other.fails;
        self.usecs += other.usecs;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }
}

/// What every session counts into.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub ops_total: AtomicU64,
    /// Replies that were errors.
    pub ops_fails: AtomicU64,
    /// Sessions accepted since start.
    pub sessions_total: AtomicU64,
    /// Requests per second over the last second (sampled by the proxy's ticker).
    pub qps: AtomicU64,
    commands: Mutex<BTreeMap<String, CommandStats>>,
}

impl Stats {
    /// Every command's counters, by upper-cased name.
    pub fn commands(&self) -> BTreeMap<String, CommandStats> {
        self.commands.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Zeroes the request counters (`stats/reset`); sessions counts stay.
    pub fn reset(&self) {
        self.ops_total.store(0, Ordering::Relaxed);
        self.ops_fails.store(0, Ordering::Relaxed);
        self.commands.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// One session's counts since it last merged them.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    commands: BTreeMap<String, CommandStats>,
    ops: u64,
    fails: u64,
}

impl Recorder {
    /// Counts one reply to `name` (upper-cased; empty for a name too long to be a command).
    pub(crate) fn record(&mut self, name: &str, usecs: u64, reply: &[u8]) {
        let failed = reply.first() == Some(&b'-');
        self.ops += 1;
        self.fails += u64::from(failed);
        let name = if name.is_empty() { "OTHER" } else { name };
        match self.commands.get_mut(name) {
            Some(stats) => stats.observe(usecs, failed),
            None => {
                let mut stats = CommandStats::default();
                stats.observe(usecs, failed);
                self.commands.insert(name.to_string(), stats);
            }
        }
    }

    /// Adds the counts to `stats` and starts again.
    pub(crate) fn merge_into(&mut self, stats: &Stats) {
        if self.ops == 0 {
            return;
        }
        stats.ops_total.fetch_add(self.ops, Ordering::Relaxed);
        if self.fails > 0 {
            stats.ops_fails.fetch_add(self.fails, Ordering::Relaxed);
        }
        self.ops = 0;
        self.fails = 0;
        let mut shared = stats.commands.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, mine) in &mut self.commands {
            if mine.calls == 0 {
                continue;
            }
            let full = shared.len() >= MAX_NAMES;
            match shared.get_mut(name.as_str()) {
                Some(total) => total.merge(mine),
                None if full => shared.entry("OTHER".to_string()).or_default().merge(mine),
                None => {
                    shared.insert(name.clone(), mine.clone());
                }
            }
            *mine = CommandStats::default();
        }
        // A session keeps at most the names it uses; a client cycling names does not grow it.
        if self.commands.len() > MAX_NAMES {
            self.commands.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_counted_per_command_into_latency_buckets() {
        let stats = Stats::default();
        let mut recorder = Recorder::default();
        recorder.record("GET", 90, b"$1\r\nv\r\n");
        recorder.record("GET", 2_000, b"-ERR x\r\n");
        recorder.record("", 10_000_000, b"+OK\r\n");
        recorder.merge_into(&stats);
        recorder.record("GET", 100, b"$-1\r\n");
        recorder.merge_into(&stats);
        assert_eq!(stats.ops_total.load(Ordering::Relaxed), 4);
        assert_eq!(stats.ops_fails.load(Ordering::Relaxed), 1);
        let commands = stats.commands();
        let get = &commands["GET"];
        assert_eq!((get.calls, get.fails, get.usecs), (3, 1, 2_190));
        assert_eq!(get.buckets[0], 2, "90 and 100 µs are in the first bucket");
        assert_eq!(get.buckets[4], 1, "2 ms is in the 2.5 ms bucket");
        assert_eq!(commands["OTHER"].buckets[BUCKETS_US.len()], 1, "10 s is past every bound");
        stats.reset();
        assert!(stats.commands().is_empty());
    }
}
