//! Malformed requests through the proxy: every request before the malformed bytes is run and
//! answered, in order, then the error is the last reply, worded as `redis-server` 7.0 words it,
//! and the connection closes. Checked against a real `redis-server` for each kind of malformed
//! bytes, and for any bytes at all against the request decoder's own view of where the first
//! error is.

mod common;

use bytes::BytesMut;
use common::{Redis, encode, exchange, ok, read_to_end, shown, start_proxy, start_server};
use model::{Slot, SlotId, slot_of};
use net::{Env, TokioEnv};
use proptest::prelude::*;
use proxy::ProxyConfig;
use resp::{Frame, Limits, RequestDecoder};
use tokio::io::AsyncWriteExt;

/// Malformed bytes of every kind the request decoder knows, each named by Redis' error.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    // Lines past the 64 KiB inline limit, long enough that Redis gives up before their end
    // arrives (it reads 16 KiB at a time, and would parse a line whose end it already has).
    let long = |head: &[u8], byte: u8| {
        let mut bytes = head.to_vec();
        bytes.resize(head.len() + 200_000, byte);
        bytes
    };
    vec![
        ("negative bulk length", b"*1\r\n$-7\r\n".to_vec()),
        ("bulk length not a number", b"*1\r\n$x\r\n".to_vec()),
        ("bulk length with a leading zero", b"*1\r\n$04\r\nPING\r\n".to_vec()),
        ("bulk length with a plus sign", b"*1\r\n$+4\r\nPING\r\n".to_vec()),
        ("bulk longer than proto-max-bulk-len", b"*1\r\n$600000000\r\n".to_vec()),
        ("multibulk length not a number", b"*x\r\n".to_vec()),
        ("empty multibulk length", b"*\r\n".to_vec()),
        ("multibulk length past INT_MAX", b"*2147483648\r\n".to_vec()),
        ("multibulk length past i64", b"*99999999999999999999\r\n".to_vec()),
        ("an integer where a bulk is expected", b"*1\r\n:1\r\n".to_vec()),
        ("a simple string where a bulk is expected", b"*2\r\n$3\r\nGET\r\n+k\r\n".to_vec()),
        // Quoted in the error with its line break made a space, as Redis quotes it.
        ("a line end where a bulk is expected", b"*2\r\n$3\r\nGET\r\n\r\n".to_vec()),
        ("unbalanced single quote", b"SET k 'v\r\n".to_vec()),
        ("closing quote not followed by a space", b"SET k \"v\"w\r\n".to_vec()),
        ("too big mbulk count string", long(b"*", b'1')),
        ("too big bulk count string", long(b"*1\r\n$", b'1')),
        ("too big inline request", long(b"", b'x')),
    ]
}

/// The requests sent before the malformed bytes: each context exercises another path that
/// reads requests.
fn contexts() -> Vec<(&'static str, Vec<u8>)> {
    let mut plain = encode(&[&["SET", "p:1", "v"], &["SET", "p:2", "v"], &["SET", "p:3", "v"]]);
    plain.extend_from_slice(b"INCR n\r\n");
    let mut pipeline = Vec::new();
    for _ in 0..40 {
        pipeline.extend(encode(&[&["INCR", "n"], &["APPEND", "p:1", "x"]]));
    }
    vec![
        ("nothing", Vec::new()),
        ("three SETs and an inline INCR", plain),
        ("a pipeline longer than session_max_pipeline", pipeline),
        // Its keys share a slot, as the proxy requires.
        ("a transaction", encode(&[&["SET", "p:2", "w"], &["MULTI"], &["SET", "{t}1", "v"], &["INCR", "{t}n"]])),
        ("subscribed mode", encode(&[&["SET", "p:3", "v"], &["SUBSCRIBE", "ch1", "ch2"], &["PING"]])),
    ]
}

