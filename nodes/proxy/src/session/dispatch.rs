//! Routes one request: answered here, refused, split by key, held in line behind a migrating
//! or locked slot, or forwarded to its slot's master (or a replica).

use bytes::Bytes;
use model::slot_of;
use net::Env;
use resp::Request;

use super::client::Client;
use super::held::{serve_in_line, write_acks};
use super::local::answer;
use super::pending::{Dispatch, Pending, Tracked, ready, resolve};
use super::reply::error;
use super::scan::scan;
use super::split::split;
use crate::commands::{self, Kind};
use crate::proxy::Shared;

/// Answers one request by itself, waiting for its reply (a RESP3 client's commands while it is
/// subscribed).
pub(crate) async fn answer_alone<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let upper = commands::upper(request.name());
    let route = commands::lookup_upper(&upper).route;
    if client.tx.intercepts(upper.as_str(), route) {
        return transaction(shared, client, request, upper.as_str()).await;
    }
    if route == commands::Route::Scan && client.authenticated {
        return scan(shared, client, request).await;
    }
    match dispatch(shared, client, request) {
        Dispatch::Now(pending) => resolve(pending).await,
        Dispatch::InLine => serve_in_line(shared, client.target(), request).await,
    }
}

/// A request the client's transaction intercepts, once the client has authenticated.
pub(crate) async fn transaction<E: Env>(
    shared: &Shared<E>,
    client: &mut Client<E>,
    request: &Request,
    upper: &str,
) -> Bytes {
    if !client.authenticated {
        return error("NOAUTH Authentication required.");
    }
    client.tx.handle(shared, client.db, client.version, request, upper).await
}

/// Routes one request, or answers it here.
pub(crate) fn dispatch<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Dispatch {
    let name = request.name();
    let upper = commands::upper(name);
    let info = commands::lookup_upper(&upper);
    // `AUTH`, `HELLO` and `QUIT` are answered before authentication (their `no_auth` flag).
    let before_auth = info.route == commands::Route::Local
        && info.command.is_some_and(|command| command.has(commands::Flags::NO_AUTH));
    if !client.authenticated && !before_auth {
        return ready(error("NOAUTH Authentication required."));
    }
    if info.route == commands::Route::Subscribe && !info.arity_ok(request) {
        let name = upper.as_str().to_ascii_lowercase();
        return ready(error(&format!("ERR wrong number of arguments for '{name}' command")));
    }
    if info.route == commands::Route::Local
        && let Some(answer) = answer(shared, client, request, upper.as_str())
    {
        return answer;
    }
    if let Some(refusal) = shared.refusal() {
        return ready(error(refusal));
    }
    if info.kind == Kind::NotAllowed {
        let name = commands::upper_name(name);
        return ready(error(&format!("ERR handle request, command '{name}' is not allowed")));
    }
    if let Some(how) = info.split
        && let Some(units) = how.units(request)
    {
        return split(shared, client, request, info.kind, how, &units);
    }
    // Atomic over its keys, so it cannot be split: one slot only.
    if info.route == commands::Route::SameSlot
        && info.key.keys(request).windows(2).any(|pair| slot_of(pair[0]) != slot_of(pair[1]))
    {
        return ready(error("CROSSSLOT Keys in request don't hash to the same slot"));
    }
    let key = info.key.key(request).unwrap_or_default();
    let slot = slot_of(key).index();
    // Counted before the table is read: a table change either sees this request in flight, or
    // this request sees the slot held.
    let in_flight = shared.router.track(slot);
    let table = shared.router.table();
    let route = &table[slot];
    if route.slot.locked || route.migrate_from.is_some() {
        return Dispatch::InLine;
    }
    match &route.backend {
        Some(backend) => {
            // Reads may go to a replica that is up (as in Codis, replicas may lag: such reads
            // can miss the latest writes).
            let replica = if info.kind.replica_ok() { route.replica(client.id as usize) } else { None };
            let target = replica.unwrap_or(backend);
            // A replica cannot `WAIT`: reads sent there are as fresh as it is (`replica_groups`).
            let acks = if replica.is_some() { None } else { write_acks(shared, route, info.kind) };
            let receiver = target.conn(client.db, slot, client.version).send_acked(request.wire().clone(), acks);
            Dispatch::Now(Pending::One(Tracked { receiver, _in_flight: vec![in_flight] }))
        }
        None => ready(error("ERR handle request, slot is not ready, may be offline")),
    }
}
