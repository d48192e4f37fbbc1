//! List commands (non-blocking) against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn push_pop_and_length() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RPUSH l a b c a b",
        "LPUSH l z y",
        "LRANGE l 0 -1",
        "LLEN l",
        "LPOP l",
        "RPOP l",
        "LPOP l 0",
        "LPOP l -1",
        "LPOP l 2",
        "RPOP l 10",
        "EXISTS l",
        "LPOP missing",
        "LPOP missing 2",
        "RPOP missing 0",
        "LPOP l 1 2",
        "LPUSHX missing a",
        "RPUSHX missing a",
        "RPUSH x 1",
        "LPUSHX x 0",
        "RPUSHX x 2 3",
        "LRANGE x 0 -1",
        "OBJECT ENCODING x",
        "LLEN missing",
        "LPUSH",
        "LPUSH k",
    ])
    .await;
}

#[tokio::test]
async fn indexes_ranges_and_trims() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RPUSH l a b c d e",
        "LINDEX l 0",
        "LINDEX l -1",
        "LINDEX l 5",
        "LINDEX l -6",
        "LINDEX l x",
        "LINDEX missing 0",
        "LSET l 1 B",
        "LSET l -1 E",
        "LSET l 10 x",
        "LSET missing 0 x",
        "LSET l x y",
        "LRANGE l 0 -1",
        "LRANGE l -3 -2",
        "LRANGE l 3 1",
        "LRANGE l -100 100",
        "LRANGE l 10 20",
        "LRANGE l x 1",
        "LRANGE missing 0 -1",
        "LTRIM l 1 -2",
        "LRANGE l 0 -1",
        "LTRIM l -100 100",
        "LTRIM l 5 10",
        "EXISTS l",
        "LTRIM missing 0 1",
        "LTRIM l x 1",
    ])
    .await;
}

#[tokio::test]
async fn removal_insertion_and_search() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RPUSH l a b a c a b",
        "LREM l 2 a",
        "LRANGE l 0 -1",
        "LREM l -1 b",
        "LRANGE l 0 -1",
        "LREM l 0 zz",
        "LREM l x a",
        "LREM missing 0 a",
        "LINSERT l BEFORE c X",
        "LINSERT l AFTER c Y",
        "LINSERT l BEFORE zz x",
        "LINSERT missing BEFORE a x",
        "LINSERT l MIDDLE a x",
        "LRANGE l 0 -1",
        "DEL l",
        "RPUSH l a b c a b c c",
        "LPOS l c",
        "LPOS l c RANK 2",
        "LPOS l c RANK -1",
        "LPOS l c RANK -2",
        "LPOS l c RANK 4",
        "LPOS l c COUNT 0",
        "LPOS l c COUNT 2 RANK -1",
        "LPOS l c COUNT 0 RANK 2",
        "LPOS l a COUNT 0 MAXLEN 1",
        "LPOS l c COUNT 0 MAXLEN 1",
        "LPOS l c RANK 0",
        "LPOS l c COUNT -1",
        "LPOS l c MAXLEN -1",
        "LPOS l c FOO 1",
        "LPOS l c RANK",
        "LPOS l zz",
        "LPOS l zz COUNT 1",
        "LPOS missing a",
        "LPOS missing a COUNT 0",
    ])
    .await;
}

#[tokio::test]
async fn moves_and_multi_pops() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RPUSH l a b c",
        "RPOPLPUSH l l2",
        "LMOVE l l2 LEFT RIGHT",
        "LMOVE l l RIGHT LEFT",
        "LRANGE l 0 -1",
        "LRANGE l2 0 -1",
        "LMOVE l l2 UP LEFT",
        "LMOVE missing l2 LEFT LEFT",
        "RPOPLPUSH missing l2",
        "SET str v",
        "LMOVE l str LEFT LEFT",
        "LMOVE str l LEFT LEFT",
        "LMOVE missing str LEFT LEFT",
        "LMOVE l l2 LEFT LEFT",
        "EXISTS l",
        "LMPOP 0 l LEFT",
        "LMPOP 1 l MIDDLE",
        "LMPOP 2 l LEFT",
        "LMPOP 1 l2 LEFT COUNT 0",
        "LMPOP 1 missing LEFT",
        "LMPOP 2 missing l2 RIGHT",
        "LMPOP 2 missing l2 LEFT COUNT 10",
        "LMPOP 1 l2 LEFT COUNT",
        "LMPOP 1 l2 LEFT FOO 1",
        "LMPOP x l LEFT",
        "RPUSH str2 x",
        "LMPOP 2 str str2 LEFT",
        "LPUSH str x",
        "LLEN str",
    ])
    .await;
}

#[tokio::test]
async fn lists_over_resp3() {
    let mut pair = Pair::start().await;
    pair.resp3().await;
    pair.check_all(&[
        "RPUSH l a b",
        "LPOP missing 2",
        "LPOP missing",
        "LMPOP 1 missing LEFT",
        "LMPOP 1 l LEFT COUNT 5",
        "LPOS missing a",
        "LRANGE l 0 -1",
    ])
    .await;
}

/// Found by the generated sequences: a copied list counted its memory from the original's
/// element capacities, and popping the copy's long elements underflowed the count (a crash in
/// debug builds).
#[tokio::test]
async fn a_copied_list_pops_to_empty() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "LPUSH a 0 9223372036854775807 x",
        "LPOP a",
        "COPY a b",
        "LPOP b",
        "LPOP b",
        "EXISTS b",
        "HSET h 9223372036854775807-and-more 9223372036854775807-and-more",
        "COPY h h2",
        "HDEL h2 9223372036854775807-and-more",
        "SADD s 9223372036854775807-and-more x",
        "COPY s s2",
    ])
    .await;
    pair.check_with("SPOP s2 10", Compare::Unordered).await;
    pair.check_all(&["ZADD z 1 9223372036854775807-and-more", "COPY z z2", "ZPOPMIN z2", "DBSIZE"]).await;
}

/// Found by the generated sequences: Redis looks the key up before it reads an index, checks
/// `LPOP`'s argument count first, and words bad counts its own way.
#[tokio::test]
async fn list_argument_checks_in_redis_order() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET str v",
        "RPUSH l a b c",
        "LINDEX missing x",
        "LINDEX str x",
        "LINDEX l x",
        "LSET missing x v",
        "LSET str x v",
        "LSET l x v",
        "LPOP l -1 x",
        "LPOP missing x",
        "LPOP l x",
        "RPOP l 1 x",
        "LPOS l a COUNT x",
        "LPOS l a MAXLEN x",
        "LPOS l a COUNT -1",
        "LMPOP 1 l LEFT COUNT x",
        "LMPOP 1 missing LEFT COUNT 0",
    ])
    .await;
}
