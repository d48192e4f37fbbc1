//! Generated command sequences: proptest draws sequences over a small alphabet of keys, fields,
//! values, numbers and scores (so commands collide, hit wrong types, bad numbers and expiry), runs
//! each on both servers and compares every reply. A failure is shrunk to a short sequence and
//! printed with both replies.
//!
//! The runner is seeded, so a failure repeats; `PROPTEST_CASES=5000 PROPTEST_RNG_SEED=7 cargo test
//! -p server --test differential generated` runs a longer, different search.

use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use resp::Frame;

use crate::harness::{Compare, Pair, agree, show};

const KEYS: &[&str] = &["a", "b", "{t}c", "{t}d", "n"];
const FIELDS: &[&str] = &["f", "g", "1", "-2", "", LONG];
const VALUES: &[&str] =
    &["", "0", "1", "-1", "7", "3.5", "abc", "hello world", "9223372036854775807", "1e3", "-0", "f", LONG];
/// Longer than the 64 bytes a compact (listpack) collection or an embedded string may hold.
const LONG: &str = "long-value-that-turns-compact-encodings-into-their-big-forms-0123456789";
/// How many elements `$many` adds: more than the 128 a compact collection may hold.
const MANY: usize = 130;
const NUMBERS: &[&str] =
    &["0", "1", "-1", "2", "3", "-3", "10", "x", "1.5", "9223372036854775807", "-9223372036854775808"];
const SCORES: &[&str] = &["0", "1", "-1", "2.5", "inf", "-inf", "+inf", "nan", "x", "1e2", "(1", "-0", "0x10"];
/// TTLs far from the test's duration (or non-positive), so no key expires between the two servers'
/// replies; expiry-at-access is covered by the zero and negative ones.
const TTLS: &[&str] = &["100", "1000", "0", "-5", "x", "9223372036854775807"];
const RANGES: &[&str] = &["-", "+", "[a", "(a", "[f", "(g", "a", "[", "(1"];

