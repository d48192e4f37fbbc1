//! Parsing command arguments the way Redis does, with Redis' errors.

use crate::error::CmdError;

/// Argument `index` of `request`, or empty when absent (arity was checked before handlers run,
/// so absent arguments are optional ones).
pub fn arg(request: &resp::Request, index: usize) -> &[u8] {
    request.arg(index).unwrap_or_default()
}

/// Whether `arg` equals `word`, ignoring ASCII case (option names: `NX`, `withscores`, …).
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A 64-bit integer argument (`string2ll`).
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    resp::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A non-negative integer argument (counts, indexes of databases…), same error as [`int`].
pub fn uint(arg: &[u8]) -> Result<u64, CmdError> {
    int(arg).and_then(|value| u64::try_from(value).map_err(|_| CmdError::NotInteger))
}

/// An optional count argument that must not be negative (`LPOP`, `SPOP`, `ZPOPMIN`), with Redis'
/// error for a negative one.
pub fn optional_count(arg: Option<&[u8]>) -> Result<Option<usize>, CmdError> {
    arg.map(|arg| {
        let count = int(arg)?;
        usize::try_from(count).map_err(|_| CmdError::other("ERR value is out of range, must be positive"))
    })
    .transpose()
}

/// A float argument as Redis' `string2d`/`strtod` reads it: decimal or scientific, `inf`, with an
/// optional sign; no spaces, no NaN.
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

/// Parses a float as Redis does, or `None`.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // strtod reads decimal and scientific notation; Rust's parser also accepts "nan" and
            // "infinity" spellings, handled above or refused below.
            if !text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
                return None;
            }
            text.parse().ok()?
        }
    };
    (!value.is_nan()).then_some(value)
}

/// A database index argument: an integer within `0..databases` (`SELECT`, `MOVE`; `SWAPDB` words
/// its parse error differently).
pub fn db_index(arg: &[u8], databases: usize) -> Result<usize, CmdError> {
    let index = int(arg)?;
    usize::try_from(index).ok().filter(|index| *index < databases).ok_or(CmdError::DbIndexOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_like_strtod() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-1e3"), Some(-1000.0));
        assert_eq!(parse_float(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_float(b".5"), Some(0.5));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b"1 "), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"abc"), None);
    }

    #[test]
    fn db_indexes_are_checked() {
        assert_eq!(db_index(b"3", 16), Ok(3));
        assert_eq!(db_index(b"16", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"-1", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"x", 16), Err(CmdError::NotInteger));
    }
}
