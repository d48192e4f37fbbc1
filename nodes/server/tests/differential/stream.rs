//! What each server sends its replicas, compared: a raw replica connection (`PSYNC ? -1`, the
//! copy, then the stream) is attached to `redis-server` 7.0 and to ours, the same commands run on
//! both, and after each one the bytes it added to each stream are decoded and compared. The
//! append-only log is written from the same stream, so this holds it to Redis' too.
//!
//! Only what must differ is normalised: `PING`s (each server sends them on its own clock) are
//! dropped, and absolute times a server computed from a relative one (`SET … EX 100` goes as
//! `SET … PXAT <now + 100000>`) are written relative to when the command was sent, in whole
//! seconds (the tests' relative times are whole seconds). An absolute time the command itself
//! carried is kept as it is.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use net::{Env, TokioEnv};
use resp::{Connection, Request};

use crate::generated::{self, Step};
use crate::harness::{Duo, Pair, text};

type Stream = <TokioEnv as Env>::Stream;

/// A raw replica connection to one server: what the server sends after the copy.
struct Tap {
    /// Which server, for failure reports.
    name: &'static str,
    link: Connection<Stream>,
    /// The replication offset the copy was taken at.
    start: u64,
    /// Stream bytes read so far.
    consumed: u64,
}

impl Tap {
    /// Connects to `addr` as a replica and takes the copy.
    async fn attach(env: &TokioEnv, name: &'static str, addr: &str) -> Tap {
        let (link, start) = crate::common::attach_replica(env, addr).await;
        Tap { name, link, start, consumed: 0 }
    }

    /// Reads the stream up to replication offset `offset`, decoded, `PING`s left out.
    async fn read_to(&mut self, offset: u64) -> Vec<Vec<Vec<u8>>> {
        let mut commands = Vec::new();
        while self.start + self.consumed < offset {
            let before = self.link.buffered_input_len();
            match self.link.try_read_request().expect("the stream decodes") {
                Some(request) => {
                    self.consumed += (before - self.link.buffered_input_len()) as u64;
                    if !request.name().eq_ignore_ascii_case(b"PING") {
                        commands.push(request.args().map(<[u8]>::to_vec).collect());
                    }
                }
                None => {
                    let read = tokio::time::timeout(std::time::Duration::from_secs(5), self.link.read_more()).await;
                    let name = self.name;
                    let read = read.unwrap_or_else(|_| panic!("{name}'s stream stopped short of offset {offset}"));
                    assert!(read.expect("the stream") > 0, "{name} closed the replica link");
                }
            }
        }
        assert_eq!(self.start + self.consumed, offset, "a command crossed the offset the server reported");
        // A replica acknowledges what it has, or its master gives up on it after `repl-timeout`.
        self.link.write_request(&Request::from_args(["REPLCONF", "ACK", &offset.to_string()]));
        self.link.flush().await.expect("acknowledge");
        commands
    }
}

/// Both servers, a client and an observer connection to each, and a replica tap on each.
pub struct Taps {
    env: TokioEnv,
    theirs: Tap,
    ours: Tap,
    /// Asks each server for its offset (the client's connection may be inside `MULTI`).
    observer: Duo,
    /// Integers the commands carried: an absolute time among them is the client's, kept as is.
    literals: BTreeSet<i64>,
}

/// Both servers' segments of the stream, normalised.
pub type Segments = (Vec<String>, Vec<String>);

impl Taps {
    /// Attaches a replica to each server of `pair`. `redis-server` must have been started with
    /// a directory for the copy it writes (see [`start`]).
    pub async fn attach(pair: &Pair) -> Taps {
        let env = TokioEnv::with_seed(2);
        let (theirs_addr, ours_addr) = pair.addrs();
        Taps {
            theirs: Tap::attach(&env, "redis-server", theirs_addr).await,
            ours: Tap::attach(&env, "codis-server", ours_addr).await,
            observer: pair.connect().await,
            env,
            literals: BTreeSet::new(),
        }
    }

