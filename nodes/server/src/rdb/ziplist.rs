//! The compact encodings older RDB versions used, read for `RESTORE` of payloads from Redis
//! before 7.0: ziplists (Redis 2.6 to 6.2: small hashes, sorted sets and lists, and the nodes of
//! quicklists) and zipmaps (small hashes before 2.6). Nothing writes them any more.

use super::{Element, RdbError};

/// Ziplist header: total bytes (u32 LE), offset of the last entry (u32 LE), count (u16 LE).
const HEADER: usize = 10;
/// The terminator of both formats.
const END: u8 = 0xff;

fn corrupt(why: &'static str) -> RdbError {
    RdbError::Corrupt { what: "ziplist", why }
}

/// Reads a ziplist, checking what Redis' deep `ziplistValidateIntegrity` checks: the header's
/// size and tail offset, the terminator, every entry's encoding, bounds and back-link to the
/// previous entry, and the count. Returns the entries in order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Element<'_>>, RdbError> {
    if bytes.len() < HEADER + 1 {
        return Err(corrupt("shorter than its header"));
    }
    let total = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let tail = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let declared = u16::from_le_bytes([bytes[8], bytes[9]]);
    if total != bytes.len() || bytes[total - 1] != END {
        return Err(corrupt("header size or terminator wrong"));
    }
    let end = total - 1;
    if tail > end {
        return Err(corrupt("tail offset past the end"));
    }
    let mut elements = Vec::with_capacity(usize::from(declared).min(end / 2));
    let mut at = HEADER;
    let mut previous_size = 0;
    let mut last = None;
    while at < end && bytes[at] != END {
        let entry = &bytes[at..end];
        let (previous_len, prefix) = match entry[0] {
            0xfe => {
                if entry.len() < 5 {
                    return Err(corrupt("entry runs past the end"));
                }
                (u32::from_le_bytes([entry[1], entry[2], entry[3], entry[4]]) as usize, 5)
            }
            len => (usize::from(len), 1),
        };
        if previous_len != previous_size {
            return Err(corrupt("entry's previous length is wrong"));
        }
        let (element, size) = read_entry(&entry[prefix..])?;
        previous_size = prefix + size;
        elements.push(element);
        last = Some(at);
        at += previous_size;
    }
    if at != end {
        return Err(corrupt("entries do not end at the terminator"));
    }
    if last.is_some_and(|last| last != tail) {
        return Err(corrupt("tail offset does not point to the last entry"));
    }
    if declared != u16::MAX && usize::from(declared) != elements.len() {
        return Err(corrupt("entry count differs from the header"));
    }
    Ok(elements)
}

/// Decodes the encoding and data of one entry. Returns it with their size.
fn read_entry(bytes: &[u8]) -> Result<(Element<'_>, usize), RdbError> {
    let need = |len: usize| if bytes.len() >= len { Ok(()) } else { Err(corrupt("entry runs past the end")) };
    need(1)?;
    let first = bytes[0];
    let string = |header: usize, len: usize| -> Result<(Element<'_>, usize), RdbError> {
        let size = header.checked_add(len).ok_or_else(|| corrupt("string length overflows"))?;
        need(size)?;
        Ok((Element::Str(&bytes[header..size]), size))
    };
    let int = |width: usize| -> Result<(Element<'_>, usize), RdbError> {
        need(1 + width)?;
        let mut raw = [0u8; 8];
        raw[..width].copy_from_slice(&bytes[1..1 + width]);
        let shift = 64 - 8 * width as u32;
        Ok((Element::Int(((u64::from_le_bytes(raw) << shift) as i64) >> shift), 1 + width))
    };
    match first {
        0x00..=0x3f => string(1, usize::from(first)),
        0x40..=0x7f => {
            need(2)?;
            string(2, (usize::from(first & 0x3f) << 8) | usize::from(bytes[1]))
        }
        0x80..=0xbf => {
            need(5)?;
            string(5, u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize)
        }
        0xc0 => int(2),
        0xd0 => int(4),
        0xe0 => int(8),
        0xf0 => int(3),
        0xfe => int(1),
        0xf1..=0xfd => Ok((Element::Int(i64::from(first & 0x0f) - 1), 1)),
        _ => Err(corrupt("unknown entry encoding")),
    }
}

/// A field and its value, borrowed from a zipmap.
pub type FieldValue<'a> = (&'a [u8], &'a [u8]);

