//! The propagated stream redoes the data exactly: random command sequences run on one server
//! state while its changes are recorded; the recorded changes, replayed on an empty state later
//! (so relative expiries would land elsewhere), must leave the same keys with the same values and
//! the same expiry times. Keys expire along the way (found by commands and by the active cycle),
//! so their `DEL`s are in the stream too.

use bytes::BytesMut;
use net::rand::Rng as _;
use net::rand::seq::IndexedRandom as _;
use resp::Request;
use server::ServerConfig;
use server::keyspace::Keyspace;
use server::state::{Client, State};

fn fresh(seed: u64, now: u64) -> (State, Client) {
    let config = ServerConfig { databases: 4, ..ServerConfig::default() };
    (State::new(config, net::rng_from_seed(seed, "propagation"), now, 0), Client::new(1, true))
}

fn run<A: AsRef<[u8]>>(state: &mut State, client: &mut Client, args: &[A], now: u64) -> BytesMut {
    let mut out = BytesMut::new();
    let request = Request::from_args(args.iter().map(AsRef::as_ref));
    server::cmd::execute(state, client, &mut out, &request, now);
    out
}

/// A key as the comparison sees it: database, key, value (as `DUMP` encodes it), expiry.
type Stored = (usize, Vec<u8>, Vec<u8>, Option<u64>);

/// Every live key.
fn contents(keyspace: &Keyspace, now: u64) -> Vec<Stored> {
    let mut all = Vec::new();
    for (index, db) in keyspace.dbs().iter().enumerate() {
        for (key, entry) in db.keys() {
            if entry.expire_at().is_some_and(|at| at <= now) {
                continue;
            }
            let mut value = Vec::new();
            server::rdb::write_object(&mut value, &entry.value);
            all.push((index, key.to_vec(), value, entry.expire_at()));
        }
    }
    all.sort();
    all
}

/// One random command over a small alphabet of keys, members and times.
fn command(rng: &mut net::Rng, sequence: u64) -> Vec<String> {
    let keys = ["a", "b", "c", "{t}d", "{t}e"];
    let members = ["x", "y", "z", "1", "2", "3"];
    let key = keys.choose(rng).copied().unwrap_or("a").to_string();
    let other = keys.choose(rng).copied().unwrap_or("b").to_string();
    let member = members.choose(rng).copied().unwrap_or("x").to_string();
    let value = format!("v{sequence}");
    let ms = rng.random_range(1..=400u64).to_string();
    let s = |parts: &[&str]| parts.iter().map(|part| part.to_string()).collect::<Vec<_>>();
    // Through Codis' wrapper, as a proxy sends writes to a migrating slot.
    let wrapped = |parts: &[&str]| {
        let key = parts[1].to_string();
        ["SLOTSMGRT-EXEC-WRAPPER".to_string(), key].into_iter().chain(s(parts)).collect::<Vec<_>>()
    };
    match rng.random_range(0..37) {
        0 => s(&["SET", &key, &value]),
        1 => s(&["SET", &key, &value, "PX", &ms]),
        2 => s(&["SET", &key, &value, "EX", "100"]),
        3 => s(&["SETEX", &key, "50", &value]),
        4 => s(&["PSETEX", &key, &ms, &value]),
        5 => s(&["EXPIRE", &key, "30"]),
        6 => s(&["PEXPIRE", &key, &ms]),
        7 => s(&["PERSIST", &key]),
        8 => s(&["DEL", &key]),
        9 => s(&["INCR", &key]),
        10 => s(&["INCRBYFLOAT", &key, "1.5"]),
        11 => s(&["APPEND", &key, &value]),
        12 => s(&["SADD", &key, &member, "w"]),
        13 => s(&["SPOP", &key]),
        14 => s(&["SPOP", &key, "2"]),
        15 => s(&["HSET", &key, &member, &value]),
        16 => s(&["RPUSH", &key, &member, &value]),
        17 => s(&["LPOP", &key]),
        18 => s(&["ZADD", &key, "1.5", &member]),
        19 => s(&["ZINCRBY", &key, "2", &member]),
        26 => s(&["HINCRBYFLOAT", &key, &member, "0.1"]),
        27 => s(&["BLPOP", &key, &other, "0"]),
        28 => s(&["BZPOPMIN", &key, "0"]),
        20 => s(&["GET", &key]),
        21 => s(&["GETEX", &key, "PX", &ms]),
        22 => s(&["GETEX", &key, "PERSIST"]),
        23 => s(&["RENAME", &key, &other]),
        24 => s(&["SELECT", &rng.random_range(0..4).to_string()]),
        29 => wrapped(&["INCR", &key]),
        30 => wrapped(&["RPUSH", &key, &member, &value]),
        31 => wrapped(&["APPEND", &key, &value]),
        32 => wrapped(&["LPOP", &key]),
        33 => wrapped(&["SET", &key, &value, "PX", &ms]),
        34 => wrapped(&["SPOP", &key]),
        35 => wrapped(&["GET", &key]),
        36 => s(&["SLOTSDEL", &model::slot_of(key.as_bytes()).index().to_string()]),
        _ => s(&["EXPIREAT", &key, "1"]),
    }
}

