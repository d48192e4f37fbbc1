//! Snapshot files both ways with a real `redis-server` 7.0: ours passes `redis-check-rdb` and
//! loads into `redis-server`; `redis-server`'s loads into ours; either way every key reads back
//! the same (values of every type in their compact and their large encodings, an expiry, a
//! second database).

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use net::{Env, TokioEnv};
use resp::{Decoder, Frame, Limits, Request};
use server::ServerConfig;
use server::rdb::file::{self, Header, Loaded};
use server::rdb::{LoadOptions, RdbError};
use server::state::{Client, State};

use common::{Redis, Served, temp_dir};

/// Our server with the append-only log on, its files in `dir`.
fn logging(dir: &std::path::Path) -> ServerConfig {
    ServerConfig { port: 0, dir: dir.to_string_lossy().into_owned(), appendonly: true, ..ServerConfig::default() }
}

/// Our server's state, driven without a socket.
struct Ours {
    state: State,
    client: Client,
    env: TokioEnv,
}

impl Ours {
    fn new(env: &TokioEnv) -> Ours {
        let state = State::new(ServerConfig::default(), net::rng_from_seed(1, "snapshot"), env.unix_millis(), 0);
        Ours { state, client: Client::new(1, true), env: env.clone() }
    }

    fn call(&mut self, args: &[&str]) -> Frame {
        let mut out = BytesMut::new();
        let request = Request::from_args(args.iter().map(|arg| arg.as_bytes()));
        server::cmd::execute(&mut self.state, &mut self.client, &mut out, &request, self.env.unix_millis());
        Decoder::new(Limits::default()).decode(&mut out).expect("a reply").expect("a whole reply")
    }
}

/// The same data, written through commands: every type small (compact encodings) and large.
fn population() -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| commands.push(args.iter().map(|arg| arg.to_string()).collect());
    add(&["SET", "s:small", "hello"]);
    add(&["SET", "s:int", "12345"]);
    add(&["SET", "s:big", &"x".repeat(1000)]);
    add(&["SET", "s:ttl", "soon", "PX", "600000"]);
    add(&["HSET", "h:small", "f1", "v1", "f2", "v2"]);
    add(&["RPUSH", "l:small", "a", "b", "3"]);
    add(&["SADD", "set:int", "1", "2", "3"]);
    add(&["SADD", "set:str", "a", "b", "c"]);
    add(&["ZADD", "z:small", "1", "a", "2.5", "b"]);
    add(&["SELECT", "3"]);
    add(&["SET", "other:db", "value"]);
    add(&["SELECT", "0"]);
    let many: Vec<String> = (0..300).map(|index| format!("member-{index}")).collect();
    let mut hash = vec!["HSET".to_string(), "h:big".into()];
    let mut list = vec!["RPUSH".to_string(), "l:big".into()];
    let mut set = vec!["SADD".to_string(), "set:big".into()];
    let mut zset = vec!["ZADD".to_string(), "z:big".into()];
    for (index, member) in many.iter().enumerate() {
        hash.extend([member.clone(), format!("value-{index}")]);
        list.push(member.clone());
        set.push(member.clone());
        zset.extend([format!("{}", index as f64 / 3.0), member.clone()]);
    }
    commands.extend([hash, list, set, zset]);
    commands
}

/// Reads that show every key's content, in an order both servers give the same way.
fn checks() -> Vec<Vec<String>> {
    let many: Vec<String> = (0..300).map(|index| format!("member-{index}")).collect();
    let mut checks: Vec<Vec<String>> = Vec::new();
    let mut add = |args: Vec<String>| checks.push(args);
    let words = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
    add(words("DBSIZE"));
    for key in ["s:small", "s:int", "s:big", "s:ttl"] {
        add(words(&format!("GET {key}")));
    }
    add(words("TYPE s:big"));
    add(words("HMGET h:small f1 f2 f3"));
    add(words("LRANGE l:small 0 -1"));
    add(words("LRANGE l:big 0 -1"));
    add(words("SMISMEMBER set:int 1 2 3 4"));
    add(words("SMISMEMBER set:str a b c d"));
    add(words("ZRANGE z:small 0 -1 WITHSCORES"));
    add(words("ZRANGE z:big 0 -1 WITHSCORES"));
    for key in ["h:big", "set:big"] {
        add(words(&format!("TYPE {key}")));
    }
    add(words("HLEN h:big"));
    add(words("SCARD set:big"));
    let mut hmget = vec!["HMGET".to_string(), "h:big".into()];
    hmget.extend(many.iter().cloned());
    add(hmget);
    let mut smismember = vec!["SMISMEMBER".to_string(), "set:big".into()];
    smismember.extend(many.iter().cloned());
    add(smismember);
    for key in ["h:small", "l:small", "l:big", "set:int", "set:str", "z:small", "z:big", "h:big", "set:big"] {
        add(words(&format!("OBJECT ENCODING {key}")));
    }
    add(words("SELECT 3"));
    add(words("GET other:db"));
    add(words("SELECT 0"));
    checks
}

