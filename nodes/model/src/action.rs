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
