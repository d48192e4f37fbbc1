//! The server's memory estimate (`used_memory`, what `maxmemory` enforces) against what malloc
//! really handed out, for each kind of data.
//!
//! The estimate is computed from the data (see `keyspace::memory`) so that simulated runs stay
//! deterministic; this test is what keeps it honest. It runs on jemalloc, as `codis-server` does,
//! loads data through the real command path and compares the growth of the estimate with the
//! growth of jemalloc's `stats.allocated`. It is its own test binary with a single test, so no
//! other thread allocates meanwhile.

use bytes::BytesMut;
use resp::Request;
use server::ServerConfig;
use server::state::{Client, State};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn malloc_in_use() -> usize {
    // jemalloc refreshes its statistics when the epoch advances.
    tikv_jemalloc_ctl::epoch::advance().expect("advance jemalloc's epoch");
    tikv_jemalloc_ctl::stats::allocated::read().expect("read jemalloc's stats.allocated")
}

fn used_memory(state: &State) -> usize {
    state.keyspace.dbs().iter().map(|db| db.used_memory()).sum()
}

/// Runs `commands` against a fresh server state; returns (estimated growth, malloc growth).
fn load(commands: impl Fn(&mut dyn FnMut(Vec<String>))) -> (usize, usize) {
    let mut state = State::new(ServerConfig::default(), net::rng_from_seed(7, "memory"), 0, 6379);
    let mut client = Client::new(1, true);
    let mut out = BytesMut::with_capacity(1 << 16);
    let estimate_before = used_memory(&state);
    let malloc_before = malloc_in_use();
    commands(&mut |args: Vec<String>| {
        let request = Request::from_args(&args);
        server::cmd::execute(&mut state, &mut client, &mut out, &request, 1_000);
        assert!(!out.starts_with(b"-"), "{args:?} failed: {}", String::from_utf8_lossy(&out));
        out.clear();
    });
    let grown = (used_memory(&state) - estimate_before, malloc_in_use() - malloc_before);
    drop(state);
    grown
}

fn check(name: &str, (estimate, real): (usize, usize)) {
    let ratio = estimate as f64 / real as f64;
    println!("{name:<28} estimate {estimate:>11} malloc {real:>11} ratio {ratio:.3}");
    assert!((0.85..=1.15).contains(&ratio), "{name}: the estimate is {ratio:.3} of what malloc holds");
}

const KEYS: usize = 100_000;

#[test]
fn the_estimate_tracks_malloc_within_fifteen_percent() {
    let s = |text: &str| text.to_string();
    check(
        "32-byte strings",
        load(|run| {
            for index in 0..KEYS {
                run(vec![s("SET"), format!("key:{index:012}"), "v".repeat(32)]);
            }
        }),
    );
    check(
        "counters, 20-byte keys",
        load(|run| {
            for index in 0..KEYS {
                run(vec![s("INCR"), format!("counter:{index:012}")]);
            }
        }),
    );
    check(
        "integers, short keys",
        load(|run| {
            for index in 0..KEYS {
                run(vec![s("SET"), format!("k{index}"), index.to_string()]);
            }
        }),
    );
    check(
        "200-byte strings with a TTL",
        load(|run| {
            for index in 0..KEYS {
                run(vec![s("SET"), format!("session:{index:020}"), "x".repeat(200), s("EX"), s("1000")]);
            }
        }),
    );
    check(
        "tagged keys",
        load(|run| {
            for index in 0..KEYS {
                run(vec![s("SET"), format!("{{user{}}}:field{index}", index % 100), s("v")]);
            }
        }),
    );
    check(
        "small hashes",
        load(|run| {
            for index in 0..KEYS / 10 {
                for field in 0..10 {
                    run(vec![s("HSET"), format!("hash:{index}"), format!("field:{field}"), "v".repeat(20)]);
                }
            }
        }),
    );
    check(
        "one big hash",
        load(|run| {
            for field in 0..KEYS {
                run(vec![s("HSET"), s("big"), format!("field:{field:08}"), "v".repeat(24)]);
            }
        }),
    );
    check(
        "sets of words",
        load(|run| {
            for index in 0..KEYS / 20 {
                for member in 0..20 {
                    run(vec![s("SADD"), format!("set:{index}"), format!("member-{member}-of-this-set")]);
                }
            }
        }),
    );
    check(
        "integer sets",
        load(|run| {
            for index in 0..KEYS / 100 {
                for member in 0..100 {
                    run(vec![s("SADD"), format!("ints:{index}"), (member * 7).to_string()]);
                }
            }
        }),
    );
    check(
        "lists",
        load(|run| {
            for index in 0..KEYS / 50 {
                for element in 0..50 {
                    run(vec![s("RPUSH"), format!("list:{index}"), format!("element number {element} of the list")]);
                }
            }
        }),
    );
    check(
        "sorted sets",
        load(|run| {
            for index in 0..KEYS / 50 {
                for member in 0..50 {
                    run(vec![s("ZADD"), format!("zset:{index}"), member.to_string(), format!("player:{member:06}")]);
                }
            }
        }),
    );
    check(
        "strings grown by APPEND",
        load(|run| {
            for index in 0..KEYS / 10 {
                for _ in 0..10 {
                    run(vec![s("APPEND"), format!("log:{index}"), "0123456789".repeat(3)]);
                }
            }
        }),
    );
}
