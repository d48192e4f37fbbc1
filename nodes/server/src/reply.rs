//! Writing replies straight into a client's output buffer, shaped for its protocol version.

use bytes::BytesMut;
use resp::{Version, encode};

/// The reply writer a command handler gets.
///
/// Handlers write exactly one reply (which may be an aggregate), and only after validating their
/// arguments: an error returned after writing would leave a half-written reply. Aggregates are
/// announced with their length first, as RESP requires.
pub struct Reply<'a> {
    out: &'a mut BytesMut,
    version: Version,
}

impl<'a> Reply<'a> {
    /// A writer appending to `out` for a client speaking `version`.
    pub fn new(out: &'a mut BytesMut, version: Version) -> Self {
        Self { out, version }
    }

    /// Switches the protocol for the rest of this reply (`HELLO 3` answers in RESP3).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The client's protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the client speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.version == Version::Resp3
    }

    /// Bytes already encoded as RESP (elements of an aggregate announced before).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        encode::write_ok(self.out);
    }

    /// The bytes written so far, to append what no reply type covers (the snapshot a replica
    /// is sent after `+FULLRESYNC`).
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.out
    }

    /// A status line.
    pub fn simple(&mut self, text: &str) {
        encode::write_line(self.out, b'+', text.as_bytes());
    }

    /// An error line; `text` starts with its code (`ERR`, `WRONGTYPE`…).
    pub fn error(&mut self, text: &str) {
        encode::write_error(self.out, text.as_bytes());
    }

    /// An integer.
    pub fn int(&mut self, value: i64) {
        encode::write_integer(self.out, value);
    }

    /// An unsigned count as an integer (saturating, never reached in practice).
    pub fn count(&mut self, value: usize) {
        self.int(i64::try_from(value).unwrap_or(i64::MAX));
    }

    /// A bulk string.
    pub fn bulk(&mut self, bytes: &[u8]) {
        encode::write_bulk(self.out, bytes);
    }

    /// A bulk string of an integer's decimal digits.
    pub fn bulk_int(&mut self, value: i64) {
        self.bulk(itoa::Buffer::new().format(value).as_bytes());
    }

    /// The null string (`$-1` / `_`).
    pub fn null(&mut self) {
        encode::write_null(self.out, self.version);
    }

    /// The null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        encode::write_null_array(self.out, self.version);
    }

    /// An array header of `len` items.
    pub fn array(&mut self, len: usize) {
        encode::write_array_header(self.out, len);
    }

    /// A map header of `pairs` pairs (a flat array for RESP2).
    pub fn map(&mut self, pairs: usize) {
        encode::write_map_header(self.out, pairs, self.version);
    }

    /// A set header (an array for RESP2).
    pub fn set(&mut self, len: usize) {
        encode::write_set_header(self.out, len, self.version);
    }

    /// A push header (an array for RESP2): pub/sub messages.
    pub fn push(&mut self, len: usize) {
        encode::write_push_header(self.out, len, self.version);
    }

    /// A double (a bulk string for RESP2), formatted as Redis 7.0 does.
    pub fn double(&mut self, value: f64) {
        encode::write_double(self.out, value, self.version);
    }

    /// A boolean-ish integer reply that RESP3 clients get as `#t`/`#f` where Redis sends one
    /// (`SMISMEMBER` does not; use [`Reply::int`] there).
    pub fn boolean(&mut self, value: bool) {
        encode::write_boolean(self.out, value, self.version);
    }

    /// A verbatim text reply (`INFO`, `CLIENT LIST`): `=` with `txt:` for RESP3, bulk for RESP2.
    pub fn verbatim(&mut self, text: &str) {
        encode::write_verbatim(self.out, b"txt", text.as_bytes(), self.version);
    }

    /// A `HELP` reply: each line a status line.
    pub fn help(&mut self, lines: &[&str]) {
        self.array(lines.len());
        for line in lines {
            self.simple(line);
        }
    }

    /// A whole prepared frame (rare replies built as values).
    pub fn frame(&mut self, frame: &resp::Frame) {
        frame.encode_as(self.version, self.out);
    }
}
