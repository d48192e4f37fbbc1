//! `maxmemory` against redis-server 7.0: what is refused when nothing can be evicted, LFU
//! counting, and the memory parameters. (How much memory each server uses differs, so which keys
//! an evicting policy removes is tested on our server alone, in `tests/eviction.rs`.)

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn out_of_memory_refuses_what_would_grow() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET a 1",
        "RPUSH list x",
        "CONFIG SET maxmemory 1",
        "SET k v",
        "GET a",
        "LPUSH list y",
        "LPOP list",
        "INCR n",
        "DEL a",
        "MULTI",
        "GET a",
        "SET k v",
        "EXEC",
        "MULTI",
        "EXEC",
        // Nothing has an expiry: volatile policies cannot evict anything either.
        "CONFIG SET maxmemory-policy volatile-lru",
        "SET k v",
        "CONFIG SET maxmemory-policy volatile-ttl",
        "APPEND k v",
        "CONFIG SET maxmemory 0",
        "SET k v",
        "CONFIG SET maxmemory-policy noeviction",
    ])
    .await;
}

#[tokio::test]
async fn lfu_counts_accesses() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET f v",
        "OBJECT FREQ f",
        "CONFIG SET maxmemory-policy allkeys-lfu",
        // A log factor of 0 makes every access count, so the counter is exact.
        "CONFIG SET lfu-log-factor 0",
        "SET g v",
        "OBJECT FREQ g",
        "GET g",
        "GET g",
        "OBJECT FREQ g",
        "SET g w",
        "OBJECT FREQ g",
        "HSET h f v",
        "HGET h f",
        "OBJECT FREQ h",
        "OBJECT IDLETIME g",
        "OBJECT FREQ missing",
        "CONFIG SET maxmemory-policy allkeys-lru",
        "OBJECT FREQ g",
    ])
    .await;
}

#[tokio::test]
async fn memory_parameters() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "CONFIG SET maxmemory 10mb",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 2gb",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 10x",
        "CONFIG SET maxmemory -1",
        "CONFIG SET maxmemory-samples 0",
        "CONFIG SET maxmemory-samples 10",
        "CONFIG GET maxmemory-samples",
        "CONFIG SET maxmemory-policy foo",
        "CONFIG SET maxmemory-policy ALLKEYS-LRU",
        "CONFIG GET maxmemory-policy",
        "CONFIG SET lfu-log-factor -1",
        "CONFIG SET lfu-decay-time 5",
    ])
    .await;
    pair.check_with("CONFIG GET lfu-*", Compare::Pairs).await;
    let (theirs, ours) = pair.both("INFO memory").await;
    for (name, info) in [("redis-server", theirs), ("codis-server", ours)] {
        let info = crate::harness::text(&info);
        for field in [
            "used_memory:",
            "used_memory_human:",
            "used_memory_rss:",
            "used_memory_peak:",
            "maxmemory:2147483648",
            "maxmemory_policy:allkeys-lru",
            "mem_fragmentation_ratio:",
        ] {
            assert!(info.contains(field), "{name}: INFO memory lacks {field}: {info}");
        }
    }
    pair.check_all(&[
        "CONFIG GET maxmemory-policy",
        "CONFIG SET maxmemory-eviction-tenacity 101",
        "CONFIG SET maxmemory-eviction-tenacity 50",
        "CONFIG GET maxmemory-eviction-tenacity",
    ])
    .await;
    pair.check("CONFIG SET maxmemory 0").await;
}
