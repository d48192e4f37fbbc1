//! The command table and dispatch.
//!
//! Every command is one [`Command`] entry (name, arity, flags, key positions, handler) in its
//! family's module, as mini-redis keeps one file per command family: adding a command is one
//! function and one table line. Dispatch checks, in Redis' order: the command exists, its arity,
//! authentication; then runs the handler.

pub mod blocking;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod migrate;
pub mod migrate_async;
pub mod monitoring;
pub mod pubsub;
mod random;
pub mod replication;
pub mod restore_async;
pub mod server;
pub mod sets;
pub mod slots;
pub mod strings;
pub mod transactions;
pub mod zsets;

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::BytesMut;
use resp::Request;

use crate::error::{CmdError, CmdResult};
use crate::evict;
use crate::keyspace::Db;
use crate::reply::Reply;
use crate::state::{Client, State};

/// A command handler: reads its arguments from the request, runs against the state, writes one
/// reply. Arity has been checked before it runs.
pub type Handler = fn(&mut Ctx<'_>, &Request) -> CmdResult;

/// Command flags, as `COMMAND INFO` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// May modify the dataset.
    pub const WRITE: Flags = Flags(1);
    /// Never modifies the dataset.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory: refused when over `maxmemory`.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Pub/sub.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed from scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// May block the client.
    pub const BLOCKING: Flags = Flags(1 << 6);
    /// Allowed while loading the dataset.
    pub const LOADING: Flags = Flags(1 << 7);
    /// Allowed on a replica with a broken link.
    pub const STALE: Flags = Flags(1 << 8);
    /// O(1) or O(log n).
    pub const FAST: Flags = Flags(1 << 9);
    /// Allowed before authenticating.
    pub const NO_AUTH: Flags = Flags(1 << 10);
    /// Not allowed inside `MULTI`.
    pub const NO_MULTI: Flags = Flags(1 << 11);
    /// May look at (and so expire) keys it was not given (`SCAN`, `RANDOMKEY`): the deletions of
    /// the expired keys it finds are propagated one by one, not as one transaction (Redis'
    /// `CMD_TOUCHES_ARBITRARY_KEYS`, which `COMMAND INFO` does not list).
    pub const TOUCHES_ARBITRARY_KEYS: Flags = Flags(1 << 12);
    /// No flags.
    pub const NONE: Flags = Flags(0);

    /// Both sets of flags.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag names `COMMAND INFO` lists, in Redis' order.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(Flags, &str); 12] = [
            (Flags::WRITE, "write"),
            (Flags::READONLY, "readonly"),
            (Flags::DENYOOM, "denyoom"),
            (Flags::ADMIN, "admin"),
            (Flags::PUBSUB, "pubsub"),
            (Flags::NOSCRIPT, "noscript"),
            (Flags::BLOCKING, "blocking"),
            (Flags::LOADING, "loading"),
            (Flags::STALE, "stale"),
            (Flags::NO_AUTH, "no_auth"),
            (Flags::NO_MULTI, "no_multi"),
            (Flags::FAST, "fast"),
        ];
        NAMES.iter().filter(|(flag, _)| self.contains(*flag)).map(|(_, name)| *name).collect()
    }
}

/// One command.
#[derive(Debug)]
pub struct Command {
    /// Lower-case name.
    pub name: &'static str,
    /// Argument count including the name: `n` exactly, or `-n` at least `n`.
    pub arity: i32,
    /// What kind of command it is.
    pub flags: Flags,
    /// Position of the first key (0: none).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Distance between keys.
    pub step: i32,
    /// The implementation.
    pub handler: Handler,
}

impl Command {
    /// Whether `args` (the name included) satisfies the arity.
    pub fn arity_ok(&self, args: usize) -> bool {
        let args = i32::try_from(args).unwrap_or(i32::MAX);
        if self.arity >= 0 { args == self.arity } else { args >= -self.arity }
    }
}

/// Shorthand for table entries.
pub(crate) const fn command(
    name: &'static str,
    arity: i32,
    flags: Flags,
    keys: (i32, i32, i32),
    handler: Handler,
) -> Command {
    Command { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, handler }
}

/// Every command, and lookup by name.
pub struct Table {
    by_name: HashMap<&'static [u8], &'static Command, foldhash::fast::FixedState>,
    all: Vec<&'static Command>,
}

/// The longest command name (`slotsmgrttagone-async-dump` is 26): longer names cannot exist.
const MAX_NAME: usize = 32;

