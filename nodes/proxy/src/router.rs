//! The slot table: for each of the 1024 slots, the backend that serves it and, while it
//! migrates, the one it comes from.
//!
//! Sessions read the table once per batch of requests (an `Arc` clone); `fillslots` builds a new
//! table and swaps it in, and bumps a version that sessions holding requests for a locked slot
//! wait on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use model::{ForwardMethod, MAX_SLOT_NUM, Slot, SlotId};
use net::Env;
use tokio::sync::{Notify, watch};

use crate::backend::{Backend, Health, Pool};

/// How long a table change waits for the requests in flight to its slots before it drops the
/// backend connections that owe them.
const DRAIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// One slot as the proxy routes it.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// The slot as the dashboard sent it.
    pub slot: Slot,
    /// Its backend (None: offline).
    pub backend: Option<Arc<Backend>>,
    /// While migrating: the source.
    pub migrate_from: Option<Arc<Backend>>,
    /// Replicas that may serve reads, by group in the order to try them (the dashboard orders
    /// them for this proxy: same host, then same datacenter, then the rest). Empty when the
    /// proxy reads from primaries only.
    pub replicas: Vec<Vec<Arc<Backend>>>,
}

impl Route {
    /// How keys of a migrating slot are served.
    pub fn method(&self) -> ForwardMethod {
        self.slot.forward_method
    }

    /// The replica to read from: in the first group that has one up, the first up from a
    /// position that `seed` picks (so clients spread over a group's replicas); `None` to read
    /// from the primary (no replicas up, or the slot migrates).
    pub fn replica(&self, seed: usize) -> Option<&Arc<Backend>> {
        if self.migrate_from.is_some() {
            return None;
        }
        self.replicas.iter().find_map(|group| {
            (0..group.len())
                .map(|offset| &group[(seed + offset) % group.len()])
                .find(|replica| replica.health() == Health::Up)
        })
    }
}

/// Why a slot update was refused.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// A slot id out of range.
    #[error("invalid slot id {0}")]
    BadSlot(u32),
}

/// Requests in flight per slot: dispatched under the current table and not yet answered.
#[derive(Debug)]
struct InFlightCounts {
    counts: Vec<AtomicUsize>,
    drained: Notify,
}

/// Counts one request in flight for a slot until dropped (when its reply has arrived, or the
/// request was abandoned).
#[derive(Debug)]
pub struct InFlight {
    counts: Arc<InFlightCounts>,
    slot: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.counts.counts[self.slot].fetch_sub(1, Ordering::AcqRel) == 1 {
            self.counts.drained.notify_waiters();
        }
    }
}

/// The slot table and the backends it points at.
pub struct Router<E> {
    pool: Pool<E>,
    /// Connections to replicas (their own `parallel`), `None` with `backend_primary_only`.
    replica_pool: Option<Pool<E>>,
    table: RwLock<Arc<Vec<Route>>>,
    version: watch::Sender<u64>,
    in_flight: Arc<InFlightCounts>,
    /// One table change at a time.
    filling: tokio::sync::Mutex<()>,
}

impl<E: Env> Router<E> {
    /// Every slot offline; reads go to replicas (through `replica_pool`) if one is given.
    pub fn new(pool: Pool<E>, replica_pool: Option<Pool<E>>) -> Router<E> {
        let table = (0..MAX_SLOT_NUM)
            .map(|index| Route {
                slot: Slot { id: SlotId::new(index as u32).unwrap_or_default(), ..Slot::default() },
                ..Route::default()
            })
            .collect();
        let in_flight = Arc::new(InFlightCounts {
            counts: (0..MAX_SLOT_NUM).map(|_| AtomicUsize::new(0)).collect(),
            drained: Notify::new(),
        });
        Router {
            pool,
            replica_pool,
            table: RwLock::new(Arc::new(table)),
            version: watch::Sender::new(0),
            in_flight,
            filling: tokio::sync::Mutex::new(()),
        }
    }

    /// The backend pool.
    pub fn pool(&self) -> &Pool<E> {
        &self.pool
    }

