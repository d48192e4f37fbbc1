//! What operators watch, against redis-server 7.0: keyspace hits and misses, the slow log, the
//! latency monitor, and SHUTDOWN.

use resp::Frame;

use crate::harness::{Compare, Pair, text};

/// A field of `INFO stats`.
fn stat(info: &Frame, field: &str) -> String {
    text(info).lines().find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string)).unwrap_or_default()
}

#[tokio::test]
async fn keyspace_hits_and_misses_count_read_lookups() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET k v",
        "RPUSH l a b",
        "HSET h f v",
        "CONFIG RESETSTAT",
        "GET k",
        "GET missing",
        "MGET k missing k",
        "EXISTS k missing",
        "TYPE k",
        "STRLEN missing",
        "LRANGE l 0 -1",
        "HGET h f",
        "HGET k f",
        "SET k w",
        "INCR counter",
        "GETDEL k",
        "GETEX missing",
        "LPOP l",
        "SCARD missing",
    ])
    .await;
    let (theirs, ours) = pair.both("INFO stats").await;
    for field in ["keyspace_hits", "keyspace_misses"] {
        assert_eq!(stat(&theirs, field), stat(&ours, field), "{field}");
    }
}

#[tokio::test]
async fn the_slow_log_records_commands_as_sent() {
    let mut pair = Pair::start().await;
    pair.check_all(&["CONFIG SET slowlog-log-slower-than 0", "SLOWLOG RESET", "SET key value"]).await;
    let long = format!("SET long {}", "x".repeat(300));
    pair.check(&long).await;
    let many = format!("DEL {}", (0..40).map(|index| format!("k{index}")).collect::<Vec<_>>().join(" "));
    pair.check(&many).await;
    // HELLO's reply holds the client id, which differs between the servers.
    pair.check_with("HELLO 2 AUTH default secret", Compare::Kind).await;
    // Each command hides its own secrets: AUTH its password (and user), unless it is malformed.
    pair.check_all(&["AUTH secret", "AUTH someone secret", "AUTH a b c"]).await;
    pair.check_all(&["CONFIG SET slowlog-log-slower-than -1", "SET unlogged 1"]).await;
    // Ids, times, durations and addresses differ; what was logged, in which order, must not.
    let (theirs, ours) = pair.both("SLOWLOG GET -1").await;
    let logged = |frame: &Frame| match frame {
        Frame::Array(entries) => entries
            .iter()
            .map(|entry| match entry {
                Frame::Array(fields) if fields.len() == 6 => fields[3].clone(),
                other => other.clone(),
            })
            .collect::<Vec<_>>(),
        other => vec![other.clone()],
    };
    pair.assert_same("SLOWLOG GET -1", &Frame::Array(logged(&theirs)), &Frame::Array(logged(&ours)), Compare::Exact);
    pair.check_all(&[
        "SLOWLOG LEN",
        "SLOWLOG GET 0",
        "SLOWLOG GET x",
        "SLOWLOG GET -2",
        "SLOWLOG GET 1 2",
        "SLOWLOG LEN x",
        "SLOWLOG FOO",
        "SLOWLOG",
        "SLOWLOG HELP",
        "CONFIG SET slowlog-max-len 1",
        "CONFIG GET slowlog-max-len",
        "CONFIG SET slowlog-log-slower-than -2",
        "SLOWLOG RESET",
        "SLOWLOG LEN",
    ])
    .await;
}

#[tokio::test]
async fn the_latency_monitor_is_off_by_default() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "CONFIG GET latency-monitor-threshold",
        "LATENCY LATEST",
        "LATENCY HISTORY command",
        "LATENCY RESET",
        "LATENCY DOCTOR",
        "LATENCY LATEST extra",
        "LATENCY FOO",
        "CONFIG SET latency-monitor-threshold -1",
    ])
    .await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SHUTDOWN ABORT",
        "SHUTDOWN FOO",
        "SHUTDOWN SAVE ABORT",
        "SHUTDOWN NOW ABORT",
        "MULTI",
        "SHUTDOWN",
        "EXEC",
    ])
    .await;
    let mut other = pair.connect().await;
    other.check("PING").await;
    pair.send("SHUTDOWN NOSAVE").await;
    assert_eq!(pair.closed().await, (true, true), "the caller's connection closes");
    assert_eq!(other.closed().await, (true, true), "every connection closes");
}

#[tokio::test]
async fn debug_populate_makes_the_same_keys_and_values() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET key:3 kept",
        "DEBUG POPULATE 5",
        "MGET key:0 key:3 key:4 key:5",
        "DEBUG POPULATE 3 p 3",
        "MGET p:0 p:1 p:2",
        "DEBUG POPULATE 2 q 12",
        "GET q:1",
        "DEBUG POPULATE 2 z 0",
        "GET z:1",
        "DEBUG POPULATE -1",
        "DEBUG POPULATE 2 r -4",
        "DEBUG POPULATE x",
        "DBSIZE",
    ])
    .await;
}
