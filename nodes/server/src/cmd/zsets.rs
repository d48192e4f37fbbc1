//! Sorted set commands (the blocking variants live with the blocking machinery).

use resp::Request;

use super::keys::parse_scan_options;
use super::{Ctx, Handler, random};
use crate::args::{self, arg, is};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Bulk, Db, Value, ZSet};
use crate::reply::Reply;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zcard", zcard),
    ("zscore", zscore),
    ("zmscore", zmscore),
    ("zrank", zrank),
    ("zrevrank", zrevrank),
    ("zcount", zcount),
    ("zlexcount", zlexcount),
    ("zrange", zrange),
    ("zrangestore", zrangestore),
    ("zrevrange", zrevrange),
    ("zrangebyscore", zrangebyscore),
    ("zrevrangebyscore", zrevrangebyscore),
    ("zrangebylex", zrangebylex),
    ("zrevrangebylex", zrevrangebylex),
    ("zremrangebyrank", zremrangebyrank),
    ("zremrangebyscore", zremrangebyscore),
    ("zremrangebylex", zremrangebylex),
    ("zpopmin", zpopmin),
    ("zpopmax", zpopmax),
    ("zmpop", zmpop),
    ("zrandmember", zrandmember),
    ("zunion", zunion),
    ("zinter", zinter),
    ("zdiff", zdiff),
    ("zunionstore", zunionstore),
    ("zinterstore", zinterstore),
    ("zdiffstore", zdiffstore),
    ("zintercard", zintercard),
    ("zscan", zscan),
];

/// The sorted set at `key`: `None` if missing, `WRONGTYPE` for other types.
pub(crate) fn zset<'d>(db: &'d mut Db, key: &[u8], now_ms: u64) -> Result<Option<&'d mut ZSet>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => entry.value.as_zset_mut().map(Some).ok_or(CmdError::WrongType),
    }
}

/// A score argument, as Redis' `getDoubleFromObject` reads it.
fn score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    args::float(arg)
}

/// Writes members with their scores the way each protocol expects: a flat list for RESP2, pairs
/// for RESP3.
fn write_with_scores(reply: &mut Reply<'_>, elements: &[(Bulk, f64)], with_scores: bool) {
    let pairs = with_scores && reply.resp3();
    reply.array(if with_scores && !pairs { elements.len() * 2 } else { elements.len() });
    for (member, score) in elements {
        if pairs {
            reply.array(2);
        }
        reply.bulk(member);
        if with_scores {
            reply.double(*score);
        }
    }
}

/// `ZADD`'s flags.
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// How one `ZADD` element went.
enum Added {
    New(f64),
    Updated(f64),
    Unchanged(f64),
    Skipped,
}

/// Applies one `ZADD` element with Redis' `zsetAdd` rules; a NaN result is an error.
fn add_one(
    zset: &mut ZSet,
    member: &[u8],
    score: f64,
    flags: &AddFlags,
    limits: &crate::keyspace::EncodingLimits,
) -> Result<Added, CmdError> {
    match zset.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok(Added::Skipped);
            }
            let score = if flags.incr { current + score } else { score };
            if score.is_nan() {
                return Err(CmdError::other("ERR resulting score is not a number (NaN)"));
            }
            if (flags.gt && score <= current) || (flags.lt && score >= current) {
                return Ok(Added::Skipped);
            }
            if score == current {
                return Ok(Added::Unchanged(score));
            }
            zset.insert(member, score, limits);
            Ok(Added::Updated(score))
        }
        None => {
            if flags.xx {
                return Ok(Added::Skipped);
            }
            zset.insert(member, score, limits);
            Ok(Added::New(score))
        }
    }
}