#[test]
fn replaying_the_stream_later_rebuilds_the_same_data() {
    for seed in 0..40 {
        let mut rng = net::rng_from_seed(seed, "commands");
        let mut now = 1_000_000u64;
        let (mut source, mut client) = fresh(seed, now);
        source.propagate_changes();
        for sequence in 0..300 {
            match rng.random_range(0..20) {
                // A transaction of a few commands.
                0 => {
                    run(&mut source, &mut client, &["MULTI"], now);
                    for _ in 0..rng.random_range(1..=4) {
                        let args = command(&mut rng, sequence);
                        run(&mut source, &mut client, &args, now);
                    }
                    run(&mut source, &mut client, &["EXEC"], now);
                }
                // A key copied by DUMP and RESTORE, with a relative TTL.
                1 => {
                    let mut dumped = run(&mut source, &mut client, &["DUMP", "a"], now);
                    let decoded = resp::Decoder::new(resp::Limits::default()).decode(&mut dumped);
                    if let Ok(Some(resp::Frame::Bulk(payload))) = decoded {
                        let restore: [&[u8]; 5] = [b"RESTORE", b"b", b"20000", &payload, b"REPLACE"];
                        run(&mut source, &mut client, &restore, now);
                    }
                }
                _ => {
                    let args = command(&mut rng, sequence);
                    run(&mut source, &mut client, &args, now);
                }
            }
            now += rng.random_range(0..=30);
            if sequence % 50 == 49 {
                // The active cycle expires keys nobody reads.
                for db in source.keyspace.dbs_mut() {
                    db.expire_cycle(now, &mut net::rng_from_seed(seed, "cycle"), 20, 16);
                }
                server::propagate::expired_keys(&mut source);
            }
        }
        let stream = source.propagation.take();
        // Replayed five seconds later.
        let later = now + 5_000;
        let (mut replica, mut replica_client) = fresh(seed + 1000, later);
        // A replay deletes keys where the stream says, not on its own.
        for db in replica.keyspace.dbs_mut() {
            db.set_lazy_expiry(false);
        }
        let mut db = 0;
        for (at, change) in stream.iter().enumerate() {
            if change.db != db {
                db = change.db;
                run(&mut replica, &mut replica_client, &["SELECT".into(), db.to_string()], later);
            }
            let args: Vec<Vec<u8>> = change.request.args().map(<[u8]>::to_vec).collect();
            let reply = run(&mut replica, &mut replica_client, &args, later);
            if reply.starts_with(b"-") {
                let before: Vec<String> = stream[at.saturating_sub(12)..at]
                    .iter()
                    .map(|change| format!("db{} {:?}", change.db, String::from_utf8_lossy(change.request.wire())))
                    .collect();
                panic!(
                    "seed {seed}: replaying {:?} failed: {}; the changes before it: {before:#?}",
                    String::from_utf8_lossy(change.request.wire()),
                    String::from_utf8_lossy(&reply)
                );
            }
        }
        assert_eq!(
            contents(&replica.keyspace, later),
            contents(&source.keyspace, later),
            "seed {seed}: the replayed data differs ({} changes)",
            stream.len()
        );
    }
}

