//! Random choices of members, with Redis' rules for the `count` argument (`HRANDFIELD`,
//! `SRANDMEMBER`, `SPOP`): none means one member; a positive count means distinct members (all of
//! them if the count reaches the size); a negative count means that many picks, repeats allowed.

use net::Rng;
use net::rand::Rng as _;
use net::rand::seq::index;

use crate::error::CmdError;

/// The largest magnitude of a negative count. Redis would build any such reply, however large; a
/// reply of a billion picks exhausts memory, so larger counts are refused.
pub(crate) const MAX_REPEATED_PICKS: u64 = 10_000_000;

/// A count argument, checked.
pub(crate) fn count(arg: &[u8]) -> Result<i64, CmdError> {
    let count = crate::args::int(arg)?;
    if count == i64::MIN || count.unsigned_abs() > MAX_REPEATED_PICKS && count < 0 {
        return Err(CmdError::message(format!(
            "ERR value is out of range: a negative count may ask for at most {MAX_REPEATED_PICKS} members"
        )));
    }
    Ok(count)
}

/// The positions to reply with for `count` over a collection of `len` members, or `None` when no
/// count was given (the caller picks one member with [`one`]).
pub(crate) fn picks(len: usize, count: Option<i64>, rng: &mut Rng) -> Option<Vec<usize>> {
    let count = count?;
    if len == 0 || count == 0 {
        return Some(Vec::new());
    }
    if count < 0 {
        let picks = count.unsigned_abs() as usize;
        return Some((0..picks).map(|_| rng.random_range(0..len)).collect());
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count >= len {
        return Some((0..len).collect());
    }
    Some(index::sample(rng, len, count).into_vec())
}

/// One random position in a collection of `len > 0` members.
pub(crate) fn one(len: usize, rng: &mut Rng) -> usize {
    if len == 0 { 0 } else { rng.random_range(0..len) }
}
