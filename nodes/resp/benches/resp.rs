//! Parse and encode throughput of our RESP codec, and of `redis-protocol` 6 on the same inputs.
//!
//! Run with `just bench-resp`; the numbers and the machine they came from are in
//! `reports/resp-bench.md`. Inputs are the shapes that dominate the proxy and server hot paths:
//! a pipeline of `SET` requests, a stream of short bulk replies, an `MGET`-sized array reply, and
//! a large `LRANGE`-sized reply arriving in 16 KiB reads (where resuming a partial parse matters).

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use redis_protocol::resp2::{decode::decode_bytes_mut, encode::extend_encode, types::BytesFrame};
use resp::{Decoder, Frame, Limits, Request, RequestDecoder, encode};

const VALUE: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn set_pipeline(count: usize) -> BytesMut {
    let mut out = BytesMut::new();
    for index in 0..count {
        let key = format!("key:{index:012}");
        out.extend_from_slice(Request::from_args([&b"SET"[..], key.as_bytes(), VALUE]).wire());
    }
    out
}

fn bulk_replies(count: usize) -> BytesMut {
    let mut out = BytesMut::new();
    for _ in 0..count {
        encode::write_bulk(&mut out, VALUE);
    }
    out
}

fn array_reply(items: usize, item: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, items);
    for _ in 0..items {
        encode::write_bulk(&mut out, item);
    }
    out
}

fn decode_inputs(c: &mut Criterion) {
    let inputs = [
        ("pipeline of 1000 SET", set_pipeline(1000), 1000u64),
        ("1000 bulk replies", bulk_replies(1000), 1000),
        ("MGET reply, 100 items", array_reply(100, VALUE), 1),
    ];
    for (name, input, frames) in inputs {
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        if name.starts_with("pipeline") {
            group.bench_function("ours: requests", |b| {
                b.iter_batched_ref(
                    || input.clone(),
                    |buf| {
                        let mut decoder = RequestDecoder::new(Limits::default());
                        let mut count = 0;
                        while let Some(request) = decoder.decode(buf).expect("valid") {
                            black_box(&request);
                            count += 1;
                        }
                        assert_eq!(count, frames);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.bench_function("ours: frames", |b| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut decoder = Decoder::new(Limits::default());
                    while let Some(frame) = decoder.decode(buf).expect("valid") {
                        black_box(&frame);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function("ours: raw boundaries", |b| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut decoder = Decoder::new(Limits::default());
                    while let Some(raw) = decoder.decode_raw(buf).expect("valid") {
                        black_box(&raw);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function("redis-protocol: frames", |b| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    while let Some((frame, _, _)) = decode_bytes_mut(buf).expect("valid") {
                        black_box(&frame);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

/// A 100,000-item array reply (an `LRANGE` of a big list, ~1.8 MB) delivered in 16 KiB reads,
/// with a decode attempt after every read, as a connection does.
fn decode_incremental(c: &mut Criterion) {
    let input = array_reply(100_000, b"item:00000");
    let reads: Vec<Bytes> = input.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let limits = Limits { max_array_len: usize::MAX, ..Limits::default() };
    let mut group = c.benchmark_group("decode/100k-item reply in 16 KiB reads");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.sample_size(10);
    group.bench_function("ours: frames", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(limits);
            let mut buf = BytesMut::new();
            let mut done = None;
            for read in &reads {
                buf.extend_from_slice(read);
                if let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                    done = Some(frame);
                }
            }
            assert!(done.is_some());
        })
    });
    group.bench_function("redis-protocol: frames", |b| {
        b.iter(|| {
            let mut buf = BytesMut::new();
            let mut done = None;
            for read in &reads {
                buf.extend_from_slice(read);
                if let Some((frame, _, _)) = decode_bytes_mut(&mut buf).expect("valid") {
                    done = Some(frame);
                }
            }
            assert!(done.is_some());
        })
    });
    group.finish();
}

fn encode_replies(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode/1000 bulk replies");
    group.throughput(Throughput::Bytes(bulk_replies(1000).len() as u64));
    group.bench_function("ours: write_bulk", |b| {
        let mut out = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                encode::write_bulk(&mut out, black_box(VALUE));
            }
        })
    });
    let ours = Frame::Bulk(Bytes::from_static(VALUE));
    group.bench_function("ours: Frame::encode", |b| {
        let mut out = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                black_box(&ours).encode(&mut out);
            }
        })
    });
    let theirs = BytesFrame::BulkString(Bytes::from_static(VALUE));
    group.bench_function("redis-protocol: extend_encode", |b| {
        let mut out = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                extend_encode(&mut out, black_box(&theirs), false).expect("encodes");
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("encode/MGET reply, 100 items");
    group.throughput(Throughput::Bytes(array_reply(100, VALUE).len() as u64));
    let ours = Frame::Array(vec![Frame::Bulk(Bytes::from_static(VALUE)); 100]);
    group.bench_function("ours: Frame::encode", |b| {
        let mut out = BytesMut::with_capacity(8 * 1024);
        b.iter(|| {
            out.clear();
            black_box(&ours).encode(&mut out);
        })
    });
    let theirs = BytesFrame::Array(vec![BytesFrame::BulkString(Bytes::from_static(VALUE)); 100]);
    group.bench_function("redis-protocol: extend_encode", |b| {
        let mut out = BytesMut::with_capacity(8 * 1024);
        b.iter(|| {
            out.clear();
            extend_encode(&mut out, black_box(&theirs), false).expect("encodes");
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode_inputs, decode_incremental, encode_replies
}
criterion_main!(benches);
