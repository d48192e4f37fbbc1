//! What the REST API (and `codis-admin`) can ask of the dashboard: groups and servers, proxies,
//! slot actions, forced assignments and rebalancing. Each checks its request against the
//! model, stores, updates the copy in memory and pushes what proxies must know, under the one
//! change lock.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use model::{ActionState, Group, GroupId, GroupServer, Proxy, ServerAction, SlotAction, SlotId, SlotMapping};
use net::Env;
use resp::Frame;
use resp::client::Client;
use tracing::info;

use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};
use crate::model::Model;
use crate::proxies::{ProxyLink, fetch_model};

fn invalid(text: impl Into<String>) -> DashboardError {
    DashboardError::Invalid(text.into())
}

fn conflict(text: impl Into<String>) -> DashboardError {
    DashboardError::Conflict(text.into())
}

fn not_found(text: impl Into<String>) -> DashboardError {
    DashboardError::NotFound(text.into())
}

/// Parses a slot number from a path.
pub fn parse_slot(text: &str) -> Result<SlotId> {
    text.parse::<u32>()
        .ok()
        .and_then(SlotId::new)
        .ok_or_else(|| invalid(format!("invalid slot {text:?}: use 0 to 1023")))
}

/// Parses a group id from a path.
pub fn parse_group(text: &str) -> Result<GroupId> {
    text.parse::<u32>()
        .ok()
        .map(GroupId)
        .filter(|group| group.is_valid())
        .ok_or_else(|| invalid(format!("invalid group id {text:?}: use 1 to {}", GroupId::MAX)))
}

/// Checks a `host:port`.
fn check_addr(addr: &str) -> Result<()> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0) => Ok(()),
        _ => Err(invalid(format!("invalid address {addr:?}: use host:port"))),
    }
}

impl<E: Env> Dashboard<E> {
    /// Stores what `change` does to a copy of the model, makes it the dashboard's, and pushes
    /// `push` (slots) to proxies.
    async fn change<T>(
        &self,
        change: impl FnOnce(&mut Model) -> Result<(T, Vec<Write>)>,
        push: impl FnOnce(&Model) -> Vec<SlotId>,
    ) -> Result<T> {
        let _changes = self.inner.changes.lock().await;
        let mut model = self.model();
        let (answer, writes) = change(&mut model)?;
        for write in writes {
            match write {
                Write::Slot(slot) => self.inner.store.save_slot(model.slot(slot)).await?,
                Write::Group(group) => match model.groups.get(&group) {
                    Some(record) => self.inner.store.save_group(record).await?,
                    None => self.inner.store.delete_group(group).await?,
                },
                Write::Proxy(token) => match model.proxies.get(&token) {
                    Some(record) => self.inner.store.save_proxy(record).await?,
                    None => self.inner.store.delete_proxy(&token).await?,
                },
            }
        }
        let slots = push(&model);
        self.replace_model(model);
        if !slots.is_empty() {
            self.push(&slots).await;
        }
        Ok(answer)
    }

    // ---- groups and servers ----

    /// Creates an empty group.
    pub async fn create_group(&self, group: GroupId) -> Result<()> {
        self.change(
            |model| {
                if !group.is_valid() {
                    return Err(invalid(format!("invalid group id {group}")));
                }
                if model.groups.contains_key(&group) {
                    return Err(conflict(format!("group {group} already exists")));
                }
                model.groups.insert(group, Group { id: group, ..Group::default() });
                Ok(((), vec![Write::Group(group)]))
            },
            |_| Vec::new(),
        )
        .await
    }

