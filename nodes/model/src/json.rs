//! JSON as Codis writes it: Go's `json.MarshalIndent(v, "", "    ")`, so records we store in a
//! coordinator are byte-for-byte what a Codis dashboard would have stored, and diffs of the
//! coordinator's files read the same.

use serde::Serialize;

/// Encodes `value` with 4-space indentation.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// Deserialises a Go slice that may have been stored as `null` (Go's nil slice) as empty.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let value: Option<Vec<T>> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or_default())
}

/// `omitempty` for numbers and flags: skip the field when it holds its zero value.
pub(crate) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
