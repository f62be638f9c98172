//! A length of time as a person types it in `config.toml` or `settings set`: a whole
//! number of minutes, hours or days (`30m`, `2h`, `1d`), kept as written.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// A length of time, whole minutes, hours or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// How many units.
    count: u64,
    /// The unit's letter: `m`, `h` or `d`.
    unit: char,
}

impl Span {
    /// `count` minutes.
    pub const fn minutes(count: u64) -> Span {
        Span { count, unit: 'm' }
    }

    /// `count` hours.
    pub const fn hours(count: u64) -> Span {
        Span { count, unit: 'h' }
    }

    /// `count` days.
    pub const fn days(count: u64) -> Span {
        Span { count, unit: 'd' }
    }

    /// Its length in milliseconds.
    pub fn ms(self) -> u64 {
        let unit = match self.unit {
            'm' => MINUTE_MS,
            'h' => HOUR_MS,
            _ => DAY_MS,
        };
        self.count.saturating_mul(unit)
    }

    /// Reads `30m`, `2h`, `1d`; anything else is refused, naming the accepted form.
    pub fn parse(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let refused = || {
            format!(
                "{text:?} is not a length of time; write a whole number and m, h or d, like 30m, 2h or 1d"
            )
        };
        let unit = text.chars().last().ok_or_else(refused)?;
        if !matches!(unit, 'm' | 'h' | 'd') {
            return Err(refused());
        }
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        let count = digits.parse().map_err(|_| refused())?;
        Ok(Span { count, unit })
    }

    /// Refuses a span outside `least..=most`, in words naming `what` and the range.
    pub fn within(self, what: &str, least: Span, most: Span) -> Result<Span, String> {
        match (least.ms()..=most.ms()).contains(&self.ms()) {
            true => Ok(self),
            false => Err(format!(
                "{what} of {self} is out of bounds: give from {least} to {most}, like 30m, 2h or 1d"
            )),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_read_as_typed_and_nonsense_is_refused_naming_the_form() {
        assert_eq!(Span::parse("30m").unwrap().ms(), 30 * MINUTE_MS);
        assert_eq!(Span::parse(" 2h ").unwrap().ms(), 2 * HOUR_MS);
        assert_eq!(Span::parse("1d").unwrap().to_string(), "1d");
        for bad in [
            "",
            "m",
            "30",
            "1.5h",
            "-2h",
            "2 h",
            "2H",
            "1w",
            "ten m",
            "99999999999999999999d",
        ] {
            let refused = Span::parse(bad).unwrap_err();
            assert!(refused.contains("like 30m, 2h or 1d"), "{bad}: {refused}");
        }
        let day = Span::parse("1d").unwrap();
        assert!(day.within("x", Span::minutes(5), Span::hours(24)).is_ok());
        let far = Span::parse("25h").unwrap();
        let refused = far
            .within("the idle timeout", Span::minutes(5), Span::hours(24))
            .unwrap_err();
        assert!(refused.contains("from 5m to 24h"), "{refused}");
    }
}
