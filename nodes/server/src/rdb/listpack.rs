//! Listpacks (Redis' `listpack.c`): the compact form of small hashes and sorted sets and of each
//! node of a list, which RDB stores as one opaque string.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE; 65535 when it does not fit), the
//! elements, then `0xFF`. Each element is an encoding byte (with the length or the integer's
//! width), its data, and a "backlen": the size of encoding plus data in 1 to 5 bytes of 7 bits, so
//! that the list can be walked backwards.

use super::{Element, RdbError};

/// The header: total bytes and element count.
const HEADER: usize = 6;
/// The terminator.
const EOF: u8 = 0xff;
/// The element count that means "count them".
const UNKNOWN_COUNT: u16 = u16::MAX;

fn corrupt(why: &'static str) -> RdbError {
    RdbError::Corrupt { what: "listpack", why }
}

/// Builds a listpack the way Redis appends to one (`lpAppend`), so that the bytes are Redis'.
#[derive(Debug, Clone)]
pub struct ListpackWriter {
    bytes: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        ListpackWriter::new()
    }
}

impl ListpackWriter {
    /// An empty listpack.
    pub fn new() -> ListpackWriter {
        ListpackWriter { bytes: vec![0; HEADER], count: 0 }
    }

    /// Appends `element`, as an integer if it is the canonical form of one (Redis'
    /// `lpStringToInt64`), else as a string.
    pub fn push(&mut self, element: &[u8]) {
        match resp::parse_i64(element) {
            Some(int) => self.push_int(int),
            None => self.push_str(element),
        }
    }

    /// Appends an integer in the narrowest encoding that holds it.
    pub fn push_int(&mut self, value: i64) {
        let start = self.bytes.len();
        // The two's complement of a negative value within the encoding's width: casting to
        // unsigned and keeping the low bytes is exactly that.
        let bits = value as u64;
        if (0..=127).contains(&value) {
            self.bytes.push(value as u8);
        } else if (-4096..=4095).contains(&value) {
            let bits = bits & 0x1fff;
            self.bytes.extend_from_slice(&[0xc0 | (bits >> 8) as u8, bits as u8]);
        } else if (-32768..=32767).contains(&value) {
            self.bytes.push(0xf1);
            self.bytes.extend_from_slice(&bits.to_le_bytes()[..2]);
        } else if (-8_388_608..=8_388_607).contains(&value) {
            self.bytes.push(0xf2);
            self.bytes.extend_from_slice(&bits.to_le_bytes()[..3]);
        } else if i32::try_from(value).is_ok() {
            self.bytes.push(0xf3);
            self.bytes.extend_from_slice(&bits.to_le_bytes()[..4]);
        } else {
            self.bytes.push(0xf4);
            self.bytes.extend_from_slice(&bits.to_le_bytes());
        }
        self.finish_element(start);
    }

    /// Appends `element` as a string, whatever it holds.
    fn push_str(&mut self, element: &[u8]) {
        let start = self.bytes.len();
        let len = element.len();
        if len < 64 {
            self.bytes.push(0x80 | len as u8);
        } else if len < 4096 {
            self.bytes.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
        } else {
            self.bytes.push(0xf0);
            self.bytes.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.bytes.extend_from_slice(element);
        self.finish_element(start);
    }

    fn finish_element(&mut self, start: usize) {
        let mut backlen = [0u8; 5];
        let used = encode_backlen(self.bytes.len() - start, &mut backlen);
        self.bytes.extend_from_slice(&backlen[..used]);
        self.count += 1;
    }

    /// What the listpack would take once finished (Redis' `lpBytes`).
    pub fn size(&self) -> usize {
        self.bytes.len() + 1
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.push(EOF);
        let total = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.bytes[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(UNKNOWN_COUNT);
        self.bytes[4..6].copy_from_slice(&count.to_le_bytes());
        self.bytes
    }
}

/// Writes the backlen of an element of `len` bytes (Redis' `lpEncodeBacklen`): most significant
/// group first, every byte but the first flagged with the high bit. Returns how many bytes.
fn encode_backlen(len: usize, out: &mut [u8; 5]) -> usize {
    let len = len as u64;
    let used = if len <= 127 {
        1
    } else if len < 16_383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    };
    for (index, byte) in out[..used].iter_mut().enumerate() {
        let shift = 7 * (used - 1 - index);
        let group = ((len >> shift) & 127) as u8;
        *byte = if index == 0 { group } else { group | 128 };
    }
    used
}

/// Reads a listpack, checking everything Redis' deep sanitisation checks (`lpValidateIntegrity`):
/// the header's size, the terminator, every element's encoding and bounds, every backlen, and the
/// count. Returns the elements in order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Element<'_>>, RdbError> {
    if bytes.len() < HEADER + 1 {
        return Err(corrupt("shorter than its header"));
    }
    let total = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if total != bytes.len() {
        return Err(corrupt("header size differs from its length"));
    }
    if bytes[total - 1] != EOF {
        return Err(corrupt("no terminator"));
    }
    let declared = u16::from_le_bytes([bytes[4], bytes[5]]);
    let end = total - 1;
    // Every element takes at least two bytes: never reserve more than the bytes can hold.
    let mut elements =
        Vec::with_capacity(if declared == UNKNOWN_COUNT { 0 } else { usize::from(declared) }.min(end / 2));
    let mut at = HEADER;
    while at < end {
        let (element, size) = read_element(&bytes[at..end])?;
        let mut expected = [0u8; 5];
        let used = encode_backlen(size, &mut expected);
        let backlen_at = at + size;
        if backlen_at + used > end || bytes[backlen_at..backlen_at + used] != expected[..used] {
            return Err(corrupt("backlen does not match the element"));
        }
        elements.push(element);
        at = backlen_at + used;
    }
    if declared != UNKNOWN_COUNT && usize::from(declared) != elements.len() {
        return Err(corrupt("element count differs from the header"));
    }
    Ok(elements)
}

