//! Writing values as Redis 7.0's `rdbSaveObject` writes them.
//!
//! Each value is written in the encoding our keyspace gives it, which is the one Redis gives the
//! same value: strings with Redis' integer and LZF encodings, small hashes and sorted sets as
//! listpacks, sets of integers as intsets, lists as quicklist nodes of listpacks. The bytes equal
//! Redis' `DUMP` of the same value except where Redis' bytes depend on history we do not keep:
//!
//! - hashes and sets in `hashtable` form, whose order is Redis' hash table order (seeded at random
//!   per process: two Redis servers differ too);
//! - lists: Redis' node boundaries depend on which end each element was pushed at and on
//!   deletions; we split as a list built by `RPUSH` alone is split;
//! - intsets that once held a wider integer since removed (Redis never narrows an intset).

use crate::keyspace::{List, Str, Value, ZSet};

use super::listpack::ListpackWriter;
use super::{intset, lzf, types};

/// Redis' default `list-max-listpack-size -2`: a list node grows up to 8 KiB.
const LIST_NODE_BYTES: usize = 8192;
/// `QUICKLIST_NODE_CONTAINER_PACKED`: the node is a listpack.
const CONTAINER_PACKED: u64 = 2;
/// Strings up to this long are never worth compressing (Redis' rule, `rdbSaveRawString`).
const COMPRESS_ABOVE: usize = 20;

/// Encoded-string markers (the `RDB_ENCVAL` length type with its `RDB_ENC_*` subtype).
const ENC_INT8: u8 = 0xc0;
const ENC_INT16: u8 = 0xc1;
const ENC_INT32: u8 = 0xc2;
const ENC_LZF: u8 = 0xc3;

