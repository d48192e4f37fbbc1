//! List commands (the blocking variants live with the blocking machinery).

use resp::Request;

use super::{Ctx, Handler};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Bulk, Db, List, Value};

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("lpop", lpop),
    ("rpop", rpop),
    ("llen", llen),
    ("lindex", lindex),
    ("lset", lset),
    ("lrange", lrange),
    ("ltrim", ltrim),
    ("lrem", lrem),
    ("linsert", linsert),
    ("lpos", lpos),
    ("rpoplpush", rpoplpush),
    ("lmove", lmove),
    ("lmpop", lmpop),
];

/// The list at `key`: `None` if missing, `WRONGTYPE` for other types.
pub(crate) fn list<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<Option<&'d mut List>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => entry.value.as_list_mut().map(Some).ok_or(CmdError::WrongType),
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (`LEFT`).
    Left,
    /// The tail (`RIGHT`).
    Right,
}

impl End {
    /// Parses `LEFT`/`RIGHT`.
    pub fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if is(arg, "LEFT") {
            Ok(End::Left)
        } else if is(arg, "RIGHT") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    /// Its name as a word of `LMOVE`, as Redis writes it (lower case).
    pub fn word(self) -> &'static [u8] {
        match self {
            End::Left => b"left",
            End::Right => b"right",
        }
    }

    /// The command that pops from this end.
    pub fn pop_command(self) -> &'static [u8] {
        match self {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        }
    }
}

/// Pushes `elements` onto `key` (creating the list unless `only_existing`); returns the new
/// length, or `None` when the key did not exist and `only_existing` is set.
pub(crate) fn push(
    db: &mut Db,
    key: &[u8],
    elements: &[&[u8]],
    end: End,
    only_existing: bool,
    now_ms: u64,
) -> Result<Option<usize>, CmdError> {
    let list = if only_existing {
        match list(db, key, now_ms)? {
            Some(list) => list,
            None => return Ok(None),
        }
    } else {
        let entry = db.entry(key, now_ms, || Value::List(Box::default()));
        entry.value.as_list_mut().ok_or(CmdError::WrongType)?
    };
    for element in elements {
        match end {
            End::Left => list.push_front(element),
            End::Right => list.push_back(element),
        }
    }
    let length = list.len();
    db.touch(key);
    Ok(Some(length))
}

