//! The faults a schedule can inject.

use std::fmt;
use std::time::Duration;

/// Something that happens to the simulated world at a point in simulated time.
///
/// Hosts are named as registered with the harness. Partitions drop messages (a TCP stream that
/// lost a segment stays wedged even after repair, so components must time out and reconnect, as
/// over a real lossy network); holds delay them until released; a crash kills a host's software
/// (its peers see the connections reset, as when a process is killed); a restart starts it again
/// with whatever durable state its software factory captured.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Drop everything between two hosts, both ways.
    Partition(String, String),
    /// Drop everything sent by `from` to `to`; the other direction still flows.
    PartitionOneWay {
        /// The sender whose messages are dropped.
        from: String,
        /// The receiver that no longer hears it.
        to: String,
    },
    /// Undo a partition, both ways.
    Repair(String, String),
    /// Undo a one-way partition.
    RepairOneWay {
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
    },
    /// Queue every message between two hosts, both ways, until released.
    Hold(String, String),
    /// Deliver what a hold queued, and stop holding.
    Release(String, String),
    /// Kill a host's software.
    Crash(String),
    /// Start a host's software again (killing it first if it is running).
    Restart(String),
    /// Stop a host as `kill -STOP` does: connections to it still open, but it reads, writes,
    /// accepts and connects nothing until resumed (see [`crate::pause`]).
    Pause(String),
    /// Let a paused host go on (`kill -CONT`).
    Resume(String),
    /// Fix the latency of every message between two hosts.
    Latency {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// The latency each message gets.
        latency: Duration,
    },
    /// Make a link flap: partitioned and repaired in turn, each phase lasting a seeded random
    /// time around `period`, until `duration` has passed; the link ends repaired.
    Flap {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// The mean length of one down or up phase.
        period: Duration,
        /// How long the flapping lasts.
        duration: Duration,
    },
    /// Repair every partition and release every hold.
    HealAll,
}

impl Fault {
    /// The hosts this fault names, to check against the registered ones before a run starts.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Fault::Partition(a, b)
            | Fault::Repair(a, b)
            | Fault::Hold(a, b)
            | Fault::Release(a, b)
            | Fault::Latency { a, b, .. }
            | Fault::Flap { a, b, .. } => vec![a, b],
            Fault::PartitionOneWay { from, to } | Fault::RepairOneWay { from, to } => {
                vec![from, to]
            }
            Fault::Crash(host) | Fault::Restart(host) | Fault::Pause(host) | Fault::Resume(host) => vec![host],
            Fault::HealAll => vec![],
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(a, b) => write!(f, "partition {a} <-> {b}"),
            Fault::PartitionOneWay { from, to } => write!(f, "partition {from} -> {to}"),
            Fault::Repair(a, b) => write!(f, "repair {a} <-> {b}"),
            Fault::RepairOneWay { from, to } => write!(f, "repair {from} -> {to}"),
            Fault::Hold(a, b) => write!(f, "hold {a} <-> {b}"),
            Fault::Release(a, b) => write!(f, "release {a} <-> {b}"),
            Fault::Crash(host) => write!(f, "crash {host}"),
            Fault::Restart(host) => write!(f, "restart {host}"),
            Fault::Pause(host) => write!(f, "pause {host}"),
            Fault::Resume(host) => write!(f, "resume {host}"),
            Fault::Latency { a, b, latency } => {
                write!(f, "latency {a} <-> {b} = {} ms", latency.as_millis())
            }
            Fault::Flap { a, b, period, duration } => {
                write!(f, "flap {a} <-> {b} every ~{} ms for {} ms", period.as_millis(), duration.as_millis())
            }
            Fault::HealAll => write!(f, "heal all links"),
        }
    }
}