impl Table {
    fn build() -> Table {
        let families: [&'static [Command]; 19] = [
            connection::COMMANDS,
            transactions::COMMANDS,
            pubsub::COMMANDS,
            blocking::COMMANDS,
            strings::COMMANDS,
            keys::COMMANDS,
            dump::COMMANDS,
            hashes::COMMANDS,
            lists::COMMANDS,
            sets::COMMANDS,
            zsets::COMMANDS,
            server::COMMANDS,
            debug::COMMANDS,
            monitoring::COMMANDS,
            slots::COMMANDS,
            migrate::COMMANDS,
            migrate_async::COMMANDS,
            restore_async::COMMANDS,
            replication::COMMANDS,
        ];
        let all: Vec<&'static Command> = families.into_iter().flatten().collect();
        let mut by_name = HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
        for command in &all {
            debug_assert!(command.name.len() <= MAX_NAME && command.name == command.name.to_ascii_lowercase());
            let previous = by_name.insert(command.name.as_bytes(), *command);
            debug_assert!(previous.is_none(), "command {} defined twice", command.name);
        }
        Table { by_name, all }
    }

    /// The command named `name` (any case).
    pub fn lookup(&self, name: &[u8]) -> Option<&'static Command> {
        if name.len() > MAX_NAME {
            return None;
        }
        let mut lower = [0u8; MAX_NAME];
        for (slot, byte) in lower.iter_mut().zip(name) {
            *slot = byte.to_ascii_lowercase();
        }
        self.by_name.get(&lower[..name.len()]).copied()
    }

    /// Every command, in table order.
    pub fn all(&self) -> &[&'static Command] {
        &self.all
    }
}

/// The command table.
pub fn table() -> &'static Table {
    static TABLE: LazyLock<Table> = LazyLock::new(Table::build);
    &TABLE
}

/// What a handler works with.
pub struct Ctx<'a> {
    /// The server state.
    pub state: &'a mut State,
    /// The calling client.
    pub client: &'a mut Client,
    /// Where the reply goes.
    pub reply: Reply<'a>,
    /// The time of this command (Unix ms): one reading per command, as Redis takes one.
    pub now_ms: u64,
}

impl<'a> Ctx<'a> {
    /// The client's database.
    pub fn db(&mut self) -> &mut Db {
        self.state.keyspace.db(self.client.db)
    }

    /// The client's database and the reply writer, borrowed together.
    pub fn db_and_reply(&mut self) -> (&mut Db, &mut Reply<'a>) {
        (self.state.keyspace.db(self.client.db), &mut self.reply)
    }
}

/// Executes one request for `client`, appending its reply to `out`: checks it as Redis'
/// `processCommand` does, queues it inside `MULTI`, runs it otherwise, then serves the clients
/// blocked on keys the command made ready.
pub fn execute(state: &mut State, client: &mut Client, out: &mut BytesMut, request: &Request, now_ms: u64) {
    let mut reply = Reply::new(out, client.version);
    let command = match admit(client, request) {
        Ok(command) => command,
        Err((command, error)) => {
            refuse(state, client, &mut reply, command, &error);
            return;
        }
    };
    if let Some(info) = state.clients.get_mut(&client.id) {
        info.last_command = command.name;
        info.last_interaction_ms = now_ms;
    }
    if state.config.maxmemory != 0
        && evict::perform_evictions(state, now_ms) == evict::Eviction::Failed
        && refused_when_out_of_memory(command, client)
    {
        let error = CmdError::other("OOM command not allowed when used memory > 'maxmemory'.");
        refuse(state, client, &mut reply, Some(command), &error);
        return;
    }
    if command.flags.contains(Flags::WRITE)
        && let Some(error) = write_refusal(state, client, now_ms)
    {
        refuse(state, client, &mut reply, Some(command), &error);
        return;
    }
    if let Some(transaction) = client.multi.as_mut()
        && !runs_inside_multi(command)
    {
        transaction.denyoom |= command.flags.contains(Flags::DENYOOM);
        transaction.queued.push(request.clone());
        if let Some(info) = state.clients.get_mut(&client.id) {
            info.multi = Some(transaction.queued.len());
        }
        reply.simple("QUEUED");
        return;
    }
    if !state.migrations.fences.is_empty()
        && let Some(wait) = crate::migrate::fence_for(state, client, command, request)
    {
        // Nothing is written: the session waits for the fence and runs the request again.
        client.fenced = Some(wait);
        return;
    }
    let mut ctx = Ctx { state, client, reply, now_ms };
    call(&mut ctx, command, request);
    #[cfg(debug_assertions)]
    check_charges(ctx.state, ctx.client.db, command, request);
    if !ctx.state.blocked.is_empty() && ctx.state.keyspace.has_ready() {
        blocking::serve_ready_keys(ctx.state, now_ms);
    }
}

