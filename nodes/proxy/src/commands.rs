//! Codis' command table: which commands write, which must go to a master, which the proxy
//! refuses, and where each command's routing key is.
//!
//! Names are matched whole, upper-cased: Codis' fast path only upper-cases letters and `:`, so
//! any name with another byte (every dashed name, `SLOTSMGRT-ASYNC-CANCEL` among them) skips its
//! table and is forwarded, letting a client abort a migration through the proxy. Here a name
//! is looked up as sent, whatever its bytes.

use std::collections::HashMap;
use std::sync::LazyLock;

/// What the proxy does with a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Never forwarded: `-ERR … command 'X' is not allowed`.
    NotAllowed,
    /// Forwarded to the slot's master; reads may go to replicas unless `MasterOnly`.
    Read,
    /// Reads that must see the master (`*SCAN`, `SLOTSINFO`, `SLOTSSCAN`).
    MasterOnly,
    /// Writes.
    Write,
    /// Not in the table: forwarded to the master, as Codis' `MayWrite`.
    MayWrite,
}

impl Kind {
    /// Whether replicas may serve it.
    pub fn replica_ok(self) -> bool {
        self == Kind::Read
    }
}

/// Where a command's routing key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAt {
    /// No key: routed to slot 0's backend, as Codis does.
    None,
    /// At this argument position.
    Arg(usize),
    /// A channel at this argument position (`PUBLISH`): routed by its slot as a key is, but it
    /// names no data, so while the slot migrates it goes straight to the target (there is
    /// nothing to move first, and the migration wrapper refuses pub/sub commands).
    Channel(usize),
}

impl KeyAt {
    /// The argument position of the routing key or channel, if any.
    pub fn position(self) -> Option<usize> {
        match self {
            KeyAt::None => None,
            KeyAt::Arg(at) | KeyAt::Channel(at) => Some(at),
        }
    }
}

/// One command's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// What to do with it.
    pub kind: Kind,
    /// Where its key is.
    pub key: KeyAt,
}

const NOT_ALLOWED: &[&str] = &[
    "ASKING",
    "BGREWRITEAOF",
    "BGSAVE",
    "BITOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "CLIENT",
    "CLUSTER",
    "CONFIG",
    "DBSIZE",
    "DEBUG",
    "DISCARD",
    "EXEC",
    "FLUSHALL",
    "FLUSHDB",
    "HOST:",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "MIGRATE",
    "MONITOR",
    "MOVE",
    "MULTI",
    "OBJECT",
    "POST",
    "PSUBSCRIBE",
    "PSYNC",
    "PUNSUBSCRIBE",
    "RANDOMKEY",
    "READONLY",
    "READWRITE",
    "RENAME",
    "RENAMENX",
    "REPLCONF",
    "RESTORE",
    "RESTORE-ASKING",
    "SAVE",
    "SCAN",
    "SCRIPT",
    "SHUTDOWN",
    "SLAVEOF",
    "REPLICAOF",
    "SLOTSCHECK",
    "SLOTSDEL",
    "SLOTSMGRTONE",
    "SLOTSMGRTSLOT",
    "SLOTSMGRTTAGONE",
    "SLOTSMGRTTAGSLOT",
    "SLOTSMGRTONE-ASYNC",
    "SLOTSMGRTSLOT-ASYNC",
    "SLOTSMGRTTAGONE-ASYNC",
    "SLOTSMGRTTAGSLOT-ASYNC",
    "SLOTSMGRTONE-ASYNC-DUMP",
    "SLOTSMGRTTAGONE-ASYNC-DUMP",
    "SLOTSMGRT-ASYNC-FENCE",
    "SLOTSMGRT-ASYNC-CANCEL",
    "SLOTSMGRT-ASYNC-STATUS",
    "SLOTSMGRT-EXEC-WRAPPER",
    "SLOTSRESTORE",
    "SLOTSRESTORE-ASYNC",
    "SLOTSRESTORE-ASYNC-AUTH",
    "SLOTSRESTORE-ASYNC-SELECT",
    "SLOTSRESTORE-ASYNC-ACK",
    "SLOWLOG",
    "SUBSCRIBE",
    "SYNC",
    "TIME",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WATCH",
    "SWAPDB",
    "COPY",
    "FAILOVER",
    "EPOCH",
    "MODULE",
    "ACL",
    "FUNCTION",
    "RESET",
    "SSUBSCRIBE",
    "SUNSUBSCRIBE",
    "SPUBLISH",
];