fn push_command(ctx: &mut Ctx<'_>, request: &Request, end: End, only_existing: bool) -> CmdResult {
    let elements: Vec<&[u8]> = request.args().skip(2).collect();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let length = push(db, arg(request, 1), &elements, end, only_existing, now)?;
    reply.count(length.unwrap_or(0));
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    push_command(ctx, request, End::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    push_command(ctx, request, End::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    push_command(ctx, request, End::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    push_command(ctx, request, End::Right, true)
}

/// Pops up to `count` elements from `end` of the list at `key`, deleting it when emptied.
pub(crate) fn pop(db: &mut Db, key: &[u8], end: End, count: usize, now_ms: u64) -> Result<Option<Vec<Bulk>>, CmdError> {
    let Some(list) = list(db, key, now_ms)? else {
        return Ok(None);
    };
    let take = count.min(list.len());
    let popped: Vec<Bulk> = (0..take)
        .filter_map(|_| match end {
            End::Left => list.pop_front(),
            End::Right => list.pop_back(),
        })
        .collect();
    if !popped.is_empty() {
        db.modified(key);
    }
    Ok(Some(popped))
}

fn pop_command(ctx: &mut Ctx<'_>, request: &Request, end: End) -> CmdResult {
    // The argument count first, as Redis' `popGenericCommand`: `LPOP k -1 x` is an arity error.
    if request.len() > 3 {
        return Err(CmdError::arity(request.name()));
    }
    let count = args::optional_count(request.arg(2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let popped = pop(db, arg(request, 1), end, count.unwrap_or(1), now)?;
    match (popped, count) {
        (None, None) => reply.null(),
        (None, Some(_)) => reply.null_array(),
        (Some(popped), None) => match popped.first() {
            Some(element) => reply.bulk(element),
            None => reply.null(),
        },
        (Some(popped), Some(_)) => {
            reply.array(popped.len());
            for element in &popped {
                reply.bulk(element);
            }
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    pop_command(ctx, request, End::Left)
}

fn rpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    pop_command(ctx, request, End::Right)
}

fn llen(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.count(list(db, arg(request, 1), now)?.map_or(0, |list| list.len()));
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    // The key first, as Redis: a missing key is nil and a wrong type WRONGTYPE, whatever the index.
    let Some(list) = list(db, arg(request, 1), now)? else {
        reply.null();
        return Ok(());
    };
    let index = args::int(arg(request, 2))?;
    match list.position(index).and_then(|position| list.get(position).cloned()) {
        Some(element) => reply.bulk(&element),
        None => reply.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    // The key first, as Redis: no such key or WRONGTYPE before a bad index.
    let list = list(db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    let index = args::int(arg(request, 2))?;
    let position = list.position(index).ok_or(CmdError::other("ERR index out of range"))?;
    list.set(position, arg(request, 3));
    db.touch(key);
    reply.ok();
    Ok(())
}

fn lrange(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let start = args::int(arg(request, 2))?;
    let end = args::int(arg(request, 3))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list(db, arg(request, 1), now)? else {
        reply.array(0);
        return Ok(());
    };
    let len = list.len() as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        reply.array(0);
        return Ok(());
    }
    let end = end.min(len - 1);
    reply.array((end - start + 1) as usize);
    for element in list.range(start as usize, end as usize) {
        reply.bulk(element);
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let start = args::int(arg(request, 2))?;
    let end = args::int(arg(request, 3))?;
    let now = ctx.now_ms;
    let db = ctx.state.keyspace.db(ctx.client.db);
    if let Some(list) = list(db, key, now)? {
        let len = list.len();
        let start = if start < 0 { (len as i64 + start).max(0) } else { start };
        let end = if end < 0 { len as i64 + end } else { end };
        if start > end || start >= len as i64 {
            list.retain_range(None);
        } else {
            list.retain_range(Some((start as usize, end.min(len as i64 - 1) as usize)));
        }
        let trimmed = len != list.len();
        // A watcher sees the key touched even when nothing was trimmed, as in Redis; the
        // stream gets the command only when it removed something.
        db.modified(key);
        if !trimmed {
            ctx.state.propagation.replace_with_nothing();
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let count = args::int(arg(request, 2))?;
    let element = arg(request, 3);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
    let mut removed = 0;
    if count >= 0 {
        let mut index = 0;
        while index < list.len() && removed < limit {
            if list.get(index).is_some_and(|item| item.as_slice() == element) {
                list.remove(index);
                removed += 1;
            } else {
                index += 1;
            }
        }
    } else {
        let mut index = list.len();
        while index > 0 && removed < limit {
            index -= 1;
            if list.get(index).is_some_and(|item| item.as_slice() == element) {
                list.remove(index);
                removed += 1;
            }
        }
    }
    if removed > 0 {
        db.modified(key);
    }
    reply.count(removed);
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let after = if is(arg(request, 2), "AFTER") {
        true
    } else if is(arg(request, 2), "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (pivot, element) = (arg(request, 3), arg(request, 4));
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let Some(position) = list.iter().position(|item| item.as_slice() == pivot) else {
        reply.int(-1);
        return Ok(());
    };
    list.insert(if after { position + 1 } else { position }, element);
    let length = list.len();
    db.touch(key);
    reply.count(length);
    Ok(())
}

fn lpos(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let element = arg(request, 2);
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut max_len: usize = 0;
    let mut index = 3;
    while let Some(option) = request.arg(index) {
        let value = request.arg(index + 1).ok_or(CmdError::Syntax)?;
        if is(option, "RANK") {
            rank = args::int(value)?;
            if rank == 0 {
                return Err(CmdError::other(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            if rank == i64::MIN {
                // Redis 7.0 overflows negating this rank; 7.2 refuses it, as we do.
                return Err(CmdError::other(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
        } else if is(option, "COUNT") {
            count = Some(args::count_or(value, "ERR COUNT can't be negative")?);
        } else if is(option, "MAXLEN") {
            max_len = args::count_or(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 2;
    }
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(list) = list(db, arg(request, 1), now)? else {
        if count.is_some() {
            reply.array(0)
        } else {
            reply.null()
        }
        return Ok(());
    };
    let len = list.len();
    let scan = if max_len == 0 { len } else { max_len.min(len) };
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(count) => count,
        None => 1,
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    for step in 0..scan {
        let position = if rank > 0 { step } else { len - 1 - step };
        if list.get(position).is_some_and(|item| item.as_slice() == element) {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(position);
            if found.len() >= wanted {
                break;
            }
        }
    }
    match count {
        None => match found.first() {
            Some(position) => reply.count(*position),
            None => reply.null(),
        },
        Some(_) => {
            reply.array(found.len());
            for position in found {
                reply.count(position);
            }
        }
    }
    Ok(())
}

/// Moves one element from `from`'s `source_end` to `to`'s `destination_end`; `None` if the source
/// is missing. Both keys' types are checked first.
pub(crate) fn move_element(
    db: &mut Db,
    from: &[u8],
    to: &[u8],
    source_end: End,
    destination_end: End,
    now_ms: u64,
) -> Result<Option<Bulk>, CmdError> {
    if list(db, from, now_ms)?.is_none() {
        return Ok(None);
    }
    list(db, to, now_ms)?;
    let Some(element) = pop(db, from, source_end, 1, now_ms)?.and_then(|mut popped| popped.pop()) else {
        return Ok(None);
    };
    push(db, to, &[&element], destination_end, false, now_ms)?;
    Ok(Some(element))
}

fn lmove_generic(ctx: &mut Ctx<'_>, request: &Request, source_end: End, destination_end: End) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match move_element(db, arg(request, 1), arg(request, 2), source_end, destination_end, now)? {
        Some(element) => reply.bulk(&element),
        None => reply.null(),
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    lmove_generic(ctx, request, End::Right, End::Left)
}

fn lmove(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let source_end = End::parse(arg(request, 3))?;
    let destination_end = End::parse(arg(request, 4))?;
    lmove_generic(ctx, request, source_end, destination_end)
}

/// `numkeys key… WHICH [COUNT n]`, the arguments of `LMPOP`/`ZMPOP` (and their blocking forms,
/// from argument `first`): the keys, which end to pop (read by `which`, a syntax error when it
/// returns `None`), and how many.
pub(crate) fn parse_mpop<T>(
    request: &Request,
    first: usize,
    which: impl Fn(&[u8]) -> Option<T>,
) -> Result<(Vec<&[u8]>, T, usize), CmdError> {
    let numkeys = args::int(arg(request, first))
        .ok()
        .filter(|numkeys| *numkeys > 0)
        .ok_or(CmdError::other("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    let keys_start = first + 1;
    if numkeys >= request.len().saturating_sub(keys_start) {
        return Err(CmdError::Syntax);
    }
    let keys: Vec<&[u8]> = request.args().skip(keys_start).take(numkeys).collect();
    let end = which(arg(request, keys_start + numkeys)).ok_or(CmdError::Syntax)?;
    let mut count = 1usize;
    let mut index = keys_start + numkeys + 1;
    while let Some(option) = request.arg(index) {
        match (is(option, "COUNT"), request.arg(index + 1)) {
            (true, Some(value)) => {
                let value = args::int_at_least(value, 1, "ERR count should be greater than 0")?;
                count = usize::try_from(value).unwrap_or(usize::MAX);
                index += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok((keys, end, count))
}

fn lmpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (keys, end, count) = parse_mpop(request, 1, |word| End::parse(word).ok())?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    for key in keys {
        if let Some(popped) = pop(db, key, end, count, now)? {
            reply.array(2);
            reply.bulk(key);
            reply.array(popped.len());
            for element in &popped {
                reply.bulk(element);
            }
            // Replayed as the pop with a count it amounts to, as Redis 7.0 does.
            let mut count = itoa::Buffer::new();
            ctx.state.propagation.replace_with([end.pop_command(), key, count.format(popped.len()).as_bytes()]);
            return Ok(());
        }
    }
    reply.null_array();
    Ok(())
}
