//! The snapshot file (`dump.rdb`) in Redis 7.0's layout, so that `redis-check-rdb` accepts ours,
//! `redis-server` 7.0 loads ours, and we load theirs.
//!
//! The file is `REDIS0010`, auxiliary fields (`redis-ver`, `redis-bits`, `ctime`, `used-mem`,
//! `aof-base`), then for each database holding keys a `SELECTDB` and a `RESIZEDB` opcode and its
//! keys, each an optional `EXPIRETIME_MS` and then a type byte, the key and the value (the
//! object encoding of `DUMP`, see [`super::encode`]), then `EOF` and the CRC-64 of every byte
//! before the checksum. Reading accepts what Redis 7.0 and older versions write: the same
//! opcodes, expiry in seconds, the LRU/LFU hints (skipped), a zero checksum (Redis'
//! `rdbchecksum no`), and refuses module data and functions, which this server has no place for.

use super::decode::{LoadOptions, Reader};
use super::encode::{object_type, write_len, write_string, write_value};
use super::{RDB_VERSION, RdbError, crc64};
use crate::keyspace::{Key, Keyspace, Value};

/// Opcodes between keys (`RDB_OPCODE_*` in Redis' `rdb.h`).
mod opcode {
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 0xf7;
    /// The key's LRU idle time in seconds, as a length.
    pub const IDLE: u8 = 0xf8;
    /// The key's LFU counter, one byte.
    pub const FREQ: u8 = 0xf9;
    /// An auxiliary field: two strings.
    pub const AUX: u8 = 0xfa;
    /// The sizes of the database's key and expiry tables: two lengths.
    pub const RESIZEDB: u8 = 0xfb;
    /// The next key's expiry, Unix milliseconds, 8 bytes little endian.
    pub const EXPIRETIME_MS: u8 = 0xfc;
    /// The next key's expiry, Unix seconds, 4 bytes little endian (before Redis 3.0).
    pub const EXPIRETIME: u8 = 0xfd;
    /// The database the following keys belong to: a length.
    pub const SELECTDB: u8 = 0xfe;
    /// The end, then the checksum.
    pub const EOF: u8 = 0xff;
    /// A function library (Redis 7.0).
    pub const FUNCTION2: u8 = 0xf5;
    /// A function library (a Redis 7.0 release candidate).
    pub const FUNCTION: u8 = 0xf6;
}

/// What the writer says about itself in the auxiliary fields.
#[derive(Clone, Debug)]
pub struct Header {
    /// `redis-ver`: the Redis version we behave as.
    pub version: String,
    /// `ctime`: when the snapshot was taken (Unix seconds).
    pub ctime_secs: u64,
    /// `used-mem`: memory in use when it was taken.
    pub used_memory: u64,
}

/// Writes every key of `keyspace` that has not expired at `now_ms`.
pub fn write(keyspace: &Keyspace, header: &Header, now_ms: u64) -> Vec<u8> {
    let mut out = format!("REDIS{RDB_VERSION:04}").into_bytes();
    let bits = (usize::BITS).to_string();
    let ctime = header.ctime_secs.to_string();
    let used = header.used_memory.to_string();
    for (field, value) in [
        ("redis-ver", header.version.as_str()),
        ("redis-bits", &bits),
        ("ctime", &ctime),
        ("used-mem", &used),
        ("aof-base", "0"),
    ] {
        out.push(opcode::AUX);
        write_string(&mut out, field.as_bytes());
        write_string(&mut out, value.as_bytes());
    }
    for (index, db) in keyspace.dbs().iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        out.push(opcode::SELECTDB);
        write_len(&mut out, index as u64);
        out.push(opcode::RESIZEDB);
        write_len(&mut out, db.len() as u64);
        write_len(&mut out, db.volatile_len() as u64);
        for (key, entry) in db.keys() {
            let expire_at = entry.expire_at();
            if expire_at.is_some_and(|at| at <= now_ms) {
                continue;
            }
            if let Some(at) = expire_at {
                out.push(opcode::EXPIRETIME_MS);
                out.extend_from_slice(&at.to_le_bytes());
            }
            write_key_value(&mut out, key, &entry.value);
        }
    }
    out.push(opcode::EOF);
    let checksum = crc64::crc64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// A type byte, the key, the value.
