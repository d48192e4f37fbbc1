//! The slot table: for each of the 1024 slots, the backend that serves it and, while it
//! migrates, the one it comes from.
//!
//! Sessions read the table once per batch of requests (an `Arc` clone); `fillslots` builds a new
//! table and swaps it in, and bumps a version that sessions holding requests for a locked slot
//! wait on.

use std::sync::{Arc, RwLock};

use model::{ForwardMethod, MAX_SLOT_NUM, Slot, SlotId};
use net::Env;
use tokio::sync::watch;

use crate::backend::{Backend, Pool};

/// One slot as the proxy routes it.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// The slot as the dashboard sent it.
    pub slot: Slot,
    /// Its backend (None: offline).
    pub backend: Option<Arc<Backend>>,
    /// While migrating: the source.
    pub migrate_from: Option<Arc<Backend>>,
}

impl Route {
    /// How keys of a migrating slot are served.
    pub fn method(&self) -> ForwardMethod {
        self.slot.forward_method
    }
}

/// Why a slot update was refused.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// A slot id out of range.
    #[error("invalid slot id {0}")]
    BadSlot(u32),
}

/// The slot table and the backends it points at.
pub struct Router<E> {
    pool: Pool<E>,
    table: RwLock<Arc<Vec<Route>>>,
    version: watch::Sender<u64>,
}

impl<E: Env> Router<E> {
    /// Every slot offline.
    pub fn new(pool: Pool<E>) -> Router<E> {
        let table = (0..MAX_SLOT_NUM)
            .map(|index| Route {
                slot: Slot { id: SlotId::new(index as u32).unwrap_or_default(), ..Slot::default() },
                ..Route::default()
            })
            .collect();
        Router { pool, table: RwLock::new(Arc::new(table)), version: watch::Sender::new(0) }
    }

    /// The backend pool.
    pub fn pool(&self) -> &Pool<E> {
        &self.pool
    }

    /// The current table.
    pub fn table(&self) -> Arc<Vec<Route>> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Notified whenever the table changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Applies `slots` (Codis' `fillslots`): each replaces its slot's entry.
    pub fn fill(&self, slots: &[Slot]) -> Result<(), FillError> {
        let mut table: Vec<Route> = self.table().as_ref().clone();
        for slot in slots {
            let index = slot.id.index();
            if index >= MAX_SLOT_NUM {
                return Err(FillError::BadSlot(u32::from(slot.id)));
            }
            let backend = (!slot.backend_addr.is_empty()).then(|| self.pool.get(&slot.backend_addr));
            let migrate_from = (!slot.migrate_from.is_empty()).then(|| self.pool.get(&slot.migrate_from));
            table[index] = Route { slot: slot.clone(), backend, migrate_from };
        }
        *self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        self.version.send_modify(|version| *version += 1);
        Ok(())
    }
}
