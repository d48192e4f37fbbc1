//! The server's configuration: Redis' option names, in a TOML file or on the command line.

use serde::{Deserialize, Serialize};

/// What happens when `maxmemory` is reached (Redis' `maxmemory-policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// Refuse writes that would grow memory with an `OOM` error.
    #[default]
    Noeviction,
    /// Evict the least recently used key.
    AllkeysLru,
    /// Evict the least frequently used key.
    AllkeysLfu,
    /// Evict a random key.
    AllkeysRandom,
    /// Evict the least recently used key among those with an expiry.
    VolatileLru,
    /// Evict the least frequently used key among those with an expiry.
    VolatileLfu,
    /// Evict a random key among those with an expiry.
    VolatileRandom,
    /// Evict the key with the nearest expiry.
    VolatileTtl,
}

impl EvictionPolicy {
    /// The name as `CONFIG GET` shows it.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::Noeviction => "noeviction",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::AllkeysLfu => "allkeys-lfu",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// Parses a policy name (any case).
    pub fn parse(name: &str) -> Option<EvictionPolicy> {
        const ALL: [EvictionPolicy; 8] = [
            EvictionPolicy::Noeviction,
            EvictionPolicy::AllkeysLru,
            EvictionPolicy::AllkeysLfu,
            EvictionPolicy::AllkeysRandom,
            EvictionPolicy::VolatileLru,
            EvictionPolicy::VolatileLfu,
            EvictionPolicy::VolatileRandom,
            EvictionPolicy::VolatileTtl,
        ];
        ALL.into_iter().find(|policy| policy.name().eq_ignore_ascii_case(name))
    }
}

/// Who may run `DEBUG` (Redis' `enable-debug-command`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DebugCommand {
    /// Nobody.
    #[default]
    No,
    /// Everybody.
    Yes,
    /// Clients connected over loopback.
    Local,
}

impl DebugCommand {
    /// The name as `CONFIG GET` shows it.
    pub fn name(self) -> &'static str {
        match self {
            DebugCommand::No => "no",
            DebugCommand::Yes => "yes",
            DebugCommand::Local => "local",
        }
    }
}

/// When the append-only log is synced to disk (Redis' `appendfsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// Before any reply leaves: nothing acknowledged is lost in a crash.
    Always,
    /// About once a second: a crash loses about the last second of writes.
    #[default]
    Everysec,
    /// Never by the server: the operating system writes back when it likes.
    No,
}

impl FsyncPolicy {
    /// The name as `CONFIG GET` shows it.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Everysec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    /// Parses a policy name (any case).
    pub fn parse(name: &str) -> Option<FsyncPolicy> {
        [FsyncPolicy::Always, FsyncPolicy::Everysec, FsyncPolicy::No]
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }
}

/// One class's output buffer limit: a client whose unwritten output reaches `hard_bytes`, or
/// stays at or above `soft_bytes` for more than `soft_seconds`, is closed (0 disables either).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    /// Close at once at this many bytes.
    pub hard_bytes: u64,
    /// Close when over this many bytes for longer than `soft_seconds`.
    pub soft_bytes: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

/// Redis' `client-output-buffer-limit`: one limit per client class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OutputLimits {
    /// Ordinary clients (replies to their own commands).
    pub normal: OutputLimit,
    /// Replicas.
    pub replica: OutputLimit,
    /// Subscribed clients (messages published to them).
    pub pubsub: OutputLimit,
}

impl Default for OutputLimits {
    fn default() -> Self {
        const MB: u64 = 1024 * 1024;
        OutputLimits {
            normal: OutputLimit::default(),
            replica: OutputLimit { hard_bytes: 256 * MB, soft_bytes: 64 * MB, soft_seconds: 60 },
            pubsub: OutputLimit { hard_bytes: 32 * MB, soft_bytes: 8 * MB, soft_seconds: 60 },
        }
    }
}

impl OutputLimits {
    /// Applies `class hard soft seconds` groups (any subset of the classes), as `CONFIG SET`
    /// and the config file give them; nothing changes if any group is invalid.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".to_string());
        }
        let mut updated = *self;
        for group in words.chunks(4) {
            let limit = OutputLimit {
                hard_bytes: parse_memory(group[1])
                    .ok_or("Error in hard, soft or soft_seconds setting in buffer limit configuration.")?,
                soft_bytes: parse_memory(group[2])
                    .ok_or("Error in hard, soft or soft_seconds setting in buffer limit configuration.")?,
                soft_seconds: group[3]
                    .parse()
                    .map_err(|_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.")?,
            };
            match group[0].to_ascii_lowercase().as_str() {
                "normal" => updated.normal = limit,
                "replica" | "slave" => updated.replica = limit,
                "pubsub" => updated.pubsub = limit,
                _ => return Err("Invalid client class specified in buffer limit configuration.".to_string()),
            }
        }
        *self = updated;
        Ok(())
    }
}