fn zadd_generic(ctx: &mut Ctx<'_>, request: &Request, mut flags: AddFlags) -> CmdResult {
    let mut index = 2;
    while let Some(option) = request.arg(index) {
        match () {
            () if is(option, "NX") => flags.nx = true,
            () if is(option, "XX") => flags.xx = true,
            () if is(option, "GT") => flags.gt = true,
            () if is(option, "LT") => flags.lt = true,
            () if is(option, "CH") => flags.ch = true,
            () if is(option, "INCR") => flags.incr = true,
            () => break,
        }
        index += 1;
    }
    let elements = request.len() - index;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::other("ERR XX and NX options at the same time are not compatible"));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(CmdError::other("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && elements > 2 {
        return Err(CmdError::other("ERR INCR option supports a single increment-element pair"));
    }
    let pairs: Vec<(f64, &[u8])> = (index..request.len())
        .step_by(2)
        .map(|at| Ok((score_arg(arg(request, at))?, arg(request, at + 1))))
        .collect::<Result<_, CmdError>>()?;
    let key = arg(request, 1);
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    if zset(db, key, now)?.is_none() && flags.xx {
        if flags.incr {
            reply.null()
        } else {
            reply.int(0)
        }
        return Ok(());
    }
    let seed = db.collection_seed();
    // Redis 7.0 creates the set compact if its first member fits, whatever the others are (they
    // convert it as they go in); observable through -0, which a compact set stores as 0.
    let compact =
        limits.zset_entries != 0 && pairs.first().is_some_and(|(_, member)| member.len() <= limits.zset_value);
    let entry = db.entry(key, now, || Value::ZSet(Box::new(ZSet::new(seed, compact))));
    let zset = entry.value.as_zset_mut().ok_or(CmdError::WrongType)?;
    let (mut added, mut updated) = (0usize, 0usize);
    let mut last = None;
    for (score, member) in &pairs {
        match add_one(zset, member, *score, &flags, &limits) {
            Ok(Added::New(score)) => {
                added += 1;
                last = Some(score);
            }
            Ok(Added::Updated(score)) => {
                updated += 1;
                last = Some(score);
            }
            Ok(Added::Unchanged(score)) => last = Some(score),
            Ok(Added::Skipped) => last = None,
            Err(error) => {
                // Only `INCR`, with its one pair, fails here: nothing changed.
                db.modified(key);
                ctx.state.propagation.replace_with_nothing();
                return Err(error);
            }
        }
    }
    if added + updated > 0 {
        db.touch(key);
    }
    // An empty set created by this call (every element skipped) must not stay.
    db.modified(key);
    if flags.incr {
        match last {
            Some(score) => reply.double(score),
            None => reply.null(),
        }
    } else {
        reply.count(if flags.ch { added + updated } else { added });
    }
    if added + updated == 0 {
        // Nothing changed (a score set to what it was: `-0` for `0` too): nothing to replay,
        // as in Redis.
        ctx.state.propagation.replace_with_nothing();
    }
    Ok(())
}

fn zadd(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    zadd_generic(ctx, request, AddFlags::default())
}

