//! The state of an action stored with a slot or a group's server: Codis' `models.Action*`, shared
//! by slot migrations and replica syncs, which store it under the same JSON names.

use serde::{Deserialize, Serialize};

/// The state of a slot's migration (Codis' `models.Action*` for slots).
///
/// A migration walks `Pending → Preparing → Prepared → Migrating → Finished`, each state stored in
/// the coordinator before it is pushed to the proxies, so a dashboard that crashes anywhere resumes
/// from what it stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionState {
    /// No action.
    #[default]
    #[serde(rename = "")]
    Nothing,
    /// Created, waiting for its turn.
    #[serde(rename = "pending")]
    Pending,
    /// Being announced: proxies stop reading the slot from replicas.
    #[serde(rename = "preparing")]
    Preparing,
    /// Every proxy holds the slot locked and points it at the target.
    #[serde(rename = "prepared")]
    Prepared,
    /// Keys are moving; proxies move a key on demand before serving it.
    #[serde(rename = "migrating")]
    Migrating,
    /// The source is empty; proxies are being told the plain new owner.
    #[serde(rename = "finished")]
    Finished,
    /// A replica is being (re)attached to its master (server actions only).
    #[serde(rename = "syncing")]
    Syncing,
    /// A replica sync action completed (server actions only).
    #[serde(rename = "synced")]
    Synced,
    /// A replica sync action failed (server actions only).
    #[serde(rename = "synced_failed")]
    SyncedFailed,
}

impl ActionState {
    /// Whether a group's promotion may move from this state to `next` (staying put included):
    /// `Nothing → Preparing → Prepared → Finished → Nothing`, or called off back to `Nothing`
    /// from any of them. The failover promotion's transitions, in one place.
    pub fn promotion_allows(self, next: ActionState) -> bool {
        use ActionState::{Finished, Nothing, Prepared, Preparing};
        self == next
            || next == Nothing
            || matches!((self, next), (Nothing, Preparing) | (Preparing, Prepared) | (Prepared, Finished))
    }

    /// Whether a group server's action (re-pointing a replica, Codis' `sync_action`) may be in
    /// this state: `Pending` (to do), `Syncing`, then `Synced` or `SyncedFailed`.
    pub fn is_server_action(self) -> bool {
        matches!(
            self,
            ActionState::Nothing
                | ActionState::Pending
                | ActionState::Syncing
                | ActionState::Synced
                | ActionState::SyncedFailed
        )
    }

    /// The state a slot's migration moves to from this one (`Finished` → `Nothing`: the slot is
    /// handed over), or `None` for a state that is not a slot migration's. The slot action's
    /// transitions, in one place: the dashboard only ever stores a slot's successor state.
    pub fn slot_successor(self) -> Option<ActionState> {
        match self {
            ActionState::Pending => Some(ActionState::Preparing),
            ActionState::Preparing => Some(ActionState::Prepared),
            ActionState::Prepared => Some(ActionState::Migrating),
            ActionState::Migrating => Some(ActionState::Finished),
            ActionState::Finished => Some(ActionState::Nothing),
            ActionState::Nothing | ActionState::Syncing | ActionState::Synced | ActionState::SyncedFailed => None,
        }
    }

    /// The name as stored (`""`, `"pending"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Nothing => "",
            ActionState::Pending => "pending",
            ActionState::Preparing => "preparing",
            ActionState::Prepared => "prepared",
            ActionState::Migrating => "migrating",
            ActionState::Finished => "finished",
            ActionState::Syncing => "syncing",
            ActionState::Synced => "synced",
            ActionState::SyncedFailed => "synced_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ActionState;

    #[test]
    fn a_slot_action_walks_its_states_once_and_ends() {
        let mut state = ActionState::Pending;
        let mut walked = vec![state];
        while let Some(next) = state.slot_successor() {
            walked.push(next);
            state = next;
        }
        use ActionState::*;
        assert_eq!(walked, [Pending, Preparing, Prepared, Migrating, Finished, Nothing]);
        for state in [Syncing, Synced, SyncedFailed] {
            assert_eq!(state.slot_successor(), None, "{state:?} is a server action's");
        }
    }

    #[test]
    fn a_promotion_walks_forward_or_is_called_off() {
        use ActionState::*;
        let walk = [Nothing, Preparing, Prepared, Finished, Nothing];
        assert!(walk.windows(2).all(|pair| pair[0].promotion_allows(pair[1])));
        assert!(Prepared.promotion_allows(Nothing), "called off");
        assert!(!Preparing.promotion_allows(Finished), "a step skipped");
        assert!(!Finished.promotion_allows(Prepared), "a step back");
        assert!(!Nothing.promotion_allows(Prepared), "a promotion starts preparing");
        assert!(!Migrating.is_server_action() && Synced.is_server_action());
    }
}
