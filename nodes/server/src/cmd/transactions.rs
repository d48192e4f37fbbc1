//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! `MULTI` opens a queue (see `cmd::execute`, which queues instead of running); `EXEC` runs the
//! queue under the one state lock the connection already holds, so no other client's command can
//! interleave, which is Redis' isolation guarantee. A command refused while queueing (unknown,
//! wrong arity…) dooms the transaction: `EXEC` then discards it with `EXECABORT`. `WATCH` makes
//! `EXEC` fail (a null reply) if a watched key changed, or expired, after it was watched.

use resp::Request;

use super::{Command, Ctx, Handler, call, table};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Key;
use crate::state::{Client, State, Transaction, WatchedKey};

pub(super) const HANDLERS: &[(&str, Handler)] =
    &[("multi", multi), ("exec", exec), ("discard", discard_command), ("watch", watch), ("unwatch", unwatch)];

/// Whether `command` is `EXEC`, whose refusal discards the transaction (`EXECABORT`).
pub(crate) fn is_exec(command: &Command) -> bool {
    command.name == "exec"
}

/// Redis' rule over `maxmemory` inside `MULTI`: everything is refused but what ends the
/// transaction (`EXEC`, `DISCARD`, `QUIT`, `RESET`), and `EXEC` too when its queue holds a
/// command that may grow memory.
pub(super) fn refused_when_out_of_memory(command: &Command, transaction: &Transaction) -> bool {
    match command.name {
        "exec" => transaction.denyoom,
        "discard" | "quit" | "reset" => false,
        _ => true,
    }
}

fn multi(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::other("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Transaction::default());
    if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
        info.multi = Some(0);
    }
    ctx.reply.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let Some(transaction) = ctx.client.multi.take() else {
        return Err(CmdError::other("ERR EXEC without MULTI"));
    };
    let changed = watched_keys_changed(ctx.state, ctx.client.id, ctx.now_ms);
    discard(ctx.state, ctx.client);
    if transaction.aborted {
        return Err(CmdError::other("EXECABORT Transaction discarded because of previous errors."));
    }
    if changed {
        ctx.reply.null_array();
        return Ok(());
    }
    ctx.reply.array(transaction.queued.len());
    ctx.client.deny_blocking = true;
    // Each command propagates itself (EXEC does not); together they are one execution unit,
    // which goes as one MULTI … EXEC.
    for request in &transaction.queued {
        // Every queued command was looked up when it was queued.
        match table().resolve(request) {
            Some(command) => call(ctx, command, request),
            None => ctx.reply.error("ERR unknown command"),
        }
    }
    ctx.client.deny_blocking = false;
    Ok(())
}

fn discard_command(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::other("ERR DISCARD without MULTI"));
    }
    discard(ctx.state, ctx.client);
    ctx.reply.ok();
    Ok(())
}

/// Ends `client`'s transaction, if any, and unwatches every key (`EXEC`, `DISCARD`, `RESET`, a
/// refused `EXEC`).
pub(crate) fn discard(state: &mut State, client: &mut Client) {
    client.multi = None;
    if let Some(info) = state.clients.get_mut(&client.id) {
        info.multi = None;
    }
    unwatch_all(state, client.id);
}

fn watch(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::other("ERR WATCH inside MULTI is not allowed"));
    }
    let db_index = ctx.client.db;
    let now = ctx.now_ms;
    let state = &mut *ctx.state;
    if let Some(info) = state.clients.get_mut(&ctx.client.id) {
        for key in request.args().skip(1) {
            if info.watched.iter().any(|watched| watched.db == db_index && watched.key[..] == *key) {
                continue;
            }
            let db = state.keyspace.db(db_index);
            let expired = db.peek(key).is_some_and(|entry| entry.is_expired(now));
            let seen = db.watch(key);
            info.watched.push(WatchedKey { db: db_index, key: Key::from_slice(key), seen, expired });
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    unwatch_all(ctx.state, ctx.client.id);
    ctx.reply.ok();
    Ok(())
}

/// Drops every watch of client `id` (also when it disconnects).
pub(crate) fn unwatch_all(state: &mut State, id: u64) {
    let Some(info) = state.clients.get_mut(&id) else {
        return;
    };
    for watched in std::mem::take(&mut info.watched) {
        state.keyspace.db(watched.db).unwatch(&watched.key);
    }
}

/// Whether a key client `id` watches changed since it was watched, or has expired since (Redis'
/// `CLIENT_DIRTY_CAS` and `isWatchedKeyExpired`). Deleting a key that had already expired when it
/// was watched is no change.
fn watched_keys_changed(state: &mut State, id: u64, now_ms: u64) -> bool {
    let Some(info) = state.clients.get(&id) else {
        return false;
    };
    info.watched.iter().any(|watched| {
        let db = state.keyspace.db(watched.db);
        let Some(current) = db.watched_version(&watched.key) else {
            return true;
        };
        let changes = current.version.saturating_sub(watched.seen.version);
        let changed = match changes {
            0 => false,
            // The only change is the deletion of the key that had already expired.
            1 => !(watched.expired && current.expiry_deletion == current.version),
            _ => true,
        };
        changed || (!watched.expired && db.peek(&watched.key).is_some_and(|entry| entry.is_expired(now_ms)))
    })
}
