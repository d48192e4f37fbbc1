//! Intsets (Redis' `intset.c`): a set of integers as one sorted array, which RDB stores as one
//! opaque string: the width of each integer in bytes (u32 LE: 2, 4 or 8), the count (u32 LE),
//! then the integers, ascending, little endian.

use super::RdbError;

const HEADER: usize = 8;

fn corrupt(why: &'static str) -> RdbError {
    RdbError::Corrupt { what: "intset", why }
}

/// The intset of `sorted` (ascending, no duplicates) in the narrowest width that holds every
/// member, which is what Redis has for a set that only ever grew.
pub fn write(sorted: &[i64]) -> Vec<u8> {
    let fits = |low: i64, high: i64| sorted.iter().all(|value| (low..=high).contains(value));
    let width: usize = if fits(i64::from(i16::MIN), i64::from(i16::MAX)) {
        2
    } else if fits(i64::from(i32::MIN), i64::from(i32::MAX)) {
        4
    } else {
        8
    };
    let mut bytes = Vec::with_capacity(HEADER + width * sorted.len());
    bytes.extend_from_slice(&(width as u32).to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(sorted.len()).unwrap_or(u32::MAX).to_le_bytes());
    for value in sorted {
        bytes.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    bytes
}

/// Reads an intset, checking what Redis' deep `intsetValidateIntegrity` checks: a known width, a
/// size that matches the count, at least one member, and members strictly ascending.
pub fn parse(bytes: &[u8]) -> Result<Vec<i64>, RdbError> {
    if bytes.len() < HEADER {
        return Err(corrupt("shorter than its header"));
    }
    let width = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(corrupt("unknown width"));
    }
    let count = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let body = bytes.len() - HEADER;
    if body / width != count || !body.is_multiple_of(width) {
        return Err(corrupt("size differs from the count"));
    }
    if count == 0 {
        return Err(corrupt("empty"));
    }
    let shift = 64 - 8 * width as u32;
    let values: Vec<i64> = bytes[HEADER..]
        .chunks_exact(width)
        .map(|chunk| {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(chunk);
            ((u64::from_le_bytes(raw) << shift) as i64) >> shift
        })
        .collect();
    if values.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(corrupt("members not strictly ascending"));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_redis_writes() {
        // SADD s 1 2 -3 on redis-server 7.0: DUMP's intset.
        assert_eq!(write(&[-3, 1, 2]), b"\x02\x00\x00\x00\x03\x00\x00\x00\xfd\xff\x01\x00\x02\x00");
        assert_eq!(write(&[1, 70_000])[..4], [4, 0, 0, 0]);
        assert_eq!(write(&[i64::MIN])[..4], [8, 0, 0, 0]);
    }

    #[test]
    fn round_trips_every_width() {
        for values in [vec![-3, 1, 2], vec![-70_000, 5], vec![i64::MIN, 0, i64::MAX]] {
            assert_eq!(parse(&write(&values)), Ok(values));
        }
    }

    #[test]
    fn refuses_corruption() {
        let good = write(&[1, 2, 3]);
        let mut width = good.clone();
        width[0] = 3;
        assert!(parse(&width).is_err());
        let mut count = good.clone();
        count[4] = 4;
        assert!(parse(&count).is_err());
        let mut order = good.clone();
        order[8] = 9;
        assert!(parse(&order).is_err(), "out of order");
        let mut duplicate = good.clone();
        duplicate[10] = 1;
        assert!(parse(&duplicate).is_err(), "duplicate");
        assert!(parse(&write(&[])).is_err(), "empty");
        assert!(parse(&good[..good.len() - 1]).is_err());
    }
}
