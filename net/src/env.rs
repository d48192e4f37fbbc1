//! The traits components are written against.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::disk::Disk;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::seed::Rng;

/// Everything a component needs from the world it runs in.
///
/// Cheap to clone (components hand a copy to every task they spawn). Two backends exist: the
/// production one ([`crate::TokioEnv`]) and the simulated one in the `sim` crate. A component must
/// not reach around this trait for sockets, wall-clock time, OS randomness or threads; `clippy.toml`
/// rejects the usual ways of doing so.
pub trait Env: Clone + Send + Sync + 'static {
    /// A connected byte stream.
    type Stream: Stream;
    /// A bound listening socket that yields [`Env::Stream`]s.
    type Listener: Listener<Stream = Self::Stream>;
    /// Where files that must outlive the process go.
    type Disk: Disk;

    /// Binds a listener on `addr` (`"0.0.0.0:6379"`, `"127.0.0.1:0"`).
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Connects to `addr` (`"host:port"`), giving up with [`io::ErrorKind::TimedOut`] after
    /// `timeout`. Every connect has a deadline because a simulated partition (like a real
    /// black-holed route) can leave a connect hanging forever.
    fn connect(&self, addr: &str, timeout: Duration) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// The disk: the machine's file system in production; in the simulator, the host's own disk,
    /// which survives the host's restarts and loses, in a crash, whatever was not synced.
    fn disk(&self) -> Self::Disk;

    /// Wall-clock milliseconds since the Unix epoch, for things that are absolute in time:
    /// `EXPIREAT`, `TIME`, timestamps stored in the coordinator. Durations and deadlines use
    /// `tokio::time::Instant` instead.
    fn unix_millis(&self) -> u64;

    /// A random stream for the consumer named `label`.
    ///
    /// Streams are derived from the environment's seed and the label alone, so adding a consumer
    /// never shifts the numbers another consumer sees, and the same label always yields the same
    /// stream within one environment: give each independent consumer its own label
    /// (`"session-17"`, `"migration-jitter"`).
    fn rng(&self, label: &str) -> Rng;

    /// Starts a task. Dropping the handle detaches the task; aborting it cancels the task.
    fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// What the process uses of the machine (`INFO memory`'s `used_memory_rss`, `INFO cpu`), or
    /// `None` where a component has no process of its own to measure (simulated hosts share one).
    fn process_usage(&self) -> Option<ProcessUsage>;

    /// The fault hook ("buggify", after FoundationDB): `true` when the simulator wants the code at
    /// `site` to take its rare, unlucky path (a short read, an early timeout, a dropped reply).
    /// Always `false` in production, where it inlines away.
    fn buggify(&self, site: &'static str) -> bool;
}

/// A process' use of the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    /// Resident memory, in bytes.
    pub resident_bytes: u64,
    /// CPU time spent in user mode, in microseconds.
    pub user_cpu_micros: u64,
    /// CPU time spent in the kernel, in microseconds.
    pub system_cpu_micros: u64,
}

/// A listening socket.
pub trait Listener: Send + Sync + 'static {
    /// The stream type accepted connections arrive as.
    type Stream: Stream;

    /// Waits for the next connection. Streams come with Nagle's algorithm disabled, as every
    /// request/response peer of ours wants.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address actually bound (useful after binding port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A connected, bidirectional byte stream.
///
/// Splitting into owned halves lets a connection read and write from two tasks without a lock
/// (the proxy reads a client's pipeline while it flushes earlier replies).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The reading half after [`Stream::into_split`].
    type ReadHalf: AsyncRead + Unpin + Send + 'static;
    /// The writing half after [`Stream::into_split`].
    type WriteHalf: AsyncWrite + Unpin + Send + 'static;

    /// Splits the stream into independently owned halves.
    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf);

    /// The address of the remote end.
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// The address of the local end.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Turns on TCP keep-alive probes after `idle` without traffic, so a peer that vanished
    /// (powered off, cable cut) is noticed. The simulated network has no such probes: its
    /// partitions are found by the components' own timeouts, so there it does nothing.
    fn set_keepalive(&self, idle: Duration) -> io::Result<()> {
        let _ = idle;
        Ok(())
    }
}

/// The error a backend returns when [`Env::connect`] runs out of time; shared so both backends
/// word it the same way.
pub fn connect_timed_out(addr: &str, timeout: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr} timed out after {} ms", timeout.as_millis()))
}
