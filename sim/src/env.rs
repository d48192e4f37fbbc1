//! The turmoil backend of `net::Env`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use net::env::connect_timed_out;
use net::{Env, Listener, Rng, Stream, rng_from_seed};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::buggify::Buggify;
use crate::disk::SimDisk;
use crate::pause::{Gated, PauseGate};

/// The environment of a component running on a simulated host.
///
/// Sockets are turmoil's, the wall clock is the simulation's epoch plus simulated time, and random
/// streams derive from the run's seed, the host's name and its incarnation (how many times it has
/// been started), so a restarted host draws fresh numbers, as a restarted process would.
#[derive(Clone, Debug)]
pub struct SimEnv {
    host: Arc<str>,
    seed: u64,
    buggify: Arc<Mutex<Buggify>>,
    disk: SimDisk,
    gate: PauseGate,
}

impl SimEnv {
    /// The environment of incarnation `incarnation` of `host` in the run seeded `run_seed`, with
    /// the host's `disk` (the same one at every incarnation).
    pub fn new(run_seed: u64, host: &str, incarnation: u32, buggify: bool, disk: SimDisk) -> Self {
        let seed = net::derive_seed(net::derive_seed(run_seed, host), &incarnation.to_string());
        let coin = rng_from_seed(seed, "buggify");
        let buggify = Arc::new(Mutex::new(Buggify::new(buggify, coin)));
        Self { host: host.into(), seed, buggify, disk, gate: PauseGate::default() }
    }

    /// The same environment on a host that `gate` pauses and resumes (see [`crate::pause`]).
    pub fn with_pause_gate(mut self, gate: PauseGate) -> Self {
        self.gate = gate;
        self
    }

    /// The simulated host this environment belongs to.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl Env for SimEnv {
    type Stream = SimStream;
    type Listener = SimListener;
    type Disk = SimDisk;

    fn disk(&self) -> SimDisk {
        self.disk.clone()
    }

    async fn bind(&self, addr: &str) -> io::Result<SimListener> {
        let listener = turmoil::net::TcpListener::bind(addr).await?;
        Ok(SimListener { inner: listener, gate: self.gate.clone(), backlog: Mutex::default() })
    }

    async fn connect(&self, addr: &str, timeout: Duration) -> io::Result<SimStream> {
        // turmoil resolves host names through its own DNS; a connect to a crashed or held host
        // hangs until the deadline, as a connect into a black hole would. A paused host's own
        // connects wait for it to be resumed (its timers still run).
        let connect = async {
            self.gate.running().await;
            turmoil::net::TcpStream::connect(addr).await
        };
        let stream = tokio::time::timeout(timeout, connect).await.map_err(|_| connect_timed_out(addr, timeout))??;
        Ok(SimStream { inner: stream, gate: self.gate.clone() })
    }

    fn unix_millis(&self) -> u64 {
        let since_epoch = turmoil::since_epoch().unwrap_or_default();
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
        // Onto the host's `LocalSet`, not the runtime: a crash drops the host's tasks, and with
        // them its sockets, whose closing messages draw their network latency from the run's
        // random stream in the order they are sent. A runtime shuts tasks down in an order
        // derived from tokio's process-wide task ids, which differ between two runs in one
        // process; a `LocalSet` drops its tasks in list order, which follows spawn order, which
        // follows the seed.
        tokio::task::spawn_local(task)
    }

    fn process_usage(&self) -> Option<net::ProcessUsage> {
        None
    }

    fn buggify(&self, site: &'static str) -> bool {
        // A poisoned lock means a panic already failed the run; firing or not no longer matters.
        let fired = self.buggify.lock().map(|mut coin| coin.fire(site)).unwrap_or(false);
        if fired {
            // In the trace, so a run's unlucky paths can be told from the faults it was dealt.
            tracing::debug!(site, "buggify fired");
        }
        fired
    }
}

/// A simulated listening socket. While its host is paused it keeps taking connections (the
/// kernel's backlog) and hands them over once the host is resumed.
pub struct SimListener {
    inner: turmoil::net::TcpListener,
    gate: PauseGate,
    backlog: Mutex<std::collections::VecDeque<(turmoil::net::TcpStream, SocketAddr)>>,
}

impl std::fmt::Debug for SimListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimListener").field(&self.inner.local_addr().ok()).finish()
    }
}

impl SimListener {
    fn backlog(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(turmoil::net::TcpStream, SocketAddr)>> {
        self.backlog.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Listener for SimListener {
    type Stream = SimStream;

    async fn accept(&self) -> io::Result<(SimStream, SocketAddr)> {
        loop {
            if self.gate.is_paused() {
                tokio::select! {
                    biased;
                    () = self.gate.running() => {}
                    accepted = self.inner.accept() => {
                        let accepted = accepted?;
                        self.backlog().push_back(accepted);
                    }
                }
                continue;
            }
            let queued = self.backlog().pop_front();
            let (stream, peer) = match queued {
                Some(queued) => queued,
                None => {
                    let accepted = self.inner.accept().await?;
                    if self.gate.is_paused() {
                        self.backlog().push_back(accepted);
                        continue;
                    }
                    accepted
                }
            };
            return Ok((SimStream { inner: stream, gate: self.gate.clone() }, peer));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A simulated TCP stream, stopped while its host is paused.
#[derive(Debug)]
pub struct SimStream {
    inner: turmoil::net::TcpStream,
    gate: PauseGate,
}

impl Stream for SimStream {
    type ReadHalf = Gated<OwnedReadHalf>;
    type WriteHalf = Gated<OwnedWriteHalf>;

    fn into_split(self) -> (Gated<OwnedReadHalf>, Gated<OwnedWriteHalf>) {
        let (read, write) = self.inner.into_split();
        (Gated { inner: read, gate: self.gate.clone() }, Gated { inner: write, gate: self.gate })
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
