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
        let task = tokio::spawn(server::bind_and_run(env.clone(), config, bound, async {
            let _ = stopped.await;
        }));
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
