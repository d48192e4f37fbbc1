//! Transactions through the proxy: `MULTI`, `EXEC`, `DISCARD`, `WATCH` and `UNWATCH`, when every
//! key of the transaction is in one slot (Codis refuses them all).
//!
//! The proxy queues the commands itself, answering `+QUEUED`, and refuses a key of another slot
//! with `CROSSSLOT`, as Redis Cluster does. At `EXEC` it sends `MULTI`, the commands and `EXEC` in
//! one write on a backend connection this client owns, to the slot's master. `WATCH` goes on
//! that same connection when it is sent, so the server watches the keys for this client alone,
//! and the connection is never reopened behind the client's back: a lost connection is an error,
//! not a silently forgotten `WATCH`. While its slot migrates a transaction is refused with
//! `TRYAGAIN` (Redis Cluster's answer); if the slot moved to another group since `WATCH`, `EXEC`
//! fails as if a watched key had changed, and the client retries as it must anyway.

use bytes::Bytes;
use model::slot_of;
use net::Env;
use resp::{Request, Version, encode};

use crate::backend::{Acks, Dedicated};
use crate::commands::{self, Kind};
use crate::proxy::Shared;
use crate::router::Route;
use crate::session::lock::unlocked;
use crate::session::reply::{backend_error, error, simple};

/// One client's transaction state.
pub(crate) struct Transaction<E: Env> {
    /// The slot every key so far is in.
    slot: Option<usize>,
    /// Commands queued since `MULTI`; `None` outside one.
    queued: Option<Vec<Request>>,
    /// A command was refused while queueing: `EXEC` answers `EXECABORT`.
    aborted: bool,
    /// `WATCH` was sent on `pinned`.
    watching: bool,
    /// The watched slot moved to another backend: `EXEC` must fail.
    lost: bool,
    /// The connection this client's `WATCH` and transactions use.
    pinned: Option<Dedicated<E>>,
}

impl<E: Env> Default for Transaction<E> {
    fn default() -> Self {
        Transaction { slot: None, queued: None, aborted: false, watching: false, lost: false, pinned: None }
    }
}

