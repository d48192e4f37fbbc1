//! Set commands.

use resp::Request;

use super::keys::parse_scan_options;
use super::{Ctx, Handler, random};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Bulk, Db, Set, Value};
use crate::reply::Reply;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("smembers", smembers),
    ("sismember", sismember),
    ("smismember", smismember),
    ("scard", scard),
    ("spop", spop),
    ("srandmember", srandmember),
    ("smove", smove),
    ("sinter", sinter),
    ("sinterstore", sinterstore),
    ("sintercard", sintercard),
    ("sunion", sunion),
    ("sunionstore", sunionstore),
    ("sdiff", sdiff),
    ("sdiffstore", sdiffstore),
    ("sscan", sscan),
];

/// The set at `key`: `None` if missing, `WRONGTYPE` for other types.
fn set<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<Option<&'d mut Set>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => entry.value.as_set_mut().map(Some).ok_or(CmdError::WrongType),
    }
}

fn write_members(reply: &mut Reply<'_>, members: &[Bulk]) {
    reply.set(members.len());
    for member in members {
        reply.bulk(member);
    }
}

fn sadd(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let seed = db.collection_seed();
    let first = arg(request, 2);
    let entry = db.entry(key, now, || Value::Set(Box::new(Set::for_member(first, seed))));
    let set = entry.value.as_set_mut().ok_or(CmdError::WrongType)?;
    let added = request.args().skip(2).filter(|member| set.insert(member, &limits)).count();
    if added > 0 {
        db.touch(key);
    }
    reply.count(added);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(set) = set(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let removed = request.args().skip(2).filter(|member| set.remove(member)).count();
    if removed > 0 {
        db.modified(key);
    }
    reply.count(removed);
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let members = set(db, arg(request, 1), now)?.map(|set| set.members()).unwrap_or_default();
    write_members(reply, &members);
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let found = set(db, arg(request, 1), now)?.is_some_and(|set| set.contains(arg(request, 2)));
    reply.int(i64::from(found));
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let set = set(db, arg(request, 1), now)?;
    reply.array(request.len() - 2);
    for member in request.args().skip(2) {
        reply.int(i64::from(set.as_ref().is_some_and(|set| set.contains(member))));
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.count(set(db, arg(request, 1), now)?.map_or(0, |set| set.len()));
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    // Too many arguments first, as Redis: `… k -1 x` is a syntax error.
    if request.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = args::optional_count(request.arg(2))?;
    let now = ctx.now_ms;
    let state = &mut *ctx.state;
    let db = state.keyspace.db(ctx.client.db);
    let Some(set) = set(db, key, now)? else {
        if count.is_some() {
            ctx.reply.set(0)
        } else {
            ctx.reply.null()
        }
        return Ok(());
    };
    let Some(count) = count else {
        let member = set.get_index(random::one(set.len(), &mut state.rng));
        if let Some(member) = &member {
            set.remove(member);
            // Which member was popped was chance: replay its removal.
            state.propagation.replace_with([&b"SREM"[..], key, member]);
        }
        db.modified(key);
        match member {
            Some(member) => ctx.reply.bulk(&member),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let wanted = count;
    let everything = wanted >= set.len();
    let picks =
        random::picks(set.len(), Some(i64::try_from(wanted.min(set.len())).unwrap_or(i64::MAX)), &mut state.rng)
            .unwrap_or_default();
    let popped: Vec<Bulk> = picks.into_iter().filter_map(|index| set.get_index(index)).collect();
    for member in &popped {
        set.remove(member);
    }
    if !popped.is_empty() {
        db.modified(key);
        // Replayed as Redis 7.0 writes it: the deletion of the set when it took everything,
        // otherwise one `SREM` per member (together one transaction).
        if everything {
            state.propagation.replace_with([&b"DEL"[..], key]);
        } else {
            for member in &popped {
                state.propagation.replace_with([&b"SREM"[..], key, member]);
            }
        }
    }
    write_members(&mut ctx.reply, &popped);
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    if request.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match request.arg(2) {
        Some(count) => Some(random::count(count)?),
        None => None,
    };
    let now = ctx.now_ms;
    let state = &mut *ctx.state;
    let db = state.keyspace.db(ctx.client.db);
    let Some(set) = set(db, arg(request, 1), now)? else {
        if count.is_some() {
            ctx.reply.array(0)
        } else {
            ctx.reply.null()
        }
        return Ok(());
    };
    match random::picks(set.len(), count, &mut state.rng) {
        None => match set.get_index(random::one(set.len(), &mut state.rng)) {
            Some(member) => ctx.reply.bulk(&member),
            None => ctx.reply.null(),
        },
        Some(picks) => {
            ctx.reply.array(picks.len());
            for index in picks {
                if let Some(member) = set.get_index(index) {
                    ctx.reply.bulk(&member);
                }
            }
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (source, destination, member) = (arg(request, 1), arg(request, 2), arg(request, 3));
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    // Both keys are looked up first (so either is deleted here if it has expired, as in
    // Redis); a missing source answers 0 before the destination's type is looked at.
    db.get(destination, now);
    let Some(from) = set(db, source, now)? else {
        reply.int(0);
        return Ok(());
    };
    let present = from.contains(member);
    set(db, destination, now)?;
    if source == destination {
        reply.int(i64::from(present));
        return Ok(());
    }
    if !present {
        reply.int(0);
        return Ok(());
    }
    if let Some(from) = set(db, source, now)? {
        from.remove(member);
    }
    db.modified(source);
    let seed = db.collection_seed();
    let entry = db.entry(destination, now, || Value::Set(Box::new(Set::for_member(member, seed))));
    if let Some(to) = entry.value.as_set_mut() {
        to.insert(member, &limits);
    }
    db.touch(destination);
    reply.int(1);
    Ok(())
}

/// The sets named by `keys`, type-checked all first, as Redis does; missing keys are `None`.
fn load_sets(db: &mut Db, keys: &[&[u8]], now_ms: u64) -> Result<Vec<Option<Vec<Bulk>>>, CmdError> {
    keys.iter().map(|key| Ok(set(db, key, now_ms)?.map(|set| set.members()))).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Operation {
    Inter,
    Union,
    Diff,
}

/// The result of an operation over `keys`, built as Redis builds it: an intersection walks the
/// smallest set in its own order; a union or difference fills a new set (intset while it can).
fn combine(
    db: &mut Db,
    keys: &[&[u8]],
    now_ms: u64,
    operation: Operation,
    limits: &crate::keyspace::EncodingLimits,
) -> Result<Vec<Bulk>, CmdError> {
    let sets = load_sets(db, keys, now_ms)?;
    match operation {
        Operation::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            let mut sets: Vec<Vec<Bulk>> = sets.into_iter().flatten().collect();
            // Smallest first; a stable sort keeps key order among equal sizes.
            sets.sort_by_key(Vec::len);
            let Some((smallest, others)) = sets.split_first() else {
                return Ok(Vec::new());
            };
            let others: Vec<std::collections::BTreeSet<&Bulk>> =
                others.iter().map(|set| set.iter().collect()).collect();
            Ok(smallest.iter().filter(|member| others.iter().all(|set| set.contains(member))).cloned().collect())
        }
        Operation::Union | Operation::Diff => {
            let mut result = Set::new_result(db.collection_seed());
            let mut sets = sets.into_iter();
            let first = sets.next().flatten().unwrap_or_default();
            if operation == Operation::Union {
                for member in first.iter().chain(sets.flatten().flatten().collect::<Vec<_>>().iter()) {
                    result.insert(member, limits);
                }
            } else {
                let others: std::collections::BTreeSet<Bulk> = sets.flatten().flatten().collect();
                for member in first.iter().filter(|member| !others.contains(*member)) {
                    result.insert(member, limits);
                }
            }
            Ok(result.members())
        }
    }
}

fn set_operation(ctx: &mut Ctx<'_>, request: &Request, operation: Operation) -> CmdResult {
    let keys: Vec<&[u8]> = request.args().skip(1).collect();
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let members = combine(db, &keys, now, operation, &limits)?;
    write_members(reply, &members);
    Ok(())
}

fn set_operation_store(ctx: &mut Ctx<'_>, request: &Request, operation: Operation) -> CmdResult {
    let destination = arg(request, 1);
    let keys: Vec<&[u8]> = request.args().skip(2).collect();
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let members = combine(db, &keys, now, operation, &limits)?;
    db.remove(destination);
    if let Some(first) = members.first() {
        let mut stored = match operation {
            Operation::Inter => Set::for_member(first, db.collection_seed()),
            Operation::Union | Operation::Diff => Set::new_result(db.collection_seed()),
        };
        for member in &members {
            stored.insert(member, &limits);
        }
        db.set(destination, Value::Set(Box::new(stored)), 0, now);
    }
    reply.count(members.len());
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation(ctx, request, Operation::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation(ctx, request, Operation::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation(ctx, request, Operation::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation_store(ctx, request, Operation::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation_store(ctx, request, Operation::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    set_operation_store(ctx, request, Operation::Diff)
}

fn sintercard(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let numkeys = args::int(arg(request, 1))
        .ok()
        .filter(|numkeys| *numkeys > 0)
        .ok_or(CmdError::other("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > request.len() - 2 {
        return Err(CmdError::other("ERR Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    let mut index = 2 + numkeys;
    while let Some(option) = request.arg(index) {
        match (is(option, "LIMIT"), request.arg(index + 1)) {
            (true, Some(value)) => {
                limit = args::count_or(value, "ERR LIMIT can't be negative")?;
                index += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let keys: Vec<&[u8]> = request.args().skip(2).take(numkeys).collect();
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let members = combine(db, &keys, now, Operation::Inter, &limits)?;
    let count = if limit == 0 { members.len() } else { members.len().min(limit) };
    reply.count(count);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let cursor = super::keys::parse_cursor(arg(request, 2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(set) = set(db, arg(request, 1), now)? else {
        super::keys::reply_empty_scan(reply);
        return Ok(());
    };
    let options = parse_scan_options(request, 3)?;
    let mut found: Vec<Bulk> = Vec::new();
    let next = set.scan(cursor, options.count, |member| {
        if options.matches(&member) {
            found.push(member);
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(found.len());
    for member in &found {
        reply.bulk(member);
    }
    Ok(())
}