    /// The wall clock, for [`Taps::segments`].
    pub fn now_ms(&self) -> u64 {
        self.env.unix_millis()
    }

    /// Notes the arguments of a command sent to both.
    pub fn sent(&mut self, args: &[Vec<u8>]) {
        for arg in args {
            if let Some(number) = std::str::from_utf8(arg).ok().and_then(|text| text.parse::<i64>().ok()) {
                self.literals.insert(number);
                self.literals.insert(number.saturating_mul(1000));
            }
        }
    }

    /// What each server added to its stream since the last call, normalised; `sent_ms` is when
    /// the command that added it was sent.
    pub async fn segments(&mut self, sent_ms: u64) -> Segments {
        let (theirs, ours) = self.observer.both("INFO replication").await;
        let offset = |info: &resp::Frame| -> u64 {
            text(info)
                .lines()
                .find_map(|line| line.strip_prefix("master_repl_offset:"))
                .and_then(|offset| offset.trim().parse().ok())
                .unwrap_or_else(|| panic!("no master_repl_offset in {info:?}"))
        };
        let theirs = self.theirs.read_to(offset(&theirs)).await;
        let ours = self.ours.read_to(offset(&ours)).await;
        (self.normalise(&theirs, sent_ms), self.normalise(&ours, sent_ms))
    }

