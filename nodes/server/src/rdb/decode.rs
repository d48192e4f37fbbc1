//! Reading values as Redis 7.0's `rdbLoadObject` reads them, with deep sanitisation always on.
//!
//! Every object type a Redis 7.0 payload or an older one may hold is read into our value of the
//! same type, in the encoding Redis would give it after loading (a compact form stays compact
//! unless it has more elements than the server's thresholds allow; a collection written element
//! by element is compact if it qualifies). What Redis refuses only under
//! `sanitize-dump-payload yes` we always refuse: duplicate set members, hash fields or sorted set
//! members, malformed listpacks, ziplists, intsets and zipmaps, empty collections, and scores that
//! are not numbers.
//!
//! Nothing here trusts a length: every read checks the bytes are there first, and collections
//! never reserve room for more elements than the remaining bytes could hold.

use std::borrow::Cow;

use foldhash::fast::FixedState;

use crate::keyspace::{EncodingLimits, Hash, List, Set, Str, Value, ZSet};

use super::{Element, RdbError, intset, listpack, lzf, types, ziplist};

/// What loading needs from the server: its encoding thresholds (`hash-max-listpack-entries`…),
/// which decide the encoding of what is loaded, and the seed of the database's collection maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The server's compact-encoding thresholds.
    pub limits: EncodingLimits,
    /// Seeds the hash maps of loaded collections (the database's collection seed).
    pub seed: u64,
}

/// Reads a type byte and the object after it from the start of `bytes`. Returns the value and
/// how many bytes it took (an RDB file continues after it).
pub fn read_object(bytes: &[u8], options: &LoadOptions) -> Result<(Value, usize), RdbError> {
    let mut reader = Reader::new(bytes);
    let kind = reader.read_type()?;
    let value = reader.read_value(kind, options)?;
    Ok((value, reader.position()))
}

/// `QUICKLIST_NODE_CONTAINER_PLAIN`: a list node holding one element as is.
const CONTAINER_PLAIN: u64 = 1;
/// `QUICKLIST_NODE_CONTAINER_PACKED`: a list node holding a listpack.
const CONTAINER_PACKED: u64 = 2;

/// A length, or the marker of an encoded string (`RDB_ENCVAL`).
enum Length {
    Plain(u64),
    Encoded(u8),
}

