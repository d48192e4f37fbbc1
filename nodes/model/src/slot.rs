//! Slots as the proxy routes them and as the dashboard stores them.

use serde::{Deserialize, Serialize};

pub use crate::action::ActionState;
use crate::group::GroupId;
use crate::json::{is_zero, null_as_empty};
use crate::slot_hash::SlotId;

/// How a proxy serves a key of a slot that is migrating (Codis' `forward_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ForwardMethod {
    /// Before forwarding, ask the source to move the key (and its tag family) to the target with
    /// `SLOTSMGRTTAGONE`, then send the request to the target.
    #[default]
    Sync,
    /// Run the request on the source through `SLOTSMGRT-EXEC-WRAPPER`, falling through to the target
    /// when the source no longer has the key.
    SemiAsync,
}

impl ForwardMethod {
    /// Parses the dashboard's `migration_method` setting (`sync` / `semi-async`, any case).
    pub fn parse(text: &str) -> Option<ForwardMethod> {
        match text.to_ascii_lowercase().as_str() {
            "sync" => Some(ForwardMethod::Sync),
            "semi-async" => Some(ForwardMethod::SemiAsync),
            _ => None,
        }
    }
}

impl TryFrom<u8> for ForwardMethod {
    type Error = String;

    fn try_from(code: u8) -> Result<Self, Self::Error> {
        match code {
            0 => Ok(ForwardMethod::Sync),
            1 => Ok(ForwardMethod::SemiAsync),
            other => Err(format!("unknown forward method {other} (0 = sync, 1 = semi-async)")),
        }
    }
}

impl From<ForwardMethod> for u8 {
    fn from(method: ForwardMethod) -> u8 {
        match method {
            ForwardMethod::Sync => 0,
            ForwardMethod::SemiAsync => 1,
        }
    }
}

/// One slot as a proxy serves it (Codis' `models.Slot`, the body of `fillslots`).
///
/// The dashboard derives it from the slot's [`SlotMapping`] and the groups: while a slot migrates,
/// `backend_addr` is the target's master and `migrate_from` the source's; `locked` holds every
/// request for the slot until the dashboard unlocks it (the prepare step of a migration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The slot.
    pub id: SlotId,
    /// Hold requests for this slot until unlocked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub locked: bool,
    /// The master that serves the slot (empty: the slot is offline).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend_addr: String,
    /// The group of `backend_addr`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub backend_addr_group_id: GroupId,
    /// While migrating: the source master that may still hold keys of the slot.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub migrate_from: String,
    /// The group of `migrate_from`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub migrate_from_group_id: GroupId,
    /// How to serve keys while migrating.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forward_method: ForwardMethod,
    /// Replicas that may serve reads, grouped by preference (same host, same datacenter, other).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub replica_groups: Vec<Vec<String>>,
    /// Writes are answered only once this many replicas have them (`WAIT`), so a failover
    /// loses no acknowledged write; 0: asynchronous replication, as in Redis. Not in Codis.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_replicas: u32,
    /// The failover epoch of `backend_addr`'s group (and its replicas): the proxy tells it to
    /// the servers it connects to, so a master superseded by a promotion refuses writes as soon
    /// as a proxy that knows reaches it. Not in Codis.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
}

/// A slot's migration action, as stored (`omitempty` on every field, as Codis).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotAction {
    /// Order among actions: the smallest active index is resumed first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index: u64,
    /// Where the migration stands.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub state: ActionState,
    /// The group the slot moves to.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target_id: GroupId,
}

/// A slot as the dashboard stores it at `/codis3/<product>/slots/slot-NNNN` (Codis'
/// `models.SlotMapping`). Group 0 means the slot is offline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMapping {
    /// The slot.
    pub id: SlotId,
    /// The group that owns it.
    pub group_id: GroupId,
    /// Its migration, if any.
    #[serde(default)]
    pub action: SlotAction,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn slot(id: u32) -> SlotId {
        SlotId::new(id).expect("in range")
    }

    #[test]
    fn slot_json_matches_codis() {
        let idle = Slot {
            id: slot(3),
            backend_addr: "10.0.0.1:6379".into(),
            backend_addr_group_id: GroupId(1),
            ..Slot::default()
        };
        assert_eq!(
            serde_json::to_string(&idle).unwrap(),
            r#"{"id":3,"backend_addr":"10.0.0.1:6379","backend_addr_group_id":1}"#
        );
        let migrating = Slot {
            id: slot(3),
            locked: true,
            backend_addr: "b:6379".into(),
            backend_addr_group_id: GroupId(2),
            migrate_from: "a:6379".into(),
            migrate_from_group_id: GroupId(1),
            forward_method: ForwardMethod::SemiAsync,
            replica_groups: vec![vec!["r:6379".into()]],
            sync_replicas: 0,
            epoch: 0,
        };
        let text = serde_json::to_string(&migrating).unwrap();
        assert_eq!(
            text,
            r#"{"id":3,"locked":true,"backend_addr":"b:6379","backend_addr_group_id":2,"migrate_from":"a:6379","migrate_from_group_id":1,"forward_method":1,"replica_groups":[["r:6379"]]}"#
        );
        assert_eq!(serde_json::from_str::<Slot>(&text).unwrap(), migrating);
        let offline: Slot = serde_json::from_str(r#"{"id":5,"replica_groups":null}"#).unwrap();
        assert_eq!(offline, Slot { id: slot(5), ..Slot::default() });
    }

    #[test]
    fn slot_mapping_json_matches_codis() {
        let idle = SlotMapping { id: slot(7), group_id: GroupId(2), action: SlotAction::default() };
        assert_eq!(
            String::from_utf8(json::encode(&idle).unwrap()).unwrap(),
            "{\n    \"id\": 7,\n    \"group_id\": 2,\n    \"action\": {}\n}"
        );
        let moving = SlotMapping {
            id: slot(7),
            group_id: GroupId(2),
            action: SlotAction { index: 12, state: ActionState::Migrating, target_id: GroupId(3) },
        };
        let text = serde_json::to_string(&moving).unwrap();
        assert_eq!(text, r#"{"id":7,"group_id":2,"action":{"index":12,"state":"migrating","target_id":3}}"#);
        assert_eq!(serde_json::from_str::<SlotMapping>(&text).unwrap(), moving);
        // Codis writes an empty action as `{}` and older records may omit it.
        let bare: SlotMapping = serde_json::from_str(r#"{"id":7,"group_id":0}"#).unwrap();
        assert_eq!(bare.action, SlotAction::default());
        assert!(serde_json::from_str::<SlotMapping>(r#"{"id":7,"group_id":0,"action":{"state":"flying"}}"#).is_err());
    }

    #[test]
    fn forward_methods_parse_from_config_names() {
        assert_eq!(ForwardMethod::parse("SEMI-ASYNC"), Some(ForwardMethod::SemiAsync));
        assert_eq!(ForwardMethod::parse("sync"), Some(ForwardMethod::Sync));
        assert_eq!(ForwardMethod::parse("async"), None);
        for state in [ActionState::Nothing, ActionState::Pending, ActionState::SyncedFailed] {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
    }
}