#[test]
fn nothing_is_recorded_while_nobody_listens() {
    let (mut state, mut client) = fresh(1, 1_000);
    run(&mut state, &mut client, &["SET", "k", "v"], 1_000);
    assert!(state.propagation.take().is_empty());
    state.propagate_changes();
    run(&mut state, &mut client, &["SET", "k", "v", "EX", "10"], 2_000);
    run(&mut state, &mut client, &["GET", "k"], 2_000);
    let stream = state.propagation.take();
    let commands: Vec<Vec<&[u8]>> = stream.iter().map(|change| change.request.args().collect()).collect();
    assert_eq!(commands, vec![vec![&b"SET"[..], b"k", b"v", b"PXAT", b"12000"]], "reads are not propagated");
}

#[test]
fn a_transaction_goes_whole_and_exec_itself_is_not_repeated() {
    let (mut state, mut client) = fresh(2, 1_000);
    state.propagate_changes();
    for args in [&["MULTI"][..], &["SET", "a", "1"], &["INCR", "a"], &["GET", "a"], &["EXEC"]] {
        run(&mut state, &mut client, args, 1_000);
    }
    // A transaction that changes one key needs no MULTI around it.
    for args in [&["MULTI"][..], &["INCR", "a"], &["EXEC"]] {
        run(&mut state, &mut client, args, 1_000);
    }
    let names: Vec<String> = state
        .propagation
        .take()
        .iter()
        .map(|change| String::from_utf8_lossy(change.request.name()).into_owned())
        .collect();
    assert_eq!(names, ["MULTI", "SET", "INCR", "EXEC", "INCR"]);
}

/// The reproduction of a write doubled through the wrapper: the master applied `RPUSH k x` and
/// `INCR n` once, and the stream must say so once.
#[test]
fn a_write_through_the_migration_wrapper_goes_once_as_itself() {
    let (mut state, mut client) = fresh(4, 1_000);
    state.propagate_changes();
    run(&mut state, &mut client, &["RPUSH", "k", "a"], 1_000);
    let pushed = run(&mut state, &mut client, &["SLOTSMGRT-EXEC-WRAPPER", "k", "RPUSH", "k", "x"], 1_000);
    assert_eq!(&pushed[..], b"*2\r\n:2\r\n:2\r\n");
    run(&mut state, &mut client, &["SET", "n", "10"], 1_000);
    let incremented = run(&mut state, &mut client, &["SLOTSMGRT-EXEC-WRAPPER", "n", "INCR", "n"], 1_000);
    assert_eq!(&incremented[..], b"*2\r\n:2\r\n:11\r\n");
    // A read through the wrapper, and a wrapped write refused inside it, propagate nothing.
    run(&mut state, &mut client, &["SLOTSMGRT-EXEC-WRAPPER", "n", "GET", "n"], 1_000);
    run(&mut state, &mut client, &["SLOTSMGRT-EXEC-WRAPPER", "k", "INCR", "k"], 1_000);
    let commands: Vec<Vec<u8>> = state.propagation.take().iter().map(|change| change.request.wire().to_vec()).collect();
    let expected: Vec<Vec<u8>> = [&["RPUSH", "k", "a"][..], &["RPUSH", "k", "x"], &["SET", "n", "10"], &["INCR", "n"]]
        .iter()
        .map(|args| Request::from_args(args.iter()).wire().to_vec())
        .collect();
    assert_eq!(
        commands.iter().map(|wire| String::from_utf8_lossy(wire).into_owned()).collect::<Vec<_>>(),
        expected.iter().map(|wire| String::from_utf8_lossy(wire).into_owned()).collect::<Vec<_>>()
    );
}

