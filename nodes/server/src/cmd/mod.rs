//! The command table and dispatch.
//!
//! Every command is one [`Command`] entry (name, arity, flags, key positions, handler) in its
//! family's module, as mini-redis keeps one file per command family: adding a command is one
//! function and one table line. Dispatch checks, in Redis' order: the command exists, its arity,
//! authentication; then runs the handler.

pub mod blocking;
pub mod command;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod fence;
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

pub use commands::Flags;

/// One command this server serves: its entry in the shared command table (`nodes/commands`),
/// which says everything about it but how it runs, and its handler.
#[derive(Debug)]
pub struct Command {
    /// Lower-case full name: `get`, `client|kill`.
    pub name: &'static str,
    /// Its flags (listed and hidden), from the table.
    pub flags: Flags,
    /// Its entry in the shared table: arity, key specifications, documentation.
    pub spec: &'static commands::Command,
    /// The implementation (a container's runs only where the container takes no subcommand,
    /// as `COMMAND` alone).
    pub handler: Handler,
    /// For a container (`CLIENT`, `CONFIG`), the subcommands served, in table order.
    pub subcommands: Vec<Command>,
}

impl Command {
    /// Whether `args` (the name included) satisfies the arity.
    pub fn arity_ok(&self, args: usize) -> bool {
        self.spec.arity_ok(args)
    }

    /// Whether it is a container of subcommands.
    pub fn is_container(&self) -> bool {
        self.spec.is_container()
    }

    /// The keys `request` names, by the table's key specifications.
    pub fn keys<'r>(&self, request: &'r Request) -> impl Iterator<Item = &'r [u8]> {
        self.spec.keys(request).into_iter().filter_map(|key| request.arg(key.position))
    }
}

/// Every command this server serves, and lookup by name.
pub struct Table {
    by_name: HashMap<&'static str, usize, foldhash::fast::FixedState>,
    all: Vec<Command>,
}

impl Table {
    /// Pairs every handler with its entry in the shared table. A handler for a command the
    /// table lacks is a programming error, caught by the first test that starts a server.
    fn build() -> Table {
        let families: [&'static [(&'static str, Handler)]; 20] = [
            command::HANDLERS,
            connection::HANDLERS,
            transactions::HANDLERS,
            pubsub::HANDLERS,
            blocking::HANDLERS,
            strings::HANDLERS,
            keys::HANDLERS,
            dump::HANDLERS,
            hashes::HANDLERS,
            lists::HANDLERS,
            sets::HANDLERS,
            zsets::HANDLERS,
            server::HANDLERS,
            debug::HANDLERS,
            monitoring::HANDLERS,
            slots::HANDLERS,
            migrate::HANDLERS,
            migrate_async::HANDLERS,
            restore_async::HANDLERS,
            replication::HANDLERS,
        ];
        let mut handlers: HashMap<&'static str, Handler> = HashMap::new();
        for (name, handler) in families.into_iter().flatten() {
            let previous = handlers.insert(*name, *handler);
            assert!(previous.is_none(), "command {name} has two handlers");
            assert!(
                commands::table().lookup(name.as_bytes()).is_some(),
                "command {name} is not in nodes/commands/data"
            );
        }
        let mut all = Vec::new();
        for spec in commands::table().commands() {
            let subcommands: Vec<Command> = spec
                .subcommands
                .iter()
                .filter_map(|sub| {
                    let handler = *handlers.get(sub.name.as_str())?;
                    Some(Command { name: &sub.name, flags: sub.flags, spec: sub, handler, subcommands: Vec::new() })
                })
                .collect();
            let handler = match handlers.get(spec.name.as_str()) {
                Some(handler) => *handler,
                // A container without a handler of its own never runs: its arity needs a
                // subcommand.
                None if !subcommands.is_empty() => no_subcommand,
                None => continue,
            };
            all.push(Command { name: &spec.name, flags: spec.flags, spec, handler, subcommands });
        }
        let mut by_name = HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
        for (index, command) in all.iter().enumerate() {
            by_name.insert(command.name, index);
        }
        Table { by_name, all }
    }

    /// The command named `name` (any case), as a client names it: a top-level name only
    /// (`CLIENT|KILL` is no command, as in Redis).
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        if name.len() > commands::MAX_NAME {
            return None;
        }
        let mut lower = [0u8; commands::MAX_NAME];
        for (slot, byte) in lower.iter_mut().zip(name) {
            *slot = byte.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&lower[..name.len()]).ok()?;
        self.by_name.get(lower).map(|index| &self.all[*index])
    }

    /// The command or subcommand with this full name (`get`, `client|kill`), as `COMMAND INFO`
    /// and `COMMAND DOCS` name them.
    pub fn lookup_full(&self, name: &[u8]) -> Option<&Command> {
        let Some(bar) = name.iter().position(|byte| *byte == b'|') else {
            return self.lookup(name);
        };
        let container = self.lookup(&name[..bar])?;
        container.subcommands.iter().find(|sub| sub.spec.sub_name().as_bytes().eq_ignore_ascii_case(&name[bar + 1..]))
    }

    /// The command `request` runs, as Redis' `lookupCommand` finds it: a container's subcommand
    /// when it names one (`None` for a subcommand not served), else the command.
    pub fn resolve(&self, request: &Request) -> Option<&Command> {
        let command = self.lookup(request.name())?;
        match request.arg(1) {
            Some(sub) if command.is_container() => {
                command.subcommands.iter().find(|served| served.spec.sub_name().as_bytes().eq_ignore_ascii_case(sub))
            }
            _ => Some(command),
        }
    }

    /// Every top-level command, in table order.
    pub fn all(&self) -> &[Command] {
        &self.all
    }
}

