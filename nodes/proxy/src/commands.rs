//! What the proxy does with each command, read from the shared command table
//! (`nodes/commands`): its route (refused, answered here, forwarded to a master or a replica,
//! split by key…) and where its routing key is, found by the command's key specifications.
//!
//! Names are matched whole, upper-cased: Codis' fast path only upper-cases letters and `:`, so
//! any name with another byte (every dashed name, `SLOTSMGRT-ASYNC-CANCEL` among them) skips its
//! table and is forwarded, letting a client abort a migration through the proxy. Here a name
//! is looked up as sent, whatever its bytes.

use std::collections::HashMap;
use std::sync::LazyLock;

pub use commands::{Flags, Route};

/// What the proxy does with a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Never forwarded: `-ERR … command 'X' is not allowed`.
    NotAllowed,
    /// Forwarded to the slot's master; reads may go to replicas unless `MasterOnly`.
    Read,
    /// Reads sent to the master only: routed `master` in the table (`*SCAN`, `SLOTSSCAN`, and
    /// every read Codis does not list), the forms of `local` commands the proxy does not answer,
    /// and reads flagged `master_only` (`TOUCH`).
    MasterOnly,
    /// Writes.
    Write,
    /// Not in the table: forwarded to the master, as Codis' `MayWrite`.
    MayWrite,
}

impl Kind {
    /// Whether replicas may serve it.
    pub fn replica_ok(self) -> bool {
        self == Kind::Read
    }

    /// The kind of a command the table routes this way.
    fn of(route: Route, command: &commands::Command) -> Kind {
        let readonly = command.has(commands::Flags::READONLY) && !command.has(commands::Flags::MASTER_ONLY);
        match route {
            // Answered by the proxy itself or intercepted before routing; what reaches the
            // router in these forms is refused as Codis refuses it.
            Route::NotAllowed | Route::Scan | Route::Subscribe | Route::Transaction => Kind::NotAllowed,
            Route::Replica => Kind::Read,
            // Other forms than the ones the proxy answers go to the master by their key.
            Route::Local => Kind::MasterOnly,
            Route::Split if readonly => Kind::Read,
            Route::Master if readonly => Kind::MasterOnly,
            Route::Split | Route::Master | Route::SameSlot | Route::Broadcast | Route::Publish => Kind::Write,
        }
    }
}

/// Where a command's routing key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAt {
    /// No key: routed to slot 0's backend, as Codis does.
    None,
    /// At this argument position (a command not in the table: its first argument, as Codis).
    Arg(usize),
    /// A channel at this argument position (`PUBLISH`): routed by its slot as a key is, but it
    /// names no data, so while the slot migrates it goes straight to the target (there is
    /// nothing to move first, and the migration wrapper refuses pub/sub commands).
    Channel(usize),
    /// Where the command's key specifications say (a container's: its subcommand's).
    Spec(&'static commands::Command),
}

impl KeyAt {
    /// The routing key or channel of `request`, if any.
    pub fn key(self, request: &resp::Request) -> Option<&[u8]> {
        match self {
            KeyAt::None => None,
            KeyAt::Arg(at) | KeyAt::Channel(at) => request.arg(at),
            KeyAt::Spec(command) => request.arg(resolve(command, request)?.first_key(request)?),
        }
    }

    /// Every key of `request`, for the slots it touches.
    pub fn keys(self, request: &resp::Request) -> Vec<&[u8]> {
        match self {
            KeyAt::Spec(command) => resolve(command, request)
                .map(|command| command.keys(request).iter().filter_map(|key| request.arg(key.position)).collect())
                .unwrap_or_default(),
            other => other.key(request).into_iter().collect(),
        }
    }
}

/// A container's subcommand named by `request`, or the command itself.
fn resolve<'c>(command: &'c commands::Command, request: &resp::Request) -> Option<&'c commands::Command> {
    if command.is_container() { command.subcommand(request.arg(1)?) } else { Some(command) }
}

/// How a split command's parts' replies are joined: the command table's `response_policy` tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// No policy (`MGET`): each part's values, put back in key order.
    Values,
    /// `response_policy:agg_sum` (`DEL`, `EXISTS`): the sum of the parts' integers.
    Sum,
    /// `response_policy:all_succeeded` (`MSET`): `+OK` once every part said it.
    AllOk,
}

/// A command the proxy splits by key: from `first` on, each key and the `width - 1` arguments
/// after it are one unit (`MSET key value`), as its key specification says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The first key's index.
    pub first: usize,
    /// Arguments per key.
    pub width: usize,
    /// How the parts' replies are joined.
    pub join: Join,
}

