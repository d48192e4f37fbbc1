//! Hash commands against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn hash_basics() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "HSET h a 1 b 2 c 3",
        "HSET h a 1",
        "HSET h x",
        "HMSET h d 4",
        "HDEL h b",
        "HGETALL h",
        "HSET h b 2",
        "HGETALL h",
        "HKEYS h",
        "HVALS h",
        "OBJECT ENCODING h",
        "HGET h a",
        "HGET h zz",
        "HMGET h a zz c",
        "HLEN h",
        "HSTRLEN h a",
        "HSTRLEN h zz",
        "HEXISTS h a",
        "HEXISTS h zz",
        "HSETNX h a 9",
        "HSETNX h q 9",
        "HSETNX fresh f v",
        "HDEL h a b c d q zz",
        "EXISTS h",
        "HGET missing f",
        "HMGET missing a b",
        "HLEN missing",
        "HKEYS missing",
        "HGETALL missing",
        "HDEL missing f",
        "TYPE fresh",
    ])
    .await;
}

#[tokio::test]
async fn hash_encodings_and_order() {
    let mut pair = Pair::start().await;
    pair.check("HSET big f aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    pair.check("OBJECT ENCODING big").await;
    pair.check("HSET many f0 v").await;
    for index in 1..=512 {
        pair.check(&format!("HSET many f{index} v")).await;
    }
    pair.check("OBJECT ENCODING many").await;
    pair.check_with("HGETALL many", Compare::Pairs).await;
    pair.check_all(&["CONFIG SET hash-max-listpack-entries 4", "HSET small a 1 b 2 c 3 d 4", "OBJECT ENCODING small"])
        .await;
    pair.check_all(&["HSET small e 5", "OBJECT ENCODING small", "HDEL small a b c d", "OBJECT ENCODING small"]).await;
}

#[tokio::test]
async fn hash_counters() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "HSET h a 1 s abc",
        "HINCRBY h a x",
        "HINCRBY h a 9223372036854775807",
        "HINCRBY h new 5",
        "HINCRBY h s 1",
        "HINCRBY h a -1",
        "HINCRBYFLOAT h a 0.5",
        "HINCRBYFLOAT h z x",
        "HINCRBYFLOAT h s 1",
        "HINCRBYFLOAT h a inf",
        "HINCRBYFLOAT h f 0.1",
        "HINCRBYFLOAT h f 0.2",
        "HINCRBYFLOAT h f 1e308",
        "HINCRBYFLOAT h f 1e308",
        "HGET h f",
        "OBJECT ENCODING h",
        "HINCRBYFLOAT nokey f 2.5",
        "HGETALL nokey",
    ])
    .await;
    // The 309-digit value made the hash a hashtable, whose order Redis leaves unspecified.
    pair.check_with("HGETALL h", Compare::Pairs).await;
}

#[tokio::test]
async fn hash_random_and_scan() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "HSET h a 1 b 2 c 3",
        "HRANDFIELD h 0",
        "HRANDFIELD missing",
        "HRANDFIELD missing 3",
        "HRANDFIELD h x",
        "HRANDFIELD h 1 FOO",
        "HRANDFIELD h 1 WITHVALUES x",
        "HRANDFIELD h 3",
        "HRANDFIELD h 10",
        "HRANDFIELD h 10 WITHVALUES",
        "HSCAN h 0",
        "HSCAN h x",
        "HSCAN h 0 COUNT 0",
        "HSCAN h 0 NOVALUES",
        "HSCAN h 0 MATCH b*",
        "HSCAN missing 0",
    ])
    .await;
    // Random picks differ between servers; their shape and size do not.
    for line in
        ["HRANDFIELD h", "HRANDFIELD h 2", "HRANDFIELD h -5", "HRANDFIELD h -5 WITHVALUES", "HRANDFIELD h 2 WITHVALUES"]
    {
        let (theirs, ours) = pair.both(line).await;
        pair.assert_same(line, &shape(&theirs), &shape(&ours), Compare::Exact);
    }
}

/// A reply with every string replaced by its length class, for replies whose content is random.
fn shape(frame: &resp::Frame) -> resp::Frame {
    match frame {
        resp::Frame::Bulk(_) => resp::Frame::Bulk(bytes::Bytes::from_static(b"?")),
        resp::Frame::Array(items) => resp::Frame::Array(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn hashes_and_wrong_types() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET str x",
        "HSET str a 1",
        "HGET str a",
        "HGETALL str",
        "HLEN str",
        "HDEL str a",
        "HINCRBY str a 1",
        "HSCAN str 0",
        "HSET h a 1",
        "GET h",
        "INCR h",
        "APPEND h x",
        "TYPE h",
    ])
    .await;
}

#[tokio::test]
async fn hashes_over_resp3() {
    let mut pair = Pair::start().await;
    pair.resp3().await;
    pair.check_all(&[
        "HSET h a 1 b 2",
        "HGETALL h",
        "HGETALL missing",
        "HKEYS h",
        "HRANDFIELD h 5 WITHVALUES",
        "HSCAN h 0",
        "HINCRBYFLOAT h a 1.5",
    ])
    .await;
}

/// Found by the generated sequences: `HSCAN` looks the key up before it reads its options.
#[tokio::test]
async fn hscan_looks_the_key_up_first() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET str v",
        "HSET h f v",
        "HSCAN missing 0 x",
        "HSCAN str 0 x",
        "HSCAN h 0 x",
        "HSCAN missing x",
    ])
    .await;
}
