//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME, INFO, CONFIG, SHUTDOWN, SAVE, BGSAVE.

use std::fmt::Write as _;

use resp::Request;

use super::{Ctx, Handler};
use crate::REDIS_VERSION;
use crate::args::{self, is};
use crate::config::PARAMETERS;
use crate::error::{CmdError, CmdResult};
use crate::glob;
use crate::state::Block;
use crate::{persist, shutdown};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("dbsize", dbsize),
    ("flushdb", flushdb),
    ("flushall", flushall),
    ("swapdb", swapdb),
    ("time", time),
    ("info", info),
    ("config", config),
    ("config|resetstat", config),
    ("config|help", config),
    ("config|get", config),
    ("config|rewrite", config),
    ("config|set", config),
    ("shutdown", shutdown),
    ("save", save),
    ("bgsave", bgsave),
    ("bgrewriteaof", bgrewriteaof),
    ("lastsave", lastsave),
];

/// `SAVE`: a snapshot now; the reply comes once it is on disk.
fn save(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        return Err(CmdError::other("ERR client is not registered"));
    };
    let caller = persist::Caller { outbox, version: ctx.client.version };
    persist::start(ctx.state, ctx.now_ms, Some(caller))?;
    ctx.client.blocked = Some(Block { deadline_ms: None });
    Ok(())
}

