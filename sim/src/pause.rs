//! A paused host: what `kill -STOP` does to a process, as far as its peers can tell.
//!
//! The kernel of a stopped process still completes TCP handshakes (connections queue in its
//! listen backlog) and buffers what arrives, but the process reads, writes, accepts and
//! connects nothing until it is continued. Peers see connections that open and then never
//! answer, which is harder on failure detectors than a crash (connections reset at once) or a
//! partition (connects fail or time out): a detector that forgets what it knew when it
//! reconnects is fooled by it.
//!
//! Here a paused host's sockets stop making progress: reads and writes wait, its listener keeps
//! taking connections but hands them over only once resumed, and its own connects wait. Only
//! its network is frozen, not its tasks: its timers still fire, so a timeout it measures across
//! the pause ends as it would the instant a real process is continued, and work that needs no
//! socket goes on (a server's expiry cycle, its append-only log's writes to its disk). What it
//! sends reaches nobody until it is resumed. A real stopped process does none of that work
//! meanwhile; what its peers observe is the same.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Whether a host is paused, shared by every socket of the host across its incarnations.
#[derive(Clone, Debug, Default)]
pub struct PauseGate {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    paused: AtomicBool,
    /// Tasks waiting for the host to be resumed.
    waiting: Mutex<Vec<Waker>>,
}

impl PauseGate {
    /// Stops the host's sockets.
    pub fn pause(&self) {
        let _waiting = self.lock();
        self.inner.paused.store(true, Ordering::SeqCst);
    }

    /// Lets the host's sockets go on, waking everything that waited.
    pub fn resume(&self) {
        let waiting = {
            let mut waiting = self.lock();
            self.inner.paused.store(false, Ordering::SeqCst);
            std::mem::take(&mut *waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }

    /// Whether the host is paused.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }

    /// Ready when the host is not paused; otherwise registers the task to be woken at resume.
    pub fn poll_running(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_paused() {
            return Poll::Ready(());
        }
        // Looked at again under the lock `resume` takes: a resume between the two looks would
        // otherwise leave this task registered after the wake-up and never woken.
        let mut waiting = self.lock();
        if !self.is_paused() {
            return Poll::Ready(());
        }
        if !waiting.iter().any(|waker| waker.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Completes when the host is not paused.
    pub async fn running(&self) {
        std::future::poll_fn(|cx| self.poll_running(cx)).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.inner.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An I/O object of a host that may be paused: every operation waits while it is.
#[derive(Debug)]
pub struct Gated<T> {
    pub(crate) inner: T,
    pub(crate) gate: PauseGate,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Gated<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Gated<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.gate.poll_running(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
