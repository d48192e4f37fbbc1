//! Glob-style pattern matching as Redis' `stringmatchlen` does it (`KEYS`, `SCAN MATCH`, pub/sub
//! patterns): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes, optionally ignoring case.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    matches_at(pattern, text, nocase, 0)
}

/// Recursion is bounded like Redis' (which caps nesting at 1000 `*` to avoid stack exhaustion);
/// consecutive stars collapse first, so only real alternations recurse.
fn matches_at(mut pattern: &[u8], mut text: &[u8], nocase: bool, depth: usize) -> bool {
    if depth > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase { a.eq_ignore_ascii_case(&b) } else { a == b }
    };
    while let Some(&p) = pattern.first() {
        match p {
            b'*' => {
                while pattern.len() > 1 && pattern[1] == b'*' {
                    pattern = &pattern[1..];
                }
                if pattern.len() == 1 {
                    return true;
                }
                for start in 0..=text.len() {
                    if matches_at(&pattern[1..], &text[start..], nocase, depth + 1) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => {
                if text.is_empty() {
                    return false;
                }
                text = &text[1..];
                pattern = &pattern[1..];
            }
            b'[' => {
                let Some(&c) = text.first() else {
                    return false;
                };
                pattern = &pattern[1..];
                let negate = pattern.first() == Some(&b'^');
                if negate {
                    pattern = &pattern[1..];
                }
                let mut found = false;
                loop {
                    match pattern {
                        [b'\\', escaped, rest @ ..] => {
                            if eq(*escaped, c) {
                                found = true;
                            }
                            pattern = rest;
                        }
                        [b']', rest @ ..] => {
                            pattern = rest;
                            break;
                        }
                        [] => break,
                        [start, b'-', end, rest @ ..] if *end != b']' => {
                            let (mut low, mut high) = (*start, *end);
                            if low > high {
                                std::mem::swap(&mut low, &mut high);
                            }
                            let (low, high, c) = if nocase {
                                (low.to_ascii_lowercase(), high.to_ascii_lowercase(), c.to_ascii_lowercase())
                            } else {
                                (low, high, c)
                            };
                            if (low..=high).contains(&c) {
                                found = true;
                            }
                            pattern = rest;
                        }
                        [single, rest @ ..] => {
                            if eq(*single, c) {
                                found = true;
                            }
                            pattern = rest;
                        }
                    }
                }
                if found == negate {
                    return false;
                }
                text = &text[1..];
            }
            b'\\' if pattern.len() >= 2 => {
                if text.first().is_none_or(|&c| !eq(pattern[1], c)) {
                    return false;
                }
                text = &text[1..];
                pattern = &pattern[2..];
            }
            _ => {
                if text.first().is_none_or(|&c| !eq(p, c)) {
                    return false;
                }
                text = &text[1..];
                pattern = &pattern[1..];
            }
        }
    }
    text.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_redis() {
        let yes = |pattern: &str, text: &str| {
            assert!(matches(pattern.as_bytes(), text.as_bytes(), false), "{pattern} ~ {text}")
        };
        let no = |pattern: &str, text: &str| {
            assert!(!matches(pattern.as_bytes(), text.as_bytes(), false), "{pattern} !~ {text}")
        };
        yes("*", "");
        yes("*", "anything");
        yes("h?llo", "hello");
        no("h?llo", "hllo");
        yes("h*llo", "heeeello");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("h[b-a]llo", "hbllo");
        yes("h\\*llo", "h*llo");
        no("h\\*llo", "hello");
        yes("key:*:end", "key:1:2:end");
        no("key:*:end", "key:1:2:en");
        yes("[\\]]", "]");
        yes("a**b", "ab");
        assert!(matches(b"HELLO*", b"hello world", true));
    }
}
