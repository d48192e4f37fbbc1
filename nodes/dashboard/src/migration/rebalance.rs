//! Rebalancing: which slots to move where so every group holds 1024/n slots (Codis'
//! `SlotsRebalance`, same plan for the same model, so operators moving from Codis see the moves
//! they expect).
//!
//! Slots already migrating count for their target. Offline slots go, one by one, to the group
//! holding the fewest; then the largest group gives its highest-numbered idle slot to the
//! smallest until no group is above 1024/n (rounded down) with one below it rounded up. The
//! slots collected are handed out in ascending order to the receiving groups in group order, so
//! each group receives contiguous runs where possible.

use std::collections::BTreeMap;

use model::{ActionState, GroupId, SlotId};

use crate::model::Model;

/// Why no plan can be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebalanceError {
    /// No group has a server.
    #[error("no group has a server: add a group and a server first")]
    NoGroup,
}

/// The moves that balance `model`: slot → new group, in slot order.
pub fn plan(model: &Model) -> Result<BTreeMap<SlotId, GroupId>, RebalanceError> {
    let groups: Vec<GroupId> =
        model.groups.values().filter(|group| !group.servers.is_empty()).map(|group| group.id).collect();
    if groups.is_empty() {
        return Err(RebalanceError::NoGroup);
    }
    let count = groups.len();
    let total = model.slots.len();
    let (lower, upper) = (total / count, total.div_ceil(count));
    let mut size: BTreeMap<GroupId, usize> = groups.iter().map(|group| (*group, 0)).collect();
    let mut idle: BTreeMap<GroupId, Vec<SlotId>> = BTreeMap::new();
    let mut offline = Vec::new();
    for slot in &model.slots {
        if slot.action.state != ActionState::Nothing {
            if let Some(size) = size.get_mut(&slot.action.target_id) {
                *size += 1;
            }
        } else if let Some(size) = size.get_mut(&slot.group_id) {
            *size += 1;
            idle.entry(slot.group_id).or_default().push(slot.id);
        } else {
            // Group 0, or a group without servers.
            offline.push(slot.id);
        }
    }
    let smallest = |size: &BTreeMap<GroupId, usize>| {
        size.iter().min_by_key(|(group, size)| (**size, **group)).map(|(group, _)| *group)
    };
    let largest = |size: &BTreeMap<GroupId, usize>| {
        size.iter().max_by_key(|(group, size)| (**size, **group)).map(|(group, _)| *group)
    };
    let mut receiving: BTreeMap<GroupId, usize> = BTreeMap::new();
    let mut moved = Vec::new();
    for slot in offline {
        let Some(dest) = smallest(&size) else { break };
        *size.entry(dest).or_default() += 1;
        *receiving.entry(dest).or_default() += 1;
        moved.push(slot);
    }
    while let (Some(from), Some(dest)) = (largest(&size), smallest(&size)) {
        let (from_size, dest_size) = (size[&from], size[&dest]);
        if from_size <= lower || dest_size >= upper || from_size - dest_size <= 1 {
            break;
        }
        let Some(slot) = idle.get_mut(&from).and_then(Vec::pop) else { break };
        *size.entry(from).or_default() -= 1;
        *size.entry(dest).or_default() += 1;
        *receiving.entry(dest).or_default() += 1;
        moved.push(slot);
    }
    moved.sort();
    let mut slots = moved.into_iter();
    let mut plan = BTreeMap::new();
    for (group, count) in receiving {
        for slot in slots.by_ref().take(count) {
            plan.insert(slot, group);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use model::{Group, GroupServer, SlotAction};

    use super::*;

    fn with_groups(ids: &[u32]) -> Model {
        let mut model = Model::empty();
        for id in ids {
            let server = GroupServer { addr: format!("s{id}:6379"), ..GroupServer::default() };
            model.groups.insert(GroupId(*id), Group { id: GroupId(*id), servers: vec![server], ..Group::default() });
        }
        model
    }

    fn apply(model: &mut Model, plan: &BTreeMap<SlotId, GroupId>) {
        for (slot, group) in plan {
            model.slots[slot.index()].group_id = *group;
        }
    }

    fn sizes(model: &Model) -> BTreeMap<GroupId, usize> {
        let mut sizes = BTreeMap::new();
        for slot in &model.slots {
            *sizes.entry(slot.group_id).or_default() += 1;
        }
        sizes
    }

    #[test]
    fn one_group_gets_every_offline_slot() {
        let model = with_groups(&[1]);
        let plan = plan(&model).unwrap();
        assert_eq!(plan.len(), 1024);
        assert!(plan.values().all(|group| *group == GroupId(1)));
    }

    #[test]
    fn two_groups_split_evenly_in_two_runs() {
        let mut model = with_groups(&[1, 2]);
        let first = plan(&model).unwrap();
        apply(&mut model, &first);
        assert_eq!(sizes(&model), BTreeMap::from([(GroupId(1), 512), (GroupId(2), 512)]));
        // Contiguous halves: group 1 the low slots, group 2 the high ones.
        assert_eq!(first[&SlotId::new(0).unwrap()], GroupId(1));
        assert_eq!(first[&SlotId::new(1023).unwrap()], GroupId(2));
        assert!(plan(&model).unwrap().is_empty(), "balanced: nothing to move");
    }

    #[test]
    fn everything_in_one_of_two_moves_half() {
        let mut model = with_groups(&[1, 2]);
        for slot in &mut model.slots {
            slot.group_id = GroupId(1);
        }
        let moves = plan(&model).unwrap();
        assert_eq!(moves.len(), 512);
        assert!(moves.values().all(|group| *group == GroupId(2)));
        // The donor gives its highest-numbered slots.
        assert_eq!(moves.keys().next(), Some(&SlotId::new(512).unwrap()));
    }

    #[test]
    fn one_to_three_groups_and_actions_count_for_their_target() {
        let mut model = with_groups(&[1, 2, 3]);
        for slot in &mut model.slots {
            slot.group_id = GroupId(1);
        }
        model.slots[0].action = SlotAction { index: 1, state: ActionState::Pending, target_id: GroupId(3) };
        let moves = plan(&model).unwrap();
        assert!(!moves.contains_key(&SlotId::new(0).unwrap()), "a slot with an action is not planned again");
        apply(&mut model, &moves);
        model.slots[0].group_id = GroupId(3);
        let sizes = sizes(&model);
        assert!(sizes.values().all(|size| (341..=342).contains(size)), "{sizes:?}");
    }

    #[test]
    fn no_group_no_plan() {
        assert_eq!(plan(&Model::empty()), Err(RebalanceError::NoGroup));
    }
}
