//! `SCAN` across every group, one slot at a time, with a cursor that names the slot.

use bytes::{Bytes, BytesMut};
use net::Env;
use resp::{Decoder, Limits, Request, encode};

use super::client::Client;
use super::pending::receive_raw;
use super::reply::error;
use crate::proxy::Shared;

/// `SCAN cursor [MATCH pattern] [COUNT count]` across the cluster, slot by slot with each
/// backend's `SLOTSSCAN`. The cursor carries the slot in its low 10 bits, then one bit for the
/// side of a migrating slot (its source first, then its target, so a key that moves during the
/// scan is still seen), then the backend's own cursor: `redis-cli --scan` works through the
/// proxy. As with Redis' `SCAN`, a key present for the whole scan is returned at least once.
pub(crate) async fn scan<E: Env>(shared: &Shared<E>, client: &Client<E>, request: &Request) -> Bytes {
    if let Some(refusal) = shared.refusal() {
        return error(refusal);
    }
    let Some(cursor) = request.arg(1).and_then(|cursor| std::str::from_utf8(cursor).ok()?.parse::<u64>().ok()) else {
        return error("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        let value = request.arg(index + 1);
        if option.eq_ignore_ascii_case(b"COUNT") && value.is_some() {
            match value.and_then(resp::parse_i64).and_then(|count| usize::try_from(count).ok()).filter(|c| *c >= 1) {
                Some(value) => count = value,
                None => return error("ERR syntax error"),
            }
        } else if option.eq_ignore_ascii_case(b"MATCH") && value.is_some() {
            pattern = value;
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            return error("ERR SCAN TYPE is not supported through the proxy");
        } else {
            return error("ERR syntax error");
        }
        index += 2;
    }
    let mut slot = (cursor & 0x3ff) as usize;
    let mut side = (cursor >> 10) & 1;
    let mut inner = cursor >> 11;
    let mut keys: Vec<Bytes> = Vec::new();
    let mut visited = 0usize;
    while slot < model::MAX_SLOT_NUM && keys.len() < count && visited < count.max(64) {
        let _in_flight = shared.router.track(slot);
        let table = shared.router.table();
        let route = &table[slot];
        let Some(backend) = &route.backend else {
            return error("ERR handle request, slot is not ready, may be offline");
        };
        let backend = match (&route.migrate_from, side) {
            (Some(source), 0) => source,
            (_, _) => backend,
        };
        let request = Request::from_args([
            &b"SLOTSSCAN"[..],
            slot.to_string().as_bytes(),
            inner.to_string().as_bytes(),
            b"COUNT",
            count.to_string().as_bytes(),
        ]);
        let reply = match receive_raw(backend.conn(client.db, slot, client.version).send(request.wire().clone())).await
        {
            Ok(reply) => reply,
            Err(error) => return error,
        };
        let mut buf = BytesMut::from(&reply[..]);
        let frame = Decoder::new(Limits { max_array_len: usize::MAX / 2, ..Limits::default() }).decode(&mut buf);
        let Ok(Some(resp::Frame::Array(parts))) = frame else {
            return reply;
        };
        let (Some(resp::Frame::Bulk(next)), Some(resp::Frame::Array(found))) = (parts.first(), parts.get(1)) else {
            return reply;
        };
        for key in found {
            if let resp::Frame::Bulk(key) = key
                && pattern.is_none_or(|pattern| model::glob::matches(pattern, key, false))
            {
                keys.push(key.clone());
            }
        }
        visited += 1;
        inner = std::str::from_utf8(next).ok().and_then(|next| next.parse().ok()).unwrap_or(0);
        if inner == 0 {
            if route.migrate_from.is_some() && side == 0 {
                side = 1;
            } else {
                side = 0;
                slot += 1;
            }
        }
    }
    let next = if slot >= model::MAX_SLOT_NUM { 0 } else { (inner << 11) | (side << 10) | slot as u64 };
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, 2);
    encode::write_bulk(&mut out, next.to_string().as_bytes());
    encode::write_array_header(&mut out, keys.len());
    for key in keys {
        encode::write_bulk(&mut out, &key);
    }
    out.freeze()
}