/// The object type byte Redis writes for `value` in its current encoding (`rdbSaveObjectType`).
pub fn object_type(value: &Value) -> u8 {
    match value {
        Value::Str(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Set(set) if set.encoding() == "intset" => types::SET_INTSET,
        Value::Set(_) => types::SET,
        Value::ZSet(zset) if zset.encoding() == "listpack" => types::ZSET_LISTPACK,
        Value::ZSet(_) => types::ZSET_2,
        Value::Hash(hash) if hash.encoding() == "listpack" => types::HASH_LISTPACK,
        Value::Hash(_) => types::HASH,
    }
}

/// Writes `value` with its type byte: a `DUMP` payload without the footer.
pub fn write_object(out: &mut Vec<u8>, value: &Value) {
    out.push(object_type(value));
    write_value(out, value);
}

/// Writes a length (`rdbSaveLen`): 6 bits in one byte, 14 bits in two, else a marker and 32 or
/// 64 bits big endian.
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The integer encoding of `value` if it fits 32 bits (`rdbEncodeInteger`).
fn encode_int(value: i64, out: &mut Vec<u8>) -> bool {
    if let Ok(byte) = i8::try_from(value) {
        out.extend_from_slice(&[ENC_INT8, byte as u8]);
    } else if let Ok(short) = i16::try_from(value) {
        out.push(ENC_INT16);
        out.extend_from_slice(&short.to_le_bytes());
    } else if let Ok(int) = i32::try_from(value) {
        out.push(ENC_INT32);
        out.extend_from_slice(&int.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Writes a string as Redis' `rdbSaveRawString` does: up to 11 bytes holding a canonical integer
/// that fits 32 bits as that integer; over 20 bytes LZF-compressed if that saves at least 4
/// bytes (Redis' default `rdbcompression yes`); else length and bytes.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() <= 11
        && let Some(int) = resp::parse_i64(bytes)
        && encode_int(int, out)
    {
        return;
    }
    if bytes.len() > COMPRESS_ABOVE
        && let Some(compressed) = lzf::compress(bytes, bytes.len() - 4)
    {
        out.push(ENC_LZF);
        write_len(out, compressed.len() as u64);
        write_len(out, bytes.len() as u64);
        out.extend_from_slice(&compressed);
        return;
    }
    write_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes a string value (`rdbSaveStringObject`): an `int`-encoded string as its integer, else
/// its bytes.
fn write_str(out: &mut Vec<u8>, string: &Str) {
    match string {
        Str::Int(int) => {
            if !encode_int(*int, out) {
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(*int).as_bytes();
                write_len(out, digits.len() as u64);
                out.extend_from_slice(digits);
            }
        }
        Str::Embstr(bytes) | Str::Raw(bytes) => write_string(out, bytes),
    }
}

/// Writes `value` without its type byte, in the encoding [`object_type`] names.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(string) => write_str(out, string),
        Value::List(list) => write_list(out, list),
        Value::Set(set) if set.encoding() == "intset" => {
            let members: Vec<i64> = set.members().iter().filter_map(|member| resp::parse_i64(member)).collect();
            debug_assert_eq!(members.len(), set.len(), "an intset holds integers only");
            write_string(out, &intset::write(&members));
        }
        Value::Set(set) => {
            write_len(out, set.len() as u64);
            for member in set.members() {
                write_string(out, &member);
            }
        }
        Value::ZSet(zset) if zset.encoding() == "listpack" => write_zset_listpack(out, zset),
        Value::ZSet(zset) => {
            // Greatest first, as Redis walks its skiplist from the tail: loading then inserts
            // each member at the head.
            write_len(out, zset.len() as u64);
            for (score, member) in zset.iter_from_rank(0, true) {
                write_string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Hash(hash) if hash.encoding() == "listpack" => {
            let mut listpack = ListpackWriter::new();
            for (field, value) in hash.iter() {
                listpack.push(field);
                listpack.push(value);
            }
            write_string(out, &listpack.finish());
        }
        Value::Hash(hash) => {
            write_len(out, hash.len() as u64);
            for (field, value) in hash.iter() {
                write_string(out, field);
                write_string(out, value);
            }
        }
    }
}

/// A sorted set's listpack: member then score, in order. A score that is a whole number within
/// ±2^62 is stored as that integer (Redis' `zzlInsertAt` with `double2ll`; -0 becomes 0), any
/// other as the text Redis' `d2string` gives it (`%.17g`).
fn write_zset_listpack(out: &mut Vec<u8>, zset: &ZSet) {
    /// `LLONG_MAX / 2` as a double: the range `double2ll` converts.
    const WHOLE_LIMIT: f64 = 4_611_686_018_427_387_904.0;
    let mut listpack = ListpackWriter::new();
    for (score, member) in zset.iter_from_rank(0, false) {
        listpack.push(member);
        let whole = score as i64;
        if (-WHOLE_LIMIT..=WHOLE_LIMIT).contains(&score) && whole as f64 == score {
            listpack.push_int(whole);
        } else {
            listpack.push(resp::encode::format_double(score).as_bytes());
        }
    }
    write_string(out, &listpack.finish());
}

/// A list as quicklist nodes, each a listpack filled as Redis' `quicklistPushTail` fills it.
fn write_list(out: &mut Vec<u8>, list: &List) {
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut node = ListpackWriter::new();
    for element in list.iter() {
        if !node.is_empty() && !fits_in_node(node.size(), element.len()) {
            nodes.push(std::mem::take(&mut node).finish());
        }
        node.push(element);
    }
    if !node.is_empty() {
        nodes.push(node.finish());
    }
    write_len(out, nodes.len() as u64);
    for node in &nodes {
        write_len(out, CONTAINER_PACKED);
        write_string(out, node);
    }
}

/// Whether an element of `len` bytes joins a node of `node_bytes` (Redis 7.0's
/// `_quicklistNodeAllowInsert` under the default size limit: it counts the element's length as
/// text, integers included, plus a fixed 8-byte estimate of its overhead).
fn fits_in_node(node_bytes: usize, len: usize) -> bool {
    const OVERHEAD_ESTIMATE: usize = 8;
    node_bytes + len + OVERHEAD_ESTIMATE <= LIST_NODE_BYTES
}
