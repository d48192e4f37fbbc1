//! Connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET, CLIENT.

use resp::{Request, Version};

use super::{Ctx, Handler};
use crate::REDIS_VERSION;
use crate::args::{self, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Bulk;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("auth", auth),
    ("hello", hello),
    ("select", select),
    ("quit", quit),
    ("reset", reset),
    ("client", client),
    ("client|info", client),
    ("client|help", client),
    ("client|getredir", client),
    ("client|tracking", client),
    ("client|no-evict", client),
    ("client|trackinginfo", client),
    ("client|getname", client),
    ("client|list", client),
    ("client|pause", client),
    ("client|id", client),
    ("client|unpause", client),
    ("client|setname", client),
    ("client|kill", client),
    ("client|caching", client),
    ("client|reply", client),
    ("client|unblock", client),
];

fn ping(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    // A subscribed RESP2 client gets a message-shaped reply it can tell from a message.
    if ctx.client.subscriptions > 0 && !ctx.reply.resp3() && request.len() <= 2 {
        ctx.reply.array(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(request.arg(1).unwrap_or_default());
        return Ok(());
    }
    match request.len() {
        1 => ctx.reply.simple("PONG"),
        2 => ctx.reply.bulk(request.arg(1).unwrap_or_default()),
        _ => return Err(CmdError::arity(b"ping")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    ctx.reply.bulk(request.arg(1).unwrap_or_default());
    Ok(())
}

/// Checks a password (and the `default` user, the only one) against `requirepass`.
fn check_password(ctx: &mut Ctx<'_>, user: Option<&[u8]>, password: &[u8]) -> CmdResult {
    let required = ctx.state.config.requirepass.as_bytes();
    let user_ok = user.is_none_or(|user| user == b"default");
    // Without a password configured the default user accepts any password (`nopass`), as Redis.
    if user_ok && (required.is_empty() || required == password) {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        Err(CmdError::other("WRONGPASS invalid username-password pair or user is disabled."))
    }
}

fn auth(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (user, password) = match request.len() {
        2 => (None, request.arg(1).unwrap_or_default()),
        3 => (request.arg(1), request.arg(2).unwrap_or_default()),
        _ => return Err(CmdError::Syntax),
    };
    for index in 1..request.len() {
        ctx.redact(index);
    }
    if user.is_none() && ctx.state.config.requirepass.is_empty() {
        return Err(CmdError::other(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    check_password(ctx, user, password)?;
    ctx.reply.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let mut version = None;
    let mut credentials = None;
    let mut name = None;
    if let Some(protover) = request.arg(1) {
        let protover = args::int(protover)
            .map_err(|_| CmdError::other("ERR Protocol version is not an integer or out of range"))?;
        version = match protover {
            2 => Some(Version::Resp2),
            3 => Some(Version::Resp3),
            _ => return Err(CmdError::other("NOPROTO unsupported protocol version")),
        };
        let mut index = 2;
        while let Some(option) = request.arg(index) {
            let remaining = request.len() - index - 1;
            if is(option, "AUTH") && remaining >= 2 {
                ctx.redact(index + 1);
                ctx.redact(index + 2);
                credentials =
                    Some((request.arg(index + 1).unwrap_or_default(), request.arg(index + 2).unwrap_or_default()));
                index += 3;
            } else if is(option, "SETNAME") && remaining >= 1 {
                name = request.arg(index + 1);
                index += 2;
            } else {
                return Err(CmdError::message(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    if let Some((user, password)) = credentials {
        check_password(ctx, Some(user), password)?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        set_name(ctx, name)?;
    }
    if let Some(version) = version {
        ctx.client.version = version;
        ctx.reply.set_version(version);
        if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
            info.version = version;
        }
    }
    let reply = &mut ctx.reply;
    reply.map(7);
    reply.bulk(b"server");
    reply.bulk(b"redis");
    reply.bulk(b"version");
    reply.bulk(REDIS_VERSION.as_bytes());
    reply.bulk(b"proto");
    reply.int(if ctx.client.version == Version::Resp3 { 3 } else { 2 });
    reply.bulk(b"id");
    reply.int(i64::try_from(ctx.client.id).unwrap_or(i64::MAX));
    reply.bulk(b"mode");
    reply.bulk(b"standalone");
    reply.bulk(b"role");
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let index = args::db_index(request.arg(1).unwrap_or_default(), ctx.state.keyspace.len())?;
    ctx.client.db = index;
    if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
        info.db = index;
    }
    ctx.reply.ok();
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.reply.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    super::transactions::discard(ctx.state, ctx.client);
    ctx.state.pubsub.remove_client(ctx.client.id);
    ctx.client.subscriptions = 0;
    ctx.client.db = 0;
    ctx.client.version = Version::Resp2;
    ctx.client.authenticated = ctx.state.config.requirepass.is_empty();
    if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
        info.db = 0;
        info.version = Version::Resp2;
        info.name = Bulk::new();
    }
    ctx.reply.set_version(Version::Resp2);
    ctx.reply.simple("RESET");
    Ok(())
}

/// `CLIENT SETNAME`'s rule: no spaces, newlines or other characters outside `!`..`~`.
fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    if name.iter().any(|byte| !(b'!'..=b'~').contains(byte)) {
        return Err(CmdError::other("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
        info.name = Bulk::from_slice(name);
    }
    Ok(())
}

fn client(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = request.arg(1).unwrap_or_default();
    let arity_error = || {
        CmdError::message(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ))
    };
    let last_command = |ctx: &mut Ctx<'_>, name: &'static str| {
        if let Some(info) = ctx.state.clients.get_mut(&ctx.client.id) {
            info.last_command = name;
        }
    };
    if is(sub, "ID") {
        if request.len() != 2 {
            return Err(arity_error());
        }
        ctx.reply.int(i64::try_from(ctx.client.id).unwrap_or(i64::MAX));
    } else if is(sub, "SETNAME") {
        if request.len() != 3 {
            return Err(arity_error());
        }
        set_name(ctx, request.arg(2).unwrap_or_default())?;
        ctx.reply.ok();
    } else if is(sub, "GETNAME") {
        if request.len() != 2 {
            return Err(arity_error());
        }
        let name = ctx.state.clients.get(&ctx.client.id).map(|info| info.name.clone()).unwrap_or_default();
        if name.is_empty() { ctx.reply.null() } else { ctx.reply.bulk(&name) }
    } else if is(sub, "LIST") {
        last_command(ctx, "client|list");
        let mut text = String::new();
        let ids: Vec<u64> = ctx.state.clients.keys().copied().collect();
        for id in ids {
            text.push_str(&client_line(ctx, id));
            text.push('\n');
        }
        ctx.reply.verbatim(&text);
    } else if is(sub, "INFO") {
        if request.len() != 2 {
            return Err(arity_error());
        }
        last_command(ctx, "client|info");
        let mut line = client_line(ctx, ctx.client.id);
        line.push('\n');
        ctx.reply.verbatim(&line);
    } else if is(sub, "KILL") {
        kill(ctx, request)?;
    } else if is(sub, "UNBLOCK") {
        if !(3..=4).contains(&request.len()) {
            return Err(arity_error());
        }
        let id = args::int(request.arg(2).unwrap_or_default())?;
        let error = match request.arg(3) {
            None => None,
            Some(mode) if is(mode, "TIMEOUT") => None,
            Some(mode) if is(mode, "ERROR") => Some("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            Some(_) => return Err(CmdError::other("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
        };
        let unblocked = u64::try_from(id).is_ok_and(|id| super::blocking::unblock_early(ctx.state, id, error));
        ctx.reply.int(i64::from(unblocked));
    } else if is(sub, "HELP") {
        let lines = [
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
            "LIST",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "HELP",
            "    Print this help.",
        ];
        ctx.reply.help(&lines);
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "CLIENT".into(),
        });
    }
    Ok(())
}

/// One `CLIENT LIST` line, with Redis' fields. Buffer sizes and file descriptors are not tracked
/// the way Redis tracks them; they are reported as fixed values tools accept.
fn client_line(ctx: &Ctx<'_>, id: u64) -> String {
    let Some(info) = ctx.state.clients.get(&id) else {
        return String::new();
    };
    let age = ctx.now_ms.saturating_sub(info.created_ms) / 1000;
    let idle = ctx.now_ms.saturating_sub(info.last_interaction_ms) / 1000;
    let resp = if info.version == Version::Resp3 { 3 } else { 2 };
    let (sub, psub) = ctx
        .state
        .pubsub
        .of(id)
        .map_or((0, 0), |subscriptions| (subscriptions.channels.len(), subscriptions.patterns.len()));
    // Redis' flag letters, in its order: P pub/sub, x MULTI, b blocked, A closing; N for none.
    let mut flags = String::new();
    if sub + psub > 0 {
        flags.push('P');
    }
    if info.multi.is_some() {
        flags.push('x');
    }
    if ctx.state.blocked.contains(id) {
        flags.push('b');
    }
    if info.closing {
        flags.push('A');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi = info.multi.map_or(-1, |queued| i64::try_from(queued).unwrap_or(i64::MAX));
    format!(
        "id={id} addr={} laddr={} fd=-1 name={} age={age} idle={idle} flags={flags} db={} sub={sub} psub={psub} \
         ssub=0 multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 \
         events=r cmd={} user=default redir=-1 resp={resp}",
        info.addr,
        info.laddr,
        String::from_utf8_lossy(&info.name),
        info.db,
        info.outbox.pending(),
        info.last_command,
    )
}

fn kill(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    // Legacy form: CLIENT KILL ip:port, replying OK or an error.
    if request.len() == 3 {
        let addr = request.arg(2).unwrap_or_default();
        let found = ctx.state.clients.iter().find(|(_, info)| info.addr.as_bytes() == addr).map(|(id, _)| *id);
        let Some(id) = found else {
            return Err(CmdError::other("ERR No such client"));
        };
        kill_client(ctx, id);
        ctx.reply.ok();
        return Ok(());
    }
    // Filter form: CLIENT KILL <option> <value> …, replying with the number killed.
    if !request.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut by_id = None;
    let mut by_addr = None;
    let mut by_laddr = None;
    let mut skip_me = true;
    let mut index = 2;
    while let (Some(option), Some(value)) = (request.arg(index), request.arg(index + 1)) {
        if is(option, "ID") {
            by_id = Some(args::uint(value).map_err(|_| CmdError::other("ERR client-id should be greater than 0"))?);
        } else if is(option, "ADDR") {
            by_addr = Some(value);
        } else if is(option, "LADDR") {
            by_laddr = Some(value);
        } else if is(option, "SKIPME") {
            skip_me = if is(value, "yes") {
                true
            } else if is(value, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else {
            return Err(CmdError::Syntax);
        }
        index += 2;
    }
    let me = ctx.client.id;
    let victims: Vec<u64> = ctx
        .state
        .clients
        .iter()
        .filter(|(id, info)| {
            by_id.is_none_or(|wanted| **id == wanted)
                && by_addr.is_none_or(|addr| info.addr.as_bytes() == addr)
                && by_laddr.is_none_or(|addr| info.laddr.as_bytes() == addr)
                && !(skip_me && **id == me)
        })
        .map(|(id, _)| *id)
        .collect();
    for id in &victims {
        kill_client(ctx, *id);
    }
    ctx.reply.count(victims.len());
    Ok(())
}

/// Asks a client's connection task to close (after its current batch).
fn kill_client(ctx: &mut Ctx<'_>, id: u64) {
    if id == ctx.client.id {
        ctx.client.close_after_reply = true;
    } else if let Some(info) = ctx.state.clients.get(&id) {
        info.kill.notify_one();
    }
}
