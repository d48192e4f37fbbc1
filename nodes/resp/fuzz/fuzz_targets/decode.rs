//! Fuzzes both RESP decoders with arbitrary bytes. Beyond "never panic", it checks two properties
//! a crash-only fuzzer would miss:
//! - feeding the bytes whole or in chunks yields the same frames and the same final error (the
//!   decoders resume partial parses, and resuming must never change the outcome);
//! - every decoded frame re-encodes to bytes that decode to a frame with the same encoding.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp::{Decoder, Frame, Limits, ProtocolError, RequestDecoder};

fn limits(selector: u8) -> Limits {
    if selector & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_bulk_len: 64, max_array_len: 8, max_depth: 4, max_inline_len: 32, ..Limits::default() }
    }
}

fn frames(input: &[u8], chunk: usize, limits: Limits) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => break,
                Err(error) => return (out, Some(error)),
            }
        }
    }
    (out, None)
}

fn requests(input: &[u8], chunk: usize, limits: Limits) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => out.push(request.args().map(<[u8]>::to_vec).collect()),
                Ok(None) => break,
                Err(error) => return (out, Some(error)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = limits(selector);
    let chunk = usize::from(selector >> 1).max(1);
    let whole = input.len().max(1);

    let (decoded, error) = frames(input, whole, limits);
    let (decoded_split, error_split) = frames(input, chunk, limits);
    // NaN doubles are not equal to themselves; compare encodings instead of frames.
    let encode = |frames: &[Frame]| frames.iter().map(|f| f.to_bytes()).collect::<Vec<_>>();
    assert_eq!(encode(&decoded), encode(&decoded_split));
    assert_eq!(error, error_split);

    for frame in &decoded {
        let encoded = frame.to_bytes();
        let mut again = encoded.clone();
        let reparsed = Decoder::new(Limits::default())
            .decode(&mut again)
            .expect("our own encoding parses")
            .expect("our own encoding is complete");
        assert_eq!(reparsed.to_bytes(), encoded);
    }

    assert_eq!(requests(input, whole, limits), requests(input, chunk, limits));
});
