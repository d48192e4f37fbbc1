//! Codis' synchronous migration commands: `SLOTSMGRTONE`, `SLOTSMGRTTAGONE`, `SLOTSMGRTSLOT`,
//! `SLOTSMGRTTAGSLOT` on the source, and `SLOTSRESTORE` on the target.
//!
//! Codis runs these on the source's event loop, blocking every client until the target answers
//! (a big key stalls the server, #1233). Here the command fences its keys, hands the transfer to
//! the migrator and blocks only its own caller; other clients keep running, reads of the keys in
//! flight included, and writes to them wait until the keys have moved.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use model::SlotId;
use resp::{Request, encode};

use super::slots::{codis_int, parse_slot};
use super::{Ctx, Handler};
use crate::args::{self, arg};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Db, Key};
use crate::migrate::{Caller, Job, ReplyShape, SyncJob};
use crate::rdb::{self, LoadOptions};
use crate::state::{Block, State};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("slotsmgrtone", slotsmgrtone),
    ("slotsmgrttagone", slotsmgrttagone),
    ("slotsmgrtslot", slotsmgrtslot),
    ("slotsmgrttagslot", slotsmgrttagslot),
    ("slotsrestore", slotsrestore),
];

/// Where and how patiently: the arguments every migration command starts with.
pub(super) struct Target {
    /// `host:port`.
    pub address: String,
    /// Codis' timeout.
    pub timeout: Duration,
}

/// Parses `host port` as Codis does (port in 1..65535).
pub(super) fn parse_address(host: &[u8], port: &[u8]) -> Result<String, CmdError> {
    let port_value = codis_int(port)?;
    if !(1..65536).contains(&port_value) {
        return Err(CmdError::message(format!("ERR invalid value of port ({})", String::from_utf8_lossy(port))));
    }
    let host = std::str::from_utf8(host).map_err(|_| CmdError::other("ERR invalid host"))?;
    Ok(format!("{host}:{port_value}"))
}

/// Parses a timeout in milliseconds (at least 0); 0 means `zero_means`.
pub(super) fn parse_timeout(arg: &[u8], zero_means: Duration) -> Result<Duration, CmdError> {
    let timeout = codis_int(arg)?;
    match u64::try_from(timeout) {
        Ok(0) => Ok(zero_means),
        Ok(millis) => Ok(Duration::from_millis(millis)),
        Err(_) => Err(CmdError::message(format!("ERR invalid value of timeout ({timeout})"))),
    }
}

/// `host port timeout`, with Codis' synchronous default: 0 means 100 ms.
fn parse_sync_target(request: &Request) -> Result<Target, CmdError> {
    let address = parse_address(arg(request, 1), arg(request, 2))?;
    let timeout = parse_timeout(arg(request, 3), Duration::from_millis(100))?;
    Ok(Target { address, timeout })
}

