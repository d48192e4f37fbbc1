//! Writes wait for migration's fences: a write to a key in flight (its batch sent to the target,
//! not yet acknowledged) waits until the batch is settled, then runs again, so the key is written
//! once, where it now lives. Which keys a command writes comes from the command table, so every
//! command is fenced the same way.

use resp::Request;

use super::{Command, Flags, table, transactions};
use crate::migrate::{FenceId, FenceWait};
use crate::state::{Client, State};

/// The wait, if `request` (by `client`, running `command`) would write a key in flight: the
/// caller blocks until the fence lifts and then runs the request again. Commands that write a
/// whole database wait while any of its keys is in flight. Reads never wait.
pub fn fence_for(state: &State, client: &Client, command: &Command, request: &Request) -> Option<FenceWait> {
    let fences = &state.migrations.fences;
    if fences.is_empty() {
        return None;
    }
    let fence = match client.multi.as_ref() {
        // EXEC: its queue's writes.
        Some(transaction) if transactions::is_exec(command) => transaction.queued.iter().find_map(|queued| {
            let command = table().resolve(queued)?;
            writes_fenced(state, client.db, command, queued)
        }),
        _ => writes_fenced(state, client.db, command, request),
    }?;
    fences.wait(fence)
}

/// The fence a write by `command` would cross, if any: its keys' (as the command table finds
/// them), or any of its database's, or any at all, as its flags say.
fn writes_fenced(state: &State, db: usize, command: &Command, request: &Request) -> Option<FenceId> {
    let fences = &state.migrations.fences;
    if !command.flags.contains(Flags::WRITE) || command.flags.contains(Flags::NOT_FENCED) {
        return None;
    }
    if command.flags.contains(Flags::WRITES_ANY_DATABASE) {
        return (0..state.keyspace.len()).find_map(|db| fences.any_fence(db));
    }
    if command.flags.contains(Flags::WRITES_DATABASE) {
        return fences.any_fence(db);
    }
    command.keys(request).find_map(|key| fences.fence_of(db, key))
}
