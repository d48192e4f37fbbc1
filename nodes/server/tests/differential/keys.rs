//! Generic key commands against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn existence_deletion_and_types() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "MSET a 1 b 2 c 3",
        "EXISTS a b missing a",
        "DEL a missing b",
        "EXISTS a b c",
        "UNLINK c c",
        "DBSIZE",
        "SET k v",
        "TYPE k",
        "TYPE missing",
        "TOUCH k missing k",
        "DEL",
        "EXISTS",
    ])
    .await;
}

#[tokio::test]
async fn expiry_commands() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET k v",
        "TTL k",
        "PTTL k",
        "EXPIRETIME k",
        "TTL missing",
        "EXPIRE k 100 NX XX",
        "EXPIRE k 100 GT LT",
        "EXPIRE k 100 FOO",
        "EXPIRE k 100 NX GT",
        "EXPIRE k x",
        "EXPIRE k 9223372036854775807",
        "PEXPIRE k 9223372036854775807",
        "EXPIRE k 100 XX",
        "EXPIRE k 100 GT",
        "EXPIRE k 100 LT",
        "TTL k",
        "EXPIRE k 100 NX",
        "EXPIRE k 200 NX",
        "EXPIRE k 50 GT",
        "EXPIRE k 500 GT",
        "EXPIRE k 1000 LT",
        "EXPIRE k 10 LT",
        "TTL k",
        "PEXPIRE k 100000",
        "EXPIREAT k 4000000000",
        "EXPIRETIME k",
        "PEXPIRETIME k",
        "PEXPIREAT k 4000000000123",
        "PEXPIRETIME k",
        "EXPIRETIME k",
        "PERSIST k",
        "PERSIST k",
        "TTL k",
        "PERSIST missing",
        "EXPIRE missing 10",
        "EXPIREAT k -1",
        "EXISTS k",
        "SET k v",
        "EXPIRE k -5",
        "EXISTS k",
        "SET k v",
        "PEXPIRE k 0",
        "EXISTS k",
    ])
    .await;
    pair.check("SET t v PX 100000").await;
    pair.check_with("PTTL t", Compare::Near(50)).await;
}

#[tokio::test]
async fn rename_copy_move() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET a 1",
        "EXPIRE a 1000",
        "RENAME a b",
        "TTL b",
        "EXISTS a",
        "RENAME missing x",
        "RENAME b b",
        "RENAMENX b b",
        "SET c 3",
        "RENAMENX b c",
        "RENAMENX b d",
        "RENAME d c",
        "GET c",
        "TTL c",
        "COPY c c",
        "COPY c e",
        "TTL e",
        "COPY c e",
        "SET c 33",
        "COPY c e REPLACE",
        "GET e",
        "COPY c e DB x",
        "COPY c e DB 99",
        "COPY c e FOO",
        "COPY c e REPLACE REPLACE",
        "COPY c e DB 1",
        "COPY missing e",
        "MOVE c 0",
        "MOVE c x",
        "MOVE c 99",
        "MOVE missing 1",
        "MOVE c 1",
        "EXISTS c",
        "SELECT 1",
        "GET c",
        "GET e",
        "TTL c",
        "SET c other",
        "SELECT 0",
        "SET c back",
        "MOVE c 1",
        "SELECT 1",
        "GET c",
        "SELECT x",
        "SELECT 16",
        "SELECT -1",
    ])
    .await;
}

#[tokio::test]
async fn keys_and_patterns() {
    let mut pair = Pair::start().await;
    pair.check_all(&["MSET hello 1 hallo 2 hxllo 3 heeeello 4 hllo 5 h*llo 6 other 7", "SET volatile v PX 1"]).await;
    // Past the expiry on both servers' clocks: which of them reaches the millisecond first is a
    // race (the test failed once on a loaded machine).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for pattern in ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h\\*llo", "*llo", "nomatch*", "[h]*"] {
        pair.check_with(&format!("KEYS {pattern}"), Compare::Unordered).await;
    }
    pair.check("KEYS").await;
}

#[tokio::test]
async fn scan_returns_every_key_once_iterated_to_the_end() {
    let mut pair = Pair::start().await;
    for index in 0..300 {
        pair.check(&format!("SET key:{index} {index}")).await;
    }
    pair.check("SET other v").await;
    for options in ["", " COUNT 7", " MATCH key:1*", " MATCH key:1* COUNT 1000", " TYPE string", " TYPE list"] {
        let theirs = scan_all(&mut pair, options, true).await;
        let ours = scan_all(&mut pair, options, false).await;
        assert_eq!(theirs, ours, "SCAN 0{options}");
    }
    pair.check_all(&[
        "SCAN x",
        "SCAN 0 COUNT 0",
        "SCAN 0 MATCH",
        "SCAN 0 FOO bar",
        "SCAN +1x",
        "SCAN -",
        "SCAN 99999999999999999999",
    ])
    .await;
    // A cursor no SCAN returned is accepted by both (strtoul rules), but what it resumes from is
    // each implementation's own business: only the reply's shape compares.
    pair.check_with("SCAN -1", Compare::Kind).await;
    pair.check_with("SCAN 18446744073709551615", Compare::Kind).await;
}

/// Iterates SCAN to completion on one side and returns the keys seen, sorted and de-duplicated
/// (cursors are implementation details; the set of keys is what Redis guarantees).
async fn scan_all(pair: &mut Pair, options: &str, theirs: bool) -> Vec<String> {
    let mut keys = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (their_reply, our_reply) = pair.both(&format!("SCAN {cursor}{options}")).await;
        let reply = if theirs { their_reply } else { our_reply };
        let resp::Frame::Array(parts) = reply else { panic!("SCAN reply {reply:?}") };
        let [resp::Frame::Bulk(next), resp::Frame::Array(batch)] = &parts[..] else { panic!("SCAN reply {parts:?}") };
        for key in batch {
            if let resp::Frame::Bulk(key) = key {
                keys.insert(String::from_utf8_lossy(key).into_owned());
            }
        }
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            return keys.into_iter().collect();
        }
    }
}

#[tokio::test]
async fn object_and_random() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "RANDOMKEY",
        "SET a 1",
        "RANDOMKEY",
        "OBJECT ENCODING missing",
        "OBJECT ENCODING a",
        "OBJECT REFCOUNT a",
        "SET big 123456",
        "OBJECT REFCOUNT big",
        "OBJECT FREQ a",
        "OBJECT FOO a",
        "OBJECT ENCODING",
        "OBJECT ENCODING a b",
    ])
    .await;
    // Redis reads idle time off an LRU clock of one-second ticks, so a tick may fall between
    // the SET and this.
    pair.check_with("OBJECT IDLETIME a", Compare::Near(1)).await;
    pair.check_with("OBJECT HELP", Compare::Kind).await;
}

#[tokio::test]
async fn flush_and_swap() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET a 1",
        "SELECT 1",
        "SET b 2",
        "SWAPDB 0 1",
        "GET a",
        "GET b",
        "SELECT 0",
        "GET a",
        "GET b",
        "SWAPDB 0",
        "SWAPDB x 1",
        "SWAPDB 0 x",
        "SWAPDB 0 99",
        "SWAPDB 0 0",
        "DBSIZE",
        "FLUSHDB FOO",
        "FLUSHDB ASYNC",
        "DBSIZE",
        "SELECT 1",
        "DBSIZE",
        "FLUSHALL SYNC x",
        "FLUSHALL",
        "DBSIZE",
        "DBSIZE x",
    ])
    .await;
}
