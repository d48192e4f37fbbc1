//! Codis' asynchronous migration on the source: `SLOTSMGRTSLOT-ASYNC`, `SLOTSMGRTTAGSLOT-ASYNC`,
//! `SLOTSMGRTONE-ASYNC`, `SLOTSMGRTTAGONE-ASYNC`, their `-DUMP` forms, `SLOTSMGRT-ASYNC-FENCE`,
//! `-CANCEL`, `-STATUS`, and `SLOTSMGRT-EXEC-WRAPPER`.
//!
//! A command builds a batch of keys (one batch per database at a time), fences them, and blocks
//! its caller until the migrator has had every message acknowledged (see
//! [`crate::migrate::batch`]); only then are the keys deleted here. Until that moment they stay
//! readable; a write waits (or, through the wrapper, is answered "being migrated").

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::BytesMut;
use model::SlotId;
use resp::Request;

use super::migrate::{expand, parse_address, parse_timeout, reply_nothing_moved};
use super::slots::{codis_int, parse_slot};
use super::{Command, Ctx, Flags, Handler, call, table};
use crate::args::arg;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Key;
use crate::migrate::batch::{BatchParams, estimate_messages};
use crate::migrate::{AsyncBatch, Caller, Job, ReplyShape};
use crate::state::Block;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("slotsmgrtslot-async", slotsmgrtslot_async),
    ("slotsmgrttagslot-async", slotsmgrttagslot_async),
    ("slotsmgrtone-async", slotsmgrtone_async),
    ("slotsmgrttagone-async", slotsmgrttagone_async),
    ("slotsmgrtone-async-dump", slotsmgrtone_async_dump),
    ("slotsmgrttagone-async-dump", slotsmgrttagone_async_dump),
    ("slotsmgrt-async-fence", slotsmgrt_async_fence),
    ("slotsmgrt-async-cancel", slotsmgrt_async_cancel),
    ("slotsmgrt-async-status", slotsmgrt_async_status),
    ("slotsmgrt-exec-wrapper", slotsmgrt_exec_wrapper),
];

/// Codis' async defaults and caps.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAXBULKS: usize = 200;
const MAX_MAXBULKS: usize = 512 * 1024;
const DEFAULT_MAXBYTES: usize = 512 * 1024;
const DEFAULT_NUMKEYS: usize = 100;

/// A non-negative Codis `int` argument named `what`; 0 becomes `zero_means`.
fn parse_positive(arg: &[u8], what: &str, zero_means: usize) -> Result<usize, CmdError> {
    let value = codis_int(arg)
        .ok()
        .and_then(|value| usize::try_from(value).ok())
        .ok_or_else(|| CmdError::message(format!("ERR invalid value of {what} ({})", String::from_utf8_lossy(arg))))?;
    Ok(if value == 0 { zero_means } else { value })
}

/// `host port timeout maxbulks maxbytes`, with Codis' defaults and caps; `maxbytes` is also
/// capped by the normal clients' output buffer limit.
fn parse_params(ctx: &Ctx<'_>, request: &Request) -> Result<BatchParams, CmdError> {
    let target = parse_address(arg(request, 1), arg(request, 2))?;
    let timeout = parse_timeout(arg(request, 3), DEFAULT_TIMEOUT)?;
    let maxbulks = parse_positive(arg(request, 4), "maxbulks", DEFAULT_MAXBULKS)?.min(MAX_MAXBULKS);
    let mut maxbytes = parse_positive(arg(request, 5), "maxbytes", DEFAULT_MAXBYTES)?.min(i32::MAX as usize / 2);
    let limit = ctx.state.config.client_output_buffer_limit.normal;
    for cap in [limit.soft_bytes, limit.hard_bytes] {
        if cap != 0 {
            maxbytes = maxbytes.min(usize::try_from(cap).unwrap_or(usize::MAX));
        }
    }
    Ok(BatchParams { target, timeout, maxbulks, maxbytes })
}

fn slotsmgrtslot_async(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_slot_async(ctx, request, false)
}

fn slotsmgrttagslot_async(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_slot_async(ctx, request, true)
}

fn slotsmgrtone_async(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_keys_async(ctx, request, false)
}

fn slotsmgrttagone_async(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    migrate_keys_async(ctx, request, true)
}

/// Refuses a new batch while the database has one, as Codis does.
fn check_idle(ctx: &mut Ctx<'_>) -> CmdResult {
    if !ctx.state.migrations.available() {
        return Err(CmdError::other("ERR migration is not available on this server"));
    }
    if ctx.state.migrations.batches[ctx.client.db].is_some() {
        return Err(CmdError::other("ERR the specified DB is being migrated"));
    }
    Ok(())
}