/// A write that finds its key expired deletes it first: the deletion and the write are one unit,
/// replayed together (Redis 7.0 wraps them in `MULTI` … `EXEC`).
#[test]
fn an_expired_key_found_by_a_write_goes_with_the_write_as_one_transaction() {
    let (mut state, mut client) = fresh(5, 1_000);
    state.propagate_changes();
    run(&mut state, &mut client, &["SET", "k", "v", "PX", "10"], 1_000);
    state.propagation.take();
    run(&mut state, &mut client, &["SET", "k", "w"], 2_000);
    run(&mut state, &mut client, &["SET", "j", "v", "PX", "10"], 2_000);
    // A read alone: the deletion alone.
    run(&mut state, &mut client, &["GET", "j"], 3_000);
    let names: Vec<String> = state
        .propagation
        .take()
        .iter()
        .map(|change| String::from_utf8_lossy(change.request.wire()).replace("\r\n", " "))
        .collect();
    assert_eq!(
        names,
        [
            "*1 $5 MULTI ",
            "*2 $3 DEL $1 k ",
            "*3 $3 SET $1 k $1 w ",
            "*1 $4 EXEC ",
            "*5 $3 SET $1 j $1 v $4 PXAT $4 2010 ",
            "*2 $3 DEL $1 j "
        ]
    );
}

#[test]
fn a_pop_served_to_a_blocked_client_goes_as_the_pop_it_was() {
    let (mut state, mut pusher) = fresh(3, 1_000);
    let mut waiter = Client::new(2, true);
    state.propagate_changes();
    run(&mut state, &mut waiter, &["BLPOP", "q", "0"], 1_000);
    assert!(waiter.blocked.is_some(), "nothing to pop: the waiter blocks");
    run(&mut state, &mut pusher, &["RPUSH", "q", "x", "y"], 1_000);
    let commands: Vec<Vec<u8>> = state.propagation.take().iter().map(|change| change.request.wire().to_vec()).collect();
    let expected: Vec<Vec<u8>> = [&["RPUSH", "q", "x", "y"][..], &["LPOP", "q"]]
        .iter()
        .map(|args| Request::from_args(args.iter()).wire().to_vec())
        .collect();
    assert_eq!(commands, expected);
}

