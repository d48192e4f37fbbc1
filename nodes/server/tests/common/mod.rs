//! What the tests against a real `redis-server` share: starting one, starting ours on a
//! socket, and calling either.

#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;

/// A `redis-server` with its files in `dir`, on a port checked to be its own.
pub struct Redis {
    pub process: test_support::Process,
    pub connection: Connection<<TokioEnv as Env>::Stream>,
    /// Its port.
    pub port: u16,
}

impl Redis {
    pub async fn start(env: &TokioEnv, dir: &std::path::Path) -> Redis {
        Redis::start_with(env, dir, &["--appendonly", "no"]).await
    }

    /// A `redis-server` with `options` besides the port and `dir`.
    pub async fn start_with(env: &TokioEnv, dir: &std::path::Path, options: &[&str]) -> Redis {
        let dir = dir.to_string_lossy();
        let args: Vec<&str> = options.iter().copied().chain(["--dir", &dir, "--dbfilename", "dump.rdb"]).collect();
        let process = test_support::redis_server(&args);
        let port = process.port;
        let connection = connect(env, &format!("127.0.0.1:{port}")).await;
        Redis { process, connection, port }
    }

    pub async fn call(&mut self, args: &[&str]) -> Frame {
        call(&mut self.connection, args).await
    }
}

pub type Link = Connection<<TokioEnv as Env>::Stream>;

/// Connects to `addr` once it accepts and has loaded its data (`PING` answers `LOADING` before).
pub async fn connect(env: &TokioEnv, addr: &str) -> Link {
    for _ in 0..200 {
        if let Ok(stream) = env.connect(addr, Duration::from_secs(1)).await {
            let mut connection = Connection::new(stream, Limits::default());
            for _ in 0..200 {
                match call(&mut connection, &["PING"]).await {
                    Frame::Simple(pong) if pong == "PONG" => return connection,
                    // Up, with a password to give.
                    Frame::Error(error) if error.starts_with(b"NOAUTH") => return connection,
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{addr} kept loading");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{addr} did not start");
}

/// Connects to `addr` as a replica would, takes the full copy and returns the link, positioned at
/// the stream that follows, with the replication offset the copy was taken at.
pub async fn attach_replica(env: &TokioEnv, addr: &str) -> (Link, u64) {
    let stream = env.connect(addr, Duration::from_secs(5)).await.expect("connect as a replica");
    let mut link = Connection::new(stream, Limits { max_array_len: usize::MAX, ..Limits::default() });
    for args in [&["PING"][..], &["REPLCONF", "listening-port", "1"], &["REPLCONF", "capa", "psync2"]] {
        link.write_request(&Request::from_args(args));
        link.flush().await.expect("handshake");
        let line = link.read_line(1024).await.expect("handshake reply");
        assert!(line.starts_with(b"+"), "{args:?}: {}", String::from_utf8_lossy(&line));
    }
    link.write_request(&Request::from_args(["PSYNC", "?", "-1"]));
    link.flush().await.expect("PSYNC");
    let answer = String::from_utf8_lossy(&link.read_line(1024).await.expect("PSYNC reply")).into_owned();
    let start = answer
        .strip_prefix("+FULLRESYNC ")
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|offset| offset.parse().ok())
        .unwrap_or_else(|| panic!("PSYNC answered {answer:?}"));
    // Bare newlines keep the link alive while the copy is made.
    let header = loop {
        let line = link.read_line(1024).await.expect("the copy's length");
        if !line.is_empty() {
            break String::from_utf8_lossy(&line).into_owned();
        }
    };
    let len: usize = header.strip_prefix('$').and_then(|len| len.parse().ok()).expect("the copy's length");
    link.read_exact(len).await.expect("the copy");
    (link, start)
}

pub async fn call(connection: &mut Link, args: &[&str]) -> Frame {
    connection.write_request(&Request::from_args(args.iter().map(|arg| arg.as_bytes())));
    connection.flush().await.expect("send");
    connection.read_frame().await.expect("read").expect("open")
}

/// Our server on a socket (the append-only log needs its writer task).
pub struct Served {
    pub addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    connection: Link,
}

impl Served {
    pub async fn start(env: &TokioEnv, config: ServerConfig) -> Served {
        let (bound, address) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::bind_and_run(
            env.clone(),
            config,
            bound,
            futures_util::stream::once(async {
                let _ = stopped.await;
            }),
        ));
        let addr = address.await.expect("bound").to_string();
        Served { stop, task, connection: connect(env, &addr).await, addr }
    }

    pub async fn call(&mut self, args: &[&str]) -> Frame {
        call(&mut self.connection, args).await
    }

    /// Stops the server as SIGTERM would (the log is synced first).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the server task").expect("the server ran");
    }
}

/// A fresh temporary directory for test `name`.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("codis-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