/// Differential: `<requests><malformed bytes><a request that must not run>` in one write, to
/// `redis-server` and through the proxy (in front of our server): the same replies in the same
/// order, then both close the connection, and both ran the same requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_answered_as_redis_answers_them_after_what_came_before() {
    let env = TokioEnv::with_seed(21);
    let redis = Redis::start("protocol", &[]);
    let ours = start_server(&env).await;
    // A short pipeline limit, so a long pipeline is read in several batches.
    let config = ProxyConfig { session_max_pipeline: 16, ..ProxyConfig::default() };
    let front = start_proxy(&env, config, &ours.addr).await;
    let mut reference = common::Client::connect(&env, &redis.addr).await;
    let mut backend = common::Client::connect(&env, &ours.addr).await;
    let never = encode(&[&["SET", "canary", "ran"]]);
    for (context, before) in contexts() {
        for (what, bad) in malformed() {
            let case = format!("{context}, then {what}");
            assert_eq!(reference.call(&["FLUSHALL"]).await, ok());
            assert_eq!(backend.call(&["FLUSHALL"]).await, ok());
            let bytes = [before.as_slice(), &bad, &never].concat();
            let (theirs, their_end) = exchange(&env, &redis.addr, &bytes, false).await;
            let (mine, my_end) = exchange(&env, &front.addr, &bytes, false).await;
            assert_eq!(shown(&mine), shown(&theirs), "{case}: the proxy's replies, then redis-server's");
            assert!(their_end.closed(), "{case}: redis-server left the connection open");
            assert!(my_end.closed(), "{case}: the proxy left the connection open");
            let state = ["MGET", "p:1", "p:2", "p:3", "n", "{t}1", "{t}n", "canary"];
            let (their_state, my_state) = (reference.call(&state).await, backend.call(&state).await);
            assert_eq!(my_state, their_state, "{case}: what ran");
            let Frame::Array(values) = my_state else { panic!("{case}: MGET") };
            assert_eq!(values.last(), Some(&Frame::NullBulk), "{case}: a request after the malformed bytes ran");
        }
    }
}

/// While the reply due next is held (its slot is locked), the session keeps reading the client:
/// a malformed request read then still comes after every reply owed, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_read_while_a_reply_is_held_is_answered_after_it() {
    let env = TokioEnv::with_seed(22);
    let ours = start_server(&env).await;
    let front = start_proxy(&env, ProxyConfig::default(), &ours.addr).await;
    let id = SlotId::new(slot_of(b"held").index() as u32).expect("slot");
    let route = |locked: bool| Slot { id, locked, backend_addr: ours.addr.clone(), ..Slot::default() };
    assert_ne!(slot_of(b"free1"), slot_of(b"held"));
    assert_ne!(slot_of(b"free2"), slot_of(b"held"));
    front.proxy.router().fill(&[route(true)]).await.expect("lock");
    let mut backend = common::Client::connect(&env, &ours.addr).await;
    let mut stream = env.connect(&front.addr, common::PATIENCE).await.expect("connect");
    stream.write_all(&encode(&[&["SET", "held", "1"], &["SET", "free1", "1"]])).await.expect("write");
    // Once the other slot's request ran, the session waits on the held reply, reading.
    until_set(&mut backend, "free1").await;
    let second = [encode(&[&["SET", "free2", "2"]]), b"*1\r\n$-1\r\n".to_vec()].concat();
    stream.write_all(&second).await.expect("write");
    // The request read along with the malformed bytes ran: they were read while held.
    until_set(&mut backend, "free2").await;
    front.proxy.router().fill(&[route(false)]).await.expect("unlock");
    let (replies, end) = read_to_end(&mut stream, common::PATIENCE).await;
    assert_eq!(shown(&replies), "+OK\r\n+OK\r\n+OK\r\n-ERR Protocol error: invalid bulk length\r\n");
    assert!(end.closed(), "{end:?}");
    assert_eq!(backend.call(&["GET", "held"]).await, common::bulk("1"));
}

