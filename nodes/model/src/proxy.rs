//! The proxy's registration record.

use serde::{Deserialize, Serialize};

use crate::json::is_zero;

/// A proxy as it describes itself (`GET /api/proxy/model`) and as the dashboard stores it at
/// `/codis3/<product>/proxy/proxy-<token>` (Codis' `models.Proxy`).
///
/// The token is stable across restarts on the same host and ports, so a restarted proxy is
/// recognised as the same proxy and re-onlined rather than registered twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxy {
    /// Assigned by the dashboard (one more than the highest so far).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: u64,
    /// The proxy's identity.
    pub token: String,
    /// When it started, as text.
    #[serde(default)]
    pub start_time: String,
    /// Its admin HTTP address.
    pub admin_addr: String,
    /// `tcp`, `tcp4`, `tcp6`, `unix` or `unixpacket`.
    #[serde(default)]
    pub proto_type: String,
    /// The address clients connect to.
    pub proxy_addr: String,
    /// Where it registers for client-side discovery, if anywhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jodis_path: String,
    /// The product it serves.
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
    /// Its host name.
    #[serde(default)]
    pub hostname: String,
    /// Its datacenter, for choosing replicas to read from.
    #[serde(default)]
    pub datacenter: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_json_matches_codis() {
        let proxy = Proxy {
            id: 1,
            token: "cc7a".into(),
            start_time: "2026-11-22 10:00:00".into(),
            admin_addr: "10.0.0.9:11080".into(),
            proto_type: "tcp4".into(),
            proxy_addr: "10.0.0.9:19000".into(),
            jodis_path: String::new(),
            product_name: "codis-demo".into(),
            pid: 42,
            pwd: "/srv".into(),
            sys: "Linux".into(),
            hostname: "box".into(),
            datacenter: "dc1".into(),
        };
        let text = serde_json::to_string(&proxy).unwrap();
        assert_eq!(
            text,
            r#"{"id":1,"token":"cc7a","start_time":"2026-11-22 10:00:00","admin_addr":"10.0.0.9:11080","proto_type":"tcp4","proxy_addr":"10.0.0.9:19000","product_name":"codis-demo","pid":42,"pwd":"/srv","sys":"Linux","hostname":"box","datacenter":"dc1"}"#
        );
        assert_eq!(serde_json::from_str::<Proxy>(&text).unwrap(), proxy);
    }
}
