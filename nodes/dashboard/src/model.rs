//! The product's model as the dashboard holds it: every slot mapping, group and proxy, and what
//! each proxy must be told for each slot (Codis' `context.toSlot`).

use std::collections::BTreeMap;

use model::{ActionState, ForwardMethod, Group, GroupId, MAX_SLOT_NUM, Proxy, Slot, SlotId, SlotMapping};

/// How the dashboard tells proxies to serve slots, beyond the model: product settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// How migrating slots are served.
    pub method: ForwardMethod,
    /// Replicas every write must reach before it is acknowledged (0: asynchronous).
    pub sync_replicas: u32,
}

/// Everything stored for a product.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// All 1024 slots, by index.
    pub slots: Vec<SlotMapping>,
    /// Groups by id.
    pub groups: BTreeMap<GroupId, Group>,
    /// Proxies by token.
    pub proxies: BTreeMap<String, Proxy>,
}

/// Every slot id, in order.
pub fn all_slots() -> impl Iterator<Item = SlotId> {
    (0..MAX_SLOT_NUM as u32).filter_map(SlotId::new)
}

impl Model {
    /// A product with no group and every slot offline.
    pub fn empty() -> Model {
        Model {
            slots: all_slots().map(|id| SlotMapping { id, ..SlotMapping::default() }).collect(),
            groups: BTreeMap::new(),
            proxies: BTreeMap::new(),
        }
    }

    /// The mapping of `slot`.
    pub fn slot(&self, slot: SlotId) -> &SlotMapping {
        &self.slots[slot.index()]
    }

    /// Every server's address, group by group.
    pub fn server_addrs(&self) -> Vec<String> {
        self.groups.values().flat_map(|group| group.servers.iter().map(|server| server.addr.clone())).collect()
    }

    /// The master of `group`, if it has servers.
    pub fn master(&self, group: GroupId) -> Option<&str> {
        self.groups.get(&group).and_then(Group::master)
    }

    /// The slot as `proxy` must serve it (Codis' table in `toSlot`): idle and pending slots at
    /// their group (with replicas for reads); preparing at the source without replicas;
    /// prepared locked at the target migrating from the source; migrating the same, unlocked;
    /// finished at the target.
    pub fn to_slot(&self, slot: SlotId, routing: Routing, proxy: Option<&Proxy>) -> Slot {
        let mapping = self.slot(slot);
        let source = mapping.group_id;
        let target = mapping.action.target_id;
        let mut out =
            Slot { id: slot, forward_method: routing.method, sync_replicas: routing.sync_replicas, ..Slot::default() };
        let route = |out: &mut Slot, group: GroupId| {
            if let Some(found) = self.groups.get(&group)
                && let Some(master) = found.master()
            {
                out.backend_addr = master.to_string();
                out.backend_addr_group_id = group;
                out.epoch = found.epoch;
            }
        };
        match mapping.action.state {
            ActionState::Nothing | ActionState::Pending => {
                route(&mut out, source);
                out.replica_groups = self.replica_groups(source, proxy);
            }
            ActionState::Preparing => route(&mut out, source),
            ActionState::Prepared | ActionState::Migrating => {
                route(&mut out, target);
                if let Some(master) = self.master(source) {
                    out.migrate_from = master.to_string();
                    out.migrate_from_group_id = source;
                }
                out.locked = mapping.action.state == ActionState::Prepared;
            }
            ActionState::Finished => route(&mut out, target),
            // Server-action states never appear on a slot.
            _ => route(&mut out, source),
        }
        // A group whose master is being replaced takes no request until the new one is in
        // place: proxies hold them (the fencing point of a promotion).
        let groups = [out.backend_addr_group_id, out.migrate_from_group_id];
        if groups.iter().any(|group| self.is_promoting(*group)) {
            out.locked = true;
            out.replica_groups.clear();
        }
        out
    }

