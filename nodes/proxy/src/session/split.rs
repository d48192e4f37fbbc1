//! Multi-key commands split by backend connection, their parts' replies joined.

use std::sync::Arc;

use bytes::BytesMut;
use model::slot_of;
use net::Env;
use resp::{Request, encode};

use super::client::Client;
use super::held::write_acks;
use super::pending::{Dispatch, Pending, Tracked, ready};
use super::reply::error;
use crate::backend::Backend;
use crate::commands::{self, Join, Split};
use crate::proxy::Shared;
use crate::router::InFlight;

/// A multi-key command split by backend connection (keys of one connection go together; on one
/// server a multi-key command across slots is fine), or served key by key in line if any slot
/// migrates or is locked. `units` are the keys' arguments, `how.width` per key, the key first.
pub(crate) fn split<E: Env>(
    shared: &Shared<E>,
    client: &Client<E>,
    request: &Request,
    kind: commands::Kind,
    how: Split,
    units: &[&[u8]],
) -> Dispatch {
    let keys: Vec<&[u8]> = units.iter().step_by(how.width).copied().collect();
    let slots: Vec<usize> = keys.iter().map(|key| slot_of(key).index()).collect();
    // Counted before the table is read (see `dispatch`).
    let mut in_flight: Vec<(usize, InFlight)> = Vec::new();
    for slot in &slots {
        if !in_flight.iter().any(|(tracked, _)| tracked == slot) {
            in_flight.push((*slot, shared.router.track(*slot)));
        }
    }
    let table = shared.router.table();
    // Group positions by (backend, connection).
    let mut groups: Vec<(Arc<Backend>, usize, Vec<usize>)> = Vec::new();
    for (position, slot) in slots.iter().copied().enumerate() {
        let route = &table[slot];
        if route.slot.locked || route.migrate_from.is_some() {
            return Dispatch::InLine;
        }
        let Some(backend) = &route.backend else {
            return ready(error("ERR handle request, slot is not ready, may be offline"));
        };
        let conn = slot % shared.router.pool().options().parallel.max(1);
        match groups.iter_mut().find(|(other, index, _)| Arc::ptr_eq(other, backend) && *index == conn) {
            Some((_, _, positions)) => positions.push(position),
            None => groups.push((backend.clone(), conn, vec![position])),
        }
    }
    let parts = groups.into_iter().map(|(backend, conn, positions)| {
        // The part's request, encoded straight into one buffer.
        let args = 1 + positions.len() * how.width;
        let mut wire = BytesMut::with_capacity(16 + 16 * args + request.wire().len());
        encode::write_array_header(&mut wire, args);
        encode::write_bulk(&mut wire, request.name());
        for position in &positions {
            for arg in &units[position * how.width..(position + 1) * how.width] {
                encode::write_bulk(&mut wire, arg);
            }
        }
        let wire = wire.freeze();
        let acks = write_acks(shared, &table[slots[positions[0]]], kind);
        let receiver = backend.conn(client.db, conn, client.version).send_acked(wire, acks);
        // Each part holds the counts of its own slots.
        let mut mine = Vec::new();
        for position in &positions {
            if let Some(at) = in_flight.iter().position(|(slot, _)| *slot == slots[*position]) {
                mine.push(in_flight.swap_remove(at).1);
            }
        }
        (positions, Tracked { receiver, _in_flight: mine })
    });
    Dispatch::Now(match how.join {
        Join::Values => Pending::Mget { total: keys.len(), parts: parts.collect() },
        Join::AllOk => Pending::AllOk(parts.map(|(_, receiver)| receiver).collect()),
        Join::Sum => Pending::Sum(parts.map(|(_, receiver)| receiver).collect()),
    })
}
