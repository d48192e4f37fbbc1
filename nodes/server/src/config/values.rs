//! The values of options that are not plain numbers or strings: eviction policies, `DEBUG`'s
//! setting, fsync policies, client output limits, save rules, memory amounts and yes/no, each
//! with Redis' spelling both ways.

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
pub(super) fn memory_amount<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
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
pub(super) fn yes_no_text(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// Parses Redis' `yes`/`no` (any case).
pub(super) fn parse_yes_no(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

/// A yes/no option in a config file: `"yes"`/`"no"` as Redis writes it, or a TOML boolean.
pub(super) mod yes_no {
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
