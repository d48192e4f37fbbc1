//! `DUMP` and `RESTORE` against redis-server 7.0: values of every type and encoding move from
//! Redis to us and from us to Redis with the same contents, our payloads are Redis' bytes where
//! our value has Redis' shape, and damaged or crafted payloads get Redis' replies.

use resp::Frame;
use server::rdb::crc64::crc64;
use server::rdb::listpack::ListpackWriter;
use server::rdb::write_string;
use server::{EvictionPolicy, ServerConfig};

use crate::harness::{Compare, Pair, show, text};

/// One value to move: the commands that build it at `k`, and whether our `DUMP` of it must be
/// Redis' bytes (see `rdb::encode` for the cases that cannot be).
struct Case {
    name: &'static str,
    setup: Vec<String>,
    identical: bool,
}

fn case(name: &'static str, setup: &[&str], identical: bool) -> Case {
    Case { name, setup: setup.iter().map(|line| line.to_string()).collect(), identical }
}

fn args(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|part| part.to_vec()).collect()
}

fn bulk(frame: &Frame, what: &str) -> Vec<u8> {
    match frame {
        Frame::Bulk(bytes) => bytes.to_vec(),
        other => panic!("{what}: expected a bulk reply, got {}", show(other)),
    }
}

/// The payload of `key` from each server.
async fn dump_both(pair: &mut Pair, key: &str) -> (Vec<u8>, Vec<u8>) {
    let (theirs, ours) = pair.both(&format!("DUMP {key}")).await;
    (bulk(&theirs, "redis DUMP"), bulk(&ours, "our DUMP"))
}

/// Sends the same binary command to both and requires the same reply.
async fn check_args(pair: &mut Pair, parts: &[&[u8]], label: &str) -> Frame {
    let (theirs, ours) = pair.both_args(&args(parts), label).await;
    pair.assert_same(label, &theirs, &ours, Compare::Exact);
    theirs
}

/// Restores `payload` at `key` on both servers, requiring the same reply.
async fn restore_both(pair: &mut Pair, key: &str, ttl: &str, payload: &[u8], options: &[&str]) -> Frame {
    let mut parts: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), ttl.as_bytes(), payload];
    parts.extend(options.iter().map(|option| option.as_bytes()));
    let label = format!("RESTORE {key} {ttl} <{} bytes> {}", payload.len(), options.join(" "));
    check_args(pair, &parts, &label).await
}

/// Compares what `key` holds on both servers: type, encoding, contents, TTL.
async fn check_contents(pair: &mut Pair, key: &str) {
    let kind = pair.check(&format!("TYPE {key}")).await;
    let encoding = text(&pair.check(&format!("OBJECT ENCODING {key}")).await);
    match &kind {
        Frame::Simple(name) => match &name[..] {
            b"string" => {
                pair.check(&format!("GET {key}")).await;
            }
            b"list" => {
                pair.check(&format!("LRANGE {key} 0 -1")).await;
            }
            b"set" => {
                pair.check_with(&format!("SMEMBERS {key}"), Compare::Unordered).await;
            }
            b"zset" => {
                pair.check(&format!("ZRANGE {key} 0 -1 WITHSCORES")).await;
            }
            b"hash" => {
                let compare = if encoding == "listpack" { Compare::Exact } else { Compare::Pairs };
                pair.check_with(&format!("HGETALL {key}"), compare).await;
            }
            b"none" => {}
            other => panic!("unexpected type {}", String::from_utf8_lossy(other)),
        },
        other => panic!("TYPE replied {}", show(other)),
    }
    pair.check_with(&format!("PTTL {key}"), Compare::Near(100)).await;
}

/// Our indexes agree with our keys (memory charges included).
async fn check_our_indexes(pair: &mut Pair) {
    let (_, ours) = pair.both_lines("PING", "SLOTSCHECK").await;
    assert_eq!(ours, Frame::Simple("OK".into()), "SLOTSCHECK: {}", show(&ours));
}

