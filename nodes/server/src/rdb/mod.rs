//! RDB object serialization: the format of `DUMP`/`RESTORE` payloads, of the values that slot
//! migration carries (`SLOTSRESTORE`), and of the values inside an RDB snapshot file.
//!
//! Values are written as Redis 7.0's `rdbSaveObject` writes them, in the encoding our keyspace
//! reports in `OBJECT ENCODING`, so that a `DUMP` from us is, where our value has the same shape
//! as Redis', the same bytes as a `DUMP` from `redis-server` 7.0 (see [`encode`] for where it
//! cannot be). Every encoding a Redis 7.0 payload or an older one may hold is read, and every
//! byte is checked as Redis' deep sanitisation (`sanitize-dump-payload yes`) checks it, whatever
//! the payload claims: a length prefix never allocates before the bytes are there, and no input
//! panics.
//!
//! - [`dump_payload`], [`restore_payload`]: a whole `DUMP` payload: object type, object, RDB
//!   version (2 bytes LE), CRC-64 of everything before (8 bytes LE).
//! - [`write_object`], [`read_object`]: an object without the footer, for the snapshot file.
//! - [`file`]: the snapshot file (`dump.rdb`), written and read as Redis 7.0 does.
//! - [`encode`], [`decode`]: the writer and the reader, with the lower-level pieces (lengths,
//!   strings, values without their type byte) that an RDB file is made of.
//! - [`listpack`], [`ziplist`], [`intset`]: the compact encodings RDB stores as opaque strings.
//! - [`lzf`], [`crc64`]: Redis' string compression and checksum.

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod file;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod ziplist;

pub use decode::{LoadOptions, Reader, read_object};
pub use encode::{object_type, write_len, write_object, write_string, write_value};

use crate::keyspace::{Bulk, Value};

/// The RDB version Redis 7.0 writes (and the newest it reads): payloads stamped with a newer one
/// are refused, as they may hold encodings this reader does not know.
pub const RDB_VERSION: u16 = 10;

