//! `COMMAND` and its subcommands, answered from the shared command table (`nodes/commands`)
//! exactly as redis-server 7.0 answers them, for the commands this server serves: `redis-cli`'s
//! help and hints, and cluster-aware clients' key lookups, then come from here.

use commands::schema::{ArgFile, DocsFile};
use commands::{BeginSearch, FindKeys, KeyFlags, KeySpec};
use resp::Request;

use super::{Command, Ctx, Handler, table};
use crate::args::is;
use crate::error::{CmdError, CmdResult};
use crate::glob;
use crate::reply::Reply;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("command", all),
    ("command|count", count),
    ("command|list", list),
    ("command|info", info),
    ("command|docs", docs),
    ("command|getkeys", getkeys),
    ("command|getkeysandflags", getkeysandflags),
    ("command|help", help),
];

/// `COMMAND`: every command's `COMMAND INFO` entry.
fn all(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    let commands = table().all();
    ctx.reply.array(commands.len());
    for command in commands {
        write_info(&mut ctx.reply, command);
    }
    Ok(())
}

fn count(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    ctx.reply.count(table().all().len());
    Ok(())
}

/// `COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]`: full names, the
/// subcommands' included.
fn list(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        Category(Option<commands::AclCategories>),
        Pattern(&'a [u8]),
    }
    let mut filter = Filter::All;
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        let more = request.len() - 1 - index;
        let (Some(kind), Some(value), true) =
            (request.arg(index + 1), request.arg(index + 2), is(option, "FILTERBY") && more == 2)
        else {
            return Err(CmdError::Syntax);
        };
        filter = if is(kind, "MODULE") {
            // No modules: no command is a module's.
            Filter::Module
        } else if is(kind, "ACLCAT") {
            Filter::Category(std::str::from_utf8(value).ok().and_then(commands::AclCategories::parse))
        } else if is(kind, "PATTERN") {
            Filter::Pattern(value)
        } else {
            return Err(CmdError::Syntax);
        };
        index += 3;
    }
    let names: Vec<&str> = table()
        .all()
        .iter()
        .flat_map(|command| std::iter::once(command).chain(&command.subcommands))
        .filter(|command| match &filter {
            Filter::All => true,
            Filter::Module | Filter::Category(None) => false,
            Filter::Category(Some(category)) => command.spec.acl_categories.intersects(*category),
            Filter::Pattern(pattern) => glob::matches(pattern, command.name.as_bytes(), true),
        })
        .map(|command| command.name)
        .collect();
    ctx.reply.array(names.len());
    for name in names {
        ctx.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// `COMMAND INFO [name …]`: every command, or each named one (a null for one not served).
fn info(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if request.len() == 2 {
        return all(ctx, request);
    }
    ctx.reply.array(request.len() - 2);
    for name in request.args().skip(2) {
        match table().lookup_full(name) {
            Some(command) => write_info(&mut ctx.reply, command),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// `COMMAND DOCS [name …]`: a map from full name to documentation (names not served are left
/// out).
fn docs(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let commands: Vec<&Command> = if request.len() == 2 {
        table().all().iter().collect()
    } else {
        request.args().skip(2).filter_map(|name| table().lookup_full(name)).collect()
    };
    ctx.reply.map(commands.len());
    for command in commands {
        ctx.reply.bulk(command.name.as_bytes());
        write_docs(&mut ctx.reply, command);
    }
    Ok(())
}

fn getkeys(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    write_keys(ctx, request, false)
}

fn getkeysandflags(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    write_keys(ctx, request, true)
}

/// `COMMAND GETKEYS[ANDFLAGS] command arg …`: the keys the command would touch, found as
/// migration and the proxy find them.
fn write_keys(ctx: &mut Ctx<'_>, request: &Request, with_flags: bool) -> CmdResult {
    let inner = Request::from_args(request.args().skip(2));
    let Some(command) = table().resolve(&inner) else {
        return Err(CmdError::other("ERR Invalid command specified"));
    };
    if !command.spec.has_keys() {
        return Err(CmdError::other("ERR The command has no key arguments"));
    }
    if !command.arity_ok(inner.len()) {
        return Err(CmdError::other("ERR Invalid number of arguments specified for command"));
    }
    let keys = command.spec.keys(&inner);
    if keys.is_empty() && !command.flags.contains(commands::Flags::NO_MANDATORY_KEYS) {
        return Err(CmdError::other("ERR Invalid arguments specified for command"));
    }
    ctx.reply.array(keys.len());
    for key in keys {
        let name = inner.arg(key.position).unwrap_or_default();
        if with_flags {
            ctx.reply.array(2);
            ctx.reply.bulk(name);
            write_key_flags(&mut ctx.reply, key.flags);
        } else {
            ctx.reply.bulk(name);
        }
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _request: &Request) -> CmdResult {
    ctx.reply.help(&[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
    ]);
    Ok(())
}

/// One `COMMAND INFO` entry, with the subcommands served.
fn write_info(reply: &mut Reply<'_>, command: &Command) {
    let spec = command.spec;
    reply.array(10);
    reply.bulk(command.name.as_bytes());
    reply.int(i64::from(spec.arity));
    write_names(reply, spec.flags.names());
    let (first, last, step) = spec.legacy_range;
    reply.int(i64::from(first));
    reply.int(i64::from(last));
    reply.int(i64::from(step));
    let categories: Vec<String> = spec.acl_categories.names().map(|name| format!("@{name}")).collect();
    write_names(reply, categories.iter().map(String::as_str));
    reply.set(spec.tips.len());
    for tip in &spec.tips {
        reply.bulk(tip.as_bytes());
    }
    reply.set(spec.key_specs.len());
    for key_spec in &spec.key_specs {
        write_key_spec(reply, key_spec);
    }
    if spec.is_container() {
        reply.array(command.subcommands.len());
        for sub in &command.subcommands {
            write_info(reply, sub);
        }
    } else {
        reply.set(0);
    }
}

/// Status strings as a set (`COMMAND INFO`'s flags and categories).
fn write_names<'a>(reply: &mut Reply<'_>, names: impl Iterator<Item = &'a str>) {
    let names: Vec<&str> = names.collect();
    reply.set(names.len());
    for name in names {
        reply.simple(name);
    }
}

fn write_key_flags(reply: &mut Reply<'_>, flags: KeyFlags) {
    write_names(reply, flags.names());
}

fn write_key_spec(reply: &mut Reply<'_>, spec: &KeySpec) {
    reply.map(3 + usize::from(spec.notes.is_some()));
    if let Some(notes) = &spec.notes {
        reply.bulk(b"notes");
        reply.bulk(notes.as_bytes());
    }
    reply.bulk(b"flags");
    write_key_flags(reply, spec.flags);
    reply.bulk(b"begin_search");
    reply.map(2);
    reply.bulk(b"type");
    match &spec.begin_search {
        BeginSearch::Index { index } => {
            reply.bulk(b"index");
            reply.bulk(b"spec");
            reply.map(1);
            reply.bulk(b"index");
            reply.int(*index);
        }
        BeginSearch::Keyword { keyword, startfrom } => {
            reply.bulk(b"keyword");
            reply.bulk(b"spec");
            reply.map(2);
            reply.bulk(b"keyword");
            reply.bulk(keyword.as_bytes());
            reply.bulk(b"startfrom");
            reply.int(*startfrom);
        }
        BeginSearch::Unknown {} => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map(0);
        }
    }
    reply.bulk(b"find_keys");
    reply.map(2);
    reply.bulk(b"type");
    let fields: [(&[u8], i64); 3] = match spec.find_keys {
        FindKeys::Range { lastkey, keystep, limit } => {
            reply.bulk(b"range");
            [(b"lastkey", lastkey), (b"keystep", keystep), (b"limit", limit)]
        }
        FindKeys::Keynum { keynumidx, firstkey, keystep } => {
            reply.bulk(b"keynum");
            [(b"keynumidx", keynumidx), (b"firstkey", firstkey), (b"keystep", keystep)]
        }
        FindKeys::Unknown {} => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map(0);
            return;
        }
    };
    reply.bulk(b"spec");
    reply.map(3);
    for (name, value) in fields {
        reply.bulk(name);
        reply.int(value);
    }
}

/// One `COMMAND DOCS` entry, in Redis' field order, with the subcommands served.
fn write_docs(reply: &mut Reply<'_>, command: &Command) {
    let DocsFile { summary, since, group, complexity, doc_flags, deprecated_since, replaced_by, history, arguments } =
        &command.spec.docs;
    let texts = [("summary", summary), ("since", since)];
    let after_group = [("complexity", complexity)];
    let more_texts = [("deprecated_since", deprecated_since), ("replaced_by", replaced_by)];
    let present = texts.iter().chain(&after_group).chain(&more_texts).filter(|(_, value)| value.is_some()).count()
        + usize::from(doc_flags.is_some())
        + usize::from(history.is_some())
        + usize::from(arguments.is_some())
        + usize::from(command.is_container());
    reply.map(1 + present);
    write_texts(reply, &texts);
    reply.bulk(b"group");
    reply.bulk(group.as_bytes());
    write_texts(reply, &after_group);
    if let Some(flags) = doc_flags {
        reply.bulk(b"doc_flags");
        write_names(reply, flags.iter().map(String::as_str));
    }
    write_texts(reply, &more_texts);
    if let Some(history) = history {
        reply.bulk(b"history");
        reply.set(history.len());
        for (version, change) in history {
            reply.array(2);
            reply.bulk(version.as_bytes());
            reply.bulk(change.as_bytes());
        }
    }
    if let Some(arguments) = arguments {
        reply.bulk(b"arguments");
        write_arguments(reply, arguments);
    }
    if command.is_container() {
        reply.bulk(b"subcommands");
        reply.map(command.subcommands.len());
        for sub in &command.subcommands {
            reply.bulk(sub.name.as_bytes());
            write_docs(reply, sub);
        }
    }
}

fn write_texts(reply: &mut Reply<'_>, fields: &[(&str, &Option<String>)]) {
    for (name, value) in fields {
        if let Some(value) = value {
            reply.bulk(name.as_bytes());
            reply.bulk(value.as_bytes());
        }
    }
}

fn write_arguments(reply: &mut Reply<'_>, arguments: &[ArgFile]) {
    reply.array(arguments.len());
    for arg in arguments {
        let texts = [("token", &arg.token), ("summary", &arg.summary), ("since", &arg.since)];
        let deprecated = [("deprecated_since", &arg.deprecated_since)];
        let present = texts.iter().chain(&deprecated).filter(|(_, value)| value.is_some()).count()
            + usize::from(arg.key_spec_index.is_some())
            + usize::from(arg.flags.is_some())
            + usize::from(arg.arguments.is_some());
        reply.map(2 + present);
        reply.bulk(b"name");
        reply.bulk(arg.name.as_bytes());
        reply.bulk(b"type");
        reply.bulk(arg.kind.as_bytes());
        if let Some(index) = arg.key_spec_index {
            reply.bulk(b"key_spec_index");
            reply.int(index);
        }
        write_texts(reply, &texts);
        write_texts(reply, &deprecated);
        if let Some(flags) = &arg.flags {
            reply.bulk(b"flags");
            write_names(reply, flags.iter().map(String::as_str));
        }
        if let Some(arguments) = &arg.arguments {
            reply.bulk(b"arguments");
            write_arguments(reply, arguments);
        }
    }
}