/// Command templates. Words are literal except: `$k` key, `$f` field or member, `$v` value,
/// `$n` number, `$s` score, `$t` TTL, `$r` lex range bound, `$many` (`$manypairs`) enough members
/// (member-value pairs) to leave the compact encodings, and `$[A|B|]` one of the
/// alternatives (an empty one drops the word). A leading `~` compares the reply unordered, a
/// leading `=` as pairs, a leading `≈` as an integer within a second.
pub(crate) const TEMPLATES: &[&str] = &[
    // strings
    "GET $k",
    "SET $k $v",
    "SET $k $v $[NX|XX|GET|KEEPTTL|NX GET|XX GET]",
    "SET $k $v $[EX|PX|EXAT|PXAT] $t",
    "SETNX $k $v",
    "SETEX $k $t $v",
    "GETSET $k $v",
    "GETDEL $k",
    "GETEX $k $[PERSIST|EX $t|]",
    "APPEND $k $v",
    "STRLEN $k",
    "GETRANGE $k $n $n",
    "SETRANGE $k $[0|1|5|-1|x] $v",
    "INCR $k",
    "DECR $k",
    "INCRBY $k $n",
    "DECRBY $k $n",
    "INCRBYFLOAT $k $n",
    "MGET $k $k $k",
    "MSET $k $v $k $v",
    "MSETNX $k $v $k $v",
    "SETBIT $k $[0|1|7|15|-1|x] $[0|1|2]",
    "GETBIT $k $[0|1|7|100|-1]",
    "BITCOUNT $k $[|0 -1|1 1|0 0 BIT|$n $n BYTE|0]",
    "BITPOS $k $[0|1|2] $[|0|1 -1|0 0 BIT]",
    "BITOP $[AND|OR|XOR|NOT|FOO] $k $k $k",
    // keys
    "DEL $k $k",
    "UNLINK $k",
    "EXISTS $k $k $k",
    "TYPE $k",
    "EXPIRE $k $t $[|NX|XX|GT|LT|NX XX|FOO]",
    "PEXPIRE $k $[100000|0|-1|x]",
    "EXPIREAT $k $[0|1|4102444800|x]",
    "PERSIST $k",
    "≈TTL $k",
    "≈EXPIRETIME $k",
    "RENAME $k $k",
    "RENAMENX $k $k",
    "COPY $k $k $[|REPLACE|DB 1|FOO]",
    "OBJECT ENCODING $k",
    "DBSIZE",
    "~KEYS $[*|{t}*|?|*b*|\\{t\\}*]",
    "TOUCH $k $k",
    "MOVE $k $[1|0|x]",
    "SELECT $[0|1|16|x]",
    "SWAPDB 0 1",
    // hashes
    "HSET $k $f $v",
    "HSET $k $f $v $f $v",
    "HSET $k $manypairs",
    "HSETNX $k $f $v",
    "HGET $k $f",
    "HMGET $k $f $f",
    "HDEL $k $f $f",
    "HLEN $k",
    "HEXISTS $k $f",
    "HSTRLEN $k $f",
    "HINCRBY $k $f $n",
    "HINCRBYFLOAT $k $f $n",
    "=HGETALL $k",
    "~HKEYS $k",
    "~HVALS $k",
    // lists
    "LPUSH $k $v $v",
    "RPUSH $k $v",
    "RPUSH $k $many",
    "LPUSHX $k $v",
    "RPUSHX $k $v",
    "LPOP $k $[|0|1|2|-1|x]",
    "RPOP $k $[|0|1|3]",
    "LLEN $k",
    "LRANGE $k $n $n",
    "LINDEX $k $n",
    "LSET $k $n $v",
    "LREM $k $n $v",
    "LINSERT $k $[BEFORE|AFTER|FOO] $v $v",
    "LTRIM $k $n $n",
    "LPOS $k $v $[|RANK 1|RANK -1|RANK 0|COUNT 0|COUNT 2|MAXLEN 1]",
    "LMOVE $k $k $[LEFT|RIGHT] $[LEFT|RIGHT|UP]",
    "RPOPLPUSH $k $k",
    "LMPOP 2 $k $k $[LEFT|RIGHT] $[|COUNT 2|COUNT 0]",
    // sets
    "SADD $k $f $f",
    "SADD $k $v",
    "SADD $k $many",
    "SREM $k $f $f",
    "SCARD $k",
    "SISMEMBER $k $f",
    "SMISMEMBER $k $f $f",
    "~SMEMBERS $k",
    "~SINTER $k $k",
    "~SUNION $k $k",
    "~SDIFF $k $k",
    "SINTERCARD $[2|1|0|3] $k $k $[|LIMIT 1|LIMIT -1]",
    "SMOVE $k $k $f",
    "$[SINTERSTORE|SUNIONSTORE|SDIFFSTORE] $k $k $k",
    // sorted sets
    "ZADD $k $s $f",
    "ZADD $k $[NX|XX|GT|LT|CH|INCR|NX GT|XX CH] $s $f",
    "ZADD $k $s $f $s $f",
    "ZADD $k $manypairs",
    "ZSCORE $k $f",
    "ZMSCORE $k $f $f",
    "ZINCRBY $k $s $f",
    "ZREM $k $f $f",
    "ZCARD $k",
    "ZRANK $k $f",
    "ZREVRANK $k $f",
    "ZCOUNT $k $s $s",
    "ZLEXCOUNT $k $r $r",
    "ZRANGE $k $n $n $[|WITHSCORES|REV|REV WITHSCORES]",
    "ZRANGE $k $s $s BYSCORE $[|WITHSCORES|REV|LIMIT 0 1|LIMIT 1 -1]",
    "ZRANGE $k $r $r BYLEX $[|REV|LIMIT 0 2]",
    "ZRANGEBYSCORE $k $s $s $[|WITHSCORES|LIMIT 1 1]",
    "ZREVRANGEBYLEX $k $r $r",
    "ZRANGESTORE $k $k $n $n",
    "ZPOPMIN $k $[|1|2|-1]",
    "ZPOPMAX $k $[|1|2]",
    "ZMPOP 2 $k $k $[MIN|MAX] $[|COUNT 2]",
    "$[ZUNIONSTORE|ZINTERSTORE|ZDIFFSTORE] $k 2 $k $k",
    "ZUNION 2 $k $k $[|WITHSCORES|AGGREGATE MAX WITHSCORES|WEIGHTS 2 $s WITHSCORES]",
    "ZINTER 2 $k $k WITHSCORES",
    "ZREMRANGEBYRANK $k $n $n",
    "ZREMRANGEBYSCORE $k $s $s",
    "ZREMRANGEBYLEX $k $r $r",
    // blocking commands: immediate when there is data, a short timeout otherwise
    // (few: an idle redis-server notices a timeout only at its next 100 ms tick)
    "$[BLPOP|BRPOP] $k $k $[0.01|-1|x]",
    "$[BLMOVE $k $k LEFT RIGHT 0.01|BZPOPMIN $k 0.01|BZMPOP 0.01 1 $k MIN COUNT 2]",
    // transactions and errors
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH $k",
    "UNWATCH",
    "FOO $k",
    "GET",
    "SET $k",
    "PING $[|$v]",
    "ECHO $v",
];

/// One generated command: a template and the picks that fill its slots.
pub(crate) type Step = (usize, [u8; 6]);

pub(crate) fn steps() -> impl Strategy<Value = (bool, Vec<Step>)> {
    let step = (0..TEMPLATES.len(), any::<[u8; 6]>());
    (any::<bool>(), proptest::collection::vec(step, 1..40))
}

/// Expands a template with its picks into the arguments and the way to compare.
pub(crate) fn expand((template, picks): &Step) -> (Vec<Vec<u8>>, Compare) {
    let text = TEMPLATES[*template];
    let (compare, text) = if let Some(rest) = text.strip_prefix('~') {
        (Compare::Unordered, rest)
    } else if let Some(rest) = text.strip_prefix('=') {
        (Compare::Pairs, rest)
    } else if let Some(rest) = text.strip_prefix('≈') {
        (Compare::Near(1), rest)
    } else {
        (Compare::Exact, text)
    };
    let mut picks = picks.iter().copied().cycle();
    let mut args = Vec::new();
    fill(text, &mut picks, &mut args);
    (args, compare)
}

