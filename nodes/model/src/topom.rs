//! The dashboard's lock record.

use serde::{Deserialize, Serialize};

/// What the dashboard writes at `/codis3/<product>/topom` while it holds the product (Codis'
/// `models.Topom`). Proxies, the web page and the admin CLI read it to find the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topom {
    /// The dashboard's identity for this run.
    #[serde(default)]
    pub token: String,
    /// When it started, as text.
    #[serde(default)]
    pub start_time: String,
    /// Its REST address.
    pub admin_addr: String,
    /// The product it controls.
    pub product_name: String,
    /// Its process id.
    #[serde(default)]
    pub pid: u32,
    /// Its working directory.
    #[serde(default)]
    pub pwd: String,
    /// `uname -a` of its host.
    #[serde(default)]
    pub sys: String,
}
