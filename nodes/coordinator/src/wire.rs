//! The JSON of etcd's v3 gateway, the subset we speak: written by [`crate::etcd`] and read by
//! [`crate::gateway`], and the other way round.
//!
//! Measured against etcd 3.4: 64-bit integers travel as JSON strings (either form is accepted on
//! input); keys and values as padded standard base64; every field at its zero value is left out
//! (so a failed transaction has no `succeeded` at all); stream messages are `{"result": …}`
//! lines; errors are `{"error", "message", "code"}` with a gRPC code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kv::{self, KeyValue};

/// A 64-bit integer as etcd's gateway writes it (a string) and reads it (string or number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Int(pub i64);

impl Int {
    /// For `skip_serializing_if`: zero values are left out, as the gateway does.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(i64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(number) => Ok(Int(number)),
            Either::Text(text) => {
                text.parse().map(Int).map_err(|_| D::Error::custom(format!("{text:?} is not an integer")))
            }
        }
    }
}

/// Bytes as padded standard base64.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl B64 {
    /// For `skip_serializing_if`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Text bytes (keys are ASCII paths).
    pub fn text(text: &str) -> B64 {
        B64(text.as_bytes().to_vec())
    }

    /// As text; keys that are not UTF-8 are not ours.
    pub fn into_text(self) -> String {
        String::from_utf8(self.0).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|error| D::Error::custom(format!("illegal base64 data: {error}")))
    }
}

/// The header of every answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Header {
    /// The cluster: an unsigned 64-bit number (often past `i64::MAX`), kept as sent since
    /// nothing here reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<serde_json::Value>,
    /// The member that answered (the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<serde_json::Value>,
    /// The store's revision after the request.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub revision: Int,
    /// The raft term.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub raft_term: Int,
}

impl Header {
    /// The header our gateway sends at `revision`.
    pub fn at(revision: i64) -> Header {
        let one = Some(serde_json::Value::String("1".into()));
        Header { cluster_id: one.clone(), member_id: one, revision: Int(revision), raft_term: Int(1) }
    }
}

/// A key and its metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WireKv {
    /// The key.
    #[serde(default)]
    pub key: B64,
    /// Creation revision.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub create_revision: Int,
    /// Last change.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub mod_revision: Int,
    /// Changes since creation.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub version: Int,
    /// The value.
    #[serde(default, skip_serializing_if = "B64::is_empty")]
    pub value: B64,
    /// Its lease.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub lease: Int,
}

impl From<KeyValue> for WireKv {
    fn from(kv: KeyValue) -> WireKv {
        WireKv {
            key: B64(kv.key.into_bytes()),
            create_revision: Int(kv.create_revision),
            mod_revision: Int(kv.mod_revision),
            version: Int(kv.version),
            value: B64(kv.value),
            lease: Int(kv.lease),
        }
    }
}

impl From<WireKv> for KeyValue {
    fn from(kv: WireKv) -> KeyValue {
        KeyValue {
            key: kv.key.into_text(),
            value: kv.value.0,
            create_revision: kv.create_revision.0,
            mod_revision: kv.mod_revision.0,
            version: kv.version.0,
            lease: kv.lease.0,
        }
    }
}

/// `/v3/kv/range`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RangeRequest {
    /// The key (or the range's start).
    #[serde(default)]
    pub key: B64,
    /// The range's end (empty: the key alone).
    #[serde(default, skip_serializing_if = "B64::is_empty")]
    pub range_end: B64,
    /// Leave values out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keys_only: bool,
}

/// Its answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The header.
    #[serde(default)]
    pub header: Header,
    /// The keys found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kvs: Vec<WireKv>,
    /// How many.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub count: Int,
}

/// `/v3/kv/put`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key.
    #[serde(default)]
    pub key: B64,
    /// The value.
    #[serde(default)]
    pub value: B64,
    /// Its lease.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub lease: Int,
}

/// An answer that is only a header.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeaderResponse {
    /// The header.
    #[serde(default)]
    pub header: Header,
}

/// `/v3/kv/deleterange`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    /// The key.
    #[serde(default)]
    pub key: B64,
}

/// Its answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    /// The header.
    #[serde(default)]
    pub header: Header,
    /// Keys removed.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub deleted: Int,
}

/// A comparison of `/v3/kv/txn`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WireCompare {
    /// The key.
    #[serde(default)]
    pub key: B64,
    /// `CREATE`, `MOD`, `LEASE` (etcd also has `VERSION` and `VALUE`).
    #[serde(default)]
    pub target: String,
    /// `EQUAL` (the only one we use).
    #[serde(default)]
    pub result: String,
    /// For `CREATE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_revision: Option<Int>,
    /// For `MOD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<Int>,
    /// For `LEASE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Int>,
}

