//! The target side of asynchronous migration: `SLOTSRESTORE-ASYNC` and its `-AUTH`, `-SELECT`
//! and `-ACK` companions, as Codis' target answers them.
//!
//! Every message gets `["SLOTSRESTORE-ASYNC-ACK", code, message]`: code 0 and a short result,
//! or -1 and why; a refused message also closes the connection, so the source's batch fails as a
//! whole rather than going on past a hole.

use foldhash::fast::FixedState;
use resp::Request;

use super::{Ctx, Handler};
use crate::args::{arg, is};
use crate::error::CmdResult;
use crate::keyspace::{Hash, Set, Value, ZSet};
use crate::migrate::batch::verbs;
use crate::rdb::{self, LoadOptions};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("slotsrestore-async", slotsrestore_async),
    ("slotsrestore-async-auth", slotsrestore_async_auth),
    ("slotsrestore-async-select", slotsrestore_async_select),
    ("slotsrestore-async-ack", slotsrestore_async_ack),
];

/// The largest size hint a new collection is pre-sized for.
const MAX_HINT: usize = 1 << 22;

/// A message's outcome: `Ok(text)` acknowledges, `Err(text)` refuses.
type Ack = Result<String, String>;

/// Writes the acknowledgement; a refusal closes the connection after it.
fn reply_ack(ctx: &mut Ctx<'_>, ack: Ack) {
    let (code, message) = match ack {
        Ok(message) => (0, message),
        Err(message) => {
            // Codis' target closes the connection on an error: the source starts over.
            tracing::warn!(client = ctx.client.id, error = %message, "refused a migration message; closing the connection");
            ctx.client.close_after_reply = true;
            (-1, message)
        }
    };
    ctx.reply.array(3);
    ctx.reply.bulk(b"SLOTSRESTORE-ASYNC-ACK");
    ctx.reply.bulk_int(code);
    ctx.reply.bulk(message.as_bytes());
}

fn slotsrestore_async_auth(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let ack = if ctx.state.config.requirepass.is_empty() {
        Err("Client sent AUTH, but no password is set".to_string())
    } else if ctx.state.config.requirepass.as_bytes() == arg(request, 1) {
        ctx.client.authenticated = true;
        Ok("OK".to_string())
    } else {
        ctx.client.authenticated = false;
        Err("invalid password".to_string())
    };
    reply_ack(ctx, ack);
    Ok(())
}

fn slotsrestore_async_select(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let ack = select(ctx, arg(request, 1));
    reply_ack(ctx, ack);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, index: &[u8]) -> Ack {
    let db = resp::parse_i64(index)
        .and_then(|db| usize::try_from(db).ok())
        .filter(|db| *db < ctx.state.keyspace.len())
        .ok_or_else(|| format!("invalid DB index (DB={})", String::from_utf8_lossy(index)))?;
    ctx.client.db = db;
    if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
        info.db = db;
    }
    Ok(db.to_string())
}

/// Our source reads acknowledgements as replies on its own connection, so this command only
/// arrives by mistake (Codis' source receives it as a command from the target).
fn slotsrestore_async_ack(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.reply.error("ERR invalid client, permission denied");
    Ok(())
}

fn slotsrestore_async(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let ack = restore_message(ctx, request);
    if ack.is_ok() && ctx.state.propagation.is_listening() {
        propagate(ctx, request);
    }
    reply_ack(ctx, ack);
    Ok(())
}

