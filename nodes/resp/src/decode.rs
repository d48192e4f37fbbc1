//! The general frame decoder: replies, and anything else that is a whole RESP frame.

use bytes::{Bytes, BytesMut};

use crate::element::{self, Kind};
use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::limits::Limits;

/// Decodes frames from a growing buffer.
///
/// Decoding happens in two steps. A resumable scan finds where the next frame ends, remembering
/// how far it got (the position of the next unread element and how many children each open
/// aggregate still expects), so each byte of a large reply is looked at once however many reads it
/// arrives in. Then the complete frame is split off the buffer and either handed out raw
/// ([`Decoder::decode_raw`], what the proxy forwards) or built into a [`Frame`] whose payloads
/// share those bytes.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    /// Where the next unscanned element of the current frame starts.
    pos: usize,
    /// Remaining children of each open aggregate, outermost first.
    open: Vec<usize>,
    /// Every element of the current frame scanned so far, in wire order, when the frame is to be
    /// built ([`Decoder::decode`]): building walks this record instead of parsing the headers a
    /// second time. Raw decoding does not need it and skips recording.
    scanned: Vec<Kind>,
    /// Whether the scan in progress is recording into `scanned`.
    recording: bool,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Splits the next complete frame's bytes off the front of `buf`; `Ok(None)` when more bytes
    /// are needed. After an error the stream cannot be framed any more: drop the connection.
    pub fn decode_raw(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        match self.scan(buf, false)? {
            Some(len) => Ok(Some(buf.split_to(len).freeze())),
            None => Ok(None),
        }
    }

    /// Splits off and builds the next complete frame; `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = self.scan(buf, true)? else {
            return Ok(None);
        };
        let raw = buf.split_to(len).freeze();
        let mut kinds = self.scanned.drain(..);
        let frame = build(&raw, &mut kinds);
        debug_assert!(kinds.next().is_none(), "the scan recorded exactly one frame");
        Ok(Some(frame))
    }

    /// Advances the scan over `buf`, recording elements if `record`; returns the frame's length
    /// once it is complete.
    fn scan(&mut self, buf: &[u8], record: bool) -> Result<Option<usize>, ProtocolError> {
        if record && !self.recording && self.pos > 0 {
            // A frame half-scanned by `decode_raw` is now wanted built: scan it again, recording.
            self.reset();
        }
        if self.pos == 0 {
            self.recording = record;
        }
        loop {
            let Some(element) = element::read(buf, self.pos, &self.limits).inspect_err(|_| self.reset())? else {
                return Ok(None);
            };
            self.pos = element.end;
            let children = element.kind.children();
            if self.recording {
                self.scanned.push(element.kind);
            }
            let finished_frame = if children > 0 {
                if self.open.len() >= self.limits.depth() {
                    self.reset();
                    return Err(ProtocolError::TooDeep(self.limits.depth()));
                }
                self.open.push(children);
                false
            } else {
                self.close_element()
            };
            if finished_frame {
                let len = self.pos;
                self.pos = 0;
                self.open.clear();
                return Ok(Some(len));
            }
        }
    }

    /// Counts one finished element against the innermost open aggregate, closing aggregates that
    /// become complete. Returns whether the outermost frame is complete.
    fn close_element(&mut self) -> bool {
        while let Some(remaining) = self.open.last_mut() {
            *remaining -= 1;
            if *remaining > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
        self.scanned.clear();
    }
}

/// Builds the frame held in `raw` from the elements the scan recorded for it, in wire order.
/// Nothing is parsed here: payloads become slices of `raw`, aggregates take their children from
/// the record.
fn build(raw: &Bytes, kinds: &mut impl Iterator<Item = Kind>) -> Frame {
    // The record holds exactly the elements of one complete frame, so it cannot run out; an empty
    // record would be a scanner bug, caught by the debug assertion in `decode` and the property
    // tests, and degrades to a null rather than a panic.
    let Some(kind) = kinds.next() else {
        return Frame::Null;
    };
    match kind {
        Kind::Simple(range) => Frame::Simple(raw.slice(range)),
        Kind::Error(range) => Frame::Error(raw.slice(range)),
        Kind::Integer(value) => Frame::Integer(value),
        Kind::Bulk(range) => Frame::Bulk(raw.slice(range)),
        Kind::NullBulk => Frame::NullBulk,
        Kind::BlobError(range) => Frame::BlobError(raw.slice(range)),
        Kind::Verbatim { format, text } => Frame::Verbatim { format, text: raw.slice(text) },
        Kind::Null => Frame::Null,
        Kind::Boolean(value) => Frame::Boolean(value),
        Kind::Double(value) => Frame::Double(value),
        Kind::BigNumber(range) => Frame::BigNumber(raw.slice(range)),
        Kind::NullArray => Frame::NullArray,
        Kind::Array(count) => Frame::Array(build_list(raw, kinds, count)),
        Kind::Set(count) => Frame::Set(build_list(raw, kinds, count)),
        Kind::Push(count) => Frame::Push(build_list(raw, kinds, count)),
        Kind::Map(count) => Frame::Map(build_pairs(raw, kinds, count)),
        Kind::Attribute(count) => {
            let attributes = build_pairs(raw, kinds, count);
            let value = Box::new(build(raw, kinds));
            Frame::Attribute { attributes, value }
        }
    }
}

fn build_list(raw: &Bytes, kinds: &mut impl Iterator<Item = Kind>, count: usize) -> Vec<Frame> {
    // `count` is trusted for the allocation only because the scan has seen all its elements.
    (0..count).map(|_| build(raw, kinds)).collect()
}

