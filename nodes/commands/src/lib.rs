//! Redis 7.0's command table, as data.
//!
//! Every command and subcommand is one JSON file in `data/` (the form Valkey keeps in
//! `src/commands/*.json`, with the field names `COMMAND INFO` and `COMMAND DOCS` use), read
//! from a running redis-server 7.0 by `examples/regen.rs` and completed by hand with what Redis
//! does not show: hidden flags, key-finding functions, and how a Codis proxy routes a command.
//! The server's dispatch and `COMMAND` replies, migration's key extraction and the proxy's
//! routing all read this one table, so a command is known in one place: adding one is adding its
//! file (and its handler where it runs).
//!
//! The table holds every command Redis 7.0 has and Codis' own; a server serves those it has a
//! handler for, while a proxy routes all of them (a backend may be a redis-server or the
//! original `codis-server`).

mod flags;
mod keys;
mod route;
pub mod schema;

use std::collections::HashMap;
use std::sync::LazyLock;

pub use flags::acl::AclCategories;
pub use flags::command::Flags;
pub use flags::key::KeyFlags;
pub use keys::{Args, GetKeys, KeyRef, KeysError};
pub use route::Route;
pub use schema::{BeginSearch, FindKeys};
use schema::{CommandFile, DocsFile};

/// One command or subcommand.
#[derive(Debug)]
pub struct Command {
    /// Lower-case full name: `get`, `client|kill`.
    pub name: String,
    /// Argument count including the name (and subcommand): `n` exactly, `-n` at least `n`.
    pub arity: i32,
    /// Its flags, listed and hidden.
    pub flags: Flags,
    /// The legacy key range `COMMAND INFO` shows: first key, last key, step.
    pub legacy_range: (i32, i32, i32),
    /// ACL categories.
    pub acl_categories: AclCategories,
    /// Hints for clients.
    pub tips: Vec<String>,
    /// Where the keys are.
    pub key_specs: Vec<KeySpec>,
    /// How keys are found when the specifications cannot say.
    pub get_keys: Option<GetKeys>,
    /// What `COMMAND DOCS` says.
    pub docs: DocsFile,
    /// How a proxy routes it (a subcommand: its container's route).
    pub route: Route,
    /// The argument a proxy routes it by where Codis fixes one other than its first key.
    pub proxy_key: Option<usize>,
    /// Its subcommands, in file order (empty for a plain command).
    pub subcommands: Vec<Command>,
}

impl Command {
    /// Whether `args` arguments (the name included) satisfy the arity.
    pub fn arity_ok(&self, args: usize) -> bool {
        let args = i64::try_from(args).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 { args == arity } else { args >= -arity }
    }

    /// The subcommand named `name` (any case).
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        self.subcommands.iter().find(|sub| sub.sub_name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether it is a container of subcommands (`CLIENT`, `CONFIG`).
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// The last part of the name: `kill` for `client|kill`.
    pub fn sub_name(&self) -> &str {
        self.name.rsplit('|').next().unwrap_or(&self.name)
    }

    /// Whether every flag of `flags` is set.
    pub fn has(&self, flags: Flags) -> bool {
        self.flags.contains(flags)
    }
}

/// Commands are one per name.
impl PartialEq for Command {
    fn eq(&self, other: &Command) -> bool {
        self.name == other.name
    }
}

impl Eq for Command {}

/// One key specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Free text.
    pub notes: Option<String>,
    /// How the keys are accessed.
    pub flags: KeyFlags,
    /// Where the search begins.
    pub begin_search: BeginSearch,
    /// How keys are found from there.
    pub find_keys: FindKeys,
}

/// Every command, and lookup by name.
#[derive(Debug)]
pub struct Table {
    commands: Vec<Command>,
    by_name: HashMap<String, usize>,
}

/// Why the data does not make a table (a test reads every file, so this never reaches a user).
#[derive(Debug)]
pub struct DataError(String);

impl std::fmt::Display for DataError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// The longest command name (`slotsmgrttagone-async-dump` is 26): longer names cannot exist.
pub const MAX_NAME: usize = 32;