fn migrate_slot_async(ctx: &mut Ctx<'_>, request: &Request, with_tag: bool) -> CmdResult {
    // Never replayed (see `migrate_sync`): the moved keys' deletions are.
    ctx.state.propagation.replace_with_nothing();
    let params = parse_params(ctx, request)?;
    let slot = parse_slot(arg(request, 6))?;
    let numkeys = parse_positive(arg(request, 7), "numkeys", DEFAULT_NUMKEYS)?;
    check_idle(ctx)?;
    let keys = collect_slot_keys(ctx, slot, numkeys, params.maxbulks, with_tag);
    start_batch(ctx, params, keys, Some(slot))
}

fn migrate_keys_async(ctx: &mut Ctx<'_>, request: &Request, with_tag: bool) -> CmdResult {
    // Never replayed (see `migrate_sync`): the moved keys' deletions are.
    ctx.state.propagation.replace_with_nothing();
    let params = parse_params(ctx, request)?;
    check_idle(ctx)?;
    let now = ctx.now_ms;
    let db_index = ctx.client.db;
    let mut keys: Vec<Key> = Vec::new();
    for key in request.args().skip(6) {
        for key in expand(ctx.state, db_index, key, with_tag, now) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    start_batch(ctx, params, keys, None)
}

/// Up to about `numkeys` messages' worth of keys of `slot` (with their tag siblings): first the
/// keys whose stale copies at the target need deleting, then live keys from a random position,
/// skipping keys another migration has in flight. As Codis fills a batch, a key that would take
/// the estimate past twice `numkeys` waits for a later batch unless the batch is empty.
fn collect_slot_keys(ctx: &mut Ctx<'_>, slot: SlotId, numkeys: usize, maxbulks: usize, with_tag: bool) -> Vec<Key> {
    use net::rand::Rng as _;
    let db_index = ctx.client.db;
    let now = ctx.now_ms;
    let stale = ctx.state.migrations.stale_in_slot(db_index, slot);
    let len = ctx.state.keyspace.db(db_index).slot_len(slot);
    let start = if len > 0 { ctx.state.rng.random_range(0..len) } else { 0 };
    let mut keys: Vec<Key> = Vec::new();
    let mut chosen: BTreeSet<Key> = BTreeSet::new();
    let mut estimate = 0;
    // Stale keys first, then live keys from the random position. Positions are read one at a
    // time: a lookup may expire a key and move another into its position, which at worst skips
    // a key until the next batch (never a problem, unlike iterating a map while it changes).
    let mut live = (0..len).map(|offset| (start + offset) % len);
    let mut stale = stale.into_iter();
    while estimate < numkeys {
        let candidate = match stale.next() {
            Some(key) => key,
            None => match live.next() {
                Some(position) => match ctx.state.keyspace.db(db_index).slot_key_at(slot, position) {
                    Some(key) => key.clone(),
                    None => continue,
                },
                None => break,
            },
        };
        if chosen.contains(&candidate) || ctx.state.migrations.fences.fence_of(db_index, &candidate).is_some() {
            continue;
        }
        let group = expand(ctx.state, db_index, &candidate, with_tag, now);
        let db = ctx.state.keyspace.db(db_index);
        // An absent key (a stale copy to delete there) is one message.
        let cost: usize =
            group.iter().map(|key| db.peek(key).map_or(1, |entry| estimate_messages(entry, maxbulks))).sum();
        if cost == 0 || (!keys.is_empty() && estimate + cost > 2 * numkeys) {
            continue;
        }
        estimate += cost;
        for key in group {
            if chosen.insert(key.clone()) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Fences `keys`, stores the batch, wakes the migrator and blocks the caller; with no keys,
/// answers at once.
fn start_batch(ctx: &mut Ctx<'_>, params: BatchParams, keys: Vec<Key>, slot: Option<SlotId>) -> CmdResult {
    let db_index = ctx.client.db;
    let shape = if slot.is_some() { ReplyShape::CountAndRemaining } else { ReplyShape::Count };
    if keys.is_empty() {
        reply_nothing_moved(ctx, slot);
        return Ok(());
    }
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        return Err(CmdError::other("ERR client is not registered"));
    };
    ctx.state.migrations.forget_stale_elsewhere(db_index, &params.target);
    let fence = ctx.state.migrations.fences.raise(db_index, &keys);
    let stale = keys.iter().filter(|key| ctx.state.migrations.is_stale(db_index, key)).cloned().collect();
    let mut batch = AsyncBatch::new(params, keys, fence, slot, ctx.now_ms);
    batch.stale = stale;
    batch.callers.push(Caller { outbox, version: ctx.client.version, shape });
    ctx.state.migrations.batches[db_index] = Some(batch);
    if ctx.state.migrations.submit(Job::AsyncStart { db: db_index }).is_err()
        && let Some(batch) = ctx.state.migrations.batches[db_index].take()
    {
        ctx.state.migrations.fences.lift(db_index, batch.fence, &batch.keys);
        return Err(CmdError::other("ERR migration is not available on this server"));
    }
    ctx.client.blocked = Some(Block { deadline_ms: None });
    Ok(())
}

fn slotsmgrtone_async_dump(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    async_dump(ctx, request, false)
}

fn slotsmgrttagone_async_dump(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    async_dump(ctx, request, true)
}

/// `SLOTSMGRT[TAG]ONE-ASYNC-DUMP timeout maxbulks key…`: the `SLOTSRESTORE-ASYNC` messages that
/// would move the keys, as an array of commands, for external tools; nothing changes here.
fn async_dump(ctx: &mut Ctx<'_>, request: &Request, with_tag: bool) -> CmdResult {
    let timeout = parse_timeout(arg(request, 1), DEFAULT_TIMEOUT)?;
    let maxbulks = parse_positive(arg(request, 2), "maxbulks", 1000)?;
    let now = ctx.now_ms;
    let db_index = ctx.client.db;
    let mut keys: Vec<Key> = Vec::new();
    for key in request.args().skip(3) {
        for key in expand(ctx.state, db_index, key, with_tag, now) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let params = BatchParams { target: String::new(), timeout, maxbulks, maxbytes: usize::MAX / 2 };
    let mut batch = AsyncBatch::new(params, keys, 0, None, now);
    let mut body = BytesMut::new();
    let messages = batch.produce(ctx.db(), now, &mut body, usize::MAX);
    ctx.reply.array(messages);
    ctx.reply.raw(&body);
    Ok(())
}

/// `SLOTSMGRT-ASYNC-FENCE`: `+OK` at once if the database has no batch; otherwise waits for the
/// batch and gets its outcome.
fn slotsmgrt_async_fence(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let db_index = ctx.client.db;
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        return Err(CmdError::other("ERR client is not registered"));
    };
    match ctx.state.migrations.batches[db_index].as_mut() {
        None => ctx.reply.ok(),
        Some(batch) => {
            batch.callers.push(Caller { outbox, version: ctx.client.version, shape: ReplyShape::Ok });
            ctx.client.blocked = Some(Block { deadline_ms: None });
        }
    }
    Ok(())
}

/// `SLOTSMGRT-ASYNC-CANCEL`: aborts the database's batch (nothing is deleted here; its callers
/// get "interrupted: canceled") and closes the connection; 1 if there was one, else 0.
fn slotsmgrt_async_cancel(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let db_index = ctx.client.db;
    let migrations = &mut ctx.state.migrations;
    let had_link = migrations.async_links[db_index].take().is_some();
    let batch = migrations.batches[db_index].take();
    let had_batch = batch.is_some();
    if let Some(batch) = batch {
        crate::migrate::service::abort_batch(ctx.state, db_index, batch, "ERR interrupted: canceled");
    }
    if had_link || had_batch {
        // The migrator drops the connection; if it is gone already, so is the connection.
        let _ = ctx.state.migrations.submit(Job::AsyncCancel { db: db_index });
    }
    ctx.reply.int(i64::from(had_link || had_batch));
    Ok(())
}

/// `SLOTSMGRT-ASYNC-STATUS`: nil, or the connection and the batch as a flat map.
fn slotsmgrt_async_status(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let db_index = ctx.client.db;
    let now = ctx.now_ms;
    let migrations = &ctx.state.migrations;
    let link = migrations.async_links[db_index].clone();
    let batch = migrations.batches[db_index].as_ref();
    let Some(target) = link.or_else(|| batch.map(|batch| batch.target.clone())) else {
        ctx.reply.null();
        return Ok(());
    };
    let (host, port) = target.rsplit_once(':').unwrap_or((&target, ""));
    let reply = &mut ctx.reply;
    reply.map(8);
    reply.bulk(b"host");
    reply.bulk(host.as_bytes());
    reply.bulk(b"port");
    reply.bulk_int(port.parse().unwrap_or(0));
    reply.bulk(b"used");
    reply.int(i64::from(batch.is_some()));
    reply.bulk(b"timeout");
    reply.count(batch.map_or(0, |batch| batch.timeout.as_millis() as usize));
    reply.bulk(b"since_lastuse");
    reply.count(batch.map_or(0, |batch| now.saturating_sub(batch.last_use_ms) as usize));
    reply.bulk(b"sending_msgs");
    reply.count(batch.map_or(0, |batch| batch.sending));
    reply.bulk(b"blocked_clients");
    reply.count(batch.map_or(0, |batch| batch.callers.len()));
    reply.bulk(b"batched_iterator");
    let Some(batch) = batch else {
        reply.null();
        return Ok(());
    };
    reply.map(6);
    reply.bulk(b"keys");
    reply.count(batch.keys.len());
    reply.bulk(b"maxbulks");
    reply.count(batch.maxbulks);
    reply.bulk(b"maxbytes");
    reply.count(batch.maxbytes);
    reply.bulk(b"removed_keys");
    reply.count(batch.moved.len());
    reply.bulk(b"chunked_vals");
    reply.count(batch.chunked);
    reply.bulk(b"current");
    match batch.current() {
        Some((key, stage, position)) => {
            reply.map(3);
            reply.bulk(b"key");
            reply.bulk(key);
            reply.bulk(b"stage");
            reply.bulk(stage.as_bytes());
            reply.bulk(b"position");
            reply.count(position);
        }
        None => reply.null(),
    }
    Ok(())
}

/// `SLOTSMGRT-EXEC-WRAPPER hashkey command [args…]`: always `[code, reply]`: -1 for a bad
/// command, 0 if `hashkey` does not exist here, 1 if the command writes and `hashkey` (or its
/// tag) is in flight, else 2 and the command's own reply.
fn slotsmgrt_exec_wrapper(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ctx.reply.array(2);
    let name = arg(request, 2);
    let inner_request = Request::from_args(request.args().skip(2));
    let Some(inner) = table().resolve(&inner_request).filter(|command| wrappable(command)) else {
        ctx.reply.int(-1);
        ctx.reply.error(&format!("ERR invalid command specified ({})", String::from_utf8_lossy(name)));
        return Ok(());
    };
    if !inner.arity_ok(request.len() - 2) {
        ctx.reply.int(-1);
        ctx.reply.error(&format!("ERR wrong number of arguments for command ({})", String::from_utf8_lossy(name)));
        return Ok(());
    }
    let hashkey = arg(request, 1);
    let now = ctx.now_ms;
    if ctx.db().get_untouched(hashkey, now).is_none() {
        // Absent here, the key lives at the target, unless a migration that did not complete
        // may have left an out-of-date copy there: then it counts as in flight until a later
        // migration has deleted that copy (Codis would route to the stale copy).
        if ctx.state.migrations.is_stale(ctx.client.db, hashkey) {
            ctx.reply.int(1);
            ctx.reply.error("ERR the specified key is being migrated");
        } else {
            ctx.reply.int(0);
            ctx.reply.error("ERR the specified key doesn't exist");
        }
        return Ok(());
    }
    let in_flight = !inner.flags.contains(Flags::READONLY)
        && (ctx.state.migrations.fences.fence_of(ctx.client.db, hashkey).is_some()
            || super::fence::fence_for(ctx.state, ctx.client, inner, &inner_request).is_some());
    if in_flight {
        ctx.reply.int(1);
        ctx.reply.error("ERR the specified key is being migrated");
        return Ok(());
    }
    ctx.reply.int(2);
    // The inner reply must come now, inside the array: a blocking command answers at once.
    let deny_blocking = std::mem::replace(&mut ctx.client.deny_blocking, true);
    call(ctx, inner, &inner_request);
    ctx.client.deny_blocking = deny_blocking;
    Ok(())
}

/// Commands the wrapper may run: those that read or write data, but not the ones that cannot
/// run inside `MULTI`, pub/sub, or the wrapper itself; connection-state, transaction and server
/// commands have replies or effects that do not fit inside `[2, reply]`.
fn wrappable(command: &Command) -> bool {
    command.flags.intersects(Flags::READONLY.with(Flags::WRITE))
        && !command.flags.intersects(Flags::NO_MULTI.with(Flags::PUBSUB).with(Flags::NOT_FENCED))
}
