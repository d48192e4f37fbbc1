//! What the data costs in memory, counted as it changes.
//!
//! Redis' `used_memory` is what its allocator handed out. Reading a process-wide allocator
//! counter would make eviction depend on everything else in the process (other simulated hosts,
//! other tests), so a run would no longer be a function of its seed. Instead every value knows
//! its own footprint (inline size, heap blocks rounded as `malloc` rounds them, table capacity),
//! collections keep theirs up to date as they change, and each database keeps the sum. A test in
//! `prod/` holds the estimate against a counting allocator.

use std::mem::size_of;

use super::value::Bulk;

/// Bytes `malloc` hands out for a request of `size`: glibc adds an 8-byte header and rounds to
/// 16-byte granules, 32 at least.
pub fn allocation(size: usize) -> usize {
    if size == 0 { 0 } else { ((size + 8 + 15) & !15).max(32) }
}

/// Heap bytes of a `Bulk` beyond its inline part (it spills past 16 bytes).
pub fn heap_of(bulk: &Bulk) -> usize {
    if bulk.spilled() { allocation(bulk.capacity()) } else { 0 }
}

/// Bytes of a hash table (an `IndexMap`/`IndexSet`) with room for `capacity` entries of `entry`
/// bytes each: the entry vector, plus the index table (a power of two of 8-byte slots at most
/// 7/8 full, with one control byte per slot and a group of 16 more).
pub fn table(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    // hashbrown keeps 7/8 of a power of two usable (all but one slot below 8 slots).
    let slots =
        if capacity < 8 { (capacity + 1).next_power_of_two() } else { (capacity * 8).div_ceil(7).next_power_of_two() };
    allocation(capacity * (entry + size_of::<u64>())) + allocation(slots * (size_of::<usize>() + 1) + 16)
}

/// Bytes of a vector with room for `capacity` elements of `T`.
pub fn vector<T>(capacity: usize) -> usize {
    allocation(capacity * size_of::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_round_like_malloc() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 32);
        assert_eq!(allocation(24), 32);
        assert_eq!(allocation(25), 48);
        assert_eq!(allocation(32), 48);
        assert_eq!(heap_of(&Bulk::from_slice(b"short")), 0);
        assert_eq!(heap_of(&Bulk::from_slice(&[0; 32])), 48);
        assert!(table(1000, 80) > 1000 * 88);
    }
}
