//! Values and the entries that hold them.

pub use super::bulk::Bulk;
use super::collections::{Hash, List, Set, ZSet};

/// A string value, in the encoding Redis would give it (`OBJECT ENCODING` reports it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Str {
    /// A canonical 64-bit integer (`int`): `INCR` works on it without parsing.
    Int(i64),
    /// Up to 44 bytes stored when the value was set whole (`embstr`).
    Embstr(Bulk),
    /// Anything longer, or any string modified in place (`APPEND`, `SETRANGE`, `SETBIT`).
    Raw(Bulk),
}

/// Redis' `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
const EMBSTR_LIMIT: usize = 44;

impl Str {
    /// A string computed by the server (`INCRBYFLOAT`'s result): `embstr` up to 44 bytes, else raw,
    /// never `int` (Redis' `createStringObject`).
    pub fn from_computed(bytes: &[u8]) -> Str {
        if bytes.len() <= EMBSTR_LIMIT {
            Str::Embstr(Bulk::from_slice(bytes))
        } else {
            Str::Raw(Bulk::from_slice(bytes))
        }
    }

    /// The string as Redis stores a value set whole (`SET`, `MSET`, `GETSET`…): an integer if the
    /// bytes are a canonical integer of at most 20 characters, `embstr` up to 44 bytes, else raw.
    pub fn from_value(bytes: &[u8]) -> Str {
        if bytes.len() <= 20
            && let Some(int) = resp::parse_i64(bytes)
        {
            return Str::Int(int);
        }
        if bytes.len() <= EMBSTR_LIMIT {
            Str::Embstr(Bulk::from_slice(bytes))
        } else {
            Str::Raw(Bulk::from_slice(bytes))
        }
    }

    /// The string's bytes (integers formatted in decimal).
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Str::Int(int) => std::borrow::Cow::Owned(itoa::Buffer::new().format(*int).as_bytes().to_vec()),
            Str::Embstr(bytes) | Str::Raw(bytes) => std::borrow::Cow::Borrowed(bytes),
        }
    }

    /// Calls `write` with the string's bytes, without allocating for integers.
    pub fn with_bytes<R>(&self, write: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Str::Int(int) => write(itoa::Buffer::new().format(*int).as_bytes()),
            Str::Embstr(bytes) | Str::Raw(bytes) => write(bytes),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Str::Int(int) => itoa::Buffer::new().format(*int).len(),
            Str::Embstr(bytes) | Str::Raw(bytes) => bytes.len(),
        }
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The integer the string holds, if it is one (as `INCR` reads it).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Str::Int(int) => Some(*int),
            Str::Embstr(bytes) | Str::Raw(bytes) => resp::parse_i64(bytes),
        }
    }

    /// Heap bytes the string holds beyond its inline part.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Str::Int(_) => 0,
            Str::Embstr(bytes) | Str::Raw(bytes) => super::memory::heap_of(bytes),
        }
    }

    /// The bytes, made raw for modification in place (what Redis' `dbUnshareStringValue` does).
    pub fn make_raw(&mut self) -> &mut Bulk {
        if !matches!(self, Str::Raw(_)) {
            let bytes = Bulk::from_slice(&self.bytes());
            *self = Str::Raw(bytes);
        }
        match self {
            Str::Raw(bytes) => bytes,
            // Just made raw above.
            Str::Int(_) | Str::Embstr(_) => unreachable!("made raw above"),
        }
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Int(_) => "int",
            Str::Embstr(_) => "embstr",
            Str::Raw(_) => "raw",
        }
    }
}

/// A value of any type. Collections are boxed so that a value stays two words.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(Str),
    /// A hash.
    Hash(Box<Hash>),
    /// A set.
    Set(Box<Set>),
    /// A list.
    List(Box<List>),
    /// A sorted set.
    ZSet(Box<ZSet>),
}

impl Value {
    /// The string, if this is one (`None` means "wrong type" to a string command).
    pub fn as_str_mut(&mut self) -> Option<&mut Str> {
        match self {
            Value::Str(string) => Some(string),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Value::Str(string) => Some(string),
            _ => None,
        }
    }

