//! The harness's promises: failures are reported, not swallowed; restarts keep what the software
//! factory captured and nothing else; time and randomness are the simulation's; schedules that
//! make no sense are refused before the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use net::Env;
use net::rand::RngCore;
use sim::{Fault, Harness, SimConfig};

fn config(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(10);
    config
}

#[test]
fn a_panicking_task_fails_the_run() {
    let mut harness = Harness::new(config(1));
    harness.host("node", |env| async move {
        env.spawn(async { panic!("invariant broken in a spawned task") });
        std::future::pending::<()>().await;
        Ok(())
    });
    harness.client("client", |_| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    });
    let outcome = harness.run();
    let error = outcome.result.expect_err("the panic must fail the run");
    assert!(error.contains("panic"), "{error}");
    assert!(outcome.trace.last().is_some_and(|line| line.contains("FAIL")), "{:?}", outcome.trace.last());
}

#[test]
fn a_client_error_fails_the_run_with_its_message() {
    let mut harness = Harness::new(config(1));
    harness.client("client", |_| async { Err("the checker found a lost write".into()) });
    let error = harness.run().result.expect_err("client errors fail the run");
    assert!(error.contains("the checker found a lost write"), "{error}");
}

#[test]
fn a_run_that_never_finishes_fails_at_its_duration() {
    let mut harness = Harness::new(config(1));
    harness.client("client", |_| std::future::pending());
    let outcome = harness.run();
    assert!(outcome.result.is_err());
    assert!(outcome.elapsed >= Duration::from_secs(10), "{:?}", outcome.elapsed);
}