/// A cursor over RDB bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn corrupt(what: &'static str, why: &'static str) -> RdbError {
    RdbError::Corrupt { what, why }
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RdbError> {
        if len > self.remaining() {
            return Err(RdbError::Truncated);
        }
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn length_or_encoding(&mut self) -> Result<Length, RdbError> {
        let first = self.byte()?;
        match first >> 6 {
            0 => Ok(Length::Plain(u64::from(first & 0x3f))),
            1 => Ok(Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?))),
            2 => match first {
                0x80 => Ok(Length::Plain(u64::from(u32::from_be_bytes(self.array()?)))),
                0x81 => Ok(Length::Plain(u64::from_be_bytes(self.array()?))),
                _ => Err(corrupt("length", "unknown length encoding")),
            },
            _ => Ok(Length::Encoded(first & 0x3f)),
        }
    }

    /// Reads a length (`rdbLoadLen`). A string-encoding marker where a length belongs reads as
    /// its 6-bit subtype, as in Redis, which ignores the distinction there.
    pub fn read_len(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(len) => Ok(len),
            Length::Encoded(subtype) => Ok(u64::from(subtype)),
        }
    }

    /// Reads a length that counts something, each taking at least `unit` bytes: refused at once
    /// if the bytes left cannot hold that many, so no loop or reservation trusts a huge claim.
    fn read_count(&mut self, unit: usize) -> Result<usize, RdbError> {
        let count = self.read_len()?;
        match usize::try_from(count) {
            Ok(count) if count.saturating_mul(unit) <= self.remaining() => Ok(count),
            _ => Err(RdbError::Truncated),
        }
    }

    /// Reads a string (`rdbGenericLoadStringObject`): raw, an 8/16/32-bit integer, or LZF.
    pub fn read_string(&mut self) -> Result<Cow<'a, [u8]>, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(len) => {
                let len = usize::try_from(len).map_err(|_| RdbError::Truncated)?;
                self.take(len).map(Cow::Borrowed)
            }
            Length::Encoded(0) => Ok(int_text(i64::from(self.byte()? as i8))),
            Length::Encoded(1) => Ok(int_text(i64::from(i16::from_le_bytes(self.array()?)))),
            Length::Encoded(2) => Ok(int_text(i64::from(i32::from_le_bytes(self.array()?)))),
            Length::Encoded(3) => {
                let compressed_len = self.read_len()?;
                let len = self.read_len()?;
                let compressed_len = usize::try_from(compressed_len).map_err(|_| RdbError::Truncated)?;
                let compressed = self.take(compressed_len)?;
                let len = usize::try_from(len).map_err(|_| corrupt("string", "LZF length too large"))?;
                lzf::decompress(compressed, len)
                    .map(Cow::Owned)
                    .ok_or_else(|| corrupt("string", "invalid LZF compressed string"))
            }
            Length::Encoded(_) => Err(corrupt("string", "unknown string encoding")),
        }
    }

    /// Reads an object type byte, refusing what is no object type.
    pub fn read_type(&mut self) -> Result<u8, RdbError> {
        let kind = self.byte()?;
        Reader::check_type(kind)
    }

    /// `kind` if it is an object type byte.
    pub fn check_type(kind: u8) -> Result<u8, RdbError> {
        match kind {
            0..=7 | 9..=19 => Ok(kind),
            _ => Err(RdbError::UnknownType(kind)),
        }
    }

    /// Reads one byte (a snapshot's opcodes).
    pub fn read_u8(&mut self) -> Result<u8, RdbError> {
        self.byte()
    }

    /// Reads `N` bytes (a snapshot's fixed-size fields).
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        self.array()
    }

    /// Reads a sorted set score written as text (`rdbLoadDoubleValue`): one length byte, with
    /// 253, 254 and 255 for NaN, +inf and -inf, then text read as `sscanf("%lg")` reads it.
    fn read_text_score(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            255 => Ok(f64::NEG_INFINITY),
            254 => Ok(f64::INFINITY),
            253 => Ok(f64::NAN),
            len => {
                let text = self.take(usize::from(len))?;
                scan_double(text).ok_or(RdbError::BadScore)
            }
        }
    }

    /// Reads the value of type `kind` (from [`Reader::read_type`]).
    pub fn read_value(&mut self, kind: u8, options: &LoadOptions) -> Result<Value, RdbError> {
        let limits = &options.limits;
        match kind {
            types::STRING => Ok(Value::Str(Str::from_value(&self.read_string()?))),
            types::LIST => {
                let count = self.read_count(1)?;
                let mut list = List::default();
                for _ in 0..count {
                    list.push_back(&self.read_string()?);
                }
                finish_list(list)
            }
            types::SET => {
                let count = self.read_count(1)?;
                let mut set = SetBuilder::new(options, *limits);
                for _ in 0..count {
                    set.insert(&self.read_string()?)?;
                }
                set.finish()
            }
            types::ZSET | types::ZSET_2 => {
                // Redis loads these into a skiplist and converts it to a listpack afterwards if
                // it qualifies; which form it ends in decides whether -0 stays -0, so read
                // everything before choosing.
                let count = self.read_count(2)?;
                let mut members = Vec::with_capacity(count);
                for _ in 0..count {
                    let member = self.read_string()?;
                    let score =
                        if kind == types::ZSET_2 { f64::from_le_bytes(self.array()?) } else { self.read_text_score()? };
                    members.push((member, score));
                }
                let longest = members.iter().map(|(member, _)| member.len()).max().unwrap_or(0);
                let compact = count <= limits.zset_entries && longest <= limits.zset_value;
                let mut zset = ZSetBuilder::new(options, *limits, compact);
                for (member, score) in members {
                    zset.insert(&member, score)?;
                }
                zset.finish()
            }
            types::HASH => {
                let count = self.read_count(2)?;
                let mut hash = HashBuilder::new(options, *limits);
                for _ in 0..count {
                    let field = self.read_string()?;
                    let value = self.read_string()?;
                    hash.insert(&field, &value)?;
                }
                hash.finish()
            }
            types::MODULE | types::MODULE_2 => Err(RdbError::Unsupported("module")),
            types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => Err(RdbError::Unsupported("stream")),
            types::HASH_ZIPMAP => {
                // Redis converts a zipmap as it would a hash written pair by pair: long values
                // count against the thresholds too.
                let blob = self.read_string()?;
                let mut hash = HashBuilder::new(options, *limits);
                for (field, value) in ziplist::parse_zipmap(&blob)? {
                    hash.insert(field, value)?;
                }
                hash.finish()
            }
            types::LIST_ZIPLIST => {
                let blob = self.read_string()?;
                let mut list = List::default();
                for element in ziplist::parse(&blob)? {
                    element.with_bytes(|bytes| list.push_back(bytes));
                }
                finish_list(list)
            }
            types::SET_INTSET => {
                let blob = self.read_string()?;
                let mut set = SetBuilder::new(options, *limits);
                for member in intset::parse(&blob)? {
                    set.insert(itoa::Buffer::new().format(member).as_bytes())?;
                }
                set.finish()
            }
            types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
                let blob = self.read_string()?;
                let elements =
                    if kind == types::ZSET_LISTPACK { listpack::parse(&blob)? } else { ziplist::parse(&blob)? };
                // A compact set loaded whole stays compact unless it has too many members;
                // long members are left to the next write, as Redis leaves them.
                let mut zset = ZSetBuilder::new(options, EncodingLimits { zset_value: usize::MAX, ..*limits }, true);
                for pair in pairs(&elements)? {
                    let score = element_score(pair[1])?;
                    pair[0].with_bytes(|member| zset.insert(member, score))?;
                }
                zset.finish()
            }
            types::HASH_ZIPLIST | types::HASH_LISTPACK => {
                let blob = self.read_string()?;
                let elements =
                    if kind == types::HASH_LISTPACK { listpack::parse(&blob)? } else { ziplist::parse(&blob)? };
                let mut hash = HashBuilder::new(options, EncodingLimits { hash_value: usize::MAX, ..*limits });
                for pair in pairs(&elements)? {
                    let field = pair[0].to_bulk();
                    pair[1].with_bytes(|value| hash.insert(&field, value))?;
                }
                hash.finish()
            }
            types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
                let nodes = self.read_count(2)?;
                if nodes == 0 {
                    return Err(RdbError::Empty("list"));
                }
                let mut list = List::default();
                for _ in 0..nodes {
                    let container = if kind == types::LIST_QUICKLIST_2 { self.read_len()? } else { CONTAINER_PACKED };
                    if container != CONTAINER_PACKED && container != CONTAINER_PLAIN {
                        return Err(corrupt("list", "unknown quicklist container"));
                    }
                    let blob = self.read_string()?;
                    if blob.is_empty() {
                        return Err(corrupt("list", "empty quicklist node"));
                    }
                    if container == CONTAINER_PLAIN {
                        list.push_back(&blob);
                        continue;
                    }
                    // Empty nodes are skipped, as Redis skips them (old versions could leave
                    // them behind).
                    let elements =
                        if kind == types::LIST_QUICKLIST_2 { listpack::parse(&blob)? } else { ziplist::parse(&blob)? };
                    for element in elements {
                        element.with_bytes(|bytes| list.push_back(bytes));
                    }
                }
                finish_list(list)
            }
            _ => Err(RdbError::UnknownType(kind)),
        }
    }
}