    /// The hash, if this is one.
    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(hash) => Some(hash),
            _ => None,
        }
    }

    /// The set, if this is one.
    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        match self {
            Value::Set(set) => Some(set),
            _ => None,
        }
    }

    /// The sorted set, if this is one.
    pub fn as_zset_mut(&mut self) -> Option<&mut ZSet> {
        match self {
            Value::ZSet(zset) => Some(zset),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list_mut(&mut self) -> Option<&mut List> {
        match self {
            Value::List(list) => Some(list),
            _ => None,
        }
    }

    /// Whether this is an empty collection (which Redis never keeps: it deletes the key).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(hash) => hash.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::List(list) => list.is_empty(),
            Value::ZSet(zset) => zset.is_empty(),
        }
    }

    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
        }
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(string) => string.encoding(),
            Value::Hash(hash) => hash.encoding(),
            Value::Set(set) => set.encoding(),
            Value::List(_) => "quicklist",
            Value::ZSet(zset) => zset.encoding(),
        }
    }

    /// Heap bytes the value holds beyond its inline part: a string's spilled bytes, or a
    /// collection's box and everything in it.
    pub fn heap_bytes(&self) -> usize {
        use super::memory::allocation;
        use std::mem::size_of;
        match self {
            Value::Str(string) => string.heap_bytes(),
            Value::Hash(hash) => allocation(size_of::<Hash>()) + hash.bytes(),
            Value::Set(set) => allocation(size_of::<Set>()) + set.bytes(),
            Value::List(list) => allocation(size_of::<List>()) + list.bytes(),
            Value::ZSet(zset) => allocation(size_of::<ZSet>()) + zset.bytes(),
        }
    }
}

/// A key's value with its expiry and access metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    pub(super) expire_at: u64,
    /// The LRU clock (seconds, wrapping) when the key was last accessed, for `OBJECT IDLETIME`
    /// and eviction.
    pub(super) accessed: u32,
    /// The heap bytes the database counted for this entry's key and value, in 8-byte units (it
    /// fits the struct's padding): what to take back when the entry changes or goes.
    pub(super) charged: u32,
}

impl Entry {
    /// The expiry in Unix milliseconds, if the key has one.
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    /// The TTL a migration sends: the remaining milliseconds (at least 1, so a key about to
    /// expire still arrives with an expiry), or 0 for none.
    pub fn ttl_to_send(&self, now_ms: u64) -> u64 {
        self.expire_at().map_or(0, |at| at.saturating_sub(now_ms).max(1))
    }

    /// Seconds since the key was last accessed, as Redis' `estimateObjectIdleTime` computes it
    /// from its 24-bit LRU clock (which wraps).
    pub fn idle_seconds(&self, now_ms: u64) -> u32 {
        let clock = lru_clock(now_ms);
        if clock >= self.accessed { clock - self.accessed } else { clock + (0x00ff_ffff - self.accessed) }
    }

    /// Whether the key has expired at `now_ms` (Redis: strictly after the expiry time).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && now_ms > self.expire_at
    }
}

/// Redis' LRU clock: seconds, in 24 bits (it wraps every 194 days; idle times are computed
/// modulo the wrap).
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & 0x00ff_ffff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_take_redis_encodings() {
        assert_eq!(Str::from_value(b"12345").encoding(), "int");
        assert_eq!(Str::from_value(b"-9223372036854775808").encoding(), "int");
        assert_eq!(Str::from_value(b"012").encoding(), "embstr");
        assert_eq!(Str::from_value(b"+1").encoding(), "embstr");
        assert_eq!(Str::from_value(b"99999999999999999999").encoding(), "embstr", "overflows i64");
        assert_eq!(Str::from_value(&[b'x'; 44]).encoding(), "embstr");
        assert_eq!(Str::from_value(&[b'x'; 45]).encoding(), "raw");
        let mut int = Str::from_value(b"42");
        assert_eq!(int.len(), 2);
        int.make_raw().push(b'!');
        assert_eq!((int.encoding(), &*int.bytes()), ("raw", &b"42!"[..]));
    }
}
