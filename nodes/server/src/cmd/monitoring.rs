//! SLOWLOG and LATENCY, and recording into them after every command.

use std::time::Duration;

use resp::Request;

use super::{Command, Ctx, Flags, Handler};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Bulk;
use crate::slowlog::{SlowEntry, shorten};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("slowlog", slowlog),
    ("slowlog|reset", slowlog),
    ("slowlog|len", slowlog),
    ("slowlog|help", slowlog),
    ("slowlog|get", slowlog),
    ("latency", latency),
    ("latency|graph", latency),
    ("latency|doctor", latency),
    ("latency|histogram", latency),
    ("latency|help", latency),
    ("latency|reset", latency),
    ("latency|history", latency),
    ("latency|latest", latency),
];

/// Records a finished command in the slow log and the latency monitor if it took long enough.
pub(crate) fn record(ctx: &mut Ctx<'_>, command: &Command, request: &Request, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let config = &ctx.state.config;
    let (slower_than, max_len, latency_threshold) =
        (config.slowlog_log_slower_than, config.slowlog_max_len, config.latency_monitor_threshold);
    // EXEC's commands are logged one by one, not EXEC itself (its `skip_slowlog` flag).
    if !command.flags.contains(Flags::SKIP_SLOWLOG)
        && u64::try_from(slower_than).is_ok_and(|slower_than| micros >= slower_than)
    {
        let (addr, name) = ctx
            .state
            .clients
            .get(&ctx.client.id)
            .map(|info| (info.addr.clone(), info.name.clone()))
            .unwrap_or_default();
        let entry = SlowEntry {
            id: 0,
            unix_seconds: ctx.now_ms / 1000,
            micros,
            args: redacted(request, &ctx.redacted),
            addr,
            name,
        };
        ctx.state.slowlog.push(entry, max_len);
    }
    let millis = micros / 1000;
    if latency_threshold > 0 && millis >= latency_threshold {
        let event = if command.flags.contains(Flags::FAST) { "fast-command" } else { "command" };
        ctx.state.latency.add(event, ctx.now_ms / 1000, millis);
    }
}

/// The arguments to log, with the ones the command hid (passwords) replaced as Redis replaces
/// them.
fn redacted(request: &Request, hidden: &[usize]) -> Vec<Bulk> {
    let args: Vec<&[u8]> = request
        .args()
        .enumerate()
        .map(|(index, arg)| if hidden.contains(&index) { &b"(redacted)"[..] } else { arg })
        .collect();
    shorten(args.into_iter())
}

fn slowlog(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = arg(request, 1);
    let fixed_arity = |name: &str| {
        if request.len() == 2 {
            Ok(())
        } else {
            Err(CmdError::message(format!("ERR wrong number of arguments for 'slowlog|{name}' command")))
        }
    };
    if is(sub, "GET") {
        if request.len() > 3 {
            return Err(CmdError::message(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                String::from_utf8_lossy(sub)
            )));
        }
        let count = match request.arg(2) {
            None => Some(10),
            Some(count) => match args::int(count) {
                Ok(-1) => None,
                Ok(count) if count >= 0 => Some(usize::try_from(count).unwrap_or(usize::MAX)),
                _ => return Err(CmdError::other("ERR count should be greater than or equal to -1")),
            },
        };
        let entries: Vec<SlowEntry> = ctx.state.slowlog.newest(count).cloned().collect();
        let reply = &mut ctx.reply;
        reply.array(entries.len());
        for entry in &entries {
            reply.array(6);
            reply.int(i64::try_from(entry.id).unwrap_or(i64::MAX));
            reply.int(i64::try_from(entry.unix_seconds).unwrap_or(i64::MAX));
            reply.int(i64::try_from(entry.micros).unwrap_or(i64::MAX));
            reply.array(entry.args.len());
            for arg in &entry.args {
                reply.bulk(arg);
            }
            reply.bulk(entry.addr.as_bytes());
            reply.bulk(&entry.name);
        }
    } else if is(sub, "LEN") {
        fixed_arity("len")?;
        ctx.reply.count(ctx.state.slowlog.len());
    } else if is(sub, "RESET") {
        fixed_arity("reset")?;
        ctx.state.slowlog.reset();
        ctx.reply.ok();
    } else if is(sub, "HELP") {
        fixed_arity("help")?;
        ctx.reply.help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ]);
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "SLOWLOG".into(),
        });
    }
    Ok(())
}

fn latency(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = arg(request, 1);
    let wrong_arity =
        |name: &str| CmdError::message(format!("ERR wrong number of arguments for 'latency|{name}' command"));
    if is(sub, "LATEST") {
        if request.len() != 2 {
            return Err(wrong_arity("latest"));
        }
        let latest: Vec<(&str, u64, u64, u64)> = ctx
            .state
            .latency
            .events()
            .filter_map(|(name, event)| {
                event.samples.back().map(|last| (name, last.unix_seconds, last.millis, event.max_millis))
            })
            .collect();
        let reply = &mut ctx.reply;
        reply.array(latest.len());
        for (name, seconds, millis, max) in latest {
            reply.array(4);
            reply.bulk(name.as_bytes());
            reply.int(i64::try_from(seconds).unwrap_or(i64::MAX));
            reply.int(i64::try_from(millis).unwrap_or(i64::MAX));
            reply.int(i64::try_from(max).unwrap_or(i64::MAX));
        }
    } else if is(sub, "HISTORY") {
        if request.len() != 3 {
            return Err(wrong_arity("history"));
        }
        let samples: Vec<(u64, u64)> = ctx
            .state
            .latency
            .event(arg(request, 2))
            .map(|event| event.samples.iter().map(|sample| (sample.unix_seconds, sample.millis)).collect())
            .unwrap_or_default();
        let reply = &mut ctx.reply;
        reply.array(samples.len());
        for (seconds, millis) in samples {
            reply.array(2);
            reply.int(i64::try_from(seconds).unwrap_or(i64::MAX));
            reply.int(i64::try_from(millis).unwrap_or(i64::MAX));
        }
    } else if is(sub, "RESET") {
        let names: Vec<&[u8]> = request.args().skip(2).collect();
        ctx.reply.count(ctx.state.latency.reset(&names));
    } else if is(sub, "DOCTOR") {
        if request.len() != 2 {
            return Err(wrong_arity("doctor"));
        }
        let report = doctor(ctx);
        ctx.reply.verbatim(&report);
    } else if is(sub, "HELP") {
        if request.len() != 2 {
            return Err(wrong_arity("help"));
        }
        ctx.reply.help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HELP",
            "    Prints this help.",
        ]);
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "LATENCY".into(),
        });
    }
    Ok(())
}

/// `LATENCY DOCTOR`: Redis' words when monitoring is off, a plain summary per event otherwise.
fn doctor(ctx: &Ctx<'_>) -> String {
    if ctx.state.config.latency_monitor_threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let mut report = String::new();
    for (name, event) in ctx.state.latency.events() {
        let samples = event.samples.len().max(1) as u64;
        let average = event.samples.iter().map(|sample| sample.millis).sum::<u64>() / samples;
        report.push_str(&format!(
            "{name}: {} latency spikes (average {average}ms, worst {}ms).\n",
            event.samples.len(),
            event.max_millis
        ));
    }
    if report.is_empty() {
        report.push_str("No latency spike was observed during the lifetime of this instance.\n");
    }
    report
}