fn zincrby(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let increment = score_arg(arg(request, 2))?;
    let key = arg(request, 1);
    let member = arg(request, 3);
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let db = ctx.state.keyspace.db(ctx.client.db);
    zset(db, key, now)?;
    let seed = db.collection_seed();
    let compact = limits.zset_entries != 0 && member.len() <= limits.zset_value;
    let entry = db.entry(key, now, || Value::ZSet(Box::new(ZSet::new(seed, compact))));
    let zset = entry.value.as_zset_mut().ok_or(CmdError::WrongType)?;
    let flags = AddFlags { incr: true, ..AddFlags::default() };
    let result = add_one(zset, member, increment, &flags, &limits);
    db.modified(key);
    // An increment that fails (to NaN) or adds 0 changes nothing: nothing to replay.
    let unchanged = !matches!(result, Ok(Added::New(_) | Added::Updated(_)));
    if unchanged {
        ctx.state.propagation.replace_with_nothing();
    }
    match result? {
        Added::New(score) | Added::Updated(score) | Added::Unchanged(score) => ctx.reply.double(score),
        Added::Skipped => ctx.reply.null(),
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let key = arg(request, 1);
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(zset) = zset(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let removed = request.args().skip(2).filter(|member| zset.remove(member)).count();
    if removed > 0 {
        db.modified(key);
    }
    reply.count(removed);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.count(zset(db, arg(request, 1), now)?.map_or(0, |zset| zset.len()));
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match zset(db, arg(request, 1), now)?.and_then(|zset| zset.score(arg(request, 2))) {
        Some(score) => reply.double(score),
        None => reply.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let zset = zset(db, arg(request, 1), now)?;
    reply.array(request.len() - 2);
    for member in request.args().skip(2) {
        match zset.as_ref().and_then(|zset| zset.score(member)) {
            Some(score) => reply.double(score),
            None => reply.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx<'_>, request: &Request, reverse: bool) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    match zset(db, arg(request, 1), now)?.and_then(|zset| zset.rank(arg(request, 2), reverse)) {
        Some(rank) => reply.count(rank),
        None => reply.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    rank_generic(ctx, request, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    rank_generic(ctx, request, true)
}

/// One end of a score range (`1`, `(1`, `-inf`, `+inf`).
#[derive(Clone, Copy, Debug)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

/// A score range, as Redis' `zslParseRange` reads it.
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: ScoreBound,
    max: ScoreBound,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let bound = |text: &[u8]| -> Option<ScoreBound> {
            let (exclusive, number) = match text {
                [b'(', rest @ ..] => (true, rest),
                _ => (false, text),
            };
            args::parse_score_bound(number).map(|value| ScoreBound { value, exclusive })
        };
        match (bound(min), bound(max)) {
            (Some(min), Some(max)) => Ok(ScoreRange { min, max }),
            _ => Err(CmdError::other("ERR min or max is not a float")),
        }
    }

    fn above_min(&self, score: f64) -> bool {
        if self.min.exclusive { score > self.min.value } else { score >= self.min.value }
    }

    fn below_max(&self, score: f64) -> bool {
        if self.max.exclusive { score < self.max.value } else { score <= self.max.value }
    }
}

/// One end of a lexicographic range (`[a`, `(a`, `-`, `+`).
#[derive(Clone, Debug)]
enum LexBound {
    Min,
    Max,
    Inclusive(Bulk),
    Exclusive(Bulk),
}

/// A member range, as Redis' `zslParseLexRange` reads it.
#[derive(Clone, Debug)]
struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
        let bound = |text: &[u8]| -> Option<LexBound> {
            match text {
                b"-" => Some(LexBound::Min),
                b"+" => Some(LexBound::Max),
                [b'[', rest @ ..] => Some(LexBound::Inclusive(Bulk::from_slice(rest))),
                [b'(', rest @ ..] => Some(LexBound::Exclusive(Bulk::from_slice(rest))),
                _ => None,
            }
        };
        match (bound(min), bound(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CmdError::other("ERR min or max not valid string range item")),
        }
    }

    fn above_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(bound) => member >= bound.as_slice(),
            LexBound::Exclusive(bound) => member > bound.as_slice(),
        }
    }

    fn below_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(bound) => member <= bound.as_slice(),
            LexBound::Exclusive(bound) => member < bound.as_slice(),
        }
    }

    /// Redis' early exit (`zzlIsInLexRange`, `zslIsInLexRange`): nothing is selected when the
    /// range is empty by its bounds, or the last member is below it, or the first above it. It
    /// matters when scores differ, and members are then not in lexicographic order.
    fn may_select(&self, zset: &ZSet) -> bool {
        fn bound(bound: &LexBound) -> (u8, &[u8]) {
            match bound {
                LexBound::Min => (0, b""),
                LexBound::Max => (2, b""),
                LexBound::Inclusive(text) | LexBound::Exclusive(text) => (1, text.as_slice()),
            }
        }
        let exclusive = |bound: &LexBound| matches!(bound, LexBound::Exclusive(_));
        let order = bound(&self.min).cmp(&bound(&self.max));
        if order.is_gt() || (order.is_eq() && (exclusive(&self.min) || exclusive(&self.max))) {
            return false;
        }
        let last = zset.iter_from_rank(0, true).next();
        let first = zset.iter_from_rank(0, false).next();
        last.is_some_and(|(_, member)| self.above_min(member))
            && first.is_some_and(|(_, member)| self.below_max(member))
    }
}