/// Appends the words of `text` to `args`, filling each slot with the next pick.
fn fill(text: &str, picks: &mut dyn Iterator<Item = u8>, args: &mut Vec<Vec<u8>>) {
    let pick = |picks: &mut dyn Iterator<Item = u8>, count: usize| usize::from(picks.next().unwrap_or(0)) % count;
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix("$[") {
            // An alternative may hold several words and slots of its own.
            let close = inner.find(']').expect("templates close their alternatives");
            let choices: Vec<&str> = inner[..close].split('|').collect();
            let chosen = choices[pick(picks, choices.len())];
            rest = inner[close + 1..].trim_start();
            fill(chosen, picks, args);
            continue;
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        if word == "$many" || word == "$manypairs" {
            // Picks vary the start and whether members are integers (an intset) or words.
            let start = pick(picks, 4) * 50;
            let prefix = ["", "m"][pick(picks, 2)];
            for number in start..start + MANY {
                if word == "$manypairs" {
                    args.push(number.to_string().into_bytes());
                }
                args.push(format!("{prefix}{number}").into_bytes());
            }
            continue;
        }
        let alphabet: &[&str] = match word {
            "$k" => KEYS,
            "$f" => FIELDS,
            "$v" => VALUES,
            "$n" => NUMBERS,
            "$s" => SCORES,
            "$t" => TTLS,
            "$r" => RANGES,
            literal => {
                args.push(literal.as_bytes().to_vec());
                continue;
            }
        };
        args.push(alphabet[pick(picks, alphabet.len())].as_bytes().to_vec());
    }
}

pub(crate) fn label(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|arg| {
            let text = String::from_utf8_lossy(arg);
            if text.is_empty() || text.contains(' ') { format!("{text:?}") } else { text.into_owned() }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resets both connections and servers, then runs the sequence, comparing each reply.
async fn run_case(pair: &mut Pair, resp3: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    // The background expiry cycles of the two servers run at different moments, so they are off:
    // a key set with a past time then leaves at the same access on both.
    let setup = ["DISCARD", if resp3 { "HELLO 3" } else { "HELLO 2" }, "UNWATCH", "SELECT 0", "FLUSHALL"];
    for line in setup.into_iter().chain(["DEBUG SET-ACTIVE-EXPIRE 0"]) {
        pair.both(line).await;
    }
    let mut done: Vec<String> = vec![format!("HELLO {}", if resp3 { 3 } else { 2 })];
    // How to compare each queued command's reply inside EXEC's, while a transaction is open.
    let mut queued: Option<Vec<Compare>> = None;
    for step in steps {
        let (args, compare) = expand(step);
        let label = label(&args);
        let (theirs, ours) = pair.both_args(&args, &label).await;
        done.push(label);
        let name = args[0].to_ascii_uppercase();
        let same = match (&theirs, &ours, &mut queued) {
            (Frame::Array(theirs), Frame::Array(ours), Some(compares)) if name == b"EXEC" => {
                theirs.len() == ours.len()
                    && theirs.iter().zip(ours).zip(compares.iter()).all(|((t, o), c)| agree(t, o, *c))
            }
            _ => agree(&theirs, &ours, compare),
        };
        match &theirs {
            Frame::Simple(status) if &status[..] == b"QUEUED" => queued.get_or_insert_with(Vec::new).push(compare),
            Frame::Simple(_) if name == b"MULTI" => queued = Some(Vec::new()),
            _ if name == b"EXEC" || name == b"DISCARD" => queued = None,
            _ => {}
        }
        if !same {
            return Err(TestCaseError::fail(format!(
                "replies differ for `{}`\n  redis-server: {}\n  codis-server: {}\n  sequence:\n    {}",
                done.last().map(String::as_str).unwrap_or_default(),
                describe(&theirs),
                describe(&ours),
                done.join("\n    ")
            )));
        }
    }
    Ok(())
}

fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Map(_) | Frame::Set(_) | Frame::Double(_) | Frame::Null | Frame::NullBulk | Frame::NullArray => {
            format!("{frame:?}")
        }
        other => show(other),
    }
}

#[test]
fn generated_sequences_agree_with_redis() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let pair = RefCell::new(runtime.block_on(Pair::start()));
    // 512 cases and a fixed seed unless PROPTEST_CASES / PROPTEST_RNG_SEED say otherwise.
    let mut config = Config { failure_persistence: None, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 512;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(3);
    }
    let mut runner = TestRunner::new(config);
    // A case that failed may leave a connection or a server in any state (closed, mid-reply), so
    // the next case (proptest shrinking it) starts on fresh servers.
    let failed = Cell::new(false);
    let outcome = runner.run(&steps(), |(resp3, steps)| {
        let mut pair = pair.borrow_mut();
        if failed.replace(true) {
            *pair = runtime.block_on(Pair::start());
        }
        let outcome = runtime.block_on(run_case(&mut pair, resp3, &steps));
        failed.set(outcome.is_err());
        outcome
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
