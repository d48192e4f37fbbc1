//! Waiting for a locked slot (a table change in progress) to be served again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use net::Env;

use super::reply::error;
use crate::proxy::Shared;
use crate::router::{InFlight, Table};

/// How long a request waits for its locked slot before giving up.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The slot table once `slot` is not locked, with the slot counted in flight until the returned
/// guard drops (so the route stays current meanwhile); an error after [`LOCK_WAIT`].
pub(crate) async fn unlocked<E: Env>(shared: &Shared<E>, slot: usize) -> Result<(InFlight, Arc<Table>), Bytes> {
    let mut changes = shared.router.changes();
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        let in_flight = shared.router.track(slot);
        let table = shared.router.table();
        if !table[slot].slot.locked {
            return Ok((in_flight, table));
        }
        drop(in_flight);
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Err(error("ERR handle request, slot is locked"));
        }
    }
}