/// The commands that redo an applied message, for the log and the replicas: standard ones,
/// which a stock `redis-server` replica and a replay understand (the message itself only means
/// something between two migrating servers). The key's expiry follows as an absolute time.
fn propagate(ctx: &mut Ctx<'_>, request: &Request) {
    let verb = arg(request, 1);
    if is(verb, "select") {
        ctx.state.propagation.replace_with_nothing();
        return;
    }
    let key = arg(request, 2);
    let elements = request.args().skip(5);
    let propagation = &mut ctx.state.propagation;
    if is(verb, verbs::DELETE) || is(verb, "del") {
        propagation.replace_with([&b"DEL"[..], key]);
        return;
    }
    if request.len() <= 5 && !(is(verb, verbs::STRING) || is(verb, verbs::OBJECT)) {
        // No elements (a chunk that only sets the expiry) or the expiry verb: the expiry only.
    } else if is(verb, verbs::STRING) {
        propagation.replace_with([&b"SET"[..], key, arg(request, 4)]);
    } else if is(verb, verbs::OBJECT) {
        propagation.replace_with([&b"RESTORE"[..], key, b"0", arg(request, 4), b"REPLACE"]);
    } else if is(verb, verbs::LIST) {
        propagation.replace_with([&b"RPUSH"[..], key].into_iter().chain(elements));
    } else if is(verb, verbs::HASH) {
        propagation.replace_with([&b"HSET"[..], key].into_iter().chain(elements));
    } else if is(verb, verbs::DICT) {
        propagation.replace_with([&b"SADD"[..], key].into_iter().chain(elements));
    } else if is(verb, verbs::ZSET) {
        // Members and little-endian scores become ZADD's score-member pairs.
        let pairs: Vec<&[u8]> = elements.collect();
        let mut args: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), key.to_vec()];
        for pair in pairs.chunks(2) {
            let score = <[u8; 8]>::try_from(pair[1]).map(f64::from_le_bytes).unwrap_or_default();
            args.push(resp::encode::format_double(score).into_bytes());
            args.push(pair[0].to_vec());
        }
        propagation.replace_with(args);
    }
    let now = ctx.now_ms;
    let expire_at = ctx.db().get_untouched(key, now).and_then(|entry| entry.expire_at());
    let propagation = &mut ctx.state.propagation;
    match expire_at {
        Some(at) => propagation.replace_with([&b"PEXPIREAT"[..], key, at.to_string().as_bytes()]),
        None => propagation.replace_with([&b"PERSIST"[..], key]),
    }
}

fn wrong_arguments(request: &Request) -> String {
    format!("wrong number of arguments (argc={},cmd={})", request.len(), String::from_utf8_lossy(arg(request, 1)))
}

/// Applies one message.
fn restore_message(ctx: &mut Ctx<'_>, request: &Request) -> Ack {
    if ctx.state.migrations.batches[ctx.client.db].is_some() {
        // A server sending this database elsewhere takes nothing in: no migration cycles.
        return Err("the specified DB is being migrated".to_string());
    }
    let verb = arg(request, 1);
    if is(verb, "select") {
        if request.len() != 3 {
            return Err(wrong_arguments(request));
        }
        return select(ctx, arg(request, 2));
    }
    if request.len() < 3 {
        return Err(wrong_arguments(request));
    }
    let key = arg(request, 2);
    let now = ctx.now_ms;
    if is(verb, verbs::DELETE) || is(verb, "del") {
        if request.len() != 3 {
            return Err(wrong_arguments(request));
        }
        let deleted = ctx.db().remove(key).is_some();
        return Ok(if deleted { "1" } else { "0" }.to_string());
    }
    if request.len() < 4 {
        return Err(wrong_arguments(request));
    }
    let ttl = arg(request, 3);
    let ttl = resp::parse_i64(ttl)
        .and_then(|ttl| u64::try_from(ttl).ok())
        .ok_or_else(|| format!("invalid TTL value (TTL={})", String::from_utf8_lossy(ttl)))?;
    let result = if is(verb, verbs::EXPIRE) {
        if request.len() != 4 {
            return Err(wrong_arguments(request));
        }
        if ctx.db().get_untouched(key, now).is_none() {
            return Err(format!("the specified key doesn't exist ({})", String::from_utf8_lossy(key)));
        }
        "1".to_string()
    } else if is(verb, verbs::STRING) || is(verb, verbs::OBJECT) {
        if request.len() != 5 {
            return Err(wrong_arguments(request));
        }
        if ctx.db().get_untouched(key, now).is_some() {
            return Err(format!("the specified key already exists ({})", String::from_utf8_lossy(key)));
        }
        let value = if is(verb, verbs::STRING) {
            Value::Str(crate::keyspace::Str::from_value(arg(request, 4)))
        } else {
            let limits = ctx.state.config.encoding_limits();
            let load = LoadOptions { limits, seed: ctx.db().collection_seed() };
            rdb::restore_payload_with(arg(request, 4), &load).map_err(|error| format!("invalid payload: {error}"))?
        };
        ctx.db().set(key, value, 0, now);
        "1".to_string()
    } else {
        append_chunk(ctx, request, verb, key)?
    };
    // The common tail: the message's TTL (temporary while chunks arrive, then the real one).
    let expire_at = if ttl == 0 { 0 } else { now.saturating_add(ttl) };
    ctx.db().set_expire(key, expire_at);
    Ok(result)
}