/// Which elements a range command selects.
#[derive(Clone, Debug)]
enum Selection {
    /// By rank, Redis' start/stop (negative from the end).
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A range request: what, in which direction, and which part of it (`LIMIT offset count`;
/// a negative count means all).
#[derive(Clone, Debug)]
struct RangeSpec {
    selection: Selection,
    reverse: bool,
    offset: i64,
    count: i64,
}

/// The elements a range selects, in reply order.
fn select(zset: &ZSet, spec: &RangeSpec) -> Vec<(Bulk, f64)> {
    let len = zset.len();
    match &spec.selection {
        Selection::Rank(start, stop) => {
            let len = len as i64;
            let start = if *start < 0 { (len + start).max(0) } else { *start };
            let stop = if *stop < 0 { len + stop } else { *stop };
            if start > stop || start >= len {
                return Vec::new();
            }
            let stop = stop.min(len - 1);
            zset.iter_from_rank(start as usize, spec.reverse)
                .take((stop - start + 1) as usize)
                .map(|(score, member)| (member.clone(), score))
                .collect()
        }
        Selection::Score(range) => {
            let iter: Box<dyn Iterator<Item = (f64, &Bulk)>> = if spec.reverse {
                let after_max = zset.first_rank_where(|score, _| !range.below_max(score));
                Box::new(zset.iter_from_rank(len - after_max, true).take_while(|(score, _)| range.above_min(*score)))
            } else {
                let first = zset.first_rank_where(|score, _| range.above_min(score));
                Box::new(zset.iter_from_rank(first, false).take_while(|(score, _)| range.below_max(*score)))
            };
            limit(iter, spec)
        }
        Selection::Lex(range) => {
            if !range.may_select(zset) {
                return Vec::new();
            }
            // Where the range starts. Members are in order only among equal scores (Redis leaves
            // lex ranges over mixed scores unspecified), so this follows Redis where it can: a
            // compact set is scanned from the end the range starts from, as Redis scans its
            // listpack; a large one is searched as an ordered one.
            let iter: Box<dyn Iterator<Item = (f64, &Bulk)>> = if spec.reverse {
                let start = if zset.is_compact() {
                    zset.iter_from_rank(0, true).position(|(_, member)| range.below_max(member)).unwrap_or(len)
                } else {
                    len - zset.first_rank_where(|_, member| !range.below_max(member))
                };
                Box::new(zset.iter_from_rank(start, true).take_while(|(_, member)| range.above_min(member)))
            } else {
                let first = if zset.is_compact() {
                    zset.iter_from_rank(0, false).position(|(_, member)| range.above_min(member)).unwrap_or(len)
                } else {
                    zset.first_rank_where(|_, member| range.above_min(member))
                };
                Box::new(zset.iter_from_rank(first, false).take_while(|(_, member)| range.below_max(member)))
            };
            limit(iter, spec)
        }
    }
}

fn limit<'a>(iter: impl Iterator<Item = (f64, &'a Bulk)>, spec: &RangeSpec) -> Vec<(Bulk, f64)> {
    if spec.offset < 0 {
        return Vec::new();
    }
    let count = if spec.count < 0 { usize::MAX } else { spec.count as usize };
    iter.skip(spec.offset as usize).take(count).map(|(score, member)| (member.clone(), score)).collect()
}

/// What a range command ranges over.
#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Rank,
    Score,
    Lex,
}

