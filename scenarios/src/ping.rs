//! `ping`: two clients echo unique payloads off the echo node through every kind of fault the
//! harness has, and must see exactly their own payload back every time they get an answer, and be
//! answered again once the faults are over.
//!
//! The schedule (simulated time):
//! - 2.0 s: partition `echo` from `client1`; 4.0 s: repair.
//! - 5.0 s: partition `client2 → echo` one way; 5.5 s: repair.
//! - 6.0 s: crash `echo`; 8.0 s: restart it.
//! - 9.0 s: hold `echo ↔ client2`; 9.5 s: release.
//! - 10.0 s: flap `client1 ↔ echo` around every 300 ms for 2 s.
//! - 12.5 s: fix `echo ↔ client2` latency at 20 ms.
//!
//! Checked: no reply is ever someone else's (or a stale) payload; each client saw failures (so
//! the faults reached it: a scenario whose faults miss is testing nothing); each client ends with
//! a run of successes after the last fault.

use std::time::Duration;

use net::Env;
use net::rand::Rng as _;
use resp::Frame;
use sim::{Fault, Harness, HostResult, Outcome, SimConfig, SimEnv};
use tokio::time::{Instant, sleep};
use tracing::{debug, info};

use crate::client::{SimClient, Unavailable};
use crate::{Scenario, echo};

/// The registry entry.
pub const SCENARIO: Scenario = Scenario {
    name: "ping",
    summary: "clients echo payloads off one node through partitions, a crash and restart, a hold, flapping and latency",
    run,
};

const ECHO: &str = "echo";
const CLIENTS: [&str; 2] = ["client1", "client2"];
/// Clients keep pinging at least this long (past the last fault)...
const ACTIVE_FOR: Duration = Duration::from_secs(15);
/// ...and then until this many consecutive pings succeed...
const HEALTHY_STREAK: u32 = 20;
/// ...which must happen before this much simulated time.
const RECOVER_BY: Duration = Duration::from_secs(25);

/// Runs the scenario with `seed`.
pub fn run(seed: u64) -> Outcome {
    let mut config = SimConfig::new(seed);
    config.duration = Duration::from_secs(30);
    let mut harness = Harness::new(config);
    harness.host(ECHO, |env| async move {
        echo::serve(env, "0.0.0.0:6379").await?;
        Ok(())
    });
    for client in CLIENTS {
        harness.client(client, move |env| ping_client(env, client));
    }
    let (echo, c1, c2) = (ECHO.to_string(), CLIENTS[0].to_string(), CLIENTS[1].to_string());
    let ms = Duration::from_millis;
    harness
        .at(ms(2_000), Fault::Partition(echo.clone(), c1.clone()))
        .at(ms(4_000), Fault::Repair(echo.clone(), c1.clone()))
        .at(ms(5_000), Fault::PartitionOneWay { from: c2.clone(), to: echo.clone() })
        .at(ms(5_500), Fault::RepairOneWay { from: c2.clone(), to: echo.clone() })
        .at(ms(6_000), Fault::Crash(echo.clone()))
        .at(ms(8_000), Fault::Restart(echo.clone()))
        .at(ms(9_000), Fault::Hold(echo.clone(), c2.clone()))
        .at(ms(9_500), Fault::Release(echo.clone(), c2.clone()))
        .at(ms(10_000), Fault::Flap { a: c1, b: echo.clone(), period: ms(300), duration: ms(2_000) })
        .at(ms(12_500), Fault::Latency { a: echo, b: c2, latency: ms(20) });
    harness.run()
}

async fn ping_client(env: SimEnv, name: &'static str) -> HostResult {
    let started = Instant::now();
    let mut pacing = env.rng("pacing");
    let mut client = SimClient::new(env, "echo:6379");
    let (mut succeeded, mut failed, mut streak) = (0u32, 0u32, 0u32);
    let mut sequence = 0u64;
    while started.elapsed() < ACTIVE_FOR || streak < HEALTHY_STREAK {
        if started.elapsed() > RECOVER_BY {
            return Err(format!("{name} did not recover: {streak} consecutive successes by {RECOVER_BY:?}").into());
        }
        sequence += 1;
        let payload = format!("{name}-{sequence}");
        match client.call(&["ECHO", payload.as_str()]).await {
            Ok(Frame::Bulk(reply)) if reply == payload.as_bytes() => {
                succeeded += 1;
                streak += 1;
                debug!(sequence, "echo ok");
            }
            Ok(other) => return Err(format!("{name} ping {sequence}: wrong reply {other:?} to {payload:?}").into()),
            Err(Unavailable(reason)) => {
                failed += 1;
                streak = 0;
                info!(sequence, reason, "echo failed");
            }
        }
        sleep(Duration::from_millis(pacing.random_range(5..=15))).await;
    }
    info!(succeeded, failed, "done");
    if failed == 0 {
        return Err(format!("{name} never saw a failure: the faults missed it, so the scenario tested nothing").into());
    }
    Ok(())
}
