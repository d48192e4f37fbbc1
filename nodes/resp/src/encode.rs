//! Encoding: whole [`Frame`]s, and the individual replies a server writes straight into its output
//! buffer without building a frame first.

use bytes::{BufMut, BytesMut};

use crate::frame::Frame;

/// The protocol a client speaks: RESP2 by default, RESP3 after `HELLO 3`.
///
/// RESP3-only types are lowered for RESP2 clients the way Redis lowers them: maps become flat
/// arrays, sets and pushes arrays, doubles and big numbers bulk strings, booleans integers, the
/// RESP3 null `$-1`; attributes are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// The classic protocol.
    #[default]
    Resp2,
    /// The protocol `HELLO 3` switches to.
    Resp3,
}

/// How to encode: exactly as the frame is, or for a client of one protocol version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exact,
    For(Version),
}

impl Frame {
    /// Appends this frame to `out` exactly as it is: RESP3 types as RESP3, RESP2's nulls as
    /// `$-1`/`*-1`. Decoding the result gives this frame back.
    pub fn encode(&self, out: &mut BytesMut) {
        self.write(Mode::Exact, out);
    }

    /// Appends this frame to `out` for a client speaking `version`.
    pub fn encode_as(&self, version: Version, out: &mut BytesMut) {
        self.write(Mode::For(version), out);
    }

    fn write(&self, mode: Mode, out: &mut BytesMut) {
        let resp3 = mode != Mode::For(Version::Resp2);
        let version = if resp3 { Version::Resp3 } else { Version::Resp2 };
        match self {
            Frame::Simple(text) => write_safe_line(out, b'+', text),
            Frame::Error(text) => write_safe_line(out, b'-', text),
            Frame::Integer(value) => write_integer(out, *value),
            Frame::Bulk(payload) => write_bulk(out, payload),
            Frame::NullBulk if mode == Mode::For(Version::Resp3) => write_null(out, version),
            Frame::NullBulk => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if mode == Mode::For(Version::Resp3) => write_null(out, version),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Null => write_null(out, version),
            Frame::Boolean(value) => write_boolean(out, *value, version),
            Frame::Double(value) => write_double(out, *value, version),
            Frame::BigNumber(digits) if resp3 => write_line(out, b'(', digits),
            Frame::BigNumber(digits) => write_bulk(out, digits),
            Frame::BlobError(text) if resp3 => write_blob(out, b'!', text),
            Frame::BlobError(text) => write_safe_line(out, b'-', text),
            Frame::Verbatim { format, text } => write_verbatim(out, format, text, version),
            Frame::Array(items) => {
                write_array_header(out, items.len());
                items.iter().for_each(|item| item.write(mode, out));
            }
            Frame::Set(items) => {
                write_set_header(out, items.len(), version);
                items.iter().for_each(|item| item.write(mode, out));
            }
            Frame::Push(items) => {
                write_push_header(out, items.len(), version);
                items.iter().for_each(|item| item.write(mode, out));
            }
            Frame::Map(pairs) => {
                write_map_header(out, pairs.len(), version);
                write_pairs(out, pairs, mode);
            }
            Frame::Attribute { attributes, value } => {
                if resp3 {
                    write_length(out, b'|', attributes.len());
                    write_pairs(out, attributes, mode);
                }
                value.write(mode, out);
            }
        }
    }

    /// The frame's encoding as a new buffer (tests, and callers that need owned bytes).
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out
    }
}

fn write_pairs(out: &mut BytesMut, pairs: &[(Frame, Frame)], mode: Mode) {
    for (key, value) in pairs {
        key.write(mode, out);
        value.write(mode, out);
    }
}

/// `+text\r\n`-style line. The caller guarantees `text` holds no `\r` or `\n`.
pub fn write_line(out: &mut BytesMut, type_byte: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(type_byte);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `+OK\r\n`.
pub fn write_ok(out: &mut BytesMut) {
    out.put_slice(b"+OK\r\n");
}

/// `-text\r\n`: an error reply. Line breaks inside `text` become spaces, as Redis does, so a
/// message that quotes user input can never break the framing.
pub fn write_error(out: &mut BytesMut, text: &[u8]) {
    write_safe_line(out, b'-', text);
}

/// A line whose text may contain `\r` or `\n`, which become spaces.
fn write_safe_line(out: &mut BytesMut, type_byte: u8, text: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        return write_line(out, type_byte, text);
    }
    out.reserve(text.len() + 3);
    out.put_u8(type_byte);
    out.extend(text.iter().map(|&byte| if byte == b'\r' || byte == b'\n' { b' ' } else { byte }));
    out.put_slice(b"\r\n");
}

/// `:value\r\n`.
pub fn write_integer(out: &mut BytesMut, value: i64) {
    let mut digits = itoa::Buffer::new();
    write_line(out, b':', digits.format(value).as_bytes());
}

/// `$len\r\npayload\r\n`.
pub fn write_bulk(out: &mut BytesMut, payload: &[u8]) {
    write_blob(out, b'$', payload);
}

