//! MULTI/EXEC/DISCARD/WATCH/UNWATCH against redis-server 7.0.

use std::time::Duration;

use resp::Frame;

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn queued_commands_run_at_exec() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "EXEC",
        "DISCARD",
        "MULTI",
        "MULTI",
        "SET k 1",
        "INCR k",
        "LPUSH k x",
        "GET k",
        "SELECT 1",
        "SET k other",
        "EXEC",
        "GET k",
        "SELECT 0",
        "GET k",
        "MULTI",
        "EXEC",
        "MULTI",
        "SET k 2",
        "DISCARD",
        "GET k",
        "EXEC",
        "MULTI x",
        "EXEC x",
        "DISCARD x",
    ])
    .await;
}

#[tokio::test]
async fn a_refused_command_dooms_the_transaction() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "MULTI",
        "SET k 1",
        "NOSUCHCOMMAND a b",
        "SET k 2",
        "EXEC",
        "GET k",
        "MULTI",
        "GET",
        "EXEC",
        "MULTI",
        "SET k 3",
        "EXEC extra",
        "EXEC",
        "GET k",
        "MULTI",
        "WATCH k",
        "EXEC",
        "MULTI",
        "BLPOP list 0",
        "BRPOPLPUSH list other 0",
        "BLMOVE list other LEFT LEFT 0",
        "BZPOPMIN zset 0",
        "BLMPOP 0 1 list LEFT",
        "EXEC",
    ])
    .await;
}

#[tokio::test]
async fn exec_replies_follow_the_protocol_in_force() {
    let mut pair = Pair::start().await;
    pair.resp3().await;
    pair.check_all(&["MULTI", "ZADD z 1.5 a", "ZSCORE z a", "HELLO 2", "ZSCORE z a"]).await;
    // HELLO's reply holds the client id, which differs between the servers; the rest must not.
    let (theirs, ours) = pair.both("EXEC").await;
    let without_hello = |frame: &Frame| match frame {
        Frame::Array(items) if items.len() == 4 => {
            Frame::Array(vec![items[0].clone(), items[1].clone(), items[3].clone()])
        }
        other => other.clone(),
    };
    pair.assert_same("EXEC", &without_hello(&theirs), &without_hello(&ours), Compare::Exact);
    pair.check("ZSCORE z a").await;
    let mut watcher = pair.connect().await;
    watcher.resp3().await;
    watcher.check_all(&["WATCH z", "MULTI", "PING"]).await;
    pair.check("ZADD z 2 b").await;
    watcher.check("EXEC").await;
}

#[tokio::test]
async fn a_change_to_a_watched_key_fails_exec() {
    let mut pair = Pair::start().await;
    let mut other = pair.connect().await;
    pair.check_all(&["SET k 1", "WATCH k missing", "MULTI", "INCR k"]).await;
    other.check("SET k 5").await;
    pair.check_all(&["EXEC", "GET k"]).await;

    // A key created by another client.
    pair.check_all(&["WATCH missing", "MULTI", "SET missing mine"]).await;
    other.check("SET missing theirs").await;
    pair.check_all(&["EXEC", "GET missing"]).await;

    // No change: a write that changes nothing, and changes to other keys.
    pair.check_all(&["SADD s a", "WATCH s", "MULTI", "SCARD s"]).await;
    other.check_all(&["SADD s a", "SET unrelated 1", "DEL nothing"]).await;
    pair.check("EXEC").await;

    // The client's own change before MULTI counts too; UNWATCH forgets.
    pair.check_all(&["WATCH k", "SET k 7", "MULTI", "GET k", "EXEC"]).await;
    pair.check_all(&["WATCH k", "UNWATCH", "MULTI", "GET k"]).await;
    other.check("SET k 8").await;
    pair.check("EXEC").await;

    // DISCARD unwatches.
    pair.check_all(&["WATCH k", "MULTI", "DISCARD", "MULTI", "GET k"]).await;
    other.check("SET k 9").await;
    pair.check("EXEC").await;
}

