//! Replication commands, the master's side: REPLCONF, PSYNC, SYNC, ROLE.

use resp::Request;

use super::{Ctx, Handler};
use crate::args::{self, is};
use crate::error::{CmdError, CmdResult};
use crate::replication::{self, Sync, replica};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("replconf", replconf),
    ("psync", psync),
    ("sync", sync),
    ("replicaof", replicaof),
    ("slaveof", replicaof),
    ("wait", wait),
    ("epoch", epoch),
    ("role", role),
];

/// `REPLCONF option value …`: what a replica says of itself before `PSYNC` (its listening
/// port, its capabilities). Acknowledgements (`ACK`) arrive on the replication link and are read
/// there; here they are answered by nothing, as Redis answers them.
fn replconf(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    // The name, then option-value pairs.
    if request.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut index = 1;
    while let (Some(option), Some(value)) = (request.arg(index), request.arg(index + 1)) {
        if is(option, "listening-port") {
            let port = args::int(value).ok().and_then(|port| u16::try_from(port).ok());
            ctx.client.replica_port = port.ok_or(CmdError::NotInteger)?;
        } else if is(option, "ack") || is(option, "fack") {
            return Ok(());
        } else if !(is(option, "capa") || is(option, "ip-address") || is(option, "getack") || is(option, "rdb-only")) {
            return Err(CmdError::message(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(option)
            )));
        }
        index += 2;
    }
    ctx.reply.ok();
    Ok(())
}

/// `PSYNC replid offset`: continue the stream from `offset` if the backlog still has it,
/// otherwise a full copy. From here on the connection carries the stream.
fn psync(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let replid = request.arg(1).unwrap_or_default();
    let from = args::int(request.arg(2).unwrap_or_default()).ok().and_then(|from| u64::try_from(from).ok());
    let resume = from.map(|from| (replid, from));
    let port = ctx.client.replica_port;
    match replication::attach(ctx.state, ctx.client.id, port, resume, ctx.now_ms) {
        Sync::Continue => {
            let line = format!("CONTINUE {}", ctx.state.replication.replid);
            ctx.reply.simple(&line);
        }
        Sync::Full { offset, snapshot } => {
            let line = format!("FULLRESYNC {} {offset}", ctx.state.replication.replid);
            ctx.reply.simple(&line);
            send_snapshot(ctx, &snapshot);
        }
    }
    ctx.client.feeds_replica = true;
    Ok(())
}

/// `SYNC`: the protocol before `PSYNC`: always a full copy, then the stream.
fn sync(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let port = ctx.client.replica_port;
    if let Sync::Full { snapshot, .. } = replication::attach(ctx.state, ctx.client.id, port, None, ctx.now_ms) {
        send_snapshot(ctx, &snapshot);
    }
    ctx.client.feeds_replica = true;
    Ok(())
}

/// The snapshot as Redis sends it: `$<length>\r\n` and the bytes, with no `\r\n` after.
fn send_snapshot(ctx: &mut Ctx<'_>, snapshot: &[u8]) {
    let out = ctx.reply.buffer();
    resp::encode::write_bulk_header(out, snapshot.len());
    out.extend_from_slice(snapshot);
}

