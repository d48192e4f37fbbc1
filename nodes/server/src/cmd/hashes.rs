//! Hash commands.

use resp::Request;

use super::keys::parse_scan_options;
use super::{Ctx, Handler};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Db, Hash, Value};
use crate::ldouble::LongDouble;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hmset", hmset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hstrlen", hstrlen),
    ("hexists", hexists),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hgetall", hgetall),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// The hash at `key`: `None` if missing, `WRONGTYPE` for other types.
fn hash<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<Option<&'d mut Hash>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => entry.value.as_hash_mut().map(Some).ok_or(CmdError::WrongType),
    }
}

/// The hash at `key`, created empty if missing. Validate arguments before calling: a command that
/// fails after this would leave an empty hash behind.
fn hash_or_new<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<&'d mut Hash, CmdError> {
    let seed = db.collection_seed();
    let entry = db.entry(key, now_ms, || Value::Hash(Box::new(Hash::new(foldhash::fast::FixedState::with_seed(seed)))));
    entry.value.as_hash_mut().ok_or(CmdError::WrongType)
}

fn set_fields(ctx: &mut Ctx<'_>, request: &Request) -> Result<usize, CmdError> {
    if !request.len().is_multiple_of(2) {
        return Err(CmdError::arity(request.name()));
    }
    let key = arg(request, 1);
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let db = ctx.db();
    let hash = hash_or_new(db, key, now)?;
    let mut added = 0;
    for index in (2..request.len()).step_by(2) {
        if hash.insert(arg(request, index), arg(request, index + 1), &limits) {
            added += 1;
        }
    }
    db.touch(key);
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let added = set_fields(ctx, request)?;
    ctx.reply.count(added);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_fields(ctx, request)?;
    ctx.reply.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (key, field, value) = (arg(request, 1), arg(request, 2), arg(request, 3));
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    if hash(db, key, now)?.is_some_and(|hash| hash.get(field).is_some()) {
        reply.int(0);
        return Ok(());
    }
    hash_or_new(db, key, now)?.insert(field, value, &limits);
    db.touch(key);
    reply.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match hash(db, arg(request, 1), now)?.and_then(|hash| hash.get(arg(request, 2))) {
        Some(value) => reply.bulk(value),
        None => reply.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let hash = hash(db, arg(request, 1), now)?;
    reply.array(request.len() - 2);
    for field in request.args().skip(2) {
        match hash.as_ref().and_then(|hash| hash.get(field)) {
            Some(value) => reply.bulk(value),
            None => reply.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let removed = request.args().skip(2).filter(|field| hash.remove(field)).count();
    if removed > 0 {
        db.modified(key);
    }
    reply.count(removed);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.count(hash(db, arg(request, 1), now)?.map_or(0, |hash| hash.len()));
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let length =
        hash(db, arg(request, 1), now)?.and_then(|hash| hash.get(arg(request, 2))).map_or(0, |value| value.len());
    reply.count(length);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let exists = hash(db, arg(request, 1), now)?.is_some_and(|hash| hash.get(arg(request, 2)).is_some());
    reply.int(i64::from(exists));
    Ok(())
}

/// What `HKEYS`, `HVALS` and `HGETALL` return.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Fields,
    Values,
    Both,
}

fn hget_many(ctx: &mut Ctx<'_>, request: &Request, part: Part) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash(db, arg(request, 1), now)? else {
        if part == Part::Both {
            reply.map(0)
        } else {
            reply.array(0)
        }
        return Ok(());
    };
    match part {
        Part::Both => reply.map(hash.len()),
        Part::Fields | Part::Values => reply.array(hash.len()),
    }
    for (field, value) in hash.iter() {
        if part != Part::Values {
            reply.bulk(field);
        }
        if part != Part::Fields {
            reply.bulk(value);
        }
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    hget_many(ctx, request, Part::Fields)
}

fn hvals(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    hget_many(ctx, request, Part::Values)
}

fn hgetall(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    hget_many(ctx, request, Part::Both)
}

fn hincrby(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (key, field) = (arg(request, 1), arg(request, 2));
    let by = args::int(arg(request, 3))?;
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let current = match hash(db, key, now)?.and_then(|hash| hash.get(field)) {
        Some(value) => resp::parse_i64(value).ok_or(CmdError::other("ERR hash value is not an integer"))?,
        None => 0,
    };
    let next = current.checked_add(by).ok_or(CmdError::other("ERR increment or decrement would overflow"))?;
    hash_or_new(db, key, now)?.insert(field, itoa::Buffer::new().format(next).as_bytes(), &limits);
    db.touch(key);
    reply.int(next);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (key, field) = (arg(request, 1), arg(request, 2));
    let by = LongDouble::parse(arg(request, 3)).ok_or(CmdError::NotFloat)?;
    if !by.is_finite() {
        return Err(CmdError::other("ERR value is NaN or Infinity"));
    }
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let current = match hash(db, key, now)?.and_then(|hash| hash.get(field)) {
        Some(value) => LongDouble::parse(value).ok_or(CmdError::other("ERR hash value is not a float"))?,
        None => LongDouble::from_i64(0),
    };
    let sum = current + by;
    if !sum.is_finite() {
        return Err(CmdError::other("ERR increment would produce NaN or Infinity"));
    }
    let text = sum.to_human();
    hash_or_new(db, key, now)?.insert(field, text.as_bytes(), &limits);
    db.touch(key);
    reply.bulk(text.as_bytes());
    // The result, not the increment: float formatting must not differ on replay.
    ctx.state.propagation.replace_with([&b"HSET"[..], key, field, text.as_bytes()]);
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let count = match request.arg(2) {
        Some(count) => Some(super::random::count(count)?),
        None => None,
    };
    let with_values = match (request.len(), request.arg(3)) {
        (..=3, _) => false,
        (4, Some(option)) if is(option, "WITHVALUES") => true,
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now_ms;
    let key = arg(request, 1);
    let state = &mut *ctx.state;
    let db = state.keyspace.db(ctx.client.db);
    let Some(hash) = hash(db, key, now)? else {
        if count.is_some() {
            ctx.reply.array(0)
        } else {
            ctx.reply.null()
        }
        return Ok(());
    };
    let picks = super::random::picks(hash.len(), count, &mut state.rng);
    let Some(picks) = picks else {
        // No count: one field.
        let index = super::random::one(hash.len(), &mut state.rng);
        match hash.get_index(index) {
            Some((field, _)) => ctx.reply.bulk(field),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let resp3_pairs = with_values && ctx.reply.resp3();
    ctx.reply.array(if with_values && !resp3_pairs { picks.len() * 2 } else { picks.len() });
    for index in picks {
        if let Some((field, value)) = hash.get_index(index) {
            if resp3_pairs {
                ctx.reply.array(2);
            }
            ctx.reply.bulk(field);
            if with_values {
                ctx.reply.bulk(value);
            }
        }
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let cursor = super::keys::parse_cursor(arg(request, 2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(hash) = hash(db, arg(request, 1), now)? else {
        super::keys::reply_empty_scan(reply);
        return Ok(());
    };
    let options = parse_scan_options(request, 3)?;
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = hash.scan(cursor, options.count, |field, value| {
        if options.matches(field) {
            found.push((field.to_vec(), value.to_vec()));
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(found.len() * 2);
    for (field, value) in &found {
        reply.bulk(field);
        reply.bulk(value);
    }
    Ok(())
}