/// The decimal text of an integer-encoded string.
fn int_text(value: i64) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(value).as_bytes().to_vec())
}

/// The elements of a hash or sorted set listpack or ziplist, two by two.
fn pairs<'e, 'a>(elements: &'e [Element<'a>]) -> Result<std::slice::ChunksExact<'e, Element<'a>>, RdbError> {
    if !elements.len().is_multiple_of(2) {
        return Err(corrupt("listpack", "odd number of elements in a hash or sorted set"));
    }
    Ok(elements.chunks_exact(2))
}

/// A score stored in a listpack or ziplist: an integer, or the text Redis' `d2string` wrote.
/// Redis reads text with `strtod` and takes garbage as 0; we refuse anything that is not the
/// whole of a number, and NaN.
fn element_score(element: Element<'_>) -> Result<f64, RdbError> {
    match element {
        Element::Int(int) => Ok(int as f64),
        Element::Str(text) => crate::args::parse_float(text).ok_or(RdbError::BadScore),
    }
}

fn finish_list(list: List) -> Result<Value, RdbError> {
    if list.is_empty() {
        return Err(RdbError::Empty("list"));
    }
    Ok(Value::List(Box::new(list)))
}

/// A set being loaded: starts as an intset, as Redis does, and becomes a table when a member is
/// not an integer or there are too many.
struct SetBuilder {
    set: Set,
    limits: EncodingLimits,
}

