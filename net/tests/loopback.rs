//! The production backend on real loopback sockets: bind, accept, connect with a deadline, split,
//! and the clock and random streams a component sees. The socket code is written against the
//! traits, exactly as a component would be.

use std::time::Duration;

use net::rand::RngCore;
use net::{Env, Listener, Stream, TokioEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts one connection and echoes five bytes back, through the `Env` traits only.
async fn echo_five_bytes<E: Env>(listener: E::Listener) {
    let (stream, _peer) = listener.accept().await.expect("accept");
    let (mut read, mut write) = stream.into_split();
    let mut buf = [0u8; 5];
    read.read_exact(&mut buf).await.expect("read");
    write.write_all(&buf).await.expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_real_loopback() {
    let env = TokioEnv::with_seed(1);
    let listener = env.bind("127.0.0.1:0").await.unwrap();
    let addr = Listener::local_addr(&listener).unwrap().to_string();
    let server = env.spawn(echo_five_bytes::<TokioEnv>(listener));

    let mut client = env.connect(&addr, Duration::from_secs(5)).await.unwrap();
    assert_eq!(Stream::peer_addr(&client).unwrap().to_string(), addr);
    client.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"hello");
    server.await.unwrap();
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_fast() {
    let env = TokioEnv::with_seed(1);
    // Bind then drop to find a port nobody listens on.
    let port = {
        let listener = env.bind("127.0.0.1:0").await.unwrap();
        Listener::local_addr(&listener).unwrap().port()
    };
    let error = env.connect(&format!("127.0.0.1:{port}"), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn wall_clock_is_plausible_and_streams_are_seeded() {
    let env = TokioEnv::with_seed(42);
    // 2024-01-01 .. 2200-01-01: the real clock, in milliseconds.
    let now = env.unix_millis();
    assert!((1_704_067_200_000..7_258_118_400_000).contains(&now), "{now}");

    let again = TokioEnv::with_seed(42);
    assert_eq!(env.rng("x").next_u64(), again.rng("x").next_u64());
    assert_ne!(env.rng("x").next_u64(), env.rng("y").next_u64());
    assert!(!env.buggify("anything"), "the fault hook never fires in production");

    let os_seeded = TokioEnv::new().unwrap();
    let other = TokioEnv::new().unwrap();
    assert_ne!(os_seeded.seed(), other.seed());
}