    /// Whether `group` is between the start of a promotion and its new master (slots locked).
    pub fn is_promoting(&self, group: GroupId) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|found| matches!(found.promoting.state, ActionState::Preparing | ActionState::Prepared))
    }

    /// Replicas of `group` flagged for reads, for `proxy`: those in its datacenter first.
    fn replica_groups(&self, group: GroupId, proxy: Option<&Proxy>) -> Vec<Vec<String>> {
        let Some(group) = self.groups.get(&group) else { return Vec::new() };
        let readable = group.servers.iter().skip(1).filter(|server| server.replica_group);
        let datacenter = proxy.map(|proxy| proxy.datacenter.as_str()).unwrap_or_default();
        let (near, far): (Vec<_>, Vec<_>) =
            readable.partition(|server| !datacenter.is_empty() && server.datacenter == datacenter);
        [near, far]
            .into_iter()
            .filter(|servers| !servers.is_empty())
            .map(|servers| servers.into_iter().map(|server| server.addr.clone()).collect())
            .collect()
    }

    /// The whole table for `proxy`.
    pub fn table(&self, routing: Routing, proxy: Option<&Proxy>) -> Vec<Slot> {
        all_slots().map(|slot| self.to_slot(slot, routing, proxy)).collect()
    }

    /// The group that has `addr` among its servers.
    pub fn group_of_server(&self, addr: &str) -> Option<GroupId> {
        self.groups.values().find(|group| group.servers.iter().any(|server| server.addr == addr)).map(|group| group.id)
    }

    /// The slots whose routing involves `group` (owned by it, or migrating to it).
    pub fn slots_of(&self, group: GroupId) -> Vec<SlotId> {
        self.slots
            .iter()
            .filter(|slot| slot.group_id == group || slot.action.target_id == group)
            .map(|slot| slot.id)
            .collect()
    }

    /// Whether any slot belongs to `group` or migrates to it.
    pub fn group_in_use(&self, group: GroupId) -> bool {
        self.slots.iter().any(|slot| slot.group_id == group || slot.action.target_id == group)
    }

    /// The highest action index in use (new actions go after it).
    pub fn max_action_index(&self) -> u64 {
        self.slots.iter().map(|slot| slot.action.index).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use model::{GroupServer, SlotAction};

    use super::*;

    fn slot(index: u32) -> SlotId {
        SlotId::new(index).unwrap()
    }

    fn two_groups() -> Model {
        let mut model = Model::empty();
        for (id, master, replica) in [(1, "a:1", "a:2"), (2, "b:1", "b:2")] {
            model.groups.insert(
                GroupId(id),
                Group {
                    id: GroupId(id),
                    servers: vec![
                        GroupServer { addr: master.into(), ..GroupServer::default() },
                        GroupServer {
                            addr: replica.into(),
                            replica_group: true,
                            datacenter: "dc2".into(),
                            ..GroupServer::default()
                        },
                    ],
                    ..Group::default()
                },
            );
        }
        model.slots[7].group_id = GroupId(1);
        model
    }

    #[test]
    fn each_action_state_routes_as_codis() {
        let mut model = two_groups();
        let method = Routing { method: ForwardMethod::SemiAsync, sync_replicas: 0 };
        let idle = model.to_slot(slot(7), method, None);
        assert_eq!((idle.backend_addr.as_str(), idle.migrate_from.as_str(), idle.locked), ("a:1", "", false));
        assert_eq!(idle.replica_groups, vec![vec!["a:2".to_string()]]);
        let mut expect = |state, backend: &str, from: &str, locked: bool, replicas: bool| {
            model.slots[7].action = SlotAction { index: 1, state, target_id: GroupId(2) };
            let out = model.to_slot(slot(7), method, None);
            assert_eq!(
                (out.backend_addr.as_str(), out.migrate_from.as_str(), out.locked),
                (backend, from, locked),
                "{state:?}"
            );
            assert_eq!(!out.replica_groups.is_empty(), replicas, "{state:?}");
        };
        expect(ActionState::Pending, "a:1", "", false, true);
        expect(ActionState::Preparing, "a:1", "", false, false);
        expect(ActionState::Prepared, "b:1", "a:1", true, false);
        expect(ActionState::Migrating, "b:1", "a:1", false, false);
        expect(ActionState::Finished, "b:1", "", false, false);
        let offline = model.to_slot(slot(8), method, None);
        assert_eq!(offline.backend_addr, "");
    }

    #[test]
    fn replicas_in_the_proxys_datacenter_come_first() {
        let mut model = two_groups();
        if let Some(group) = model.groups.get_mut(&GroupId(1)) {
            group.servers.push(GroupServer {
                addr: "a:3".into(),
                replica_group: true,
                datacenter: "dc1".into(),
                ..GroupServer::default()
            });
        }
        let proxy = Proxy { datacenter: "dc1".into(), ..Proxy::default() };
        let out = model.to_slot(slot(7), Routing::default(), Some(&proxy));
        assert_eq!(out.replica_groups, vec![vec!["a:3".to_string()], vec!["a:2".to_string()]]);
    }
}