impl SetBuilder {
    fn new(options: &LoadOptions, limits: EncodingLimits) -> SetBuilder {
        SetBuilder { set: Set::new_result(options.seed), limits }
    }

    fn insert(&mut self, member: &[u8]) -> Result<(), RdbError> {
        if self.set.insert(member, &self.limits) { Ok(()) } else { Err(RdbError::Duplicate("set member")) }
    }

    fn finish(self) -> Result<Value, RdbError> {
        if self.set.is_empty() {
            return Err(RdbError::Empty("set"));
        }
        Ok(Value::Set(Box::new(self.set)))
    }
}

/// A sorted set being loaded, compact (while within `limits`) or not.
struct ZSetBuilder {
    zset: ZSet,
    limits: EncodingLimits,
}

impl ZSetBuilder {
    fn new(options: &LoadOptions, limits: EncodingLimits, compact: bool) -> ZSetBuilder {
        ZSetBuilder { zset: ZSet::new(options.seed, compact), limits }
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Result<(), RdbError> {
        if score.is_nan() {
            return Err(RdbError::BadScore);
        }
        if self.zset.insert(member, score, &self.limits) {
            Ok(())
        } else {
            Err(RdbError::Duplicate("sorted set member"))
        }
    }

    fn finish(self) -> Result<Value, RdbError> {
        if self.zset.is_empty() {
            return Err(RdbError::Empty("sorted set"));
        }
        Ok(Value::ZSet(Box::new(self.zset)))
    }
}

/// A hash being loaded: a listpack while within `limits`, in the order of the payload.
struct HashBuilder {
    hash: Hash,
    limits: EncodingLimits,
}

impl HashBuilder {
    fn new(options: &LoadOptions, limits: EncodingLimits) -> HashBuilder {
        HashBuilder { hash: Hash::new(FixedState::with_seed(options.seed)), limits }
    }

    fn insert(&mut self, field: &[u8], value: &[u8]) -> Result<(), RdbError> {
        if self.hash.insert(field, value, &self.limits) { Ok(()) } else { Err(RdbError::Duplicate("hash field")) }
    }

