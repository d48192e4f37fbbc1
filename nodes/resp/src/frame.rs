//! The frame tree: every RESP2 and RESP3 type.

use bytes::Bytes;

/// One RESP value.
///
/// Payloads are [`Bytes`] that share the buffer they were decoded from, so building a frame copies
/// no payload. RESP2's two nulls (`$-1` and `*-1`) are kept apart from RESP3's `_` so that a RESP2
/// stream re-encodes byte for byte.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status line, no `\r` or `\n` inside.
    Simple(Bytes),
    /// `-ERR …`: an error line; the first word is the error code by convention.
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`: a binary-safe string.
    Bulk(Bytes),
    /// `$-1`: RESP2's null string (`GET` of a missing key).
    NullBulk,
    /// `*2\r\n…`: an ordered list.
    Array(Vec<Frame>),
    /// `*-1`: RESP2's null array (`BLPOP` timing out).
    NullArray,
    /// `_`: RESP3's one null.
    Null,
    /// `#t` / `#f` (RESP3).
    Boolean(bool),
    /// `,1.5` (RESP3), including `inf`, `-inf` and `nan`.
    Double(f64),
    /// `(3492890328409238509324850943850943825024385` (RESP3): kept as its decimal text.
    BigNumber(Bytes),
    /// `!21\r\nSYNTAX invalid syntax` (RESP3): a binary-safe error.
    BlobError(Bytes),
    /// `=15\r\ntxt:Some string` (RESP3): a string with a three-letter format hint.
    Verbatim {
        /// The format, `txt` or `mkd`.
        format: [u8; 3],
        /// The text after `xxx:`.
        text: Bytes,
    },
    /// `%2\r\n…` (RESP3): key/value pairs, in wire order.
    Map(Vec<(Frame, Frame)>),
    /// `~2\r\n…` (RESP3): an unordered collection, in wire order.
    Set(Vec<Frame>),
    /// `>3\r\n…` (RESP3): an out-of-band message (pub/sub, invalidation).
    Push(Vec<Frame>),
    /// `|1\r\n…` (RESP3): attributes attached to the value that follows them.
    Attribute {
        /// The attribute map.
        attributes: Vec<(Frame, Frame)>,
        /// The value the attributes describe.
        value: Box<Frame>,
    },
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string from static text (`+PONG`).
    pub fn simple(text: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// An error line from text, which should start with its code (`ERR`, `WRONGTYPE`, …).
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(text.into()))
    }

    /// A bulk string.
    pub fn bulk(payload: impl Into<Bytes>) -> Frame {
        Frame::Bulk(payload.into())
    }

    /// An array of bulk strings, the shape of every client request.
    pub fn command<I>(args: I) -> Frame
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        Frame::Array(args.into_iter().map(|arg| Frame::Bulk(Bytes::copy_from_slice(arg.as_ref()))).collect())
    }

    /// Whether this is an error of either kind.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BlobError(_))
    }

    /// The bytes of a string-like frame (simple, bulk, verbatim, big number), if it is one.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(bytes) | Frame::Bulk(bytes) | Frame::BigNumber(bytes) => Some(bytes),
            Frame::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is any of the three nulls.
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null | Frame::NullBulk | Frame::NullArray)
    }
}