/// The expiry survives: within a minute of what was set.
fn assert_ttl(pttl: &Frame) {
    let Frame::Integer(left) = pttl else { panic!("PTTL replied {pttl:?}") };
    assert!((540_000..=600_000).contains(left), "PTTL {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_snapshot_passes_redis_check_rdb_and_loads_into_redis_server() {
    let env = TokioEnv::with_seed(1);
    let mut ours = Ours::new(&env);
    for command in population() {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(!matches!(ours.call(&args), Frame::Error(_)), "{args:?}");
    }
    let header = Header { version: "7.0.15".into(), ctime_secs: env.unix_millis() / 1000, used_memory: 0 };
    let bytes = file::write(&ours.state.keyspace, &header, env.unix_millis());
    let dir = temp_dir("ours");
    std::fs::write(dir.join("dump.rdb"), &bytes).expect("write the snapshot");
    let check = Command::new("redis-check-rdb").arg(dir.join("dump.rdb")).output().expect("redis-check-rdb");
    assert!(check.status.success(), "redis-check-rdb refused our file: {}", String::from_utf8_lossy(&check.stdout));
    let mut redis = Redis::start(&env, &dir).await;
    for check in checks() {
        let args: Vec<&str> = check.iter().map(String::as_str).collect();
        assert_eq!(redis.call(&args).await, ours.call(&args), "{args:?}");
    }
    assert_ttl(&redis.call(&["PTTL", "s:ttl"]).await);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_server_snapshot_loads_into_ours() {
    let env = TokioEnv::with_seed(2);
    let dir = temp_dir("theirs");
    let mut redis = Redis::start(&env, &dir).await;
    for command in population() {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(!matches!(redis.call(&args).await, Frame::Error(_)), "{args:?}");
    }
    assert_eq!(redis.call(&["SAVE"]).await, Frame::Simple("OK".into()));
    let bytes = std::fs::read(dir.join("dump.rdb")).expect("redis-server's snapshot");
    let mut ours = Ours::new(&env);
    let limits = ours.state.config.encoding_limits();
    let seeds: Vec<u64> = ours.state.keyspace.dbs().iter().map(|db| db.collection_seed()).collect();
    let mut loaded: Vec<Loaded> = Vec::new();
    let summary = file::read(
        &bytes,
        |db| LoadOptions { limits, seed: seeds.get(db).copied().unwrap_or_default() },
        |key| {
            loaded.push(key);
            Ok::<(), RdbError>(())
        },
    )
    .expect("redis-server's snapshot reads");
    assert_eq!(summary.version, 10);
    assert_eq!(summary.keys, loaded.len() as u64);
    assert!(summary.aux.iter().any(|(field, value)| field == b"redis-ver" && value.starts_with(b"7.0")), "{summary:?}");
    let now = env.unix_millis();
    for key in loaded {
        ours.state.keyspace.db(key.db).set(&key.key, key.value, key.expire_at_ms.unwrap_or(0), now);
    }
    for check in checks() {
        let args: Vec<&str> = check.iter().map(String::as_str).collect();
        assert_eq!(ours.call(&args), redis.call(&args).await, "{args:?}");
    }
    assert_ttl(&ours.call(&["PTTL", "s:ttl"]));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let env = TokioEnv::with_seed(3);
    let mut ours = Ours::new(&env);
    ours.call(&["SET", "k", "v"]);
    let header = Header { version: "7.0.15".into(), ctime_secs: 0, used_memory: 0 };
    let bytes = file::write(&ours.state.keyspace, &header, 0);
    let read = |bytes: &[u8]| {
        file::read(bytes, |_| LoadOptions { limits: Default::default(), seed: 0 }, |_| Ok::<(), RdbError>(()))
    };
    assert_eq!(read(&bytes).expect("intact").keys, 1);
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    assert!(read(&flipped).is_err(), "a flipped bit is caught");
    assert!(read(&bytes[..bytes.len() - 4]).is_err(), "a cut file is caught");
    assert!(read(b"REDIS0011").is_err(), "a newer version is refused");
    assert!(read(b"HELLO").is_err());
}

/// Waits until `INFO persistence` says no rewrite of the log is running.
async fn rewritten(mut call: impl AsyncFnMut(&[&str]) -> Frame) {
    for _ in 0..500 {
        let Frame::Bulk(info) = call(&["INFO", "persistence"]).await else { panic!("INFO") };
        if String::from_utf8_lossy(&info).contains("aof_rewrite_in_progress:0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rewrite never finished");
}

/// Runs the population's commands: the first half before a rewrite of the log (so they end up
/// in its base), the rest after (in its increment), then a few commands whose logged form
/// differs from how they were sent.
async fn populate(mut call: impl AsyncFnMut(&[&str]) -> Frame) {
    let commands = population();
    let (before, after) = commands.split_at(commands.len() / 2);
    for command in before {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(!matches!(call(&args).await, Frame::Error(_)), "{args:?}");
    }
    assert_eq!(call(&["BGREWRITEAOF"]).await, Frame::Simple("Background append only file rewriting started".into()));
    rewritten(&mut call).await;
    for command in after {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert!(!matches!(call(&args).await, Frame::Error(_)), "{args:?}");
    }
    for args in [
        &["INCRBYFLOAT", "s:float", "1.5"][..],
        &["SET", "s:gone", "x", "PX", "1"],
        &["EXPIRE", "s:int", "600"],
        &["SPOP", "set:str"],
        &["SADD", "set:str", "a", "b", "c"],
        &["MULTI"],
        &["INCR", "s:counter"],
        &["INCR", "s:counter"],
        &["EXEC"],
    ] {
        assert!(!matches!(call(args).await, Frame::Error(_)), "{args:?}");
    }
    // Found expired: deleted, and logged as the DEL.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(call(&["GET", "s:gone"]).await, Frame::NullBulk);
}

/// What the checks read, plus the keys `populate` adds, each with its command.
async fn read_back(mut call: impl AsyncFnMut(&[&str]) -> Frame) -> Vec<(String, Frame)> {
    let mut commands = checks();
    for args in [&["GET", "s:float"][..], &["GET", "s:gone"], &["GET", "s:counter"], &["TTL", "s:int"]] {
        commands.push(args.iter().map(|arg| arg.to_string()).collect());
    }
    let mut replies = Vec::new();
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let reply = call(&args).await;
        replies.push((command.join(" "), reply));
    }
    replies
}

/// Both servers read back the same, command by command.
fn assert_same(got: &[(String, Frame)], expected: &[(String, Frame)]) {
    assert_eq!(got.len(), expected.len());
    for ((command, reply), (_, wanted)) in got.iter().zip(expected) {
        assert_eq!(reply, wanted, "{command}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_append_only_log_passes_redis_check_aof_and_loads_into_redis_server() {
    let env = TokioEnv::with_seed(4);
    let dir = temp_dir("our-log");
    let mut ours = Served::start(&env, logging(&dir)).await;
    populate(async |args: &[&str]| ours.call(args).await).await;
    let expected = read_back(async |args: &[&str]| ours.call(args).await).await;
    ours.stop().await;
    let manifest = dir.join("appendonlydir/appendonly.aof.manifest");
    let check = Command::new("redis-check-aof").arg(&manifest).output().expect("redis-check-aof");
    assert!(check.status.success(), "redis-check-aof refused our log: {}", String::from_utf8_lossy(&check.stdout));
    let mut redis = Redis::start_with(&env, &dir, &["--appendonly", "yes"]).await;
    assert_same(&read_back(async |args: &[&str]| redis.call(args).await).await, &expected);
    assert_ttl(&redis.call(&["PTTL", "s:ttl"]).await);
    // And ours reloads its own log (which redis-server has gone on appending to).
    assert_eq!(redis.call(&["SET", "written-by", "redis"]).await, Frame::Simple("OK".into()));
    drop(redis);
    let mut ours = Served::start(&env, logging(&dir)).await;
    assert_eq!(ours.call(&["GETDEL", "written-by"]).await, Frame::Bulk("redis".into()));
    assert_same(&read_back(async |args: &[&str]| ours.call(args).await).await, &expected);
    ours.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_server_append_only_log_loads_into_ours() {
    let env = TokioEnv::with_seed(5);
    let dir = temp_dir("their-log");
    let mut redis = Redis::start_with(&env, &dir, &["--appendonly", "yes", "--appendfsync", "always"]).await;
    populate(async |args: &[&str]| redis.call(args).await).await;
    let expected = read_back(async |args: &[&str]| redis.call(args).await).await;
    drop(redis);
    let mut ours = Served::start(&env, logging(&dir)).await;
    assert_same(&read_back(async |args: &[&str]| ours.call(args).await).await, &expected);
    assert_ttl(&ours.call(&["PTTL", "s:ttl"]).await);
    ours.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}