#[test]
fn a_migrated_key_goes_as_standard_commands() {
    let now = 1_000_000u64;
    let (mut source, mut client) = fresh(7, now);
    run(&mut source, &mut client, &["RPUSH", "l", "a", "b"], now);
    let mut dumped = run(&mut source, &mut client, &["DUMP", "l"], now);
    let Ok(Some(resp::Frame::Bulk(payload))) = resp::Decoder::new(resp::Limits::default()).decode(&mut dumped) else {
        panic!("DUMP")
    };
    let (mut target, mut target_client) = fresh(8, now);
    target.propagate_changes();
    let score = |value: f64| value.to_le_bytes().to_vec();
    let messages: Vec<Vec<Vec<u8>>> = vec![
        vec![b"SLOTSRESTORE-ASYNC".to_vec(), b"select".to_vec(), b"2".to_vec()],
        vec![b"SLOTSRESTORE-ASYNC".to_vec(), b"string".to_vec(), b"s".to_vec(), b"0".to_vec(), b"v".to_vec()],
        vec![b"SLOTSRESTORE-ASYNC".to_vec(), b"object".to_vec(), b"o".to_vec(), b"60000".to_vec(), payload.to_vec()],
        vec![
            b"SLOTSRESTORE-ASYNC".to_vec(),
            b"list".to_vec(),
            b"big".to_vec(),
            b"30000".to_vec(),
            b"4".to_vec(),
            b"1".to_vec(),
            b"2".to_vec(),
        ],
        vec![
            b"SLOTSRESTORE-ASYNC".to_vec(),
            b"list".to_vec(),
            b"big".to_vec(),
            b"0".to_vec(),
            b"4".to_vec(),
            b"3".to_vec(),
            b"4".to_vec(),
        ],
        vec![
            b"SLOTSRESTORE-ASYNC".to_vec(),
            b"hash".to_vec(),
            b"h".to_vec(),
            b"0".to_vec(),
            b"1".to_vec(),
            b"f".to_vec(),
            b"v".to_vec(),
        ],
        vec![
            b"SLOTSRESTORE-ASYNC".to_vec(),
            b"dict".to_vec(),
            b"set".to_vec(),
            b"0".to_vec(),
            b"2".to_vec(),
            b"x".to_vec(),
            b"y".to_vec(),
        ],
        vec![
            b"SLOTSRESTORE-ASYNC".to_vec(),
            b"zset".to_vec(),
            b"z".to_vec(),
            b"0".to_vec(),
            b"2".to_vec(),
            b"m".to_vec(),
            score(0.1),
            b"n".to_vec(),
            score(-2.5e300),
        ],
        vec![b"SLOTSRESTORE-ASYNC".to_vec(), b"expire".to_vec(), b"s".to_vec(), b"45000".to_vec()],
        vec![b"SLOTSRESTORE-ASYNC".to_vec(), b"delete".to_vec(), b"set".to_vec()],
    ];
    for message in &messages {
        let reply = run(&mut target, &mut target_client, message, now);
        assert!(
            reply.starts_with(b"*3\r\n$22\r\nSLOTSRESTORE-ASYNC-ACK\r\n$1\r\n0"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    let stream = target.propagation.take();
    assert!(
        stream.iter().all(|change| !change.request.name().eq_ignore_ascii_case(b"SLOTSRESTORE-ASYNC")),
        "{stream:?}"
    );
    let later = now + 5_000;
    let (mut replica, mut replica_client) = fresh(9, later);
    for db in replica.keyspace.dbs_mut() {
        db.set_lazy_expiry(false);
    }
    for change in &stream {
        run(&mut replica, &mut replica_client, &["SELECT".into(), change.db.to_string()], later);
        let args: Vec<Vec<u8>> = change.request.args().map(<[u8]>::to_vec).collect();
        let reply = run(&mut replica, &mut replica_client, &args, later);
        assert!(!reply.starts_with(b"-"), "{:?}: {}", change.request, String::from_utf8_lossy(&reply));
    }
    // The sorted set the target built chunk by chunk is a skiplist, the replayed one a listpack:
    // compare it by content, everything else byte for byte.
    let without_z = |keyspace: &Keyspace| -> Vec<Stored> {
        contents(keyspace, later).into_iter().filter(|stored| stored.1 != b"z").collect()
    };
    assert_eq!(without_z(&replica.keyspace), without_z(&target.keyspace));
    assert_eq!(without_z(&target.keyspace).len(), 4, "s, o, big, h in db 2");
    let range = ["ZRANGE", "z", "0", "-1", "WITHSCORES"];
    run(&mut replica, &mut replica_client, &["SELECT", "2"], later);
    run(&mut target, &mut target_client, &["SELECT", "2"], later);
    assert_eq!(
        run(&mut replica, &mut replica_client, &range, later),
        run(&mut target, &mut target_client, &range, later)
    );
}

/// Keys evicted under `maxmemory` go to the stream as `DEL`s, each on its own, before the write
/// that needed the room: a replay (with no limit of its own) ends with the same keys.
#[test]
fn evictions_replay_as_deletions() {
    for policy in ["allkeys-lru", "allkeys-random", "volatile-ttl"] {
        let (mut source, mut client) = fresh(11, 1_000);
        // Room for about a thousand of the two thousand keys written, above the empty server's own.
        let limit = (server::evict::used_memory(&source) + 200_000).to_string();
        for (name, value) in [("maxmemory-policy", policy), ("maxmemory", limit.as_str())] {
            let reply = run(&mut source, &mut client, &["CONFIG", "SET", name, value], 1_000);
            assert_eq!(&reply[..], b"+OK\r\n", "CONFIG SET {name} {value}");
        }
        source.propagate_changes();
        for index in 0..2_000u64 {
            let key = format!("key:{index}");
            let value = "v".repeat(100);
            run(&mut source, &mut client, &["SET", &key, &value, "EX", "100000"], 1_000 + index);
        }
        let evicted = source.stats.evicted_keys;
        assert!(evicted > 0, "{policy}: the limit evicted keys");
        let stream = source.propagation.take();
        let (mut replica, mut replica_client) = fresh(12, 3_000);
        for change in &stream {
            run(&mut replica, &mut replica_client, &["SELECT".into(), change.db.to_string()], 3_000);
            let args: Vec<Vec<u8>> = change.request.args().map(<[u8]>::to_vec).collect();
            let reply = run(&mut replica, &mut replica_client, &args, 3_000);
            assert!(!reply.starts_with(b"-"), "{policy}: {:?}: {}", change.request, String::from_utf8_lossy(&reply));
        }
        assert_eq!(
            contents(&replica.keyspace, 3_000),
            contents(&source.keyspace, 3_000),
            "{policy}: {evicted} evicted"
        );
    }
}
