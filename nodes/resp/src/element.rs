//! One RESP element at a position in a buffer: the type byte, the header line, and for strings
//! the payload. Both the boundary scanner and the frame builder of [`crate::decode`] read elements
//! through this one function, so there is exactly one definition of what a valid header is.

use std::ops::Range;

use memchr::memchr;

use crate::error::ProtocolError;
use crate::limits::Limits;

/// What kind of element starts at a position, with ranges into the buffer for its payload.
#[derive(Debug)]
pub(crate) enum Kind {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    NullBulk,
    BlobError(Range<usize>),
    Verbatim { format: [u8; 3], text: Range<usize> },
    Null,
    Boolean(bool),
    Double(f64),
    BigNumber(Range<usize>),
    Array(usize),
    NullArray,
    Set(usize),
    Push(usize),
    Map(usize),
    Attribute(usize),
}

impl Kind {
    /// How many elements follow this one as its children (zero for leaves).
    pub(crate) fn children(&self) -> usize {
        match *self {
            Kind::Array(n) | Kind::Set(n) | Kind::Push(n) => n,
            Kind::Map(n) => 2 * n,
            // The attribute pairs, then the value they are attached to.
            Kind::Attribute(n) => 2 * n + 1,
            _ => 0,
        }
    }
}

/// An element and the position just past it (past the header line for aggregates).
#[derive(Debug)]
pub(crate) struct Element {
    pub kind: Kind,
    pub end: usize,
}

/// Reads the element starting at `pos`. `Ok(None)` means the buffer ends before the element does.
pub(crate) fn read(buf: &[u8], pos: usize, limits: &Limits) -> Result<Option<Element>, ProtocolError> {
    let Some(&type_byte) = buf.get(pos) else {
        return Ok(None);
    };
    if let Some(invalid) = numeric_header_error(type_byte) {
        let Some((number, line_end)) = read_integer_line(buf, pos + 1, limits, type_byte)? else {
            return Ok(None);
        };
        let number = match number {
            Some(number) => number,
            None if buf[pos + 1..line_end - 2] == *b"?" && type_byte != b':' => {
                return Err(ProtocolError::Streamed);
            }
            None => return Err(invalid),
        };
        return sized_element(buf, type_byte, number, line_end, limits);
    }
    let Some((line, line_end)) = read_line(buf, pos + 1, limits, type_byte)? else {
        return Ok(None);
    };
    let text = &buf[line.clone()];
    let kind = match type_byte {
        b'+' => Kind::Simple(line),
        b'-' => Kind::Error(line),
        b'_' if text.is_empty() => Kind::Null,
        b'_' => return Err(ProtocolError::InvalidNull),
        b'#' => match text {
            b"t" => Kind::Boolean(true),
            b"f" => Kind::Boolean(false),
            _ => return Err(ProtocolError::InvalidBoolean),
        },
        b',' => Kind::Double(parse_double(text).ok_or(ProtocolError::InvalidDouble)?),
        b'(' => {
            let digits = text.strip_prefix(b"-").unwrap_or(text);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ProtocolError::InvalidBigNumber);
            }
            Kind::BigNumber(line)
        }
        other => return Err(ProtocolError::InvalidFrameType(other)),
    };
    Ok(Some(Element { kind, end: line_end }))
}

/// For the types whose header line is an integer (`:`, the length-prefixed strings, the
/// aggregates), the error an unparsable header gets; `None` for every other type.
fn numeric_header_error(type_byte: u8) -> Option<ProtocolError> {
    match type_byte {
        b':' => Some(ProtocolError::InvalidInteger),
        b'$' | b'!' | b'=' => Some(ProtocolError::InvalidBulkLength),
        b'*' | b'~' | b'>' | b'%' | b'|' => Some(ProtocolError::InvalidAggregateLength),
        _ => None,
    }
}

/// The element of an integer-headed type, given its header's value and the end of its line.
fn sized_element(
    buf: &[u8],
    type_byte: u8,
    number: i64,
    line_end: usize,
    limits: &Limits,
) -> Result<Option<Element>, ProtocolError> {
    let kind = match type_byte {
        b':' => Kind::Integer(number),
        b'$' if number == -1 => Kind::NullBulk,
        b'$' | b'!' | b'=' => {
            let len = usize::try_from(number)
                .ok()
                .filter(|len| *len <= limits.max_bulk_len)
                .ok_or(ProtocolError::InvalidBulkLength)?;
            let payload = line_end..line_end + len;
            let end = payload.end + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[payload.end..end] != b"\r\n" {
                return Err(ProtocolError::MissingBulkTerminator);
            }
            let kind = match type_byte {
                b'$' => Kind::Bulk(payload),
                b'!' => Kind::BlobError(payload),
                _ => verbatim(buf, payload)?,
            };
            return Ok(Some(Element { kind, end }));
        }
        b'*' if number == -1 => Kind::NullArray,
        _ => {
            let count = usize::try_from(number)
                .ok()
                .filter(|count| *count <= limits.max_array_len)
                .ok_or(ProtocolError::InvalidAggregateLength)?;
            match type_byte {
                b'*' => Kind::Array(count),
                b'~' => Kind::Set(count),
                b'>' => Kind::Push(count),
                b'%' => Kind::Map(count),
                _ => Kind::Attribute(count),
            }
        }
    };
    Ok(Some(Element { kind, end: line_end }))
}

