//! Snapshots on a real disk: `SAVE`, `BGSAVE`, `LASTSAVE`, the `save` rules and `SHUTDOWN`
//! write `dump.rdb` (which `redis-check-rdb` accepts), a restarted server loads it, and a
//! damaged one stops the server from starting with a clear message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;
use server::config::{FsyncPolicy, SaveRules};
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
    let task = tokio::spawn(server::bind_and_run(
        env.clone(),
        config,
        bound,
        futures_util::stream::once(async {
            let _ = stopped.await;
        }),
    ));
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
    let result = server::bind_and_run(env.clone(), config(&dir, ""), bound, futures_util::stream::pending()).await;
    let error = result.expect_err("a damaged snapshot must not be ignored");
    assert!(error.to_string().contains("not a loadable snapshot"), "{error}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// `config` with the append-only log on, synced as `fsync` says.
fn logging(dir: &Path, fsync: FsyncPolicy) -> ServerConfig {
    ServerConfig { appendonly: true, appendfsync: fsync, ..config(dir, "") }
}

/// The log's directory, and its files by name.
fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .expect("the log's directory")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_append_only_log_keeps_every_write_across_restarts_and_rewrites() {
    let env = TokioEnv::with_seed(4);
    let dir = temp_dir("aof");
    let server = start(&env, logging(&dir, FsyncPolicy::Always)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.persistence("aof_enabled").await, "1");
    assert_eq!(log_files(&dir), ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]);
    assert_eq!(client.call(&["SET", "a", "1"]).await, ok());
    assert_eq!(client.call(&["INCRBY", "a", "41"]).await, Frame::Integer(42));
    assert_eq!(client.call(&["SET", "t", "x", "EX", "600"]).await, ok());
    assert_eq!(client.call(&["SELECT", "5"]).await, ok());
    assert_eq!(client.call(&["RPUSH", "q", "1", "2", "3"]).await, Frame::Integer(3));
    assert_eq!(client.call(&["SWAPDB", "5", "6"]).await, ok());
    // A pop served to a blocked client is logged as the pop it was.
    let mut waiter = Client::connect(&env, &server.addr).await;
    waiter.0.write_request(&Request::from_args(["BLPOP", "jobs", "0"]));
    waiter.0.flush().await.expect("send");
    // Until it is blocked (otherwise the push below would not serve a blocked client).
    for tries in 0.. {
        let Frame::Bulk(info) = client.call(&["INFO", "clients"]).await else { panic!("INFO") };
        if String::from_utf8_lossy(&info).contains("blocked_clients:1") {
            break;
        }
        assert!(tries < 1_000, "BLPOP never blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(client.call(&["SELECT", "0"]).await, ok());
    assert_eq!(client.call(&["RPUSH", "jobs", "j1", "j2"]).await, Frame::Integer(2));
    let served = waiter.0.read_frame().await.expect("read").expect("open");
    assert_eq!(served, Frame::Array(vec![bulk("jobs"), bulk("j1")]));
    server.stop().await;

    let server = start(&env, logging(&dir, FsyncPolicy::Everysec)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["GET", "a"]).await, bulk("42"));
    let Frame::Integer(left) = client.call(&["TTL", "t"]).await else { panic!("TTL") };
    assert!((590..=600).contains(&left), "{left}");
    assert_eq!(client.call(&["SELECT", "6"]).await, ok());
    assert_eq!(
        client.call(&["LRANGE", "q", "0", "-1"]).await,
        Frame::Array(vec![bulk("1"), bulk("2"), bulk("3")]),
        "SWAPDB is replayed"
    );
    assert_eq!(client.call(&["SELECT", "0"]).await, ok());
    assert_eq!(client.call(&["LRANGE", "jobs", "0", "-1"]).await, Frame::Array(vec![bulk("j2")]));
    assert_eq!(client.call(&["SELECT", "5"]).await, ok());
    // A rewrite replaces base and increments with one snapshot while writes go on.
    for index in 0..200 {
        assert_eq!(client.call(&["INCR", "n"]).await, Frame::Integer(index + 1));
    }
    assert_eq!(
        client.call(&["BGREWRITEAOF"]).await,
        Frame::Simple("Background append only file rewriting started".into())
    );
    for index in 200..300 {
        assert_eq!(client.call(&["INCR", "n"]).await, Frame::Integer(index + 1));
    }
    client.wait_for("aof_rewrite_in_progress", "0").await;
    assert_eq!(client.persistence("aof_rewrites").await, "1");
    assert_eq!(client.persistence("aof_last_bgrewrite_status").await, "ok");
    assert_eq!(log_files(&dir), ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]);
    assert_eq!(client.call(&["INCR", "n"]).await, Frame::Integer(301));
    server.stop().await;

    let server = start(&env, logging(&dir, FsyncPolicy::No)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["MGET", "a", "n"]).await, Frame::Array(vec![bulk("42"), Frame::NullBulk]));
    assert_eq!(client.call(&["SELECT", "5"]).await, ok());
    assert_eq!(client.call(&["GET", "n"]).await, bulk("301"));
    server.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_is_truncated_and_a_damaged_one_refuses_to_start() {
    let env = TokioEnv::with_seed(5);
    let dir = temp_dir("aof-torn");
    let server = start(&env, logging(&dir, FsyncPolicy::Always)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["SET", "kept", "yes"]).await, ok());
    server.stop().await;
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let whole = std::fs::read(&incr).expect("the increment");
    // A crash mid-write: the last command cut short.
    let mut torn = whole.clone();
    torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$3\r\nye");
    std::fs::write(&incr, &torn).expect("tear");
    let strict = ServerConfig { aof_load_truncated: false, ..logging(&dir, FsyncPolicy::Always) };
    let (bound, _address) = oneshot::channel();
    let refused = server::bind_and_run(env.clone(), strict, bound, futures_util::stream::pending()).await;
    let error = refused.expect_err("aof-load-truncated no refuses a torn log");
    assert!(error.to_string().contains("ends in the middle of a command"), "{error}");
    let server = start(&env, logging(&dir, FsyncPolicy::Always)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["MGET", "kept", "lost"]).await, Frame::Array(vec![bulk("yes"), Frame::NullBulk]));
    server.stop().await;
    assert_eq!(std::fs::read(&incr).expect("the increment"), whole, "the torn command is cut off");
    // Damage before the end is not a crash's doing: the server refuses to guess.
    let mut damaged = b"*1\r\n$4\r\nPING\r\ngarbage\r\n".to_vec();
    damaged.extend_from_slice(&whole);
    std::fs::write(&incr, &damaged).expect("damage");
    let (bound, _address) = oneshot::channel();
    let refused =
        server::bind_and_run(env.clone(), logging(&dir, FsyncPolicy::Always), bound, futures_util::stream::pending())
            .await;
    let error = refused.expect_err("a damaged log must not be ignored");
    assert!(error.to_string().contains("appendonly.aof.1.incr.aof is damaged at byte 14"), "{error}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_log_on_keeps_the_snapshot_data() {
    let env = TokioEnv::with_seed(6);
    let dir = temp_dir("aof-on");
    let server = start(&env, config(&dir, "")).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["SET", "from", "snapshot"]).await, ok());
    assert_eq!(client.call(&["SAVE"]).await, ok());
    server.stop().await;
    // Redis 7 would start empty here (the log wins and does not exist yet); ours makes the
    // snapshot the log's first base.
    let server = start(&env, logging(&dir, FsyncPolicy::Everysec)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["GET", "from"]).await, bulk("snapshot"));
    assert_eq!(client.call(&["SET", "from", "log"]).await, ok());
    server.stop().await;
    let server = start(&env, logging(&dir, FsyncPolicy::Everysec)).await;
    let mut client = Client::connect(&env, &server.addr).await;
    assert_eq!(client.call(&["GET", "from"]).await, bulk("log"));
    server.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}