    fn normalise(&self, commands: &[Vec<Vec<u8>>], sent_ms: u64) -> Vec<String> {
        commands
            .iter()
            .map(|args| args.iter().map(|arg| self.normalise_arg(arg, sent_ms)).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// An absolute time in milliseconds within ten years of now that the client did not send
    /// becomes its distance from `sent_ms` in whole seconds.
    fn normalise_arg(&self, arg: &[u8], sent_ms: u64) -> String {
        let text = String::from_utf8_lossy(arg);
        let Ok(number) = text.parse::<i64>() else {
            return if text.is_empty() || text.contains(' ') { format!("{text:?}") } else { text.into_owned() };
        };
        let now = i64::try_from(sent_ms).unwrap_or(i64::MAX);
        const TEN_YEARS_MS: i64 = 10 * 365 * 24 * 3600 * 1000;
        let distance = number.saturating_sub(now);
        if self.literals.contains(&number) || distance.saturating_abs() > TEN_YEARS_MS {
            return text.into_owned();
        }
        let seconds = (distance as f64 / 1000.0).round() as i64;
        format!("<now{seconds:+}s>")
    }
}

/// Starts both servers ready for taps: `redis-server` writes the copy for a replica that cannot
/// take it diskless (as ours asks) to a file, so it gets a directory of its own.
pub async fn start() -> (Pair, tempdir::Dir) {
    let dir = tempdir::Dir::new("stream");
    let redis_args = ["--dir", dir.path(), "--repl-diskless-sync", "no", "--repl-ping-replica-period", "3600"];
    let config = server::ServerConfig { repl_ping_replica_period: 3600, ..server::ServerConfig::default() };
    (Pair::start_with(&redis_args, config).await, dir)
}

/// A directory removed on drop.
pub mod tempdir {
    /// The directory.
    pub struct Dir(std::path::PathBuf);

    impl Dir {
        /// A fresh directory named for `name`, this process and a count (tests run side by side).
        pub fn new(name: &str) -> Dir {
            static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("codis-differential-{name}-{}-{count}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Dir(path)
        }

        /// Its path.
        pub fn path(&self) -> &str {
            self.0.to_str().expect("a UTF-8 temporary path")
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `lines` on both servers one by one and requires each to add the same to both streams;
/// every difference is reported.
async fn same_streams(pair: &mut Pair, taps: &mut Taps, lines: &[&str]) {
    let mut differences = Vec::new();
    for line in lines {
        let args = resp::split_inline(line.as_bytes()).expect("test command splits");
        taps.sent(&args);
        let sent_ms = taps.now_ms();
        pair.both_args(&args, line).await;
        let (theirs, ours) = taps.segments(sent_ms).await;
        if ours != theirs {
            differences.push(format!("`{line}`\n    redis-server: {theirs:?}\n    codis-server: {ours:?}"));
        }
    }
    assert!(differences.is_empty(), "the streams differ after:\n  {}", differences.join("\n  "));
}

/// The lines of [`each_write_goes_to_replicas_as_redis_sends_it`], on keys they set up themselves.
const BY_HAND: &[&str] = &[
    // Strings: every expiry as an absolute time; GET dropped from SET; GETDEL as DEL.
    "SET s v",
    "SET s v EX 100",
    "SET s v PX 100000 GET",
    "SET s v EXAT 4102444800",
    "SET s v PXAT 4102444800000 NX",
    "SET s v XX GET",
    "SET s v KEEPTTL GET",
    "SETEX s 100 v",
    "PSETEX s 100000 v",
    "SETNX s v",
    "SETNX fresh v",
    "GETSET s w",
    "GETEX s EX 100",
    "GETEX s PXAT 4102444800000",
    "GETEX s PERSIST",
    "GETEX s",
    "GETEX s EXAT 1",
    "SET s v",
    "GETDEL s",
    "GETDEL s",
    "MSET a 1 b 2",
    "MSETNX c 3 d 4",
    "MSETNX c 3 e 5",
    "INCRBYFLOAT a 1.5",
    "INCRBYFLOAT a 1e3",
    "APPEND a x",
    "SETRANGE a 2 yy",
    "INCR b",
    "DECRBY b 5",
    "SETBIT bits 7 1",
    "BITOP OR dest bits a",
    // Keys: relative expiries as PEXPIREAT, past ones as DEL.
    "EXPIRE a 100",
    // (GT against a time clearly later or earlier: the same relative time may land on the same
    // millisecond on one server and the next on the other.)
    "PEXPIRE a 200000 GT",
    "PEXPIRE a 50000 GT",
    "EXPIREAT a 4102444800",
    "PEXPIREAT a 4102444800000",
    "EXPIRE a 100 NX",
    "PERSIST a",
    "EXPIRE b 0",
    "EXPIREAT c 1",
    "PEXPIRE d -1",
    "SET r v EX 100",
    "RENAME r r2",
    "RENAMENX r2 r3",
    "COPY r3 r4",
    "COPY r3 r4 REPLACE",
    "COPY r3 r5 DB 1",
    "MOVE r3 2",
    "SWAPDB 0 3",
    "SWAPDB 0 3",
    "DEL r4 nothing",
    "UNLINK r5",
    // Hashes.
    "HSET h f 1 g 2",
    "HMSET h f 1 e 2",
    "HSETNX h f 3",
    "HINCRBY h f 2",
    "HINCRBYFLOAT h g 0.5",
    "HINCRBYFLOAT h g 1e2",
    "HDEL h f g",
    // Lists: the pops with a count, LMPOP as [LR]POP with a count.
    "RPUSH l a b c d e f",
    "LPUSH l z",
    "LPUSHX l y",
    "RPUSHX nolist y",
    "LPOP l",
    "RPOP l 2",
    "LMPOP 1 l LEFT",
    "LMPOP 2 nolist l RIGHT COUNT 2",
    "LMPOP 1 l LEFT COUNT 10",
    "RPUSH l a b c d",
    "LSET l 0 x",
    "LINSERT l BEFORE x w",
    "LREM l 1 w",
    "LTRIM l 0 1",
    "RPOPLPUSH l l2",
    "LMOVE l2 l LEFT RIGHT",
    "BLPOP l 0",
    "BRPOP nolist l 0",
    "RPUSH l a b",
    "BLMOVE l l2 RIGHT LEFT 0",
    "BRPOPLPUSH l l2 0",
    "RPUSH l a b c",
    "BLMPOP 0 1 l LEFT COUNT 2",
    "BLMPOP 0 1 l RIGHT",
    // Sets: SPOP as SREM, or DEL when it takes everything.
    "SADD set a",
    "SPOP set",
    "SADD set a b c",
    "SPOP set 5",
    "SADD set a",
    "SPOP set 1",
    "SADD set a b",
    "SREM set a",
    "SMOVE set set2 b",
    "SADD set x y",
    "SINTERSTORE dset set set2",
    "SUNIONSTORE dset set set2",
    "SDIFFSTORE dset set set2",
    // Sorted sets: ZMPOP and the blocking pops as ZPOP* with a count.
    "ZADD z 1 a 2 b 3 c 4 d 5 e",
    "ZADD z INCR 2 a",
    "ZINCRBY z 1.5 b",
    "ZREM z nothing e",
    "ZPOPMIN z",
    "ZPOPMAX z 1",
    "ZADD z 1 a 2 b 3 c 4 d",
    "ZMPOP 1 z MIN",
    "ZMPOP 2 noz z MAX COUNT 2",
    "ZADD z 1 a 2 b 3 c",
    "BZPOPMIN z 0",
    "BZPOPMAX noz z 0",
    "ZADD z 1 a 2 b 3 c",
    "BZMPOP 0 1 z MIN COUNT 2",
    "ZADD z 1 a 2 b 3 c",
    "ZRANGESTORE z2 z 0 1",
    "ZUNIONSTORE z3 2 z z2",
    "ZINTERSTORE z3 2 z z2 WEIGHTS 2 3",
    "ZDIFFSTORE z3 2 z z2",
    "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYSCORE z 2 2",
    "ZADD lex 0 a 0 b 0 c",
    "ZREMRANGEBYLEX lex [a [b",
    // Transactions: one write goes alone, several as MULTI … EXEC, none as nothing.
    "MULTI",
    "INCR t",
    "EXEC",
    "MULTI",
    "INCR t",
    "SET t2 v EX 100",
    "GET t",
    "EXEC",
    "MULTI",
    "GET t",
    "EXEC",
    "MULTI",
    "SELECT 1",
    "INCR t",
    "SELECT 0",
    "INCR t",
    "EXEC",
    // Expired keys found by commands: the DEL, with the write in one transaction.
    "SET gone v PX 1",
    "DEBUG SLEEP 0.01",
    "GET gone",
    "SET gone v PX 1",
    "DEBUG SLEEP 0.01",
    "SET gone w",
    "SET gone v PX 1",
    "DEBUG SLEEP 0.01",
    "INCR gone",
    "SET gone v PX 1",
    "DEBUG SLEEP 0.01",
    "EXISTS gone",
    // The words a client wrote are kept where Redis keeps them.
    "set s v px 100000",
    "set s v xx get",
    "expire s 100 gt",
    "pexpire s 200000 xx",
    "rpush l a b c",
    "blmove l l2 right left 0",
    "lmpop 1 l left count 1",
    "zadd z 1 a 2 b",
    "zmpop 1 z max",
    // Messages reach replicas (their subscribers hear them too).
    "PUBLISH channel message",
    "MULTI",
    "PUBLISH channel message",
    "INCR t",
    "EXEC",
    // Databases and the whole keyspace.
    "SELECT 2",
    "SET x 1",
    "SELECT 0",
    "FLUSHDB",
    "FLUSHALL",
];

/// Every way a write can be propagated that the generated sequences reach only by luck: one
/// line each, on keys set up for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_write_goes_to_replicas_as_redis_sends_it() {
    let (mut pair, _dir) = start().await;
    let mut taps = Taps::attach(&pair).await;
    pair.both("DEBUG SET-ACTIVE-EXPIRE 0").await;
    same_streams(&mut pair, &mut taps, BY_HAND).await;
}

/// `RESTORE` goes with its TTL as an absolute time (`ABSTTL`), and `DUMP`'s payload unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_goes_with_an_absolute_ttl() {
    let (mut pair, _dir) = start().await;
    let mut taps = Taps::attach(&pair).await;
    // The same payload on both (each server's own DUMP of a list would be the same bytes too).
    pair.both("RPUSH l a b c").await;
    let (payload, _) = pair.both("DUMP l").await;
    let resp::Frame::Bulk(payload) = payload else { panic!("DUMP") };
    taps.segments(taps.now_ms()).await;
    for tail in [
        &["0"][..],
        &["100000", "REPLACE"],
        &["4102444800000", "REPLACE", "ABSTTL"],
        &["0", "REPLACE", "IDLETIME", "5"],
    ] {
        let mut args: Vec<Vec<u8>> = vec![b"RESTORE".to_vec(), b"copy".to_vec()];
        args.push(tail[0].as_bytes().to_vec());
        args.push(payload.to_vec());
        args.extend(tail[1..].iter().map(|arg| arg.as_bytes().to_vec()));
        taps.sent(&args);
        let sent_ms = taps.now_ms();
        let (theirs, ours) = pair.both_args(&args, "RESTORE").await;
        assert_eq!(theirs, ours, "RESTORE {tail:?}");
        let (theirs, ours) = taps.segments(sent_ms).await;
        assert_eq!(ours, theirs, "RESTORE {tail:?} (left: ours)");
        pair.both("DEL copy").await;
        taps.segments(taps.now_ms()).await;
    }
}

/// A client blocked on a key is served by another client's push: the push goes first, then the
/// pop it served, as the non-blocking command (after the deletion of a destination that expired
/// meanwhile, in one transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_served_later_goes_after_the_push_that_served_it() {
    let (mut pair, _dir) = start().await;
    let mut taps = Taps::attach(&pair).await;
    let expired_destination: &[&str] = &["RPUSH q2 old", "PEXPIRE q2 1", "DEBUG SLEEP 0.01"];
    let cases: [(&[&str], &str, &str); 7] = [
        (&[], "BLPOP q 0", "RPUSH q a b"),
        (&[], "BLMOVE q q2 LEFT RIGHT 0", "LPUSH q x"),
        (expired_destination, "BLMOVE q q2 LEFT RIGHT 0", "LPUSH q x"),
        (expired_destination, "BRPOPLPUSH q q2 0", "LPUSH q x"),
        (&[], "BLMPOP 0 1 q RIGHT COUNT 3", "RPUSH q a b"),
        (&[], "BZPOPMIN z 0", "ZADD z 1 a 2 b"),
        (&[], "BZMPOP 0 1 z MAX COUNT 5", "ZADD z 1 a 2 b"),
    ];
    for (setup, blocking, push) in cases {
        same_streams(&mut pair, &mut taps, &["FLUSHALL", "DEBUG SET-ACTIVE-EXPIRE 0"]).await;
        same_streams(&mut pair, &mut taps, setup).await;
        let mut waiter = pair.connect().await;
        waiter.send(blocking).await;
        pair.wait_blocked(1).await;
        let args = resp::split_inline(push.as_bytes()).expect("splits");
        taps.sent(&args);
        let sent_ms = taps.now_ms();
        pair.both_args(&args, push).await;
        let (theirs, ours) = waiter.receive().await;
        assert_eq!(theirs, ours, "{blocking}");
        let (theirs, ours) = taps.segments(sent_ms).await;
        assert_eq!(ours, theirs, "{setup:?} {blocking} served by {push} (left: ours)");
    }
}

/// Write commands `redis-server` does not have: Codis' slot migration, whose effects on the
/// stream the in-process replay test (`tests/propagation.rs`) and the simulated scenarios'
/// replay checks cover; and `BGREWRITEAOF`, which writes no data.
const NOT_IN_REDIS: &[&str] = &[
    "slotsmgrtone",
    "slotsmgrttagone",
    "slotsmgrtslot",
    "slotsmgrttagslot",
    "slotsrestore",
    "slotsmgrtslot-async",
    "slotsmgrttagslot-async",
    "slotsmgrtone-async",
    "slotsmgrttagone-async",
    "slotsmgrt-exec-wrapper",
    "slotsrestore-async",
    "slotsrestore-async-ack",
    "slotsdel",
    "bgrewriteaof",
];

/// Write commands compared by a test of their own above.
const BY_OWN_TEST: &[&str] = &["restore"];

/// Every write command of ours is propagated in the tests above or the generated sequences
/// below: adding a write command means adding it here.
#[test]
fn every_write_command_is_compared() {
    let mut covered: BTreeSet<String> =
        BY_HAND.iter().filter_map(|line| line.split(' ').next()).map(str::to_ascii_lowercase).collect();
    for template in generated::TEMPLATES {
        let template = template.trim_start_matches(['~', '=', '≈']);
        match template.strip_prefix("$[") {
            // A template that starts with alternatives: the first word of each.
            Some(alternatives) => {
                let alternatives = &alternatives[..alternatives.find(']').unwrap_or(alternatives.len())];
                covered.extend(
                    alternatives.split('|').filter_map(|words| words.split(' ').next()).map(str::to_ascii_lowercase),
                );
            }
            None => covered.extend(template.split(' ').next().map(str::to_ascii_lowercase)),
        }
    }
    let missing: Vec<&str> = server::cmd::table()
        .all()
        .iter()
        .filter(|command| command.flags.contains(server::cmd::Flags::WRITE))
        .map(|command| command.name)
        .filter(|name| !covered.contains(*name) && !NOT_IN_REDIS.contains(name) && !BY_OWN_TEST.contains(name))
        .collect();
    assert!(missing.is_empty(), "write commands whose propagation nothing compares with Redis': {missing:?}");
}

/// Runs one generated sequence on both servers, comparing what each adds to its stream after
/// every command.
async fn run_case(pair: &mut Pair, taps: &mut Taps, steps: &[Step]) -> Result<(), TestCaseError> {
    for line in ["DISCARD", "UNWATCH", "SELECT 0", "FLUSHALL", "DEBUG SET-ACTIVE-EXPIRE 0"] {
        pair.both(line).await;
    }
    taps.segments(taps.now_ms()).await;
    let mut done: Vec<String> = Vec::new();
    for step in steps {
        let (args, _) = generated::expand(step);
        let label = generated::label(&args);
        taps.sent(&args);
        let sent_ms = taps.now_ms();
        let (theirs_reply, ours_reply) = pair.both_args(&args, &label).await;
        done.push(label);
        let (theirs, ours) = taps.segments(sent_ms).await;
        if theirs != ours {
            return Err(TestCaseError::fail(format!(
                "the streams differ after `{}`\n  redis-server: {theirs:?} (replied {theirs_reply:?})\n  codis-server: {ours:?} (replied {ours_reply:?})\n  sequence:\n    {}",
                done.last().map(String::as_str).unwrap_or_default(),
                done.join("\n    ")
            )));
        }
    }
    Ok(())
}

/// The generated command sequences of the reply comparison (`generated.rs`), compared by what
/// they propagate.
#[test]
fn generated_sequences_propagate_as_redis_does() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let start_all = || {
        runtime.block_on(async {
            let (pair, dir) = start().await;
            let taps = Taps::attach(&pair).await;
            (pair, taps, dir)
        })
    };
    let servers = RefCell::new(start_all());
    // 256 cases and a fixed seed unless PROPTEST_CASES / PROPTEST_RNG_SEED say otherwise.
    let mut config = Config { failure_persistence: None, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(5);
    }
    let mut runner = TestRunner::new(config);
    // After a failure the servers and streams may be in any state: the next case starts afresh.
    let failed = Cell::new(false);
    let outcome = runner.run(&generated::steps(), |(_, steps)| {
        let mut servers = servers.borrow_mut();
        if failed.replace(true) {
            *servers = start_all();
        }
        let (pair, taps, _) = &mut *servers;
        let outcome = runtime.block_on(run_case(pair, taps, &steps));
        failed.set(outcome.is_err());
        outcome
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
