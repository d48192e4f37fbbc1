//! DEBUG: the subcommands tests and operators use (SLEEP, OBJECT, SET-ACTIVE-EXPIRE, LOG, ERROR).
//!
//! Refused unless `enable-debug-command` allows it, as in Redis 7. `DEBUG SLEEP` stops the whole
//! server for a while, as Redis' does, but without stopping a thread: it pauses command
//! execution until a deadline every connection honours before running a batch, so under the
//! simulator it costs simulated time only.

use std::net::SocketAddr;

use resp::Request;
use tracing::warn;

use super::{Ctx, Handler};
use crate::args::{arg, is};
use crate::config::DebugCommand;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Str, Value};

pub(super) const HANDLERS: &[(&str, Handler)] = &[("debug", debug)];

fn allowed(ctx: &Ctx<'_>) -> bool {
    match ctx.state.config.enable_debug_command {
        DebugCommand::Yes => true,
        DebugCommand::No => false,
        DebugCommand::Local => ctx
            .state
            .clients
            .get(&ctx.client.id)
            .and_then(|info| info.addr.parse::<SocketAddr>().ok())
            .is_some_and(|addr| addr.ip().is_loopback()),
    }
}

/// C's `strtod` on a prefix: the longest leading number, 0 when there is none (`DEBUG SLEEP x`
/// sleeps for no time in Redis).
fn leading_float(text: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_start();
    (1..=text.len())
        .rev()
        .filter_map(|end| text.get(..end)?.parse::<f64>().ok())
        .find(|value| !value.is_nan())
        .unwrap_or(0.0)
}

/// `DEBUG POPULATE count [prefix] [size]`: `prefix:0` … with values `value:0` … (cut or padded
/// with zero bytes to `size`, unless it is 0); existing keys are left alone.
fn populate(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let positive = |arg: &[u8]| {
        crate::args::int(arg)
            .ok()
            .and_then(|value| u64::try_from(value).ok())
            .ok_or(CmdError::other("ERR value is out of range, must be positive"))
    };
    let count = positive(arg(request, 2))?;
    let prefix = request.arg(3).unwrap_or(b"key");
    let size = request.arg(4).map(positive).transpose()?;
    let now = ctx.now_ms;
    let db = ctx.db();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for index in 0..count {
        let number = itoa::Buffer::new().format(index).to_owned();
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(number.as_bytes());
        if db.contains(&key, now) {
            continue;
        }
        let mut value = format!("value:{number}").into_bytes();
        if let Some(size) = size.filter(|&size| size > 0) {
            value.resize(usize::try_from(size).unwrap_or(usize::MAX), 0);
        }
        db.set(&key, Value::Str(Str::from_computed(&value)), 0, now);
    }
    ctx.reply.ok();
    Ok(())
}

fn debug(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if !allowed(ctx) {
        return Err(CmdError::other(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    let sub = arg(request, 1);
    let args = request.len();
    if is(sub, "HELP") && args == 2 {
        ctx.reply.help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "OBJECT <key>",
            "    Show low level info about `key` and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "HELP",
            "    Prints this help.",
        ]);
    } else if is(sub, "SLEEP") && args == 3 {
        let seconds = leading_float(arg(request, 2));
        let millis = if seconds.is_finite() && seconds > 0.0 { (seconds * 1000.0) as u64 } else { 0 };
        ctx.state.paused_until_ms = ctx.state.paused_until_ms.max(ctx.now_ms.saturating_add(millis));
        ctx.reply.ok();
    } else if is(sub, "SET-ACTIVE-EXPIRE") && args == 3 {
        // atoi: anything that does not start with a non-zero number disables it.
        ctx.state.active_expire = leading_float(arg(request, 2)) as i64 != 0;
        ctx.reply.ok();
    } else if is(sub, "OBJECT") && args == 3 {
        let now = ctx.now_ms;
        let (db, reply) = ctx.db_and_reply();
        let Some(entry) = db.get_untouched(arg(request, 2), now) else {
            return Err(CmdError::NoSuchKey);
        };
        let idle = entry.idle_seconds(now);
        let mut line = format!(
            "Value at:0x0 refcount:1 encoding:{} serializedlength:0 lru:{} lru_seconds_idle:{idle}",
            entry.value.encoding(),
            crate::keyspace::lru_clock(now).wrapping_sub(idle) & 0x00ff_ffff,
        );
        if let Value::List(list) = &entry.value {
            line.push_str(&format!(" ql_nodes:1 ql_avg_node:{}.00 ql_listpack_max:-2 ql_compressed:0", list.len()));
        }
        reply.simple(&line);
    } else if is(sub, "POPULATE") && (3..=5).contains(&args) {
        populate(ctx, request)?;
    } else if is(sub, "LOG") && args == 3 {
        warn!(message = %String::from_utf8_lossy(arg(request, 2)), "DEBUG LOG");
        ctx.reply.ok();
    } else if is(sub, "ERROR") && args == 3 {
        let text = String::from_utf8_lossy(arg(request, 2)).replace(['\r', '\n'], " ");
        ctx.reply.error(&text);
    } else {
        return Err(CmdError::message(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}
