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

/// An integer of at least `min`, refused with `message` when smaller or not an integer at all:
/// Redis' `getRangeLongFromObjectOrReply` and `getPositiveLongFromObjectOrReply` given a message
/// use it for both (`LIMIT x` says "LIMIT can't be negative").
pub fn int_at_least(arg: &[u8], min: i64, message: &'static str) -> Result<i64, CmdError> {
    int(arg).ok().filter(|value| *value >= min).ok_or(CmdError::other(message))
}

/// A non-negative integer, refused with `message` otherwise (see [`int_at_least`]).
pub fn count_or(arg: &[u8], message: &'static str) -> Result<usize, CmdError> {
    int_at_least(arg, 0, message).map(|value| usize::try_from(value).unwrap_or(usize::MAX))
}

/// An optional count argument that must not be negative (`LPOP`, `SPOP`, `ZPOPMIN`), with Redis'
/// error for a negative one or one that is not a number.
pub fn optional_count(arg: Option<&[u8]>) -> Result<Option<usize>, CmdError> {
    arg.map(|arg| count_or(arg, "ERR value is out of range, must be positive")).transpose()
}

/// A float argument as Redis' `string2d` reads it (scores, increments, weights): see
/// [`parse_float`].
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

/// Parses a float as Redis' `string2d` does: C's `strtod` (decimal or scientific, hexadecimal
/// `0x10`, `inf`/`infinity`, a sign) over the whole argument, refusing an empty one, leading white
/// space, NaN, and a value out of range (`1e400` overflows, `1e-400` underflows to zero; a
/// literal `inf` is fine).
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|byte| is_c_space(*byte)) {
        return None;
    }
    match strtod(arg)? {
        (_, true) => None,
        (value, false) => Some(value),
    }
}

/// Parses one end of a score range as Redis' `zslParseRange` does (after the `(`): bare `strtod`,
/// which skips leading white space, reads an empty string as 0 and a value out of range as
/// infinity or zero; only NaN and leftover characters are refused.
pub fn parse_score_bound(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() {
        return Some(0.0);
    }
    let start = arg.iter().position(|byte| !is_c_space(*byte))?;
    strtod(&arg[start..]).map(|(value, _)| value)
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// C's `strtod` on all of `arg`, correctly rounded: the value and whether it was out of range
/// (`ERANGE`: an overflow to infinity or an underflow to zero), or `None` when `arg` is not
/// entirely a number, or is NaN.
fn strtod(arg: &[u8]) -> Option<(f64, bool)> {
    use rustc_apfloat::Float;
    use rustc_apfloat::ieee::Double;

    let text = std::str::from_utf8(arg).ok()?;
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some((if text.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }, false));
    }
    if !crate::ldouble::is_number_syntax(unsigned) {
        return None;
    }
    // strtod reads hexadecimal without a binary exponent ("0x10"); APFloat wants one.
    let is_hex = unsigned.starts_with("0x") || unsigned.starts_with("0X");
    let with_exponent;
    let text = if is_hex && !unsigned.contains(['p', 'P']) {
        with_exponent = format!("{text}p0");
        with_exponent.as_str()
    } else {
        text
    };
    let value = text.parse::<Double>().ok()?;
    let value = f64::from_bits(u64::try_from(value.to_bits()).ok()?);
    let mantissa = unsigned.split(['e', 'E', 'p', 'P']).next().unwrap_or_default();
    let mantissa = mantissa.strip_prefix("0x").or_else(|| mantissa.strip_prefix("0X")).unwrap_or(mantissa);
    let nonzero = mantissa.bytes().any(|byte| byte.is_ascii_hexdigit() && byte != b'0');
    let out_of_range = value.is_infinite() || (value == 0.0 && nonzero);
    Some((value, out_of_range))
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
        assert_eq!(parse_float(b"0x10"), Some(16.0));
        assert_eq!(parse_float(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"5."), Some(5.0));
        assert_eq!(parse_float(b"1e400"), None);
        assert_eq!(parse_float(b"1e-400"), None);
        assert_eq!(parse_float(b"0e-400"), Some(0.0));
        assert_eq!(parse_float(b"1e-310"), Some(1e-310));
        assert_eq!(parse_float(b"0.1"), Some(0.1));
    }

    #[test]
    fn score_bounds_parse_like_bare_strtod() {
        assert_eq!(parse_score_bound(b""), Some(0.0));
        assert_eq!(parse_score_bound(b" 1"), Some(1.0));
        assert_eq!(parse_score_bound(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_score_bound(b"1e-400"), Some(0.0));
        assert_eq!(parse_score_bound(b" "), None);
        assert_eq!(parse_score_bound(b"1 "), None);
        assert_eq!(parse_score_bound(b"nan"), None);
    }

    #[test]
    fn db_indexes_are_checked() {
        assert_eq!(db_index(b"3", 16), Ok(3));
        assert_eq!(db_index(b"16", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"-1", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"x", 16), Err(CmdError::NotInteger));
    }
}
