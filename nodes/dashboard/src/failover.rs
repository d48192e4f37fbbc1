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

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use model::{ActionState, Group, GroupId, GroupServer, ServerAction};
use net::Env;
use resp::Frame;
use resp::client::Client;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};

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

/// Probes every server of the model, all at once.
async fn probe_all<E: Env>(dashboard: &Dashboard<E>, clients: &mut BTreeMap<String, Client<E>>) {
    let addrs = dashboard.model_guard().server_addrs();
    clients.retain(|addr, _| addrs.contains(addr));
    let probes = addrs.into_iter().map(|addr| {
        let mut client = clients.remove(&addr).unwrap_or_else(|| dashboard.probe_client(&addr));
        async move {
            let answer = probe(&mut client).await;
            (addr, client, answer)
        }
    });
    let answers = join_all(probes).await;
    let now = Instant::now();
    let mut servers = guard(&dashboard.inner.failover.servers);
    let previous = std::mem::take(&mut *servers);
    for (addr, client, answer) in answers {
        let mut entry = previous.get(&addr).cloned().unwrap_or_default();
        match answer {
            Ok((role, epoch)) => {
                entry.known_role = Some(role.clone());
                entry.role = Some(role);
                entry.epoch = Some(epoch);
                entry.error = None;
                entry.down_since = None;
                entry.last_answer = Some(now);
                entry.down_ms = 0;
            }
            Err(error) => {
                entry.role = None;
                entry.epoch = None;
                entry.error = Some(error);
                let since = *entry.down_since.get_or_insert(entry.last_answer.unwrap_or(now));
                entry.down_ms = u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX);
            }
        }
        servers.insert(addr.clone(), entry);
        clients.insert(addr, client);
    }
}

/// One server's `ROLE` and `EPOCH`.
async fn probe<E: Env>(client: &mut Client<E>) -> std::result::Result<(Role, u64), String> {
    let replies =
        client.pipeline(&[vec!["ROLE".to_string()], vec!["EPOCH".to_string()]]).await.map_err(|error| error.0)?;
    let [role, epoch] = replies.as_slice() else { return Err("short reply".into()) };
    let role = parse_role(role).ok_or_else(|| format!("ROLE answered {role:?}"))?;
    // A server without `EPOCH` (a stock codis-server) is at epoch 0: it cannot be fenced.
    let epoch = match epoch {
        Frame::Integer(epoch) => u64::try_from(*epoch).unwrap_or(0),
        Frame::Error(_) => 0,
        other => return Err(format!("EPOCH answered {other:?}")),
    };
    Ok((role, epoch))
}

