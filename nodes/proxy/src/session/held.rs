//! Requests served in line for a slot that migrates or is locked: each key moved first when
//! it is still at the source, then the request sent to the slot's owner.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use model::{ForwardMethod, slot_of};
use net::Env;
use resp::{Request, encode};

use super::client::Target;
use super::lock::unlocked;
use super::pending::{elements, integer, receive_raw};
use super::reply::{error, simple};
use crate::backend::{Acks, BackendConn};
use crate::commands::{self, Join, KeyAt};
use crate::proxy::Shared;
use crate::router::Route;

/// Serves a request whose slot migrates or is locked (or, for a split command, one of whose
/// slots does), key by key, after everything before it.
pub(crate) async fn serve_in_line<E: Env>(shared: &Shared<E>, client: Target, request: &Request) -> Bytes {
    let info = commands::lookup_upper(&commands::upper(request.name()));
    // Split commands go key by key through the single-key path.
    if let Some(how) = info.split
        && let Some(units) = how.units(request)
    {
        let mut replies = Vec::new();
        for unit in units.chunks(how.width) {
            let sub = Request::from_args(std::iter::once(request.name()).chain(unit.iter().copied()));
            replies.push(forward_held(shared, client, sub.wire().clone(), &sub, unit[0]).await);
        }
        return join(how.join, replies);
    }
    let key = info.key.key(request).unwrap_or_default();
    if info.route == commands::Route::SameSlot {
        // Its keys may be on both sides of a migration, and it must see them all.
        let slot = slot_of(key).index();
        return match unlocked(shared, slot).await {
            Ok((_in_flight, table)) if table[slot].migrate_from.is_some() => {
                error(&format!("TRYAGAIN the slot is migrating, retry {}", commands::upper_name(request.name())))
            }
            Ok((in_flight, table)) => {
                let timeout = shared.config.backend_sync_timeout;
                let reply = forward_one(&table, client, request.wire().clone(), request, key, timeout).await;
                drop(in_flight);
                reply
            }
            Err(refusal) => refusal,
        };
    }
    forward_held(shared, client, request.wire().clone(), request, key).await
}

/// The reply of a split command served key by key: the parts joined as `join` says, or the first
/// part that failed.
fn join(join: Join, replies: Vec<Bytes>) -> Bytes {
    match join {
        Join::Values => {
            let mut out = BytesMut::new();
            encode::write_array_header(&mut out, replies.len());
            for reply in &replies {
                match elements(reply) {
                    Some(found) if found.len() == 1 => out.extend_from_slice(&found[0]),
                    _ => return reply.clone(),
                }
            }
            out.freeze()
        }
        Join::AllOk => replies.into_iter().find(|reply| !reply.starts_with(b"+OK")).unwrap_or_else(|| simple("OK")),
        Join::Sum => {
            let mut sum = 0;
            for reply in &replies {
                match integer(reply) {
                    Some(count) => sum += count,
                    None => return reply.clone(),
                }
            }
            let mut out = BytesMut::new();
            encode::write_integer(&mut out, sum);
            out.freeze()
        }
    }
}

/// Forwards one single-key request once its slot is not held (a locked slot waits until the
/// dashboard unlocks it, or a table change is applied), counted in flight meanwhile.
pub(crate) async fn forward_held<E: Env>(
    shared: &Shared<E>,
    client: Target,
    wire: Bytes,
    request: &Request,
    key: &[u8],
) -> Bytes {
    let slot = slot_of(key).index();
    match unlocked(shared, slot).await {
        Ok((in_flight, table)) => {
            let reply = forward_one(&table, client, wire, request, key, shared.config.backend_sync_timeout).await;
            drop(in_flight);
            reply
        }
        Err(refusal) => refusal,
    }
}

/// For a request to a slot's master in synchronous mode: the replicas that must have every
/// write it may have seen or made before it is answered. Writes wait for their own; reads wait
/// too (usually not at all: `WAIT` answers at once when the replicas are caught up), so no
/// client ever sees a value a failover could take back.
pub(crate) fn acks_for(route: &Route, kind: commands::Kind, timeout: Duration) -> Option<Acks> {
    (kind != commands::Kind::NotAllowed && route.slot.sync_replicas > 0)
        .then_some(Acks { replicas: route.slot.sync_replicas, timeout })
}

/// [`acks_for`] with the proxy's `backend_sync_timeout`.
pub(crate) fn write_acks<E: Env>(shared: &Shared<E>, route: &Route, kind: commands::Kind) -> Option<Acks> {
    acks_for(route, kind, shared.config.backend_sync_timeout)
}

/// Forwards one single-key request, moving its key out of a migration source first.
pub(crate) async fn forward_one(
    table: &[Arc<Route>],
    client: Target,
    wire: Bytes,
    request: &Request,
    key: &[u8],
    sync_timeout: Duration,
) -> Bytes {
    let slot = slot_of(key).index();
    let route = &table[slot];
    let Some(backend) = &route.backend else {
        return error("ERR handle request, slot is not ready, may be offline");
    };
    let info = commands::lookup_upper(&commands::upper(request.name()));
    let acks = acks_for(route, info.kind, sync_timeout);
    let target: &BackendConn = backend.conn(client.db, slot, client.version);
    let source = route.migrate_from.as_ref().filter(|_| !matches!(info.key, KeyAt::Channel(_)));
    let Some(source) = source else {
        return receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error);
    };
    let source = source.conn(client.db, slot, client.version);
    let (host, port) = backend.addr().rsplit_once(':').unwrap_or((backend.addr(), "0"));
    match route.method() {
        ForwardMethod::Sync => {
            // Pull the key (and its tag family) to the target, then serve it there.
            let moved = Request::from_args([&b"SLOTSMGRTTAGONE"[..], host.as_bytes(), port.as_bytes(), b"3000", key]);
            match receive_raw(source.send(moved.wire().clone())).await {
                Ok(reply) if reply.starts_with(b":") => {
                    receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error)
                }
                Ok(reply) => reply,
                Err(error) => error,
            }
        }
        ForwardMethod::SemiAsync => {
            let wrapped =
                Request::from_args(std::iter::once(&b"SLOTSMGRT-EXEC-WRAPPER"[..]).chain([key]).chain(request.args()));
            for attempt in 0u64.. {
                let reply = match receive_raw(source.send_acked(wrapped.wire().clone(), acks)).await {
                    Ok(reply) => reply,
                    Err(error) => return error,
                };
                let Some(parts) = elements(&reply).filter(|parts| parts.len() == 2) else {
                    return reply;
                };
                match integer(&parts[0]) {
                    Some(2) => return parts[1].clone(),
                    Some(0) => return receive_raw(target.send_acked(wire, acks)).await.unwrap_or_else(|error| error),
                    // In flight: retry, at once for the first few tries, then up to 20 ms apart.
                    Some(1) if attempt < 1000 => {
                        if attempt >= 5 {
                            tokio::time::sleep(Duration::from_millis((attempt - 4).min(20))).await;
                        }
                    }
                    _ => return parts[1].clone(),
                }
            }
            error("ERR handle request, key is being migrated")
        }
    }
}