fn build_pairs(raw: &Bytes, kinds: &mut impl Iterator<Item = Kind>, count: usize) -> Vec<(Frame, Frame)> {
    (0..count).map(|_| (build(raw, kinds), build(raw, kinds))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(frames)
    }

    #[test]
    fn every_type_decodes() {
        let input = b"+OK\r\n-ERR bad\r\n:-7\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*2\r\n$1\r\na\r\n:1\r\n\
                      _\r\n#t\r\n,1.5\r\n(123\r\n!3\r\nERR\r\n=7\r\ntxt:abc\r\n%1\r\n+k\r\n+v\r\n\
                      ~1\r\n:1\r\n>1\r\n+m\r\n|1\r\n+a\r\n+b\r\n:9\r\n";
        let frames = decode_all(input).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::simple("OK"),
                Frame::error("ERR bad"),
                Frame::Integer(-7),
                Frame::bulk("foo"),
                Frame::NullBulk,
                Frame::NullArray,
                Frame::Array(vec![Frame::bulk("a"), Frame::Integer(1)]),
                Frame::Null,
                Frame::Boolean(true),
                Frame::Double(1.5),
                Frame::BigNumber(Bytes::from_static(b"123")),
                Frame::BlobError(Bytes::from_static(b"ERR")),
                Frame::Verbatim { format: *b"txt", text: Bytes::from_static(b"abc") },
                Frame::Map(vec![(Frame::simple("k"), Frame::simple("v"))]),
                Frame::Set(vec![Frame::Integer(1)]),
                Frame::Push(vec![Frame::simple("m")]),
                Frame::Attribute {
                    attributes: vec![(Frame::simple("a"), Frame::simple("b"))],
                    value: Box::new(Frame::Integer(9)),
                },
            ]
        );
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nfo"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"o\r\n:");
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"5\r\n+next\r\n");
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::Array(vec![Frame::bulk("foo"), Frame::Integer(5)])));
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::simple("next")));
    }

    #[test]
    fn raw_decoding_returns_the_frame_bytes_exactly() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$2\r\nhi\r\n:1\r\n"[..]);
        assert_eq!(decoder.decode_raw(&mut buf).unwrap().unwrap(), &b"*1\r\n$2\r\nhi\r\n"[..]);
        assert_eq!(&buf[..], b":1\r\n");
    }

    #[test]
    fn a_frame_started_raw_can_finish_built() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
        assert_eq!(decoder.decode_raw(&mut buf).unwrap(), None);
        buf.extend_from_slice(b":2\r\n");
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)])));
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        let limits = Limits { max_bulk_len: 4, max_array_len: 2, max_depth: 2, max_inline_len: 8, ..Limits::default() };
        let run = |input: &[u8]| Decoder::new(limits).decode(&mut BytesMut::from(input));
        assert_eq!(run(b"$5\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(run(b"*3\r\n"), Err(ProtocolError::InvalidAggregateLength));
        assert_eq!(run(b"*1\r\n*1\r\n*1\r\n"), Err(ProtocolError::TooDeep(2)));
        assert_eq!(run(b"+123456789"), Err(ProtocolError::LineTooLong));
        assert_eq!(run(b"$123456789"), Err(ProtocolError::TooBigBulkCount));
    }

    #[test]
    fn numeric_lines_obey_the_line_limit_however_they_arrive() {
        // Found by the split-equivalence property: the one-pass number reader once skipped the
        // line limit that the general path applies, so whole and split reads disagreed.
        let limits = Limits { max_inline_len: 4, ..Limits::default() };
        let whole = Decoder::new(limits).decode(&mut BytesMut::from(&b":123456\r\n"[..]));
        assert_eq!(whole, Err(ProtocolError::LineTooLong));
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::from(&b":1234"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"56\r\n");
        assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::LineTooLong));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let run = |input: &[u8]| Decoder::default().decode(&mut BytesMut::from(input));
        assert_eq!(run(b"?x\r\n"), Err(ProtocolError::InvalidFrameType(b'?')));
        assert_eq!(run(b":1x\r\n"), Err(ProtocolError::InvalidInteger));
        assert_eq!(run(b"$1\r\nab\r\n"), Err(ProtocolError::MissingBulkTerminator));
        assert_eq!(run(b"+a\rb\r\n"), Err(ProtocolError::BadLineEnd));
        assert_eq!(run(b"$?\r\n"), Err(ProtocolError::Streamed));
        assert_eq!(run(b"*-2\r\n"), Err(ProtocolError::InvalidAggregateLength));
        assert_eq!(run(b"~-1\r\n"), Err(ProtocolError::InvalidAggregateLength));
        assert_eq!(run(b"=2\r\nab\r\n"), Err(ProtocolError::InvalidVerbatim));
        assert_eq!(run(b"_x\r\n"), Err(ProtocolError::InvalidNull));
        assert_eq!(run(b"#x\r\n"), Err(ProtocolError::InvalidBoolean));
        assert_eq!(run(b"(1.5\r\n"), Err(ProtocolError::InvalidBigNumber));
    }

    #[test]
    fn a_decoder_recovers_after_an_error_on_a_new_buffer() {
        let mut decoder = Decoder::default();
        assert!(decoder.decode(&mut BytesMut::from(&b"*2\r\n:x\r\n"[..])).is_err());
        let mut fresh = BytesMut::from(&b":1\r\n"[..]);
        assert_eq!(decoder.decode(&mut fresh).unwrap(), Some(Frame::Integer(1)));
    }
}
