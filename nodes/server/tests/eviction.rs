//! Eviction under `maxmemory` on our server alone (how much memory each server uses differs, so
//! which keys go cannot be compared with redis-server): memory stays under the limit, and each
//! policy removes the keys it should, approximately, as Redis' sampling does.

use bytes::BytesMut;
use resp::Request;
use server::evict::used_memory;
use server::state::{Client, State};
use server::{EvictionPolicy, ServerConfig};

/// A server state driven through the command path, with the clock in the test's hands.
struct Server {
    state: State,
    client: Client,
    out: BytesMut,
}

const MB: u64 = 1024 * 1024;

impl Server {
    fn new(policy: EvictionPolicy, data_limit: u64) -> Server {
        let config = ServerConfig { maxmemory_policy: policy, ..ServerConfig::default() };
        let mut state = State::new(config, net::rng_from_seed(11, "eviction"), 0, 6379);
        // The limit leaves `data_limit` bytes above what the empty server uses.
        state.config.maxmemory = state.startup_memory as u64 + data_limit;
        state.apply_access_tracking();
        Server { state, client: Client::new(1, true), out: BytesMut::new() }
    }

    /// Runs one command at `now_ms`; returns the reply's bytes.
    fn run(&mut self, now_ms: u64, args: &[&str]) -> Vec<u8> {
        self.out.clear();
        server::cmd::execute(&mut self.state, &mut self.client, &mut self.out, &Request::from_args(args), now_ms);
        let limit = self.state.config.maxmemory as usize;
        assert!(
            used_memory(&self.state) <= limit + 64 * 1024,
            "memory ran past maxmemory after {args:?}: {} > {limit}",
            used_memory(&self.state)
        );
        self.out.to_vec()
    }

    fn exists(&mut self, now_ms: u64, key: &str) -> bool {
        self.run(now_ms, &["EXISTS", key]) == b":1\r\n"
    }

    fn surviving(&mut self, now_ms: u64, prefix: &str, count: usize) -> usize {
        (0..count).filter(|index| self.exists(now_ms, &format!("{prefix}:{index}"))).count()
    }
}

const VALUE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn allkeys_lru_evicts_the_idle_keys_first() {
    let mut server = Server::new(EvictionPolicy::AllkeysLru, 2 * MB);
    for index in 0..5_000 {
        server.run(0, &["SET", &format!("old:{index}"), VALUE]);
    }
    for index in 0..5_000 {
        server.run(10_000, &["SET", &format!("idle:{index}"), VALUE]);
    }
    // The old keys are read again: now the other ones are the idle ones.
    for index in 0..5_000 {
        server.run(20_000, &["GET", &format!("old:{index}")]);
    }
    for index in 0..10_000 {
        server.run(30_000, &["SET", &format!("new:{index}"), VALUE]);
    }
    assert!(server.state.stats.evicted_keys > 5_000, "evicted only {}", server.state.stats.evicted_keys);
    let (old, idle) = (server.surviving(30_000, "old", 5_000), server.surviving(30_000, "idle", 5_000));
    println!("lru: evicted {}, survivors old {old}, idle {idle}", server.state.stats.evicted_keys);
    assert!(old > idle * 3, "recently read keys should outlive idle ones: {old} vs {idle}");
}

#[test]
fn allkeys_lfu_keeps_the_frequently_read_keys() {
    let mut server = Server::new(EvictionPolicy::AllkeysLfu, 2 * MB);
    for index in 0..5_000 {
        server.run(0, &["SET", &format!("hot:{index}"), VALUE]);
        server.run(0, &["SET", &format!("cold:{index}"), VALUE]);
    }
    for _ in 0..20 {
        for index in 0..5_000 {
            server.run(1_000, &["GET", &format!("hot:{index}")]);
        }
    }
    for index in 0..20_000 {
        server.run(2_000, &["SET", &format!("new:{index}"), VALUE]);
    }
    let (hot, cold) = (server.surviving(2_000, "hot", 5_000), server.surviving(2_000, "cold", 5_000));
    println!("lfu: evicted {}, survivors hot {hot}, cold {cold}", server.state.stats.evicted_keys);
    assert!(hot > cold * 3, "frequently read keys should outlive the others: {hot} vs {cold}");
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_and_spares_persistent_keys() {
    let mut server = Server::new(EvictionPolicy::VolatileTtl, 2 * MB);
    for index in 0..3_000 {
        server.run(0, &["SET", &format!("keep:{index}"), VALUE]);
        server.run(0, &["SET", &format!("soon:{index}"), VALUE, "EX", "100"]);
        server.run(0, &["SET", &format!("late:{index}"), VALUE, "EX", "100000"]);
    }
    for index in 0..8_000 {
        server.run(1_000, &["SET", &format!("more:{index}"), VALUE, "EX", "50000"]);
    }
    let keep = server.surviving(1_000, "keep", 3_000);
    let (soon, late) = (server.surviving(1_000, "soon", 3_000), server.surviving(1_000, "late", 3_000));
    println!("ttl: evicted {}, survivors keep {keep}, soon {soon}, late {late}", server.state.stats.evicted_keys);
    assert_eq!(keep, 3_000, "keys without an expiry are never evicted by a volatile policy");
    assert!(late > soon * 3, "the nearest expiries go first: {late} vs {soon}");
    // Once only persistent keys remain, writes are refused.
    let mut refused = false;
    for index in 0..40_000 {
        if server.run(2_000, &["SET", &format!("fill:{index}"), VALUE]).starts_with(b"-OOM") {
            refused = true;
            break;
        }
    }
    assert!(refused, "a volatile policy with nothing volatile left must refuse writes");
}

#[test]
fn random_policies_bound_memory_and_volatile_random_spares_persistent_keys() {
    let mut server = Server::new(EvictionPolicy::AllkeysRandom, MB);
    for index in 0..20_000 {
        server.run(0, &["SET", &format!("k:{index}"), VALUE]);
    }
    assert!(server.state.stats.evicted_keys > 10_000);

    let mut server = Server::new(EvictionPolicy::VolatileRandom, 2 * MB);
    for index in 0..3_000 {
        server.run(0, &["SET", &format!("keep:{index}"), VALUE]);
    }
    for index in 0..10_000 {
        server.run(0, &["SET", &format!("temp:{index}"), VALUE, "EX", "1000"]);
    }
    assert_eq!(server.surviving(0, "keep", 3_000), 3_000);
    assert!(server.state.stats.evicted_keys > 0);
}

#[test]
fn collections_count_toward_the_limit() {
    let mut server = Server::new(EvictionPolicy::AllkeysLru, MB);
    for index in 0..200 {
        for field in 0..100 {
            server.run(0, &["HSET", &format!("h:{index}"), &format!("field:{field}"), VALUE]);
        }
    }
    assert!(server.state.stats.evicted_keys > 0, "100 fields of 48 bytes in 200 hashes do not fit in 1 MB");
}
