//! Two of our servers in this process on loopback, and a small client for the tests.

use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;
use tokio::sync::oneshot;

type Stream = <TokioEnv as Env>::Stream;

/// A source and a target server, stopped on drop.
pub struct Cluster {
    env: TokioEnv,
    source: String,
    target: String,
    _stops: Vec<oneshot::Sender<()>>,
}

async fn start_server(env: &TokioEnv, mut config: ServerConfig) -> (String, oneshot::Sender<()>) {
    config.bind = "127.0.0.1".into();
    config.port = 0;
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
    (address.await.expect("the server binds").to_string(), stop)
}

impl Cluster {
    /// Both servers with `config`.
    pub async fn start(config: ServerConfig) -> Cluster {
        Cluster::start_pair(config.clone(), config).await
    }

    /// A source with `source` and a target with `target`.
    pub async fn start_pair(source: ServerConfig, target: ServerConfig) -> Cluster {
        let env = TokioEnv::with_seed(7);
        let (source, stop_source) = start_server(&env, source).await;
        let (target, stop_target) = start_server(&env, target).await;
        Cluster { env, source, target, _stops: vec![stop_source, stop_target] }
    }

    /// A new client of the source.
    pub async fn source(&self) -> Node {
        Node::connect(&self.env, &self.source).await
    }

    /// A new client of the target.
    pub async fn target(&self) -> Node {
        Node::connect(&self.env, &self.target).await
    }

    /// The target's port, as the migration commands take it.
    pub fn target_port(&self) -> String {
        self.target.rsplit_once(':').map(|(_, port)| port.to_string()).unwrap_or_default()
    }
}

/// A port nothing listens on.
pub async fn closed_port() -> String {
    let env = TokioEnv::with_seed(1);
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port().to_string()
}

/// A listener that accepts connections and never answers; keep the handle alive.
pub async fn silent_listener() -> (String, tokio::task::JoinHandle<()>) {
    let env = TokioEnv::with_seed(1);
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (port, task)
}

/// One client connection.
pub struct Node {
    connection: Connection<Stream>,
}

impl Node {
    async fn connect(env: &TokioEnv, addr: &str) -> Node {
        let stream = env.connect(addr, Duration::from_secs(5)).await.expect("connect");
        Node { connection: Connection::new(stream, Limits::default()) }
    }

    /// Sends a command without waiting for its reply.
    pub async fn send(&mut self, args: &[&str]) {
        let request = Request::from_args(args.iter().map(|arg| arg.as_bytes()));
        self.connection.write_request(&request);
        self.connection.flush().await.expect("send");
    }

    /// The next reply.
    pub async fn receive(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(20), self.connection.read_frame())
            .await
            .expect("a reply in time")
            .expect("read")
            .expect("the connection stays open")
    }

    /// Sends a command and returns its reply.
    pub async fn call(&mut self, args: &[&str]) -> Frame {
        self.send(args).await;
        self.receive().await
    }

    /// Sends a command with binary arguments and returns its reply.
    pub async fn call_bytes(&mut self, args: &[&[u8]]) -> Frame {
        let request = Request::from_args(args.iter().copied());
        self.connection.write_request(&request);
        self.connection.flush().await.expect("send");
        self.receive().await
    }

    /// Sends a command that must answer `+OK`.
    pub async fn ok(&mut self, args: &[&str]) {
        assert_eq!(self.call(args).await, Frame::Simple("OK".into()), "{args:?}");
    }

    /// Whether the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.connection.read_frame()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}

/// A bulk string reply.
pub fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.to_string().into())
}

/// An integer reply.
pub fn int(value: i64) -> Frame {
    Frame::Integer(value)
}

/// Whether a reply is nil.
pub fn is_null(frame: &Frame) -> bool {
    matches!(frame, Frame::Null | Frame::NullBulk | Frame::NullArray)
}

/// Every key's type and contents in a comparable form (collections sorted).
pub async fn snapshot(node: &mut Node, keys: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for key in keys {
        let Frame::Simple(kind) = node.call(&["TYPE", key]).await else { panic!("TYPE") };
        let kind = String::from_utf8_lossy(&kind).into_owned();
        let reply = match kind.as_str() {
            "string" => node.call(&["GET", key]).await,
            "list" => node.call(&["LRANGE", key, "0", "-1"]).await,
            "hash" => node.call(&["HGETALL", key]).await,
            "set" => node.call(&["SMEMBERS", key]).await,
            "zset" => node.call(&["ZRANGE", key, "0", "-1", "WITHSCORES"]).await,
            _ => Frame::Null,
        };
        let mut items: Vec<String> = match reply {
            Frame::Array(items) => items.iter().map(|item| format!("{item:?}")).collect(),
            other => vec![format!("{other:?}")],
        };
        if kind == "hash" {
            let mut pairs: Vec<String> = items.chunks(2).map(|pair| pair.join("=")).collect();
            pairs.sort();
            items = pairs;
        } else if kind == "set" {
            items.sort();
        }
        out.push((format!("{key}:{kind}"), items));
    }
    out
}
