//! Blocking list and sorted set commands against redis-server 7.0: served in order by other
//! clients' writes, timeouts, and the corner cases of who gets what.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn data_already_there_is_served_at_once() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RPUSH l a b c",
        "BLPOP missing l 0",
        "BRPOP l 0",
        "BLMOVE l dst LEFT RIGHT 0",
        "BRPOPLPUSH missing dst 0.01",
        "BLMPOP 0 2 missing dst RIGHT COUNT 5",
        "ZADD z 1 a 2 b 3 c",
        "BZPOPMIN z 0",
        "BZPOPMAX z 0",
        "BZMPOP 0 1 z MIN COUNT 10",
        "SET s x",
        "BLPOP missing s l 0",
        "BZPOPMIN s 0",
        "BLMOVE s dst LEFT LEFT 0",
        "RPUSH src x",
        "BLMOVE src s LEFT LEFT 0",
        "LLEN src",
    ])
    .await;
}

#[tokio::test]
async fn arguments_are_checked_before_anything_else() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "BLPOP k",
        "BLPOP k x",
        "BLPOP k -1",
        "BLPOP k inf",
        "BLPOP k 1e30",
        "BLPOP k nan",
        "BLPOP k ' 1'",
        "BRPOP k -0.5",
        "BLMOVE a b UP LEFT 0",
        "BLMOVE a b LEFT RIGHT x",
        "BRPOPLPUSH a b -1",
        "BLMPOP 0 0 k LEFT",
        "BLMPOP 0 1 k MIDDLE",
        "BLMPOP 0 1 k LEFT COUNT 0",
        "BLMPOP x 1 k LEFT",
        "BLMPOP 0 2 k LEFT",
        "BZPOPMIN k x",
        "BZMPOP 0 1 k LEFT",
        "BZMPOP 0 1 k MIN COUNT -1",
        "BZMPOP -1 1 k MIN",
    ])
    .await;
}

#[tokio::test]
async fn a_push_serves_the_blocked_client() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    waiter.send("BLPOP l1 l2 0").await;
    pair.wait_blocked(1).await;
    assert!(!waiter.has_reply_within(50).await, "BLPOP answered with nothing to pop");
    pair.check("RPUSH l2 a b").await;
    waiter.check_reply("BLPOP l1 l2 0", Compare::Exact).await;
    pair.check_all(&["LRANGE l2 0 -1", "INFO keyspace"]).await;
    pair.wait_blocked(0).await;
}

#[tokio::test]
async fn waiters_are_served_first_blocked_first() {
    let mut pair = Pair::start().await;
    let mut first = pair.connect().await;
    let mut second = pair.connect().await;
    let mut third = pair.connect().await;
    first.send("BRPOP k 0").await;
    pair.wait_blocked(1).await;
    second.send("BLPOP other k 0").await;
    pair.wait_blocked(2).await;
    third.send("BLMPOP 0 1 k LEFT COUNT 2").await;
    pair.wait_blocked(3).await;
    pair.check("LPUSH k a b c d").await;
    first.check_reply("BRPOP", Compare::Exact).await;
    second.check_reply("BLPOP", Compare::Exact).await;
    third.check_reply("BLMPOP", Compare::Exact).await;
    pair.check("EXISTS k").await;
}

#[tokio::test]
async fn a_served_move_can_serve_the_next_waiter() {
    let mut pair = Pair::start().await;
    let mut mover = pair.connect().await;
    let mut popper = pair.connect().await;
    mover.send("BLMOVE a b LEFT RIGHT 0").await;
    pair.wait_blocked(1).await;
    popper.send("BLPOP b 0").await;
    pair.wait_blocked(2).await;
    pair.check("RPUSH a 1 2 3").await;
    mover.check_reply("BLMOVE", Compare::Exact).await;
    popper.check_reply("BLPOP b", Compare::Exact).await;
    pair.check_all(&["LRANGE a 0 -1", "EXISTS b"]).await;
}

#[tokio::test]
async fn timeouts_answer_null() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "BLPOP k 0.05",
        "BRPOPLPUSH k d 0.05",
        "BLMOVE k d LEFT LEFT 0.05",
        "BLMPOP 0.05 1 k LEFT",
        "BZPOPMIN k 0.05",
        "BZMPOP 0.05 1 k MAX COUNT 2",
    ])
    .await;
    pair.resp3().await;
    pair.check_all(&["BLPOP k 0.05", "BLMOVE k d LEFT LEFT 0.05", "BZPOPMAX k 0.05"]).await;
}

#[tokio::test]
async fn sorted_set_waiters_and_resp3_shapes() {
    let mut pair = Pair::start().await;
    let mut min = pair.connect().await;
    let mut multi = pair.connect().await;
    min.resp3().await;
    min.send("BZPOPMIN z 0").await;
    pair.wait_blocked(1).await;
    multi.send("BZMPOP 0 1 z MAX COUNT 2").await;
    pair.wait_blocked(2).await;
    pair.check("ZADD z 1.5 a 2 b 3 c 4 d").await;
    min.check_reply("BZPOPMIN", Compare::Exact).await;
    multi.check_reply("BZMPOP", Compare::Exact).await;
    pair.check("ZRANGE z 0 -1 WITHSCORES").await;
}