/// `REPLICAOF host port` (or `SLAVEOF`): follow that master, replacing this server's data
/// with its copy; `REPLICAOF NO ONE`: stop following and accept writes, keeping the data.
fn replicaof(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (host, port) = (request.arg(1).unwrap_or_default(), request.arg(2).unwrap_or_default());
    if is(host, "NO") && is(port, "ONE") {
        if ctx.state.replication.is_replica() {
            tracing::info!("no longer a replica: accepting writes");
            replica::follow(ctx.state, None);
        }
        // Made master (again) by whoever promotes: at the newest epoch it knows.
        let epoch = ctx.state.replication.epoch;
        ctx.state.replication.set_master_epoch(epoch);
        ctx.reply.ok();
        return Ok(());
    }
    let port = args::int(port)
        .ok()
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| CmdError::other("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(host).into_owned();
    if ctx.state.replication.master.as_ref().is_some_and(|master| master.host == host && master.port == port) {
        ctx.reply.simple("OK Already connected to specified master");
        return Ok(());
    }
    tracing::info!(%host, port, "following a master");
    replica::follow(ctx.state, Some((host, port)));
    ctx.reply.ok();
    Ok(())
}

/// `WAIT numreplicas timeout`: blocks until `numreplicas` replicas acknowledged every write made
/// so far, or `timeout` ms passed (0: no limit); answers how many did.
fn wait(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if ctx.state.replication.is_replica() {
        return Err(CmdError::other(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let needed = args::int(request.arg(1).unwrap_or_default()).map_err(|_| CmdError::NotInteger)?;
    let timeout = args::int(request.arg(2).unwrap_or_default()).map_err(|_| CmdError::NotInteger)?;
    if timeout < 0 {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    crate::propagate::distribute(ctx.state);
    let offset = ctx.state.replication.offset();
    let acknowledged = ctx.state.replication.acknowledged(offset);
    let needed = usize::try_from(needed).unwrap_or(0);
    if acknowledged >= needed || ctx.client.deny_blocking {
        ctx.reply.count(acknowledged);
        return Ok(());
    }
    let Some(outbox) = ctx.state.clients.get(&ctx.client.id).map(|info| info.outbox.clone()) else {
        return Err(CmdError::other("ERR client is not registered"));
    };
    ctx.state.replication.wait(ctx.client.id, offset, needed, outbox, ctx.client.version);
    let deadline_ms = (timeout > 0).then(|| ctx.now_ms + timeout.unsigned_abs());
    ctx.client.blocked = Some(crate::state::Block { deadline_ms });
    Ok(())
}

/// `EPOCH [epoch [MASTER | PROMOTE | FOLLOW host port]]`: the failover epoch this server knows
/// (Codis has no such command; our dashboard and proxies use it to fence). With an epoch, raises
/// it: a master told of an epoch newer than the one it was made master at stops accepting
/// writes, because a replica was promoted in its place. An epoch older than the server's is
/// refused with `-STALE` and nothing else happens: it comes from a dashboard (or a proxy's
/// table) that has been overtaken since, so its action must not undo a newer promotion. The
/// actions run only once the epoch is accepted:
/// - `MASTER` confirms a master at that epoch (one that restarted and forgot it); refused on a
///   replica;
/// - `PROMOTE` makes the server master at that epoch (`REPLICAOF NO ONE`);
/// - `FOLLOW host port` makes it a replica of `host:port` (`REPLICAOF host port`).
fn epoch(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    enum Action {
        Raise,
        Confirm,
        Promote,
        Follow(String, u16),
    }
    let Some(value) = request.arg(1) else {
        ctx.reply.int(i64::try_from(ctx.state.replication.epoch).unwrap_or(i64::MAX));
        return Ok(());
    };
    let value = args::int(value).ok().and_then(|value| u64::try_from(value).ok()).ok_or(CmdError::NotInteger)?;
    let action = match (request.arg(2), request.len()) {
        (None, _) => Action::Raise,
        (Some(word), 3) if is(word, "master") => Action::Confirm,
        (Some(word), 3) if is(word, "promote") => Action::Promote,
        (Some(word), 5) if is(word, "follow") => {
            let host = String::from_utf8_lossy(request.arg(3).unwrap_or_default()).into_owned();
            let port = args::int(request.arg(4).unwrap_or_default())
                .ok()
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port > 0)
                .ok_or_else(|| CmdError::other("ERR Invalid master port"))?;
            Action::Follow(host, port)
        }
        _ => return Err(CmdError::Syntax),
    };
    let known = ctx.state.replication.epoch;
    if value < known {
        return Err(CmdError::message(format!("STALE epoch {value} is older than this server's epoch {known}")));
    }
    if matches!(action, Action::Confirm) && ctx.state.replication.is_replica() {
        return Err(CmdError::other("ERR EPOCH MASTER sent to a replica"));
    }
    if value > known {
        tracing::info!(from = known, to = value, "failover epoch raised");
    }
    ctx.state.replication.raise_epoch(value);
    match action {
        Action::Raise => {
            if ctx.state.replication.is_fenced() {
                tracing::warn!(epoch = value, "this master was superseded by a promotion: refusing writes");
            }
        }
        Action::Confirm => ctx.state.replication.set_master_epoch(value),
        Action::Promote => {
            if ctx.state.replication.is_replica() {
                tracing::info!(epoch = value, "promoted: accepting writes");
                replica::follow(ctx.state, None);
            }
            ctx.state.replication.set_master_epoch(value);
        }
        Action::Follow(host, port) => {
            let following =
                ctx.state.replication.master.as_ref().is_some_and(|master| master.host == host && master.port == port);
            if !following {
                tracing::info!(%host, port, epoch = value, "following a master");
                replica::follow(ctx.state, Some((host, port)));
            }
        }
    }
    ctx.reply.int(i64::try_from(value).unwrap_or(i64::MAX));
    Ok(())
}

/// `ROLE`: `master`, the stream's offset, and each replica's address and acknowledged offset.
fn role(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let replication = &ctx.state.replication;
    if let Some(master) = &replication.master {
        ctx.reply.array(5);
        ctx.reply.bulk(b"slave");
        ctx.reply.bulk(master.host.as_bytes());
        ctx.reply.int(i64::from(master.port));
        ctx.reply.bulk(master.state.as_bytes());
        ctx.reply.int(i64::try_from(master.offset).unwrap_or(i64::MAX));
        return Ok(());
    }
    let reply = &mut ctx.reply;
    reply.array(3);
    reply.bulk(b"master");
    reply.int(i64::try_from(replication.offset()).unwrap_or(i64::MAX));
    reply.array(replication.replicas().len());
    for link in replication.replicas().values() {
        reply.array(3);
        reply.bulk(link.ip().as_bytes());
        reply.bulk(link.listening_port.to_string().as_bytes());
        reply.bulk(link.ack_offset.to_string().as_bytes());
    }
    Ok(())
}