/// Object type bytes (`RDB_TYPE_*` in Redis' `rdb.h`).
pub mod types {
    /// A string.
    pub const STRING: u8 = 0;
    /// A list as a length and its elements (before Redis 3.2).
    pub const LIST: u8 = 1;
    /// A set as a length and its members.
    pub const SET: u8 = 2;
    /// A sorted set with scores as strings (before Redis 3.0).
    pub const ZSET: u8 = 3;
    /// A hash as a length and its field/value pairs.
    pub const HASH: u8 = 4;
    /// A sorted set with scores as binary doubles.
    pub const ZSET_2: u8 = 5;
    /// A module value of a pre-release module API.
    pub const MODULE: u8 = 6;
    /// A module value.
    pub const MODULE_2: u8 = 7;
    /// A hash as a zipmap (before Redis 2.6).
    pub const HASH_ZIPMAP: u8 = 9;
    /// A list as a ziplist (before Redis 3.2).
    pub const LIST_ZIPLIST: u8 = 10;
    /// A set of integers as an intset.
    pub const SET_INTSET: u8 = 11;
    /// A sorted set as a ziplist (before Redis 7.0).
    pub const ZSET_ZIPLIST: u8 = 12;
    /// A hash as a ziplist (before Redis 7.0).
    pub const HASH_ZIPLIST: u8 = 13;
    /// A list as quicklist nodes that are ziplists (Redis 3.2 to 6.2).
    pub const LIST_QUICKLIST: u8 = 14;
    /// A stream.
    pub const STREAM_LISTPACKS: u8 = 15;
    /// A hash as a listpack.
    pub const HASH_LISTPACK: u8 = 16;
    /// A sorted set as a listpack.
    pub const ZSET_LISTPACK: u8 = 17;
    /// A list as quicklist nodes, each a listpack or one plain element (Redis 7.0).
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// A stream with consumer group metadata (Redis 7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// Why a payload or an object could not be read. [`RdbError::is_footer`] separates the two
/// replies `RESTORE` gives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    /// Fewer bytes than the version and checksum footer.
    #[error("payload of {0} bytes is shorter than its 10-byte footer")]
    TooShort(usize),
    /// Written by a newer Redis.
    #[error("payload has RDB version {0}, newer than {RDB_VERSION}")]
    VersionTooNew(u16),
    /// The CRC-64 does not match the bytes.
    #[error("payload checksum does not match its contents")]
    Checksum,
    /// The bytes end inside the object.
    #[error("payload ends inside the object")]
    Truncated,
    /// A type byte that is no object type.
    #[error("unknown object type {0}")]
    UnknownType(u8),
    /// An object type this server has no value for (streams, module values).
    #[error("{0} values are not supported")]
    Unsupported(&'static str),
    /// A malformed length, string or compact encoding.
    #[error("corrupt {what}: {why}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        why: &'static str,
    },
    /// A collection without elements, which Redis never stores.
    #[error("empty {0}")]
    Empty(&'static str),
    /// The same member twice in a set, sorted set or hash.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A sorted set score that is not a number.
    #[error("sorted set score is not a number")]
    BadScore,
}

impl RdbError {
    /// Whether the footer was refused (`-ERR DUMP payload version or checksum are wrong`) rather
    /// than the object (`-ERR Bad data format`).
    pub fn is_footer(&self) -> bool {
        matches!(self, RdbError::TooShort(_) | RdbError::VersionTooNew(_) | RdbError::Checksum)
    }
}

/// One element of a listpack or ziplist: the formats store integers apart from strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element<'a> {
    /// An integer (its decimal form is the element's value).
    Int(i64),
    /// A string.
    Str(&'a [u8]),
}

impl Element<'_> {
    /// Calls `read` with the element's bytes, formatting integers without allocating.
    pub fn with_bytes<R>(self, read: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Element::Int(int) => read(itoa::Buffer::new().format(int).as_bytes()),
            Element::Str(bytes) => read(bytes),
        }
    }

    /// The element's bytes, owned.
    pub fn to_bulk(self) -> Bulk {
        self.with_bytes(Bulk::from_slice)
    }
}

/// Length of the footer: RDB version and CRC-64.
const FOOTER: usize = 10;

/// The `DUMP` payload of `value`: the object as [`write_object`] writes it, then the RDB version
/// and the CRC-64 of all that, which `RESTORE` on Redis or here checks.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut payload = Vec::new();
    write_object(&mut payload, value);
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// Checks a payload's footer as Redis' `verifyDumpPayload` does: at least 10 bytes, a version no
/// newer than ours, and a CRC-64 that matches (a zero CRC is no exemption here, unlike in RDB
/// files).
pub fn verify_footer(payload: &[u8]) -> Result<(), RdbError> {
    if payload.len() < FOOTER {
        return Err(RdbError::TooShort(payload.len()));
    }
    let footer = &payload[payload.len() - FOOTER..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(RdbError::VersionTooNew(version));
    }
    let crc = crc64::crc64(&payload[..payload.len() - 8]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(RdbError::Checksum);
    }
    Ok(())
}

/// Reads a `DUMP` payload with Redis' default encoding thresholds (see
/// [`restore_payload_with`], which `RESTORE` uses with the server's).
pub fn restore_payload(payload: &[u8]) -> Result<Value, RdbError> {
    restore_payload_with(payload, &LoadOptions::default())
}

/// Reads a `DUMP` payload: checks the footer, then reads the object.
///
/// As Redis' `restoreCommand`, the object is read from the start of the whole payload, footer
/// included, and whatever follows it is ignored: the checksum already vouches for every byte, and
/// refusing what Redis accepts would break migration from it.
pub fn restore_payload_with(payload: &[u8], options: &LoadOptions) -> Result<Value, RdbError> {
    verify_footer(payload)?;
    read_object(payload, options).map(|(value, _)| value)
}

#[cfg(test)]
mod tests;
