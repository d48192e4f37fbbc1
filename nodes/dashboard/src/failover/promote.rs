//! Promotion, the state machine stored in the group (`preparing` → `prepared` → `finished`, see
//! the module above): fencing the old master, choosing and catching up the replica, promoting it.

use std::time::Duration;

use futures_util::future::join_all;
use model::{ActionState, Group, GroupId, GroupServer, ServerAction};
use net::Env;
use resp::client::Client;
use tokio::time::Instant;
use tracing::{info, warn};

use super::probe::{parse_role, probe};
use super::{EXECUTOR_PATIENCE, Role, guard, replicas};
use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};

impl<E: Env> Dashboard<E> {
    /// Stores the start of a promotion of `group` (`index` 0: the dashboard chooses), against
    /// the group as it is now (the upkeep may have recorded a sync since it was read), if
    /// `check` accepts it.
    pub(crate) async fn start_promotion(
        &self,
        group: GroupId,
        index: usize,
        check: impl Fn(&Group) -> Result<()>,
    ) -> Result<()> {
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
    pub(crate) fn group(&self, group: GroupId) -> Result<Group> {
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
    pub(crate) fn promotion_patience(&self) -> Duration {
        let config = &self.inner.settings.config;
        config.proxy_lease + config.failover_catch_up + Duration::from_secs(10)
    }

    /// Stores `next` in place of `expected` (refused if the group changed meanwhile) and, with
    /// `push`, pushes the group's slots to every proxy.
    pub(crate) async fn update_group(&self, expected: &Group, next: Group, push: bool) -> Result<()> {
        assert!(
            expected.promoting.state.promotion_allows(next.promoting.state),
            "group {}'s promotion may not move from {:?} to {:?}",
            next.id,
            expected.promoting.state,
            next.promoting.state
        );
        assert!(next.epoch >= expected.epoch, "group {}'s epoch went back", next.id);
        assert!(
            next.servers.iter().all(|server| server.action.state.is_server_action()),
            "group {}: a server holds a slot action's state",
            next.id
        );
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
    pub(crate) async fn drive_promotion(&self, group: GroupId) -> Result<()> {
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
    pub(crate) async fn stop_executors(&self, group: GroupId) -> Result<()> {
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
    pub(crate) async fn promote_prepared(&self, current: &Group) -> Result<()> {
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
    pub(crate) async fn candidate(&self, current: &Group, epoch: u64) -> Result<(usize, bool)> {
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
    pub(crate) async fn no_candidate(&self, current: &Group, why: &str) -> Result<(usize, bool)> {
        self.call_off(current, why, false).await
    }

    /// Gives the promotion up if the old master answers (its slots go back to it, unlocked);
    /// otherwise fails with `why` (retried later). After an `attempted` promotion the chosen
    /// replica may be master at the new epoch: the group takes that epoch (its master is
    /// confirmed at it) and the replica is re-pointed.
    pub(crate) async fn call_off<T>(&self, current: &Group, why: &str, attempted: bool) -> Result<T> {
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
    pub(crate) async fn catch_up(&self, current: &Group, candidate: &str, client: &mut Client<E>) -> Result<()> {
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