/// `BGSAVE [SCHEDULE]`: a snapshot written in the background. With `SCHEDULE`, one already in
/// progress is not an error (the next is taken by the rules anyway, as Redis schedules one).
fn bgsave(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let schedule = match request.arg(1) {
        None => false,
        Some(option) if request.len() == 2 && is(option, "SCHEDULE") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    if schedule && ctx.state.persistence.in_progress() {
        ctx.reply.simple("Background saving scheduled");
        return Ok(());
    }
    persist::start(ctx.state, ctx.now_ms, None)?;
    ctx.reply.simple("Background saving started");
    Ok(())
}

/// `BGREWRITEAOF`: compacts the append-only log in the background. Inside a transaction it is
/// scheduled for the background cycle instead: the log's split point must not fall between a
/// transaction's commands.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let aof = &mut ctx.state.aof;
    if aof.is_enabled() && aof.rewrite_in_progress {
        return Err(CmdError::other("ERR Background append only file rewriting already in progress"));
    }
    if aof.is_enabled() && ctx.client.deny_blocking {
        aof.rewrite_scheduled = true;
        ctx.reply.simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    crate::aof::start_rewrite(ctx.state, ctx.now_ms)?;
    ctx.reply.simple("Background append only file rewriting started");
    Ok(())
}

/// `LASTSAVE`: when the last snapshot succeeded (Unix seconds).
fn lastsave(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    ctx.reply.int(i64::try_from(ctx.state.persistence.last_save_ms / 1000).unwrap_or(i64::MAX));
    Ok(())
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | SHUTDOWN ABORT`: stops the server; the connections
/// close without a reply. With `SAVE`, or with `save` rules and no `NOSAVE`, a snapshot is written
/// first; if that fails the server goes on and says so, unless `FORCE`d.
fn shutdown(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (mut save, mut nosave, mut force, mut abort, mut now) = (false, false, false, false, false);
    for option in request.args().skip(1) {
        let flag = if is(option, "SAVE") {
            &mut save
        } else if is(option, "NOSAVE") {
            &mut nosave
        } else if is(option, "FORCE") {
            &mut force
        } else if is(option, "ABORT") {
            &mut abort
        } else if is(option, "NOW") {
            &mut now
        } else {
            return Err(CmdError::Syntax);
        };
        *flag = true;
    }
    if (save && nosave) || (abort && request.len() > 2) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return Err(CmdError::other("ERR No shutdown in progress."));
    }
    tracing::warn!(client = ctx.client.id, "user requested shutdown");
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        return Err(CmdError::other("ERR client is not registered"));
    };
    // The accept loop prepares the stop (replicas, snapshot, log); the caller waits, and hears
    // only if it fails (on success its connection closes, as Redis closes it).
    let save = if save {
        shutdown::Save::Yes
    } else if nosave {
        shutdown::Save::No
    } else {
        shutdown::Save::IfRules
    };
    let caller = persist::Caller { outbox, version: ctx.client.version };
    ctx.state.shutdown_request = Some(shutdown::Request { save, now, force, caller: Some(caller) });
    ctx.state.shutdown_requested.notify_one();
    ctx.client.blocked = Some(Block { deadline_ms: None });
    Ok(())
}

fn dbsize(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let size = ctx.db().len();
    ctx.reply.count(size);
    Ok(())
}

/// The `ASYNC`/`SYNC` option of the flush commands (freeing is immediate here either way).
fn flush_option(request: &Request) -> CmdResult {
    match request.len() {
        1 => Ok(()),
        2 if is(request.arg(1).unwrap_or_default(), "ASYNC") || is(request.arg(1).unwrap_or_default(), "SYNC") => {
            Ok(())
        }
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    flush_option(request)?;
    ctx.db().clear();
    // Propagated even when there was nothing to delete, as Redis does: a replica or a log that
    // holds data its master does not (from before a failover, say) is emptied too.
    ctx.state.propagation.replace_with(request.args());
    ctx.reply.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    flush_option(request)?;
    for db in ctx.state.keyspace.dbs_mut() {
        db.clear();
    }
    // Propagated even when there was nothing to delete (see FLUSHDB).
    ctx.state.propagation.replace_with(request.args());
    ctx.reply.ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let databases = ctx.state.keyspace.len();
    let parse = |index: usize, which: &'static str| -> Result<usize, CmdError> {
        let value = args::int(request.arg(index).unwrap_or_default()).map_err(|_| CmdError::other(which))?;
        usize::try_from(value).ok().filter(|value| *value < databases).ok_or(CmdError::DbIndexOutOfRange)
    };
    let first = parse(1, "ERR invalid first DB index")?;
    let second = parse(2, "ERR invalid second DB index")?;
    ctx.state.keyspace.swap(first, second);
    // The databases swap with their change counts, so the sum does not move: say it changed.
    ctx.state.propagation.replace_with(request.args());
    ctx.reply.ok();
    Ok(())
}

fn time(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let seconds = ctx.now_ms / 1000;
    let micros = (ctx.now_ms % 1000) * 1000;
    ctx.reply.array(2);
    ctx.reply.bulk(seconds.to_string().as_bytes());
    ctx.reply.bulk(micros.to_string().as_bytes());
    Ok(())
}

/// The sections `INFO` knows, in Redis' order. `default` and `all` select all of them.
const SECTIONS: [&str; 8] = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];

/// Bytes as Redis' `bytesToHuman` writes them: `512B`, `1.50K`, `2.00M`.
fn human(bytes: u64) -> String {
    const K: f64 = 1024.0;
    const UNITS: [(&str, f64); 5] =
        [("P", K * K * K * K * K), ("T", K * K * K * K), ("G", K * K * K), ("M", K * K), ("K", K)];
    let value = bytes as f64;
    match UNITS.iter().find(|(_, size)| value >= *size) {
        Some((unit, size)) => format!("{:.2}{unit}", value / size),
        None => format!("{bytes}B"),
    }
}

fn info(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let wanted: Vec<String> =
        request.args().skip(1).map(|arg| String::from_utf8_lossy(arg).to_ascii_lowercase()).collect();
    let everything =
        wanted.is_empty() || wanted.iter().any(|name| matches!(name.as_str(), "default" | "all" | "everything"));
    let mut text = String::new();
    for section in SECTIONS {
        if !everything && !wanted.iter().any(|name| name == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(ctx, section, &mut text);
    }
    ctx.reply.verbatim(&text);
    Ok(())
}

fn write_section(ctx: &Ctx<'_>, section: &str, out: &mut String) {
    let state = &*ctx.state;
    let uptime = ctx.now_ms.saturating_sub(state.started_ms) / 1000;
    // `writeln!` into a String cannot fail.
    let _ = match section {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
             redis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\n\
             codis_server_version:{}\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\n\
             server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{}\r\n\
             configured_hz:{}\r\nlru_clock:{}\r\nconfig_file:\r\n",
            std::env::consts::OS,
            std::env::consts::ARCH,
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            state.run_id,
            state.port,
            ctx.now_ms * 1000,
            uptime / 86_400,
            state.config.hz,
            state.config.hz,
            crate::keyspace::lru_clock(ctx.now_ms),
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\
             tracking_clients:0\r\nclients_in_timeout_table:{}\r\n",
            state.clients.len(),
            state.config.maxclients,
            state.blocked.len(),
            state.blocked.with_deadline(),
        ),
        "memory" => {
            let used = crate::evict::used_memory(state) as u64;
            let dataset = state.keyspace.dbs().iter().map(|db| db.dataset_memory()).sum::<usize>() as u64;
            let startup = state.startup_memory as u64;
            let peak = (state.peak_memory as u64).max(used);
            let rss = state.process.map_or(0, |process| process.resident_bytes);
            let percent = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
            let fragmentation = if used == 0 { 0.0 } else { rss as f64 / used as f64 };
            write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
                 used_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\n\
                 used_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{startup}\r\n\
                 used_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nmaxmemory:{}\r\n\
                 maxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{fragmentation:.2}\r\n\
                 mem_allocator:{}\r\n",
                human(used),
                human(rss),
                human(peak),
                percent(used, peak),
                used - dataset,
                percent(dataset, used.saturating_sub(startup)),
                state.config.maxmemory,
                human(state.config.maxmemory),
                state.config.maxmemory_policy.name(),
                state.config.mem_allocator,
            )
        }
        "persistence" => {
            let persistence = &state.persistence;
            let aof = &state.aof;
            let status = |ok: bool| if ok { "ok" } else { "err" };
            let current_rewrite_secs: i64 = if aof.rewrite_in_progress {
                i64::try_from(ctx.now_ms.saturating_sub(aof.rewrite_started_ms) / 1000).unwrap_or(i64::MAX)
            } else {
                -1
            };
            let _ = write!(
                out,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\n\
                 rdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_saves:{}\r\n\
                 rdb_last_bgsave_status:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\n\
                 aof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\n\
                 aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_last_write_status:{}\r\n",
                persistence.changes_since_save(&state.keyspace),
                u8::from(persistence.in_progress()),
                persistence.last_save_ms / 1000,
                persistence.saves,
                status(persistence.last_save_ok),
                u8::from(aof.is_enabled()),
                u8::from(aof.rewrite_in_progress),
                u8::from(aof.rewrite_scheduled),
                aof.last_rewrite_secs,
                current_rewrite_secs,
                status(aof.last_rewrite_ok),
                aof.rewrites,
                status(aof.last_write_ok),
            );
            if aof.is_enabled() {
                let _ = write!(
                    out,
                    "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\n\
                     aof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
                    aof.current_size,
                    aof.base_size,
                    u8::from(aof.rewrite_scheduled),
                    aof.buffered(),
                );
            }
            Ok(())
        }
        "cpu" => {
            let process = state.process.unwrap_or_default();
            let seconds = |micros: u64| format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
            write!(
                out,
                "# CPU\r\nused_cpu_sys:{}\r\nused_cpu_user:{}\r\n",
                seconds(process.system_cpu_micros),
                seconds(process.user_cpu_micros),
            )
        }
        "stats" => {
            let sum = |field: fn(crate::keyspace::DbStats) -> u64| -> u64 {
                state.keyspace.dbs().iter().map(|db| field(db.stats())).sum()
            };
            let expired = sum(|stats| stats.expired_keys);
            let (hits, misses) = (sum(|stats| stats.keyspace_hits), sum(|stats| stats.keyspace_misses));
            write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n\
                 sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{expired}\r\nevicted_keys:{}\r\nkeyspace_hits:{hits}\r\nkeyspace_misses:{misses}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n\
                 client_output_buffer_limit_disconnections:{}\r\n",
                state.stats.connections_received,
                state.stats.commands_processed,
                state.stats.rejected_connections,
                state.stats.sync_full,
                state.stats.sync_partial_ok,
                state.stats.sync_partial_err,
                state.stats.evicted_keys,
                state.pubsub.channel_count(),
                state.pubsub.pattern_count(),
                state.stats.output_limit_disconnections,
            )
        }
        "replication" => {
            let replication = &state.replication;
            match &replication.master {
                Some(master) => {
                    let silent = match master.last_io_ms {
                        0 => -1,
                        heard => i64::try_from(ctx.now_ms.saturating_sub(heard) / 1000).unwrap_or(i64::MAX),
                    };
                    let _ = write!(
                        out,
                        "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
                         master_last_io_seconds_ago:{silent}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\n\
                         slave_repl_offset:{}\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n",
                        master.host,
                        master.port,
                        if master.state == "connected" { "up" } else { "down" },
                        u8::from(master.state == "sync"),
                        master.offset,
                        master.offset,
                    );
                }
                None => out.push_str("# Replication\r\nrole:master\r\n"),
            }
            let _ = write!(out, "connected_slaves:{}\r\n", replication.replicas().len());
            for (index, link) in replication.replicas().values().enumerate() {
                // Online once it acknowledged (a replica loading its copy has not yet).
                let (state, lag) = match link.ack_ms {
                    0 => ("send_bulk", 0),
                    acked => ("online", ctx.now_ms.saturating_sub(acked) / 1000),
                };
                let _ = write!(
                    out,
                    "slave{index}:ip={},port={},state={state},offset={},lag={lag}\r\n",
                    link.ip(),
                    link.listening_port,
                    link.ack_offset,
                );
            }
            let backlog = replication.backlog();
            write!(
                out,
                "master_failover_state:no-failover\r\nmaster_replid:{}\r\n\
                 master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{}\r\n\
                 second_repl_offset:-1\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\n\
                 repl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n\
                 codis_epoch:{}\r\ncodis_master_epoch:{}\r\ncodis_fenced:{}\r\n",
                replication.master.as_ref().and_then(|master| master.replid.as_deref()).unwrap_or(&replication.replid),
                replication.master.as_ref().map_or(replication.offset(), |master| master.offset),
                u8::from(backlog.is_some()),
                backlog.map_or(crate::replication::BACKLOG_SIZE, |backlog| backlog.capacity()),
                backlog.map_or(0, |backlog| backlog.first_byte()),
                backlog.map_or(0, |backlog| backlog.len()),
                replication.epoch,
                replication.master_epoch,
                u8::from(replication.is_fenced()),
            )
        }
        "keyspace" => {
            let _ = write!(out, "# Keyspace\r\n");
            for (index, db) in state.keyspace.dbs().iter().enumerate() {
                if !db.is_empty() {
                    let _ = write!(out, "db{index}:keys={},expires={},avg_ttl=0\r\n", db.len(), db.volatile_len());
                }
            }
            Ok(())
        }
        _ => Ok(()),
    };
}

fn config(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = request.arg(1).unwrap_or_default();
    let arity = |name: &str| CmdError::message(format!("ERR wrong number of arguments for 'config|{name}' command"));
    if is(sub, "GET") {
        if request.len() < 3 {
            return Err(arity("get"));
        }
        let patterns: Vec<&[u8]> = request.args().skip(2).collect();
        let matched: Vec<(&str, String)> = PARAMETERS
            .iter()
            .filter(|parameter| patterns.iter().any(|pattern| glob::matches(pattern, parameter.name.as_bytes(), true)))
            .map(|parameter| (parameter.name, (parameter.get)(&ctx.state.config)))
            .collect();
        ctx.reply.map(matched.len());
        for (name, value) in matched {
            ctx.reply.bulk(name.as_bytes());
            ctx.reply.bulk(value.as_bytes());
        }
    } else if is(sub, "SET") {
        if request.len() < 4 {
            return Err(arity("set"));
        }
        if !request.len().is_multiple_of(2) {
            return Err(CmdError::Syntax);
        }
        // All or nothing, as Redis: validate every pair on a copy, then apply.
        let mut updated = ctx.state.config.clone();
        let mut index = 2;
        while let (Some(name), Some(value)) = (request.arg(index), request.arg(index + 1)) {
            let name_text = String::from_utf8_lossy(name).to_ascii_lowercase();
            let Some(parameter) = PARAMETERS.iter().find(|parameter| parameter.name == name_text) else {
                return Err(CmdError::message(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(name)
                )));
            };
            let failed = |reason: &str| {
                CmdError::message(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name_text}') - {reason}"
                ))
            };
            let Some(set) = parameter.set else {
                return Err(failed("can't set immutable config"));
            };
            set(&mut updated, &String::from_utf8_lossy(value)).map_err(|reason| failed(&reason))?;
            index += 2;
        }
        ctx.state.config = updated;
        ctx.state.apply_access_tracking();
        ctx.reply.ok();
    } else if is(sub, "RESETSTAT") {
        if request.len() != 2 {
            return Err(arity("resetstat"));
        }
        ctx.state.stats = crate::state::Stats::default();
        for db in ctx.state.keyspace.dbs_mut() {
            db.reset_stats();
        }
        ctx.reply.ok();
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "CONFIG".into(),
        });
    }
    Ok(())
}
