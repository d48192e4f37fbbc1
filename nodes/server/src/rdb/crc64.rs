//! Redis' CRC-64: the "Jones" polynomial, reflected, initial value 0, no final xor (Redis'
//! `src/crc64.c`). It seals `DUMP` payloads and RDB files, so it must agree with Redis bit for bit.

/// The Jones polynomial (0xad93d23594c935a9) bit-reversed, for the reflected (LSB-first) form.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

/// Eight tables for slicing-by-8: a payload of a few megabytes is checked in about a millisecond
/// instead of eight, and `RESTORE` and `DUMP` run under the server's one lock.
static TABLES: [[u64; 256]; 8] = build_tables();

const fn build_tables() -> [[u64; 256]; 8] {
    let mut tables = [[0u64; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut byte = 0;
    while byte < 256 {
        let mut slice = 1;
        while slice < 8 {
            let previous = tables[slice - 1][byte];
            tables[slice][byte] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            slice += 1;
        }
        byte += 1;
    }
    tables
}

/// Continues the CRC `crc` over `bytes` (start with 0).
pub fn update(mut crc: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mixed = crc ^ u64::from_le_bytes(word);
        let lane = mixed.to_le_bytes();
        crc = TABLES[7][lane[0] as usize]
            ^ TABLES[6][lane[1] as usize]
            ^ TABLES[5][lane[2] as usize]
            ^ TABLES[4][lane[3] as usize]
            ^ TABLES[3][lane[4] as usize]
            ^ TABLES[2][lane[5] as usize]
            ^ TABLES[1][lane[6] as usize]
            ^ TABLES[0][lane[7] as usize];
    }
    for &byte in chunks.remainder() {
        crc = TABLES[0][((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The CRC-64 of `bytes`, as Redis' `crc64(0, bytes, len)` computes it.
pub fn crc64(bytes: &[u8]) -> u64 {
    update(0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit by bit, straight from the definition: what the tables must agree with.
    fn reference(bytes: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &byte in bytes {
            crc ^= u64::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn matches_redis_check_value() {
        // Redis' crc64.c self-test: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn slicing_agrees_with_the_bitwise_definition() {
        let data: Vec<u8> = (0..1000u32).map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 999, 1000] {
            assert_eq!(crc64(&data[..len]), reference(&data[..len]), "length {len}");
        }
        let (head, tail) = data.split_at(333);
        assert_eq!(update(crc64(head), tail), crc64(&data), "continuing equals one pass");
    }
}