const MASTER_ONLY: &[&str] = &["HSCAN", "SSCAN", "ZSCAN", "SLOTSINFO", "SLOTSSCAN"];

const WRITES: &[&str] = &[
    "APPEND",
    "BITFIELD",
    "DECR",
    "DECRBY",
    "DEL",
    "UNLINK",
    "EVAL",
    "EVALSHA",
    "EXPIRE",
    "EXPIREAT",
    "GEOADD",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GETSET",
    "GETDEL",
    "GETEX",
    "HDEL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HMSET",
    "HSET",
    "HSETNX",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "LINSERT",
    "LPOP",
    "LPUSH",
    "LPUSHX",
    "LREM",
    "LSET",
    "LTRIM",
    "LMOVE",
    "LMPOP",
    "MSET",
    "MSETNX",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PFADD",
    "PFDEBUG",
    "PFMERGE",
    "PSETEX",
    "PUBLISH",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SDIFFSTORE",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SINTERSTORE",
    "SMOVE",
    "SORT",
    "SPOP",
    "SREM",
    "SUNIONSTORE",
    "TOUCH",
    "ZADD",
    "ZINCRBY",
    "ZINTERSTORE",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZUNIONSTORE",
    "ZDIFFSTORE",
    "ZRANGESTORE",
    "ZMPOP",
];

const READS: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "DUMP",
    "ECHO",
    "EXISTS",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HSTRLEN",
    "HVALS",
    "HRANDFIELD",
    "INFO",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "PFCOUNT",
    "PING",
    "PTTL",
    "PEXPIRETIME",
    "EXPIRETIME",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMISMEMBER",
    "SMEMBERS",
    "SRANDMEMBER",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TTL",
    "TYPE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCORE",
    "ZRANDMEMBER",
    "ZDIFF",
    "ZINTER",
    "ZUNION",
    "ZINTERCARD",
    "SLOTSHASHKEY",
    "SLOTSMAPPING",
    "LCS",
    "COMMAND",
    "HELLO",
    "AUTH",
    "SELECT",
    "QUIT",
];

/// Commands whose first key follows a count: its position.
const AFTER_NUMKEYS: &[(&str, usize)] = &[
    ("ZINTERSTORE", 3),
    ("ZUNIONSTORE", 3),
    ("ZDIFFSTORE", 3),
    ("EVAL", 3),
    ("EVALSHA", 3),
    ("EVAL_RO", 3),
    ("EVALSHA_RO", 3),
    ("ZINTER", 2),
    ("ZUNION", 2),
    ("ZDIFF", 2),
    ("ZINTERCARD", 2),
    ("SINTERCARD", 2),
    ("LMPOP", 2),
    ("ZMPOP", 2),
];

/// Commands routed by a channel rather than a key.
const CHANNEL_KEYED: &[&str] = &["PUBLISH"];

/// Commands with no key.
const KEYLESS: &[&str] =
    &["PING", "ECHO", "INFO", "COMMAND", "HELLO", "AUTH", "SELECT", "QUIT", "SLOTSMAPPING", "TIME"];

