//! Blocking list and sorted set commands: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP; and serving blocked clients when their keys become ready.
//!
//! A blocking command that finds data behaves as its non-blocking form. One that finds none
//! registers the client in [`crate::blocking::Blocked`] and writes no reply; the connection then
//! waits (see `session`). Whoever later creates one of its keys — `LPUSH`, `ZADD`, a served
//! `BLMOVE`, `RENAME`, `MOVE`, `SWAPDB` — makes the key ready, and right after that command
//! [`serve_ready_keys`] pops for the waiters in the order they blocked and posts each its reply.
//! Inside `EXEC` nothing blocks: the command answers as if it had timed out, as Redis does.

use bytes::BytesMut;
use resp::Request;

use super::lists::{self, End};
use super::{Ctx, Handler, zsets};
use crate::blocking::{BlockedClient, Wait, WaitKind};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Db, Key, Value};
use crate::ldouble::LongDouble;
use crate::outbox::Delivery;
use crate::reply::Reply;
use crate::state::{Block, State};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("blpop", blpop),
    ("brpop", brpop),
    ("brpoplpush", brpoplpush),
    ("blmove", blmove),
    ("blmpop", blmpop),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("bzmpop", bzmpop),
];

/// Reads a timeout in seconds (a `long double`; 0: forever) into a deadline, as Redis 7.0's
/// `getTimeoutFromObjectOrReply`: milliseconds truncated, so under a millisecond is forever; a
/// value too large to convert counts as negative, as it does on x86-64.
fn deadline(arg: &[u8], now_ms: u64) -> Result<Option<u64>, CmdError> {
    let seconds = LongDouble::parse(arg).ok_or(CmdError::other("ERR timeout is not a float or out of range"))?;
    let millis = seconds.millis_truncated();
    if millis < 0 {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    // A deadline past the end of time never comes.
    Ok((millis > 0).then(|| now_ms.checked_add(millis.unsigned_abs())).flatten())
}

/// Blocks the calling client on `keys` until served or `deadline_ms`; inside `EXEC` answers at
/// once as a timeout would (`null` is the reply shape of that case).
fn block(ctx: &mut Ctx<'_>, keys: &[&[u8]], wait: Wait, deadline_ms: Option<u64>, null: fn(&mut Reply<'_>)) {
    if ctx.client.deny_blocking {
        null(&mut ctx.reply);
        return;
    }
    let client = BlockedClient {
        db: ctx.client.db,
        keys: keys.iter().map(|key| Key::from_slice(key)).collect(),
        wait,
        version: ctx.client.version,
        deadline_ms,
    };
    ctx.state.blocked.block(&mut ctx.state.keyspace, ctx.client.id, client);
    ctx.client.blocked = Some(Block { deadline_ms });
}

/// The first of `keys` holding a value of `kind`, checking each existing key's type in order
/// (`WRONGTYPE` for the first one of another type, as Redis checks them one by one).
fn first_ready<'k>(db: &mut Db, keys: &[&'k [u8]], kind: WaitKind, now_ms: u64) -> Result<Option<&'k [u8]>, CmdError> {
    for key in keys {
        if let Some(entry) = db.get(key, now_ms) {
            if kind_of(&entry.value) != Some(kind) {
                return Err(CmdError::WrongType);
            }
            return Ok(Some(key));
        }
    }
    Ok(None)
}

fn kind_of(value: &Value) -> Option<WaitKind> {
    match value {
        Value::List(_) => Some(WaitKind::List),
        Value::ZSet(_) => Some(WaitKind::ZSet),
        _ => None,
    }
}

/// Pops for `wait` from `key`, which holds a value of the wait's kind, and writes the reply.
/// Returns how many elements it popped.
fn serve(db: &mut Db, key: &[u8], wait: &Wait, reply: &mut Reply<'_>, now_ms: u64) -> Result<usize, CmdError> {
    match wait {
        Wait::ListPop { end, count } => {
            let popped = lists::pop(db, key, *end, count.unwrap_or(1), now_ms)?.unwrap_or_default();
            reply.array(2);
            reply.bulk(key);
            match count {
                None => reply.bulk(popped.first().map_or(&b""[..], |element| element)),
                Some(_) => {
                    reply.array(popped.len());
                    for element in &popped {
                        reply.bulk(element);
                    }
                }
            }
            Ok(popped.len())
        }
        Wait::ListMove { from, to, destination, .. } => {
            match lists::move_element(db, key, destination, *from, *to, now_ms)? {
                Some(element) => reply.bulk(&element),
                None => reply.null(),
            }
            Ok(1)
        }
        Wait::ZPop { highest, count } => {
            let popped = zsets::pop(db, key, *highest, count.unwrap_or(1), now_ms)?.unwrap_or_default();
            match count {
                None => {
                    reply.array(3);
                    reply.bulk(key);
                    match popped.first() {
                        Some((member, score)) => {
                            reply.bulk(member);
                            reply.double(*score);
                        }
                        None => {
                            reply.null();
                            reply.null();
                        }
                    }
                }
                Some(_) => zsets::write_mpop(reply, key, &popped),
            }
            Ok(popped.len())
        }
    }
}