/// A request inside `/v3/kv/txn` (one field set).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RequestOp {
    /// A read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_range: Option<RangeRequest>,
    /// A write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_put: Option<PutRequest>,
    /// A removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_delete_range: Option<DeleteRangeRequest>,
}

/// `/v3/kv/txn`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TxnRequest {
    /// Conditions.
    #[serde(default)]
    pub compare: Vec<WireCompare>,
    /// Run if they hold.
    #[serde(default)]
    pub success: Vec<RequestOp>,
    /// Run otherwise.
    #[serde(default)]
    pub failure: Vec<RequestOp>,
}

/// One result inside a transaction's answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResponseOp {
    /// Of a read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_range: Option<RangeResponse>,
    /// Of a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_put: Option<HeaderResponse>,
    /// Of a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_delete_range: Option<DeleteRangeResponse>,
}

/// A transaction's answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TxnResponse {
    /// The header.
    #[serde(default)]
    pub header: Header,
    /// Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub succeeded: bool,
    /// One per op of the branch that ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseOp>,
}

/// `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/lease/revoke`, and their answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LeaseMessage {
    /// The header (answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    /// The lease.
    #[serde(rename = "ID", default, skip_serializing_if = "Int::is_zero")]
    pub id: Int,
    /// Its time to live in seconds (0 in a keep-alive answer: the lease is gone).
    #[serde(rename = "TTL", default, skip_serializing_if = "Int::is_zero")]
    pub ttl: Int,
}

/// A stream message: `{"result": …}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamMessage<T> {
    /// The message.
    pub result: T,
}

/// `/v3/watch`'s request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchRequest {
    /// Start a watch.
    #[serde(default)]
    pub create_request: Option<WatchCreateRequest>,
}

/// What to watch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchCreateRequest {
    /// The range's start.
    #[serde(default)]
    pub key: B64,
    /// The range's end.
    #[serde(default, skip_serializing_if = "B64::is_empty")]
    pub range_end: B64,
    /// The first revision to report.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub start_revision: Int,
}

/// One message of a watch stream.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchResponse {
    /// The header.
    #[serde(default)]
    pub header: Header,
    /// The watch was set up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// The watch ended (compaction, or refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canceled: bool,
    /// Set when cancelled because history was compacted.
    #[serde(default, skip_serializing_if = "Int::is_zero")]
    pub compact_revision: Int,
    /// Why it was cancelled, if said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cancel_reason: String,
    /// Changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WireEvent>,
}

/// A change in a watch stream.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WireEvent {
    /// `DELETE`, or left out for a write.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The key.
    #[serde(default)]
    pub kv: WireKv,
}

impl From<kv::Event> for WireEvent {
    fn from(event: kv::Event) -> WireEvent {
        WireEvent { kind: event.deleted.then(|| "DELETE".to_string()), kv: event.kv.into() }
    }
}

impl From<WireEvent> for kv::Event {
    fn from(event: WireEvent) -> kv::Event {
        kv::Event { deleted: event.kind.as_deref() == Some("DELETE"), kv: event.kv.into() }
    }
}

/// An error answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    #[serde(default)]
    pub error: String,
    /// The same.
    #[serde(default)]
    pub message: String,
    /// The gRPC code.
    #[serde(default)]
    pub code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_bytes_travel_as_etcd_writes_them() {
        let kv = WireKv {
            key: B64::text("foo"),
            create_revision: Int(2),
            mod_revision: Int(4),
            version: Int(3),
            value: B64::text("bar"),
            lease: Int(0),
        };
        assert_eq!(
            serde_json::to_string(&kv).unwrap(),
            r#"{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"3","value":"YmFy"}"#
        );
        let read: LeaseMessage = serde_json::from_str(r#"{"ID":2324035843503900183,"TTL":"10"}"#).unwrap();
        assert_eq!((read.id, read.ttl), (Int(2324035843503900183), Int(10)));
        let failed: TxnResponse = serde_json::from_str(
            r#"{"header":{"cluster_id":"17396213178776559965","member_id":"4598152467876782628","revision":"15"}}"#,
        )
        .unwrap();
        assert_eq!(failed.header.revision, Int(15));
        assert!(!failed.succeeded);
        assert!(serde_json::from_str::<PutRequest>(r#"{"key":"Zm9vLw"}"#).is_err(), "unpadded base64");
    }
}
