//! LZF, the compression RDB uses for strings (Redis' `lzf_c.c` and `lzf_d.c`, liblzf 3.6).
//!
//! The compressor follows liblzf's algorithm step for step (its hash function, `VERY_FAST`
//! re-hashing after a match, the limits on literal runs, offsets and match lengths, and where it
//! gives up when the output would not fit) because `DUMP` output is compared byte for byte with
//! Redis'. The one difference: liblzf leaves its hash table uninitialised (stale entries can only
//! produce a valid match elsewhere), ours starts empty on every call, which is what a fresh table
//! in Redis gives.
//!
//! Compressed format: `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` a back reference of
//! L+2 bytes at distance o+1; `111ooooo LLLLLLLL oooooooo` the same with length L+9.

use std::cell::RefCell;

/// `HLOG`: the hash table has 2^16 slots.
const HASH_LOG: u32 = 16;
const HASH_SIZE: usize = 1 << HASH_LOG;
/// Longest literal run one control byte announces.
const MAX_LITERAL: usize = 1 << 5;
/// Farthest back a reference can point.
const MAX_OFFSET: usize = 1 << 13;
/// Longest match one reference encodes.
const MAX_REFERENCE: usize = (1 << 8) + (1 << 3);
/// The most output one input byte of compressed data can produce (a 3-byte reference of 264
/// bytes): bounds what a decompression may allocate, whatever length the payload claims.
pub const MAX_EXPANSION: usize = 88;

/// The hash table: a position per slot, tagged with the call that wrote it so that the table is
/// reused without being cleared (clearing 2^16 slots per string would dominate `DUMP` of a hash
/// with many long fields, each of which is compressed on its own).
struct Table {
    slots: Vec<u64>,
    generation: u32,
}

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table { slots: Vec::new(), generation: 0 }) };
}

/// liblzf's hash of the three bytes packed in `hash` (`IDX` with `VERY_FAST`).
fn slot_of(hash: u32) -> usize {
    ((hash >> (3 * 8 - HASH_LOG)).wrapping_sub(hash.wrapping_mul(5)) as usize) & (HASH_SIZE - 1)
}

/// Compresses `input` into at most `limit` bytes, or `None` if it does not fit (or is empty), as
/// `lzf_compress(input, len, out, limit)` does.
pub fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    if input.is_empty() || limit == 0 || u32::try_from(input.len()).is_err() {
        return None;
    }
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        if table.slots.is_empty() {
            table.slots = vec![0; HASH_SIZE];
        }
        table.generation = table.generation.wrapping_add(1);
        if table.generation == 0 {
            table.slots.fill(0);
            table.generation = 1;
        }
        let generation = table.generation;
        compress_with(input, limit, &mut table.slots, generation)
    })
}