/// Which keys a synchronous command moves.
enum Pick<'r> {
    /// One key.
    One(&'r [u8]),
    /// One key and the keys sharing its hash tag.
    TagOne(&'r [u8]),
    /// A random key of the slot.
    Slot(SlotId),
    /// A random key of the slot and the keys sharing its hash tag.
    TagSlot(SlotId),
}

fn slotsmgrtone(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_sync(ctx, request, Pick::One(arg(request, 4)))
}

fn slotsmgrttagone(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_sync(ctx, request, Pick::TagOne(arg(request, 4)))
}

fn slotsmgrtslot(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_sync(ctx, request, Pick::Slot(parse_slot(arg(request, 4))?))
}

fn slotsmgrttagslot(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_sync(ctx, request, Pick::TagSlot(parse_slot(arg(request, 4))?))
}

/// The keys `key` stands for: itself, or (`with_tag`) every key sharing its hash tag; those
/// that live here, and those absent here whose copy at a target may be stale (see
/// [`crate::migrate::Migrations::mark_stale`]).
pub(super) fn expand(state: &mut State, db: usize, key: &[u8], with_tag: bool, now_ms: u64) -> Vec<Key> {
    let live = state.keyspace.db(db);
    let candidates = if with_tag { live.keys_sharing_tag(key) } else { vec![Key::from_slice(key)] };
    // A lookup deletes an expired key (lazy expiry) after the candidates were collected, never
    // while iterating over a map (Codis' #1184).
    let mut keys: Vec<Key> = candidates.into_iter().filter(|key| live.get_untouched(key, now_ms).is_some()).collect();
    for stale in state.migrations.stale_keys(db, key, with_tag) {
        if !keys.contains(&stale) {
            keys.push(stale);
        }
    }
    keys
}

/// The reply of a migration command that found nothing to move: 0, or `[0, remaining]` for
/// the slot forms.
pub(super) fn reply_nothing_moved(ctx: &mut Ctx<'_>, slot: Option<SlotId>) {
    match slot {
        Some(slot) => {
            let remaining = crate::migrate::remaining_in_slot(ctx.state, ctx.client.db, slot);
            ctx.reply.array(2);
            ctx.reply.int(0);
            ctx.reply.count(remaining);
        }
        None => ctx.reply.int(0),
    }
}

/// A random live key of `slot` that no migration has in flight or, with none, a key of the slot
/// whose stale copy at a target needs deleting.
fn random_slot_key(ctx: &mut Ctx<'_>, slot: SlotId) -> Option<Key> {
    use net::rand::Rng as _;
    let db_index = ctx.client.db;
    let now = ctx.now_ms;
    for _ in 0..16 {
        let len = ctx.state.keyspace.db(db_index).slot_len(slot);
        if len == 0 {
            break;
        }
        let start = ctx.state.rng.random_range(0..len);
        let db = ctx.state.keyspace.db(db_index);
        // From a random position, the first key not in flight.
        let fences = &ctx.state.migrations.fences;
        let key = (0..len)
            .filter_map(|offset| db.slot_key_at(slot, (start + offset) % len))
            .find(|key| fences.fence_of(db_index, key).is_none())?
            .clone();
        if db.get_untouched(&key, now).is_some() {
            return Some(key);
        }
    }
    let fences = &ctx.state.migrations.fences;
    ctx.state.migrations.stale_in_slot(db_index, slot).into_iter().find(|key| fences.fence_of(db_index, key).is_none())
}

fn migrate_sync(ctx: &mut Ctx<'_>, request: &Request, pick: Pick<'_>) -> CmdResult {
    // Never replayed: a replica must not migrate anything. The deletions of the moved keys are
    // propagated when the migrator makes them.
    ctx.state.propagation.replace_with_nothing();
    let target = parse_sync_target(request)?;
    if !ctx.state.migrations.available() {
        return Err(CmdError::other("ERR migration is not available on this server"));
    }
    let now = ctx.now_ms;
    let db_index = ctx.client.db;
    let (keys, slot) = match pick {
        Pick::One(key) => (expand(ctx.state, db_index, key, false, now), None),
        Pick::TagOne(key) => (expand(ctx.state, db_index, key, true, now), None),
        Pick::Slot(slot) => (random_slot_key(ctx, slot).into_iter().collect(), Some(slot)),
        Pick::TagSlot(slot) => {
            let keys = match random_slot_key(ctx, slot) {
                Some(key) => expand(ctx.state, db_index, &key, true, now),
                None => Vec::new(),
            };
            (keys, Some(slot))
        }
    };
    let shape = if slot.is_some() { ReplyShape::CountAndRemaining } else { ReplyShape::Count };
    if keys.is_empty() {
        reply_nothing_moved(ctx, slot);
        return Ok(());
    }
    ctx.state.migrations.forget_stale_elsewhere(db_index, &target.address);
    let (restore, commands) = encode_restore(ctx.db(), &keys, now);
    let fence = ctx.state.migrations.fences.raise(db_index, &keys);
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        ctx.state.migrations.fences.lift(db_index, fence, &keys);
        return Err(CmdError::other("ERR client is not registered"));
    };
    let job = SyncJob {
        target: target.address,
        timeout: target.timeout,
        password: Bytes::from(ctx.state.config.requirepass.clone().into_bytes()),
        db: db_index,
        keys,
        fence,
        restore,
        commands,
        slot,
        caller: Caller { outbox, version: ctx.client.version, shape },
    };
    if let Err(Job::Sync(job)) = ctx.state.migrations.submit(Job::Sync(Box::new(job))) {
        ctx.state.migrations.fences.lift(db_index, fence, &job.keys);
        return Err(CmdError::other("ERR migration is not available on this server"));
    }
    ctx.client.blocked = Some(Block { deadline_ms: None });
    Ok(())
}