/// Why a write may not run now, as Redis refuses it: on a replica (`READONLY`, except for the
/// master's own stream), on a master superseded by a promotion (`READONLY` too), without enough replicas acknowledging lately (`NOREPLICAS`), or while
/// the append-only log cannot be written (`MISCONF`).
fn write_refusal(state: &State, client: &Client, now_ms: u64) -> Option<CmdError> {
    let replication = &state.replication;
    if replication.is_replica() {
        return (!client.from_master).then(|| CmdError::other("READONLY You can't write against a read only replica."));
    }
    if replication.is_fenced() {
        return Some(CmdError::message(format!(
            "READONLY You can't write against a fenced master: a replica was promoted at epoch {} (this master's epoch is {}).",
            replication.epoch, replication.master_epoch
        )));
    }
    let needed = state.config.min_replicas_to_write;
    if needed > 0 && replication.good_replicas(now_ms, state.config.min_replicas_max_lag.saturating_mul(1000)) < needed
    {
        return Some(CmdError::other("NOREPLICAS Not enough good replicas to write."));
    }
    crate::aof::write_refusal(state)
}

/// Debug builds: every key the command names must be charged for what it now holds.
#[cfg(debug_assertions)]
fn check_charges(state: &mut State, db: usize, command: &Command, request: &Request) {
    if command.first_key <= 0 || db >= state.keyspace.len() {
        return;
    }
    let last = if command.last_key < 0 { request.len() as i32 + command.last_key } else { command.last_key };
    let db = state.keyspace.db(db);
    let mut position = command.first_key;
    while position <= last {
        if let Some(key) = request.arg(position as usize)
            && let Err(problem) = db.check_charge(key)
        {
            panic!("after {}: {problem}", command.name);
        }
        position += command.step.max(1);
    }
}

/// Runs one admitted command: the handler, and its error reply if it fails. `EXEC` calls this
/// for each queued command.
pub(crate) fn call(ctx: &mut Ctx<'_>, command: &Command, request: &Request) {
    ctx.state.stats.commands_processed += 1;
    let started = tokio::time::Instant::now();
    // Lookups by read commands are keyspace hits or misses (`INFO stats`); GETDEL and GETEX
    // read as GET does.
    let db = ctx.client.db;
    let reads = command.flags.contains(Flags::READONLY) || matches!(command.name, "getdel" | "getex");
    if reads {
        ctx.state.keyspace.db(db).count_reads(true);
    }
    // The change count is read only when something follows the changes: it sums every
    // database's counter.
    let changes_before = ctx.state.propagation.is_listening().then(|| ctx.state.keyspace.changes());
    ctx.state.propagation.begin_call();
    if let Err(error) = (command.handler)(ctx, request) {
        ctx.reply.error(&error.to_string());
    }
    let touches_arbitrary_keys = command.flags.contains(Flags::TOUCHES_ARBITRARY_KEYS);
    crate::propagate::end_call(ctx.state, db, request, changes_before, touches_arbitrary_keys);
    if reads {
        ctx.state.keyspace.db(db).count_reads(false);
    }
    // EXEC's commands are logged one by one; a command that blocked is not slow, it waits.
    if command.name != "exec" && ctx.client.blocked.is_none() {
        monitoring::record(ctx, command, request, started.elapsed());
    }
}

/// Checks, in Redis' order, whether `request` may run at all: the command exists, its arity,
/// authentication, and the subscribed-client restriction of RESP2. A refusal names the command
/// when it exists (a refused `EXEC` ends the transaction).
fn admit(client: &Client, request: &Request) -> Result<&'static Command, (Option<&'static Command>, CmdError)> {
    let Some(command) = table().lookup(request.name()) else {
        let args: Vec<&[u8]> = request.args().skip(1).collect();
        return Err((None, CmdError::unknown_command(request.name(), &args)));
    };
    check_subcommand(command, request).map_err(|error| (Some(command), error))?;
    if !command.arity_ok(request.len()) {
        return Err((Some(command), CmdError::arity(command.name.as_bytes())));
    }
    if !client.authenticated && !command.flags.contains(Flags::NO_AUTH) {
        return Err((Some(command), CmdError::NoAuth));
    }
    if client.multi.is_some() && command.flags.contains(Flags::NO_MULTI) {
        return Err((Some(command), CmdError::other("ERR Command not allowed inside a transaction")));
    }
    if client.subscriptions > 0 && client.version == resp::Version::Resp2 && !allowed_while_subscribed(command) {
        return Err((
            Some(command),
            CmdError::message(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                full_name(command, request)
            )),
        ));
    }
    Ok(command)
}

