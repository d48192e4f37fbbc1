//! `DUMP` and `RESTORE`: a value out of and into the keyspace in Redis' RDB object format (see
//! [`crate::rdb`]), so values move between this server and Redis in either direction.

use resp::Request;

use super::{Ctx, Handler};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::rdb::{self, LoadOptions};

pub(super) const HANDLERS: &[(&str, Handler)] = &[("dump", dump), ("restore", restore)];

/// `DUMP key`: the payload of the value, or nil.
fn dump(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match db.get(arg(request, 1), now) {
        Some(entry) => reply.bulk(&rdb::dump_payload(&entry.value)),
        None => reply.null(),
    }
    Ok(())
}

/// `RESTORE`'s options.
#[derive(Default)]
struct RestoreOptions {
    replace: bool,
    absolute_ttl: bool,
    idle_seconds: Option<i64>,
    frequency: Option<u8>,
}

/// Parses the options after the payload as Redis' `restoreCommand` does: `IDLETIME` and `FREQ`
/// exclude each other (the second one given is a syntax error).
fn parse_options(request: &Request) -> Result<RestoreOptions, CmdError> {
    let mut options = RestoreOptions::default();
    let mut index = 4;
    while let Some(option) = request.arg(index) {
        let value = request.arg(index + 1);
        if is(option, "REPLACE") {
            options.replace = true;
        } else if is(option, "ABSTTL") {
            options.absolute_ttl = true;
        } else if let (true, Some(value), None) = (is(option, "IDLETIME"), value, options.frequency) {
            let idle = args::int(value)?;
            if idle < 0 {
                return Err(CmdError::other("ERR Invalid IDLETIME value, must be >= 0"));
            }
            options.idle_seconds = Some(idle);
            index += 1;
        } else if let (true, Some(value), None) = (is(option, "FREQ"), value, options.idle_seconds) {
            let frequency = args::int(value)?;
            let frequency = u8::try_from(frequency)
                .map_err(|_| CmdError::other("ERR Invalid FREQ value, must be >= 0 and <= 255"))?;
            options.frequency = Some(frequency);
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    Ok(options)
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`, checking in Redis' order:
/// options, an existing key, the TTL, the payload's footer, the object. A TTL already in the past
/// creates nothing (and with `REPLACE` still deletes the old value).
fn restore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let options = parse_options(request)?;
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let limits = ctx.state.config.encoding_limits();
    let (db, reply) = ctx.db_and_reply();
    if !options.replace && db.get_untouched(key, now).is_some() {
        return Err(CmdError::other("BUSYKEY Target key name already exists."));
    }
    let ttl = args::int(arg(request, 2))?;
    if ttl < 0 {
        return Err(CmdError::other("ERR Invalid TTL value, must be >= 0"));
    }
    let load = LoadOptions { limits, seed: db.collection_seed() };
    let value = rdb::restore_payload_with(arg(request, 3), &load).map_err(|error| {
        if error.is_footer() {
            CmdError::other("ERR DUMP payload version or checksum are wrong")
        } else {
            CmdError::other("ERR Bad data format")
        }
    })?;
    let replaced = options.replace && db.remove(key).is_some();
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    // Redis adds the clock to a relative TTL without an overflow check: a TTL near i64::MAX
    // wraps into the past and creates nothing. We keep that.
    let expire_at = if ttl != 0 && !options.absolute_ttl { ttl.wrapping_add(now_signed) } else { ttl };
    if expire_at != 0 && expire_at <= now_signed {
        reply.ok();
        // Dead on arrival: what it replaced is gone, and nothing is created.
        if replaced {
            ctx.state.propagation.replace_with([&b"DEL"[..], key]);
        }
        return Ok(());
    }
    db.set(key, value, expire_at as u64, now);
    db.restore_access(key, options.idle_seconds, options.frequency, now);
    reply.ok();
    if ttl != 0 && !options.absolute_ttl {
        // The absolute expiry, so a replay later expires it at the same moment: the command
        // as sent, its TTL made absolute and `ABSTTL` added (Redis 7.0's rewrite).
        let mut at = itoa::Buffer::new();
        let at = at.format(expire_at).as_bytes();
        let rest = request.args().skip(4);
        let args = [&b"RESTORE"[..], key, at, arg(request, 3)].into_iter().chain(rest).chain([&b"ABSTTL"[..]]);
        ctx.state.propagation.replace_with(args);
    }
    Ok(())
}
