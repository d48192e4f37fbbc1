//! The `codis-server` binary with the real Redis tools: `redis-cli`, `redis-benchmark`, and
//! SIGTERM from a service manager.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long a test waits for a line of the log.
const LOG_PATIENCE: Duration = Duration::from_secs(30);

/// A running `codis-server`, killed on drop if still running.
struct Running {
    child: Child,
    port: u16,
    /// The log's lines, read by a thread of their own (so a wait for one can time out).
    log: Receiver<String>,
}

impl Running {
    /// Reads the log until a line containing `needle`; panics if the log ends first or nothing
    /// matches within [`LOG_PATIENCE`].
    fn wait_for_log(&mut self, needle: &str) -> String {
        loop {
            match self.log.recv_timeout(LOG_PATIENCE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no line with {needle:?} in the log within {LOG_PATIENCE:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the log ended before a line with {needle:?}"),
            }
        }
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits (up to 10 s) for the process to exit.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        (0..500).find_map(|_| {
            let status = self.child.try_wait().expect("wait");
            if status.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            status
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on an ephemeral port and reads the port from its log.
fn start(extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_codis-server"))
        .args(["--port", "0", "--log-level", "info"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start codis-server");
    let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let (lines, log) = std::sync::mpsc::channel();
    #[allow(clippy::disallowed_methods)] // a test driving a real process: a thread drains its log
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = Running { child, port: 0, log };
    let line = running.wait_for_log("addr=");
    let address = line.split("addr=").nth(1).expect("an address");
    running.port = address.trim().rsplit(':').next().and_then(|port| port.parse().ok()).expect("a port");
    running
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (`just test` installs redis-tools)");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim_end().to_string()
}

#[test]
fn redis_cli_works_against_it() {
    let server = start(&[]);
    assert_eq!(redis_cli(server.port, &["PING"]), "PONG");
    assert_eq!(redis_cli(server.port, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(redis_cli(server.port, &["GET", "greeting"]), "hello world");
    assert_eq!(redis_cli(server.port, &["SLOTSHASHKEY", "greeting"]), format!("{}", model_slot(b"greeting")));
    assert_eq!(redis_cli(server.port, &["--scan"]), "greeting");
    assert!(redis_cli(server.port, &["INFO", "server"]).contains("redis_version:7.0.15"));
    assert_eq!(redis_cli(server.port, &["NOSUCH"]), "ERR unknown command 'NOSUCH', with args beginning with:");
}

fn model_slot(key: &[u8]) -> u32 {
    // crc32(key) % 1024, computed independently of the server.
    let mut crc = !0u32;
    for byte in key {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc % 1024
}

#[test]
fn redis_benchmark_completes_every_test() {
    let server = start(&[]);
    // redis-benchmark's whole default set (what `redis-benchmark` runs without `-t`).
    let tests = "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset";
    let output = Command::new("redis-benchmark")
        .args(["-p", &server.port.to_string(), "-q", "-n", "10000", "-t", tests])
        .output()
        .expect("redis-benchmark must be installed (`just test` installs redis-tools)");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LPUSH (needed to benchmark LRANGE)",
        "LRANGE_100 (first 100 elements)",
        "LRANGE_300 (first 300 elements)",
        "LRANGE_500 (first 500 elements)",
        "LRANGE_600 (first 600 elements)",
        "MSET (10 keys)",
    ] {
        assert!(
            stdout.lines().any(|line| line.contains(&format!("{name}: ")) && line.contains("requests per second")),
            "{name} did not complete:\n{stdout}"
        );
    }
    assert!(!stdout.contains("ERR"), "{stdout}");
}

#[test]
fn memory_limits_from_the_command_line() {
    let server = start(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    assert_eq!(redis_cli(server.port, &["CONFIG", "GET", "maxmemory"]), "maxmemory\n2097152");
    // Fill well past the limit: the server evicts and stays under it.
    let status = Command::new("redis-benchmark")
        .args(["-p", &server.port.to_string(), "-q", "-n", "30000", "-r", "1000000", "-d", "100", "-t", "set"])
        .output()
        .expect("redis-benchmark must be installed (`just test` installs redis-tools)");
    assert!(status.status.success());
    let info = redis_cli(server.port, &["INFO", "memory"]);
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("INFO memory has used_memory");
    assert!(used <= 2 * 1024 * 1024, "used_memory {used} is over maxmemory");
    let stats = redis_cli(server.port, &["INFO", "stats"]);
    assert!(!stats.contains("evicted_keys:0"), "{stats}");
}

#[test]
fn sigterm_shuts_it_down_cleanly() {
    let mut server = start(&[]);
    assert_eq!(redis_cli(server.port, &["PING"]), "PONG");
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("codis-server did not exit after SIGTERM");
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_codis-server"))
        .args(["--port", "0", "--databases", "0"])
        .output()
        .expect("run codis-server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("databases") && stderr.contains("between 1 and"), "{stderr}");
}

/// One field of `INFO replication`.
fn replication_field(port: u16, field: &str) -> String {
    let info = redis_cli(port, &["INFO", "replication"]);
    info.lines().find_map(|line| line.strip_prefix(&format!("{field}:"))).unwrap_or_default().trim().to_string()
}

/// The issue's reproduction, with the release binaries: writes through Codis' wrapper (as a
/// proxy sends them to a migrating slot) are applied once on the master, once on its replica,
/// and once by a restart from the master's own append-only log after `kill -9`.
#[test]
fn a_wrapped_write_is_applied_once_on_the_replica_and_from_the_log() {
    let dir = std::env::temp_dir().join(format!("codis-wrapper-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let dir_arg = dir.to_string_lossy().into_owned();
    let log = ["--dir", &dir_arg, "--appendonly", "yes", "--appendfsync", "always"];
    let mut master = start(&log);
    let replica = start(&[]);
    assert_eq!(redis_cli(replica.port, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "OK");
    for command in [
        &["RPUSH", "k", "a"][..],
        &["SLOTSMGRT-EXEC-WRAPPER", "k", "RPUSH", "k", "x"],
        &["SET", "n", "10"],
        &["SLOTSMGRT-EXEC-WRAPPER", "n", "INCR", "n"],
    ] {
        redis_cli(master.port, command);
    }
    let holds = |port: u16| (redis_cli(port, &["LRANGE", "k", "0", "-1"]), redis_cli(port, &["GET", "n"]));
    let expected = ("a\nx".to_string(), "11".to_string());
    assert_eq!(holds(master.port), expected, "the master");
    let mut caught_up = false;
    for _ in 0..500 {
        let sent = replication_field(master.port, "master_repl_offset");
        if replication_field(replica.port, "master_link_status") == "up"
            && replication_field(replica.port, "slave_repl_offset") == sent
        {
            caught_up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(caught_up, "the replica never caught up");
    assert_eq!(holds(replica.port), expected, "the replica");
    master.child.kill().expect("kill -9");
    master.child.wait().expect("reaped");
    let restarted = start(&log);
    assert_eq!(holds(restarted.port), expected, "a restart from the log");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM with save rules writes the snapshot first (the init system's stop must not lose the
/// writes since the last one), syncs the log, and gives replicas the last writes.
#[test]
fn sigterm_saves_the_data_first() {
    let dir = std::env::temp_dir().join(format!("codis-sigterm-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let dir_arg = dir.to_string_lossy().into_owned();
    let saving = ["--dir", &dir_arg, "--save", "3600 1"];
    let mut master = start(&saving);
    let replica = start(&[]);
    assert_eq!(redis_cli(replica.port, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "OK");
    for _ in 0..500 {
        if replication_field(replica.port, "master_link_status") == "up" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(redis_cli(master.port, &["SET", "a", "1"]), "OK");
    assert_eq!(redis_cli(master.port, &["RPUSH", "l", "x", "y"]), "2");
    assert!(!dir.join("dump.rdb").exists(), "no snapshot before the signal (the rule says after an hour)");
    master.terminate();
    let exited = master.exited();
    assert!(exited.is_some_and(|status| status.success()), "codis-server did not exit cleanly: {exited:?}");
    assert!(dir.join("dump.rdb").exists(), "SIGTERM with save rules writes dump.rdb");
    assert_eq!(redis_cli(replica.port, &["GET", "a"]), "1", "the replica has the last writes");
    assert_eq!(redis_cli(replica.port, &["LRANGE", "l", "0", "-1"]), "x\ny");
    let restarted = start(&saving);
    assert_eq!(redis_cli(restarted.port, &["GET", "a"]), "1", "a restart loads the snapshot");
    assert_eq!(redis_cli(restarted.port, &["LRANGE", "l", "0", "-1"]), "x\ny");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A snapshot that cannot be written keeps the server running (Redis: "can't exit"), so the data
/// is not lost; the next SIGTERM tries again, as Redis does.
#[test]
fn sigterm_refuses_to_exit_when_the_snapshot_fails() {
    let dir = std::env::temp_dir().join(format!("codis-sigterm-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let dir_arg = dir.to_string_lossy().into_owned();
    let saving = ["--dir", &dir_arg, "--save", "3600 1"];
    let mut server = start(&saving);
    assert_eq!(redis_cli(server.port, &["SET", "a", "1"]), "OK");
    // The snapshot's temporary file cannot be created: a directory is in its way.
    let obstacle = dir.join("dump.rdb.tmp");
    std::fs::create_dir_all(&obstacle).expect("an obstacle");
    for _ in 0..2 {
        server.terminate();
        server.wait_for_log("can't exit");
        assert!(server.child.try_wait().expect("wait").is_none(), "codis-server exited without its snapshot");
        assert_eq!(redis_cli(server.port, &["GET", "a"]), "1", "still serving, and still holding the data");
    }
    std::fs::remove_dir(&obstacle).expect("the obstacle goes");
    server.terminate();
    server.wait_for_log("DB saved on disk");
    assert!(server.exited().is_some_and(|status| status.success()), "the next SIGTERM stops it");
    let restarted = start(&saving);
    assert_eq!(redis_cli(restarted.port, &["GET", "a"]), "1", "a restart loads the snapshot");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}
