//! String commands.

use resp::Request;

use super::{Ctx, Handler};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Bulk, Db, Str, Value};
use crate::ldouble::LongDouble;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("getset", getset),
    ("getex", getex),
    ("getdel", getdel),
    ("mget", mget),
    ("mset", mset),
    ("msetnx", msetnx),
    ("append", append),
    ("strlen", strlen),
    ("getrange", getrange),
    ("substr", getrange),
    ("setrange", setrange),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
    ("setbit", setbit),
    ("getbit", getbit),
    ("bitcount", bitcount),
    ("bitpos", bitpos),
    ("bitop", bitop),
];

/// The string at `key` (expired keys are gone), `None` if missing, `WRONGTYPE` for other types.
pub(crate) fn string<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<Option<&'d mut Str>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => entry.value.as_str_mut().map(Some).ok_or(CmdError::WrongType),
    }
}

/// Redis' `checkStringLength`: a string may not grow past `proto-max-bulk-len`.
fn check_length(ctx: &Ctx<'_>, total: u64) -> CmdResult {
    if total > ctx.state.config.proto_max_bulk_len {
        return Err(CmdError::other("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    }
    Ok(())
}

/// How an expiry argument is expressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpireUnit {
    /// `EX`: seconds from now.
    Seconds,
    /// `PX`: milliseconds from now.
    Millis,
    /// `EXAT`: a Unix time in seconds.
    UnixSeconds,
    /// `PXAT`: a Unix time in milliseconds.
    UnixMillis,
}

/// Turns an expiry argument into an absolute Unix time in milliseconds, as Redis'
/// `getExpireMillisecondsOrReply` does (same checks, same errors).
pub(crate) fn expire_at_ms(unit: ExpireUnit, arg: &[u8], now_ms: u64, command: &str) -> Result<u64, CmdError> {
    let value = args::int(arg)?;
    let invalid = || CmdError::message(format!("ERR invalid expire time in '{command}' command"));
    let seconds = matches!(unit, ExpireUnit::Seconds | ExpireUnit::UnixSeconds);
    if value <= 0 || (seconds && value > i64::MAX / 1000) {
        return Err(invalid());
    }
    let mut millis = if seconds { value * 1000 } else { value };
    if matches!(unit, ExpireUnit::Seconds | ExpireUnit::Millis) {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        millis = millis.checked_add(now).ok_or_else(invalid)?;
    }
    u64::try_from(millis).map_err(|_| invalid())
}

/// The options `SET` and `GETEX` share (Redis' `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct StringOptions<'r> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireUnit, &'r [u8])>,
}

fn parse_options(request: &Request, from: usize, for_set: bool) -> Result<StringOptions<'_>, CmdError> {
    let mut options = StringOptions::default();
    let mut index = from;
    while let Some(option) = request.arg(index) {
        let next = request.arg(index + 1);
        // KEEPTTL and PERSIST may repeat, but not join an expiry or each other.
        let expire_free = options.expire.is_none();
        let expire_unit = [
            ("EX", ExpireUnit::Seconds),
            ("PX", ExpireUnit::Millis),
            ("EXAT", ExpireUnit::UnixSeconds),
            ("PXAT", ExpireUnit::UnixMillis),
        ]
        .into_iter()
        .find(|(name, _)| is(option, name))
        .map(|(_, unit)| unit);
        if for_set && is(option, "NX") && !options.xx {
            options.nx = true;
        } else if for_set && is(option, "XX") && !options.nx {
            options.xx = true;
        } else if for_set && is(option, "GET") {
            options.get = true;
        } else if for_set && is(option, "KEEPTTL") && expire_free && !options.persist {
            options.keepttl = true;
        } else if !for_set && is(option, "PERSIST") && expire_free && !options.keepttl {
            options.persist = true;
        } else if let (Some(unit), Some(value)) = (expire_unit, next) {
            // The same unit may repeat (the last one wins); mixing units or with KEEPTTL/PERSIST
            // may not.
            let compatible =
                !options.keepttl && !options.persist && options.expire.is_none_or(|(previous, _)| previous == unit);
            if !compatible {
                return Err(CmdError::Syntax);
            }
            options.expire = Some((unit, value));
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    Ok(options)
}

fn get(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match string(db, arg(request, 1), now)? {
        Some(value) => value.with_bytes(|bytes| reply.bulk(bytes)),
        None => reply.null(),
    }
    Ok(())
}

/// `SET` and its variants: optionally only if absent/present, optionally replying with the old
/// value, with an expiry or keeping the old one. Returns whether it wrote. With an expiry it is
/// propagated as `SET key value PXAT <ms>`, as Redis 7.0 does.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    value: &[u8],
    options: &StringOptions<'_>,
    command: &str,
    reply_int: bool,
) -> Result<bool, CmdError> {
    let now = ctx.now_ms;
    let expire_at = match options.expire {
        Some((unit, arg)) => Some(expire_at_ms(unit, arg, now, command)?),
        None => None,
    };
    let (db, reply) = ctx.db_and_reply();
    // Redis looks the key up once, for the checks and the write: one access. `Db::set` counts
    // overwriting as an access, so the look before it must not; keeping the TTL replaces the
    // value in place, which does not count, so there the look does.
    let old = if options.keepttl {
        string(db, key, now)
    } else {
        match db.get_untouched(key, now) {
            None => Ok(None),
            Some(entry) => entry.value.as_str_mut().map(Some).ok_or(CmdError::WrongType),
        }
    };
    if options.get {
        match &old {
            Err(error) => return Err(error.clone()),
            Ok(Some(value)) => value.with_bytes(|bytes| reply.bulk(bytes)),
            Ok(None) => reply.null(),
        }
    }
    let found = match old {
        Ok(old) => old.is_some(),
        Err(_) => true,
    };
    if (options.nx && found) || (options.xx && !found) {
        if !options.get {
            if reply_int { reply.int(0) } else { reply.null() }
        }
        return Ok(false);
    }
    let string = Value::Str(Str::from_value(value));
    match expire_at {
        Some(at) => {
            db.set(key, string, at, now);
            // The absolute expiry, so a replay later expires it at the same moment.
            let mut at_text = itoa::Buffer::new();
            let at_text = at_text.format(at).as_bytes();
            ctx.state.propagation.replace_with([&b"SET"[..], key, value, b"PXAT", at_text]);
        }
        None if options.keepttl && found => {
            db.replace_value(key, string);
        }
        None => {
            db.set(key, string, 0, now);
        }
    }
    if !options.get {
        if reply_int { ctx.reply.int(1) } else { ctx.reply.ok() }
    }
    Ok(true)
}

fn set(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = parse_options(request, 3, true)?;
    let wrote = set_generic(ctx, arg(request, 1), arg(request, 2), &options, "set", false)?;
    if wrote && options.get && options.expire.is_none() {
        // Replayed without `GET`, whose reply nobody reads (Redis 7.0 drops every `GET` word).
        let kept = request.args().enumerate().filter(|(index, word)| *index < 3 || !is(word, "GET"));
        ctx.state.propagation.replace_with(kept.map(|(_, word)| word));
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = StringOptions { nx: true, ..StringOptions::default() };
    set_generic(ctx, arg(request, 1), arg(request, 2), &options, "setnx", true).map(drop)
}

fn setex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = StringOptions { expire: Some((ExpireUnit::Seconds, arg(request, 2))), ..StringOptions::default() };
    set_generic(ctx, arg(request, 1), arg(request, 3), &options, "setex", false).map(drop)
}

fn psetex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = StringOptions { expire: Some((ExpireUnit::Millis, arg(request, 2))), ..StringOptions::default() };
    set_generic(ctx, arg(request, 1), arg(request, 3), &options, "psetex", false).map(drop)
}