    fn finish(self) -> Result<Value, RdbError> {
        if self.hash.is_empty() {
            return Err(RdbError::Empty("hash"));
        }
        Ok(Value::Hash(Box::new(self.hash)))
    }
}

/// Parses a double as C's `sscanf(text, "%lg")` does, which Redis used for scores written as
/// text: leading white space, then the longest prefix that is a decimal or hexadecimal number,
/// `inf`/`infinity` or `nan`; the rest is ignored. Text ends at a NUL, as a C string does.
/// `None` when no number starts the text.
pub fn scan_double(text: &[u8]) -> Option<f64> {
    let text = text.split(|&byte| byte == 0).next().unwrap_or_default();
    let start = text.iter().position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let text = &text[start..];
    let (negative, body) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    let lower: Vec<u8> = body.iter().take(8).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"inf") {
        return Some(sign * f64::INFINITY);
    }
    if lower.starts_with(b"nan") {
        return Some(f64::NAN);
    }
    if (lower.starts_with(b"0x"))
        && let Some(value) = scan_hex(&body[2..])
    {
        return Some(sign * value);
    }
    // The longest decimal prefix: digits, a point and digits, then an exponent if it has digits.
    let digits = |from: usize| body[from..].iter().take_while(|byte| byte.is_ascii_digit()).count();
    let mut end = digits(0);
    let integer_digits = end;
    let mut fraction_digits = 0;
    if body.get(end) == Some(&b'.') {
        fraction_digits = digits(end + 1);
        end += 1 + fraction_digits;
    }
    if integer_digits + fraction_digits == 0 {
        return None;
    }
    if matches!(body.get(end), Some(b'e' | b'E')) {
        let sign_len = usize::from(matches!(body.get(end + 1), Some(b'+' | b'-')));
        let exponent_digits = digits(end + 1 + sign_len);
        if exponent_digits > 0 {
            end += 1 + sign_len + exponent_digits;
        }
    }
    let number = std::str::from_utf8(&body[..end]).ok()?;
    number.parse::<f64>().ok().map(|value| sign * value)
}