/// Builds the case's value at `k` on both, moves each server's payload into both, and compares.
async fn move_value(pair: &mut Pair, case: &Case) {
    pair.check("DEL k from-redis from-ours").await;
    for line in &case.setup {
        let reply = pair.check(line).await;
        assert!(!matches!(reply, Frame::Error(_)), "{}: `{line}` failed: {}", case.name, show(&reply));
    }
    let (theirs, ours) = dump_both(pair, "k").await;
    if case.identical {
        assert!(theirs == ours, "{}: DUMP differs\n  redis: {theirs:?}\n  ours:  {ours:?}", case.name);
    }
    for (key, payload) in [("from-redis", &theirs), ("from-ours", &ours)] {
        let reply = restore_both(pair, key, "0", payload, &[]).await;
        assert_eq!(reply, Frame::Simple("OK".into()), "{}: RESTORE {key}: {}", case.name, show(&reply));
    }
    for key in ["k", "from-redis", "from-ours"] {
        check_contents(pair, key).await;
    }
    if case.identical {
        // What we restored from Redis' payload dumps back to Redis' bytes.
        let (theirs, ours) = dump_both(pair, "from-redis").await;
        assert!(theirs == ours, "{}: DUMP after RESTORE differs\n  redis: {theirs:?}\n  ours:  {ours:?}", case.name);
    }
}

/// A deterministic mix of letters, unlikely to compress.
fn noise(len: usize, seed: u64) -> String {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(b'!' + ((state >> 33) % 90) as u8)
        })
        .filter(|c| !matches!(c, '"' | '\'' | '\\'))
        .collect()
}

/// `command key` followed by `items`, in commands of at most 100 items.
fn chunked(command: &str, items: &[String]) -> Vec<String> {
    items.chunks(100).map(|chunk| format!("{command} k {}", chunk.join(" "))).collect()
}

