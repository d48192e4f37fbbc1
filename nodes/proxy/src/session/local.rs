//! Commands the proxy answers itself (their route in the command table is `local`): `QUIT`,
//! `AUTH`, `HELLO`, `SELECT`, `ECHO`, `PING`, `INFO`, `SLOTSMAPPING`, and Codis' forms of `PING`,
//! `INFO` and `SLOTSINFO` that name a backend.

use bytes::{Bytes, BytesMut};
use net::Env;
use resp::{Request, Version, encode};

use super::client::Client;
use super::pending::{Dispatch, Pending, Tracked, ready};
use super::reply::{bulk, error, simple};
use crate::proxy::Shared;

/// The commands answered here, each in some of its forms.
#[cfg(test)]
const ANSWERED: [&str; 9] = ["QUIT", "AUTH", "HELLO", "SELECT", "ECHO", "PING", "INFO", "SLOTSMAPPING", "SLOTSINFO"];

/// Answers `request` here if the proxy serves this form of it itself; `None` routes it on (the
/// other forms go to a backend, which answers them).
pub(crate) fn answer<E: Env>(
    shared: &Shared<E>,
    client: &mut Client<E>,
    request: &Request,
    upper: &str,
) -> Option<Dispatch> {
    let reply = match upper {
        "QUIT" => {
            client.quit = true;
            simple("OK")
        }
        "AUTH" => auth(shared, client, request),
        "HELLO" => hello(shared, client, request),
        "SELECT" => select(shared, client, request),
        "ECHO" if request.len() == 2 => bulk(request.arg(1).unwrap_or_default()),
        "PING" if request.len() == 1 => simple("PONG"),
        "INFO" if request.len() == 1 => info(shared),
        "SLOTSMAPPING" => slots_mapping(shared, request),
        "PING" | "INFO" | "SLOTSINFO" if request.len() >= 2 => return Some(to_named_backend(shared, client, request)),
        _ => return None,
    };
    Some(ready(reply))
}

/// Codis' forms whose first argument names a backend: the rest goes there.
fn to_named_backend<E: Env>(shared: &Shared<E>, client: &Client<E>, request: &Request) -> Dispatch {
    let addr = String::from_utf8_lossy(request.arg(1).unwrap_or_default()).into_owned();
    let Some(backend) = shared.router.pool().find(&addr) else {
        return ready(error(&format!("ERR backend server '{addr}' not found")));
    };
    let forwarded = Request::from_args(std::iter::once(request.name()).chain(request.args().skip(2)));
    let receiver = backend.conn(client.db, 0, client.version).send(forwarded.wire().clone());
    Dispatch::Now(Pending::One(Tracked { receiver, _in_flight: Vec::new() }))
}

pub(crate) fn auth<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let expected = &shared.config.session_auth;
    if request.len() != 2 {
        return error("ERR wrong number of arguments for 'auth' command");
    }
    if expected.is_empty() {
        return error("ERR Client sent AUTH, but no password is set");
    }
    if request.arg(1) == Some(expected.as_bytes()) {
        client.authenticated = true;
        simple("OK")
    } else {
        client.authenticated = false;
        error("ERR invalid password")
    }
}