impl Table {
    /// Builds the table from the joined data files (`[[file name, contents], …]`).
    pub fn from_json(json: &str) -> Result<Table, DataError> {
        let files: Vec<(String, CommandFile)> =
            serde_json::from_str(json).map_err(|error| DataError(format!("command data: {error}")))?;
        let mut commands: Vec<Command> = Vec::new();
        let mut subcommands: Vec<(String, Command)> = Vec::new();
        for (file_name, file) in files {
            let failed = |problem: String| DataError(format!("{file_name}: {problem}"));
            let expected = format!("{}.json", file.name.replace('|', "-"));
            if file_name != expected {
                return Err(failed(format!("a file for {} must be named {expected}", file.name)));
            }
            match file.container.clone() {
                Some(container) => {
                    if file.proxy.is_some() {
                        return Err(failed("a subcommand goes where its container goes: no proxy route".into()));
                    }
                    let command = command(file, Route::NotAllowed).map_err(failed)?;
                    subcommands.push((container, command));
                }
                None => {
                    let route = file.proxy.as_deref().ok_or_else(|| failed("no proxy route".into()))?;
                    let route = Route::parse(route).ok_or_else(|| failed(format!("unknown proxy route {route}")))?;
                    commands.push(command(file, route).map_err(failed)?);
                }
            }
        }
        for (container, mut sub) in subcommands {
            let Some(parent) = commands.iter_mut().find(|command| command.name == container) else {
                return Err(DataError(format!("{}: no container {container}", sub.name)));
            };
            if !sub.name.starts_with(&format!("{container}|")) {
                return Err(DataError(format!("{}: not named {container}|…", sub.name)));
            }
            sub.route = parent.route;
            parent.subcommands.push(sub);
        }
        let mut by_name = HashMap::new();
        for (index, command) in commands.iter().enumerate() {
            if command.name.len() > MAX_NAME || command.name != command.name.to_ascii_lowercase() {
                return Err(DataError(format!("{}: names are lower-case and at most {MAX_NAME} bytes", command.name)));
            }
            if by_name.insert(command.name.clone(), index).is_some() {
                return Err(DataError(format!("{} defined twice", command.name)));
            }
        }
        Ok(Table { commands, by_name })
    }

    /// The command named `name` (any case); a full name (`client|kill`) finds a subcommand.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        if let Some(bar) = name.iter().position(|byte| *byte == b'|') {
            return self.lookup(&name[..bar])?.subcommand(&name[bar + 1..]);
        }
        if name.len() > MAX_NAME {
            return None;
        }
        let mut lower = [0u8; MAX_NAME];
        for (slot, byte) in lower.iter_mut().zip(name) {
            *slot = byte.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&lower[..name.len()]).ok()?;
        self.by_name.get(lower).map(|index| &self.commands[*index])
    }

    /// Every top-level command, in file order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }
}

/// The table built from `data/`.
pub fn table() -> &'static Table {
    static TABLE: LazyLock<Table> = LazyLock::new(|| {
        Table::from_json(include_str!(concat!(env!("OUT_DIR"), "/commands.json")))
            .unwrap_or_else(|error| panic!("the command table in nodes/commands/data is broken: {error}"))
    });
    &TABLE
}

/// Converts one file.
fn command(file: CommandFile, route: Route) -> Result<Command, String> {
    let mut flags = Flags::NONE;
    for name in file.flags.iter().chain(&file.hidden_flags) {
        flags = flags.with(Flags::parse(name).ok_or_else(|| format!("unknown flag {name}"))?);
    }
    let mut acl_categories = AclCategories::NONE;
    for name in &file.acl_categories {
        let category = name.strip_prefix('@').and_then(AclCategories::parse);
        acl_categories = acl_categories.with(category.ok_or_else(|| format!("unknown ACL category {name}"))?);
    }
    let key_specs = file
        .key_specs
        .into_iter()
        .map(|spec| {
            let mut flags = KeyFlags::NONE;
            for name in &spec.flags {
                flags = flags.with(KeyFlags::parse(name).ok_or_else(|| format!("unknown key flag {name}"))?);
            }
            if let BeginSearch::Index { index } = spec.begin_search
                && index < 0
            {
                return Err(format!("index {index}"));
            }
            Ok::<_, String>(KeySpec {
                notes: spec.notes,
                flags,
                begin_search: spec.begin_search,
                find_keys: spec.find_keys,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let get_keys = file
        .get_keys
        .as_deref()
        .map(|name| GetKeys::parse(name).ok_or_else(|| format!("unknown key function {name}")))
        .transpose()?;
    Ok(Command {
        name: file.name,
        arity: file.arity,
        flags,
        legacy_range: (file.first_key, file.last_key, file.step),
        acl_categories,
        tips: file.tips,
        key_specs,
        get_keys,
        docs: file.docs,
        route,
        proxy_key: file.proxy_key,
        subcommands: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_file_makes_the_table() {
        let table = table();
        assert!(table.lookup(b"GET").is_some());
        assert!(table.lookup(b"client|KILL").is_some_and(|kill| kill.name == "client|kill"));
        assert!(table.lookup(b"nosuch").is_none());
        assert!(table.lookup(&[b'a'; 40]).is_none());
    }
}
