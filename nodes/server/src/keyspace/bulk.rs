//! [`Bulk`]: the bytes of every stored string, key and member.

use smallvec::SmallVec;

/// Owned bytes that keep up to 16 bytes inline: most keys (`redis-benchmark`'s `key:000000123456`
/// is 16) and short values need no heap allocation of their own.
pub type Bulk = SmallVec<[u8; 16]>;