#[tokio::test]
async fn flushes_and_swaps_touch_watched_keys_that_exist() {
    let mut pair = Pair::start().await;
    let mut other = pair.connect().await;
    pair.check_all(&["SET k 1", "WATCH k", "MULTI", "PING"]).await;
    other.check("FLUSHDB").await;
    pair.check("EXEC").await;

    pair.check_all(&["WATCH gone", "MULTI", "PING"]).await;
    other.check("FLUSHALL").await;
    pair.check("EXEC").await;

    pair.check_all(&["SET k 1", "WATCH k", "MULTI", "PING"]).await;
    other.check("SWAPDB 0 1").await;
    pair.check("EXEC").await;

    pair.check_all(&["WATCH nowhere", "MULTI", "PING"]).await;
    other.check("SWAPDB 0 1").await;
    pair.check("EXEC").await;
}

#[tokio::test]
async fn a_watched_key_that_expires_fails_exec() {
    let mut pair = Pair::start().await;
    // Expires between WATCH and EXEC, deleted or not.
    pair.check_all(&["SET k v PX 50", "WATCH k", "MULTI", "PING"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pair.check("EXEC").await;
    pair.check_all(&["SET k v PX 50", "WATCH k"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pair.check_all(&["GET k", "MULTI", "PING", "EXEC"]).await;

    // Already expired when watched: its deletion is no change, a new value is.
    pair.check_all(&["DEBUG SET-ACTIVE-EXPIRE 0", "SET e v PX 20"]).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    pair.check_all(&["WATCH e", "GET e", "MULTI", "PING", "EXEC"]).await;
    pair.check_all(&["SET e v PX 20"]).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    pair.check_all(&["WATCH e", "SET e fresh", "MULTI", "PING", "EXEC"]).await;
}

#[tokio::test]
async fn reset_and_client_list_see_the_transaction() {
    let mut pair = Pair::start().await;
    pair.check_all(&["WATCH k", "MULTI", "SET k 1", "RESET", "EXEC", "GET k"]).await;
    pair.check_all(&["MULTI", "SET a 1", "SET b 2"]).await;
    let mut other = pair.connect().await;
    let (theirs, ours) = other.both("CLIENT LIST").await;
    for (name, list) in [("redis-server", theirs), ("codis-server", ours)] {
        let list = crate::harness::text(&list);
        assert!(list.contains("flags=x") && list.contains("multi=2"), "{name}: {list}");
    }
    pair.check("DISCARD").await;
}

/// Found by the generated sequences: a container command's subcommand is looked up (and its
/// arity checked) when the command is queued, as Redis looks up `object|encoding`.
#[tokio::test]
async fn unknown_subcommands_are_refused_when_queued() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "MULTI",
        "OBJECT FOO a",
        "OBJECT ENCODING",
        "OBJECT",
        "CONFIG FOO",
        "CONFIG GET",
        "CLIENT NOSUCH",
        "EXEC",
        "OBJECT FOO a",
        "OBJECT ENCODING a b",
        "object encoding",
    ])
    .await;
}

/// Found by the generated sequences: a `SETBIT` that sets a bit to what it was does not touch
/// the key, so it does not fail a `WATCH` (Redis 7.0), whatever the string's encoding.
#[tokio::test]
async fn an_unchanged_bit_keeps_the_watch() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SETEX k 100 1",
        "WATCH k",
        "SETBIT k 7 1",
        "OBJECT ENCODING k",
        "MULTI",
        "SET other 0",
        "EXEC",
        "SET raw abc",
        "APPEND raw d",
        "WATCH raw",
        "SETBIT raw 1 1",
        "MULTI",
        "SET other 1",
        "EXEC",
        "WATCH raw",
        "SETBIT raw 0 1",
        "MULTI",
        "SET other 2",
        "EXEC",
        "WATCH raw",
        "SETBIT raw 100 0",
        "MULTI",
        "SET other 3",
        "EXEC",
    ])
    .await;
}
