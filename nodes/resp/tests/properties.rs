//! Property tests of the RESP codec: what is encoded decodes back; how the bytes are split across
//! reads never changes what is decoded; and no input, however mangled, makes a decoder panic.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use resp::{Decoder, Frame, Limits, ProtocolError, Request, RequestDecoder, Version};

/// Bytes for a line-based payload (simple strings, errors): anything but `\r` and `\n`.
fn line_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>().prop_filter("no line breaks", |b| *b != b'\r' && *b != b'\n'), 0..12).prop_map(Bytes::from)
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(Frame::Simple),
        line_bytes().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        any_bytes().prop_map(Frame::Bulk),
        Just(Frame::NullBulk),
        Just(Frame::NullArray),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        prop_oneof![any::<f64>().prop_filter("NaN is not equal to itself", |d| !d.is_nan()), Just(f64::INFINITY)]
            .prop_map(Frame::Double),
        (any::<bool>(), "[1-9][0-9]{0,40}").prop_map(|(negative, digits)| {
            Frame::BigNumber(Bytes::from(if negative { format!("-{digits}") } else { digits }))
        }),
        any_bytes().prop_map(Frame::BlobError),
        ("[a-z]{3}", any_bytes()).prop_map(|(format, text)| Frame::Verbatim {
            format: format.as_bytes().try_into().expect("three letters"),
            text,
        }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Frame::Array),
            vec(inner.clone(), 0..6).prop_map(Frame::Set),
            vec(inner.clone(), 0..6).prop_map(Frame::Push),
            vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
            (vec((inner.clone(), inner.clone()), 0..3), inner)
                .prop_map(|(attributes, value)| { Frame::Attribute { attributes, value: Box::new(value) } }),
        ]
    })
}

/// Cuts `bytes` into consecutive chunks whose sizes cycle through `sizes`.
fn chunks<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Everything a frame decoder yields for `input` fed in the given chunks, ending with the error if
/// one stops it.
fn decode_frames(input: &[u8], sizes: &[usize], limits: Limits) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks(input, sizes) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

/// The same for the request decoder, as argument lists.
fn decode_requests(input: &[u8], sizes: &[usize], limits: Limits) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks(input, sizes) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => requests.push(request.args().map(<[u8]>::to_vec).collect()),
                Ok(None) => break,
                Err(error) => return (requests, Some(error)),
            }
        }
    }
    (requests, None)
}

fn small_limits() -> Limits {
    Limits { max_bulk_len: 16, max_array_len: 4, max_depth: 3, max_inline_len: 16, ..Limits::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_round_trips(frame in frame()) {
        let encoded = frame.to_bytes();
        let mut buf = encoded.clone();
        let decoded = Decoder::new(Limits::default()).decode(&mut buf).unwrap();
        prop_assert_eq!(decoded, Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn any_split_of_a_frame_stream_decodes_the_same(
        frames in vec(frame(), 1..8),
        sizes in vec(1usize..40, 1..8),
    ) {
        let mut stream = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let (decoded, error) = decode_frames(&stream, &sizes, Limits::default());
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames.clone());

        // Raw decoding hands out each frame's exact bytes.
        let mut decoder = Decoder::default();
        let mut buf = stream.clone();
        for frame in &frames {
            let raw = decoder.decode_raw(&mut buf).unwrap().unwrap();
            prop_assert_eq!(&raw[..], &frame.to_bytes()[..]);
        }
    }

    #[test]
    fn resp2_lowering_yields_only_resp2_types(frame in frame()) {
        let mut out = BytesMut::new();
        frame.encode_as(Version::Resp2, &mut out);
        let decoded = Decoder::default().decode(&mut out).unwrap().unwrap();
        fn resp2_only(frame: &Frame) -> bool {
            match frame {
                Frame::Simple(_) | Frame::Error(_) | Frame::Integer(_) | Frame::Bulk(_)
                | Frame::NullBulk | Frame::NullArray => true,
                Frame::Array(items) => items.iter().all(resp2_only),
                _ => false,
            }
        }
        prop_assert!(resp2_only(&decoded), "{:?}", decoded);
    }

    #[test]
    fn any_split_of_a_request_pipeline_decodes_the_same(
        requests in vec(vec(vec(any::<u8>(), 0..20), 1..6), 1..10),
        sizes in vec(1usize..30, 1..8),
    ) {
        let mut stream = BytesMut::new();
        for args in &requests {
            stream.extend_from_slice(Request::from_args(args).wire());
        }
        let (decoded, error) = decode_requests(&stream, &sizes, Limits::default());
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, requests);
    }

    #[test]
    fn inline_commands_split_into_their_arguments(
        plain in vec("[a-zA-Z0-9_:.-]{1,10}", 1..6),
        quoted in vec(vec(any::<u8>(), 0..10), 0..4),
    ) {
        // Plain words separated by runs of spaces and tabs, then arbitrary bytes written as
        // double-quoted \xHH escapes.
        let mut line = plain.join(" \t ");
        for arg in &quoted {
            line.push_str(" \"");
            for byte in arg {
                line.push_str(&format!("\\x{byte:02x}"));
            }
            line.push('"');
        }
        line.push_str("\r\n");
        let mut expected: Vec<Vec<u8>> = plain.iter().map(|word| word.as_bytes().to_vec()).collect();
        expected.extend(quoted.iter().cloned());
        let (decoded, error) = decode_requests(line.as_bytes(), &[3, 7], Limits::default());
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, vec![expected]);
    }

    #[test]
    fn mangled_bytes_never_panic_and_decode_the_same_however_split(
        frames in vec(frame(), 1..4),
        mutations in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        truncate in any::<prop::sample::Index>(),
        sizes in vec(1usize..20, 1..6),
        tight in any::<bool>(),
    ) {
        let mut stream = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let mut bytes = stream.to_vec();
        for (index, byte) in mutations {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(truncate.index(bytes.len() + 1));
        let limits = if tight { small_limits() } else { Limits::default() };

        let whole_frames = decode_frames(&bytes, &[bytes.len().max(1)], limits);
        let split_frames = decode_frames(&bytes, &sizes, limits);
        prop_assert_eq!(whole_frames, split_frames);

        let whole_requests = decode_requests(&bytes, &[bytes.len().max(1)], limits);
        let split_requests = decode_requests(&bytes, &sizes, limits);
        prop_assert_eq!(whole_requests, split_requests);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), tight in any::<bool>()) {
        let limits = if tight { small_limits() } else { Limits::default() };
        let _ = decode_frames(&bytes, &[7], limits);
        let _ = decode_requests(&bytes, &[7], limits);
    }
}
