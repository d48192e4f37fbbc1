//! Client commands: decoding multibulk and inline requests into [`Request`]s.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;
use smallvec::SmallVec;

use crate::element::read_integer_line;
use crate::encode;
use crate::error::ProtocolError;
use crate::inline::split_args;
use crate::limits::Limits;

/// Argument positions inside [`Request::wire`]; most commands have few arguments, so they are kept
/// inline without a heap allocation.
type Spans = SmallVec<[Range<usize>; 6]>;

/// One client command: its arguments, and the RESP bytes that carry them.
///
/// `wire` is the multibulk encoding of the command: for a multibulk request it is the client's own
/// bytes, split off the read buffer without a copy, so the proxy forwards it as is; an inline
/// command is encoded into multibulk once, when it is decoded. Arguments are ranges into `wire`.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    wire: Bytes,
    args: Spans,
}

impl Request {
    /// Builds a request from arguments (clients, and the proxy when it splits `MGET`).
    pub fn from_args<I>(args: I) -> Request
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let args: SmallVec<[I::Item; 6]> = args.into_iter().collect();
        let mut wire = BytesMut::new();
        encode::write_array_header(&mut wire, args.len());
        let mut spans = Spans::new();
        for arg in &args {
            let arg = arg.as_ref();
            encode::write_bulk_header(&mut wire, arg.len());
            spans.push(wire.len()..wire.len() + arg.len());
            wire.extend_from_slice(arg);
            wire.extend_from_slice(b"\r\n");
        }
        Request { wire: wire.freeze(), args: spans }
    }

    /// The number of arguments, the command name included. Never zero: empty requests are
    /// skipped by the decoder, as Redis skips them.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Always `false` (see [`Request::len`]); present for the usual pairing with `len`.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The command name as sent (any case).
    pub fn name(&self) -> &[u8] {
        self.arg(0).unwrap_or_default()
    }

    /// Argument `index` (0 is the command name).
    pub fn arg(&self, index: usize) -> Option<&[u8]> {
        self.args.get(index).map(|span| &self.wire[span.clone()])
    }

    /// Argument `index` as shared bytes, without copying.
    pub fn arg_bytes(&self, index: usize) -> Option<Bytes> {
        self.args.get(index).map(|span| self.wire.slice(span.clone()))
    }

    /// Every argument, the command name first.
    pub fn args(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.args.iter().map(|span| &self.wire[span.clone()])
    }

    /// The multibulk bytes of the request, ready to forward.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.args().map(|arg| String::from_utf8_lossy(arg))).finish()
    }
}