impl std::fmt::Display for OutputLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes = [("normal", self.normal), ("slave", self.replica), ("pubsub", self.pubsub)];
        for (index, (name, limit)) in classes.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name} {} {} {}", limit.hard_bytes, limit.soft_bytes, limit.soft_seconds)?;
        }
        Ok(())
    }
}

impl TryFrom<String> for OutputLimits {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut limits = OutputLimits::default();
        limits.apply(&text)?;
        Ok(limits)
    }
}

impl From<OutputLimits> for String {
    fn from(limits: OutputLimits) -> String {
        limits.to_string()
    }
}

/// When to take a snapshot (Redis' `save "3600 1 300 100"`): after `seconds` if at least
/// `changes` keys changed since the last one, for any of the pairs. Empty: never on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SaveRules(pub Vec<SaveRule>);

/// One `seconds changes` pair of [`SaveRules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveRule {
    /// At least this long since the last snapshot.
    pub seconds: u64,
    /// At least this many changes since the last snapshot.
    pub changes: u64,
}

impl SaveRules {
    /// Whether a snapshot is due after `changes` changes and `elapsed_ms` since the last one.
    pub fn due(&self, changes: u64, elapsed_ms: u64) -> bool {
        self.0.iter().any(|rule| changes >= rule.changes && elapsed_ms >= rule.seconds.saturating_mul(1000))
    }
}

impl std::fmt::Display for SaveRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|rule| format!("{} {}", rule.seconds, rule.changes)).collect();
        f.write_str(&pairs.join(" "))
    }
}

impl TryFrom<String> for SaveRules {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let numbers: Vec<&str> = text.split_whitespace().collect();
        if !numbers.len().is_multiple_of(2) {
            return Err("Invalid save parameters".into());
        }
        numbers
            .chunks(2)
            .map(|pair| match (pair[0].parse(), pair[1].parse()) {
                (Ok(seconds), Ok(changes)) => Ok(SaveRule { seconds, changes }),
                _ => Err("Invalid save parameters".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(SaveRules)
    }
}

impl From<SaveRules> for String {
    fn from(rules: SaveRules) -> String {
        rules.to_string()
    }
}

/// A memory amount in a config file: a number of bytes, or text with Redis' units (`"64mb"`).
fn memory_amount<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Bytes(u64),
        Text(String),
    }
    match Amount::deserialize(deserializer)? {
        Amount::Bytes(bytes) => Ok(bytes),
        Amount::Text(text) => parse_memory(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not a memory amount (like 1024, \"64mb\", \"2gb\")"))
        }),
    }
}

