//! Splitting an inline command line into arguments, as Redis' `sdssplitargs` does.
//!
//! Inline commands are what a person types into `telnet`/`nc`: `SET key "hello world"`. The rules,
//! matching Redis so both servers split a line the same way:
//! - arguments are separated by whitespace; a NUL byte ends the line;
//! - `"…"` may contain `\n \r \t \b \a \\ \"`, `\xHH`, and `\c` meaning `c`;
//! - `'…'` may contain `\'`; every other byte is literal;
//! - a quote may open in the middle of an argument (`a"b c"` is `ab c`), but a closing quote must be
//!   followed by whitespace or the end of the line.

use crate::error::ProtocolError;

/// Splits `line` (without its line end) into arguments, as Redis splits an inline command (and
/// as `redis-cli` splits what is typed at its prompt).
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|byte| is_space(*byte)) {
            pos += 1;
        }
        match line.get(pos) {
            None | Some(0) => return Ok(args),
            Some(_) => {
                let (arg, next) = split_one(line, pos)?;
                args.push(arg);
                pos = next;
            }
        }
    }
}

/// Reads one argument starting at `pos`; returns it and the position after it.
fn split_one(line: &[u8], mut pos: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut quote = Quote::None;
    let mut arg = Vec::new();
    loop {
        // A NUL byte is the end of the line, as in the C original.
        let byte = line.get(pos).copied().filter(|byte| *byte != 0);
        match quote {
            Quote::Double => match byte {
                None => return Err(ProtocolError::UnbalancedQuotes),
                Some(b'\\') if line.get(pos + 1) == Some(&b'x') && hex_pair(line, pos + 2).is_some() => {
                    arg.push(hex_pair(line, pos + 2).unwrap_or_default());
                    pos += 3;
                }
                Some(b'\\') if line.get(pos + 1).is_some_and(|next| *next != 0) => {
                    pos += 1;
                    arg.push(match line[pos] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                }
                Some(b'"') => {
                    closing_quote_ends_argument(line, pos)?;
                    return Ok((arg, pos + 1));
                }
                Some(other) => arg.push(other),
            },
            Quote::Single => match byte {
                None => return Err(ProtocolError::UnbalancedQuotes),
                Some(b'\\') if line.get(pos + 1) == Some(&b'\'') => {
                    pos += 1;
                    arg.push(b'\'');
                }
                Some(b'\'') => {
                    closing_quote_ends_argument(line, pos)?;
                    return Ok((arg, pos + 1));
                }
                Some(other) => arg.push(other),
            },
            Quote::None => match byte {
                None | Some(b' ' | b'\n' | b'\r' | b'\t') => return Ok((arg, pos)),
                Some(b'"') => quote = Quote::Double,
                Some(b'\'') => quote = Quote::Single,
                Some(other) => arg.push(other),
            },
        }
        pos += 1;
    }
}

fn closing_quote_ends_argument(line: &[u8], quote_pos: usize) -> Result<(), ProtocolError> {
    match line.get(quote_pos + 1) {
        None | Some(0) => Ok(()),
        Some(next) if is_space(*next) => Ok(()),
        Some(_) => Err(ProtocolError::UnbalancedQuotes),
    }
}

fn hex_pair(line: &[u8], pos: usize) -> Option<u8> {
    let high = hex_digit(*line.get(pos)?)?;
    let low = hex_digit(*line.get(pos + 1)?)?;
    Some(high << 4 | low)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
}

/// C's `isspace` in the "C" locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, ProtocolError> {
        split_args(line.as_bytes())
            .map(|args| args.into_iter().map(|arg| String::from_utf8_lossy(&arg).into_owned()).collect())
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(split("  SET  key value ").unwrap(), ["SET", "key", "value"]);
        assert_eq!(split(r#"set k "a b\n\x41\"""#).unwrap(), ["set", "k", "a b\nA\""]);
        assert_eq!(split(r"set k 'it\'s \n'").unwrap(), ["set", "k", r"it's \n"]);
        assert_eq!(split(r#"a"b c"d"#), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(r#"a"b c""#).unwrap(), ["ab c"]);
        assert_eq!(split(r#""\xZZ""#).unwrap(), ["xZZ"]);
        assert_eq!(split(r#""\q""#).unwrap(), ["q"]);
        assert_eq!(split(r#""open"#), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split("'open"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(r#""""#).unwrap(), [""]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("a\0b c").unwrap(), ["a"]);
        assert_eq!(split("a\x0bb").unwrap(), ["a\x0bb"], "vertical tab separates only between arguments");
    }
}