/// A container called without a subcommand, if its arity ever let one through.
fn no_subcommand(_ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    Err(CmdError::arity(&request.name().to_ascii_lowercase()))
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
    /// Arguments the running command asked to hide from the slow log (passwords), by index:
    /// each handler says which of its arguments are secret, as Redis' handlers call
    /// `redactClientCommandArgument`.
    pub redacted: Vec<usize>,
}

impl<'a> Ctx<'a> {
    /// Hides argument `index` of the running command from the slow log.
    pub fn redact(&mut self, index: usize) {
        self.redacted.push(index);
    }

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
        && !command.flags.contains(Flags::NOT_QUEUED)
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
        && let Some(wait) = fence::fence_for(state, client, command, request)
    {
        // Nothing is written: the session waits for the fence and runs the request again.
        client.fenced = Some(wait);
        return;
    }
    let mut ctx = Ctx { state, client, reply, now_ms, redacted: Vec::new() };
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
    if db >= state.keyspace.len() {
        return;
    }
    let db = state.keyspace.db(db);
    for key in command.keys(request) {
        if let Err(problem) = db.check_charge(key) {
            panic!("after {}: {problem}", command.name);
        }
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
    let reads = command.flags.intersects(Flags::READONLY.with(Flags::COUNTS_READS));
    if reads {
        ctx.state.keyspace.db(db).count_reads(true);
    }
    // The change count is read only when something follows the changes: it sums every
    // database's counter.
    let changes_before = ctx.state.propagation.is_listening().then(|| ctx.state.keyspace.changes());
    ctx.state.propagation.begin_call();
    ctx.redacted.clear();
    if let Err(error) = (command.handler)(ctx, request) {
        ctx.reply.error(&error.to_string());
    }
    let touches_arbitrary_keys = command.flags.contains(Flags::TOUCHES_ARBITRARY_KEYS);
    crate::propagate::end_call(ctx.state, db, request, changes_before, touches_arbitrary_keys);
    if reads {
        ctx.state.keyspace.db(db).count_reads(false);
    }
    // A command that blocked is not slow, it waits.
    if ctx.client.blocked.is_none() {
        monitoring::record(ctx, command, request, started.elapsed());
    }
}

/// Checks, in Redis' order, whether `request` may run at all: the command (or a container's
/// subcommand) exists, its arity, authentication, and the subscribed-client restriction of
/// RESP2. A refusal names the command when it exists (a refused `EXEC` ends the transaction).
fn admit(client: &Client, request: &Request) -> Result<&'static Command, (Option<&'static Command>, CmdError)> {
    let Some(command) = table().resolve(request) else {
        if let Some(container) = table().lookup(request.name()) {
            let sub = request.arg(1).unwrap_or_default();
            return Err((
                Some(container),
                CmdError::UnknownSubcommand {
                    sub: String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned(),
                    command: container.name.to_ascii_uppercase(),
                },
            ));
        }
        let args: Vec<&[u8]> = request.args().skip(1).collect();
        return Err((None, CmdError::unknown_command(request.name(), &args)));
    };
    if !command.arity_ok(request.len()) {
        return Err((Some(command), CmdError::arity(command.name.as_bytes())));
    }
    if !client.authenticated && !command.flags.contains(Flags::NO_AUTH) {
        return Err((Some(command), CmdError::NoAuth));
    }
    if client.multi.is_some() && command.flags.contains(Flags::NO_MULTI) {
        return Err((Some(command), CmdError::other("ERR Command not allowed inside a transaction")));
    }
    if client.subscriptions > 0
        && client.version == resp::Version::Resp2
        && !command.flags.contains(Flags::WHILE_SUBSCRIBED)
    {
        return Err((
            Some(command),
            CmdError::message(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                command.name
            )),
        ));
    }
    Ok(command)
}

/// Replies with a refusal. Inside `MULTI` it dooms the transaction; a refused `EXEC` discards it
/// and says why, as Redis' `execCommandAbort`.
fn refuse(state: &mut State, client: &mut Client, reply: &mut Reply<'_>, command: Option<&Command>, error: &CmdError) {
    if command.is_some_and(transactions::is_exec) {
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
/// commands that may grow memory, and anything inside `MULTI` but what ends it (a queue can
/// grow without bound), as Redis' `processCommand` decides.
fn refused_when_out_of_memory(command: &Command, client: &Client) -> bool {
    match &client.multi {
        Some(transaction) => transactions::refused_when_out_of_memory(command, transaction),
        None => command.flags.contains(Flags::DENYOOM),
    }
}