/// What moves `keys` to the target: `SLOTSRESTORE key ttl payload …` for those that live here
/// (each with its remaining TTL, at least 1 ms, or 0), then `DEL` for those absent here (their
/// copy there is stale). Returns the requests and how many there are.
fn encode_restore(db: &mut Db, keys: &[Key], now_ms: u64) -> (BytesMut, usize) {
    let mut out = BytesMut::new();
    let mut absent: Vec<&Key> = Vec::new();
    let mut entries: Vec<(&Key, u64, Vec<u8>)> = Vec::new();
    for key in keys {
        match db.peek(key) {
            Some(entry) => entries.push((key, entry.ttl_to_send(now_ms), rdb::dump_payload(&entry.value))),
            None => absent.push(key),
        }
    }
    let mut commands = 0;
    if !entries.is_empty() {
        commands += 1;
        encode::write_array_header(&mut out, 1 + 3 * entries.len());
        encode::write_bulk(&mut out, b"SLOTSRESTORE");
        for (key, ttl, payload) in &entries {
            encode::write_bulk(&mut out, key);
            encode::write_bulk(&mut out, itoa::Buffer::new().format(*ttl).as_bytes());
            encode::write_bulk(&mut out, payload);
        }
    }
    if !absent.is_empty() {
        commands += 1;
        encode::write_array_header(&mut out, 1 + absent.len());
        encode::write_bulk(&mut out, b"DEL");
        for key in absent {
            encode::write_bulk(&mut out, key);
        }
    }
    (out, commands)
}

/// `SLOTSRESTORE key ttl payload [key ttl payload …]`: checks every payload first, then replaces
/// each key with its value (TTL in milliseconds, 0 for none), all in one step.
fn slotsrestore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if !(request.len() - 1).is_multiple_of(3) {
        return Err(CmdError::arity(b"slotsrestore"));
    }
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let db = ctx.db();
    let load = LoadOptions { limits, seed: db.collection_seed() };
    let mut values = Vec::with_capacity((request.len() - 1) / 3);
    for index in (1..request.len()).step_by(3) {
        let ttl = args::int(arg(request, index + 1))?;
        if ttl < 0 {
            return Err(CmdError::message(format!("ERR invalid ttl value, must be >= 0 (ttl={ttl})")));
        }
        let value = rdb::restore_payload_with(arg(request, index + 2), &load).map_err(|error| {
            if error.is_footer() {
                CmdError::other("ERR DUMP payload version or checksum are wrong")
            } else {
                CmdError::other("ERR Bad data format")
            }
        })?;
        values.push((arg(request, index), ttl.unsigned_abs(), value, arg(request, index + 2)));
    }
    let mut restores = Vec::new();
    for (key, ttl, value, payload) in values {
        let expire_at = if ttl == 0 { 0 } else { now.saturating_add(ttl) };
        db.set(key, value, expire_at, now);
        restores.push((key, expire_at, payload));
    }
    // As RESTOREs with absolute expiry, which any Redis replica understands.
    for (key, expire_at, payload) in restores {
        let mut at = itoa::Buffer::new();
        ctx.state.propagation.replace_with([
            &b"RESTORE"[..],
            key,
            at.format(expire_at).as_bytes(),
            payload,
            b"REPLACE",
            b"ABSTTL",
        ]);
    }
    ctx.reply.ok();
    Ok(())
}