#[tokio::test]
async fn strings_move_both_ways_with_redis_bytes() {
    let mut pair = Pair::start().await;
    let compressible = "ab".repeat(60);
    let runs = format!("{}{}{}", "x".repeat(30), "yz".repeat(40), "x".repeat(200));
    let random = noise(300, 1);
    let big = format!("{}{}", "0123456789".repeat(2000), noise(500, 2));
    let cases = [
        case("short", &["SET k hello"], true),
        case("small integer", &["SET k 12"], true),
        case("negative 8-bit", &["SET k -128"], true),
        case("16-bit", &["SET k 300"], true),
        case("32-bit", &["SET k -2147483648"], true),
        case("64-bit", &["SET k 4294967296"], true),
        case("i64::MIN", &["SET k -9223372036854775808"], true),
        case("non-canonical integer", &["SET k 0123"], true),
        case("float", &["SET k 3.14"], true),
        case("incrbyfloat", &["SET k 1", "INCRBYFLOAT k 0.5"], true),
        case("appended", &["SET k x", "APPEND k 12"], true),
        case("setrange digits", &["SETRANGE k 0 1234"], true),
        case("21 bytes", &["SET k aaaaaaaaaaaaaaaaaaaaa"], true),
        case("compressible", &[&format!("SET k {compressible}")], true),
        case("runs", &[&format!("SET k {runs}")], true),
        case("incompressible", &[&format!("SET k {random}")], true),
        case("20 KB", &[&format!("SET k {big}")], true),
        case("with expiry", &["SET k v PX 100000"], true),
    ];
    for case in &cases {
        move_value(&mut pair, case).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn binary_strings_move_both_ways() {
    let mut pair = Pair::start().await;
    let values: [Vec<u8>; 4] =
        [Vec::new(), b"\x00\xff\r\n".to_vec(), [0u8; 100].to_vec(), (0..=255u8).cycle().take(1000).collect()];
    for value in &values {
        check_args(&mut pair, &[b"SET", b"k", value], "SET k <binary>").await;
        let (theirs, ours) = dump_both(&mut pair, "k").await;
        assert_eq!(theirs, ours, "binary value of {} bytes", value.len());
        restore_both(&mut pair, "from-ours", "0", &ours, &["REPLACE"]).await;
        check_contents(&mut pair, "from-ours").await;
    }
}

#[tokio::test]
async fn lists_move_both_ways() {
    let mut pair = Pair::start().await;
    let varied: Vec<String> = (0..3000)
        .map(|index| match index % 50 {
            0 => noise(300, index),
            7 | 21 | 35 => format!("{index}-{}", "v".repeat(100)),
            13 => (index * 1_000_003).to_string(),
            _ => format!("e{index}"),
        })
        .collect();
    let mut big_rpush = vec!["DEL k".to_string()];
    big_rpush.extend(chunked("RPUSH", &varied));
    let mut big_lpush = vec!["DEL k".to_string()];
    big_lpush.extend(chunked("LPUSH", &varied));
    let boundary: Vec<String> = (0..200).map(|index| format!("{index:0>60}")).collect();
    let mut near_boundary = vec!["DEL k".to_string()];
    near_boundary.extend(chunked("RPUSH", &boundary));
    let huge = "h".repeat(9000);
    let cases = [
        case("small", &["RPUSH k a b c 1 2 300 -5 70000 5000000000 - 0123"], true),
        case("lpush small", &["LPUSH k a b c 1 2 3"], true),
        case("element over 8 KB", &[&format!("RPUSH k a {huge} b {huge}")], true),
        Case { name: "3000 rpush", setup: big_rpush, identical: true },
        Case { name: "node boundaries", setup: near_boundary, identical: true },
        Case { name: "3000 lpush", setup: big_lpush, identical: false },
        case("popped", &["RPUSH k a b c d e", "LPOP k", "RPOP k"], true),
    ];
    for case in &cases {
        move_value(&mut pair, case).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn hashes_move_both_ways() {
    let mut pair = Pair::start().await;
    let many: Vec<String> = (0..600).map(|index| format!("field{index} {index}")).collect();
    let mut large = vec!["DEL k".to_string()];
    large.extend(chunked("HSET", &many));
    let long_value = "v".repeat(65);
    let long_field = "f".repeat(64);
    let cases = [
        case("small", &["HSET k a 1 b 2 c hello d -5000 e 3.5"], true),
        case("reordered", &["HSET k a 1 b 2 c 3 d 4", "HDEL k b", "HSET k b 5 a 6"], true),
        case("64-byte field", &[&format!("HSET k {long_field} x")], true),
        case("compressible listpack", &[&format!("HSET k a {} b {}", "x".repeat(60), "y".repeat(60))], true),
        Case { name: "600 fields", setup: large, identical: false },
        case("long value", &[&format!("HSET k a 1 b {long_value}")], false),
    ];
    for case in &cases {
        move_value(&mut pair, case).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn sets_move_both_ways() {
    let mut pair = Pair::start().await;
    let ints: Vec<String> = (0..600).map(|index| (index * 7 - 2000).to_string()).collect();
    let mut large = vec!["DEL k".to_string()];
    large.extend(chunked("SADD", &ints));
    let cases = [
        case("16-bit intset", &["SADD k 1 2 -3 32767 -32768"], true),
        case("32-bit intset", &["SADD k 1 100000 -70000"], true),
        case("64-bit intset", &["SADD k 1 5000000000 -9223372036854775808"], true),
        case("intset of 512", &[&format!("SADD k {}", ints[..512].join(" "))], true),
        // Redis keeps the 32-bit width after the wide member goes; we write the narrowest.
        case("narrowed intset", &["SADD k 1 2 100000", "SREM k 100000"], false),
        Case { name: "600 integers", setup: large, identical: false },
        case("strings", &["SADD k a b c 1 2"], false),
    ];
    for case in &cases {
        move_value(&mut pair, case).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn sorted_sets_move_both_ways() {
    let mut pair = Pair::start().await;
    let members: Vec<String> =
        (0..200).map(|index| format!("{} m{index}", (index as f64 * 3.0 - 100.0) / 4.0)).collect();
    let mut large = vec!["DEL k".to_string()];
    large.extend(chunked("ZADD", &members));
    let long_member = "m".repeat(65);
    let cases = [
        case(
            "small",
            &["ZADD k 1.5 a 0.1 b -0 c inf d -inf e 1e17 f 123456789012345678 g 3 h -2.5 i 1e-5 j 4096 k 70000 l"],
            true,
        ),
        case("ties", &["ZADD k 1 b 1 a 1 c 0 z"], true),
        case("compressible listpack", &[&format!("ZADD k 1 {} 2 {}", "x".repeat(60), "y".repeat(60))], true),
        Case { name: "200 members", setup: large, identical: true },
        case("long member", &[&format!("ZADD k 1 a 2 {long_member}")], true),
        // Compact when created (first member short): -0 is stored as 0 before the conversion.
        case("negative zero converted", &[&format!("ZADD k -0 a 1 {long_member}")], true),
        case("negative zero in a skiplist", &[&format!("ZADD k 1 {long_member} -0 a")], true),
    ];
    for case in &cases {
        move_value(&mut pair, case).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn ttls_and_options() {
    let mut pair = Pair::start().await;
    pair.check("RPUSH k a b c").await;
    let (payload, _) = dump_both(&mut pair, "k").await;
    restore_both(&mut pair, "t1", "100000", &payload, &[]).await;
    pair.check_with("PTTL t1", Compare::Near(100)).await;
    restore_both(&mut pair, "t2", "4102444800000", &payload, &["ABSTTL"]).await;
    pair.check("PEXPIRETIME t2").await;
    // An absolute TTL in the past creates nothing; with REPLACE it still deletes.
    restore_both(&mut pair, "t3", "1", &payload, &["ABSTTL"]).await;
    pair.check("EXISTS t3").await;
    pair.check("SET t4 old").await;
    restore_both(&mut pair, "t4", "1", &payload, &["ABSTTL", "REPLACE"]).await;
    pair.check("EXISTS t4").await;
    // A relative TTL that overflows the clock lands in the past.
    restore_both(&mut pair, "t5", "9223372036854775807", &payload, &[]).await;
    pair.check("EXISTS t5").await;
    // The key exists: BUSYKEY before anything else is looked at, unless REPLACE.
    restore_both(&mut pair, "k", "0", &payload, &[]).await;
    restore_both(&mut pair, "k", "-1", b"junk", &[]).await;
    restore_both(&mut pair, "k", "x", b"junk", &["REPLACE"]).await;
    restore_both(&mut pair, "k", "-1", b"junk", &["REPLACE"]).await;
    restore_both(&mut pair, "k", "0", &payload, &["REPLACE"]).await;
    // Option errors come first of all.
    for options in [
        &["FOO"][..],
        &["IDLETIME"],
        &["IDLETIME", "-1"],
        &["IDLETIME", "x"],
        &["FREQ", "256"],
        &["FREQ", "-1"],
        &["FREQ", "1", "IDLETIME", "2"],
        &["IDLETIME", "1", "FREQ", "2"],
        &["REPLACE", "ABSTTL", "FREQ"],
    ] {
        restore_both(&mut pair, "k", "-1", b"junk", options).await;
    }
    // Accepted options, and the one that does not fit the policy is ignored.
    restore_both(&mut pair, "i1", "0", &payload, &["IDLETIME", "1000", "IDLETIME", "2000", "REPLACE"]).await;
    pair.check_with("OBJECT IDLETIME i1", Compare::Near(2)).await;
    restore_both(&mut pair, "i2", "0", &payload, &["IDLETIME", "99999999999999"]).await;
    pair.check_with("OBJECT IDLETIME i2", Compare::Near(2)).await;
    restore_both(&mut pair, "i3", "0", &payload, &["FREQ", "200"]).await;
    pair.check_with("OBJECT IDLETIME i3", Compare::Near(2)).await;
    pair.check_all(&["DUMP", "DUMP a b", "DUMP missing", "RESTORE k 0", "RESTORE", "GET k"]).await;
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn frequencies_under_lfu() {
    let config = ServerConfig { maxmemory_policy: EvictionPolicy::AllkeysLfu, ..ServerConfig::default() };
    let mut pair = Pair::start_with(&["--maxmemory-policy", "allkeys-lfu"], config).await;
    pair.check("SET k v").await;
    let (payload, _) = dump_both(&mut pair, "k").await;
    restore_both(&mut pair, "f1", "0", &payload, &["FREQ", "100"]).await;
    pair.check("OBJECT FREQ f1").await;
    restore_both(&mut pair, "f2", "0", &payload, &["IDLETIME", "100"]).await;
    pair.check("OBJECT FREQ f2").await;
    restore_both(&mut pair, "f1", "0", &payload, &["FREQ", "0", "REPLACE"]).await;
    pair.check("OBJECT FREQ f1").await;
}

#[tokio::test]
async fn restoring_wakes_blocked_clients_and_touches_watched_keys() {
    let mut pair = Pair::start().await;
    pair.check("RPUSH src x y").await;
    let (list, _) = dump_both(&mut pair, "src").await;
    pair.check("ZADD zsrc 1 a 2 b").await;
    let (zset, _) = dump_both(&mut pair, "zsrc").await;

    let mut waiter = pair.connect().await;
    waiter.send("BLPOP l 0").await;
    pair.wait_blocked(1).await;
    restore_both(&mut pair, "l", "0", &list, &[]).await;
    waiter.check_reply("BLPOP l 0", Compare::Exact).await;
    pair.check("LRANGE l 0 -1").await;

    waiter.send("BZPOPMIN z 0").await;
    pair.wait_blocked(1).await;
    restore_both(&mut pair, "z", "0", &zset, &[]).await;
    waiter.check_reply("BZPOPMIN z 0", Compare::Exact).await;

    pair.check_all(&["WATCH w", "MULTI", "GET w"]).await;
    let mut other = pair.connect().await;
    let (theirs, ours) = other.both_args(&args(&[b"RESTORE", b"w", b"0", &list]), "RESTORE w").await;
    other.assert_same("RESTORE w", &theirs, &ours, Compare::Exact);
    pair.check("EXEC").await;
    check_our_indexes(&mut pair).await;
}

/// `payload` with its RDB version set to `version` and its checksum recomputed.
fn with_version(payload: &[u8], version: u16) -> Vec<u8> {
    seal(&payload[..payload.len() - 10], version)
}

/// An object sealed with a version and a valid checksum.
fn seal(object: &[u8], version: u16) -> Vec<u8> {
    let mut payload = object.to_vec();
    payload.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

#[tokio::test]
async fn damaged_payloads_get_redis_errors() {
    let mut pair = Pair::start().await;
    pair.check("HSET k a 1 b 2 c 3").await;
    let (payload, _) = dump_both(&mut pair, "k").await;
    for index in [0, payload.len() / 2, payload.len() - 9, payload.len() - 1] {
        let mut flipped = payload.clone();
        flipped[index] ^= 0x10;
        restore_both(&mut pair, "x", "0", &flipped, &[]).await;
    }
    for len in [0, 1, 9, 10, payload.len() - 1] {
        restore_both(&mut pair, "x", "0", &payload[..len], &[]).await;
    }
    restore_both(&mut pair, "x", "0", &with_version(&payload, 11), &[]).await;
    restore_both(&mut pair, "x", "0", &with_version(&payload, 0x10a), &[]).await;
    restore_both(&mut pair, "x", "0", &with_version(&payload, 9), &[]).await;
    check_contents(&mut pair, "x").await;
    let mut zeroed = payload.clone();
    let len = zeroed.len();
    zeroed[len - 8..].fill(0);
    restore_both(&mut pair, "x", "0", &zeroed, &["REPLACE"]).await;
}

/// Payloads no Redis writes today, each sealed with a valid checksum: older encodings Redis 7.0
/// still reads, and corrupt objects that Redis refuses when it sanitises payloads (as we always
/// do).
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let ziplist_list = b"\x14\x00\x00\x00\x0f\x00\x00\x00\x03\x00\x00\x01a\x03\xfd\x02\xc0\x2c\x01\xff".to_vec();
    let ziplist_pair = b"\x12\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01a\x03\x02bb\xff".to_vec();
    let ziplist_score = b"\x10\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01a\x03\xfd\xff".to_vec();
    let zipmap = b"\x02\x03foo\x03\x01barX\x01k\x01\x001\xff".to_vec();
    let with_blob = |kind: u8, blob: &[u8]| {
        let mut object = vec![kind, blob.len() as u8];
        object.extend_from_slice(blob);
        object
    };
    let mut quicklist = vec![14, 2];
    for _ in 0..2 {
        quicklist.push(ziplist_list.len() as u8);
        quicklist.extend_from_slice(&ziplist_list);
    }
    let mut bad_tail = ziplist_list.clone();
    bad_tail[4] = 0x0e;
    let mut bad_prevlen = ziplist_list.clone();
    bad_prevlen[13] = 0x04;
    let long_listpack = |elements: &[&[u8]]| {
        let mut listpack = ListpackWriter::new();
        elements.iter().for_each(|element| listpack.push(element));
        listpack.finish()
    };
    let with_string = |kind: u8, blob: &[u8]| {
        let mut object = vec![kind];
        write_string(&mut object, blob);
        object
    };
    let long = [b'v'; 100];
    vec![
        ("listpack hash with a long value", with_string(16, &long_listpack(&[b"f", &long]))),
        ("listpack zset with a long member", with_string(17, &long_listpack(&[&long, b"1"]))),
        ("hash with a long value", [&b"\x04\x01\x01f"[..], &with_string(0, &long)[1..]].concat()),
        ("list", b"\x01\x03\x01a\xc0\x05\xc1\x00\x01".to_vec()),
        ("set", b"\x02\x03\x01a\xc0\x05\x01b".to_vec()),
        ("set of integers", b"\x02\x03\xc0\x05\xc0\x03\x017".to_vec()),
        ("zset with text scores", b"\x03\x03\x01a\x031.5\x01b\xfe\x01c\x05-1e-3".to_vec()),
        ("zset text prefix", b"\x03\x01\x01a\x041.5x".to_vec()),
        ("zset text spaces", b"\x03\x01\x01a\x04  12".to_vec()),
        ("zset hex score", b"\x03\x01\x01a\x050x1p3".to_vec()),
        ("zset infinity", b"\x03\x01\x01a\x08infinity".to_vec()),
        ("hash", b"\x04\x02\x01f\x01v\x01g\xc0\x07".to_vec()),
        ("zset_2", b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x3f".to_vec()),
        ("zipmap", with_blob(9, &zipmap)),
        ("ziplist list", with_blob(10, &ziplist_list)),
        ("ziplist zset", with_blob(12, &ziplist_score)),
        ("ziplist hash", with_blob(13, &ziplist_pair)),
        ("quicklist of ziplists", quicklist),
        ("plain quicklist node", b"\x12\x01\x01\x03abc".to_vec()),
        ("length as encoding marker", b"\x01\xc1\x01x".to_vec()),
        ("64-bit length", b"\x00\x81\x00\x00\x00\x00\x00\x00\x00\x01Q".to_vec()),
        ("LZF of length 0", b"\x00\xc3\x01\x00A".to_vec()),
        ("trailing bytes", b"\x00\x01xjunk".to_vec()),
        ("empty list", b"\x01\x00".to_vec()),
        ("empty intset", b"\x0b\x08\x02\x00\x00\x00\x00\x00\x00\x00".to_vec()),
        ("unsorted intset", b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x01\x00".to_vec()),
        ("duplicate set members", b"\x02\x02\x01a\x01a".to_vec()),
        ("duplicate integer members", b"\x02\x02\xc0\x01\x011".to_vec()),
        ("duplicate hash fields", b"\x04\x02\x01a\x01b\x01a\x01c".to_vec()),
        (
            "duplicate listpack hash fields",
            b"\x10\x11\x11\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81a\x02\x02\x01\xff".to_vec(),
        ),
        ("odd listpack hash", b"\x10\x0a\x0a\x00\x00\x00\x01\x00\x81a\x02\xff".to_vec()),
        ("listpack count", b"\x10\x0c\x0c\x00\x00\x00\x03\x00\x81a\x02\x01\x01\xff".to_vec()),
        ("listpack backlen", b"\x10\x0c\x0c\x00\x00\x00\x02\x00\x81a\x03\x01\x01\xff".to_vec()),
        ("empty listpack hash", b"\x10\x07\x07\x00\x00\x00\x00\x00\xff".to_vec()),
        ("ziplist tail", with_blob(10, &bad_tail)),
        ("ziplist prevlen", with_blob(10, &bad_prevlen)),
        (
            "duplicate zset members",
            b"\x05\x02\x01a\x00\x00\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
        ),
        ("NaN score", b"\x03\x01\x01a\xfd".to_vec()),
        ("negative zero score", b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\x00\x80".to_vec()),
        ("binary NaN score", b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f".to_vec()),
        ("garbage text score", b"\x03\x01\x01a\x03abc".to_vec()),
        ("empty text score", b"\x03\x01\x01a\x00".to_vec()),
        ("unknown string encoding", b"\x00\xc4".to_vec()),
        ("unknown length encoding", b"\x00\x82".to_vec()),
        ("LZF shorter than claimed", b"\x00\xc3\x02\x05\x00a".to_vec()),
        ("unknown quicklist container", b"\x12\x01\x03\x01a".to_vec()),
        ("empty quicklist node", b"\x12\x01\x02\x00".to_vec()),
        ("stream", b"\x0f\x00".to_vec()),
        ("stream 2", b"\x13\x00".to_vec()),
        ("module", b"\x07\x00".to_vec()),
        ("type 8", b"\x08\x00".to_vec()),
        ("type 20", b"\x14\x00".to_vec()),
        ("truncated string", b"\x00\x30abc".to_vec()),
    ]
}

#[tokio::test]
async fn crafted_payloads_get_what_a_sanitising_redis_gives() {
    let mut pair = Pair::start_with(&["--sanitize-dump-payload", "yes"], ServerConfig::default()).await;
    for (name, object) in crafted() {
        let reply = restore_both(&mut pair, "x", "0", &seal(&object, 10), &["REPLACE"]).await;
        if reply == Frame::Simple("OK".into()) {
            check_contents(&mut pair, "x").await;
        } else {
            assert!(matches!(reply, Frame::Error(_)), "{name}: {}", show(&reply));
        }
        pair.check("DEL x").await;
    }
    // Ten zero bytes: version 0, a zero checksum that is right for two zero bytes, and an empty
    // string read from the footer itself.
    restore_both(&mut pair, "x", "0", &[0; 10], &[]).await;
    check_contents(&mut pair, "x").await;
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn restored_values_follow_the_servers_thresholds() {
    let mut source = Pair::start().await;
    source.check_all(&["HSET h a 1 b 2 c 3", "SADD s 1 2 3", "ZADD z 1 a 2 b 3 c", "RPUSH l a b c"]).await;
    let mut payloads = Vec::new();
    for key in ["h", "s", "z", "l"] {
        payloads.push((key, dump_both(&mut source, key).await));
    }
    let limits =
        ["--hash-max-listpack-entries", "2", "--set-max-intset-entries", "2", "--zset-max-listpack-entries", "2"];
    let config = ServerConfig {
        hash_max_listpack_entries: 2,
        set_max_intset_entries: 2,
        zset_max_listpack_entries: 2,
        ..ServerConfig::default()
    };
    let mut pair = Pair::start_with(&limits, config).await;
    for (key, (theirs, ours)) in &payloads {
        restore_both(&mut pair, &format!("{key}-redis"), "0", theirs, &[]).await;
        restore_both(&mut pair, &format!("{key}-ours"), "0", ours, &[]).await;
        check_contents(&mut pair, &format!("{key}-redis")).await;
        check_contents(&mut pair, &format!("{key}-ours")).await;
    }
    check_our_indexes(&mut pair).await;
}

#[tokio::test]
async fn command_info_matches_redis() {
    let mut pair = Pair::start().await;
    let (theirs, ours) = pair.both("COMMAND INFO dump restore").await;
    let head = |frame: &Frame| -> Vec<Vec<String>> {
        let Frame::Array(commands) = frame else { panic!("COMMAND INFO: {}", show(frame)) };
        commands
            .iter()
            .map(|command| match command {
                // Name, arity, flags, first key, last key, step.
                Frame::Array(fields) => fields.iter().take(6).map(show).collect(),
                other => panic!("COMMAND INFO entry: {}", show(other)),
            })
            .collect()
    };
    assert_eq!(head(&theirs), head(&ours));
}