/// `HELLO [protover [AUTH user password] [SETNAME name]]`: switches the client's protocol (its
/// requests then use RESP3 backend connections) and describes the proxy.
pub(crate) fn hello<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    let mut version = client.version;
    if let Some(protover) = request.arg(1) {
        version = match resp::parse_i64(protover) {
            Some(2) => Version::Resp2,
            Some(3) => Version::Resp3,
            Some(_) => return error("NOPROTO unsupported protocol version"),
            None => return error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        if option.eq_ignore_ascii_case(b"AUTH") && request.len() > index + 2 {
            let password = request.arg(index + 2).unwrap_or_default();
            let expected = &shared.config.session_auth;
            // Without a password, any is accepted (Redis' `nopass` default user).
            if !expected.is_empty() && password != expected.as_bytes() {
                return error("WRONGPASS invalid username-password pair or user is disabled.");
            }
            client.authenticated = true;
            index += 3;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && request.len() > index + 1 {
            index += 2;
        } else {
            return error(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(option)));
        }
    }
    if !client.authenticated {
        return error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    client.version = version;
    let mut out = BytesMut::new();
    encode::write_map_header(&mut out, 7, version);
    for (field, value) in [("server", "codis-proxy"), ("version", env!("CARGO_PKG_VERSION"))] {
        encode::write_bulk(&mut out, field.as_bytes());
        encode::write_bulk(&mut out, value.as_bytes());
    }
    encode::write_bulk(&mut out, b"proto");
    encode::write_integer(&mut out, if version == Version::Resp3 { 3 } else { 2 });
    encode::write_bulk(&mut out, b"id");
    encode::write_integer(&mut out, i64::try_from(client.id).unwrap_or(i64::MAX));
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        encode::write_bulk(&mut out, field.as_bytes());
        encode::write_bulk(&mut out, value.as_bytes());
    }
    encode::write_bulk(&mut out, b"modules");
    encode::write_array_header(&mut out, 0);
    out.freeze()
}

pub(crate) fn select<E: Env>(shared: &Shared<E>, client: &mut Client<E>, request: &Request) -> Bytes {
    if request.len() != 2 {
        return error("ERR wrong number of arguments for 'select' command");
    }
    let databases = shared.router.pool().options().databases;
    match resp::parse_i64(request.arg(1).unwrap_or_default()).and_then(|db| usize::try_from(db).ok()) {
        Some(db) if db < databases => {
            client.db = db;
            simple("OK")
        }
        Some(_) => error("ERR DB index is out of range"),
        None => error("ERR invalid DB index"),
    }
}

/// `INFO` without arguments: the proxy's own sections (Codis' form `INFO <backend address>`
/// asks a backend).
pub(crate) fn info<E: Env>(shared: &Shared<E>) -> Bytes {
    use std::sync::atomic::Ordering;
    let stats = &shared.stats;
    let text = format!(
        "# Server\r\nproxy_version:{}\r\nproduct_name:{}\r\nonline:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_error_replies:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        shared.config.product_name,
        u8::from(shared.online.load(Ordering::Acquire)),
        shared.sessions_alive(),
        stats.sessions_total.load(Ordering::Relaxed),
        stats.ops_total.load(Ordering::Relaxed),
        stats.ops_fails.load(Ordering::Relaxed),
    );
    bulk(text.as_bytes())
}

/// `SLOTSMAPPING [slot]` (Codis, proxy only): per slot `[id, backend, migrate_from, replica
/// groups]`.
pub(crate) fn slots_mapping<E: Env>(shared: &Shared<E>, request: &Request) -> Bytes {
    let table = shared.router.table();
    let range = match request.arg(1) {
        None => 0..model::MAX_SLOT_NUM,
        Some(arg) => match resp::parse_i64(arg).and_then(|slot| usize::try_from(slot).ok()) {
            Some(slot) if slot < model::MAX_SLOT_NUM && request.len() == 2 => slot..slot + 1,
            _ => return error(&format!("ERR invalid slot number = {}", String::from_utf8_lossy(arg))),
        },
    };
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, range.len());
    for route in &table[range] {
        encode::write_array_header(&mut out, 4);
        encode::write_integer(&mut out, route.slot.id.index() as i64);
        encode::write_bulk(&mut out, route.slot.backend_addr.as_bytes());
        encode::write_bulk(&mut out, route.slot.migrate_from.as_bytes());
        encode::write_array_header(&mut out, route.slot.replica_groups.len());
        for group in &route.slot.replica_groups {
            encode::write_array_header(&mut out, group.len());
            for addr in group {
                encode::write_bulk(&mut out, addr.as_bytes());
            }
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::ANSWERED;

    #[test]
    fn every_command_routed_here_is_answered_here() {
        let mut local: Vec<String> = commands::table()
            .commands()
            .iter()
            .filter(|command| command.route == commands::Route::Local)
            .map(|command| command.name.to_ascii_uppercase())
            .collect();
        local.sort();
        let mut answered: Vec<String> = ANSWERED.iter().map(|name| name.to_string()).collect();
        answered.sort();
        assert_eq!(local, answered);
    }
}