fn int(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Integer(value) => u64::try_from(*value).ok(),
        Frame::Bulk(text) => std::str::from_utf8(text).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Bulk(text) | Frame::Simple(text) => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

/// Parses `ROLE`'s reply (a master's or a replica's).
fn parse_role(frame: &Frame) -> Option<Role> {
    let Frame::Array(items) = frame else { return None };
    match text(items.first()?)?.as_str() {
        "master" => Some(Role::Master { offset: int(items.get(1)?)? }),
        "slave" => Some(Role::Replica {
            master: format!("{}:{}", text(items.get(1)?)?, int(items.get(2)?)?),
            link: text(items.get(3)?)?,
            offset: int(items.get(4)?)?,
        }),
        _ => None,
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

    /// A client of `addr` that gives up after a second (probes, and the console's `INFO`).
    pub(crate) fn probe_client(&self, addr: &str) -> Client<E> {
        Client::new(self.inner.env.clone(), addr)
            .with_password(&self.inner.settings.product_auth)
            .with_timeouts(PROBE_TIMEOUT, PROBE_TIMEOUT)
    }

    fn probe_of(&self, addr: &str) -> ServerProbe {
        guard(&self.inner.failover.servers).get(addr).cloned().unwrap_or_default()
    }

    /// Starts failing `group` over if its master is down for the dashboard and for a majority
    /// of proxies; says whether it did.
    async fn detect(&self, group: &Group) -> Result<bool> {
        let control = &self.inner.failover;
        let config = &self.inner.settings.config;
        if !config.failover_auto || group.failover_disabled || group.servers.len() < 2 {
            return Ok(false);
        }
        let Some(master) = group.master() else { return Ok(false) };
        let probe = self.probe_of(master);
        let Some(since) = probe.down_since else {
            guard(&control.status).remove(&group.id);
            return Ok(false);
        };
        let down_for = Instant::now().saturating_duration_since(since);
        let down_after = config.failover_down_after;
        if down_for < down_after {
            control.set_status(group.id, format!("[SUSPECT] master {master} silent for {} ms", down_for.as_millis()));
            return Ok(false);
        }
        let reachable = replicas(group)
            .filter(|(_, server)| matches!(self.probe_of(&server.addr).role, Some(Role::Replica { .. })))
            .count();
        if reachable == 0 {
            control.set_status(group.id, format!("[DOWN] master {master} is down and no replica answers"));
            return Ok(false);
        }
        let (votes, registered) = self.proxy_votes(master, down_after).await;
        let needed = registered / 2 + 1;
        if registered == 0 || votes < needed {
            control.set_status(
                group.id,
                format!(
                    "[SUSPECT] master {master} silent for {} ms to the dashboard; {votes} of {registered} proxies agree (failover needs {needed})",
                    down_for.as_millis()
                ),
            );
            return Ok(false);
        }
        warn!(group = group.id.0, %master, votes, registered, "master is down: failing over");
        let master = master.to_string();
        self.start_promotion(group.id, 0, |now| {
            if now.master() == Some(master.as_str()) {
                Ok(())
            } else {
                Err(DashboardError::Conflict(format!("group {}'s master changed meanwhile", group.id)))
            }
        })
        .await?;
        Ok(true)
    }

    /// How many registered proxies see `master` down or silent for `down_after`, and how many
    /// proxies are registered.
    async fn proxy_votes(&self, master: &str, down_after: Duration) -> (usize, usize) {
        let clients: Vec<_> = {
            let model = self.model_guard();
            let links = self.links();
            model.proxies.keys().filter_map(|token| links.get(token).map(|link| link.client.clone())).collect()
        };
        let registered = self.model_guard().proxies.len();
        let threshold = u64::try_from(down_after.as_millis()).unwrap_or(u64::MAX);
        let answers = join_all(clients.iter().map(|client| client.stats())).await;
        let votes = answers
            .into_iter()
            .filter_map(std::result::Result::ok)
            .filter(|stats| {
                stats["backends"].as_array().is_some_and(|backends| {
                    backends.iter().any(|backend| {
                        backend["addr"].as_str() == Some(master)
                            && backend["trouble_ms"].as_u64().is_some_and(|trouble| trouble >= threshold)
                    })
                })
            })
            .count();
        (votes, registered)
    }

    /// Stores the start of a promotion of `group` (`index` 0: the dashboard chooses), against
    /// the group as it is now (the upkeep may have recorded a sync since it was read), if
    /// `check` accepts it.
    async fn start_promotion(&self, group: GroupId, index: usize, check: impl Fn(&Group) -> Result<()>) -> Result<()> {
        {
            let _changes = self.inner.changes.lock().await;
            let mut next = self.group(group)?;
            if next.promoting.state != ActionState::Nothing {
                return Err(DashboardError::Conflict(format!("group {group} is already being promoted")));
            }
            check(&next)?;
            next.promoting = ServerAction { index: index as u64, state: ActionState::Preparing };
            self.inner.store.save_group(&next).await?;
            self.model_guard().groups.insert(group, next);
        }
        self.inner.failover.promotion_started.notify_waiters();
        self.inner.failover.set_status(group, "[PROMOTING] preparing".into());
        Ok(())
    }

    /// `group` as the dashboard has it.
    fn group(&self, group: GroupId) -> Result<Group> {
        self.model_guard()
            .groups
            .get(&group)
            .cloned()
            .ok_or_else(|| DashboardError::NotFound(format!("group {group} does not exist")))
    }

    /// Promotes replica `addr` of `group` (Codis' `group/promote`), waiting until it is done.
    pub async fn promote(&self, group: GroupId, addr: &str) -> Result<()> {
        let found = self.group(group)?;
        let index = found
            .servers
            .iter()
            .position(|server| server.addr == addr)
            .ok_or_else(|| DashboardError::NotFound(format!("group {group} has no server {addr}")))?;
        if index == 0 {
            return Err(DashboardError::Conflict(format!("{addr} is already group {group}'s master")));
        }
        if found.promoting.state != ActionState::Nothing {
            return Err(DashboardError::Conflict(format!("group {group} is already being promoted")));
        }
        match probe(&mut self.probe_client(addr)).await {
            Ok((Role::Replica { .. }, _)) => {}
            Ok((Role::Master { .. }, _)) => {
                return Err(DashboardError::Conflict(format!(
                    "{addr} answers as a master, not as a replica of group {group}: it cannot be promoted"
                )));
            }
            Err(error) => {
                return Err(DashboardError::Unreachable(format!(
                    "{addr} does not answer ({error}); it cannot be promoted"
                )));
            }
        }
        self.start_promotion(group, index, |now| {
            if now.servers.get(index).map(|server| server.addr.as_str()) == Some(addr) {
                Ok(())
            } else {
                Err(DashboardError::Conflict(format!("group {group}'s servers changed meanwhile")))
            }
        })
        .await?;
        self.inner.failover.wake.notify_one();
        let deadline = Instant::now() + self.promotion_patience();
        loop {
            let now = self.model_guard().groups.get(&group).cloned();
            match now {
                Some(now) if now.promoting.state == ActionState::Nothing => {
                    return if now.master() == Some(addr) {
                        Ok(())
                    } else {
                        Err(DashboardError::Conflict(format!(
                            "the promotion of {addr} was called off: {}",
                            guard(&self.inner.failover.status).get(&group).cloned().unwrap_or_default()
                        )))
                    };
                }
                None => return Err(DashboardError::NotFound(format!("group {group} was removed"))),
                Some(_) if Instant::now() >= deadline => {
                    return Err(DashboardError::Unreachable(format!(
                        "the promotion of {addr} is still going on: {}",
                        guard(&self.inner.failover.status).get(&group).cloned().unwrap_or_default()
                    )));
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// How long a manual promotion may take: a stale proxy's lease, and the catch-up.
    fn promotion_patience(&self) -> Duration {
        let config = &self.inner.settings.config;
        config.proxy_lease + config.failover_catch_up + Duration::from_secs(10)
    }

    /// Turns automatic failover of `group` on or off.
    pub async fn set_failover(&self, group: GroupId, enabled: bool) -> Result<()> {
        let found = self.group(group)?;
        let mut next = found.clone();
        next.failover_disabled = !enabled;
        self.update_group(&found, next, false).await
    }

    /// Stores `next` in place of `expected` (refused if the group changed meanwhile) and, with
    /// `push`, pushes the group's slots to every proxy.
    async fn update_group(&self, expected: &Group, next: Group, push: bool) -> Result<()> {
        let _changes = self.inner.changes.lock().await;
        if self.model_guard().groups.get(&next.id) != Some(expected) {
            return Err(DashboardError::Conflict(format!("group {} changed meanwhile; starting over", next.id)));
        }
        self.inner.store.save_group(&next).await?;
        let id = next.id;
        let slots = {
            let mut model = self.model_guard();
            model.groups.insert(id, next);
            model.slots_of(id)
        };
        if push && !slots.is_empty() {
            self.push(&slots).await;
        }
        Ok(())
    }

    /// Takes `group`'s promotion as far as it goes now.
    async fn drive_promotion(&self, group: GroupId) -> Result<()> {
        loop {
            let Some(current) = self.model_guard().groups.get(&group).cloned() else { return Ok(()) };
            match current.promoting.state {
                ActionState::Preparing => {
                    self.stop_executors(group).await?;
                    // Push the locked slots (again, after a crash) and wait for every proxy.
                    {
                        let _changes = self.inner.changes.lock().await;
                        let slots = self.model_guard().slots_of(group);
                        self.push(&slots).await;
                    }
                    if let Some(reason) = self.held_back_by() {
                        return Err(DashboardError::Unreachable(reason));
                    }
                    let mut next = current.clone();
                    next.promoting.state = ActionState::Prepared;
                    self.update_group(&current, next, false).await?;
                    self.inner
                        .failover
                        .set_status(group, "[PROMOTING] prepared: no proxy writes to the old master".into());
                }
                ActionState::Prepared => self.promote_prepared(&current).await?,
                ActionState::Finished => {
                    let mut next = current.clone();
                    next.promoting = ServerAction::default();
                    self.update_group(&current, next, false).await?;
                    let master = current.master().unwrap_or_default();
                    info!(group = group.0, %master, epoch = current.epoch, "promotion finished");
                    self.inner
                        .failover
                        .set_status(group, format!("[DONE] {master} is the master (epoch {})", current.epoch));
                    return Ok(());
                }
                _ => {
                    // Not a promotion state: clear it.
                    let mut next = current.clone();
                    next.promoting = ServerAction::default();
                    self.update_group(&current, next, true).await?;
                    return Ok(());
                }
            }
        }
    }

    /// Waits for slot migrations touching `group` to stop (they do not start again while the
    /// group is being promoted).
    async fn stop_executors(&self, group: GroupId) -> Result<()> {
        let control = &self.inner.failover;
        let deadline = Instant::now() + EXECUTOR_PATIENCE;
        while control.executors_on(group) > 0 {
            control.promotion_started.notify_waiters();
            if Instant::now() >= deadline {
                return Err(DashboardError::Conflict(format!("a slot migration of group {group} does not stop")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The `prepared` step: promotes the replica, stores the new layout and pushes it.
    async fn promote_prepared(&self, current: &Group) -> Result<()> {
        let group = current.id;
        let epoch = current.epoch + 1;
        let old_master = current.master().unwrap_or_default().to_string();
        let (index, resumed) = self.candidate(current, epoch).await?;
        let Some(candidate) = current.servers.get(index).map(|server| server.addr.clone()) else {
            return Err(DashboardError::Conflict(format!("group {group} has no server {index}")));
        };
        // Stored before it is told to take over: a dashboard that crashes from here on resumes
        // with this one (which may already be master at the new epoch).
        let current = if current.promoting_to == candidate {
            current.clone()
        } else {
            let mut next = current.clone();
            next.promoting_to = candidate.clone();
            self.update_group(current, next.clone(), false).await?;
            next
        };
        let current = &current;
        if !resumed {
            let mut client = self.server_client(&candidate);
            self.catch_up(current, &candidate, &mut client).await?;
            // One guarded command: refused as a whole if the server knows a newer epoch.
            match client.call(&["EPOCH", &epoch.to_string(), "PROMOTE"]).await {
                Ok(reply) if !reply.is_error() => {}
                Ok(reply) => return self.call_off(current, &format!("{candidate} refused: {reply:?}"), true).await,
                Err(error) => return self.call_off(current, &format!("{candidate}: {}", error.0), true).await,
            }
        }
        // The old master, if it answers, stops taking writes now (the proxies already stopped
        // sending it any); it is re-pointed at the new master by the upkeep.
        if self.probe_of(&old_master).role.is_some()
            && let Ok(reply) = self.probe_client(&old_master).call(&["EPOCH", &epoch.to_string()]).await
            && !reply.is_error()
        {
            info!(%old_master, epoch, "old master fenced");
        }
        let mut next = current.clone();
        let promoted = next.servers.remove(index);
        let old = next.servers.remove(0);
        next.servers.insert(0, promoted);
        next.servers.push(old);
        for server in next.servers.iter_mut().skip(1) {
            server.action = ServerAction { index: 0, state: ActionState::Pending };
        }
        next.servers[0].action = ServerAction::default();
        next.epoch = epoch;
        next.promoting = ServerAction { index: 0, state: ActionState::Finished };
        next.promoting_to.clear();
        next.out_of_sync = false;
        self.update_group(current, next, true).await?;
        // What the next probe will say; until then the upkeep must not take it for a replica.
        if let Some(probe) = guard(&self.inner.failover.servers).get_mut(&candidate) {
            probe.role = Some(Role::Master { offset: 0 });
            probe.known_role = probe.role.clone();
            probe.epoch = Some(epoch);
        }
        warn!(group = group.0, master = %candidate, %old_master, epoch, "replica promoted");
        Ok(())
    }

    /// The replica to promote and whether it was already promoted (a resumed promotion): the
    /// one already chosen if it still can be, the one the operator chose, or among the
    /// replicas that followed the old master, the one with the highest offset, preferring the
    /// old master's datacenter, then the lowest index.
    async fn candidate(&self, current: &Group, epoch: u64) -> Result<(usize, bool)> {
        let old_master = current.master().unwrap_or_default();
        let asked =
            join_all(replicas(current).map(|(index, server)| async move {
                (index, server, probe(&mut self.probe_client(&server.addr)).await)
            }))
            .await;
        let answers: Vec<_> =
            asked.into_iter().filter_map(|(index, server, answer)| Some((index, server, answer.ok()?))).collect();
        let answer = |index: usize| answers.iter().find(|(at, _, _)| *at == index).map(|(_, _, answer)| answer);
        let follows_old = |role: &Role| matches!(role, Role::Replica { master, .. } if master == old_master);
        let manual = current.promoting.index as usize;
        let chosen = current.servers.iter().position(|server| server.addr == current.promoting_to).filter(|at| *at > 0);
        if let Some(index) = chosen.or((manual > 0).then_some(manual)) {
            match answer(index) {
                // A promotion that stopped after promoting goes on with the one it promoted.
                Some((Role::Master { .. }, known)) if *known == epoch => return Ok((index, true)),
                Some((role, _)) if follows_old(role) => return Ok((index, false)),
                _ if manual > 0 => {
                    return self
                        .no_candidate(current, "the chosen replica does not answer as the master's replica")
                        .await;
                }
                // Chosen automatically, and gone since: choose again.
                _ => {}
            }
        }
        // Only replicas that followed the old master, re-pointed since the last promotion,
        // have its history.
        let eligible = |index: usize, server: &GroupServer| {
            server.action.state != ActionState::Pending && answer(index).is_some_and(|(role, _)| follows_old(role))
        };
        // In synchronous mode every acknowledged write reached `sync_replicas` of the replicas
        // that followed the master; hearing from all of those but `sync_replicas - 1`, the one
        // with the highest offset holds every acknowledged write.
        let sync = self.inner.settings.config.sync_replicas as usize;
        if sync > 0 {
            let followers: Vec<usize> = replicas(current)
                .filter(|(_, server)| {
                    server.action.state != ActionState::Pending
                        && self.probe_of(&server.addr).known_role.as_ref().is_some_and(follows_old)
                })
                .map(|(index, _)| index)
                .collect();
            let needed = (followers.len() + 1).saturating_sub(sync).max(1);
            let answering = followers
                .iter()
                .filter(|index| current.servers.get(**index).is_some_and(|server| eligible(**index, server)))
                .count();
            if answering < needed {
                return self
                    .no_candidate(
                        current,
                        &format!(
                            "{answering} of the {} replicas that followed the master answer; with sync_replicas = {sync}, {needed} must, to be sure of holding every acknowledged write",
                            followers.len()
                        ),
                    )
                    .await;
            }
        }
        let datacenter = current.servers.first().map(|server| server.datacenter.as_str()).unwrap_or_default();
        let best = replicas(current)
            .filter(|(index, server)| eligible(*index, server))
            .filter_map(|(index, server)| match answer(index) {
                Some((Role::Replica { offset, .. }, _)) => {
                    Some((*offset, server.datacenter == datacenter, std::cmp::Reverse(index)))
                }
                _ => None,
            })
            .max();
        match best {
            Some((_, _, std::cmp::Reverse(index))) => Ok((index, false)),
            None => self.no_candidate(current, "no replica that followed the master answers").await,
        }
    }

    /// No replica can be promoted: if the old master answers again, the promotion is called
    /// off (nothing was changed yet); otherwise it waits, slots locked.
    async fn no_candidate(&self, current: &Group, why: &str) -> Result<(usize, bool)> {
        self.call_off(current, why, false).await
    }

    /// Gives the promotion up if the old master answers (its slots go back to it, unlocked);
    /// otherwise fails with `why` (retried later). After an `attempted` promotion the chosen
    /// replica may be master at the new epoch: the group takes that epoch (its master is
    /// confirmed at it) and the replica is re-pointed.
    async fn call_off<T>(&self, current: &Group, why: &str, attempted: bool) -> Result<T> {
        let master = current.master().unwrap_or_default();
        let alive = matches!(self.probe_of(master).role, Some(Role::Master { .. }));
        if alive {
            let mut next = current.clone();
            next.promoting = ServerAction::default();
            if attempted {
                next.epoch += 1;
                let chosen = next.promoting_to.clone();
                if let Some(server) = next.servers.iter_mut().find(|server| server.addr == chosen) {
                    server.action = ServerAction { index: 0, state: ActionState::Pending };
                }
            }
            next.promoting_to.clear();
            self.update_group(current, next, true).await?;
            warn!(group = current.id.0, %master, why, "promotion called off: the master answers");
            self.inner.failover.set_status(current.id, format!("[CALLED OFF] {why}; {master} stays master"));
            return Err(DashboardError::Conflict(format!("promotion called off: {why}")));
        }
        Err(DashboardError::Unreachable(format!("cannot promote yet: {why}")))
    }

    /// If the old master still answers, waits (up to `failover_catch_up`) until the candidate
    /// has everything the old master has: proxies stopped writing at the fencing point, so its
    /// offset no longer grows.
    async fn catch_up(&self, current: &Group, candidate: &str, client: &mut Client<E>) -> Result<()> {
        let master = current.master().unwrap_or_default();
        if self.probe_of(master).role.is_none() {
            return Ok(());
        }
        let Ok(reply) = self.probe_client(master).call(&["ROLE"]).await else { return Ok(()) };
        let Some(Role::Master { offset: wanted }) = parse_role(&reply) else { return Ok(()) };
        let deadline = Instant::now() + self.inner.settings.config.failover_catch_up;
        loop {
            let reply = client.call(&["ROLE"]).await;
            if let Ok(reply) = reply
                && let Some(Role::Replica { offset, .. }) = parse_role(&reply)
                && offset >= wanted
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return self
                    .call_off(current, &format!("{candidate} did not catch up with {master} (offset {wanted})"), false)
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Re-points servers marked after a promotion, confirms masters at their group's epoch,
    /// and (where failover is automatic) re-points replicas that follow someone else.
    async fn upkeep(&self) {
        let groups: Vec<Group> = self.model_guard().groups.values().cloned().collect();
        let auto = self.inner.settings.config.failover_auto;
        for group in groups {
            if group.promoting.state != ActionState::Nothing || self.is_closing() {
                continue;
            }
            let Some(master) = group.master().map(str::to_string) else { continue };
            // The master is confirmed at its group's epoch every round: one that restarted
            // forgot it, and a proxy telling it the epoch on connect would fence it. (A
            // deposed dashboard's late confirmation is refused: the epoch is older.)
            let probe = self.probe_of(&master);
            // A master that knows a newer epoch than its group (it was in another group, or
            // told by a table from before a reload): the group takes it, so epochs only grow.
            if let Some(known) = probe.epoch.filter(|known| *known > group.epoch)
                && matches!(probe.role, Some(Role::Master { .. }))
            {
                let mut next = group.clone();
                next.epoch = known;
                if let Err(error) = self.update_group(&group, next, true).await {
                    warn!(group = group.id.0, %error, "adopting the master's epoch failed");
                }
                continue;
            }
            match &probe.role {
                Some(Role::Master { .. }) => {
                    let reply = self.probe_client(&master).call(&["EPOCH", &group.epoch.to_string(), "MASTER"]).await;
                    if probe.epoch.is_some_and(|known| known < group.epoch) {
                        info!(group = group.id.0, %master, epoch = group.epoch, ?reply, "master confirmed at the group's epoch");
                    }
                }
                // Not repaired by itself (making it master would drop what it copied from the
                // one it follows): the operator decides, with the sync action or a promotion.
                Some(Role::Replica { master: follows, .. }) => self.inner.failover.set_status(
                    group.id,
                    format!("[BROKEN] the group's master {master} follows {follows}: its slots refuse writes (sync action or promote to repair)"),
                ),
                None => {}
            }
            for (_, server) in replicas(&group) {
                let probe = self.probe_of(&server.addr);
                let Some(role) = &probe.role else { continue };
                let drifted = match role {
                    Role::Master { .. } => true,
                    Role::Replica { master: follows, .. } => *follows != master,
                };
                let marked = server.action.state == ActionState::Pending;
                if !(marked || (auto && !group.failover_disabled && drifted)) {
                    continue;
                }
                if let Err(error) = self.repoint(&group, &server.addr, &master).await {
                    warn!(group = group.id.0, server = %server.addr, %error, "re-pointing a replica failed");
                }
            }
        }
    }

    /// Tells `addr` the group's epoch and makes it follow `master`; records it as synced.
    pub(crate) async fn repoint(&self, group: &Group, addr: &str, master: &str) -> Result<()> {
        let (host, port) =
            master.rsplit_once(':').ok_or_else(|| DashboardError::Invalid(format!("master address {master:?}")))?;
        let mut commands = Vec::new();
        if !self.inner.settings.product_auth.is_empty() {
            commands.push(vec![
                "CONFIG".to_string(),
                "SET".to_string(),
                "masterauth".to_string(),
                self.inner.settings.product_auth.clone(),
            ]);
        }
        // One guarded command: a server that knows a newer epoch (this dashboard is behind)
        // refuses it as a whole.
        let follow = ["EPOCH", &group.epoch.to_string(), "FOLLOW", host, port].map(str::to_string).to_vec();
        commands.push(follow);
        let replies = self
            .server_client(addr)
            .pipeline(&commands)
            .await
            .map_err(|error| DashboardError::Unreachable(format!("server {addr}: {}", error.0)))?;
        if let Some(refused) = replies.iter().find(|reply| reply.is_error()) {
            return Err(DashboardError::Unreachable(format!("server {addr}: {refused:?}")));
        }
        info!(group = group.id.0, server = %addr, %master, epoch = group.epoch, "replica follows its master");
        self.record_sync(group.id, addr, ActionState::Synced).await
    }

    /// Completes when a promotion of `source` or `target` starts (a migration between them
    /// must stop).
    pub(crate) async fn promotion_of(&self, groups: &[GroupId]) {
        loop {
            let notified = self.inner.failover.promotion_started.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let promoting = {
                let model = self.model_guard();
                groups.iter().any(|group| {
                    model.groups.get(group).is_some_and(|found| found.promoting.state != ActionState::Nothing)
                })
            };
            if promoting {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_as_redis_sends_them() {
        let master = Frame::Array(vec![Frame::Bulk("master".into()), Frame::Integer(42), Frame::Array(vec![])]);
        assert_eq!(parse_role(&master), Some(Role::Master { offset: 42 }));
        let replica = Frame::Array(vec![
            Frame::Bulk("slave".into()),
            Frame::Bulk("10.0.0.1".into()),
            Frame::Integer(6379),
            Frame::Bulk("connected".into()),
            Frame::Integer(7),
        ]);
        assert_eq!(
            parse_role(&replica),
            Some(Role::Replica { master: "10.0.0.1:6379".into(), link: "connected".into(), offset: 7 })
        );
        assert_eq!(parse_role(&Frame::Integer(1)), None);
    }
}
