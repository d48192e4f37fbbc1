//! Which slot a key lives in.
//!
//! Exactly Codis' rule, in the server, the proxy and every tool, because a key hashed differently
//! in two places is a key that goes missing: the slot is the IEEE CRC-32 of the key's hash tag,
//! modulo 1024. The hash tag is the part between the first `{` and the first `}` after it; an empty
//! tag (`{}abc`) hashes the empty string, and a key without a complete tag hashes whole. (Redis
//! Cluster differs: CRC-16, 16384 slots, and an empty tag means the whole key.)

use serde::{Deserialize, Serialize};

/// How many slots a product has: Codis' `MaxSlotNum`.
pub const MAX_SLOT_NUM: usize = 1024;

/// A slot number, always below [`MAX_SLOT_NUM`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SlotId(u16);

impl SlotId {
    /// The slot numbered `id`, if it exists.
    pub fn new(id: u32) -> Option<SlotId> {
        u16::try_from(id).ok().filter(|id| usize::from(*id) < MAX_SLOT_NUM).map(SlotId)
    }

    /// The slot's number, for indexing per-slot tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Every slot, in order.
    pub fn all() -> impl Iterator<Item = SlotId> {
        (0..MAX_SLOT_NUM as u16).map(SlotId)
    }
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u32> for SlotId {
    type Error = String;

    fn try_from(id: u32) -> Result<Self, Self::Error> {
        SlotId::new(id).ok_or_else(|| format!("slot {id} is out of range [0, {MAX_SLOT_NUM})"))
    }
}

impl From<SlotId> for u32 {
    fn from(slot: SlotId) -> u32 {
        u32::from(slot.0)
    }
}

/// The hash tag of `key`, if it has one: the bytes between the first `{` and the first `}` after
/// it (possibly empty).
pub fn tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|byte| *byte == b'{')?;
    let after_open = &key[open + 1..];
    let close = after_open.iter().position(|byte| *byte == b'}')?;
    Some(&after_open[..close])
}

/// The bytes of `key` that decide its slot: the hash tag if the key has one, else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    tag(key).unwrap_or(key)
}

/// A key's CRC-32 (of its hash tag, or of the whole key) and whether it has a tag: what a server
/// needs to place a key in its slot and in the index of keys sharing a tag, computed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash {
    /// IEEE CRC-32 of [`hash_tag`].
    pub crc: u32,
    /// Whether the key has a hash tag (Codis indexes only tagged keys by tag).
    pub tagged: bool,
}

impl KeyHash {
    /// Hashes `key`.
    pub fn of(key: &[u8]) -> KeyHash {
        match tag(key) {
            Some(tag) => KeyHash { crc: crc32fast::hash(tag), tagged: true },
            None => KeyHash { crc: crc32fast::hash(key), tagged: false },
        }
    }

    /// The key's slot.
    pub fn slot(self) -> SlotId {
        // The modulus keeps the value below 1024, so the narrowing is exact.
        SlotId((self.crc % MAX_SLOT_NUM as u32) as u16)
    }
}

/// The slot `key` lives in.
pub fn slot_of(key: &[u8]) -> SlotId {
    KeyHash::of(key).slot()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_tags_follow_codis() {
        // Codis' own cases (pkg/proxy/mapper_test.go, TestHashSlot): key → what it hashes as.
        let cases: &[(&str, &str)] = &[
            ("{abc}", "abc"),
            ("{{{abc1}abc2}", "{{abc1"),
            ("abc1{abc2{abc3}", "abc2{abc3"),
            ("{{{{abc", "{{{{abc"),
            ("{{{{abc}", "{{{abc"),
            ("{{}{{abc", "{"),
            ("abc}{abc", "abc}{abc"),
            ("abc}{123}456", "123"),
            ("123{abc}456", "abc"),
            ("{}abc", ""),
            ("abc{}123", ""),
            ("123{456}", "456"),
        ];
        for (key, tag) in cases {
            assert_eq!(hash_tag(key.as_bytes()), tag.as_bytes(), "{key}");
            assert!(KeyHash::of(key.as_bytes()).tagged == super::tag(key.as_bytes()).is_some());
            assert_eq!(slot_of(key.as_bytes()), slot_of(tag.as_bytes()), "{key}");
        }
    }

    #[test]
    fn slots_are_ieee_crc32_mod_1024() {
        // Computed with Python's zlib.crc32(key) % 1024.
        let cases: &[(&[u8], u32)] = &[
            (b"", 0),
            (b"foo", 289),
            (b"bar", 170),
            (b"abc", 450),
            (b"{abc}", 450),
            (b"{}abc", 0),
            (b"{user1000}.following", 870), // the tag "user1000"
            (b"key:000000000001", 5),
            (b"\xff\x00binary", 297),
        ];
        for (key, slot) in cases {
            assert_eq!(u32::from(slot_of(key)), *slot, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn slot_ids_are_bounded_and_serialize_as_numbers() {
        assert_eq!(SlotId::new(1023).map(SlotId::index), Some(1023));
        assert_eq!(SlotId::new(1024), None);
        assert_eq!(SlotId::all().count(), MAX_SLOT_NUM);
        assert_eq!(serde_json::to_string(&SlotId::new(17)).unwrap(), "17");
        assert!(serde_json::from_str::<SlotId>("1024").is_err());
    }

    proptest! {
        #[test]
        fn keys_sharing_a_tag_share_a_slot(tag in "[^{}]*", a in ".*", b in ".*") {
            let first = format!("{}{{{tag}}}{a}", b.replace('{', ""));
            let second = format!("{{{tag}}}{b}");
            prop_assert_eq!(slot_of(first.as_bytes()), slot_of(second.as_bytes()));
        }

        #[test]
        fn every_key_has_a_slot_in_range(key in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(slot_of(&key).index() < MAX_SLOT_NUM);
        }
    }
}