/// Reads a header line that should hold an integer (`*3`, `$32`, `:1`, without the type byte at
/// `start - 1`): the integer if the line is a canonical one, and the position after the line.
/// `Ok(None)` means the line is not complete yet.
pub(crate) fn read_integer_line(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    type_byte: u8,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    // The line-length limit applies to both paths, or a split read could decide differently.
    if let Some((number, line_end)) = read_plain_number(buf, start)
        && line_end - start - 2 <= limits.max_inline_len
    {
        return Ok(Some((Some(number), line_end)));
    }
    Ok(read_line(buf, start, limits, type_byte)?.map(|(line, line_end)| (parse_i64(&buf[line]), line_end)))
}

/// The fast path for the headers that dominate real traffic (`$32`, `*3`, `:1`): a canonical
/// integer directly followed by `\r\n`, read in one pass with no search for the line end. Anything
/// else (a partial line, a non-canonical number) returns `None` and goes through the general path,
/// which decides validity; so this can only make a valid header faster, never change what is
/// accepted.
fn read_plain_number(buf: &[u8], start: usize) -> Option<(i64, usize)> {
    let (negative, first) = match buf.get(start)? {
        b'-' => (true, start + 1),
        _ => (false, start),
    };
    let mut pos = first;
    let mut value: i64 = 0;
    while let Some(byte) = buf.get(pos).filter(|byte| byte.is_ascii_digit()) {
        // Accumulate negatively so i64::MIN fits; overflow falls back to the general path.
        value = value.checked_mul(10)?.checked_sub(i64::from(byte - b'0'))?;
        pos += 1;
    }
    let digits = pos - first;
    let leading_zero = digits > 1 && buf[first] == b'0';
    if digits == 0 || leading_zero || (negative && value == 0) {
        return None;
    }
    if buf.get(pos..pos + 2)? != b"\r\n" {
        return None;
    }
    let value = if negative { value } else { value.checked_neg()? };
    Some((value, pos + 2))
}

fn verbatim(buf: &[u8], payload: Range<usize>) -> Result<Kind, ProtocolError> {
    let bytes = &buf[payload.clone()];
    match bytes {
        [a, b, c, b':', ..] => Ok(Kind::Verbatim { format: [*a, *b, *c], text: payload.start + 4..payload.end }),
        _ => Err(ProtocolError::InvalidVerbatim),
    }
}

/// Finds the `\r\n`-terminated line starting at `start`. Returns the line's range (without the
/// terminator) and the position after the terminator.
pub(crate) fn read_line(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    type_byte: u8,
) -> Result<Option<(Range<usize>, usize)>, ProtocolError> {
    let rest = buf.get(start..).unwrap_or_default();
    match memchr(b'\r', rest) {
        Some(offset) => {
            if offset > limits.max_inline_len {
                return Err(too_long(type_byte));
            }
            let cr = start + offset;
            match buf.get(cr + 1) {
                None => Ok(None),
                Some(b'\n') => Ok(Some((start..cr, cr + 2))),
                Some(_) => Err(ProtocolError::BadLineEnd),
            }
        }
        None if rest.len() > limits.max_inline_len => Err(too_long(type_byte)),
        None => Ok(None),
    }
}

fn too_long(type_byte: u8) -> ProtocolError {
    match type_byte {
        b'*' => ProtocolError::TooBigMultibulkCount,
        b'$' => ProtocolError::TooBigBulkCount,
        _ => ProtocolError::LineTooLong,
    }
}

/// Parses a decimal `i64` the way Redis' `string2ll` does: an optional `-`, no `+`, no spaces, no
/// leading zeros (except `0` itself), no overflow. Servers use it wherever Redis decides whether
/// bytes are "an integer" (argument parsing, the `int` string encoding), so both agree.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate as a negative number so i64::MIN parses without overflow.
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(byte - b'0'))?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// Parses a RESP3 double: `inf`, `-inf`, `nan`, or a decimal/scientific number.
fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => {
            // Rust's parser also accepts "infinity" and "NaN" spellings; the guards above are the
            // only non-numeric forms RESP3 has, so refuse any other letters.
            if text.iter().any(|byte| !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
                return None;
            }
            std::str::from_utf8(text).ok()?.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_redis_string2ll_does() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn doubles_accept_resp3_spellings_only() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_double(b"nan").is_some_and(f64::is_nan));
        assert_eq!(parse_double(b"1e-5"), Some(1e-5));
        assert_eq!(parse_double(b"infinity"), None);
        assert_eq!(parse_double(b"NaN"), None);
        assert_eq!(parse_double(b""), None);
    }
}