/// The value of hexadecimal digits `h[.h][p[±]d]` after `0x`, or `None` without a digit (then
/// `sscanf` reads just the `0`, which the decimal path does).
fn scan_hex(body: &[u8]) -> Option<f64> {
    let mut mantissa: u128 = 0;
    let mut exponent: i64 = 0;
    let mut any_digit = false;
    let mut seen_point = false;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        if byte == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(digit) = (byte as char).to_digit(16) {
            any_digit = true;
            if mantissa >> 120 == 0 {
                mantissa = (mantissa << 4) | u128::from(digit);
                if seen_point {
                    exponent -= 4;
                }
            } else if !seen_point {
                // Digits past what 128 bits hold only scale the value.
                exponent += 4;
            }
        } else {
            break;
        }
        at += 1;
    }
    if !any_digit {
        return None;
    }
    if matches!(body.get(at), Some(b'p' | b'P')) {
        let (negative, from) = match body.get(at + 1) {
            Some(b'-') => (true, at + 2),
            Some(b'+') => (false, at + 2),
            _ => (false, at + 1),
        };
        let digits: Vec<u8> = body[from.min(body.len())..].iter().copied().take_while(u8::is_ascii_digit).collect();
        if !digits.is_empty() {
            let value = digits
                .iter()
                .fold(0i64, |value, digit| value.saturating_mul(10).saturating_add(i64::from(digit - b'0')));
            exponent = exponent.saturating_add(if negative { -value } else { value });
        }
    }
    let mut value = mantissa as f64;
    // Scale in steps that stay finite and normal until the last one.
    let mut remaining = exponent.clamp(-5000, 5000);
    while remaining != 0 {
        let step = remaining.clamp(-1000, 1000);
        value *= 2f64.powi(step as i32);
        remaining -= step;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_doubles_like_sscanf() {
        assert_eq!(scan_double(b"1.5"), Some(1.5));
        assert_eq!(scan_double(b"1.5x"), Some(1.5));
        assert_eq!(scan_double(b"  12"), Some(12.0));
        assert_eq!(scan_double(b"-3e2abc"), Some(-300.0));
        assert_eq!(scan_double(b"3e"), Some(3.0));
        assert_eq!(scan_double(b".5"), Some(0.5));
        assert_eq!(scan_double(b"5."), Some(5.0));
        assert_eq!(scan_double(b"0x1p3"), Some(8.0));
        assert_eq!(scan_double(b"0x.8"), Some(0.5));
        assert_eq!(scan_double(b"-0x10"), Some(-16.0));
        assert_eq!(scan_double(b"0xg"), Some(0.0));
        assert_eq!(scan_double(b"infinity"), Some(f64::INFINITY));
        assert_eq!(scan_double(b"-INF"), Some(f64::NEG_INFINITY));
        assert!(scan_double(b"nan").is_some_and(f64::is_nan));
        assert_eq!(scan_double(b"abc"), None);
        assert_eq!(scan_double(b""), None);
        assert_eq!(scan_double(b"."), None);
        assert_eq!(scan_double(b"-"), None);
        assert_eq!(scan_double(b"1\x002"), Some(1.0));
    }

    #[test]
    fn lengths_in_every_form() {
        let mut reader = Reader::new(b"\x05\x41\x02\x80\x00\x01\x00\x00\x81\x00\x00\x00\x00\x00\x00\x00\x07\xc3");
        assert_eq!(reader.read_len(), Ok(5));
        assert_eq!(reader.read_len(), Ok(0x102));
        assert_eq!(reader.read_len(), Ok(0x10000));
        assert_eq!(reader.read_len(), Ok(7));
        assert_eq!(reader.read_len(), Ok(3), "an encoding marker reads as its subtype");
        assert_eq!(reader.read_len(), Err(RdbError::Truncated));
        assert!(Reader::new(b"\x82").read_len().is_err());
    }

    #[test]
    fn strings_in_every_encoding() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"\x03abc", b"abc"),
            (b"\xc0\xfe", b"-2"),
            (b"\xc1\x00\x80", b"-32768"),
            (b"\xc2\xff\xff\xff\x7f", b"2147483647"),
            (b"\xc3\x09\x19\x01aa\xe0\x0c\x00\x01aa", &[b'a'; 25]),
        ];
        for (encoded, expected) in cases {
            assert_eq!(Reader::new(encoded).read_string().as_deref(), Ok(expected));
        }
        assert!(Reader::new(b"\xc4").read_string().is_err());
        assert_eq!(Reader::new(b"\x05abc").read_string(), Err(RdbError::Truncated));
        assert!(Reader::new(b"\xc3\x02\x05\x00a").read_string().is_err(), "LZF shorter than claimed");
    }

    #[test]
    fn huge_counts_are_refused_before_anything_is_reserved() {
        let options = LoadOptions::default();
        for kind in [types::LIST, types::SET, types::HASH, types::ZSET_2, types::LIST_QUICKLIST_2] {
            let mut payload = vec![kind, 0x81];
            payload.extend_from_slice(&u64::MAX.to_be_bytes());
            assert_eq!(read_object(&payload, &options).map(|_| ()), Err(RdbError::Truncated), "type {kind}");
        }
    }

    #[test]
    fn type_3_scores_are_text() {
        let options = LoadOptions::default();
        let (value, used) = read_object(b"\x03\x02\x01a\x031.5\x01b\xfe", &options).expect("valid");
        assert_eq!(used, 11);
        let Value::ZSet(zset) = value else { panic!("a sorted set") };
        assert_eq!((zset.score(b"a"), zset.score(b"b")), (Some(1.5), Some(f64::INFINITY)));
        assert_eq!(read_object(b"\x03\x01\x01a\xfd", &options).map(|_| ()), Err(RdbError::BadScore));
        assert_eq!(read_object(b"\x03\x01\x01a\x03abc", &options).map(|_| ()), Err(RdbError::BadScore));
    }

    #[test]
    fn unsupported_and_unknown_types() {
        let options = LoadOptions::default();
        assert_eq!(read_object(b"\x0f\x00", &options).map(|_| ()), Err(RdbError::Unsupported("stream")));
        assert_eq!(read_object(b"\x07\x00", &options).map(|_| ()), Err(RdbError::Unsupported("module")));
        assert_eq!(read_object(b"\x08\x00", &options).map(|_| ()), Err(RdbError::UnknownType(8)));
        assert_eq!(read_object(b"\x14\x00", &options).map(|_| ()), Err(RdbError::UnknownType(20)));
    }
}
