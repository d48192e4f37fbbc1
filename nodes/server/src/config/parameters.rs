//! Every parameter `CONFIG GET` and `CONFIG SET` know, in the order `CONFIG GET *` lists them:
//! how each is shown, and how each that may change at run time is set from text.

use super::ServerConfig;
use super::values::{EvictionPolicy, FsyncPolicy, SaveRules, parse_memory, parse_yes_no, yes_no_text};

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
