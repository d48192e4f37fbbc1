//! What configs of every component share: Codis' way of writing durations (`"30s"`) and byte
//! sizes (`"32mb"`).

/// Codis' durations: a number and a unit (`ms`, `s`, `m`, `h`), as Go's `time.ParseDuration`
/// reads the common cases (`"30m"`, `"5s"`, `"100ms"`).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Parses `"30m"`-style text.
    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let millis = match unit {
            "ms" => number,
            "s" => number.checked_mul(1000)?,
            "m" => number.checked_mul(60_000)?,
            "h" => number.checked_mul(3_600_000)?,
            _ => return None,
        };
        Some(Duration::from_millis(millis))
    }

    /// Deserializes one.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a duration like \"30s\" or \"5m\"")))
    }
}

/// Codis' byte sizes: a number and an optional unit (`b`, `kb`, `mb`, `gb`, any case; 1024-based),
/// or a bare number of bytes.
pub mod bytesize {
    use serde::{Deserialize, Deserializer};

    /// Parses `"32mb"`-style text.
    pub fn parse(text: &str) -> Option<u64> {
        let text = text.trim().to_ascii_lowercase();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let scale: u64 = match unit.trim() {
            "" | "b" => 1,
            "kb" | "k" => 1 << 10,
            "mb" | "m" => 1 << 20,
            "gb" | "g" => 1 << 30,
            _ => return None,
        };
        number.checked_mul(scale)
    }

    /// Deserializes one, from text or a bare number.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(number) => Ok(number),
            Either::Text(text) => parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a size like \"32mb\" or \"512kb\""))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn codis_units() {
        assert_eq!(super::duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(super::duration::parse("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(super::duration::parse("soon"), None);
        assert_eq!(super::bytesize::parse("32mb"), Some(32 << 20));
        assert_eq!(super::bytesize::parse("512KB"), Some(512 << 10));
        assert_eq!(super::bytesize::parse("100"), Some(100));
        assert_eq!(super::bytesize::parse("1tb"), None);
    }
}
