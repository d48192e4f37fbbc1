//! `codis demo` end to end with real tools: the demo cluster comes up, `codis-admin` adds a third
//! group and rebalances while `redis-benchmark` hammers the proxy; the benchmark must see no
//! error, every key written before must read back, and every key must live in its slot's group
//! only.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use net::TokioEnv;
use resp::Frame;
use resp::client::Client;
use serde_json::Value;

use common::{Demo, admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_cluster_rebalances_under_redis_benchmark_without_an_error() {
    let env = TokioEnv::new().expect("env");
    let demo = Demo::start("codis-demo-test");
    let (dashboard, proxy, proxy_port, dir) =
        (demo.dashboard.clone(), demo.proxy.clone(), demo.proxy_port, demo.dir.clone());

    // Keys written before anything moves.
    let mut client = Client::new(env.clone(), &proxy).with_timeouts(Duration::from_secs(2), Duration::from_secs(10));
    for key in 0..2000 {
        let reply = client.call(&["SET", &format!("before:{key}"), &format!("value-{key}")]).await.expect("SET");
        assert_eq!(reply, Frame::ok());
    }

    // A third group on a fresh codis-server.
    let extra_dir = dir.join("extra");
    std::fs::create_dir_all(&extra_dir).expect("dir");
    let extra_server = test_support::start(
        "codis-server",
        |port| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_codis-server"));
            command
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--log-level", "warn", "--dir"])
                .arg(&extra_dir);
            command
        },
        test_support::redis_answer,
    );
    let extra = format!("127.0.0.1:{}", extra_server.port);
    admin(&dashboard, &["--create-group", "--gid", "3"]);
    admin(&dashboard, &["--group-add", "--gid", "3", "--addr", &extra]);

    // redis-benchmark through the proxy for as long as the rebalance runs.
    // redis-benchmark 7 stops at the first error reply and exits with 1, saying "replied with error".
    let running = Arc::new(AtomicBool::new(true));
    let benchmark = {
        let (running, proxy_port) = (running.clone(), proxy_port.to_string());
        #[allow(clippy::disallowed_methods)] // a test driving real processes: a thread waits on them
        std::thread::spawn(move || {
            let mut runs = 0;
            while running.load(Ordering::Relaxed) || runs == 0 {
                let output = Command::new("redis-benchmark")
                    .args([
                        "-p",
                        &proxy_port,
                        "-t",
                        "set,get,incr,lpush",
                        "-n",
                        "20000",
                        "-r",
                        "10000",
                        "-c",
                        "10",
                        "-P",
                        "4",
                    ])
                    .output()
                    .expect("redis-benchmark must be installed (`just deps` installs redis-tools)");
                let text =
                    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
                assert!(output.status.success(), "redis-benchmark failed: {text}");
                assert!(!text.to_lowercase().contains("error"), "redis-benchmark saw errors: {text}");
                runs += 1;
            }
            runs
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plan = admin(&dashboard, &["--rebalance", "--confirm", "--wait"]);
    assert!(plan.contains("=> group 3"), "the plan moves slots to group 3: {plan}");
    running.store(false, Ordering::Relaxed);
    let runs = benchmark.join().expect("the benchmark saw no error");
    assert!(runs >= 1);

    // Every key written before reads back through the proxy.
    for key in 0..2000 {
        let reply = client.call(&["GET", &format!("before:{key}")]).await.expect("GET");
        assert_eq!(reply, Frame::bulk(format!("value-{key}")), "before:{key}");
    }
    // Every master holds keys only in the slots its group owns.
    let stats: Value = serde_json::from_str(&admin(&dashboard, &["--json"])).expect("stats JSON");
    let owner = |slot: u64| stats["slots"][slot as usize]["group_id"].as_u64().expect("group");
    let masters: Vec<(u64, String)> = stats["group"]["models"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|group| {
            (group["id"].as_u64().expect("id"), group["servers"][0]["server"].as_str().expect("master").to_string())
        })
        .collect();
    assert_eq!(masters.len(), 3);
    for (group, master) in &masters {
        let owned = stats["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .filter(|slot| slot["group_id"].as_u64() == Some(*group))
            .count();
        assert!((341..=342).contains(&owned), "group {group} owns {owned} slots");
        let reply = Client::new(env.clone(), master).call(&["SLOTSINFO"]).await.expect("SLOTSINFO");
        let Frame::Array(slots) = reply else { panic!("SLOTSINFO replied {reply:?}") };
        for entry in slots {
            let Frame::Array(pair) = entry else { panic!("SLOTSINFO entry") };
            let Frame::Integer(slot) = pair[0] else { panic!("slot number") };
            assert_eq!(owner(slot as u64), *group, "{master} (group {group}) holds keys of slot {slot}");
        }
    }
    drop(demo);
}