    /// The replicas' pool, if reads may go to replicas.
    pub fn replica_pool(&self) -> Option<&Pool<E>> {
        self.replica_pool.as_ref()
    }

    /// The current table.
    pub fn table(&self) -> Arc<Vec<Route>> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Notified whenever the table changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Counts a request for `slot` in flight until the returned guard drops.
    pub fn track(&self, slot: usize) -> InFlight {
        let slot = slot.min(MAX_SLOT_NUM - 1);
        self.in_flight.counts[slot].fetch_add(1, Ordering::AcqRel);
        InFlight { counts: self.in_flight.clone(), slot }
    }

    /// Applies `slots` (Codis' `fillslots`): each replaces its slot's entry, after the requests
    /// already in flight for it have been answered (Codis' `blockAndWait`): new requests for a
    /// changing slot are held meanwhile, so none runs against the old backend once the new
    /// entry is in place, and none overtakes one sent before.
    pub async fn fill(&self, slots: &[Slot]) -> Result<(), FillError> {
        if let Some(bad) = slots.iter().find(|slot| slot.id.index() >= MAX_SLOT_NUM) {
            return Err(FillError::BadSlot(u32::from(bad.id)));
        }
        let _one_at_a_time = self.filling.lock().await;
        // Hold the slots that change.
        let mut held: Vec<Route> = self.table().as_ref().clone();
        for slot in slots {
            held[slot.id.index()].slot.locked = true;
        }
        self.install(held);
        // Wait for what was already sent to them. A backend that owes replies past
        // `DRAIN_PATIENCE` (a master that died silently: its connection would wait out
        // `backend_recv_timeout`) has its connections dropped, which answers them with an error:
        // the change is not held up, and nothing is left in flight to the old backend. The
        // patience counts from when a backend fell silent, not from now: one silent for longer
        // already (a paused master, whose failover this change may be) is dropped at once.
        let silent_for = {
            let table = self.table();
            slots
                .iter()
                .flat_map(|slot| {
                    let route = &table[slot.id.index()];
                    route
                        .backend
                        .iter()
                        .chain(&route.migrate_from)
                        .map(|backend| backend.trouble_for())
                        .collect::<Vec<_>>()
                })
                .max()
                .unwrap_or_default()
        };
        let patience = tokio::time::Instant::now() + DRAIN_PATIENCE.saturating_sub(silent_for);
        let mut reset = false;
        for slot in slots {
            let index = slot.id.index();
            loop {
                let drained = self.in_flight.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if self.in_flight.counts[index].load(Ordering::Acquire) == 0 {
                    break;
                }
                if reset {
                    drained.await;
                } else if tokio::time::timeout_at(patience, drained).await.is_err() {
                    reset = true;
                    let table = self.table();
                    for slot in slots {
                        let route = &table[slot.id.index()];
                        for backend in
                            route.backend.iter().chain(&route.migrate_from).chain(route.replicas.iter().flatten())
                        {
                            tracing::warn!(addr = backend.addr(), "a table change drops connections that owe replies");
                            backend.reset();
                        }
                    }
                }
            }
        }
        let mut table: Vec<Route> = self.table().as_ref().clone();
        for slot in slots {
            let backend =
                (!slot.backend_addr.is_empty()).then(|| self.pool.get_at_epoch(&slot.backend_addr, slot.epoch));
            let migrate_from = (!slot.migrate_from.is_empty()).then(|| self.pool.get(&slot.migrate_from));
            let replicas = match &self.replica_pool {
                Some(pool) => slot
                    .replica_groups
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            .filter(|addr| !addr.is_empty())
                            .map(|addr| pool.get_at_epoch(addr, slot.epoch))
                            .collect()
                    })
                    .filter(|group: &Vec<Arc<Backend>>| !group.is_empty())
                    .collect(),
                None => Vec::new(),
            };
            table[slot.id.index()] = Route { slot: slot.clone(), backend, migrate_from, replicas };
        }
        self.install(table);
        Ok(())
    }

    fn install(&self, table: Vec<Route>) {
        *self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        self.version.send_modify(|version| *version += 1);
    }
}