/// Serves `wait` now from the first ready key, or blocks.
fn pop_or_block(
    ctx: &mut Ctx<'_>,
    request: &Request,
    keys: &[&[u8]],
    wait: Wait,
    deadline_ms: Option<u64>,
    null: fn(&mut Reply<'_>),
) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match first_ready(db, keys, wait.kind(), now)? {
        Some(key) => {
            let popped = serve(db, key, &wait, reply, now)?;
            // Replayed as the pop it was: a replica must never block. `BLMOVE` keeps the words
            // its client wrote.
            match wait {
                Wait::ListMove { rpoplpush: false, .. } => {
                    ctx.state
                        .propagation
                        .replace_with([&b"LMOVE"[..]].into_iter().chain(request.args().skip(1).take(4)));
                }
                _ if ctx.state.propagation.is_listening() => {
                    ctx.state.propagation.replace_with(unblocked_pop(key, &wait, popped));
                }
                _ => {}
            }
            Ok(())
        }
        None => {
            block(ctx, keys, wait, deadline_ms, null);
            Ok(())
        }
    }
}

fn null_array(reply: &mut Reply<'_>) {
    reply.null_array();
}

fn null(reply: &mut Reply<'_>) {
    reply.null();
}

/// `BLPOP`/`BRPOP key [key …] timeout`.
fn list_pop(ctx: &mut Ctx<'_>, request: &Request, end: End) -> CmdResult {
    let deadline_ms = deadline(request.arg(request.len() - 1).unwrap_or_default(), ctx.now_ms)?;
    let keys: Vec<&[u8]> = request.args().skip(1).take(request.len() - 2).collect();
    pop_or_block(ctx, request, &keys, Wait::ListPop { end, count: None }, deadline_ms, null_array)
}

fn blpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    list_pop(ctx, request, End::Left)
}

fn brpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    list_pop(ctx, request, End::Right)
}

/// `BLMOVE`/`BRPOPLPUSH`: the destination's type is checked only once there is an element to
/// move, as Redis does.
fn list_move(ctx: &mut Ctx<'_>, request: &Request, from: End, to: End, timeout: &[u8], rpoplpush: bool) -> CmdResult {
    let deadline_ms = deadline(timeout, ctx.now_ms)?;
    let source = request.arg(1).unwrap_or_default();
    let destination = Key::from_slice(request.arg(2).unwrap_or_default());
    // Inside EXEC a missing source answers a null bulk (Redis' `addReplyNull`), while a timeout
    // answers a null array.
    pop_or_block(ctx, request, &[source], Wait::ListMove { from, to, destination, rpoplpush }, deadline_ms, null)
}

fn brpoplpush(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    list_move(ctx, request, End::Right, End::Left, request.arg(3).unwrap_or_default(), true)
}

fn blmove(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let from = End::parse(request.arg(3).unwrap_or_default())?;
    let to = End::parse(request.arg(4).unwrap_or_default())?;
    list_move(ctx, request, from, to, request.arg(5).unwrap_or_default(), false)
}

/// `BLMPOP timeout numkeys key … LEFT|RIGHT [COUNT n]`: the timeout is read last, as Redis
/// reads it.
fn blmpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (keys, end, count) = lists::parse_mpop(request, 2, |word| End::parse(word).ok())?;
    let deadline_ms = deadline(request.arg(1).unwrap_or_default(), ctx.now_ms)?;
    pop_or_block(ctx, request, &keys, Wait::ListPop { end, count: Some(count) }, deadline_ms, null_array)
}

/// `BZPOPMIN`/`BZPOPMAX key [key …] timeout`.
fn zset_pop(ctx: &mut Ctx<'_>, request: &Request, highest: bool) -> CmdResult {
    let deadline_ms = deadline(request.arg(request.len() - 1).unwrap_or_default(), ctx.now_ms)?;
    let keys: Vec<&[u8]> = request.args().skip(1).take(request.len() - 2).collect();
    pop_or_block(ctx, request, &keys, Wait::ZPop { highest, count: None }, deadline_ms, null_array)
}

