//! Product names and where a product's records live in the coordinator.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::group::GroupId;
use crate::slot_hash::SlotId;

/// The root of every product's records.
pub const CODIS_DIR: &str = "/codis3";

/// A product (cluster) name: Codis' rule `^\w[\w\.\-]*$`, ASCII word characters, dots and dashes,
/// not starting with a dot or dash. Enforced because the name becomes a path component.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductName(String);

/// Why a product name was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid product name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter, digit or '_'")]
pub struct ProductNameError {
    /// The refused name.
    pub name: String,
}

impl ProductName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<ProductName, ProductNameError> {
        let name = name.into();
        let word = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'_';
        let valid = match name.as_bytes() {
            [first, rest @ ..] => word(first) && rest.iter().all(|byte| word(byte) || *byte == b'.' || *byte == b'-'),
            [] => false,
        };
        if valid { Ok(ProductName(name)) } else { Err(ProductNameError { name }) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/codis3/<product>`.
    pub fn dir(&self) -> String {
        format!("{CODIS_DIR}/{}", self.0)
    }

    /// `/codis3/<product>/topom`: the dashboard lock.
    pub fn topom_path(&self) -> String {
        format!("{}/topom", self.dir())
    }

    /// `/codis3/<product>/slots`.
    pub fn slots_dir(&self) -> String {
        format!("{}/slots", self.dir())
    }

    /// `/codis3/<product>/slots/slot-NNNN`.
    pub fn slot_path(&self, slot: SlotId) -> String {
        format!("{}/slot-{:04}", self.slots_dir(), slot.index())
    }

    /// `/codis3/<product>/group`.
    pub fn groups_dir(&self) -> String {
        format!("{}/group", self.dir())
    }

    /// `/codis3/<product>/group/group-NNNN`.
    pub fn group_path(&self, group: GroupId) -> String {
        format!("{}/group-{:04}", self.groups_dir(), group.0)
    }

    /// `/codis3/<product>/proxy`.
    pub fn proxies_dir(&self) -> String {
        format!("{}/proxy", self.dir())
    }

    /// `/codis3/<product>/proxy/proxy-<token>`.
    pub fn proxy_path(&self, token: &str) -> String {
        format!("{}/proxy-{token}", self.proxies_dir())
    }

    /// `/codis3/<product>/sentinel`.
    pub fn sentinel_path(&self) -> String {
        format!("{}/sentinel", self.dir())
    }
}

impl TryFrom<String> for ProductName {
    type Error = ProductNameError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        ProductName::new(name)
    }
}

impl From<ProductName> for String {
    fn from(name: ProductName) -> String {
        name.0
    }
}

impl std::fmt::Display for ProductName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_codis_rule() {
        for good in ["codis-demo", "a", "_x", "9.1-b_c"] {
            assert!(ProductName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "ü", "../etc"] {
            assert!(ProductName::new(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ProductName>("\"a/b\"").is_err());
    }

    #[test]
    fn paths_match_codis_layout() {
        let product = ProductName::new("codis-demo").unwrap();
        assert_eq!(product.topom_path(), "/codis3/codis-demo/topom");
        assert_eq!(product.slot_path(SlotId::new(7).unwrap()), "/codis3/codis-demo/slots/slot-0007");
        assert_eq!(product.group_path(GroupId(12)), "/codis3/codis-demo/group/group-0012");
        assert_eq!(product.proxy_path("ab12"), "/codis3/codis-demo/proxy/proxy-ab12");
        assert_eq!(product.sentinel_path(), "/codis3/codis-demo/sentinel");
    }
}
