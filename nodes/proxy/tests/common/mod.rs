//! What the proxy's loopback tests share: our server and a real `redis-server` on free ports,
//! a proxy in front of one server, and raw byte exchanges that report how the peer closed.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::time::Duration;

use model::{Slot, SlotId};
use net::{Env, TokioEnv};
use proxy::{Proxy, ProxyConfig};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

pub type Stream = <TokioEnv as Env>::Stream;

/// How long a test waits for a peer before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Our server on a free port, stopped when `stop` is dropped or sent.
pub struct OurServer {
    pub addr: String,
    pub stop: oneshot::Sender<()>,
}

pub async fn start_server(env: &TokioEnv) -> OurServer {
    let config = ServerConfig { bind: "127.0.0.1".into(), port: 0, ..ServerConfig::default() };
    let (bound, address) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::bind_and_run(
        env.clone(),
        config,
        bound,
        futures_util::stream::once(async {
            let _ = stopped.await;
        }),
    ));
    OurServer { addr: address.await.expect("bound").to_string(), stop }
}

/// A `redis-server` 7.0 process on a port checked to be its own, killed on drop.
pub struct Redis {
    _process: test_support::Process,
    pub addr: String,
    dir: std::path::PathBuf,
}

impl Redis {
    /// Starts one with `options` besides its port and directory, and waits until it answers.
    pub fn start(name: &str, options: &[&str]) -> Redis {
        let dir = std::env::temp_dir().join(format!("codis-proxy-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let dir_arg = dir.to_string_lossy().into_owned();
        let args: Vec<&str> =
            ["--appendonly", "no", "--dir", &dir_arg].into_iter().chain(options.iter().copied()).collect();
        let process = test_support::redis_server(&args);
        let addr = format!("127.0.0.1:{}", process.port);
        Redis { _process: process, addr, dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running proxy, stopped when dropped.
pub struct Front {
    pub proxy: Arc<Proxy<TokioEnv>>,
    pub addr: String,
    _stop: oneshot::Sender<()>,
}

/// Every slot on `backend`.
pub fn all_slots(backend: &str) -> Vec<Slot> {
    (0..1024u32)
        .map(|id| Slot { id: SlotId::new(id).expect("slot"), backend_addr: backend.to_string(), ..Slot::default() })
        .collect()
}

/// A running proxy with every slot on `backend`.
pub async fn start_proxy(env: &TokioEnv, config: ProxyConfig, backend: &str) -> Front {
    start_proxy_with(env, config, &all_slots(backend)).await
}

/// A running proxy, started with `slots` filled in.
pub async fn start_proxy_with(env: &TokioEnv, config: ProxyConfig, slots: &[Slot]) -> Front {
    let proxy = Arc::new(Proxy::new(env.clone(), config));
    proxy.router().fill(slots).await.expect("fill");
    proxy.start();
    run_proxy(env, proxy).await
}

/// Serves clients with `proxy` (started or not) on a free port.
pub async fn run_proxy(env: &TokioEnv, proxy: Arc<Proxy<TokioEnv>>) -> Front {
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = proxy.clone();
    let proxy_env = env.clone();
    tokio::spawn(async move {
        let _ = running
            .run(proxy_env, listener, "test", async {
                let _ = stopped.await;
            })
            .await;
    });
    Front { proxy, addr, _stop: stop }
}

/// A RESP client.
pub struct Client {
    pub connection: Connection<Stream>,
}

impl Client {
    pub async fn connect(env: &TokioEnv, addr: &str) -> Client {
        let stream = env.connect(addr, Duration::from_secs(5)).await.expect("connect");
        Client { connection: Connection::new(stream, Limits { max_bulk_len: usize::MAX / 2, ..Limits::default() }) }
    }

    pub async fn send(&mut self, args: &[&str]) {
        self.connection.write_request(&Request::from_args(args.iter().map(|arg| arg.as_bytes())));
        self.connection.flush().await.expect("send");
    }

    pub async fn receive(&mut self) -> Frame {
        tokio::time::timeout(PATIENCE, self.connection.read_frame())
            .await
            .expect("a reply in time")
            .expect("read")
            .expect("open")
    }

    pub async fn call(&mut self, args: &[&str]) -> Frame {
        self.send(args).await;
        self.receive().await
    }
}

pub fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.to_string().into())
}

pub fn ok() -> Frame {
    Frame::Simple("OK".into())
}

/// How a peer ended an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It closed the connection (FIN).
    Closed,
    /// It reset the connection (closing with our bytes unread does that).
    Reset,
    /// It was still connected at the deadline.
    StillOpen,
}

impl End {
    /// Whether the peer closed the connection one way or the other.
    pub fn closed(self) -> bool {
        self != End::StillOpen
    }
}

/// Reads everything `stream` delivers until the peer closes it or `patience` runs out.
pub async fn read_to_end(stream: &mut Stream, patience: Duration) -> (Vec<u8>, End) {
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return (out, End::Closed),
            Ok(Ok(read)) => out.extend_from_slice(&chunk[..read]),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => return (out, End::Reset),
            Ok(Err(error)) => panic!("read: {error}"),
            Err(_) => return (out, End::StillOpen),
        }
    }
}

/// Sends `bytes` in one write on a new connection to `addr` (then shuts down the sending side
/// if `then_close`), and returns everything the peer sends back until it closes.
pub async fn exchange(env: &TokioEnv, addr: &str, bytes: &[u8], then_close: bool) -> (Vec<u8>, End) {
    let mut stream = env.connect(addr, Duration::from_secs(5)).await.expect("connect");
    // A peer that stops reading at a protocol error may reset the connection while the rest of
    // a big write is still going out: that is fine, what it answered is read below.
    let _ = stream.write_all(bytes).await;
    if then_close {
        let _ = stream.shutdown().await;
    }
    read_to_end(&mut stream, PATIENCE).await
}

/// The requests' multibulk encoding, concatenated.
pub fn encode(requests: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for args in requests {
        out.extend_from_slice(Request::from_args(args.iter().map(|arg| arg.as_bytes())).wire());
    }
    out
}

/// Bytes as text for an assertion message.
pub fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]).into_owned();
    if bytes.len() > 600 { format!("{text}… ({} bytes)", bytes.len()) } else { text }
}