#[test]
fn restarts_keep_captured_state_and_draw_fresh_randomness() {
    let mut harness = Harness::new(config(1));
    // What the factory captures is the host's durable state: it survives the crash.
    let starts = Arc::new(AtomicU32::new(0));
    let captured = starts.clone();
    harness.host("node", move |env| {
        let starts = captured.clone();
        async move {
            let incarnation = starts.fetch_add(1, Ordering::SeqCst);
            tracing::info!(incarnation, draw = env.rng("run-id").next_u64(), "started");
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    harness.client("client", |_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    });
    harness.at(Duration::from_secs(1), Fault::Crash("node".into()));
    harness.at(Duration::from_secs(2), Fault::Restart("node".into()));
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    let draws: Vec<&str> = outcome
        .trace
        .iter()
        .filter(|line| line.contains("started"))
        .map(|line| line.rsplit("draw=").next().unwrap_or_default())
        .collect();
    assert_eq!(draws.len(), 2);
    assert_ne!(draws[0], draws[1], "a restarted process draws fresh numbers");
}

#[test]
fn time_is_simulated() {
    // An hour of sleep, in a run allowed two hours at coarse ticks: it finishes in well under a
    // second of real time, and the wall clock the component reads moved by exactly one hour from
    // the fixed epoch (2026-01-01T00:00:00Z).
    let mut harness =
        Harness::new(SimConfig { duration: Duration::from_secs(7200), tick: Duration::from_millis(100), ..config(1) });
    harness.client("client", |env| async move {
        let before = env.unix_millis();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(before, 1_767_225_600_000);
        assert_eq!(env.unix_millis() - before, 3_600_000);
        Ok(())
    });
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);

    // The same sleep in a 10 s run fails by duration: the budget is enforced.
    let mut harness = Harness::new(config(1));
    harness.client("client", |_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    assert!(harness.run().result.is_err());
}

#[test]
fn schedules_naming_unknown_hosts_or_crashing_clients_are_refused() {
    let mut harness = Harness::new(config(1));
    harness.client("client", |_| async { Ok(()) });
    harness.at(Duration::from_secs(1), Fault::Crash("ghost".into()));
    let error = harness.run().result.expect_err("unknown host");
    assert!(error.contains("unknown host \"ghost\""), "{error}");

    let mut harness = Harness::new(config(1));
    harness.client("client", |_| async { Ok(()) });
    harness.at(Duration::from_secs(1), Fault::Crash("client".into()));
    let error = harness.run().result.expect_err("clients cannot crash");
    assert!(error.contains("is a client"), "{error}");
}

#[test]
fn clients_can_inject_faults_at_run_time() {
    let mut harness = Harness::new(config(1));
    harness.host("node", |env| async move {
        let listener = env.bind("0.0.0.0:1").await?;
        loop {
            let _ = net::Listener::accept(&listener).await?;
        }
    });
    let nemesis = harness.nemesis();
    harness.client("client", move |env| async move {
        env.connect("node:1", Duration::from_secs(1)).await?;
        nemesis.inject(Fault::Partition("client".into(), "node".into()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let refused = env.connect("node:1", Duration::from_secs(1)).await;
        assert!(refused.is_err(), "the partition applied before the next step");
        Ok(())
    });
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
    assert!(outcome.trace.iter().any(|line| line.contains("fault: partition client <-> node")));
}

#[test]
fn a_cluster_shape_registers_named_hosts_with_their_software() {
    use sim::{ClusterShape, Role, software};
    let shape =
        ClusterShape { groups: 2, servers_per_group: 2, proxies: 1, dashboard: true, coordinator: false, clients: 1 };
    let mut harness = Harness::new(config(1));
    harness.add_cluster(&shape, |spec| {
        let role = spec.role;
        software(move |env| async move {
            let listener = env.bind("0.0.0.0:7000").await?;
            tracing::info!(?role, "up");
            loop {
                let _ = net::Listener::accept(&listener).await?;
            }
        })
    });
    harness.client(&ClusterShape::client_name(1), |env| async move {
        // Every named host answers on its port, reached through the simulator's DNS.
        for name in ["g1s0", "g1s1", "g2s0", "g2s1", "proxy1", "dashboard"] {
            env.connect(&format!("{name}:7000"), Duration::from_secs(1)).await?;
        }
        Ok(())
    });
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
    assert!(
        outcome
            .trace
            .iter()
            .any(|line| line.contains("g2s1") && line.contains(&format!("{:?}", Role::Server { group: 2, index: 1 })))
    );
    assert!(outcome.trace.iter().any(|line| line.contains("dashboard") && line.contains("Dashboard")));
}

#[test]
fn heal_all_repairs_every_link() {
    let mut harness = Harness::new(config(1));
    harness.host("node", |env| async move {
        let listener = env.bind("0.0.0.0:1").await?;
        loop {
            let _ = net::Listener::accept(&listener).await?;
        }
    });
    harness.client("client", |env| async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(env.connect("node:1", Duration::from_millis(100)).await.is_err(), "partitioned");
        tokio::time::sleep(Duration::from_secs(1)).await;
        env.connect("node:1", Duration::from_millis(100)).await?;
        Ok(())
    });
    harness.at(Duration::from_secs(1), Fault::Partition("node".into(), "client".into()));
    harness.at(Duration::from_secs(2), Fault::HealAll);
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
}

#[test]
fn a_hosts_disk_keeps_what_was_synced_across_a_crash_and_loses_only_unsynced_bytes() {
    use net::{Disk, DiskFile};
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let mut harness = Harness::new(config(3));
    let record = seen.clone();
    harness.host("node", move |env| {
        let record = record.clone();
        async move {
            let disk = env.disk();
            match disk.read("data").await? {
                // Later incarnations report what they find.
                Some(found) => record.lock().expect("lock").push(found),
                None => {
                    let mut file = disk.append("data").await?;
                    file.write_all(b"synced;").await?;
                    file.sync().await?;
                    file.write_all(&[b'u'; 64]).await?;
                }
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    harness.at(Duration::from_secs(1), Fault::Crash("node".into()));
    harness.at(Duration::from_secs(2), Fault::Restart("node".into()));
    harness.client("client", |_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    });
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
    let seen = seen.lock().expect("lock");
    let [found] = seen.as_slice() else { panic!("one restart, one report: {seen:?}") };
    assert!(found.starts_with(b"synced;"), "what was synced survives: {found:?}");
    assert!(found[7..].iter().all(|byte| *byte == b'u'), "then at most a prefix of the rest: {found:?}");
}

/// A paused host behaves as a stopped process does to its peers: a connection to it opens, a
/// request sent over it gets no answer until the host is resumed, then the answer comes.
#[test]
fn a_paused_host_accepts_connections_and_answers_only_once_resumed() {
    use net::Listener as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut harness = Harness::new(config(3));
    harness.host("echo", |env| async move {
        let listener = env.bind("0.0.0.0:7000").await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            env.spawn(async move {
                let mut byte = [0u8; 1];
                while stream.read_exact(&mut byte).await.is_ok() {
                    if stream.write_all(&byte).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    harness.client("client", |env| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Paused since 500 ms: the connection still opens (the kernel's backlog)...
        let mut stream = env.connect("echo:7000", Duration::from_millis(500)).await?;
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        // ...but nothing answers while it is paused,
        let early = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut byte)).await;
        if early.is_ok() {
            return Err("a paused host answered".into());
        }
        // and the answer arrives once it is resumed (at 4 s).
        tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut byte)).await??;
        if &byte != b"x" {
            return Err(format!("echoed {byte:?}").into());
        }
        Ok(())
    });
    harness.at(Duration::from_millis(500), Fault::Pause("echo".into()));
    harness.at(Duration::from_secs(4), Fault::Resume("echo".into()));
    let outcome = harness.run();
    assert!(outcome.passed(), "{:?}", outcome.result);
}