/// Decodes client requests from a connection's read buffer.
///
/// It follows Redis' own request parser (`processMultibulkBuffer` / `processInlineBuffer`): a
/// buffer starting with `*` is a multibulk request, anything else an inline one; empty requests
/// (`*0`, `*-1`, blank lines) are skipped; and the two bytes after a bulk payload are skipped
/// without being checked, exactly as Redis skips them, so both servers accept the same streams.
/// Progress through a partial multibulk request is kept between calls.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: Limits,
    /// Arguments announced by the `*<count>` header of the request in progress (0: none).
    expected: usize,
    /// Where the next unread bulk of the request in progress starts.
    pos: usize,
    /// Arguments of the request in progress read so far.
    args: Spans,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Replaces the limits (a server tightens them until a client authenticates).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Splits the next complete request off the front of `buf`; `Ok(None)` when more bytes are
    /// needed. After an error the stream cannot be framed any more: reply with the error's text
    /// and close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.expected == 0 {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => match self.start_multibulk(buf)? {
                        Some(true) => {}
                        Some(false) => continue,
                        None => return Ok(None),
                    },
                    Some(_) => match self.decode_inline(buf)? {
                        Some(Some(request)) => return Ok(Some(request)),
                        Some(None) => continue,
                        None => return Ok(None),
                    },
                }
            }
            return self.continue_multibulk(buf);
        }
    }

    /// Reads the `*<count>` header. `Some(true)`: a request with arguments has started;
    /// `Some(false)`: an empty request was skipped; `None`: more bytes are needed.
    fn start_multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<bool>, ProtocolError> {
        let Some((count, line_end)) = read_integer_line(buf, 1, &self.limits, b'*')? else {
            return Ok(None);
        };
        let count = count.ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count <= 0 {
            buf.advance(line_end);
            return Ok(Some(false));
        }
        let count = usize::try_from(count)
            .ok()
            .filter(|count| *count <= self.limits.max_array_len)
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        self.expected = count;
        self.pos = line_end;
        self.args.clear();
        Ok(Some(true))
    }

    /// Reads bulks of the request in progress until it is complete or the buffer runs out.
    fn continue_multibulk(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        while self.args.len() < self.expected {
            let Some(&type_byte) = buf.get(self.pos) else {
                return Ok(None);
            };
            if type_byte != b'$' {
                self.reset();
                return Err(ProtocolError::ExpectedBulk(type_byte));
            }
            let Some((len, line_end)) =
                read_integer_line(buf, self.pos + 1, &self.limits, b'$').inspect_err(|_| self.reset())?
            else {
                return Ok(None);
            };
            let len = len.and_then(|len| usize::try_from(len).ok()).filter(|len| *len <= self.limits.max_bulk_len);
            let Some(len) = len else {
                self.reset();
                return Err(ProtocolError::InvalidBulkLength);
            };
            let end = line_end + len;
            if buf.len() < end + 2 {
                // Make room for the rest of a big argument in one allocation.
                buf.reserve(end + 2 - buf.len());
                return Ok(None);
            }
            self.args.push(line_end..end);
            self.pos = end + 2;
        }
        let wire = buf.split_to(self.pos).freeze();
        let args = std::mem::take(&mut self.args);
        self.reset();
        Ok(Some(Request { wire, args }))
    }

    /// Reads one inline command. `Some(Some(_))`: a request; `Some(None)`: a blank line was
    /// skipped; `None`: more bytes are needed.
    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Option<Request>>, ProtocolError> {
        let Some(newline) = memchr(b'\n', buf) else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(None);
        };
        if newline > self.limits.max_inline_len {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
        let args = split_args(&buf[..line_end])?;
        buf.advance(newline + 1);
        if args.is_empty() {
            return Ok(Some(None));
        }
        if args.len() > self.limits.max_array_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        Ok(Some(Some(Request::from_args(args))))
    }

    fn reset(&mut self) {
        self.expected = 0;
        self.pos = 0;
        self.args.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<String>>, ProtocolError> {
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut requests = Vec::new();
        while let Some(request) = decoder.decode(&mut buf)? {
            requests.push(request.args().map(|arg| String::from_utf8_lossy(arg).into_owned()).collect());
        }
        Ok(requests)
    }

    #[test]
    fn multibulk_and_inline_requests() {
        let requests = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\n*-1\r\nset a 'b c'\n").unwrap();
        assert_eq!(requests, vec![vec!["GET", "k"], vec!["PING"], vec!["set", "a", "b c"]]);
    }

    #[test]
    fn wire_bytes_are_the_clients_own() {
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI"[..]);
        let mut decoder = RequestDecoder::default();
        let request = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&request.wire()[..], b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(request.name(), b"PING");
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn inline_requests_are_forwarded_as_multibulk() {
        let mut buf = BytesMut::from(&b"SET k \"v v\"\r\n"[..]);
        let request = RequestDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(&request.wire()[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv v\r\n");
        assert_eq!(request, Request::from_args(["SET", "k", "v v"]));
    }

    #[test]
    fn errors_are_worded_as_redis_words_them() {
        let error = |input: &[u8]| decode_all(input).unwrap_err().to_string();
        assert_eq!(error(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(error(b"*1\r\n:1\r\n"), "Protocol error: expected '$', got ':'");
        assert_eq!(error(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(error(b"*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(error(b"set 'a\n"), "Protocol error: unbalanced quotes in request");
        let limits = Limits { max_inline_len: 4, max_bulk_len: 2, max_array_len: 2, ..Limits::default() };
        let error =
            |input: &[u8]| RequestDecoder::new(limits).decode(&mut BytesMut::from(input)).unwrap_err().to_string();
        assert_eq!(error(b"PINGPONG"), "Protocol error: too big inline request");
        assert_eq!(error(b"*123456"), "Protocol error: too big mbulk count string");
        assert_eq!(error(b"*1\r\n$123456"), "Protocol error: too big bulk count string");
        assert_eq!(error(b"*1\r\n$3\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(error(b"*3\r\n"), "Protocol error: invalid multibulk length");
    }

    #[test]
    fn bytes_after_a_bulk_payload_are_skipped_as_redis_skips_them() {
        assert_eq!(decode_all(b"*1\r\n$4\r\nPINGxx").unwrap(), vec![vec!["PING"]]);
    }

    #[test]
    fn progress_survives_partial_reads() {
        let full = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let mut decoder = RequestDecoder::default();
        let mut buf = BytesMut::new();
        for (index, byte) in full.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let decoded = decoder.decode(&mut buf).unwrap();
            assert_eq!(decoded.is_some(), index == full.len() - 1);
        }
    }
}