/// Polls `key` on the server until it is set.
async fn until_set(backend: &mut common::Client, key: &str) {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while backend.call(&["GET", key]).await == Frame::NullBulk {
        assert!(tokio::time::Instant::now() < deadline, "{key} was never set");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// One request of a small alphabet (with transactions, subscribed mode and QUIT), as arguments.
fn request() -> impl Strategy<Value = Vec<String>> {
    let args = |parts: &[&str]| parts.iter().map(|part| part.to_string()).collect::<Vec<_>>();
    prop_oneof![
        4 => (0..3u8, 0..3u8).prop_map(|(key, value)| vec!["SET".into(), format!("k{key}"), format!("v{value}")]),
        3 => (0..3u8).prop_map(|key| vec!["GET".into(), format!("k{key}")]),
        3 => (0..2u8).prop_map(|key| vec!["INCR".into(), format!("n{key}")]),
        2 => (0..3u8).prop_map(|key| vec!["APPEND".into(), format!("k{key}"), "+".into()]),
        1 => Just(args(&["MGET", "k0", "k1", "n0"])),
        1 => Just(args(&["DEL", "k0", "n1"])),
        1 => Just(args(&["PING"])),
        1 => Just(args(&["MULTI"])),
        1 => Just(args(&["EXEC"])),
        1 => (0..2u8).prop_map(|channel| vec!["SUBSCRIBE".into(), format!("c{channel}")]),
        1 => Just(args(&["UNSUBSCRIBE"])),
        1 => Just(args(&["QUIT"])),
    ]
}

/// A request as multibulk or, if `inline`, as a typed line.
fn wire(args: &[String], inline: bool) -> Vec<u8> {
    if inline {
        format!("{}\r\n", args.join(" ")).into_bytes()
    } else {
        encode(&[&args.iter().map(String::as_str).collect::<Vec<_>>()])
    }
}

/// What follows the valid requests: malformed bytes of a known kind, arbitrary bytes, bytes
/// made of RESP's punctuation, or a valid request cut short.
fn tail() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<Vec<u8>> = malformed().into_iter().map(|(_, bytes)| bytes).collect();
    let punctuation: Vec<u8> = b"*$:+-\r\n0123456789'\" SETGETx".to_vec();
    prop_oneof![
        prop::sample::select(known),
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(prop::sample::select(punctuation), 0..32),
        (request(), any::<bool>(), any::<prop::sample::Index>()).prop_map(|(args, inline, cut)| {
            let bytes = wire(&args, inline);
            bytes[..cut.index(bytes.len())].to_vec()
        }),
    ]
}

/// For any bytes: the requests before the first malformed one (as the decoder sees them, with
/// the proxy's limits) are run and answered exactly as when sent alone on a fresh connection,
/// then comes the decoder's error (unless the client sent `QUIT` before it), and the proxy closes
/// the connection.
#[test]
fn any_bytes_get_the_replies_of_the_requests_before_the_first_malformed_one_then_the_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let env = TokioEnv::with_seed(23);
    let config = ProxyConfig::default();
    let limits = Limits {
        max_bulk_len: config.session_max_bulk_len,
        max_array_len: config.session_max_array_len,
        ..Limits::default()
    };
    let (ours, front) = runtime.block_on(async {
        let ours = start_server(&env).await;
        let front = start_proxy(&env, config, &ours.addr).await;
        (ours, front)
    });
    let cases = (
        prop::collection::vec((request(), any::<bool>()), 0..8),
        tail(),
        prop::collection::vec((request(), any::<bool>()), 0..2),
    );
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 256,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    });
    let result = runner.run(&cases, |(before, tail, after)| {
        let mut bytes: Vec<u8> = before.iter().flat_map(|(args, inline)| wire(args, *inline)).collect();
        bytes.extend_from_slice(&tail);
        bytes.extend(after.iter().flat_map(|(args, inline)| wire(args, *inline)));
        // The decoder's view: the requests before the first error, and the error.
        let mut decoder = RequestDecoder::new(limits);
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut alone = Vec::new();
        let error = loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(request)) => {
                    let quit = request.name().eq_ignore_ascii_case(b"QUIT");
                    alone.extend_from_slice(request.wire());
                    if quit {
                        // Nothing after QUIT is read.
                        break None;
                    }
                }
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        let (got, end, expected) = runtime.block_on(async {
            // Sent alone, on a fresh connection to a fresh server; the client then closes its
            // side, so the proxy ends the session once it has answered.
            let mut backend = common::Client::connect(&env, &ours.addr).await;
            assert_eq!(backend.call(&["FLUSHALL"]).await, ok());
            let (mut expected, alone_end) = exchange(&env, &front.addr, &alone, true).await;
            assert!(alone_end.closed(), "the valid requests alone: {alone_end:?}");
            if let Some(error) = &error {
                // An error reply has its line breaks made spaces, as Redis makes them.
                let mut reply = BytesMut::new();
                resp::encode::write_error(&mut reply, format!("ERR {error}").as_bytes());
                expected.extend_from_slice(&reply);
            }
            assert_eq!(backend.call(&["FLUSHALL"]).await, ok());
            // Without an error the proxy waits for the rest of the last request (or for QUIT's
            // close); closing our side ends it. With one, the proxy must close by itself.
            let (got, end) = exchange(&env, &front.addr, &bytes, error.is_none()).await;
            (got, end, expected)
        });
        prop_assert_eq!(shown(&got), shown(&expected), "bytes sent: {:?}", String::from_utf8_lossy(&bytes));
        prop_assert!(end.closed(), "the proxy left the connection open: {:?}", end);
        Ok(())
    });
    drop((front, ours));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