fn bzpopmin(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    zset_pop(ctx, request, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    zset_pop(ctx, request, true)
}

/// `BZMPOP timeout numkeys key … MIN|MAX [COUNT n]`: the timeout is read last, as Redis reads
/// it.
fn bzmpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (keys, highest, count) = lists::parse_mpop(request, 2, zsets::highest)?;
    let deadline_ms = deadline(request.arg(1).unwrap_or_default(), ctx.now_ms)?;
    pop_or_block(ctx, request, &keys, Wait::ZPop { highest, count: Some(count) }, deadline_ms, null_array)
}

/// Serves the clients blocked on every key made ready since the last call, until no key is
/// ready: serving a `BLMOVE` can make its destination ready in turn.
pub fn serve_ready_keys(state: &mut State, now_ms: u64) {
    loop {
        let mut served_any = false;
        for index in 0..state.keyspace.len() {
            for key in state.keyspace.db(index).take_ready() {
                serve_key(state, index, &key, now_ms);
                served_any = true;
            }
        }
        if !served_any {
            break;
        }
    }
}

/// Serves the waiters of one ready key, first blocked first, while it holds data; waiters for
/// another kind of value keep waiting.
fn serve_key(state: &mut State, db_index: usize, key: &[u8], now_ms: u64) {
    let Some(kind) = state.keyspace.db(db_index).get(key, now_ms).and_then(|entry| kind_of(&entry.value)) else {
        return;
    };
    for id in state.keyspace.db(db_index).waiters(key) {
        if state.blocked.get(id).is_none_or(|client| client.wait.kind() != kind) {
            continue;
        }
        let Some(client) = state.blocked.unblock(&mut state.keyspace, id) else {
            continue;
        };
        let mut out = BytesMut::new();
        let mut reply = Reply::new(&mut out, client.version);
        match serve(state.keyspace.db(db_index), key, &client.wait, &mut reply, now_ms) {
            // Served here, after the command that readied the key: the change goes on the stream
            // as the pop it was (a replica must not block to redo it).
            Ok(popped) if state.propagation.is_listening() => {
                let pop = Request::from_args(unblocked_pop(key, &client.wait, popped));
                crate::propagate::push_unit(state, db_index, pop);
            }
            Ok(_) => {}
            Err(error) => reply.error(&error.to_string()),
        }
        if let Some(info) = state.clients.get(&id) {
            info.outbox.send(Delivery::Unblocked(out.freeze()));
        }
        if state.keyspace.db(db_index).peek(key).is_none() {
            break;
        }
    }
}

/// The non-blocking command that redoes what serving `wait` on `key` did, having popped
/// `popped` elements, in Redis 7.0's words: `BLPOP` as `LPOP key`, `BLMPOP` as `LPOP key
/// <popped>`, `BRPOPLPUSH` as `RPOPLPUSH`, `BLMOVE` as `LMOVE`, `BZPOPMIN` as `ZPOPMIN key`,
/// `BZMPOP` as `ZPOPMIN key <popped>`.
fn unblocked_pop(key: &[u8], wait: &Wait, popped: usize) -> Vec<Vec<u8>> {
    let with_count = |name: &[u8], count: &Option<usize>| {
        let mut args = vec![name.to_vec(), key.to_vec()];
        if count.is_some() {
            args.push(popped.to_string().into_bytes());
        }
        args
    };
    match wait {
        Wait::ListPop { end, count } => with_count(end.pop_command(), count),
        Wait::ListMove { destination, rpoplpush: true, .. } => {
            vec![b"RPOPLPUSH".to_vec(), key.to_vec(), destination.to_vec()]
        }
        Wait::ListMove { from, to, destination, rpoplpush: false } => {
            vec![b"LMOVE".to_vec(), key.to_vec(), destination.to_vec(), from.word().to_vec(), to.word().to_vec()]
        }
        Wait::ZPop { highest, count } => with_count(zsets::pop_name(*highest), count),
    }
}

/// Ends client `id`'s block early (`CLIENT UNBLOCK`): with the timeout reply, or with `error`.
/// Returns whether it was blocked.
pub fn unblock_early(state: &mut State, id: u64, error: Option<&str>) -> bool {
    let Some(client) = state.blocked.unblock(&mut state.keyspace, id) else {
        return false;
    };
    let mut out = BytesMut::new();
    let mut reply = Reply::new(&mut out, client.version);
    match error {
        Some(error) => reply.error(error),
        None => reply.null_array(),
    }
    if let Some(info) = state.clients.get(&id) {
        info.outbox.send(Delivery::Unblocked(out.freeze()));
    }
    true
}
