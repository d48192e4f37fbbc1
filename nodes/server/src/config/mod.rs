//! The server's configuration: Redis' option names, in a TOML file or on the command line.
//!
//! - [`ServerConfig`] (here): every option, its default and validation.
//! - [`values`]: the option values with Redis' own spelling (policies, limits, save rules, sizes).
//! - [`parameters`]: `CONFIG GET`/`CONFIG SET`'s table.

pub mod parameters;
pub mod values;

use serde::{Deserialize, Serialize};

pub use self::parameters::{PARAMETERS, Parameter, Setter};
pub use self::values::{
    DebugCommand, EvictionPolicy, FsyncPolicy, OutputLimit, OutputLimits, SaveRule, SaveRules, parse_memory,
};
use self::values::{memory_amount, yes_no};

/// Everything `codis-server` can be told at start. Defaults are Redis 7.0's, except `bind`, which
/// is loopback so that a server started without a config is not open to the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Port to listen on.
    pub port: u16,
    /// Password clients must `AUTH` with; empty for none.
    pub requirepass: String,
    /// Number of databases (`SELECT 0` … `SELECT n-1`).
    pub databases: usize,
    /// Most simultaneous clients; more are refused with `-ERR max number of clients reached`.
    pub maxclients: usize,
    /// Memory limit in bytes for the data (0: none): past it, keys are evicted as
    /// `maxmemory_policy` says, or writes refused. Accepts Redis' units (`"100mb"`).
    #[serde(deserialize_with = "memory_amount")]
    pub maxmemory: u64,
    /// What to do at the memory limit.
    pub maxmemory_policy: EvictionPolicy,
    /// Keys sampled per database for each eviction (more is closer to true LRU/LFU, and slower).
    pub maxmemory_samples: usize,
    /// How hard one command works to get under `maxmemory` before it runs anyway (0–100; at 100
    /// there is no bound). Redis turns it into a time budget; here it bounds the number of
    /// evictions, so that a simulated run stays a function of its seed.
    pub maxmemory_eviction_tenacity: u32,
    /// How slowly the LFU counter grows with accesses.
    pub lfu_log_factor: u32,
    /// Minutes of idleness per decrement of a key's LFU counter.
    pub lfu_decay_time: u32,
    /// Log commands that take at least this many microseconds (`SLOWLOG`; 0: all, negative: none).
    pub slowlog_log_slower_than: i64,
    /// How many slow commands `SLOWLOG` keeps.
    pub slowlog_max_len: usize,
    /// Record events that take at least this many milliseconds (`LATENCY`; 0: off).
    pub latency_monitor_threshold: u64,
    /// Close a client idle for this many seconds (0: never).
    pub timeout: u64,
    /// Longest bulk string a client may send.
    #[serde(deserialize_with = "memory_amount")]
    pub proto_max_bulk_len: u64,
    /// Most unprocessed input one client may make the server buffer.
    #[serde(deserialize_with = "memory_amount")]
    pub client_query_buffer_limit: u64,
    /// Output buffer limits per client class.
    pub client_output_buffer_limit: OutputLimits,
    /// Who may run `DEBUG` (fixed at start, as in Redis).
    pub enable_debug_command: DebugCommand,
    /// Background task frequency (active expiry runs this many times a second).
    pub hz: u32,
    /// Active expiry effort, 1 to 10: more keys sampled per cycle.
    pub active_expire_effort: u32,
    /// A hash with more fields than this leaves its compact `listpack` encoding.
    #[serde(alias = "hash-max-ziplist-entries")]
    pub hash_max_listpack_entries: usize,
    /// A hash with a field or value longer than this leaves its compact `listpack` encoding.
    #[serde(alias = "hash-max-ziplist-value")]
    pub hash_max_listpack_value: usize,
    /// A set of integers with more members than this leaves its compact `intset` encoding.
    pub set_max_intset_entries: usize,
    /// A sorted set with more members than this leaves its compact `listpack` encoding.
    #[serde(alias = "zset-max-ziplist-entries")]
    pub zset_max_listpack_entries: usize,
    /// A sorted set with a member longer than this leaves its compact `listpack` encoding.
    #[serde(alias = "zset-max-ziplist-value")]
    pub zset_max_listpack_value: usize,
    /// Where the snapshot file goes (and is loaded from at start).
    pub dir: String,
    /// The snapshot file's name in `dir`.
    pub dbfilename: String,
    /// When to take a snapshot on its own (`"3600 1 300 100"`). Empty by default, unlike
    /// Redis: a server started without a data directory in mind writes nothing to the working
    /// directory and loads nothing from it.
    pub save: SaveRules,
    /// The master to follow from the start (`"host port"`; empty: none), as `REPLICAOF` would.
    pub replicaof: String,
    /// The password to `AUTH` with at the master this server replicates (`REPLICAOF`).
    pub masterauth: String,
    /// Refuse writes (`NOREPLICAS`) unless this many replicas acknowledged within
    /// `min-replicas-max-lag` seconds (0: never refuse).
    pub min_replicas_to_write: usize,
    /// How recent a replica's acknowledgement must be to count for `min-replicas-to-write`.
    pub min_replicas_max_lag: u64,
    /// Seconds a replica's master may stay silent before the link counts as dead.
    pub repl_timeout: u64,
    /// Seconds between the master's pings to its replicas (which keep a quiet link alive).
    pub repl_ping_replica_period: u64,
    /// Seconds a stopping master waits for its replicas to acknowledge its last writes (0: it
    /// does not wait), as Redis 7's `shutdown-timeout`.
    pub shutdown_timeout: u64,
    /// Whether every change goes to the append-only log, which is then what a restart loads
    /// (instead of the snapshot). Fixed at start.
    #[serde(with = "yes_no")]
    pub appendonly: bool,
    /// The log's base name: its files in `appenddirname` are named after it, as Redis 7 names
    /// them (`appendonly.aof.1.base.rdb`, `appendonly.aof.1.incr.aof`, `appendonly.aof.manifest`).
    pub appendfilename: String,
    /// The directory, in `dir`, holding the log's files.
    pub appenddirname: String,
    /// When the log is synced.
    pub appendfsync: FsyncPolicy,
    /// Rewrite the log on its own once it has grown by this percentage of its size after the
    /// last rewrite (0: never)…
    pub auto_aof_rewrite_percentage: u64,
    /// …and is at least this big (bytes).
    #[serde(deserialize_with = "memory_amount")]
    pub auto_aof_rewrite_min_size: u64,
    /// A log whose last command was cut short (a crash mid-write) loads without it, with a
    /// warning; `no` refuses to start instead.
    #[serde(with = "yes_no")]
    pub aof_load_truncated: bool,
    /// The allocator the process runs on, for `INFO memory` (`mem_allocator`): set by the binary
    /// that links it, not configurable.
    #[serde(skip)]
    pub mem_allocator: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 6379,
            requirepass: String::new(),
            databases: 16,
            maxclients: 10_000,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::Noeviction,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            maxmemory_samples: 5,
            maxmemory_eviction_tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: OutputLimits::default(),
            enable_debug_command: DebugCommand::No,
            hz: 10,
            active_expire_effort: 1,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            dir: ".".into(),
            dbfilename: "dump.rdb".into(),
            save: SaveRules::default(),
            replicaof: String::new(),
            masterauth: String::new(),
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            repl_timeout: 60,
            repl_ping_replica_period: 10,
            shutdown_timeout: 10,
            appendonly: false,
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            appendfsync: FsyncPolicy::Everysec,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            aof_load_truncated: true,
            mem_allocator: "libc".into(),
        }
    }
}