/// `list|hash|dict|zset key ttl hint elements…`: appends a chunk, creating the key with the
/// first one; acknowledges with the collection's new size.
fn append_chunk(ctx: &mut Ctx<'_>, request: &Request, verb: &[u8], key: &[u8]) -> Ack {
    if request.len() < 5 {
        return Err(wrong_arguments(request));
    }
    let hint_arg = arg(request, 4);
    let hint = resp::parse_i64(hint_arg)
        .and_then(|hint| usize::try_from(hint).ok())
        .ok_or_else(|| format!("invalid Hint value (Hint={})", String::from_utf8_lossy(hint_arg)))?;
    // The final size pre-sizes a new collection (Codis' dictExpand), within reason: the hint
    // comes from the network.
    let hint = hint.min(MAX_HINT);
    let elements: Vec<&[u8]> = request.args().skip(5).collect();
    let pairs = is(verb, verbs::HASH) || is(verb, verbs::ZSET);
    if pairs && !elements.len().is_multiple_of(2) {
        return Err(wrong_arguments(request));
    }
    let scores: Vec<f64> = if is(verb, verbs::ZSET) {
        elements
            .chunks(2)
            .enumerate()
            .map(|(index, pair)| {
                <[u8; 8]>::try_from(pair[1])
                    .map(f64::from_le_bytes)
                    .ok()
                    .filter(|score| !score.is_nan())
                    .ok_or_else(|| format!("invalid zset score ([{index}])"))
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let db = ctx.db();
    let exists = db.get_untouched(key, now).is_some();
    if !exists && elements.is_empty() {
        return Err(format!("the specified key doesn't exist ({})", String::from_utf8_lossy(key)));
    }
    let seed = db.collection_seed();
    let first = elements.first().copied().unwrap_or_default();
    let make: Box<dyn FnOnce() -> Value> = if is(verb, verbs::LIST) {
        Box::new(|| Value::List(Box::default()))
    } else if is(verb, verbs::HASH) {
        Box::new(move || Value::Hash(Box::new(Hash::new(FixedState::with_seed(seed)))))
    } else if is(verb, verbs::DICT) {
        Box::new(move || Value::Set(Box::new(Set::for_member(first, seed))))
    } else if is(verb, verbs::ZSET) {
        Box::new(move || Value::ZSet(Box::new(ZSet::new(seed, false))))
    } else {
        return Err(format!("unknown command (argc={},cmd={})", request.len(), String::from_utf8_lossy(verb)));
    };
    let entry = db.entry(key, now, make);
    if !exists {
        match &mut entry.value {
            Value::Hash(hash) => hash.reserve(hint),
            Value::Set(set) => set.reserve(hint),
            Value::ZSet(zset) => zset.reserve(hint),
            Value::List(_) | Value::Str(_) => {}
        }
    }
    let size = match &mut entry.value {
        Value::List(list) if is(verb, verbs::LIST) => {
            elements.iter().for_each(|element| list.push_back(element));
            list.len()
        }
        Value::Hash(hash) if is(verb, verbs::HASH) => {
            for pair in elements.chunks(2) {
                hash.insert(pair[0], pair[1], &limits);
            }
            hash.len()
        }
        Value::Set(set) if is(verb, verbs::DICT) => {
            elements.iter().for_each(|member| {
                set.insert(member, &limits);
            });
            set.len()
        }
        Value::ZSet(zset) if is(verb, verbs::ZSET) => {
            for (pair, score) in elements.chunks(2).zip(&scores) {
                zset.insert(pair[0], *score, &limits);
            }
            zset.len()
        }
        other => {
            return Err(format!("wrong type (expect={},got={})", String::from_utf8_lossy(verb), other.type_name()));
        }
    };
    db.touch(key);
    Ok(size.to_string())
}