/// Parses range arguments from `first` (min, max, then options) as Redis'
/// `zrangeGenericCommand` does for every range command: `ZRANGE` leaves the type and direction to
/// its options, the older commands fix them (`kind`, `reverse`); `store` (`ZRANGESTORE`) takes
/// no `WITHSCORES`. Returns the spec and whether scores are wanted.
fn parse_range(
    request: &Request,
    first: usize,
    store: bool,
    kind: Option<RangeType>,
    reverse: Option<bool>,
) -> Result<(RangeSpec, bool), CmdError> {
    let (mut kind, mut direction, mut with_scores) = (kind, reverse, false);
    let (mut offset, mut count) = (0i64, -1i64);
    let mut index = first + 2;
    while let Some(option) = request.arg(index) {
        let left = request.len() - index - 1;
        if !store && is(option, "WITHSCORES") {
            with_scores = true;
        } else if is(option, "LIMIT") && left >= 2 {
            offset = args::int(arg(request, index + 1))?;
            count = args::int(arg(request, index + 2))?;
            index += 2;
        } else if direction.is_none() && is(option, "REV") {
            direction = Some(true);
        } else if kind.is_none() && is(option, "BYLEX") {
            kind = Some(RangeType::Lex);
        } else if kind.is_none() && is(option, "BYSCORE") {
            kind = Some(RangeType::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    let kind = kind.unwrap_or(RangeType::Rank);
    let reverse = direction.unwrap_or(false);
    // Redis refuses a LIMIT on a rank range only when its count is not -1.
    if count != -1 && kind == RangeType::Rank {
        return Err(CmdError::other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == RangeType::Lex {
        return Err(CmdError::other("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (min, max) = (arg(request, first), arg(request, first + 1));
    // Reversed score and lexicographic ranges are given maximum first.
    let (low, high) = if reverse && kind != RangeType::Rank { (max, min) } else { (min, max) };
    let selection = match kind {
        RangeType::Score => Selection::Score(ScoreRange::parse(low, high)?),
        RangeType::Lex => Selection::Lex(LexRange::parse(low, high)?),
        RangeType::Rank => {
            // A rank range ignores LIMIT, as Redis does when the count is -1.
            (offset, count) = (0, -1);
            Selection::Rank(args::int(min)?, args::int(max)?)
        }
    };
    Ok((RangeSpec { selection, reverse, offset, count }, with_scores))
}

fn reply_range(ctx: &mut Ctx<'_>, key: &[u8], spec: &RangeSpec, with_scores: bool) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let elements = zset(db, key, now)?.map(|zset| select(zset, spec)).unwrap_or_default();
    write_with_scores(reply, &elements, with_scores);
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (spec, with_scores) = parse_range(request, 2, false, None, None)?;
    reply_range(ctx, arg(request, 1), &spec, with_scores)
}

fn zrangestore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (spec, _) = parse_range(request, 3, true, None, None)?;
    let (destination, source) = (arg(request, 1), arg(request, 2));
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let elements = zset(db, source, now)?.map(|zset| select(zset, &spec)).unwrap_or_default();
    store(db, destination, &elements, &limits, now);
    reply.count(elements.len());
    Ok(())
}

/// Replaces `destination` with a sorted set of `elements` (deleting it if there are none).
fn store(
    db: &mut Db,
    destination: &[u8],
    elements: &[(Bulk, f64)],
    limits: &crate::keyspace::EncodingLimits,
    now_ms: u64,
) {
    db.remove(destination);
    if elements.is_empty() {
        return;
    }
    let compact =
        elements.len() <= limits.zset_entries && elements.iter().all(|(member, _)| member.len() <= limits.zset_value);
    let mut stored = ZSet::new(db.collection_seed(), compact);
    for (member, score) in elements {
        stored.insert(member, *score, limits);
    }
    db.set(destination, Value::ZSet(Box::new(stored)), 0, now_ms);
}

/// The older range commands: `ZRANGE` with the type and direction fixed.
fn legacy_range(ctx: &mut Ctx<'_>, request: &Request, kind: RangeType, reverse: bool) -> CmdResult {
    let (spec, with_scores) = parse_range(request, 2, false, Some(kind), Some(reverse))?;
    reply_range(ctx, arg(request, 1), &spec, with_scores)
}

fn zrevrange(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    legacy_range(ctx, request, RangeType::Rank, true)
}

fn zrangebyscore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    legacy_range(ctx, request, RangeType::Score, false)
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    legacy_range(ctx, request, RangeType::Score, true)
}

fn zrangebylex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    legacy_range(ctx, request, RangeType::Lex, false)
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    legacy_range(ctx, request, RangeType::Lex, true)
}

fn count_range(ctx: &mut Ctx<'_>, request: &Request, selection: Selection) -> CmdResult {
    let spec = RangeSpec { selection, reverse: false, offset: 0, count: -1 };
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    reply.count(zset(db, arg(request, 1), now)?.map_or(0, |zset| select(zset, &spec).len()));
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let range = ScoreRange::parse(arg(request, 2), arg(request, 3))?;
    count_range(ctx, request, Selection::Score(range))
}

fn zlexcount(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let range = LexRange::parse(arg(request, 2), arg(request, 3))?;
    count_range(ctx, request, Selection::Lex(range))
}

fn remove_range(ctx: &mut Ctx<'_>, request: &Request, selection: Selection) -> CmdResult {
    let key = arg(request, 1);
    let spec = RangeSpec { selection, reverse: false, offset: 0, count: -1 };
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(zset) = zset(db, key, now)? else {
        reply.int(0);
        return Ok(());
    };
    let doomed = select(zset, &spec);
    for (member, _) in &doomed {
        zset.remove(member);
    }
    if !doomed.is_empty() {
        db.modified(key);
    }
    reply.count(doomed.len());
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let selection = Selection::Rank(args::int(arg(request, 2))?, args::int(arg(request, 3))?);
    remove_range(ctx, request, selection)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let range = ScoreRange::parse(arg(request, 2), arg(request, 3))?;
    remove_range(ctx, request, Selection::Score(range))
}

fn zremrangebylex(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let range = LexRange::parse(arg(request, 2), arg(request, 3))?;
    remove_range(ctx, request, Selection::Lex(range))
}

/// Pops up to `count` lowest (or, `highest`, highest) elements of `key`.
pub(crate) fn pop(
    db: &mut Db,
    key: &[u8],
    highest: bool,
    count: usize,
    now_ms: u64,
) -> Result<Option<Vec<(Bulk, f64)>>, CmdError> {
    let Some(zset) = zset(db, key, now_ms)? else {
        return Ok(None);
    };
    let popped: Vec<(Bulk, f64)> =
        zset.iter_from_rank(0, highest).take(count).map(|(score, member)| (member.clone(), score)).collect();
    for (member, _) in &popped {
        zset.remove(member);
    }
    if !popped.is_empty() {
        db.modified(key);
    }
    Ok(Some(popped))
}

fn pop_command(ctx: &mut Ctx<'_>, request: &Request, highest: bool) -> CmdResult {
    // Too many arguments first, as Redis: `… k -1 x` is a syntax error.
    if request.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = args::optional_count(request.arg(2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let popped = pop(db, arg(request, 1), highest, count.unwrap_or(1), now)?.unwrap_or_default();
    // Without a count, the reply is one flat member/score pair (or empty); with one, a list
    // (of pairs, for RESP3).
    if count.is_none() {
        reply.array(popped.len() * 2);
        for (member, score) in &popped {
            reply.bulk(member);
            reply.double(*score);
        }
    } else {
        write_with_scores(reply, &popped, true);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    pop_command(ctx, request, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    pop_command(ctx, request, true)
}

/// Reads `ZMPOP`'s `MIN`/`MAX`: whether to pop the highest scores.
pub(crate) fn highest(word: &[u8]) -> Option<bool> {
    if is(word, "MAX") {
        Some(true)
    } else if is(word, "MIN") {
        Some(false)
    } else {
        None
    }
}

/// Writes a `ZMPOP` result: the key, then its member/score pairs (pairs in both protocols).
pub(crate) fn write_mpop(reply: &mut Reply<'_>, key: &[u8], popped: &[(Bulk, f64)]) {
    reply.array(2);
    reply.bulk(key);
    reply.array(popped.len());
    for (member, score) in popped {
        reply.array(2);
        reply.bulk(member);
        reply.double(*score);
    }
}

fn zmpop(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let (keys, highest, count) = super::lists::parse_mpop(request, 1, highest)?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    for key in keys {
        if let Some(popped) = pop(db, key, highest, count, now)? {
            write_mpop(reply, key, &popped);
            // Replayed as the pop with a count it amounts to, as Redis 7.0 does.
            let mut count = itoa::Buffer::new();
            ctx.state.propagation.replace_with([pop_name(highest), key, count.format(popped.len()).as_bytes()]);
            return Ok(());
        }
    }
    reply.null_array();
    Ok(())
}

/// The command that pops the lowest or the highest scores.
pub(super) fn pop_name(highest: bool) -> &'static [u8] {
    if highest { b"ZPOPMAX" } else { b"ZPOPMIN" }
}

fn zrandmember(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let count = match request.arg(2) {
        Some(count) => Some(random::count(count)?),
        None => None,
    };
    let with_scores = match (request.len(), request.arg(3)) {
        (..=3, _) => false,
        (4, Some(option)) if is(option, "WITHSCORES") => true,
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now_ms;
    let state = &mut *ctx.state;
    let db = state.keyspace.db(ctx.client.db);
    let Some(zset) = zset(db, arg(request, 1), now)? else {
        if count.is_some() {
            ctx.reply.array(0)
        } else {
            ctx.reply.null()
        }
        return Ok(());
    };
    // A count covering the whole set returns it all, highest first, as Redis does.
    if count.is_some_and(|count| count > 0 && count as usize >= zset.len()) {
        let elements: Vec<(Bulk, f64)> =
            zset.iter_from_rank(0, true).map(|(score, member)| (member.clone(), score)).collect();
        write_with_scores(&mut ctx.reply, &elements, with_scores);
        return Ok(());
    }
    match random::picks(zset.len(), count, &mut state.rng) {
        None => match zset.get_index(random::one(zset.len(), &mut state.rng)) {
            Some((member, _)) => ctx.reply.bulk(member),
            None => ctx.reply.null(),
        },
        Some(picks) => {
            let elements: Vec<(Bulk, f64)> = picks
                .into_iter()
                .filter_map(|index| zset.get_index(index))
                .map(|(member, score)| (member.clone(), score))
                .collect();
            write_with_scores(&mut ctx.reply, &elements, with_scores);
        }
    }
    Ok(())
}

/// How scores combine in `ZUNION`/`ZINTER`.
#[derive(Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// The inputs and options of `ZUNION`/`ZINTER`/`ZDIFF`, their `STORE` forms and `ZINTERCARD`.
struct Combination {
    /// Each input key's members and scores (`None`: no such key).
    inputs: Vec<Option<Vec<(Bulk, f64)>>>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// `ZINTERCARD`'s `LIMIT` (0: none).
    limit: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// Which command the arguments are for: they differ in which options they take.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// `ZUNION`/`ZINTER`/`ZDIFF`: `WITHSCORES`.
    Reply,
    /// The `STORE` forms.
    Store,
    /// `ZINTERCARD`: `LIMIT`, and neither `WEIGHTS` nor `AGGREGATE`.
    Cardinality,
}

/// Parses `numkeys key… [options]` from argument `first` in Redis' order: the number of keys, then
/// every input is read (a key holding neither a sorted set nor a set is `WRONGTYPE` before any
/// option is looked at), then the options.
fn parse_combination(
    db: &mut Db,
    request: &Request,
    first: usize,
    op: SetOp,
    name: &str,
    form: Form,
    now_ms: u64,
) -> Result<Combination, CmdError> {
    let numkeys = args::int(arg(request, first))?;
    if numkeys < 1 {
        return Err(CmdError::message(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > request.len().saturating_sub(first + 1) {
        return Err(CmdError::Syntax);
    }
    let inputs =
        request.args().skip(first + 1).take(numkeys).map(|key| input(db, key, now_ms)).collect::<Result<_, _>>()?;
    let mut combination =
        Combination { inputs, weights: vec![1.0; numkeys], aggregate: Aggregate::Sum, with_scores: false, limit: 0 };
    let scoring = op != SetOp::Diff && form != Form::Cardinality;
    let mut index = first + 1 + numkeys;
    while let Some(option) = request.arg(index) {
        let remaining = request.len() - index - 1;
        if scoring && is(option, "WEIGHTS") && remaining >= numkeys {
            for (slot, weight) in combination.weights.iter_mut().enumerate() {
                *weight = args::parse_float(arg(request, index + 1 + slot))
                    .ok_or(CmdError::other("ERR weight value is not a float"))?;
            }
            index += numkeys + 1;
        } else if scoring && is(option, "AGGREGATE") && remaining >= 1 {
            let value = arg(request, index + 1);
            combination.aggregate = if is(value, "SUM") {
                Aggregate::Sum
            } else if is(value, "MIN") {
                Aggregate::Min
            } else if is(value, "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            index += 2;
        } else if form == Form::Reply && is(option, "WITHSCORES") {
            combination.with_scores = true;
            index += 1;
        } else if form == Form::Cardinality && is(option, "LIMIT") && remaining >= 1 {
            combination.limit = args::count_or(arg(request, index + 1), "ERR LIMIT can't be negative")?;
            index += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(combination)
}

/// The members and scores of `key` as an input to a combination: a sorted set, or a set (every
/// member scoring 1), or nothing.
fn input(db: &mut Db, key: &[u8], now_ms: u64) -> Result<Option<Vec<(Bulk, f64)>>, CmdError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => match &mut entry.value {
            Value::ZSet(zset) => {
                Ok(Some(zset.iter_from_rank(0, false).map(|(score, member)| (member.clone(), score)).collect()))
            }
            Value::Set(set) => Ok(Some(set.members().into_iter().map(|member| (member, 1.0)).collect())),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Redis adds weighted scores with `inf + -inf` counting as 0, not NaN.
fn aggregate(aggregate: Aggregate, current: f64, next: f64) -> f64 {
    match aggregate {
        Aggregate::Sum => {
            let sum = current + next;
            if sum.is_nan() { 0.0 } else { sum }
        }
        Aggregate::Min => current.min(next),
        Aggregate::Max => current.max(next),
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let product = score * weight;
    if product.is_nan() { 0.0 } else { product }
}

/// Computes a combination; the result is ordered as a sorted set orders.
fn combine(combination: Combination, op: SetOp) -> Vec<(Bulk, f64)> {
    let inputs = combination.inputs;
    let mut result: std::collections::BTreeMap<Bulk, f64> = std::collections::BTreeMap::new();
    match op {
        SetOp::Union => {
            for (input, weight) in inputs.iter().zip(&combination.weights) {
                for (member, score) in input.iter().flatten() {
                    let score = weighted(*score, *weight);
                    result
                        .entry(member.clone())
                        .and_modify(|current| *current = aggregate(combination.aggregate, *current, score))
                        .or_insert(score);
                }
            }
        }
        SetOp::Inter => {
            if inputs.iter().any(Option::is_none) {
                return Vec::new();
            }
            let maps: Vec<std::collections::BTreeMap<&Bulk, f64>> = inputs
                .iter()
                .flatten()
                .map(|input| input.iter().map(|(member, score)| (member, *score)).collect())
                .collect();
            if let Some(first) = maps.first() {
                for (member, score) in first {
                    let mut total = weighted(*score, combination.weights[0]);
                    let mut everywhere = true;
                    for (other, weight) in maps.iter().zip(&combination.weights).skip(1) {
                        match other.get(member) {
                            Some(score) => total = aggregate(combination.aggregate, total, weighted(*score, *weight)),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if everywhere {
                        result.insert((*member).clone(), total);
                    }
                }
            }
        }
        SetOp::Diff => {
            let mut inputs = inputs.into_iter();
            let first = inputs.next().flatten().unwrap_or_default();
            let others: std::collections::BTreeSet<Bulk> =
                inputs.flatten().flatten().map(|(member, _)| member).collect();
            for (member, score) in first {
                if !others.contains(&member) {
                    result.insert(member, score);
                }
            }
        }
    }
    let mut elements: Vec<(Bulk, f64)> = result.into_iter().collect();
    elements.sort_by(|(member_a, score_a), (member_b, score_b)| {
        // As the skiplist orders: `-0` and `0` are equal scores.
        score_a.partial_cmp(score_b).unwrap_or(std::cmp::Ordering::Equal).then_with(|| member_a.cmp(member_b))
    });
    elements
}

fn combine_command(ctx: &mut Ctx<'_>, request: &Request, op: SetOp, name: &str) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let combination = parse_combination(db, request, 1, op, name, Form::Reply, now)?;
    let with_scores = combination.with_scores;
    let elements = combine(combination, op);
    write_with_scores(reply, &elements, with_scores);
    Ok(())
}

fn combine_store(ctx: &mut Ctx<'_>, request: &Request, op: SetOp, name: &str) -> CmdResult {
    let destination = arg(request, 1);
    let limits = ctx.state.config.encoding_limits();
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let combination = parse_combination(db, request, 2, op, name, Form::Store, now)?;
    let elements = combine(combination, op);
    store(db, destination, &elements, &limits, now);
    reply.count(elements.len());
    Ok(())
}

fn zunion(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_command(ctx, request, SetOp::Union, "zunion")
}

fn zinter(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_command(ctx, request, SetOp::Inter, "zinter")
}

fn zdiff(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_command(ctx, request, SetOp::Diff, "zdiff")
}

fn zunionstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_store(ctx, request, SetOp::Union, "zunionstore")
}

fn zinterstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_store(ctx, request, SetOp::Inter, "zinterstore")
}

fn zdiffstore(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    combine_store(ctx, request, SetOp::Diff, "zdiffstore")
}

fn zintercard(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let combination = parse_combination(db, request, 1, SetOp::Inter, "zintercard", Form::Cardinality, now)?;
    let limit = combination.limit;
    let count = combine(combination, SetOp::Inter).len();
    reply.count(if limit == 0 { count } else { count.min(limit) });
    Ok(())
}

fn zscan(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let cursor = super::keys::parse_cursor(arg(request, 2))?;
    let now = ctx.now_ms;
    let (db, reply) = ctx.db_and_reply();
    let Some(zset) = zset(db, arg(request, 1), now)? else {
        super::keys::reply_empty_scan(reply);
        return Ok(());
    };
    let options = parse_scan_options(request, 3)?;
    let mut found: Vec<(Bulk, f64)> = Vec::new();
    let next = zset.scan(cursor, options.count, |member, score| {
        if options.matches(member) {
            found.push((member.clone(), score));
        }
    });
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(found.len() * 2);
    for (member, score) in &found {
        reply.bulk(member);
        reply.bulk(resp::encode::format_double(*score).as_bytes());
    }
    Ok(())
}