#[tokio::test]
async fn a_waiter_for_another_type_keeps_waiting() {
    let mut pair = Pair::start().await;
    let mut zwaiter = pair.connect().await;
    zwaiter.send("BZPOPMIN k 0").await;
    pair.wait_blocked(1).await;
    pair.check("RPUSH k x").await;
    assert!(!zwaiter.has_reply_within(50).await, "a list served a sorted set waiter");
    pair.check_all(&["DEL k", "SET k s", "DEL k", "ZADD k 7 m"]).await;
    zwaiter.check_reply("BZPOPMIN k", Compare::Exact).await;
}

#[tokio::test]
async fn pushed_and_popped_in_one_transaction_serves_nobody() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    waiter.send("BLPOP k 0").await;
    pair.wait_blocked(1).await;
    pair.check_all(&["MULTI", "LPUSH k x", "LPOP k", "EXEC"]).await;
    assert!(!waiter.has_reply_within(50).await);
    pair.check_all(&["MULTI", "LPUSH k y z", "RPOP k", "EXEC"]).await;
    waiter.check_reply("BLPOP after EXEC", Compare::Exact).await;
    pair.check("EXISTS k").await;
}

#[tokio::test]
async fn requests_behind_a_blocked_one_wait_for_it() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    waiter.send("BLPOP k 0").await;
    waiter.send("PING").await;
    waiter.send("LLEN k").await;
    pair.wait_blocked(1).await;
    assert!(!waiter.has_reply_within(50).await, "a request behind a blocked one was answered");
    pair.check("RPUSH k a b").await;
    waiter.check_reply("BLPOP", Compare::Exact).await;
    waiter.check_reply("PING", Compare::Exact).await;
    waiter.check_reply("LLEN", Compare::Exact).await;
}

#[tokio::test]
async fn a_waiter_that_leaves_takes_nothing() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    waiter.send("BLPOP k 0").await;
    pair.wait_blocked(1).await;
    drop(waiter);
    pair.wait_blocked(0).await;
    pair.check_all(&["RPUSH k a", "LLEN k"]).await;
}

#[tokio::test]
async fn a_wrong_type_destination_fails_the_move_and_keeps_the_element() {
    let mut pair = Pair::start().await;
    let mut mover = pair.connect().await;
    mover.send("BLMOVE src dst LEFT LEFT 0").await;
    pair.wait_blocked(1).await;
    pair.check_all(&["SET dst string", "RPUSH src a"]).await;
    mover.check_reply("BLMOVE", Compare::Exact).await;
    pair.check_all(&["LRANGE src 0 -1", "GET dst"]).await;
}

#[tokio::test]
async fn keys_created_by_rename_move_and_swapdb_are_ready() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    waiter.send("BLPOP target 0").await;
    pair.wait_blocked(1).await;
    pair.check_all(&["RPUSH source a", "RENAME source target"]).await;
    waiter.check_reply("BLPOP after RENAME", Compare::Exact).await;

    waiter.send("BLPOP target 0").await;
    pair.wait_blocked(1).await;
    pair.check_all(&["SELECT 1", "RPUSH target b", "MOVE target 0"]).await;
    waiter.check_reply("BLPOP after MOVE", Compare::Exact).await;

    waiter.send("BLPOP target 0").await;
    pair.wait_blocked(1).await;
    pair.check_all(&["RPUSH target c", "SWAPDB 0 1"]).await;
    waiter.check_reply("BLPOP after SWAPDB", Compare::Exact).await;
    pair.check_all(&["SELECT 0", "EXISTS target", "SELECT 1", "EXISTS target"]).await;
}

#[tokio::test]
async fn client_unblock_ends_a_wait() {
    let mut pair = Pair::start().await;
    let mut waiter = pair.connect().await;
    let (theirs, ours) = waiter.both("CLIENT ID").await;
    let id = |frame: resp::Frame| match frame {
        resp::Frame::Integer(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    };
    let (theirs, ours) = (id(theirs), id(ours));
    waiter.send("BLPOP k 0").await;
    pair.wait_blocked(1).await;
    let (a, b) = pair.both_lines(&format!("CLIENT UNBLOCK {theirs}"), &format!("CLIENT UNBLOCK {ours}")).await;
    pair.assert_same("CLIENT UNBLOCK", &a, &b, Compare::Exact);
    waiter.check_reply("BLPOP unblocked", Compare::Exact).await;
    waiter.send("BZPOPMIN z 0").await;
    pair.wait_blocked(1).await;
    let (a, b) =
        pair.both_lines(&format!("CLIENT UNBLOCK {theirs} ERROR"), &format!("CLIENT UNBLOCK {ours} ERROR")).await;
    pair.assert_same("CLIENT UNBLOCK ERROR", &a, &b, Compare::Exact);
    waiter.check_reply("BZPOPMIN unblocked", Compare::Exact).await;
    pair.check_all(&["CLIENT UNBLOCK 999999", "CLIENT UNBLOCK x", "CLIENT UNBLOCK 1 MAYBE"]).await;
}

/// Found by the generated sequences: `BLMPOP`/`BZMPOP` read their timeout after the rest of
/// their arguments, as Redis does.
#[tokio::test]
async fn multi_pops_read_the_timeout_last() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "BLMPOP -1 1 a LEFT COUNT -1",
        "BLMPOP x 0 a LEFT",
        "BLMPOP x 1 a FOO",
        "BLMPOP x 1 a LEFT COUNT x",
        "BZMPOP -1 1 a MIN COUNT 0",
        "BZMPOP x 1 a FOO",
        "BZMPOP x 1 a MAX",
    ])
    .await;
}