fn getset(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = StringOptions { get: true, ..StringOptions::default() };
    set_generic(ctx, arg(request, 1), arg(request, 2), &options, "getset", false)?;
    // Replayed as the `SET` it amounts to, as Redis 7.0 does.
    ctx.state.propagation.replace_with([&b"SET"[..], arg(request, 1), arg(request, 2)]);
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = parse_options(request, 2, false)?;
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(value) = string(db, key, now)? else {
        reply.null();
        return Ok(());
    };
    let value = value.bytes().into_owned();
    let expire_at = match options.expire {
        Some((unit, arg)) => Some(expire_at_ms(unit, arg, now, "getex")?),
        None => None,
    };
    reply.bulk(&value);
    let absolute = matches!(options.expire, Some((ExpireUnit::UnixSeconds | ExpireUnit::UnixMillis, _)));
    // What changed, for the propagated stream.
    enum Changed {
        Deleted,
        ExpiresAt(u64),
        Persisted,
    }
    let changed = match expire_at {
        Some(at) if absolute && at <= now && db.deletes_expired() => {
            db.remove(key);
            Some(Changed::Deleted)
        }
        Some(at) => {
            db.set_expire(key, at);
            Some(Changed::ExpiresAt(at))
        }
        None if options.persist && db.get(key, now).is_some_and(|entry| entry.expire_at().is_some()) => {
            db.set_expire(key, 0);
            Some(Changed::Persisted)
        }
        None => None,
    };
    let propagation = &mut ctx.state.propagation;
    match changed {
        Some(Changed::Deleted) => propagation.replace_with([&b"DEL"[..], key]),
        Some(Changed::ExpiresAt(at)) => {
            let mut at_text = itoa::Buffer::new();
            propagation.replace_with([&b"PEXPIREAT"[..], key, at_text.format(at).as_bytes()]);
        }
        Some(Changed::Persisted) => propagation.replace_with([&b"PERSIST"[..], key]),
        None => {}
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match string(db, key, now)? {
        Some(value) => {
            value.with_bytes(|bytes| reply.bulk(bytes));
            db.remove(key);
            // Replayed as the deletion it is, as Redis 7.0 does.
            ctx.state.propagation.replace_with([&b"DEL"[..], key]);
        }
        None => reply.null(),
    }
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.array(request.len() - 1);
    for key in request.args().skip(1) {
        match db.get(key, now).and_then(|entry| entry.value.as_str()) {
            Some(value) => value.with_bytes(|bytes| reply.bulk(bytes)),
            None => reply.null(),
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx<'_>, request: &Request, only_if_none_exist: bool) -> CmdResult {
    if request.len().is_multiple_of(2) {
        return Err(CmdError::arity(request.name()));
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let pairs = || (1..request.len()).step_by(2).map(|index| (arg(request, index), arg(request, index + 1)));
    if only_if_none_exist && pairs().any(|(key, _)| db.contains(key, now)) {
        reply.int(0);
        return Ok(());
    }
    for (key, value) in pairs() {
        db.set(key, Value::Str(Str::from_value(value)), 0, now);
    }
    if only_if_none_exist {
        reply.int(1)
    } else {
        reply.ok()
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    mset_generic(ctx, request, false)
}

fn msetnx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    mset_generic(ctx, request, true)
}

fn append(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (key, suffix) = (arg(request, 1), arg(request, 2));
    let now = ctx.now_ms;
    let max = ctx.state.config.proto_max_bulk_len;
    let (db, reply) = ctx.db_and_reply();
    let length = match string(db, key, now)? {
        None => {
            db.set(key, Value::Str(Str::from_value(suffix)), 0, now);
            suffix.len()
        }
        Some(value) => {
            if (value.len() + suffix.len()) as u64 > max {
                return Err(CmdError::other("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
            }
            let bytes = value.make_raw();
            bytes.extend_from_slice(suffix);
            let length = bytes.len();
            db.touch(key);
            length
        }
    };
    reply.count(length);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let length = string(db, arg(request, 1), now)?.map_or(0, |value| value.len());
    reply.count(length);
    Ok(())
}

/// Clamps a Redis `start`/`end` pair (negative counts from the end) to `0..len`; `None` when the
/// range is empty.
fn clamp_range(mut start: i64, mut end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let start = args::int(arg(request, 2))?;
    let end = args::int(arg(request, 3))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match string(db, arg(request, 1), now)? {
        None => reply.bulk(b""),
        Some(value) => value.with_bytes(|bytes| match clamp_range(start, end, bytes.len() as i64) {
            Some((start, end)) => reply.bulk(&bytes[start..=end]),
            None => reply.bulk(b""),
        }),
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (key, value) = (arg(request, 1), arg(request, 3));
    let offset = args::int(arg(request, 2))?;
    let offset = usize::try_from(offset).map_err(|_| CmdError::other("ERR offset is out of range"))?;
    let now = ctx.now_ms;
    let existing = string(ctx.db(), key, now)?.map(|string| string.len());
    match existing {
        None if value.is_empty() => {
            ctx.reply.int(0);
            return Ok(());
        }
        Some(length) if value.is_empty() => {
            ctx.reply.count(length);
            return Ok(());
        }
        _ => check_length(ctx, (offset + value.len()) as u64)?,
    }
    let (db, reply) = ctx.db_and_reply();
    if existing.is_none() {
        db.set(key, Value::Str(Str::Raw(Bulk::new())), 0, now);
    }
    let Some(string) = string(db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let bytes = string.make_raw();
    if bytes.len() < offset + value.len() {
        bytes.resize(offset + value.len(), 0);
    }
    bytes[offset..offset + value.len()].copy_from_slice(value);
    let length = bytes.len();
    db.touch(key);
    reply.count(length);
    Ok(())
}

/// Adds `by` to the integer at `key` (created as 0), keeping its expiry.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let mut result = 0;
    db.update(key, now, |current| {
        let current = match current {
            None => 0,
            Some(Value::Str(value)) => value.as_int().ok_or(CmdError::NotInteger)?,
            Some(_) => return Err(CmdError::WrongType),
        };
        result = current.checked_add(by).ok_or(CmdError::other("ERR increment or decrement would overflow"))?;
        Ok(Value::Str(Str::Int(result)))
    })?;
    reply.int(result);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    incr_by(ctx, arg(request, 1), 1)
}

fn decr(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    incr_by(ctx, arg(request, 1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let by = args::int(arg(request, 2))?;
    incr_by(ctx, arg(request, 1), by)
}

fn decrby(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let by = args::int(arg(request, 2))?;
    let by = by.checked_neg().ok_or(CmdError::other("ERR decrement would overflow"))?;
    incr_by(ctx, arg(request, 1), by)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let current = match string(db, key, now)? {
        Some(Str::Int(int)) => LongDouble::from_i64(*int),
        Some(value) => value.with_bytes(LongDouble::parse).ok_or(CmdError::NotFloat)?,
        None => LongDouble::from_i64(0),
    };
    let by = LongDouble::parse(arg(request, 2)).ok_or(CmdError::NotFloat)?;
    let sum = current + by;
    if !sum.is_finite() {
        return Err(CmdError::other("ERR increment would produce NaN or Infinity"));
    }
    let text = sum.to_human();
    let value = Value::Str(Str::from_computed(text.as_bytes()));
    if !db.replace_value(key, value.clone()) {
        db.set(key, value, 0, now);
    }
    reply.bulk(text.as_bytes());
    // The result, not the increment: float formatting must not differ on replay.
    ctx.state.propagation.replace_with([&b"SET"[..], key, text.as_bytes(), b"KEEPTTL"]);
    Ok(())
}

/// A bit offset argument: `0 ..= proto-max-bulk-len * 8 - 1`.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let error = || CmdError::other("ERR bit offset is not an integer or out of range");
    let offset = args::int(arg).map_err(|_| error())?;
    let offset = u64::try_from(offset).map_err(|_| error())?;
    if offset >> 3 >= ctx.state.config.proto_max_bulk_len {
        return Err(error());
    }
    usize::try_from(offset).map_err(|_| error())
}

fn setbit(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let offset = bit_offset(ctx, arg(request, 2))?;
    let on = match args::int(arg(request, 3)) {
        Ok(0) => false,
        Ok(1) => true,
        _ => return Err(CmdError::other("ERR bit is not an integer or out of range")),
    };
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let created = string(db, key, now)?.is_none();
    if created {
        db.set(key, Value::Str(Str::Raw(Bulk::new())), 0, now);
    }
    let Some(value) = string(db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let heap_before = value.heap_bytes();
    let bytes = value.make_raw();
    let byte = offset >> 3;
    let grown = bytes.len() <= byte;
    if grown {
        bytes.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = bytes[byte] & mask != 0;
    if on {
        bytes[byte] |= mask
    } else {
        bytes[byte] &= !mask
    }
    // Redis 7.0 signals a change only when the key is new, the string grew or the bit flipped: a
    // `SETBIT` that sets a bit to what it was leaves a `WATCH` intact. The string is made raw
    // either way, as Redis makes it; that needs recounting only when it moved bytes to the heap
    // (an integer of more than 16 digits), and then the watchers hear of it too.
    let changed = created || grown || old != on;
    if changed || value.heap_bytes() != heap_before {
        db.touch(key);
    }
    reply.int(i64::from(old));
    if !changed {
        // The data did not change (only its encoding): nothing to replay, as in Redis.
        ctx.state.propagation.replace_with_nothing();
    }
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let offset = bit_offset(ctx, arg(request, 2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let bit = match string(db, arg(request, 1), now)? {
        None => false,
        Some(value) => {
            value.with_bytes(|bytes| bytes.get(offset >> 3).is_some_and(|byte| byte & (1 << (7 - (offset & 7))) != 0))
        }
    };
    reply.int(i64::from(bit));
    Ok(())
}

/// A bit range resolved against a string: inclusive bit positions, or empty.
fn bit_range(start: i64, end: i64, byte_len: usize, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { byte_len as i64 * 8 } else { byte_len as i64 };
    let (mut start, mut end) = (start, end);
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits { (start, end) } else { (start * 8, end * 8 + 7) })
}

/// The unit option of `BITCOUNT`/`BITPOS`: `BYTE` (default) or `BIT`.
fn range_unit(arg: Option<&[u8]>) -> Result<bool, CmdError> {
    match arg {
        None => Ok(false),
        Some(unit) if is(unit, "BIT") => Ok(true),
        Some(unit) if is(unit, "BYTE") => Ok(false),
        Some(_) => Err(CmdError::Syntax),
    }
}

fn bitcount(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(value) = string(db, arg(request, 1), now)? else {
        reply.int(0);
        return Ok(());
    };
    let bytes = value.bytes();
    let range = match request.len() {
        2 => (!bytes.is_empty()).then(|| (0, bytes.len() as u64 * 8 - 1)),
        4 | 5 => {
            let start = args::int(arg(request, 2))?;
            let end = args::int(arg(request, 3))?;
            // Redis 7.0 answers 0 for two negative indexes in the wrong order before anything
            // else, the unit included (so `BITCOUNT k -1 -10` is 0 even on a one-byte string,
            // where clamping both to the first byte would count it).
            if start < 0 && end < 0 && start > end {
                reply.int(0);
                return Ok(());
            }
            let in_bits = range_unit(request.arg(4))?;
            bit_range(start, end, bytes.len(), in_bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let count = range.map_or(0, |(first, last)| count_bits(&bytes, first, last));
    reply.int(i64::try_from(count).unwrap_or(i64::MAX));
    Ok(())
}

/// The number of set bits in the inclusive bit range `first..=last`: whole bytes by popcount,
/// the partial bytes at either end through masks.
fn count_bits(bytes: &[u8], first: u64, last: u64) -> u64 {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    let head_mask = 0xffu8 >> (first & 7);
    let tail_mask = 0xffu8 << (7 - (last & 7));
    let byte = |index: usize| bytes.get(index).copied().unwrap_or(0);
    if first_byte == last_byte {
        return u64::from((byte(first_byte) & head_mask & tail_mask).count_ones());
    }
    let middle: u64 = bytes
        .get(first_byte + 1..last_byte.min(bytes.len()))
        .unwrap_or_default()
        .iter()
        .map(|byte| u64::from(byte.count_ones()))
        .sum();
    u64::from((byte(first_byte) & head_mask).count_ones())
        + middle
        + u64::from((byte(last_byte) & tail_mask).count_ones())
}

fn bit_at(bytes: &[u8], bit: u64) -> bool {
    bytes.get((bit >> 3) as usize).is_some_and(|byte| byte & (1 << (7 - (bit & 7))) != 0)
}

fn bitpos(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let wanted = match args::int(arg(request, 2))? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::other("ERR The bit argument must be 1 or 0.")),
    };
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(value) = string(db, arg(request, 1), now)? else {
        reply.int(if wanted { -1 } else { 0 });
        return Ok(());
    };
    let bytes = value.bytes();
    let end_given = request.len() >= 5;
    let range = match request.len() {
        3 => (!bytes.is_empty()).then(|| (0, bytes.len() as u64 * 8 - 1)),
        4..=6 => {
            let start = args::int(arg(request, 3))?;
            let in_bits = range_unit(request.arg(5))?;
            let end = match request.arg(4) {
                Some(end) => args::int(end)?,
                None => -1,
            };
            bit_range(start, end, bytes.len(), in_bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((first, last)) = range else {
        reply.int(-1);
        return Ok(());
    };
    let found = first_bit(&bytes, first, last, wanted);
    let position = match found {
        Some(bit) => bit as i64,
        // Looking for a clear bit with no end given: the string continues with zeros after its
        // last byte, so the answer is the first bit after it (Redis' rule).
        None if !wanted && !end_given => ((last >> 3) + 1) as i64 * 8,
        None => -1,
    };
    reply.int(position);
    Ok(())
}

/// The first bit equal to `wanted` in `first..=last`, scanning whole bytes where it can.
fn first_bit(bytes: &[u8], first: u64, last: u64, wanted: bool) -> Option<u64> {
    let mut bit = first;
    while bit <= last {
        if bit & 7 == 0 && bit + 7 <= last {
            let byte = bytes.get((bit >> 3) as usize).copied().unwrap_or(0);
            let skip = if wanted { byte == 0 } else { byte == 0xff };
            if skip {
                bit += 8;
                continue;
            }
        }
        if bit_at(bytes, bit) == wanted {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

fn bitop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let name = arg(request, 1);
    let op = [("AND", Op::And), ("OR", Op::Or), ("XOR", Op::Xor), ("NOT", Op::Not)]
        .into_iter()
        .find(|(word, _)| is(name, word))
        .map(|(_, op)| op)
        .ok_or(CmdError::Syntax)?;
    if op == Op::Not && request.len() != 4 {
        return Err(CmdError::other("ERR BITOP NOT must be called with a single source key."));
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let mut sources: Vec<Vec<u8>> = Vec::with_capacity(request.len() - 3);
    for key in request.args().skip(3) {
        let bytes = match db.get(key, now) {
            None => Vec::new(),
            Some(entry) => entry.value.as_str().ok_or(CmdError::WrongType)?.bytes().into_owned(),
        };
        sources.push(bytes);
    }
    let length = sources.iter().map(Vec::len).max().unwrap_or(0);
    let byte = |source: &Vec<u8>, index: usize| source.get(index).copied().unwrap_or(0);
    let result: Vec<u8> = (0..length)
        .map(|index| {
            let mut bytes = sources.iter().map(|source| byte(source, index));
            let first = bytes.next().unwrap_or(0);
            match op {
                Op::And => bytes.fold(first, |acc, b| acc & b),
                Op::Or => bytes.fold(first, |acc, b| acc | b),
                Op::Xor => bytes.fold(first, |acc, b| acc ^ b),
                Op::Not => !first,
            }
        })
        .collect();
    let destination = arg(request, 2);
    if length > 0 {
        db.set(destination, Value::Str(Str::Raw(Bulk::from_vec(result))), 0, now);
    } else {
        db.remove(destination);
    }
    reply.count(length);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_counts_match_a_bit_by_bit_count() {
        let bytes = [0b1010_1111u8, 0xff, 0x00, 0b0000_0001, 0x5a];
        for first in 0..40u64 {
            for last in first..40u64 {
                let slow = (first..=last).filter(|bit| bit_at(&bytes, *bit)).count() as u64;
                assert_eq!(count_bits(&bytes, first, last), slow, "{first}..={last}");
            }
        }
    }

    #[test]
    fn ranges_clamp_like_getrange() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-100, 1, 5), Some((0, 1)));
    }
}
