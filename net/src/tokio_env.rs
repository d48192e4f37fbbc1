//! The production backend: real sockets, the real clock, OS-seeded randomness.
//!
//! This file and the simulator's backend are the only places allowed to touch the real world, so
//! the `clippy.toml` bans are lifted here, item by item, with the reason next to each.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
#[allow(clippy::disallowed_types)] // the production backend owns the real sockets
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::env::{Env, Listener, ProcessUsage, Stream, connect_timed_out};
use crate::seed::{Rng, rng_from_seed};
use crate::tokio_disk::OsDisk;

/// The environment of production binaries: tokio's network and runtime, the system clock.
///
/// Its seed comes from the OS unless given, so two production processes do not share random
/// choices; tests that want a reproducible production run pass one with [`TokioEnv::with_seed`].
#[derive(Clone, Debug)]
pub struct TokioEnv {
    seed: u64,
}

impl TokioEnv {
    /// An environment seeded from the operating system's randomness.
    pub fn new() -> io::Result<Self> {
        let mut bytes = [0u8; 8];
        #[allow(clippy::disallowed_methods)] // the one place production randomness is seeded
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        Ok(Self::with_seed(u64::from_le_bytes(bytes)))
    }

    /// An environment whose random streams are fixed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self { seed }
    }

    /// The seed the random streams derive from (logged at start so a run can be described).
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

#[allow(clippy::disallowed_types)] // the production backend owns the real sockets
impl Env for TokioEnv {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Disk = OsDisk;

    fn disk(&self) -> OsDisk {
        OsDisk
    }

    async fn bind(&self, addr: &str) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: &str, timeout: Duration) -> io::Result<TcpStream> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_timed_out(addr, timeout))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn unix_millis(&self) -> u64 {
        #[allow(clippy::disallowed_methods, clippy::disallowed_types)] // the real wall clock
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }

    fn rng(&self, label: &str) -> Rng {
        rng_from_seed(self.seed, label)
    }

    fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(task)
    }

    fn process_usage(&self) -> Option<ProcessUsage> {
        // Linux reports both in /proc; elsewhere there is no cheap equivalent, and `None` says so.
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        // /proc/self/stat: after the parenthesised command name, utime and stime are fields 12
        // and 13, in clock ticks of 1/100 s (Linux' USER_HZ on every architecture).
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
        Some(ProcessUsage {
            resident_bytes: kilobytes * 1024,
            user_cpu_micros: ticks(11)? * 10_000,
            system_cpu_micros: ticks(12)? * 10_000,
        })
    }

    #[inline(always)]
    fn buggify(&self, _site: &'static str) -> bool {
        false
    }
}

#[allow(clippy::disallowed_types)] // the production backend owns the real sockets
impl Listener for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

#[allow(clippy::disallowed_types)] // the production backend owns the real sockets
impl Stream for TcpStream {
    type ReadHalf = OwnedReadHalf;
    type WriteHalf = OwnedWriteHalf;

    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        TcpStream::into_split(self)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::local_addr(self)
    }

    fn set_keepalive(&self, idle: Duration) -> io::Result<()> {
        socket2::SockRef::from(self).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))
    }
}
