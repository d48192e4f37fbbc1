//! Codis' slot commands (`SLOTSINFO`, `SLOTSSCAN`, `SLOTSDEL`, `SLOTSHASHKEY`, `SLOTSCHECK`), with
//! Codis 3.2's argument order, errors and reply shapes.

use model::{MAX_SLOT_NUM, SlotId, slot_of};
use resp::Request;

use super::keys::parse_cursor;
use super::{Ctx, Handler};
use crate::args::{self, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Key;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("slotshashkey", slotshashkey),
    ("slotsinfo", slotsinfo),
    ("slotsscan", slotsscan),
    ("slotsdel", slotsdel),
    ("slotscheck", slotscheck),
];

/// Codis' `parse_int`: an integer that fits a C `int`.
pub(super) fn codis_int(arg: &[u8]) -> Result<i32, CmdError> {
    let value = args::int(arg)?;
    i32::try_from(value).map_err(|_| CmdError::other("ERR value is out of range"))
}

/// Codis' `parse_slot`: an integer in `0..1024`.
pub(super) fn parse_slot(arg: &[u8]) -> Result<SlotId, CmdError> {
    let value = codis_int(arg)?;
    u32::try_from(value)
        .ok()
        .and_then(SlotId::new)
        .ok_or_else(|| CmdError::message(format!("ERR invalid slot number = {value}")))
}

fn slotshashkey(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ctx.reply.array(request.len() - 1);
    for key in request.args().skip(1) {
        ctx.reply.int(i64::from(u32::from(slot_of(key))));
    }
    Ok(())
}

fn slotsinfo(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let mut begin = 0usize;
    let mut end = MAX_SLOT_NUM;
    if let Some(start) = request.arg(1) {
        begin = parse_slot(start)?.index();
    }
    if let Some(count) = request.arg(2) {
        let count = codis_int(count)?;
        let count =
            usize::try_from(count).map_err(|_| CmdError::message(format!("ERR invalid slot count = {count}")))?;
        end = end.min(begin + count);
    }
    if request.len() >= 4 {
        return Err(CmdError::arity(b"slotsinfo"));
    }
    let db = ctx.db();
    let sizes: Vec<(usize, usize)> = (begin..end)
        .filter_map(|index| SlotId::new(index as u32).map(|slot| (index, db.slot_len(slot))))
        .filter(|(_, size)| *size > 0)
        .collect();
    ctx.reply.array(sizes.len());
    for (slot, size) in sizes {
        ctx.reply.array(2);
        ctx.reply.count(slot);
        ctx.reply.count(size);
    }
    Ok(())
}

fn slotsscan(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let slot = parse_slot(request.arg(1).unwrap_or_default())?;
    let cursor = parse_cursor(request.arg(2).unwrap_or_default())?;
    if request.len() != 3 && request.len() != 5 {
        return Err(CmdError::arity(b"slotsscan"));
    }
    let mut count = 10usize;
    if request.len() == 5 {
        if !is(request.arg(3).unwrap_or_default(), "COUNT") {
            return Err(CmdError::Syntax);
        }
        let value = codis_int(request.arg(4).unwrap_or_default())?;
        count = usize::try_from(value).ok().filter(|count| *count >= 1).ok_or(CmdError::Syntax)?;
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let mut keys: Vec<Key> = Vec::new();
    let next = db.scan_slot(slot, cursor, count, |key, entry| {
        if !entry.is_expired(now) {
            keys.push(key.clone());
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(keys.len());
    for key in &keys {
        reply.bulk(key);
    }
    Ok(())
}

fn slotsdel(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let slots = request.args().skip(1).map(parse_slot).collect::<Result<Vec<SlotId>, _>>()?;
    let db = ctx.state.keyspace.db(ctx.client.db);
    // Replayed as the `DEL`s of the keys it deleted (a stock Redis replica has no `SLOTSDEL`),
    // a thousand keys a command, together one transaction.
    ctx.state.propagation.replace_with_nothing();
    for slot in &slots {
        let deleted = db.clear_slot(*slot);
        for keys in deleted.chunks(1024) {
            ctx.state.propagation.replace_with([&b"DEL"[..]].into_iter().chain(keys.iter().map(|key| &key[..])));
        }
    }
    let db = ctx.db();
    let remaining: Vec<(SlotId, usize)> = slots.iter().map(|slot| (*slot, db.slot_len(*slot))).collect();
    ctx.reply.array(remaining.len());
    for (slot, size) in remaining {
        ctx.reply.array(2);
        ctx.reply.int(i64::from(u32::from(slot)));
        ctx.reply.count(size);
    }
    Ok(())
}

fn slotscheck(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    match ctx.db().check() {
        Ok(()) => ctx.reply.ok(),
        Err(problem) => return Err(CmdError::message(format!("ERR slotscheck: {problem}"))),
    }
    Ok(())
}
