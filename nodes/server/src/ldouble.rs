//! Redis' `long double` arithmetic for `INCRBYFLOAT` and `HINCRBYFLOAT`.
//!
//! Redis adds floats as C `long double`, which on x86-64 Linux is the x87 80-bit format (64-bit
//! mantissa), and prints the result with `%.17Lf`, trailing zeros trimmed. Doing the same in `f64`
//! gives visibly different replies: `INCRBYFLOAT k 0.1` then `0.2` is `0.3` in Redis but
//! `0.30000000000000004` in `f64`, large integers lose their low digits, and sums past `1e308`
//! overflow. So we compute in exact 80-bit arithmetic (`rustc_apfloat`, LLVM's APFloat, correctly
//! rounded like the hardware) and print the exact binary value the way glibc's `printf` does.

use std::str::FromStr;

use num_bigint::BigUint;
use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Round};

/// An x87 extended-precision number.
#[derive(Clone, Copy, Debug)]
pub struct LongDouble(X87DoubleExtended);

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// The sum, rounded to nearest as the x87 unit rounds.
    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble(self.0.add_r(other.0, Round::NearestTiesToEven).value)
    }
}

/// Whether `text` (sign removed) is a whole number as `strtold` reads one: decimal digits with an
/// optional point and `e` exponent, or `0x` hexadecimal digits with an optional point and `p`
/// exponent. Anything left over (`1e`, `1.5x`) makes Redis refuse the input.
pub(crate) fn is_number_syntax(text: &str) -> bool {
    let (digits, exponent_mark, is_digit): (&str, [char; 2], fn(&u8) -> bool) =
        match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => (hex, ['p', 'P'], u8::is_ascii_hexdigit),
            None => (text, ['e', 'E'], u8::is_ascii_digit),
        };
    let (mantissa, exponent) = match digits.find(exponent_mark) {
        Some(at) => (&digits[..at], Some(&digits[at + 1..])),
        None => (digits, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok = !(whole.is_empty() && fraction.is_empty())
        && whole.as_bytes().iter().all(is_digit)
        && fraction.as_bytes().iter().all(is_digit);
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && exponent.bytes().all(|byte| byte.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// Redis' `MAX_LONG_DOUBLE_CHARS`: longer inputs are refused.
const MAX_CHARS: usize = 5 * 1024;

impl LongDouble {
    /// Parses bytes as Redis' `string2ld` (`strtold` with its checks) does: no leading space, the
    /// whole input consumed, not NaN, and not out of range (an overflow to infinity or an
    /// underflow to zero of a non-zero input is refused; a literal `inf` is accepted).
    pub fn parse(bytes: &[u8]) -> Option<LongDouble> {
        if bytes.is_empty() || bytes.len() >= MAX_CHARS || bytes[0].is_ascii_whitespace() {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
        if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
            let infinity = X87DoubleExtended::INFINITY;
            return Some(LongDouble(if text.starts_with('-') { -infinity } else { infinity }));
        }
        if !is_number_syntax(unsigned) {
            return None;
        }
        // strtold reads hexadecimal without a binary exponent ("0x10"); APFloat wants one.
        let is_hex = unsigned.starts_with("0x") || unsigned.starts_with("0X");
        let with_exponent;
        let text = if is_hex && !unsigned.contains(['p', 'P']) {
            with_exponent = format!("{text}p0");
            with_exponent.as_str()
        } else {
            text
        };
        let value = X87DoubleExtended::from_str(text).ok()?;
        if value.is_nan() || value.is_infinite() {
            // Not a literal infinity, so an overflow (ERANGE).
            return None;
        }
        let has_nonzero_digit = unsigned.split(['e', 'E', 'p', 'P']).next().is_some_and(|mantissa| {
            mantissa
                .trim_start_matches("0x")
                .trim_start_matches("0X")
                .bytes()
                .any(|b| b.is_ascii_hexdigit() && b != b'0')
        });
        if value.is_zero() && has_nonzero_digit {
            // Underflow to zero (ERANGE).
            return None;
        }
        Some(LongDouble(value))
    }

    /// The value of an integer (exact: 64 mantissa bits hold any `i64`).
    pub fn from_i64(value: i64) -> LongDouble {
        LongDouble(X87DoubleExtended::from_i128(i128::from(value)).value)
    }

    /// `(long long)(value * 1000.0)` as Redis computes a blocking command's timeout on x86-64:
    /// the product rounded to nearest, truncated toward zero; a product out of `i64`'s range
    /// converts to `i64::MIN`, as the hardware's conversion does (so Redis calls it negative).
    pub fn millis_truncated(self) -> i64 {
        let thousand = X87DoubleExtended::from_u128(1000).value;
        let product = self.0.mul_r(thousand, Round::NearestTiesToEven).value;
        let mut is_exact = false;
        let converted = product.to_i128_r(64, Round::TowardZero, &mut is_exact);
        if converted.status.contains(rustc_apfloat::Status::INVALID_OP) {
            return i64::MIN;
        }
        i64::try_from(converted.value).unwrap_or(i64::MIN)
    }

    /// Whether the value is neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        !self.0.is_nan() && !self.0.is_infinite()
    }

    /// The value as Redis prints it for humans (`ld2string(…, LD_STR_HUMAN)`): `%.17Lf`, then
    /// trailing zeros and a trailing point removed, and `-0` written `0`. Only meaningful for
    /// finite values.
    pub fn to_human(self) -> String {
        let bits = self.0.to_bits();
        let negative = (bits >> 79) & 1 == 1;
        let biased_exponent = ((bits >> 64) & 0x7fff) as i64;
        let mantissa = (bits & u128::from(u64::MAX)) as u64;
        // x87 keeps the integer bit explicitly; denormals use the minimum exponent.
        let exponent = if biased_exponent == 0 { 1 - 16383 - 63 } else { biased_exponent - 16383 - 63 };

        const DECIMALS: usize = 17;
        let scale = BigUint::from(10u32).pow(DECIMALS as u32);
        // The value times 10^17, rounded to nearest, ties to even (glibc's printf).
        let scaled = if exponent >= 0 {
            (BigUint::from(mantissa) << exponent as usize) * &scale
        } else {
            let shift = (-exponent) as usize;
            let numerator = BigUint::from(mantissa) * &scale;
            let quotient = &numerator >> shift;
            let remainder = &numerator - (&quotient << shift);
            let half = BigUint::from(1u32) << (shift - 1);
            let odd = quotient.bit(0);
            if remainder > half || (remainder == half && odd) { quotient + 1u32 } else { quotient }
        };
        let integer = &scaled / &scale;
        let fraction = &scaled % &scale;
        let mut text = format!("{integer}.{fraction:0>DECIMALS$}");
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
        if negative && text != "0" {
            text.insert(0, '-');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_convert_like_the_hardware() {
        let millis = |text: &str| LongDouble::parse(text.as_bytes()).unwrap().millis_truncated();
        assert_eq!(millis("1.5"), 1500);
        assert_eq!(millis("0.0001"), 0);
        assert_eq!(millis("-0.0001"), 0);
        assert_eq!(millis("-1"), -1000);
        assert_eq!(millis("0x10"), 16_000);
        assert_eq!(millis("0x1p-2"), 250);
        for refused in ["1e", "1e+", ".", "0x", "0xp1", "1.2.3", "1x", "--1", "e5", "0x1e1p"] {
            assert!(LongDouble::parse(refused.as_bytes()).is_none(), "{refused} parsed");
        }
        for accepted in [".5", "5.", "1e5", "1E-5", "0x.8", "0xA.8p1", "+3"] {
            assert!(LongDouble::parse(accepted.as_bytes()).is_some(), "{accepted} refused");
        }
        assert_eq!(millis("inf"), i64::MIN);
        assert_eq!(millis("1e30"), i64::MIN);
        assert_eq!(millis("9.2e15"), 9_200_000_000_000_000_000);
    }

    fn add(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        (a + b).to_human()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Each expected value was read from redis-server 7.0.15 (INCRBYFLOAT).
        assert_eq!(add("0.1", "0.2"), "0.3");
        assert_eq!(add("10.5", "0.1"), "10.6");
        assert_eq!(add("3", "0"), "3");
        assert_eq!(add("-9223372036854775797", "5.0e3"), "-9223372036854770797");
        assert_eq!(add("1.5", "-1.5"), "0");
        assert_eq!(add("-0.0", "0"), "0");
        assert_eq!(
            add("1e308", "1e308"),
            "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"
        );
    }

    #[test]
    fn parsing_follows_string2ld() {
        assert!(LongDouble::parse(b"1.5").is_some());
        assert!(LongDouble::parse(b"+.5").is_some());
        assert!(LongDouble::parse(b"1e4").is_some());
        assert!(LongDouble::parse(b"inf").is_some_and(|v| !v.is_finite()));
        assert!(LongDouble::parse(b"-Infinity").is_some_and(|v| !v.is_finite()));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"abc", b"1e5000", b"1e-5000", b"1.2.3"] {
            assert!(LongDouble::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(LongDouble::parse(b"0").is_some_and(|v| v.to_human() == "0"));
        assert!(LongDouble::parse(b"0e10").is_some());
    }
}