/// Reads a zipmap (Redis before 2.6), checking it as Redis' deep `zipmapValidateIntegrity` does,
/// and refusing the 5-byte lengths under 254 that Redis' iterator and validator read
/// differently. Returns the field/value pairs in order.
pub fn parse_zipmap(bytes: &[u8]) -> Result<Vec<FieldValue<'_>>, RdbError> {
    let corrupt = |why| RdbError::Corrupt { what: "zipmap", why };
    if bytes.len() < 2 || bytes[bytes.len() - 1] != END {
        return Err(corrupt("too short or no terminator"));
    }
    let end = bytes.len() - 1;
    // A length: one byte under 254, or 254 followed by a u32 (little endian, as x86 Redis
    // wrote it). Returns the length and the bytes it took.
    let length = |at: usize| -> Result<(usize, usize), RdbError> {
        let first = *bytes.get(at).ok_or_else(|| corrupt("length past the end"))?;
        if first < 254 {
            return Ok((usize::from(first), 1));
        }
        let raw = bytes.get(at + 1..at + 5).ok_or_else(|| corrupt("length past the end"))?;
        let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        if len < 254 {
            return Err(corrupt("long form of a short length"));
        }
        Ok((len, 5))
    };
    let mut pairs = Vec::new();
    let mut at = 1;
    while at < end && bytes[at] != END {
        let (field_len, used) = length(at)?;
        let field_start = at + used;
        let field_end = field_start
            .checked_add(field_len)
            .filter(|&stop| stop < end)
            .ok_or_else(|| corrupt("field past the end"))?;
        let (value_len, used) = length(field_end)?;
        let free_at = field_end + used;
        if free_at >= end {
            return Err(corrupt("value past the end"));
        }
        let value_start = free_at + 1;
        let value_end = value_start
            .checked_add(value_len)
            .filter(|&stop| stop <= end)
            .ok_or_else(|| corrupt("value past the end"))?;
        let next = value_end + usize::from(bytes[free_at]);
        if next > end {
            return Err(corrupt("free space past the end"));
        }
        pairs.push((&bytes[field_start..field_end], &bytes[value_start..value_end]));
        at = next;
    }
    if at != end {
        return Err(corrupt("entries do not end at the terminator"));
    }
    if pairs.is_empty() {
        return Err(corrupt("empty"));
    }
    if bytes[0] < 254 && usize::from(bytes[0]) != pairs.len() {
        return Err(corrupt("count differs from the header"));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist holding "a", 12 and 300, laid out as Redis 6.2 lays one out.
    fn sample() -> Vec<u8> {
        let entries: [Vec<u8>; 3] = [
            vec![0x00, 0x01, b'a'],
            vec![0x03, 0xfd],             // 12: immediate, (0xfd & 0x0f) - 1
            vec![0x02, 0xc0, 0x2c, 0x01], // 300: int16
        ];
        let body: Vec<u8> = entries.concat();
        let tail = HEADER + entries[0].len() + entries[1].len();
        let total = HEADER + body.len() + 1;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(total as u32).to_le_bytes());
        bytes.extend_from_slice(&(tail as u32).to_le_bytes());
        bytes.extend_from_slice(&3u16.to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.push(END);
        bytes
    }

    #[test]
    fn reads_strings_and_every_integer_form() {
        let bytes = sample();
        let elements = parse(&bytes).expect("valid");
        assert_eq!(elements, vec![Element::Str(b"a"), Element::Int(12), Element::Int(300)]);
        let widths: [(&[u8], i64); 5] = [
            (&[0xfe, 0x80], -128),
            (&[0xc0, 0x00, 0x80], -32768),
            (&[0xf0, 0xff, 0xff, 0x7f], 8_388_607),
            (&[0xd0, 0x00, 0x00, 0x00, 0x80], i64::from(i32::MIN)),
            (&[0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], i64::MAX),
        ];
        for (encoded, value) in widths {
            assert_eq!(read_entry(encoded), Ok((Element::Int(value), encoded.len())));
        }
    }

    #[test]
    fn refuses_corruption() {
        let good = sample();
        for (index, byte) in [(0, 0x20), (4, 0x0a), (8, 0x04), (10, 0x01), (13, 0x04), (15, 0xc1)] {
            let mut bad = good.clone();
            bad[index] = byte;
            assert!(parse(&bad).is_err(), "byte {index} set to {byte:#x}");
        }
        assert!(parse(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn reads_zipmaps() {
        // foo => bar with one byte of free space after "bar", then k => 1.
        let zipmap = b"\x02\x03foo\x03\x01barX\x01k\x01\x001\xff";
        assert_eq!(parse_zipmap(zipmap), Ok(vec![(&b"foo"[..], &b"bar"[..]), (&b"k"[..], &b"1"[..])]));
        assert!(parse_zipmap(b"\x00\xff").is_err(), "empty");
        assert!(parse_zipmap(b"\x03\x03foo\x03\x00bar\xff").is_err(), "count");
        assert!(parse_zipmap(b"\x01\x03foo\x09\x00bar\xff").is_err(), "value past the end");
    }
}