    /// Removes a group that has no server.
    pub async fn remove_group(&self, group: GroupId) -> Result<()> {
        self.change(
            |model| {
                let found =
                    model.groups.get(&group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                if !found.servers.is_empty() {
                    return Err(conflict(format!("group {group} still has servers; delete them first")));
                }
                if model.group_in_use(group) {
                    return Err(conflict(format!("group {group} still owns slots")));
                }
                model.groups.remove(&group);
                Ok(((), vec![Write::Group(group)]))
            },
            |_| Vec::new(),
        )
        .await
    }

    /// Adds the codis-server at `addr` to `group` (as its master if it is the first).
    pub async fn add_server(&self, group: GroupId, addr: &str, datacenter: &str) -> Result<()> {
        check_addr(addr)?;
        // A codis-server answers SLOTSINFO; a stock Redis does not (and could not serve slots).
        let mut client = self.server_client(addr);
        match client.call(&["SLOTSINFO", "0", "1"]).await {
            Ok(reply) if !reply.is_error() => {}
            Ok(reply) => return Err(invalid(format!("{addr} is not a codis-server (SLOTSINFO: {reply:?})"))),
            Err(error) => return Err(DashboardError::Unreachable(format!("server {addr}: {}", error.0))),
        }
        self.change(
            |model| {
                if let Some(owner) = model.group_of_server(addr) {
                    return Err(conflict(format!("server {addr} already belongs to group {owner}")));
                }
                let found =
                    model.groups.get_mut(&group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                if found.promoting.state != ActionState::Nothing {
                    return Err(conflict(format!("group {group} is being promoted")));
                }
                found.servers.push(GroupServer {
                    addr: addr.to_string(),
                    datacenter: datacenter.to_string(),
                    ..GroupServer::default()
                });
                found.out_of_sync = false;
                Ok(((), vec![Write::Group(group)]))
            },
            // A group's first server becomes its slots' backend.
            move |model| {
                if model.groups.get(&group).is_some_and(|found| found.servers.len() == 1) {
                    model.slots_of(group)
                } else {
                    Vec::new()
                }
            },
        )
        .await
    }

    /// Removes `addr` from `group`: a replica at any time; the master only as the last server of
    /// a group that owns no slot.
    pub async fn del_server(&self, group: GroupId, addr: &str) -> Result<()> {
        self.change(
            |model| {
                let in_use = model.group_in_use(group);
                let found =
                    model.groups.get_mut(&group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                let index = found
                    .servers
                    .iter()
                    .position(|server| server.addr == addr)
                    .ok_or_else(|| not_found(format!("group {group} has no server {addr}")))?;
                if found.promoting.state != ActionState::Nothing {
                    return Err(conflict(format!("group {group} is being promoted")));
                }
                if index == 0 && (found.servers.len() > 1 || in_use) {
                    return Err(conflict(format!(
                        "{addr} is group {group}'s master: remove the replicas and move its slots away first"
                    )));
                }
                found.servers.remove(index);
                Ok(((), vec![Write::Group(group)]))
            },
            // Reads may have gone to it: proxies are told at once.
            move |model| model.slots_of(group),
        )
        .await
    }

    /// Lets proxies read from replica `addr` of `group` (or stops them).
    pub async fn set_replica_group(&self, group: GroupId, addr: &str, value: bool) -> Result<()> {
        self.change(
            |model| {
                let found =
                    model.groups.get_mut(&group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                let server = found
                    .servers
                    .iter_mut()
                    .find(|server| server.addr == addr)
                    .ok_or_else(|| not_found(format!("group {group} has no server {addr}")))?;
                server.replica_group = value;
                Ok(((), vec![Write::Group(group)]))
            },
            move |model| model.slots_of(group),
        )
        .await
    }

    /// Sets the read flag on every server of every group.
    pub async fn set_replica_groups_all(&self, value: bool) -> Result<()> {
        self.change(
            |model| {
                let mut writes = Vec::new();
                for group in model.groups.values_mut() {
                    for server in &mut group.servers {
                        server.replica_group = value;
                    }
                    writes.push(Write::Group(group.id));
                }
                Ok(((), writes))
            },
            |model| model.slots.iter().map(|slot| slot.id).collect(),
        )
        .await
    }

    /// Pushes the slots of `group` to every proxy again.
    pub async fn resync_group(&self, group: GroupId) -> Result<()> {
        self.change(
            |model| {
                let found =
                    model.groups.get_mut(&group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                found.out_of_sync = false;
                Ok(((), vec![Write::Group(group)]))
            },
            move |model| model.slots_of(group),
        )
        .await
    }

    /// Pushes every slot to every proxy again.
    pub async fn resync_all(&self) -> Result<()> {
        self.change(|_| Ok(((), Vec::new())), |model| model.slots.iter().map(|slot| slot.id).collect()).await
    }

    /// Makes replica `addr` follow its group's master now (`EPOCH`, `REPLICAOF`), or, for the
    /// master, stop following anyone at the group's epoch; records the outcome as the server's
    /// sync action.
    pub async fn sync_server(&self, addr: &str) -> Result<()> {
        let group = {
            let model = self.model_guard();
            let group = model.group_of_server(addr).ok_or_else(|| not_found(format!("no group has server {addr}")))?;
            model.groups.get(&group).cloned().ok_or_else(|| not_found(format!("group {group} does not exist")))?
        };
        if group.promoting.state != ActionState::Nothing {
            return Err(conflict(format!("group {} is being promoted", group.id)));
        }
        let master = group.master().unwrap_or_default().to_string();
        if master != addr {
            return match self.repoint(&group, addr, &master).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    self.record_sync(group.id, addr, ActionState::SyncedFailed).await?;
                    Err(error)
                }
            };
        }
        let epoch = group.epoch.to_string();
        let outcome = self.server_client(addr).call(&["EPOCH", &epoch, "PROMOTE"]).await;
        let failed = match &outcome {
            Ok(reply) if reply.is_error() => Some(format!("{reply:?}")),
            Ok(_) => None,
            Err(error) => Some(error.0.clone()),
        };
        let state = if failed.is_none() { ActionState::Synced } else { ActionState::SyncedFailed };
        self.record_sync(group.id, addr, state).await?;
        match failed {
            None => Ok(()),
            Some(reason) => Err(DashboardError::Unreachable(format!("server {addr}: {reason}"))),
        }
    }

    /// Stores `state` as server `addr`'s sync action.
    pub(crate) async fn record_sync(&self, group: GroupId, addr: &str, state: ActionState) -> Result<()> {
        assert!(
            matches!(state, ActionState::Synced | ActionState::SyncedFailed),
            "a replica sync ends synced or failed, not {state:?}"
        );
        self.change(
            |model| {
                let server = model
                    .groups
                    .get_mut(&group)
                    .and_then(|found| found.servers.iter_mut().find(|server| server.addr == addr));
                match server {
                    Some(server) if server.action.state != state => {
                        server.action = ServerAction { index: 0, state };
                        Ok(((), vec![Write::Group(group)]))
                    }
                    _ => Ok(((), Vec::new())),
                }
            },
            |_| Vec::new(),
        )
        .await
    }

    pub(crate) fn server_client(&self, addr: &str) -> Client<E> {
        Client::new(self.inner.env.clone(), addr)
            .with_password(&self.inner.settings.product_auth)
            .with_timeouts(Duration::from_secs(3), Duration::from_secs(5))
    }

    /// `INFO` of any server, as a map (for the web page and `group/info`).
    pub async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        check_addr(addr)?;
        let reply = self
            .server_client(addr)
            .call(&["INFO"])
            .await
            .map_err(|error| DashboardError::Unreachable(format!("server {addr}: {}", error.0)))?;
        let Frame::Bulk(text) = reply else {
            return Err(DashboardError::Unreachable(format!("server {addr}: INFO replied {reply:?}")));
        };
        Ok(crate::observe::info_fields(&String::from_utf8_lossy(&text))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect())
    }

    // ---- proxies ----

    /// Registers the proxy whose admin API is at `addr` and brings it online (`online`: a proxy
    /// already known by its token is taken back, as a restarted proxy asks).
    pub async fn add_proxy(&self, addr: &str, online: bool) -> Result<Proxy> {
        check_addr(addr)?;
        let timeout = self.inner.settings.config.proxy_timeout;
        let mut proxy = fetch_model(&self.inner.env, addr, timeout).await?;
        if proxy.product_name != self.inner.settings.product.as_str() {
            return Err(conflict(format!(
                "proxy {addr} serves product {:?}, not {:?}",
                proxy.product_name,
                self.inner.settings.product.as_str()
            )));
        }
        coordinator::path::check(&self.inner.settings.product.proxy_path(&proxy.token))
            .map_err(|_| invalid(format!("proxy {addr} has an unusable token {:?}", proxy.token)))?;
        let client = self.proxy_client(&proxy);
        client
            .xping()
            .await
            .map_err(|error| DashboardError::Unreachable(format!("{error} (is its product_auth this dashboard's?)")))?;
        let token = proxy.token.clone();
        let stored = self
            .change(
                |model| {
                    match model.proxies.get(&token) {
                        Some(_) if !online => {
                            return Err(conflict(format!("proxy {addr} (token {token}) is already registered")));
                        }
                        Some(known) => proxy.id = known.id,
                        None => proxy.id = model.proxies.values().map(|known| known.id).max().unwrap_or(0) + 1,
                    }
                    model.proxies.insert(token.clone(), proxy.clone());
                    Ok((proxy.clone(), vec![Write::Proxy(token.clone())]))
                },
                |_| Vec::new(),
            )
            .await?;
        self.links().insert(token.clone(), ProxyLink::stale(client, "just registered", tokio::time::Instant::now()));
        self.reinit(&token).await?;
        info!(%addr, %token, id = stored.id, "proxy online");
        Ok(stored)
    }

    /// The token of the proxy with admin address `addr`.
    pub fn proxy_token(&self, addr: &str) -> Option<String> {
        self.model_guard().proxies.values().find(|proxy| proxy.admin_addr == addr).map(|proxy| proxy.token.clone())
    }

    /// Shuts the proxy down and forgets it; with `force`, forgets it even if it cannot be
    /// reached.
    pub async fn remove_proxy(&self, token: &str, force: bool) -> Result<()> {
        let client = self
            .links()
            .get(token)
            .map(|link| link.client.clone())
            .ok_or_else(|| not_found(format!("no proxy with token {token}")))?;
        if let Err(error) = client.shutdown().await
            && !force
        {
            return Err(DashboardError::Unreachable(format!("{error}; remove it with force to forget it anyway")));
        }
        self.change(
            |model| {
                model.proxies.remove(token);
                Ok(((), vec![Write::Proxy(token.to_string())]))
            },
            |_| Vec::new(),
        )
        .await?;
        self.links().remove(token);
        Ok(())
    }

    // ---- slot actions ----

    /// Plans moving `slot` to `group`.
    pub async fn create_action(&self, slot: SlotId, group: GroupId) -> Result<()> {
        self.create_actions(&[(slot, group)], true).await
    }

    /// Plans moving each idle slot in `begin..=end` not already in `group` to it; refused if
    /// any of them has an action already.
    pub async fn create_action_range(&self, begin: SlotId, end: SlotId, group: GroupId) -> Result<()> {
        if begin > end {
            return Err(invalid(format!("empty range {}..{}", begin.index(), end.index())));
        }
        let moves: Vec<_> = {
            let model = self.model_guard();
            (begin.index()..=end.index())
                .filter_map(|index| SlotId::new(index as u32))
                .filter(|slot| {
                    model.slot(*slot).group_id != group || model.slot(*slot).action.state != ActionState::Nothing
                })
                .map(|slot| (slot, group))
                .collect()
        };
        self.create_actions(&moves, true).await
    }

    /// Plans moving `count` idle slots of `from` (the lowest numbered) to `to`.
    pub async fn create_action_some(&self, from: GroupId, to: GroupId, count: usize) -> Result<()> {
        let moves: Vec<_> = {
            let model = self.model_guard();
            model
                .slots
                .iter()
                .filter(|slot| slot.group_id == from && slot.action.state == ActionState::Nothing)
                .take(count)
                .map(|slot| (slot.id, to))
                .collect()
        };
        self.create_actions(&moves, true).await
    }

    async fn create_actions(&self, moves: &[(SlotId, GroupId)], strict: bool) -> Result<()> {
        self.change(
            |model| {
                let mut index = model.max_action_index();
                let mut writes = Vec::new();
                for (slot, group) in moves {
                    let target =
                        model.groups.get(group).ok_or_else(|| not_found(format!("group {group} does not exist")))?;
                    if target.servers.is_empty() {
                        return Err(conflict(format!("group {group} has no server")));
                    }
                    let mapping = &mut model.slots[slot.index()];
                    if mapping.action.state != ActionState::Nothing {
                        if strict {
                            return Err(conflict(format!(
                                "slot {} already has an action ({})",
                                slot.index(),
                                mapping.action.state.as_str()
                            )));
                        }
                        continue;
                    }
                    if mapping.group_id == *group {
                        return Err(conflict(format!("slot {} is already in group {group}", slot.index())));
                    }
                    index += 1;
                    mapping.action = SlotAction { index, state: ActionState::Pending, target_id: *group };
                    writes.push(Write::Slot(*slot));
                }
                Ok(((), writes))
            },
            |_| Vec::new(),
        )
        .await?;
        self.inner.actions.wake.notify_one();
        Ok(())
    }

    /// Cancels a slot's action that has not started.
    pub async fn remove_action(&self, slot: SlotId) -> Result<()> {
        self.change(
            |model| {
                let mapping = &mut model.slots[slot.index()];
                match mapping.action.state {
                    ActionState::Pending => {
                        mapping.action = SlotAction::default();
                        Ok(((), vec![Write::Slot(slot)]))
                    }
                    ActionState::Nothing => Err(not_found(format!("slot {} has no action", slot.index()))),
                    other => Err(conflict(format!(
                        "slot {}'s action is {} already: it can only be finished (disable actions to pause it)",
                        slot.index(),
                        other.as_str()
                    ))),
                }
            },
            |_| Vec::new(),
        )
        .await?;
        self.clear_status(slot);
        Ok(())
    }

    /// The pause between executor steps, in microseconds (clamped to a second, as Codis).
    pub fn set_action_interval(&self, micros: u64) {
        self.inner.actions.interval_us.store(micros.min(1_000_000), Ordering::Relaxed);
    }

    /// Pauses (or resumes) slot actions.
    pub fn set_actions_disabled(&self, disabled: bool) {
        self.inner.actions.disabled.store(disabled, Ordering::Relaxed);
        self.inner.actions.wake.notify_one();
    }

    /// Sets slots' owners by force, without moving any key (to bring slots online on a fresh
    /// cluster, or to repair): refused for slots with an action under way.
    pub async fn assign(&self, mappings: &[SlotMapping]) -> Result<()> {
        self.change(
            |model| {
                let mut writes = Vec::new();
                for mapping in mappings {
                    if mapping.action.state != ActionState::Nothing {
                        return Err(invalid(format!("slot {}: an assignment carries no action", mapping.id.index())));
                    }
                    if mapping.group_id != GroupId(0)
                        && model.groups.get(&mapping.group_id).is_none_or(|group| group.servers.is_empty())
                    {
                        return Err(conflict(format!(
                            "slot {}: group {} has no server",
                            mapping.id.index(),
                            mapping.group_id
                        )));
                    }
                    let current = &model.slots[mapping.id.index()];
                    if !matches!(current.action.state, ActionState::Nothing | ActionState::Pending) {
                        return Err(conflict(format!(
                            "slot {} is {} to group {}: let the action finish (its keys are half moved)",
                            mapping.id.index(),
                            current.action.state.as_str(),
                            current.action.target_id
                        )));
                    }
                    model.slots[mapping.id.index()] =
                        SlotMapping { id: mapping.id, group_id: mapping.group_id, action: SlotAction::default() };
                    writes.push(Write::Slot(mapping.id));
                }
                Ok(((), writes))
            },
            |_| mappings.iter().map(|mapping| mapping.id).collect(),
        )
        .await
    }

    /// The rebalance plan; with `confirm`, each move becomes a pending action.
    pub async fn rebalance(&self, confirm: bool) -> Result<BTreeMap<SlotId, GroupId>> {
        let plan = crate::migration::rebalance::plan(&self.model()).map_err(|error| conflict(error.to_string()))?;
        if confirm && !plan.is_empty() {
            let moves: Vec<_> = plan.iter().map(|(slot, group)| (*slot, *group)).collect();
            self.create_actions(&moves, false).await?;
        }
        Ok(plan)
    }
}

/// A record a change writes.
pub(crate) enum Write {
    Slot(SlotId),
    Group(GroupId),
    Proxy(String),
}