static TABLE: LazyLock<HashMap<&'static [u8], Info>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    let lists: [(&[&str], Kind); 4] =
        [(READS, Kind::Read), (WRITES, Kind::Write), (MASTER_ONLY, Kind::MasterOnly), (NOT_ALLOWED, Kind::NotAllowed)];
    for (names, kind) in lists {
        for name in names {
            let key = if KEYLESS.contains(name) {
                KeyAt::None
            } else if CHANNEL_KEYED.contains(name) {
                KeyAt::Channel(1)
            } else {
                AFTER_NUMKEYS.iter().find(|(entry, _)| entry == name).map_or(KeyAt::Arg(1), |(_, at)| KeyAt::Arg(*at))
            };
            table.insert(name.as_bytes(), Info { kind, key });
        }
    }
    table
});

/// The longest name in the table.
const MAX_NAME: usize = 32;

/// A command name upper-cased on the stack: the proxy matches every request's name, and
/// allocating for it would cost a heap round trip per request.
#[derive(Clone, Copy)]
pub struct UpperName {
    bytes: [u8; MAX_NAME],
    /// `None` for a name longer than any in the table.
    len: Option<usize>,
}

impl UpperName {
    /// The upper-cased name; empty for a name too long to be one we know (or not UTF-8).
    pub fn as_str(&self) -> &str {
        self.len.and_then(|len| std::str::from_utf8(&self.bytes[..len]).ok()).unwrap_or_default()
    }
}

/// Upper-cases `name` on the stack.
pub fn upper(name: &[u8]) -> UpperName {
    let mut bytes = [0u8; MAX_NAME];
    if name.len() > MAX_NAME {
        return UpperName { bytes, len: None };
    }
    for (slot, byte) in bytes.iter_mut().zip(name) {
        *slot = byte.to_ascii_uppercase();
    }
    UpperName { bytes, len: Some(name.len()) }
}

/// Looks an upper-cased name up; a name not in the table is `MayWrite`, keyed by its first
/// argument, as Codis treats it.
pub fn lookup_upper(name: &UpperName) -> Info {
    let unknown = Info { kind: Kind::MayWrite, key: KeyAt::Arg(1) };
    match name.len {
        Some(len) => TABLE.get(&name.bytes[..len]).copied().unwrap_or(unknown),
        None => unknown,
    }
}

/// Looks `name` up (any case).
pub fn lookup(name: &[u8]) -> Info {
    lookup_upper(&upper(name))
}

/// The upper-cased name, whole, for error messages and statistics.
pub fn upper_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

/// Every key the proxy routes `request` by: each key of the multi-key commands it splits
/// (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`) and of `MSETNX`, else the routing key,
/// else none.
pub fn routing_keys<'a>(upper: &str, info: Info, request: &'a resp::Request) -> Vec<&'a [u8]> {
    match upper {
        "MGET" | "DEL" | "UNLINK" | "EXISTS" | "TOUCH" => request.args().skip(1).collect(),
        "MSET" | "MSETNX" => request.args().skip(1).step_by(2).collect(),
        _ => info.key.position().and_then(|at| request.arg(at)).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_names_are_matched_whole() {
        for name in ["slotsmgrt-async-cancel", "SLOTSMGRT-EXEC-WRAPPER", "SlotsRestore-Async", "restore-asking"] {
            assert_eq!(lookup(name.as_bytes()).kind, Kind::NotAllowed, "{name}");
        }
    }

    #[test]
    fn kinds_and_key_positions() {
        assert_eq!(lookup(b"get"), Info { kind: Kind::Read, key: KeyAt::Arg(1) });
        assert_eq!(lookup(b"SET").kind, Kind::Write);
        assert_eq!(lookup(b"hscan").kind, Kind::MasterOnly);
        assert_eq!(lookup(b"zunionstore").key, KeyAt::Arg(3));
        assert_eq!(lookup(b"EVAL").key, KeyAt::Arg(3));
        assert_eq!(lookup(b"lmpop").key, KeyAt::Arg(2));
        assert_eq!(lookup(b"ping").key, KeyAt::None);
        assert_eq!(lookup(b"xadd"), Info { kind: Kind::MayWrite, key: KeyAt::Arg(1) });
        assert_eq!(lookup(&[b'A'; 40]).kind, Kind::MayWrite);
    }
}
