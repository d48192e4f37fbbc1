//! Generic key commands: existence, type, expiry, renaming, copying, moving, iterating.

use resp::Request;

use super::strings::ExpireUnit;
use super::{Ctx, Handler};
use crate::args::{self, arg, is};
use crate::config::EvictionPolicy;
use crate::error::{CmdError, CmdResult};
use crate::glob;
use crate::keyspace::{Key, Str, Value};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", del),
    ("exists", exists),
    ("type", type_),
    ("expire", expire),
    ("pexpire", pexpire),
    ("expireat", expireat),
    ("pexpireat", pexpireat),
    ("ttl", ttl),
    ("pttl", pttl),
    ("expiretime", expiretime),
    ("pexpiretime", pexpiretime),
    ("persist", persist),
    ("rename", rename),
    ("renamenx", renamenx),
    ("copy", copy),
    ("move", move_),
    ("keys", keys),
    ("scan", scan),
    ("randomkey", randomkey),
    ("touch", touch),
    ("object", object),
    ("object|help", object),
    ("object|idletime", object),
    ("object|freq", object),
    ("object|encoding", object),
    ("object|refcount", object),
];

fn del(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let mut deleted = 0;
    for key in request.args().skip(1) {
        if db.get_untouched(key, now).is_some() {
            db.remove(key);
            deleted += 1;
        }
    }
    reply.count(deleted);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let count = request.args().skip(1).filter(|key| db.get_untouched(key, now).is_some()).count();
    reply.count(count);
    Ok(())
}

fn type_(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let name = db.get_untouched(arg(request, 1), now).map_or("none", |entry| entry.value.type_name());
    reply.simple(name);
    Ok(())
}

