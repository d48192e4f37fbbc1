//! Set commands against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn set_basics_and_intsets() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SADD n 3 1 2 -5 2",
        "SMEMBERS n",
        "OBJECT ENCODING n",
        "SISMEMBER n 2",
        "SISMEMBER n 02",
        "SMISMEMBER n 1 9 3",
        "SCARD n",
        "SREM n 1 9",
        "SMEMBERS n",
        "SADD n x",
        "OBJECT ENCODING n",
        "SADD w a b c",
        "OBJECT ENCODING w",
        "SADD w 1",
        "SCARD w",
        "SREM w a b c 1",
        "EXISTS w",
        "SMEMBERS missing",
        "SISMEMBER missing a",
        "SMISMEMBER missing a b",
        "SCARD missing",
        "SREM missing a",
        "SADD s",
    ])
    .await;
    pair.check_with("SMEMBERS n", Compare::Unordered).await;
    pair.check_all(&[
        "CONFIG SET set-max-intset-entries 3",
        "SADD t 1 2 3",
        "OBJECT ENCODING t",
        "SADD t 4",
        "OBJECT ENCODING t",
    ])
    .await;
}

#[tokio::test]
async fn set_algebra() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SADD a 1 2 3 4",
        "SADD b 3 4 5",
        "SADD c 4 x",
        "SINTER a b",
        "SINTER a b c",
        "SINTER a missing",
        "SUNION a b",
        "SUNION missing b",
        "SDIFF a b",
        "SDIFF a b c",
        "SDIFF missing a",
        "SINTERSTORE d a b",
        "SMEMBERS d",
        "OBJECT ENCODING d",
        "SUNIONSTORE d a b",
        "SMEMBERS d",
        "SDIFFSTORE d a b",
        "SMEMBERS d",
        "SDIFFSTORE d missing",
        "EXISTS d",
        "SINTERSTORE d a missing",
        "EXISTS d",
        "SINTERCARD 2 a b",
        "SINTERCARD 2 a b LIMIT 1",
        "SINTERCARD 2 a b LIMIT 0",
        "SINTERCARD 0 a",
        "SINTERCARD x a",
        "SINTERCARD 1 a LIMIT -1",
        "SINTERCARD 3 a b",
        "SINTERCARD 1 a FOO 1",
        "SINTERCARD 1 a LIMIT",
        "SET str v",
        "SINTER a str",
        "SUNION a str",
        "SDIFF str a",
        "SINTERSTORE d a str",
        "SINTERCARD 2 a str",
    ])
    .await;
    for line in ["SUNION a c", "SINTER c a", "SDIFF c a", "SUNIONSTORE e a c"] {
        pair.check_with(line, Compare::Unordered).await;
    }
    pair.check_with("SMEMBERS e", Compare::Unordered).await;
}

#[tokio::test]
async fn set_moves_pops_and_random() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SADD s a b c",
        "SMOVE s s a",
        "SMOVE s s zz",
        "SMOVE s t a",
        "SMEMBERS t",
        "SMOVE s t zz",
        "SMOVE missing t a",
        "SET str v",
        "SMOVE s str b",
        "SMOVE str s b",
        "SMOVE missing str b",
        "SPOP s -1",
        "SPOP missing",
        "SPOP missing 2",
        "SPOP s 0",
        "SPOP s 1 2",
        "SRANDMEMBER missing",
        "SRANDMEMBER missing 3",
        "SRANDMEMBER s 0",
        "SRANDMEMBER s x",
        "SRANDMEMBER s 1 2",
        "SADD one only",
        "SPOP one",
        "EXISTS one",
        "SADD all 1 2 3",
        "SPOP all 10",
        "EXISTS all",
    ])
    .await;
    pair.check("SADD r a b c d").await;
    for line in ["SRANDMEMBER r", "SRANDMEMBER r 2", "SRANDMEMBER r -6", "SPOP r", "SPOP r 2"] {
        let (theirs, ours) = pair.both(line).await;
        pair.assert_same(line, &shape(&theirs), &shape(&ours), Compare::Exact);
    }
    pair.check("SCARD r").await;
}

fn shape(frame: &resp::Frame) -> resp::Frame {
    match frame {
        resp::Frame::Bulk(_) => resp::Frame::Bulk(bytes::Bytes::from_static(b"?")),
        resp::Frame::Array(items) => resp::Frame::Array(items.iter().map(shape).collect()),
        resp::Frame::Set(items) => resp::Frame::Set(items.iter().map(shape).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn set_scan_and_resp3() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SADD n 5 3 1",
        "SSCAN n 0",
        "SSCAN n 0 MATCH 3*",
        "SSCAN n x",
        "SSCAN missing 0",
        "SSCAN n 0 COUNT 0",
    ])
    .await;
    pair.resp3().await;
    pair.check_all(&[
        "SMEMBERS n",
        "SINTER n n",
        "SUNION n missing",
        "SPOP missing 3",
        "SRANDMEMBER missing 2",
        "SPOP n 10",
    ])
    .await;
}

/// Found by the generated sequences: Redis' order of checks and its wording for counts.
#[tokio::test]
async fn set_argument_checks_in_redis_order() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET str v",
        "SADD s m",
        "SPOP s x",
        "SPOP missing x",
        "SPOP s -1 x",
        "SRANDMEMBER s x y",
        "SSCAN missing 0 x",
        "SSCAN str 0 x",
        "SSCAN s 0 x",
        "SSCAN missing x",
        "SINTERCARD 1 s LIMIT x",
        "SINTERCARD 1 str LIMIT x",
        "SINTERCARD 1 s LIMIT -1",
    ])
    .await;
}