impl Split {
    /// The split form of `command`, if its route splits it. The data must allow one: a test
    /// reads every command.
    fn of(command: &commands::Command) -> Option<Split> {
        if command.route != Route::Split {
            return None;
        }
        let spec = command.key_specs.first()?;
        let (
            commands::BeginSearch::Index { index: first },
            commands::FindKeys::Range { lastkey: -1, keystep, limit: 0 },
        ) = (&spec.begin_search, spec.find_keys)
        else {
            return None;
        };
        let policy = |tip: &str| command.tips.iter().any(|held| held == tip);
        let join = if policy("response_policy:agg_sum") {
            Join::Sum
        } else if policy("response_policy:all_succeeded") {
            Join::AllOk
        } else {
            Join::Values
        };
        Some(Split {
            first: usize::try_from(*first).ok()?,
            width: usize::try_from(keystep).ok().filter(|width| *width > 0)?,
            join,
        })
    }

    /// The arguments of `request`'s units, in order (each unit is `width` of them, its key
    /// first), when it names at least two keys and every unit is whole; otherwise it is not
    /// split (and its server answers any error).
    pub fn units<'r>(&self, request: &'r resp::Request) -> Option<Vec<&'r [u8]>> {
        let args = request.len().checked_sub(self.first)?;
        if args < 2 * self.width || !args.is_multiple_of(self.width) {
            return None;
        }
        Some(request.args().skip(self.first).collect())
    }
}

/// One command's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// What to do with it.
    pub kind: Kind,
    /// Where its key is.
    pub key: KeyAt,
    /// Its route in the command table (`Master` for a name not in the table).
    pub route: Route,
    /// How it is split, for a command split by key.
    pub split: Option<Split>,
    /// Its entry in the command table (`None` for a name not in it).
    pub command: Option<&'static commands::Command>,
}

impl Info {
    /// Whether `request` has the command's arity (a name not in the table: any).
    pub fn arity_ok(&self, request: &resp::Request) -> bool {
        self.command.is_none_or(|command| command.arity_ok(request.len()))
    }
}

/// Not commands, but what a browser tricked into posting to the proxy sends first (Codis and
/// Redis close such connections' requests as not allowed: cross-protocol scripting).
const NOT_COMMANDS: [&str; 2] = ["HOST:", "POST"];

/// Looked up for every request: a fast fixed hasher (the names are the table's, not a client's).
static TABLE: LazyLock<HashMap<Vec<u8>, Info, foldhash::fast::FixedState>> = LazyLock::new(|| {
    let mut table = HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0));
    for command in commands::table().commands() {
        let kind = Kind::of(command.route, command);
        let key = if command.route == Route::Publish {
            KeyAt::Channel(1)
        } else if let Some(at) = command.proxy_key {
            KeyAt::Arg(at)
        } else if command.has_keys() || command.subcommands.iter().any(commands::Command::has_keys) {
            KeyAt::Spec(command)
        } else {
            KeyAt::None
        };
        let split = Split::of(command);
        assert!(
            split.is_some() == (command.route == Route::Split),
            "{}: a split command needs a key specification naming every key to its end",
            command.name
        );
        let info = Info { kind, key, route: command.route, split, command: Some(command) };
        table.insert(command.name.to_ascii_uppercase().into_bytes(), info);
    }
    for name in NOT_COMMANDS {
        let info =
            Info { kind: Kind::NotAllowed, key: KeyAt::None, route: Route::NotAllowed, split: None, command: None };
        table.insert(name.as_bytes().to_vec(), info);
    }
    table
});

/// The longest name in the table.
const MAX_NAME: usize = 32;

/// A command name upper-cased on the stack: the proxy matches every request's name, and
/// allocating for it would cost a heap round trip per request.
#[derive(Clone, Copy)]
pub struct UpperName {
    bytes: [u8; MAX_NAME],
    /// `None` for a name longer than any in the table.
    len: Option<usize>,
}

impl UpperName {
    /// The upper-cased name; empty for a name too long to be one we know (or not UTF-8).
    pub fn as_str(&self) -> &str {
        self.len.and_then(|len| std::str::from_utf8(&self.bytes[..len]).ok()).unwrap_or_default()
    }
}