/// The subcommands of Redis 7.0's container commands that we serve, with their arities, as
/// `COMMAND INFO` lists them. Redis looks a subcommand up with its command, so an unknown one
/// or a wrong argument count is refused before anything runs: inside `MULTI` it is refused when
/// queued and dooms the transaction, rather than failing inside `EXEC`.
const SUBCOMMANDS: [(&str, &[(&str, i32)]); 7] = [
    ("object", &[("help", 2), ("idletime", 3), ("freq", 3), ("encoding", 3), ("refcount", 3)]),
    (
        "client",
        &[
            ("info", 2),
            ("help", 2),
            ("getredir", 2),
            ("tracking", -3),
            ("no-evict", 3),
            ("trackinginfo", 2),
            ("getname", 2),
            ("list", -2),
            ("pause", -3),
            ("id", 2),
            ("unpause", 2),
            ("setname", 3),
            ("kill", -3),
            ("caching", 3),
            ("reply", 3),
            ("unblock", -3),
        ],
    ),
    ("config", &[("resetstat", 2), ("help", 2), ("get", -3), ("rewrite", 2), ("set", -4)]),
    (
        "command",
        &[
            ("info", -2),
            ("count", 2),
            ("getkeys", -4),
            ("help", 2),
            ("docs", -2),
            ("list", -2),
            ("getkeysandflags", -4),
        ],
    ),
    (
        "pubsub",
        &[("help", 2), ("numsub", -2), ("channels", -2), ("numpat", 2), ("shardchannels", -2), ("shardnumsub", -2)],
    ),
    ("slowlog", &[("reset", 2), ("len", 2), ("help", 2), ("get", -2)]),
    (
        "latency",
        &[("graph", 3), ("doctor", 2), ("histogram", -2), ("help", 2), ("reset", -2), ("history", 3), ("latest", 2)],
    ),
];

/// For a container command with a subcommand argument: the subcommand must exist and have its
/// arity (Redis' `commandCheckExistence` and `commandCheckArity` on `object|encoding` and the
/// like). The container alone is checked against its own arity afterwards.
fn check_subcommand(command: &Command, request: &Request) -> Result<(), CmdError> {
    let Some((_, subcommands)) = SUBCOMMANDS.iter().find(|(name, _)| *name == command.name) else {
        return Ok(());
    };
    let Some(sub) = request.arg(1) else {
        return Ok(());
    };
    let Some((name, arity)) = subcommands.iter().find(|(name, _)| sub.eq_ignore_ascii_case(name.as_bytes())) else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned(),
            command: command.name.to_ascii_uppercase(),
        });
    };
    let args = i32::try_from(request.len()).unwrap_or(i32::MAX);
    let arity_ok = if *arity >= 0 { args == *arity } else { args >= -arity };
    if !arity_ok {
        return Err(CmdError::Arity(format!("{}|{name}", command.name)));
    }
    Ok(())
}

/// Replies with a refusal. Inside `MULTI` it dooms the transaction; a refused `EXEC` discards it
/// and says why, as Redis' `execCommandAbort`.
fn refuse(state: &mut State, client: &mut Client, reply: &mut Reply<'_>, command: Option<&Command>, error: &CmdError) {
    if command.is_some_and(|command| command.name == "exec") {
        transactions::discard(state, client);
        let text = error.to_string();
        let reason = text.strip_prefix("ERR ").unwrap_or(&text);
        reply.error(&format!("EXECABORT Transaction discarded because of: {reason}"));
        return;
    }
    if let Some(transaction) = client.multi.as_mut() {
        transaction.aborted = true;
    }
    reply.error(&error.to_string());
}

/// Whether `command` is refused while memory is over `maxmemory` and nothing can be evicted:
/// commands that may grow memory, anything queued inside `MULTI` (a queue can grow without
/// bound), and an `EXEC` whose queue holds such a command (Redis' rules).
fn refused_when_out_of_memory(command: &Command, client: &Client) -> bool {
    match &client.multi {
        Some(transaction) => match command.name {
            "exec" => transaction.denyoom,
            "discard" | "quit" | "reset" => false,
            _ => true,
        },
        None => command.flags.contains(Flags::DENYOOM),
    }
}

/// Commands a client inside `MULTI` runs at once instead of queueing.
fn runs_inside_multi(command: &Command) -> bool {
    matches!(command.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Commands a RESP2 client may run while subscribed.
fn allowed_while_subscribed(command: &Command) -> bool {
    matches!(command.name, "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
}

/// The name Redis reports for a command: `client|kill` for a subcommand of a container command.
fn full_name(command: &Command, request: &Request) -> String {
    const CONTAINERS: [&str; 7] = ["client", "config", "command", "object", "pubsub", "slowlog", "latency"];
    match request.arg(1) {
        Some(sub) if CONTAINERS.contains(&command.name) => {
            format!("{}|{}", command.name, String::from_utf8_lossy(sub).to_ascii_lowercase())
        }
        _ => command.name.to_string(),
    }
}