/// A yes/no option as Redis writes it (`"yes"`, `"no"`), shown as such by `CONFIG GET`.
fn yes_no_text(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// Parses Redis' `yes`/`no` (any case).
fn parse_yes_no(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

/// A yes/no option in a config file: `"yes"`/`"no"` as Redis writes it, or a TOML boolean.
mod yes_no {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if *value { "yes" } else { "no" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Flag {
            Bool(bool),
            Text(String),
        }
        match Flag::deserialize(deserializer)? {
            Flag::Bool(value) => Ok(value),
            Flag::Text(text) => super::parse_yes_no(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Reads a memory amount as Redis' `memtoull`: digits with an optional unit, `k`/`m`/`g` for
/// powers of 1000 and `kb`/`mb`/`gb` for powers of 1024 (any case).
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

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

/// Sets a parameter from its text form, or says why the text is refused (Redis' wording of the
/// reason, without the `CONFIG SET failed` preamble).
pub type Setter = fn(&mut ServerConfig, &str) -> Result<(), String>;

/// One parameter `CONFIG GET`/`CONFIG SET` knows: how to show it and, if it can change at run
/// time, how to set it from text.
pub struct Parameter {
    /// Redis' name.
    pub name: &'static str,
    /// The current value as text.
    pub get: fn(&ServerConfig) -> String,
    /// Sets it from text, or says why not; `None` for parameters fixed at start.
    pub set: Option<Setter>,
}

fn parse_integer<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn in_range<T: PartialOrd + std::fmt::Display>(value: T, low: T, high: T) -> Result<T, String> {
    if value < low || value > high {
        return Err(format!("argument must be between {low} and {high} inclusive"));
    }
    Ok(value)
}

/// An integer parameter within `low..=high`, converted to its field's type (a negative number
/// for an unsigned field is out of range, as Redis says, rather than unparsable).
fn integer_in<T: TryFrom<i64>>(text: &str, low: i64, high: i64) -> Result<T, String> {
    let value = in_range(parse_integer::<i64>(text)?, low, high)?;
    T::try_from(value).map_err(|_| format!("argument must be between {low} and {high} inclusive"))
}

/// Every parameter, in the order `CONFIG GET *` lists them. `appendonly` reports the (absent)
/// append-only log so that tools asking for it get the truth.
pub const PARAMETERS: &[Parameter] = &[
    Parameter { name: "bind", get: |config| config.bind.clone(), set: None },
    Parameter { name: "port", get: |config| config.port.to_string(), set: None },
    Parameter {
        name: "requirepass",
        get: |config| config.requirepass.clone(),
        set: Some(|config, text| {
            config.requirepass = text.to_string();
            Ok(())
        }),
    },
    Parameter { name: "databases", get: |config| config.databases.to_string(), set: None },
    Parameter {
        name: "maxclients",
        get: |config| config.maxclients.to_string(),
        set: Some(|config, text| {
            config.maxclients = integer_in(text, 1, 10_000_000)?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory",
        get: |config| config.maxmemory.to_string(),
        set: Some(|config, text| {
            config.maxmemory = parse_memory(text).ok_or("argument must be a memory value")?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-policy",
        get: |config| config.maxmemory_policy.name().to_string(),
        set: Some(|config, text| {
            config.maxmemory_policy = EvictionPolicy::parse(text).ok_or(
                "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
            )?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-samples",
        get: |config| config.maxmemory_samples.to_string(),
        set: Some(|config, text| {
            config.maxmemory_samples = integer_in(text, 1, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-eviction-tenacity",
        get: |config| config.maxmemory_eviction_tenacity.to_string(),
        set: Some(|config, text| {
            config.maxmemory_eviction_tenacity = integer_in(text, 0, 100)?;
            Ok(())
        }),
    },
    Parameter {
        name: "lfu-log-factor",
        get: |config| config.lfu_log_factor.to_string(),
        set: Some(|config, text| {
            config.lfu_log_factor = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "lfu-decay-time",
        get: |config| config.lfu_decay_time.to_string(),
        set: Some(|config, text| {
            config.lfu_decay_time = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "slowlog-log-slower-than",
        get: |config| config.slowlog_log_slower_than.to_string(),
        set: Some(|config, text| {
            config.slowlog_log_slower_than = integer_in(text, -1, i64::MAX)?;
            Ok(())
        }),
    },
    Parameter {
        name: "slowlog-max-len",
        get: |config| config.slowlog_max_len.to_string(),
        set: Some(|config, text| {
            config.slowlog_max_len = integer_in(text, 0, i64::MAX)?;
            Ok(())
        }),
    },
    Parameter {
        name: "latency-monitor-threshold",
        get: |config| config.latency_monitor_threshold.to_string(),
        set: Some(|config, text| {
            config.latency_monitor_threshold = integer_in(text, 0, i64::MAX)?;
            Ok(())
        }),
    },
    Parameter {
        name: "timeout",
        get: |config| config.timeout.to_string(),
        set: Some(|config, text| {
            config.timeout = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "proto-max-bulk-len",
        get: |config| config.proto_max_bulk_len.to_string(),
        set: Some(|config, text| {
            config.proto_max_bulk_len = integer_in(text, 1024 * 1024, i64::MAX)?;
            Ok(())
        }),
    },
    Parameter {
        name: "client-query-buffer-limit",
        get: |config| config.client_query_buffer_limit.to_string(),
        set: Some(|config, text| {
            let bytes = parse_memory(text).ok_or("argument must be a memory value")?;
            config.client_query_buffer_limit = in_range(bytes, 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        }),
    },
    Parameter {
        name: "client-output-buffer-limit",
        get: |config| config.client_output_buffer_limit.to_string(),
        set: Some(|config, text| config.client_output_buffer_limit.apply(text)),
    },
    Parameter { name: "enable-debug-command", get: |config| config.enable_debug_command.name().to_string(), set: None },
    Parameter {
        name: "hz",
        get: |config| config.hz.to_string(),
        set: Some(|config, text| {
            // Redis clamps hz into 1..=500 rather than refusing.
            config.hz = parse_integer::<i64>(text)?.clamp(1, 500) as u32;
            Ok(())
        }),
    },
    Parameter {
        name: "active-expire-effort",
        get: |config| config.active_expire_effort.to_string(),
        set: Some(|config, text| {
            config.active_expire_effort = integer_in(text, 1, 10)?;
            Ok(())
        }),
    },
    Parameter {
        name: "hash-max-listpack-entries",
        get: |config| config.hash_max_listpack_entries.to_string(),
        set: Some(|config, text| {
            config.hash_max_listpack_entries = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "hash-max-ziplist-entries",
        get: |config| config.hash_max_listpack_entries.to_string(),
        set: Some(|config, text| {
            config.hash_max_listpack_entries = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "hash-max-listpack-value",
        get: |config| config.hash_max_listpack_value.to_string(),
        set: Some(|config, text| {
            config.hash_max_listpack_value = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "hash-max-ziplist-value",
        get: |config| config.hash_max_listpack_value.to_string(),
        set: Some(|config, text| {
            config.hash_max_listpack_value = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "set-max-intset-entries",
        get: |config| config.set_max_intset_entries.to_string(),
        set: Some(|config, text| {
            config.set_max_intset_entries = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "zset-max-listpack-entries",
        get: |config| config.zset_max_listpack_entries.to_string(),
        set: Some(|config, text| {
            config.zset_max_listpack_entries = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "zset-max-ziplist-entries",
        get: |config| config.zset_max_listpack_entries.to_string(),
        set: Some(|config, text| {
            config.zset_max_listpack_entries = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "zset-max-listpack-value",
        get: |config| config.zset_max_listpack_value.to_string(),
        set: Some(|config, text| {
            config.zset_max_listpack_value = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "zset-max-ziplist-value",
        get: |config| config.zset_max_listpack_value.to_string(),
        set: Some(|config, text| {
            config.zset_max_listpack_value = parse_integer(text)?;
            Ok(())
        }),
    },
    Parameter {
        name: "save",
        get: |config| config.save.to_string(),
        set: Some(|config, text| {
            config.save = SaveRules::try_from(text.to_string())?;
            Ok(())
        }),
    },
    Parameter {
        name: "dir",
        get: |config| config.dir.clone(),
        set: Some(|config, text| {
            config.dir = text.to_string();
            Ok(())
        }),
    },
    Parameter {
        name: "dbfilename",
        get: |config| config.dbfilename.clone(),
        set: Some(|config, text| {
            if text.contains('/') || text.is_empty() {
                return Err("dbfilename can't be a path, just a filename".into());
            }
            config.dbfilename = text.to_string();
            Ok(())
        }),
    },
    Parameter {
        name: "min-replicas-to-write",
        get: |config| config.min_replicas_to_write.to_string(),
        set: Some(|config, text| {
            config.min_replicas_to_write = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "min-replicas-max-lag",
        get: |config| config.min_replicas_max_lag.to_string(),
        set: Some(|config, text| {
            config.min_replicas_max_lag = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "repl-timeout",
        get: |config| config.repl_timeout.to_string(),
        set: Some(|config, text| {
            config.repl_timeout = integer_in(text, 1, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "shutdown-timeout",
        get: |config| config.shutdown_timeout.to_string(),
        set: Some(|config, text| {
            config.shutdown_timeout = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "repl-ping-replica-period",
        get: |config| config.repl_ping_replica_period.to_string(),
        set: Some(|config, text| {
            config.repl_ping_replica_period = integer_in(text, 1, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "masterauth",
        get: |config| config.masterauth.clone(),
        set: Some(|config, text| {
            config.masterauth = text.to_string();
            Ok(())
        }),
    },
    Parameter { name: "appendonly", get: |config| yes_no_text(config.appendonly), set: None },
    Parameter { name: "appendfilename", get: |config| config.appendfilename.clone(), set: None },
    Parameter { name: "appenddirname", get: |config| config.appenddirname.clone(), set: None },
    Parameter {
        name: "appendfsync",
        get: |config| config.appendfsync.name().to_string(),
        set: Some(|config, text| {
            config.appendfsync = FsyncPolicy::parse(text)
                .ok_or_else(|| "argument(s) must be one of the following: always, everysec, no".to_string())?;
            Ok(())
        }),
    },
    Parameter {
        name: "auto-aof-rewrite-percentage",
        get: |config| config.auto_aof_rewrite_percentage.to_string(),
        set: Some(|config, text| {
            config.auto_aof_rewrite_percentage = integer_in(text, 0, i64::from(i32::MAX))?;
            Ok(())
        }),
    },
    Parameter {
        name: "auto-aof-rewrite-min-size",
        get: |config| config.auto_aof_rewrite_min_size.to_string(),
        set: Some(|config, text| {
            config.auto_aof_rewrite_min_size =
                parse_memory(text).ok_or_else(|| "argument must be a memory value".to_string())?;
            Ok(())
        }),
    },
    Parameter {
        name: "aof-load-truncated",
        get: |config| yes_no_text(config.aof_load_truncated),
        set: Some(|config, text| {
            config.aof_load_truncated = parse_yes_no(text)?;
            Ok(())
        }),
    },
];

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