/// Upper-cases `name` on the stack.
pub fn upper(name: &[u8]) -> UpperName {
    let mut bytes = [0u8; MAX_NAME];
    if name.len() > MAX_NAME {
        return UpperName { bytes, len: None };
    }
    for (slot, byte) in bytes.iter_mut().zip(name) {
        *slot = byte.to_ascii_uppercase();
    }
    UpperName { bytes, len: Some(name.len()) }
}

/// Looks an upper-cased name up; a name not in the table is `MayWrite`, keyed by its first
/// argument, as Codis treats it.
pub fn lookup_upper(name: &UpperName) -> Info {
    let unknown = Info { kind: Kind::MayWrite, key: KeyAt::Arg(1), route: Route::Master, split: None, command: None };
    match name.len {
        Some(len) => TABLE.get(&name.bytes[..len]).copied().unwrap_or(unknown),
        None => unknown,
    }
}

/// Looks `name` up (any case).
pub fn lookup(name: &[u8]) -> Info {
    lookup_upper(&upper(name))
}

/// The upper-cased name, whole, for error messages and statistics.
pub fn upper_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

/// Every key `request` names, as the command table finds them (else its routing key, else
/// none): the slots a split command touches, a transaction's keys (which must share its slot),
/// the slots a held request blocks.
pub fn routing_keys(info: Info, request: &resp::Request) -> Vec<&[u8]> {
    info.key.keys(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_names_are_matched_whole() {
        for name in ["slotsmgrt-async-cancel", "SLOTSMGRT-EXEC-WRAPPER", "SlotsRestore-Async", "restore-asking"] {
            assert_eq!(lookup(name.as_bytes()).kind, Kind::NotAllowed, "{name}");
        }
    }

    #[test]
    fn splits_come_from_key_specifications_and_tips() {
        let split = |name: &[u8]| lookup(name).split;
        assert_eq!(split(b"mget"), Some(Split { first: 1, width: 1, join: Join::Values }));
        assert_eq!(split(b"MSET"), Some(Split { first: 1, width: 2, join: Join::AllOk }));
        for name in [&b"del"[..], b"unlink", b"exists", b"touch"] {
            assert_eq!(split(name), Some(Split { first: 1, width: 1, join: Join::Sum }));
        }
        assert_eq!(split(b"msetnx"), None);
        assert_eq!(lookup(b"msetnx").route, Route::SameSlot);
        let units = |line: &str| {
            let request = resp::Request::from_args(line.split(' ').map(str::as_bytes));
            let how = split(request.name())?;
            how.units(&request).map(|args| args.len() / how.width)
        };
        assert_eq!(units("MSET a 1 b 2"), Some(2));
        assert_eq!(units("MSET a 1 b"), None);
        assert_eq!(units("MSET a 1"), None);
        assert_eq!(units("MGET a"), None);
        assert_eq!(units("DEL a b c"), Some(3));
    }

    #[test]
    fn kinds_and_key_positions() {
        let key = |line: &str| {
            let request = resp::Request::from_args(line.split(' ').map(str::as_bytes));
            lookup(request.name()).key.key(&request).map(|key| String::from_utf8_lossy(key).into_owned())
        };
        assert_eq!(lookup(b"get").kind, Kind::Read);
        assert_eq!(lookup(b"SET").kind, Kind::Write);
        assert_eq!(lookup(b"hscan").kind, Kind::MasterOnly);
        assert_eq!(lookup(b"ping").key, KeyAt::None);
        assert_eq!(lookup(b"publish").key, KeyAt::Channel(1));
        assert_eq!(lookup(b"nosuch").kind, Kind::MayWrite);
        assert_eq!(lookup(b"nosuch").key, KeyAt::Arg(1));
        assert_eq!(lookup(&[b'A'; 40]).kind, Kind::MayWrite);
        assert_eq!(key("GET k").as_deref(), Some("k"));
        // Codis routes it by its first source; the table keeps that.
        assert_eq!(key("ZUNIONSTORE d 2 a b").as_deref(), Some("a"));
        assert_eq!(key("SDIFFSTORE d a b").as_deref(), Some("d"));
        assert_eq!(key("EVAL s 1 k").as_deref(), Some("k"));
        assert_eq!(key("EVAL s 0").as_deref(), None);
        assert_eq!(key("LMPOP 2 a b LEFT").as_deref(), Some("a"));
        assert_eq!(key("XREAD COUNT 1 STREAMS s 0").as_deref(), Some("s"));
        assert_eq!(key("XINFO STREAM s").as_deref(), Some("s"));
        assert_eq!(key("MEMORY USAGE k").as_deref(), Some("k"));
    }
}
