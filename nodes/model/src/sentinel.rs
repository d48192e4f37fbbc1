//! The sentinel set.

use serde::{Deserialize, Serialize};

use crate::json::null_as_empty;

/// The sentinels watching the product, stored at `/codis3/<product>/sentinel` (Codis'
/// `models.Sentinel`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentinel {
    /// Their addresses.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub servers: Vec<String>,
    /// Set when the sentinels have not been told the current groups yet.
    #[serde(default)]
    pub out_of_sync: bool,
}