/// Commands served by the proxy itself, which cannot run inside a transaction on a backend.
const NOT_IN_MULTI: &[&str] =
    &["AUTH", "HELLO", "SELECT", "SCAN", "SLOTSMAPPING", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE"];

impl<E: Env> Transaction<E> {
    /// Whether the request (its name upper-cased, its route `route`) is this module's to serve:
    /// the transaction commands, and inside `MULTI` everything but `QUIT`.
    pub(crate) fn intercepts(&self, upper: &str, route: commands::Route) -> bool {
        route == commands::Route::Transaction || (self.queued.is_some() && upper != "QUIT")
    }

    /// Whether no transaction is open and nothing is watched (a client may only enter
    /// subscribed mode then).
    pub(crate) fn is_idle(&self) -> bool {
        self.queued.is_none() && !self.watching
    }

    /// Serves one request the transaction intercepts.
    pub(crate) async fn handle(
        &mut self,
        shared: &Shared<E>,
        db: usize,
        version: Version,
        request: &Request,
        upper: &str,
    ) -> Bytes {
        match upper {
            "MULTI" if self.queued.is_some() => error("ERR MULTI calls can not be nested"),
            "MULTI" => {
                self.queued = Some(Vec::new());
                simple("OK")
            }
            "EXEC" => self.exec(shared, db, version).await,
            "DISCARD" if self.queued.is_none() => error("ERR DISCARD without MULTI"),
            "DISCARD" => {
                self.queued = None;
                self.aborted = false;
                self.unwatch().await;
                simple("OK")
            }
            "WATCH" if self.queued.is_some() => {
                self.aborted = true;
                error("ERR WATCH inside MULTI is not allowed")
            }
            "WATCH" => self.watch(shared, db, version, request).await,
            "UNWATCH" if self.queued.is_none() => {
                self.unwatch().await;
                simple("OK")
            }
            _ => self.queue(shared, request, upper),
        }
    }

    /// Checks a command and queues it.
    fn queue(&mut self, shared: &Shared<E>, request: &Request, upper: &str) -> Bytes {
        let info = commands::lookup(upper.as_bytes());
        let refusal = if let Some(refusal) = shared.refusal() {
            Some(error(refusal))
        } else if info.kind == Kind::NotAllowed {
            Some(error(&format!("ERR handle request, command '{upper}' is not allowed")))
        } else if NOT_IN_MULTI.contains(&upper) {
            Some(error(&format!("ERR command '{upper}' is not allowed inside a transaction through the proxy")))
        } else {
            self.join_slots(&commands::routing_keys(info, request)).err()
        };
        if let Some(refusal) = refusal {
            self.aborted = true;
            return refusal;
        }
        if let Some(queued) = &mut self.queued {
            queued.push(request.clone());
        }
        simple("QUEUED")
    }

    /// Makes `keys`' slot the transaction's, or refuses keys of another slot.
    fn join_slots(&mut self, keys: &[&[u8]]) -> Result<(), Bytes> {
        let mut slot = self.slot;
        for key in keys {
            let of_key = slot_of(key).index();
            if slot.is_some_and(|slot| slot != of_key) {
                return Err(error("CROSSSLOT Keys in request don't hash to the same slot"));
            }
            slot = Some(of_key);
        }
        self.slot = slot;
        Ok(())
    }

    /// `WATCH key...`: on the pinned connection to the keys' master.
    async fn watch(&mut self, shared: &Shared<E>, db: usize, version: Version, request: &Request) -> Bytes {
        if request.len() < 2 {
            return error("ERR wrong number of arguments for 'watch' command");
        }
        let before = self.slot;
        if let Err(refusal) = self.join_slots(&request.args().skip(1).collect::<Vec<_>>()) {
            return refusal;
        }
        let slot = self.slot.unwrap_or(0);
        let (in_flight, table) = match unlocked(shared, slot).await {
            Ok(held) => held,
            Err(refusal) => {
                self.slot = before;
                return refusal;
            }
        };
        let reply = match self.pin(shared, db, version, &table[slot]).await {
            Ok(pinned) => pinned.call(&[request.wire().clone()]).await,
            Err(refusal) => {
                self.slot = before;
                return refusal;
            }
        };
        drop(in_flight);
        match reply {
            Ok(mut replies) => {
                self.watching = true;
                replies.pop().unwrap_or_else(|| simple("OK"))
            }
            Err(failure) => {
                self.pinned = None;
                // Whatever was watched before died with the connection.
                self.lost |= self.watching;
                self.slot = before;
                backend_error(&failure)
            }
        }
    }

    /// The pinned connection to `slot`'s master, opened if needed. The caller holds the slot
    /// in flight (see [`unlocked`]), so the route stays current until its reply; the slot must be
    /// settled (not migrating), and a `WATCH` on another backend is lost.
    async fn pin(
        &mut self,
        shared: &Shared<E>,
        db: usize,
        version: Version,
        route: &Route,
    ) -> Result<&mut Dedicated<E>, Bytes> {
        if route.migrate_from.is_some() {
            return Err(error("TRYAGAIN the slot is migrating, retry the transaction"));
        }
        let Some(backend) = &route.backend else {
            return Err(error("ERR handle request, slot is not ready, may be offline"));
        };
        if self.pinned.as_ref().is_some_and(|pinned| pinned.addr() != backend.addr()) {
            self.pinned = None;
            self.lost |= self.watching;
        }
        if self.pinned.is_none() {
            let pool = shared.router.pool();
            match Dedicated::open(pool.env(), backend.addr(), db, version, pool.options()).await {
                Ok(opened) => self.pinned = Some(opened),
                Err(failure) => return Err(backend_error(&failure)),
            }
        }
        self.pinned.as_mut().ok_or_else(|| error("ERR handle request, backend conn closed"))
    }

    /// `EXEC`: the queued commands, atomically on the slot's master.
    async fn exec(&mut self, shared: &Shared<E>, db: usize, version: Version) -> Bytes {
        let Some(queued) = self.queued.take() else {
            return error("ERR EXEC without MULTI");
        };
        let aborted = std::mem::take(&mut self.aborted);
        if aborted || self.lost {
            self.unwatch().await;
            if aborted {
                return error("EXECABORT Transaction discarded because of previous errors.");
            }
            return watch_failed(version);
        }
        let slot = self.slot.unwrap_or(0);
        // Counted in flight until EXEC's reply: a slot table change waits for it.
        let (in_flight, table) = match unlocked(shared, slot).await {
            Ok(held) => held,
            Err(refusal) => {
                self.unwatch().await;
                return refusal;
            }
        };
        if let Err(refusal) = self.pin(shared, db, version, &table[slot]).await.map(|_| ()) {
            self.unwatch().await;
            return refusal;
        }
        if self.lost {
            // The slot moved since WATCH: as if a watched key changed.
            self.unwatch().await;
            return watch_failed(version);
        }
        let mut wires = Vec::with_capacity(queued.len() + 2);
        wires.push(Request::from_args([&b"MULTI"[..]]).wire().clone());
        wires.extend(queued.iter().map(|request| request.wire().clone()));
        wires.push(Request::from_args([&b"EXEC"[..]]).wire().clone());
        // In synchronous mode a transaction is answered once its replicas have what it wrote
        // and read.
        let acks = Some(table[slot].slot.sync_replicas)
            .filter(|replicas| *replicas > 0)
            .map(|replicas| Acks { replicas, timeout: shared.config.backend_sync_timeout });
        if let Some(acks) = acks {
            wires.push(acks.wait_wire());
        }
        let Some(pinned) = self.pinned.as_mut() else {
            return error("ERR handle request, backend conn closed");
        };
        let reply = pinned.call(&wires).await;
        drop(in_flight);
        // EXEC ends the WATCH on the server either way.
        self.watching = false;
        self.slot = None;
        match reply {
            Ok(mut replies) => {
                let wait = if acks.is_some() { replies.pop() } else { None };
                let exec = replies.pop().unwrap_or_else(|| error("ERR handle response, no reply to EXEC"));
                match (acks, wait) {
                    // A transaction that did not run (a watched key changed) writes nothing.
                    (Some(acks), Some(wait)) if !exec.starts_with(b"*-1") && !exec.starts_with(b"_") => {
                        acks.answer(exec, &wait)
                    }
                    _ => exec,
                }
            }
            Err(failure) => {
                self.pinned = None;
                backend_error(&failure)
            }
        }
    }

    /// Forgets what was watched (`UNWATCH` on the pinned connection).
    async fn unwatch(&mut self) {
        if self.watching
            && let Some(pinned) = &mut self.pinned
            && pinned.call(&[Request::from_args([&b"UNWATCH"[..]]).wire().clone()]).await.is_err()
        {
            self.pinned = None;
        }
        self.watching = false;
        self.lost = false;
        if self.queued.is_none() {
            self.slot = None;
        }
    }
}

/// `EXEC`'s reply when a watched key changed (or its slot moved): a null array.
fn watch_failed(version: Version) -> Bytes {
    let mut out = bytes::BytesMut::new();
    encode::write_null_array(&mut out, version);
    out.freeze()
}
