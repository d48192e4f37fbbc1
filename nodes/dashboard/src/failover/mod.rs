//! High availability: the dashboard watches every server, fails a dead master over to its best
//! replica, and keeps every replica following its group's master (Codis leaves all of this to
//! redis-sentinel and to the operator, `codis.md` §3.6, §3.8).
//!
//! **Detection.** Every second the dashboard asks each server for `ROLE` and `EPOCH`. A master
//! is declared down only when the dashboard has not reached it for `failover_down_after` *and*
//! a majority of the registered proxies report the same (each proxy's backend connection says
//! how long it has been down or silent, `trouble_ms`). A dashboard cut off from the servers
//! hears from proxies that they are fine; a dashboard cut off from everything hears from no
//! proxy: neither fails anything over.
//!
//! **Promotion** is a state machine stored in the group record (`promoting`), so a dashboard
//! that crashes anywhere resumes it:
//! 1. `preparing`: stored; every slot routed to the group is pushed *locked* (proxies hold its
//!    requests, and a proxy's table change waits for requests in flight), and the step ends
//!    only when every proxy has it or has stopped serving (its lease ran out). From here on no
//!    proxy sends anything to the old master: the fencing point. Then `prepared` is stored.
//! 2. `prepared`: the replica to promote is chosen (an operator's choice, or the reachable
//!    replica with the highest replication offset, preferring the old master's datacenter); if
//!    the old master still answers, the replica first catches up with it. The replica is told
//!    the group's next epoch and `REPLICAOF NO ONE`; the old master is told the epoch too
//!    (which fences it: a master told of a newer epoch refuses writes). The group is stored
//!    with the new master first, the old one last, every other server marked for re-pointing,
//!    the new epoch, and `finished`, and pushed (unlocked, new master).
//! 3. `finished`: the promotion is cleared.
//!
//! **Upkeep.** Servers marked for re-pointing (and, where failover is automatic, any replica
//! found following someone else or nobody) are told the epoch and `REPLICAOF` the master as
//! soon as they answer: the other replicas right after a promotion, the old master when it
//! comes back.

mod detect;
mod probe;
mod promote;
mod upkeep;

use self::probe::probe_all;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use model::{ActionState, Group, GroupId, GroupServer};
use net::Env;
use resp::client::Client;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

use crate::dashboard::Dashboard;
use crate::error::Result;

/// How often every server is probed.
const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a promotion waits for slot migrations on the group to stop.
const EXECUTOR_PATIENCE: Duration = Duration::from_secs(10);

/// What a server said to the last probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// It accepts writes (unless fenced).
    Master {
        /// Its replication offset.
        offset: u64,
    },
    /// It follows `master`.
    Replica {
        /// The `host:port` it follows.
        master: String,
        /// Its link's state (`connected` once streaming).
        link: String,
        /// The offset it has applied.
        offset: u64,
    },
}

/// The dashboard's view of one server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerProbe {
    /// Its role, if it answered the last probe.
    pub role: Option<Role>,
    /// Its role when it last answered.
    #[serde(skip)]
    pub known_role: Option<Role>,
    /// Its failover epoch, if it answered.
    pub epoch: Option<u64>,
    /// Why the last probe failed.
    pub error: Option<String>,
    /// Since when it has not answered: its last answer (None: it answered the last probe).
    #[serde(skip)]
    pub down_since: Option<Instant>,
    /// When it last answered.
    #[serde(skip)]
    pub last_answer: Option<Instant>,
    /// For how long it has not answered, in ms.
    pub down_ms: u64,
}

/// Failover's state, for the stats page and the API.
#[derive(Debug, Default)]
pub struct FailoverControl {
    /// Wakes the failover loop (a promotion was asked for).
    pub(crate) wake: Notify,
    /// The last word per group (why a master is not failed over yet, how a promotion went).
    pub status: Mutex<BTreeMap<GroupId, String>>,
    /// Every server's last probe.
    pub servers: Mutex<BTreeMap<String, ServerProbe>>,
    /// Slot migrations running, per group (a promotion waits for them to stop).
    executors: Mutex<BTreeMap<GroupId, usize>>,
    /// Tells migrations that a promotion started.
    pub(crate) promotion_started: Notify,
}

fn guard<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running slot migration, counted against its groups while it lives.
pub(crate) struct ExecutorGuard<'a> {
    control: &'a FailoverControl,
    groups: Vec<GroupId>,
}

impl Drop for ExecutorGuard<'_> {
    fn drop(&mut self) {
        let mut executors = guard(&self.control.executors);
        for group in &self.groups {
            if let Some(count) = executors.get_mut(group) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    executors.remove(group);
                }
            }
        }
    }
}

impl FailoverControl {
    /// Counts a migration between `groups` until the guard drops.
    pub(crate) fn executor(&self, groups: &[GroupId]) -> ExecutorGuard<'_> {
        let mut executors = guard(&self.executors);
        for group in groups {
            *executors.entry(*group).or_default() += 1;
        }
        ExecutorGuard { control: self, groups: groups.to_vec() }
    }

    fn executors_on(&self, group: GroupId) -> usize {
        guard(&self.executors).get(&group).copied().unwrap_or(0)
    }

    fn set_status(&self, group: GroupId, line: String) {
        guard(&self.status).insert(group, line);
    }
}

/// Runs detection, promotions and upkeep until the dashboard stops.
pub(crate) async fn run<E: Env>(dashboard: Dashboard<E>) {
    let mut clients: BTreeMap<String, Client<E>> = BTreeMap::new();
    // Probes start every period, however long the last round took (a dead server costs a
    // probe timeout).
    let mut ticks = tokio::time::interval(PROBE_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = dashboard.closed() => return,
            () = dashboard.inner.failover.wake.notified() => {}
            _ = ticks.tick() => {}
        }
        probe_all(&dashboard, &mut clients).await;
        let groups: Vec<Group> = dashboard.model_guard().groups.values().cloned().collect();
        for group in &groups {
            if dashboard.is_closing() {
                return;
            }
            if group.promoting.state == ActionState::Nothing {
                match dashboard.detect(group).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => {
                        warn!(group = group.id.0, %error, "failover check failed");
                        continue;
                    }
                }
            }
            if let Err(error) = dashboard.drive_promotion(group.id).await {
                // A promotion called off has said so in the status already.
                let going_on = dashboard
                    .model_guard()
                    .groups
                    .get(&group.id)
                    .is_some_and(|found| found.promoting.state != ActionState::Nothing);
                if going_on {
                    warn!(group = group.id.0, %error, "promotion waits");
                    dashboard.inner.failover.set_status(group.id, format!("[PROMOTING] {error}"));
                }
            }
        }
        dashboard.upkeep().await;
    }
}

/// The servers of `group` other than the master, with their index.
fn replicas(group: &Group) -> impl Iterator<Item = (usize, &GroupServer)> {
    group.servers.iter().enumerate().skip(1)
}

impl<E: Env> Dashboard<E> {
    /// Failover's state.
    pub fn failover(&self) -> &FailoverControl {
        &self.inner.failover
    }

    /// Turns automatic failover of `group` on or off.
    pub async fn set_failover(&self, group: GroupId, enabled: bool) -> Result<()> {
        let found = self.group(group)?;
        let mut next = found.clone();
        next.failover_disabled = !enabled;
        self.update_group(&found, next, false).await
    }
}
