//! Groups of servers: one master and its replicas.

use serde::{Deserialize, Serialize};

use crate::action::ActionState;
use crate::json::{is_zero, null_as_empty};

/// A group number. Real groups are numbered 1 to [`GroupId::MAX`]; 0 stands for "no group" (an
/// offline slot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub u32);

impl GroupId {
    /// The highest group number Codis allows (`MaxGroupId`).
    pub const MAX: u32 = 9999;

    /// Whether this names a real group (1 ..= 9999).
    pub fn is_valid(self) -> bool {
        (1..=Self::MAX).contains(&self.0)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A step of a multi-step operation on a group or server (promotion, replica sync), stored so a
/// restarted dashboard can resume it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAction {
    /// Order among pending actions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index: u64,
    /// Where the action stands.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub state: ActionState,
}

/// One server of a group (Codis' `models.GroupServer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupServer {
    /// The server's `host:port`, unique across the product.
    #[serde(rename = "server")]
    pub addr: String,
    /// The datacenter it runs in, for read-preference and failover choices.
    #[serde(default)]
    pub datacenter: String,
    /// A replica sync action on this server.
    #[serde(default)]
    pub action: ServerAction,
    /// Whether proxies may read from it when it is a replica.
    #[serde(default)]
    pub replica_group: bool,
}

/// A group as the dashboard stores it at `/codis3/<product>/group/group-NNNN` (Codis'
/// `models.Group`). `servers[0]` is the master.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group.
    pub id: GroupId,
    /// Master first, then replicas.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub servers: Vec<GroupServer>,
    /// A promotion in progress.
    #[serde(default)]
    pub promoting: ServerAction,
    /// Set when the group's layout changed but proxies have not been told yet.
    #[serde(default)]
    pub out_of_sync: bool,
    /// Bumped by each promotion; servers are told it (`EPOCH`), and a master told of a newer
    /// epoch than its own refuses writes. Not in Codis.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// The dashboard does not fail this group over by itself (manual promotion still works).
    /// Not in Codis.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failover_disabled: bool,
    /// During a promotion, the replica chosen, stored before it is told to take over, so a
    /// resumed promotion goes on with the same one. Not in Codis.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub promoting_to: String,
}

impl Group {
    /// The master's address, if the group has any server.
    pub fn master(&self) -> Option<&str> {
        self.servers.first().map(|server| server.addr.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn group_json_matches_codis() {
        let group = Group {
            id: GroupId(1),
            servers: vec![
                GroupServer { addr: "10.0.0.1:6379".into(), datacenter: "dc1".into(), ..GroupServer::default() },
                GroupServer {
                    addr: "10.0.0.2:6379".into(),
                    datacenter: "dc1".into(),
                    action: ServerAction { index: 3, state: ActionState::Syncing },
                    replica_group: true,
                },
            ],
            promoting: ServerAction::default(),
            out_of_sync: false,
            epoch: 0,
            failover_disabled: false,
            promoting_to: String::new(),
        };
        let expected = r#"{
    "id": 1,
    "servers": [
        {
            "server": "10.0.0.1:6379",
            "datacenter": "dc1",
            "action": {},
            "replica_group": false
        },
        {
            "server": "10.0.0.2:6379",
            "datacenter": "dc1",
            "action": {
                "index": 3,
                "state": "syncing"
            },
            "replica_group": true
        }
    ],
    "promoting": {},
    "out_of_sync": false
}"#;
        assert_eq!(String::from_utf8(json::encode(&group).unwrap()).unwrap(), expected);
        assert_eq!(serde_json::from_str::<Group>(expected).unwrap(), group);
        assert_eq!(group.master(), Some("10.0.0.1:6379"));
        // Go stores an empty server list as `null`.
        let empty: Group =
            serde_json::from_str(r#"{"id":2,"servers":null,"promoting":{},"out_of_sync":false}"#).unwrap();
        assert_eq!(empty.master(), None);
    }

    #[test]
    fn group_ids_are_bounded() {
        assert!(GroupId(1).is_valid());
        assert!(GroupId(9999).is_valid());
        assert!(!GroupId(0).is_valid());
        assert!(!GroupId(10000).is_valid());
    }
}
