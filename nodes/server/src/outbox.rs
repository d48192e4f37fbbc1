//! What one client's commands send to another client's connection: pub/sub messages, and the
//! reply that ends a block (`BLPOP` served by another client's `LPUSH`).
//!
//! Each connection task owns its socket and write buffer, so another client's command, running
//! under the state lock, cannot write there; it posts the already encoded bytes here instead and
//! the owning task writes them in order. The bytes posted but not yet written are counted, so the
//! poster can enforce Redis' output buffer limits on slow consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

/// One delivery to a connection.
#[derive(Debug)]
pub enum Delivery {
    /// Out-of-band data the client did not ask for with its current command (a pub/sub message).
    Push(Bytes),
    /// The reply to the command the client is blocked in.
    Unblocked(Bytes),
}

impl Delivery {
    fn len(&self) -> usize {
        match self {
            Delivery::Push(bytes) | Delivery::Unblocked(bytes) => bytes.len(),
        }
    }
}

/// The sending side, kept in the client registry.
#[derive(Clone, Debug)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Delivery>,
    pending: Arc<AtomicUsize>,
}

/// The receiving side, owned by the connection task.
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::UnboundedReceiver<Delivery>,
    pending: Arc<AtomicUsize>,
}

/// A connected pair.
pub fn channel() -> (Outbox, Inbox) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    (Outbox { sender, pending: pending.clone() }, Inbox { receiver, pending })
}

impl Outbox {
    /// Posts `delivery`. A connection that already ended drops it, as Redis drops output for a
    /// client being freed.
    pub fn send(&self, delivery: Delivery) {
        let len = delivery.len();
        // Counted before sending, so the receiver never subtracts bytes not yet added.
        self.pending.fetch_add(len, Ordering::Relaxed);
        if self.sender.send(delivery).is_err() {
            self.pending.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Bytes posted and not yet written to the socket.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

impl Inbox {
    /// The next delivery; `None` only if every sender is gone (never while the client is
    /// registered).
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.receiver.recv().await
    }

    /// A delivery already waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        self.receiver.try_recv().ok()
    }

    /// Records that `bytes` of deliveries reached the socket.
    pub fn written(&self, bytes: usize) {
        self.pending.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Delivery {
    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Delivery::Push(bytes) | Delivery::Unblocked(bytes) => bytes,
        }
    }
}