/// `EXPIRE`-family options (Redis' `parseExtendedExpireArgumentsOrReply`).
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_generic(ctx: &mut Ctx<'_>, request: &Request, unit: ExpireUnit, command: &str) -> CmdResult {
    let mut flags = ExpireFlags::default();
    for option in request.args().skip(3) {
        if is(option, "NX") {
            flags.nx = true;
        } else if is(option, "XX") {
            flags.xx = true;
        } else if is(option, "GT") {
            flags.gt = true;
        } else if is(option, "LT") {
            flags.lt = true;
        } else {
            return Err(CmdError::message(format!("ERR Unsupported option {}", String::from_utf8_lossy(option))));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(CmdError::other("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if flags.gt && flags.lt {
        return Err(CmdError::other("ERR GT and LT options at the same time are not compatible"));
    }
    let mut when = i128::from(args::int(arg(request, 2))?);
    let invalid = || CmdError::message(format!("ERR invalid expire time in '{command}' command"));
    if matches!(unit, ExpireUnit::Seconds | ExpireUnit::UnixSeconds) {
        if when > i128::from(i64::MAX / 1000) || when < i128::from(i64::MIN / 1000) {
            return Err(invalid());
        }
        when *= 1000;
    }
    let now = i128::from(ctx.now_ms);
    if matches!(unit, ExpireUnit::Seconds | ExpireUnit::Millis) {
        when += now;
    }
    if when > i128::from(i64::MAX) {
        return Err(invalid());
    }
    let key = arg(request, 1);
    let now_ms = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(entry) = db.get_untouched(key, now_ms) else {
        reply.int(0);
        return Ok(());
    };
    let current = entry.expire_at().map(i128::from);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|current| when <= current))
        || (flags.lt && current.is_some_and(|current| when >= current));
    if refused {
        reply.int(0);
        return Ok(());
    }
    if when <= now && db.deletes_expired() {
        db.remove(key);
        ctx.state.propagation.replace_with([&b"DEL"[..], key]);
    } else {
        // (Replaying, a time already past is kept as it is: the stream deletes the key later.)
        let at = u64::try_from(when).unwrap_or(0).max(1);
        db.set_expire(key, at);
        // Replayed later, a relative expiry would land later: `PEXPIREAT` with the absolute
        // time instead, the options kept (Redis 7.0 rewrites the name and the time only).
        if unit != ExpireUnit::UnixMillis {
            let mut at_text = itoa::Buffer::new();
            let args =
                [&b"PEXPIREAT"[..], key, at_text.format(at).as_bytes()].into_iter().chain(request.args().skip(3));
            ctx.state.propagation.replace_with(args);
        }
    }
    ctx.reply.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    expire_generic(ctx, request, ExpireUnit::Seconds, "expire")
}

fn pexpire(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    expire_generic(ctx, request, ExpireUnit::Millis, "pexpire")
}

fn expireat(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    expire_generic(ctx, request, ExpireUnit::UnixSeconds, "expireat")
}

fn pexpireat(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    expire_generic(ctx, request, ExpireUnit::UnixMillis, "pexpireat")
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`: -2 for a missing key, -1 without expiry.
fn ttl_generic(ctx: &mut Ctx<'_>, request: &Request, millis: bool, absolute: bool) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let value = match db.get_untouched(arg(request, 1), now) {
        None => -2,
        Some(entry) => match entry.expire_at() {
            None => -1,
            Some(at) => {
                let at = i64::try_from(at).unwrap_or(i64::MAX);
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                let ttl = if absolute { at } else { (at - now).max(0) };
                // Rounded to the nearest second without overflowing at `PXAT i64::MAX` (where
                // Redis' C arithmetic also yields the rounded-up value).
                if millis { ttl } else { ((i128::from(ttl) + 500) / 1000) as i64 }
            }
        },
    };
    reply.int(value);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ttl_generic(ctx, request, false, false)
}

fn pttl(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ttl_generic(ctx, request, true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ttl_generic(ctx, request, false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ttl_generic(ctx, request, true, true)
}

fn persist(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let had_expiry = db.get(key, now).is_some_and(|entry| entry.expire_at().is_some());
    if had_expiry {
        db.set_expire(key, 0);
    }
    reply.int(i64::from(had_expiry));
    Ok(())
}

fn rename_generic(ctx: &mut Ctx<'_>, request: &Request, only_if_new: bool) -> CmdResult {
    let (from, to) = (arg(request, 1), arg(request, 2));
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    if db.get(from, now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if from == to {
        if only_if_new {
            reply.int(0)
        } else {
            reply.ok()
        }
        return Ok(());
    }
    if only_if_new && db.get(to, now).is_some() {
        reply.int(0);
        return Ok(());
    }
    if let Some(entry) = db.remove(from) {
        db.insert_entry(to, entry);
    }
    if only_if_new {
        reply.int(1)
    } else {
        reply.ok()
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    rename_generic(ctx, request, false)
}

fn renamenx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    rename_generic(ctx, request, true)
}

fn copy(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let source_db = ctx.client.db;
    let mut target_db = source_db;
    let mut replace = false;
    let mut index = 3;
    while let Some(option) = request.arg(index) {
        if is(option, "REPLACE") {
            replace = true;
        } else if is(option, "DB") && request.arg(index + 1).is_some() {
            target_db = args::db_index(arg(request, index + 1), ctx.state.keyspace.len())?;
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let (from, to) = (arg(request, 1), arg(request, 2));
    if source_db == target_db && from == to {
        return Err(CmdError::other("ERR source and destination objects are the same"));
    }
    let now = ctx.now_ms;
    let Some(entry) = ctx.state.keyspace.db(source_db).get(from, now).cloned() else {
        ctx.reply.int(0);
        return Ok(());
    };
    let target = ctx.state.keyspace.db(target_db);
    if target.get(to, now).is_some() && !replace {
        ctx.reply.int(0);
        return Ok(());
    }
    target.remove(to);
    target.insert_entry(to, entry);
    ctx.reply.int(1);
    Ok(())
}

fn move_(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let target_db = args::db_index(arg(request, 2), ctx.state.keyspace.len())?;
    let source_db = ctx.client.db;
    if source_db == target_db {
        return Err(CmdError::other("ERR source and destination objects are the same"));
    }
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (source, target) = ctx.state.keyspace.pair(source_db, target_db);
    if source.get(key, now).is_none() || target.get(key, now).is_some() {
        ctx.reply.int(0);
        return Ok(());
    }
    if let Some(entry) = source.remove(key) {
        target.insert_entry(key, entry);
    }
    ctx.reply.int(1);
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let pattern = arg(request, 1);
    let all = pattern == b"*";
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let found: Vec<&Key> = db
        .keys()
        .filter(|(key, entry)| !entry.is_expired(now) && (all || glob::matches(pattern, key, false)))
        .map(|(key, _)| key)
        .collect();
    reply.array(found.len());
    for key in found {
        reply.bulk(key);
    }
    Ok(())
}

/// A `SCAN`-family cursor argument, read as Redis reads it with C's `strtoul`: optional leading
/// `+`/`-` (a negative number wraps around), decimal digits, nothing else; an empty argument is 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::other("ERR invalid cursor");
    let (negative, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, arg),
    };
    if arg.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut value: u64 = 0;
    for digit in digits {
        value =
            value.checked_mul(10).and_then(|value| value.checked_add(u64::from(digit - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if negative { value.wrapping_neg() } else { value })
}

/// `MATCH` and `COUNT`, the options every `SCAN` variant takes.
pub(crate) struct ScanOptions<'r> {
    /// Only elements matching this glob (`None`: all).
    pub pattern: Option<&'r [u8]>,
    /// How much work one call does.
    pub count: usize,
    /// `SCAN`'s `TYPE` filter.
    pub type_name: Option<&'r [u8]>,
}

impl ScanOptions<'_> {
    /// Whether `element` passes the `MATCH` filter.
    pub fn matches(&self, element: &[u8]) -> bool {
        self.pattern.is_none_or(|pattern| glob::matches(pattern, element, false))
    }
}

/// The reply of `HSCAN`/`SSCAN`/`ZSCAN` on a missing key: cursor 0, nothing found. Redis looks
/// the key up before it reads the options, so a missing key gets this whatever they say.
pub(crate) fn reply_empty_scan(reply: &mut crate::reply::Reply<'_>) {
    reply.array(2);
    reply.bulk(b"0");
    reply.array(0);
}

/// Parses `[MATCH pattern] [COUNT count]` from argument `from` on (`HSCAN`, `SSCAN`, `ZSCAN`).
pub(crate) fn parse_scan_options(request: &Request, from: usize) -> Result<ScanOptions<'_>, CmdError> {
    parse_scan_options_with(request, from, false)
}

fn parse_scan_options_with(request: &Request, from: usize, allow_type: bool) -> Result<ScanOptions<'_>, CmdError> {
    let mut options = ScanOptions { pattern: None, count: 10, type_name: None };
    let mut index = from;
    while let Some(option) = request.arg(index) {
        let value = request.arg(index + 1).ok_or(CmdError::Syntax)?;
        if is(option, "COUNT") {
            let parsed = args::int(value)?;
            if parsed < 1 {
                return Err(CmdError::Syntax);
            }
            options.count = usize::try_from(parsed).unwrap_or(usize::MAX);
        } else if is(option, "MATCH") {
            options.pattern = (value != b"*").then_some(value);
        } else if allow_type && is(option, "TYPE") {
            options.type_name = Some(value);
        } else {
            return Err(CmdError::Syntax);
        }
        index += 2;
    }
    Ok(options)
}

fn scan(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let cursor = parse_cursor(arg(request, 1))?;
    let options = parse_scan_options_with(request, 2, true)?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let mut found: Vec<Key> = Vec::new();
    let next = db.scan(cursor, options.count, |key, _| {
        if options.matches(key) {
            found.push(key.clone());
        }
    });
    // Filter after the walk: expiring deletes keys, which the walk itself must not do.
    found.retain(|key| match db.get_untouched(key, now) {
        None => false,
        Some(entry) => {
            options.type_name.is_none_or(|wanted| entry.value.type_name().as_bytes().eq_ignore_ascii_case(wanted))
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(found.len());
    for key in &found {
        reply.bulk(key);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let db_index = ctx.client.db;
    let state = &mut *ctx.state;
    let db = state.keyspace.db(db_index);
    // Expired keys drawn are deleted and another is drawn, as Redis does.
    let key = loop {
        let Some(key) = db.random_key(&mut state.rng) else {
            break None;
        };
        if db.get_untouched(&key, now).is_some() {
            break Some(key);
        }
    };
    match key {
        Some(key) => ctx.reply.bulk(&key),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn touch(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let count = request.args().skip(1).filter(|key| db.get(key, now).is_some()).count();
    reply.count(count);
    Ok(())
}

/// Redis shares the objects of the integers 0 to 9999 (`OBJ_SHARED_INTEGERS`), which `OBJECT
/// REFCOUNT` reports as `INT_MAX`; every other value has one reference.
fn refcount(value: &Value, policy: EvictionPolicy) -> i64 {
    let lru_or_lfu = !matches!(
        policy,
        EvictionPolicy::Noeviction
            | EvictionPolicy::AllkeysRandom
            | EvictionPolicy::VolatileRandom
            | EvictionPolicy::VolatileTtl
    );
    match value {
        Value::Str(Str::Int(int)) if (0..10_000).contains(int) && !lru_or_lfu => i64::from(i32::MAX),
        _ => 1,
    }
}

fn object(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = arg(request, 1);
    let lfu = matches!(ctx.state.config.maxmemory_policy, EvictionPolicy::AllkeysLfu | EvictionPolicy::VolatileLfu);
    if is(sub, "HELP") {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.reply.help(&lines);
        return Ok(());
    }
    let known = ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"].iter().any(|name| is(sub, name));
    if !known {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "OBJECT".into(),
        });
    }
    if request.len() != 3 {
        return Err(CmdError::message(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )));
    }
    let now = ctx.now_ms;
    let policy = ctx.state.config.maxmemory_policy;
    let (db, reply) = ctx.db_and_reply();
    let Some(entry) = db.get_untouched(arg(request, 2), now) else {
        reply.null();
        return Ok(());
    };
    if is(sub, "ENCODING") {
        reply.bulk(entry.value.encoding().as_bytes());
    } else if is(sub, "REFCOUNT") {
        reply.int(refcount(&entry.value, policy));
    } else if is(sub, "IDLETIME") {
        if lfu {
            return Err(CmdError::other(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        reply.int(i64::from(entry.idle_seconds(now)));
    } else if !lfu {
        return Err(CmdError::other(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    } else {
        let frequency = db.frequency(arg(request, 2), now).unwrap_or(0);
        reply.int(i64::from(frequency));
    }
    Ok(())
}
