//! A stored key: up to 22 bytes inline, longer ones on the heap, 24 bytes either way.
//!
//! Keys are what every lookup compares, and the comparison is a cache miss whenever the bytes
//! live in their own heap block. Real keys are mostly short (`user:1234567:profile` is 20 bytes,
//! redis-benchmark's `counter:000000012345` too), so keeping 22 bytes next to the entry spares
//! both the miss and an allocation where a 16-byte inline buffer would spill.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// How many bytes a key may hold without a heap block.
pub const INLINE: usize = 22;

/// A key's bytes (see the module documentation).
#[derive(Clone)]
pub enum Key {
    /// `len` bytes of `bytes`.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, then zeros.
        bytes: [u8; INLINE],
    },
    /// A longer key.
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<Key>() == 24);

impl Key {
    /// The empty key (the lower bound of a range of keys).
    pub const fn new() -> Key {
        Key::Inline { len: 0, bytes: [0; INLINE] }
    }

    /// A key holding a copy of `key`.
    pub fn from_slice(key: &[u8]) -> Key {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline { len: key.len() as u8, bytes }
        } else {
            Key::Heap(key.into())
        }
    }

    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }

    /// Heap bytes a key of `len` bytes holds (the size `malloc` gets asked for).
    pub fn heap_len(len: usize) -> usize {
        if len > INLINE { len } else { 0 }
    }
}

impl Default for Key {
    fn default() -> Key {
        Key::new()
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_stay_inline_and_long_ones_spill() {
        for len in [0, 1, 16, 17, INLINE, INLINE + 1, 100] {
            let bytes: Vec<u8> = (0..len).map(|index| index as u8 + 1).collect();
            let key = Key::from_slice(&bytes);
            assert_eq!(key.as_slice(), &bytes[..]);
            assert_eq!(matches!(key, Key::Heap(_)), len > INLINE, "{len} bytes");
            assert_eq!(Key::heap_len(len) > 0, len > INLINE);
        }
    }

    #[test]
    fn order_and_equality_are_the_bytes_whatever_the_storage() {
        let short = Key::from_slice(b"abc");
        let long = Key::from_slice(&[b'a'; 40]);
        assert!(long < short);
        assert!(Key::new() < short);
        assert_eq!(Key::from_slice(b"abc"), short);
        assert_ne!(Key::from_slice(b"abc\0"), short);
    }
}