fn write_blob(out: &mut BytesMut, type_byte: u8, payload: &[u8]) {
    out.reserve(payload.len() + 16);
    write_length(out, type_byte, payload.len());
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// `$len\r\n` alone, for callers that stream the payload afterwards.
pub fn write_bulk_header(out: &mut BytesMut, len: usize) {
    write_length(out, b'$', len);
}

/// `*len\r\n`.
pub fn write_array_header(out: &mut BytesMut, len: usize) {
    write_length(out, b'*', len);
}

/// A map header: `%len` for RESP3, `*2len` (a flat array of pairs) for RESP2.
pub fn write_map_header(out: &mut BytesMut, pairs: usize, version: Version) {
    match version {
        Version::Resp3 => write_length(out, b'%', pairs),
        Version::Resp2 => write_length(out, b'*', pairs * 2),
    }
}

/// A set header: `~len` for RESP3, `*len` for RESP2.
pub fn write_set_header(out: &mut BytesMut, len: usize, version: Version) {
    write_length(out, if version == Version::Resp3 { b'~' } else { b'*' }, len);
}

/// A push header (pub/sub messages): `>len` for RESP3, `*len` for RESP2.
pub fn write_push_header(out: &mut BytesMut, len: usize, version: Version) {
    write_length(out, if version == Version::Resp3 { b'>' } else { b'*' }, len);
}

/// A boolean: `#t`/`#f` for RESP3, `:1`/`:0` for RESP2.
pub fn write_boolean(out: &mut BytesMut, value: bool, version: Version) {
    match version {
        Version::Resp3 => out.put_slice(if value { b"#t\r\n" } else { b"#f\r\n" }),
        Version::Resp2 => write_integer(out, i64::from(value)),
    }
}

/// A verbatim string (`INFO`, `CLIENT LIST`): `=len\r\nfmt:text` for RESP3, a bulk string of the
/// text for RESP2.
pub fn write_verbatim(out: &mut BytesMut, format: &[u8; 3], text: &[u8], version: Version) {
    match version {
        Version::Resp3 => {
            out.reserve(text.len() + 16);
            write_length(out, b'=', text.len() + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Version::Resp2 => write_bulk(out, text),
    }
}

/// The null string: `_` for RESP3, `$-1` for RESP2.
pub fn write_null(out: &mut BytesMut, version: Version) {
    out.put_slice(match version {
        Version::Resp3 => b"_\r\n",
        Version::Resp2 => b"$-1\r\n",
    });
}

/// The null array: `_` for RESP3, `*-1` for RESP2.
pub fn write_null_array(out: &mut BytesMut, version: Version) {
    out.put_slice(match version {
        Version::Resp3 => b"_\r\n",
        Version::Resp2 => b"*-1\r\n",
    });
}

/// A double: `,value` for RESP3, a bulk string for RESP2, formatted as Redis 7.0 formats it.
pub fn write_double(out: &mut BytesMut, value: f64, version: Version) {
    let text = format_double(value);
    match version {
        Version::Resp3 => write_line(out, b',', text.as_bytes()),
        Version::Resp2 => write_bulk(out, text.as_bytes()),
    }
}

fn write_length(out: &mut BytesMut, type_byte: u8, len: usize) {
    let mut digits = itoa::Buffer::new();
    write_line(out, type_byte, digits.format(len).as_bytes());
}

/// Formats a double as Redis 7.0 replies with it: C's `%.17g` (17 significant digits, trailing
/// zeros trimmed, exponent form below 1e-4 and from 1e17), and `inf`, `-inf`, `nan`.
///
/// `%.17g` always parses back to the same `f64`. Redis 7.2 switched to the shortest round-trip
/// form; 7.0 is the version we match (`ZSCORE z m` after `ZADD z 0.1 m` gives
/// `0.10000000000000001` from both).
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    const SIGNIFICANT: i32 = 17;
    // Rust's `{:.16e}` rounds to 17 significant digits exactly as printf does; reshape the result.
    let scientific = format!("{value:.16e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..SIGNIFICANT).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = usize::try_from(SIGNIFICANT - 1 - exponent).unwrap_or(0);
        trim_fraction(&format!("{value:.decimals$}")).to_string()
    }
}

fn trim_fraction(number: &str) -> &str {
    if number.contains('.') { number.trim_end_matches('0').trim_end_matches('.') } else { number }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn doubles_format_as_c_printf_17g() {
        // Produced with Python's "%.17g" % x, which is C's printf.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (-0.1, "-0.10000000000000001"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (1.2345e17, "1.2345e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-4, "0.0001"),
            (1e-5, "1.0000000000000001e-05"),
            (0.00012345, "0.00012344999999999999"),
            (2.5e-7, "2.4999999999999999e-07"),
            (1e300, "1.0000000000000001e+300"),
            (-1e-300, "-1e-300"),
            (5e-324, "4.9406564584124654e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (3.3, "3.2999999999999998"),
            (1.0 / 3.0, "0.33333333333333331"),
            (9007199254740992.0, "9007199254740992"),
            (12345.678, "12345.678"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_double(*value), *expected, "{value:?}");
        }
    }

    #[test]
    fn resp3_types_are_lowered_for_resp2_clients() {
        let frame = Frame::Array(vec![
            Frame::Null,
            Frame::Boolean(true),
            Frame::Double(1.5),
            Frame::Map(vec![(Frame::simple("k"), Frame::Integer(1))]),
            Frame::Set(vec![Frame::Integer(2)]),
            Frame::Verbatim { format: *b"txt", text: Bytes::from_static(b"hi") },
            Frame::BlobError(Bytes::from_static(b"ERR a\nb")),
            Frame::Attribute { attributes: vec![], value: Box::new(Frame::Integer(3)) },
        ]);
        let mut out = BytesMut::new();
        frame.encode_as(Version::Resp2, &mut out);
        assert_eq!(
            &out[..],
            b"*8\r\n$-1\r\n:1\r\n$3\r\n1.5\r\n*2\r\n+k\r\n:1\r\n*1\r\n:2\r\n$2\r\nhi\r\n-ERR a b\r\n:3\r\n"
        );
    }

    #[test]
    fn resp2_nulls_become_the_resp3_null() {
        let mut out = BytesMut::new();
        Frame::NullBulk.encode_as(Version::Resp3, &mut out);
        Frame::NullArray.encode_as(Version::Resp3, &mut out);
        assert_eq!(&out[..], b"_\r\n_\r\n");
    }
}