/// A configuration value outside what the server accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid config '{name}': {reason}")]
pub struct ConfigError {
    /// The option.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ServerConfig {
    /// Where the snapshot file is: `dbfilename` in `dir`.
    pub fn snapshot_path(&self) -> String {
        std::path::Path::new(&self.dir).join(&self.dbfilename).to_string_lossy().into_owned()
    }

    /// The master of `replicaof`, if set.
    pub fn master(&self) -> Option<(String, u16)> {
        let mut words = self.replicaof.split_whitespace();
        let (host, port) = (words.next()?, words.next()?.parse().ok()?);
        words.next().is_none().then(|| (host.to_string(), port))
    }

    /// The directory of the append-only log's files: `appenddirname` in `dir`.
    pub fn aof_dir(&self) -> String {
        std::path::Path::new(&self.dir).join(&self.appenddirname).to_string_lossy().into_owned()
    }

    /// Checks the values a TOML file or command line could get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name, reason: &str| Err(ConfigError { name, reason: reason.to_string() });
        if self.databases == 0 || self.databases > 1_000_000 {
            return fail("databases", "must be between 1 and 1000000");
        }
        if self.maxclients == 0 {
            return fail("maxclients", "must be at least 1");
        }
        if !(1..=500).contains(&self.hz) {
            return fail("hz", "must be between 1 and 500");
        }
        if !(1..=10).contains(&self.active_expire_effort) {
            return fail("active-expire-effort", "must be between 1 and 10");
        }
        if self.maxmemory_eviction_tenacity > 100 {
            return fail("maxmemory-eviction-tenacity", "must be between 0 and 100");
        }
        if !(1..=i32::MAX as usize).contains(&self.maxmemory_samples) {
            return fail("maxmemory-samples", "must be between 1 and 2147483647");
        }
        if self.dbfilename.is_empty() || self.dbfilename.contains('/') {
            return fail("dbfilename", "can't be a path, just a filename");
        }
        for (name, value) in [("appendfilename", &self.appendfilename), ("appenddirname", &self.appenddirname)] {
            if value.is_empty() || value.contains(['/', ' ', '"', '\'']) || value == "." || value == ".." {
                return fail(name, "must be a plain file name (no path, space or quote)");
            }
        }
        if !self.replicaof.is_empty() && self.master().is_none() {
            return fail("replicaof", "must be \"host port\"");
        }
        if self.repl_timeout == 0 || self.repl_ping_replica_period == 0 {
            return fail("repl-timeout", "repl-timeout and repl-ping-replica-period must be at least 1");
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return fail("proto-max-bulk-len", "must be at least 1mb");
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return fail("client-query-buffer-limit", "must be at least 1mb");
        }
        Ok(())
    }

    /// The thresholds at which collections leave their compact encodings.
    pub fn encoding_limits(&self) -> crate::keyspace::EncodingLimits {
        crate::keyspace::EncodingLimits {
            hash_entries: self.hash_max_listpack_entries,
            hash_value: self.hash_max_listpack_value,
            set_intset_entries: self.set_max_intset_entries,
            zset_entries: self.zset_max_listpack_entries,
            zset_value: self.zset_max_listpack_value,
        }
    }

    /// The limits the request decoder enforces for this configuration.
    pub fn limits(&self) -> resp::Limits {
        resp::Limits {
            max_bulk_len: usize::try_from(self.proto_max_bulk_len).unwrap_or(usize::MAX),
            max_buffered_input: usize::try_from(self.client_query_buffer_limit).unwrap_or(usize::MAX),
            ..resp::Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_policies_round_trip() {
        ServerConfig::default().validate().unwrap();
        for name in ["noeviction", "allkeys-lru", "VOLATILE-TTL"] {
            let policy = EvictionPolicy::parse(name).unwrap();
            assert!(policy.name().eq_ignore_ascii_case(name));
        }
        assert_eq!(EvictionPolicy::parse("lru"), None);
        let bad = ServerConfig { hz: 0, ..ServerConfig::default() };
        assert_eq!(bad.validate().unwrap_err().name, "hz");
    }

    #[test]
    fn output_limits_parse_as_redis_writes_them() {
        let mut limits = OutputLimits::default();
        assert_eq!(limits.to_string(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        limits.apply("pubsub 1mb 512kb 5 normal 1g 0 0").unwrap();
        assert_eq!(limits.pubsub, OutputLimit { hard_bytes: 1024 * 1024, soft_bytes: 512 * 1024, soft_seconds: 5 });
        assert_eq!(limits.normal.hard_bytes, 1_000_000_000);
        assert!(limits.apply("pubsub 1 2").is_err());
        assert!(limits.apply("bogus 1 2 3").is_err());
        assert!(limits.apply("pubsub x 2 3").is_err());
        assert_eq!(OutputLimits::try_from(limits.to_string()), Ok(limits));
        assert_eq!(parse_memory("32mb"), Some(32 * 1024 * 1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("-1"), None);
    }
}
