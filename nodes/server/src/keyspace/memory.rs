//! What the data costs in memory, counted as it changes.
//!
//! Redis' `used_memory` is what its allocator handed out. Reading a process-wide allocator
//! counter would make eviction depend on everything else in the process (other simulated hosts,
//! other tests), so a run would no longer be a function of its seed. Instead every value knows
//! its own footprint (inline size, heap blocks rounded as `malloc` rounds them, table capacity),
//! collections keep theirs up to date as they change, and each database keeps the sum. The test
//! `tests/memory.rs` holds the estimate against jemalloc's own count.

use std::mem::size_of;

use super::bulk::Bulk;

/// Bytes the allocator hands out for a request of `size`: jemalloc's size class (the allocator
/// `codis-server` links, as redis-server does). Classes are 8, then multiples of 16 up to 128,
/// then four per doubling: a size in (2^k, 2^(k+1)] rounds up to a multiple of 2^(k-2). No
/// per-block header.
pub fn allocation(size: usize) -> usize {
    match size {
        0 => 0,
        1..=8 => 8,
        9..=128 => size.next_multiple_of(16),
        _ => {
            let k = usize::BITS - 1 - (size - 1).leading_zeros();
            size.next_multiple_of(1 << (k - 2))
        }
    }
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
        let classes = [(0, 0), (1, 8), (8, 8), (9, 16), (17, 32), (32, 32), (33, 48), (128, 128), (129, 160)];
        for (size, class) in classes {
            assert_eq!(allocation(size), class, "{size}");
        }
        let classes = [(257, 320), (4096, 4096), (4097, 5120), (14337, 16384), (16385, 20480), (1 << 20, 1 << 20)];
        for (size, class) in classes {
            assert_eq!(allocation(size), class, "{size}");
        }
        assert_eq!(heap_of(&Bulk::from_slice(b"short")), 0);
        assert_eq!(heap_of(&Bulk::from_slice(&[0; 32])), 32);
        assert!(table(1000, 80) > 1000 * 88);
    }
}
