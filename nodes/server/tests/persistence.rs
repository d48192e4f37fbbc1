//! Snapshots on a real disk: `SAVE`, `BGSAVE`, `LASTSAVE`, the `save` rules and `SHUTDOWN`
//! write `dump.rdb` (which `redis-check-rdb` accepts), a restarted server loads it, and a
//! damaged one stops the server from starting with a clear message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;
use server::config::SaveRules;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

fn config(dir: &Path, save: &str) -> ServerConfig {
    ServerConfig {
        bind: "127.0.0.1".into(),
        port: 0,
        dir: dir.to_string_lossy().into_owned(),
        save: SaveRules::try_from(save.to_string()).expect("rules"),
        ..ServerConfig::default()
    }
}

async fn start(env: &TokioEnv, config: ServerConfig) -> Running {
    let (bound, address) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::bind_and_run(env.clone(), config, bound, async {
        let _ = stopped.await;
    }));
    let addr = address.await.expect("bound").to_string();
    Running { addr, stop: Some(stop), task }
}

struct Client(Connection<<TokioEnv as Env>::Stream>);

impl Client {
    async fn connect(env: &TokioEnv, addr: &str) -> Client {
        // The server accepts once it has loaded its snapshot.
        for _ in 0..500 {
            if let Ok(stream) = env.connect(addr, Duration::from_secs(1)).await {
                return Client(Connection::new(stream, Limits::default()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("cannot connect to {addr}");
    }

    async fn call(&mut self, args: &[&str]) -> Frame {
        self.0.write_request(&Request::from_args(args.iter().map(|arg| arg.as_bytes())));
        self.0.flush().await.expect("send");
        tokio::time::timeout(Duration::from_secs(10), self.0.read_frame())
            .await
            .expect("a reply in time")
            .expect("read")
            .expect("open")
    }

    /// One field of `INFO persistence`.
    async fn persistence(&mut self, field: &str) -> String {
        let Frame::Bulk(text) = self.call(&["INFO", "persistence"]).await else { panic!("INFO") };
        let text = String::from_utf8_lossy(&text).into_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    }

    /// Waits until `INFO persistence`'s `field` reads `value`.
    async fn wait_for(&mut self, field: &str, value: &str) {
        for _ in 0..500 {
            if self.persistence(field).await == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{field} never became {value}");
    }
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.to_string().into())
}

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codis-persistence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_writes_a_snapshot_that_a_restarted_server_loads() {
    let env = TokioEnv::with_seed(1);
    let dir = temp_dir("save");
    let server = start(&env, config(&dir, "")).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["SET", "a", "1"]).await, ok());
    assert_eq!(client.call(&["HSET", "h", "f", "v"]).await, Frame::Integer(1));
    assert_eq!(client.call(&["SET", "t", "x", "PX", "600000"]).await, ok());
    assert_eq!(client.call(&["SELECT", "2"]).await, ok());
    assert_eq!(client.call(&["SET", "in-two", "yes"]).await, ok());
    // Key mutations counted (a SET with PX counts its value and its expiry).
    let changes: u64 = client.persistence("rdb_changes_since_last_save").await.parse().expect("a count");
    assert!((4..=8).contains(&changes), "{changes}");
    assert_eq!(client.call(&["SAVE"]).await, ok());
    assert_eq!(client.persistence("rdb_changes_since_last_save").await, "0");
    assert_eq!(client.persistence("rdb_saves").await, "1");
    let Frame::Integer(saved_at) = client.call(&["LASTSAVE"]).await else { panic!("LASTSAVE") };
    assert!(saved_at > 1_700_000_000, "{saved_at}");
    let check = Command::new("redis-check-rdb").arg(dir.join("dump.rdb")).output().expect("redis-check-rdb");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    // Written after the snapshot: lost at the restart below (no append-only log yet).
    assert_eq!(client.call(&["SET", "after", "lost"]).await, ok());
    server.stop().await;

    let server = start(&env, config(&dir, "")).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["GET", "a"]).await, bulk("1"));
    assert_eq!(client.call(&["HGET", "h", "f"]).await, bulk("v"));
    let Frame::Integer(left) = client.call(&["PTTL", "t"]).await else { panic!("PTTL") };
    assert!((590_000..=600_000).contains(&left), "{left}");
    assert_eq!(client.call(&["GET", "after"]).await, Frame::NullBulk);
    assert_eq!(client.call(&["SELECT", "2"]).await, ok());
    assert_eq!(client.call(&["GET", "in-two"]).await, bulk("yes"));
    // BGSAVE answers at once; the snapshot follows.
    assert_eq!(client.call(&["SET", "b", "2"]).await, ok());
    assert_eq!(client.call(&["BGSAVE"]).await, Frame::Simple("Background saving started".into()));
    client.wait_for("rdb_saves", "1").await;
    assert_eq!(client.persistence("rdb_last_bgsave_status").await, "ok");
    server.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_save_rules_and_shutdown_take_snapshots() {
    let env = TokioEnv::with_seed(2);
    let dir = temp_dir("rules");
    let server = start(&env, config(&dir, "")).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["CONFIG", "SET", "save", "1 2"]).await, ok());
    assert_eq!(client.call(&["CONFIG", "GET", "save"]).await, Frame::Array(vec![bulk("save"), bulk("1 2")]));
    assert_eq!(client.call(&["SET", "one", "1"]).await, ok());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(client.persistence("rdb_saves").await, "0", "one change is below the rule");
    assert_eq!(client.call(&["SET", "two", "2"]).await, ok());
    client.wait_for("rdb_saves", "1").await;
    // With rules in force, SHUTDOWN saves first.
    assert_eq!(client.call(&["SET", "three", "3"]).await, ok());
    client.0.write_request(&Request::from_args([&b"SHUTDOWN"[..]]));
    client.0.flush().await.expect("send");
    assert!(client.0.read_frame().await.map_or(true, |frame| frame.is_none()), "SHUTDOWN closes without a reply");
    let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await.expect("the server stops");

    let server = start(&env, config(&dir, "")).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(
        client.call(&["MGET", "one", "two", "three"]).await,
        Frame::Array(vec![bulk("1"), bulk("2"), bulk("3")])
    );
    server.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_stops_the_server_from_starting() {
    let env = TokioEnv::with_seed(3);
    let dir = temp_dir("damaged");
    std::fs::write(dir.join("dump.rdb"), b"REDIS0010\xfa\x09redis-ver").expect("write");
    let (bound, _address) = oneshot::channel();
    let result = server::bind_and_run(env.clone(), config(&dir, ""), bound, std::future::pending()).await;
    let error = result.expect_err("a damaged snapshot must not be ignored");
    assert!(error.to_string().contains("not a loadable snapshot"), "{error}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
