//! Failover with real processes: `codis demo` runs under `redis-benchmark`, the master of group
//! 1 is killed (`SIGKILL`), the dashboard promotes its replica by itself, and the benchmark
//! goes on against the promoted replica. The killed server, started again, rejoins as a
//! replica; `codis-admin --promote-server` then makes it master again by hand.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::TokioEnv;
use resp::Frame;
use resp::client::Client;
use serde_json::Value;
use tokio::time::Instant;

use common::{Demo, Running, admin};

/// One `redis-benchmark` run: when it started and whether it saw no error.
struct BenchRun {
    started: Instant,
    clean: bool,
}

/// Group 1's servers as the dashboard has them (master first) and its epoch.
fn group_one(dashboard: &str) -> (Vec<String>, u64, bool) {
    let stats: Value = serde_json::from_str(&admin(dashboard, &["--json"])).expect("stats JSON");
    let group = stats["group"]["models"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|group| group["id"] == 1)
        .cloned()
        .expect("group 1");
    let servers = group["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| server["server"].as_str().expect("addr").to_string())
        .collect();
    let promoting = group["promoting"]["state"].as_str().is_some_and(|state| !state.is_empty());
    (servers, group["epoch"].as_u64().unwrap_or(0), promoting)
}

/// One field of `INFO replication` (or `server`) of `addr`.
async fn info(env: &TokioEnv, addr: &str, section: &str, field: &str) -> Option<String> {
    let reply = Client::new(env.clone(), addr).call(&["INFO", section]).await.ok()?;
    let Frame::Bulk(text) = reply else { return None };
    String::from_utf8_lossy(&text).lines().find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_failed_over_and_redis_benchmark_goes_on() {
    let env = TokioEnv::new().expect("env");
    let demo = Demo::start("codis-failover-test");
    let mut client =
        Client::new(env.clone(), &demo.proxy).with_timeouts(Duration::from_secs(2), Duration::from_secs(10));
    for key in 0..2000 {
        let reply = client.call(&["SET", &format!("before:{key}"), &format!("value-{key}")]).await.expect("SET");
        assert_eq!(reply, Frame::ok());
    }
    let (servers, epoch, _) = group_one(&demo.dashboard);
    assert_eq!(epoch, 0);
    let (master, replica) = (servers[0].clone(), servers[1].clone());
    // The replica has everything (written long before the kill).
    for _ in 0..100 {
        let sent = info(&env, &master, "replication", "master_repl_offset").await;
        if sent.is_some() && sent == info(&env, &replica, "replication", "slave_repl_offset").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = info(&env, &master, "server", "process_id").await.expect("the master's pid");
    // How the demo started it, to start it again the same way after the kill.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the master's command line");
    let started_as: Vec<String> = cmdline
        .split(|byte| *byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();

    // redis-benchmark loops through the proxy; a run that meets the outage stops at its first
    // error (redis-benchmark 7 exits then), and the next run starts.
    let running = Arc::new(AtomicBool::new(true));
    let runs: Arc<Mutex<Vec<BenchRun>>> = Arc::new(Mutex::new(Vec::new()));
    let benchmark = {
        let (running, runs, port) = (running.clone(), runs.clone(), demo.proxy_port.to_string());
        #[allow(clippy::disallowed_methods)] // a test driving real processes: a thread waits on them
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                let output = Command::new("redis-benchmark")
                    .args(["-p", &port, "-t", "set,get,incr", "-n", "20000", "-r", "10000", "-c", "10", "-P", "4"])
                    .output()
                    .expect("redis-benchmark must be installed (`just deps` installs redis-tools)");
                let text =
                    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
                let clean = output.status.success() && !text.to_lowercase().contains("error");
                runs.lock().expect("runs").push(BenchRun { started, clean });
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    let status = Command::new("kill").args(["-KILL", &pid]).status().expect("kill");
    assert!(status.success());

    // The dashboard (failover_down_after 5 s, the proxy agreeing) promotes the replica.
    let failed_over = loop {
        let (servers, epoch, promoting) = group_one(&demo.dashboard);
        if servers[0] == replica && epoch == 1 && !promoting {
            break Instant::now();
        }
        assert!(killed.elapsed() < Duration::from_secs(60), "no failover 60 s after the kill: {servers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("failed over {} ms after the kill", (failed_over - killed).as_millis());
    assert_eq!(info(&env, &replica, "replication", "role").await.as_deref(), Some("master"));
    // The benchmark goes on: a run started after the failover completes without an error.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let clean_after = runs.lock().expect("runs").iter().any(|run| run.started > failed_over && run.clean);
        if clean_after {
            break;
        }
        assert!(Instant::now() < deadline, "no clean redis-benchmark run after the failover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.store(false, Ordering::Relaxed);
    benchmark.join().expect("the benchmark thread");
    let clean_before = runs.lock().expect("runs").iter().any(|run| run.started < killed && run.clean);
    assert!(clean_before, "redis-benchmark ran cleanly before the kill");
    // Nothing written before the kill is lost.
    for key in 0..2000 {
        let reply = client.call(&["GET", &format!("before:{key}")]).await.expect("GET");
        assert_eq!(reply, Frame::bulk(format!("value-{key}")), "before:{key}");
    }

    // The killed server, started again on its data, rejoins as the new master's replica.
    let (binary, args) = started_as.split_first().expect("a command line");
    let restarted = Running(Command::new(binary).args(args).spawn().expect("restart"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let role = info(&env, &master, "replication", "role").await;
        let link = info(&env, &master, "replication", "master_link_status").await;
        let follows = info(&env, &master, "replication", "master_port").await;
        let epoch = info(&env, &master, "replication", "codis_epoch").await;
        if role.as_deref() == Some("slave")
            && link.as_deref() == Some("up")
            && follows.as_deref() == replica.rsplit_once(':').map(|(_, port)| port)
            && epoch.as_deref() == Some("1")
        {
            // Its port was free for a moment: make sure the restarted server holds it, not a
            // process another test started meanwhile.
            let port: u16 = master.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).expect("a port");
            assert_eq!(
                test_support::redis_process_id(port),
                Some(restarted.0.id()),
                "{master} is not the restarted server: another process took its port"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the old master did not rejoin: {role:?} {link:?} {follows:?} {epoch:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // By hand: promote it back.
    admin(&demo.dashboard, &["--promote-server", "--gid", "1", "--addr", &master]);
    let (servers, epoch, promoting) = group_one(&demo.dashboard);
    assert_eq!((servers[0].as_str(), epoch, promoting), (master.as_str(), 2, false));
    assert_eq!(info(&env, &master, "replication", "role").await.as_deref(), Some("master"));
    assert_eq!(client.call(&["SET", "after", "promotion"]).await.expect("SET"), Frame::ok());
    for key in (0..2000).step_by(97) {
        let reply = client.call(&["GET", &format!("before:{key}")]).await.expect("GET");
        assert_eq!(reply, Frame::bulk(format!("value-{key}")), "before:{key}");
    }
    let listing = admin(&demo.dashboard, &["--list-group"]);
    assert!(listing.contains("epoch 2"), "{listing}");
    // Automatic failover can be turned off per group (and on again).
    admin(&demo.dashboard, &["--group-failover", "--gid", "2", "--disable"]);
    let listing = admin(&demo.dashboard, &["--list-group"]);
    assert!(listing.lines().any(|line| line.starts_with("group 2:") && line.contains("failover off")), "{listing}");
    admin(&demo.dashboard, &["--group-failover", "--gid", "2", "--enable"]);
    assert!(!admin(&demo.dashboard, &["--list-group"]).contains("failover off"));
    drop(demo);
}