/// Decodes the element at the start of `bytes` (which ends before the terminator). Returns it
/// with the size of its encoding and data.
fn read_element(bytes: &[u8]) -> Result<(Element<'_>, usize), RdbError> {
    let first = bytes[0];
    let need = |len: usize| if bytes.len() >= len { Ok(()) } else { Err(corrupt("element runs past the end")) };
    let int = |width: usize| -> Result<i64, RdbError> {
        need(1 + width)?;
        let mut raw = [0u8; 8];
        raw[..width].copy_from_slice(&bytes[1..1 + width]);
        // Sign-extend from the encoding's width.
        let shift = 64 - 8 * width as u32;
        Ok(((u64::from_le_bytes(raw) << shift) as i64) >> shift)
    };
    let string = |header: usize, len: usize| -> Result<(Element<'_>, usize), RdbError> {
        let size = header.checked_add(len).ok_or_else(|| corrupt("string length overflows"))?;
        need(size)?;
        Ok((Element::Str(&bytes[header..size]), size))
    };
    match first {
        0x00..=0x7f => Ok((Element::Int(i64::from(first)), 1)),
        0x80..=0xbf => string(1, usize::from(first & 0x3f)),
        0xc0..=0xdf => {
            need(2)?;
            let raw = (u64::from(first & 0x1f) << 8) | u64::from(bytes[1]);
            Ok((Element::Int(((raw << 51) as i64) >> 51), 2))
        }
        0xe0..=0xef => {
            need(2)?;
            string(2, (usize::from(first & 0x0f) << 8) | usize::from(bytes[1]))
        }
        0xf0 => {
            need(5)?;
            let len = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            string(5, len)
        }
        0xf1 => Ok((Element::Int(int(2)?), 3)),
        0xf2 => Ok((Element::Int(int(3)?), 4)),
        0xf3 => Ok((Element::Int(int(4)?), 5)),
        0xf4 => Ok((Element::Int(int(8)?), 9)),
        _ => Err(corrupt("unknown element encoding")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(elements: &[&[u8]]) -> Vec<u8> {
        let mut writer = ListpackWriter::new();
        for element in elements {
            writer.push(element);
        }
        writer.finish()
    }

    #[test]
    fn encodes_like_redis() {
        // HSET h a 1 on redis-server 7.0: DUMP's listpack.
        assert_eq!(build(&[b"a", b"1"]), b"\x0c\x00\x00\x00\x02\x00\x81a\x02\x01\x01\xff");
        assert_eq!(build(&[]), b"\x07\x00\x00\x00\x00\x00\xff");
    }

    #[test]
    fn integers_take_the_narrowest_encoding_and_read_back() {
        let values = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8_388_607,
            -8_388_608,
            8_388_608,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut writer = ListpackWriter::new();
        for value in values {
            writer.push_int(value);
        }
        let bytes = writer.finish();
        let parsed: Vec<i64> = parse(&bytes)
            .expect("valid")
            .into_iter()
            .map(|element| match element {
                Element::Int(int) => int,
                Element::Str(_) => panic!("string"),
            })
            .collect();
        assert_eq!(parsed, values);
    }

    #[test]
    fn strings_of_every_length_class_read_back() {
        let long = vec![b'x'; 5000];
        let medium = vec![b'y'; 100];
        let elements: [&[u8]; 5] = [b"", b"-0", b"01", &medium, &long];
        let bytes = build(&elements);
        let parsed = parse(&bytes).expect("valid");
        let strings: Vec<&[u8]> = parsed
            .iter()
            .map(|element| match element {
                Element::Str(bytes) => *bytes,
                Element::Int(_) => panic!("integer"),
            })
            .collect();
        assert_eq!(strings, elements);
    }

    #[test]
    fn refuses_corruption() {
        let good = build(&[b"a", b"1"]);
        assert!(parse(&good).is_ok());
        let mut bad_size = good.clone();
        bad_size[0] += 1;
        assert!(parse(&bad_size).is_err());
        let mut bad_count = good.clone();
        bad_count[4] = 3;
        assert!(parse(&bad_count).is_err());
        let mut unknown_count = good.clone();
        unknown_count[4..6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(parse(&unknown_count).map(|elements| elements.len()), Ok(2));
        let mut bad_backlen = good.clone();
        bad_backlen[8] = 3;
        assert!(parse(&bad_backlen).is_err());
        let mut bad_encoding = good.clone();
        bad_encoding[6] = 0xf5;
        assert!(parse(&bad_encoding).is_err());
        let mut long_string = good.clone();
        long_string[6] = 0xbf;
        assert!(parse(&long_string).is_err(), "string past the end");
        assert!(parse(&good[..good.len() - 1]).is_err());
        assert!(parse(b"\x07\x00\x00\x00\x00\x00").is_err());
    }

    #[test]
    fn backlen_boundaries_follow_redis() {
        let mut out = [0u8; 5];
        assert_eq!(encode_backlen(127, &mut out), 1);
        assert_eq!(encode_backlen(128, &mut out), 2);
        assert_eq!(out[..2], [1, 128]);
        assert_eq!(encode_backlen(16_382, &mut out), 2);
        assert_eq!(encode_backlen(16_383, &mut out), 3);
    }
}