fn compress_with(input: &[u8], limit: usize, slots: &mut [u64], generation: u32) -> Option<Vec<u8>> {
    let tag = u64::from(generation) << 32;
    let lookup = |slots: &[u64], slot: usize| -> Option<usize> {
        let entry = slots[slot];
        (entry >> 32 == u64::from(generation)).then_some((entry & 0xffff_ffff) as usize)
    };
    let len = input.len();
    let mut out = vec![0u8; limit];
    // `op` is the next output position; `out[op - lit - 1]` is the control byte of the run.
    let mut op = 1usize;
    let mut lit = 0usize;
    let mut ip = 0usize;
    let mut hash = if len >= 2 { (u32::from(input[0]) << 8) | u32::from(input[1]) } else { 0 };
    while ip + 2 < len {
        hash = (hash << 8) | u32::from(input[ip + 2]);
        let slot = slot_of(hash);
        let reference = lookup(slots, slot);
        slots[slot] = tag | ip as u64;
        let matched = reference.filter(|&reference| {
            reference < ip
                && ip - reference - 1 < MAX_OFFSET
                && reference > 0
                && input[reference..reference + 3] == input[ip..ip + 3]
        });
        if let Some(reference) = matched {
            let offset = ip - reference - 1;
            let max_len = (len - ip - 2).min(MAX_REFERENCE);
            // The exact test liblzf makes before it commits to the reference.
            let undo = usize::from(lit == 0);
            if op + 4 >= limit && op - undo + 4 >= limit {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            op -= undo;
            // liblzf compares 16 bytes unrolled when more than 16 may match, then steps one
            // byte at a time up to `max_len`; the unrolled part can pass `max_len` by a byte or
            // two, and this reproduces where it stops.
            let mut matched_len = 2;
            let mut mismatch = false;
            if max_len > 16 {
                for _ in 0..16 {
                    matched_len += 1;
                    if input[reference + matched_len] != input[ip + matched_len] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    matched_len += 1;
                    if !(matched_len < max_len && input[reference + matched_len] == input[ip + matched_len]) {
                        break;
                    }
                }
            }
            let encoded = matched_len - 2;
            ip += 1;
            if encoded < 7 {
                out[op] = ((offset >> 8) + (encoded << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((offset >> 8) + (7 << 5)) as u8;
                out[op + 1] = (encoded - 7) as u8;
                op += 2;
            }
            out[op] = offset as u8;
            op += 1;
            lit = 0;
            op += 1;
            ip += encoded + 1;
            if ip + 2 >= len {
                break;
            }
            // VERY_FAST: hash the last two positions of the match.
            ip -= 2;
            hash = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
            hash = (hash << 8) | u32::from(input[ip + 2]);
            slots[slot_of(hash)] = tag | ip as u64;
            ip += 1;
            hash = (hash << 8) | u32::from(input[ip + 2]);
            slots[slot_of(hash)] = tag | ip as u64;
            ip += 1;
        } else {
            if op >= limit {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LITERAL {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > limit {
        return None;
    }
    while ip < len {
        lit += 1;
        // `op + 3 <= limit` above covers the at most three bytes left; longer tails were
        // written by the loop, which checks each byte.
        if op >= out.len() {
            return None;
        }
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LITERAL {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Decompresses `input`, which must expand to exactly `expected` bytes, as Redis' RDB loader
/// requires of `lzf_decompress`. `None` if the data is corrupt or has another length.
///
/// Redis compares `lzf_decompress`'s result, 0 on any error, with the expected length, so a
/// claimed length of 0 is accepted whatever the compressed bytes are; we keep that.
pub fn decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    if expected == 0 {
        return Some(Vec::new());
    }
    if expected / MAX_EXPANSION > input.len() {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected);
    let mut ip = 0;
    while ip < input.len() {
        let control = usize::from(input[ip]);
        ip += 1;
        if control < MAX_LITERAL {
            let run = control + 1;
            if out.len() + run > expected || ip + run > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + run]);
            ip += run;
        } else {
            let mut length = control >> 5;
            if ip >= input.len() {
                return None;
            }
            if length == 7 {
                length += usize::from(input[ip]);
                ip += 1;
                if ip >= input.len() {
                    return None;
                }
            }
            let distance = ((control & 0x1f) << 8) + usize::from(input[ip]) + 1;
            ip += 1;
            let length = length + 2;
            if out.len() + length > expected || distance > out.len() {
                return None;
            }
            let start = out.len() - distance;
            // Byte by byte: a reference may overlap what it produces (a run of one byte).
            for index in start..start + length {
                let byte = out[index];
                out.push(byte);
            }
        }
    }
    (out.len() == expected).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetition_and_round_trips() {
        let input = b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(10);
        let compressed = compress(&input, input.len() - 4).expect("repetitive input compresses");
        assert!(compressed.len() < input.len() / 4);
        assert_eq!(decompress(&compressed, input.len()), Some(input));
    }

    #[test]
    fn known_output() {
        // What Redis' DUMP of SET k aaaaaaaaaaaaaaaaaaaaaaaaa (25 'a') carries.
        let input = [b'a'; 25];
        assert_eq!(compress(&input, 21), Some(vec![0x01, b'a', b'a', 0xe0, 0x0c, 0x00, 0x01, b'a', b'a']));
    }

    #[test]
    fn gives_up_when_it_does_not_fit() {
        let input: Vec<u8> = (0..=255u8).collect();
        assert_eq!(compress(&input, input.len() - 4), None);
        assert_eq!(compress(b"", 10), None);
    }

    #[test]
    fn refuses_corrupt_input() {
        assert_eq!(decompress(&[0x05, b'a'], 6), None, "literal run past the input");
        assert_eq!(decompress(&[0x20, 0x00], 3), None, "reference before the start");
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 2), None, "output longer than claimed");
        assert_eq!(decompress(&[0x00, b'a'], 2), None, "output shorter than claimed");
        assert_eq!(decompress(&[0x00, b'a'], usize::MAX), None, "impossible claim");
        assert_eq!(decompress(&[0xff], 0), Some(Vec::new()), "Redis accepts anything as empty");
    }

    proptest! {
        #[test]
        fn round_trips(input in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 1..3000)) {
            if let Some(compressed) = compress(&input, input.len() + 64) {
                prop_assert_eq!(decompress(&compressed, input.len()), Some(input));
            }
        }

        #[test]
        fn never_panics_decompressing(input in proptest::collection::vec(any::<u8>(), 0..200), expected in 0usize..2000) {
            let _ = decompress(&input, expected);
        }
    }
}