fn write_key_value(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    out.push(object_type(value));
    write_string(out, key);
    write_value(out, value);
}

/// One key read from a snapshot.
#[derive(Debug)]
pub struct Loaded {
    /// Its database.
    pub db: usize,
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Value,
    /// Its expiry (Unix ms), if it has one.
    pub expire_at_ms: Option<u64>,
}

/// What a snapshot said about itself.
#[derive(Debug, Default)]
pub struct Summary {
    /// The RDB version in the header.
    pub version: u16,
    /// The auxiliary fields, in file order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys read.
    pub keys: u64,
}

/// Reads a snapshot, handing each key to `each`; `options` gives the loading options of a
/// database (its compact-encoding limits and hash seed). Any corruption, an unknown opcode or a
/// wrong checksum is an error, before or after some keys were handed over.
pub fn read(
    bytes: &[u8],
    options: impl Fn(usize) -> LoadOptions,
    mut each: impl FnMut(Loaded) -> Result<(), RdbError>,
) -> Result<Summary, RdbError> {
    let version = header_version(bytes)?;
    let mut summary = Summary { version, ..Summary::default() };
    let mut reader = Reader::new(&bytes[9..]);
    let mut db = 0usize;
    let mut expire_at_ms = None;
    loop {
        let kind = reader.read_u8()?;
        match kind {
            opcode::EOF => break,
            opcode::AUX => {
                let field = reader.read_string()?.into_owned();
                let value = reader.read_string()?.into_owned();
                summary.aux.push((field, value));
            }
            opcode::SELECTDB => {
                db = usize::try_from(reader.read_len()?).map_err(|_| corrupt("database index too large"))?;
            }
            opcode::RESIZEDB => {
                reader.read_len()?;
                reader.read_len()?;
            }
            opcode::EXPIRETIME_MS => expire_at_ms = Some(u64::from_le_bytes(reader.read_array()?)),
            opcode::EXPIRETIME => {
                expire_at_ms = Some(u64::from(u32::from_le_bytes(reader.read_array()?)) * 1000);
            }
            // Eviction hints: this server starts every key fresh.
            opcode::IDLE => {
                reader.read_len()?;
            }
            opcode::FREQ => {
                reader.read_u8()?;
            }
            opcode::MODULE_AUX => return Err(RdbError::Unsupported("module auxiliary data")),
            opcode::FUNCTION | opcode::FUNCTION2 => return Err(RdbError::Unsupported("function library")),
            _ => {
                let kind = Reader::check_type(kind)?;
                let key = Key::from_slice(&reader.read_string()?);
                let value = reader.read_value(kind, &options(db))?;
                summary.keys += 1;
                each(Loaded { db, key, value, expire_at_ms: expire_at_ms.take() })?;
            }
        }
    }
    // The checksum covers everything up to and including EOF; zero means none was computed.
    let end = 9 + reader.position();
    let stored = bytes.get(end..end + 8).ok_or(RdbError::Truncated)?;
    let stored = u64::from_le_bytes(stored.try_into().map_err(|_| RdbError::Truncated)?);
    if version >= 5 && stored != 0 && stored != crc64::crc64(&bytes[..end]) {
        return Err(RdbError::Checksum);
    }
    Ok(summary)
}

/// The version in `REDIS0010`-style magic.
fn header_version(bytes: &[u8]) -> Result<u16, RdbError> {
    let magic = bytes.get(..9).ok_or(RdbError::Truncated)?;
    if &magic[..5] != b"REDIS" {
        return Err(corrupt("not an RDB file"));
    }
    let version: u16 = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| corrupt("bad version in the header"))?;
    if version == 0 || version > RDB_VERSION {
        return Err(RdbError::VersionTooNew(version));
    }
    Ok(version)
}

fn corrupt(why: &'static str) -> RdbError {
    RdbError::Corrupt { what: "snapshot", why }
}
