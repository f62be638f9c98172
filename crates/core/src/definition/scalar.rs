//! Exact readings of the values definitions limit: decimals (digits, never a double),
//! dates, RFC 3339 times, sizes and media types.

use super::Kind;
use std::cmp::Ordering;

/// A decimal read as written: its sign, its digits without leading zeros, and how many
/// of them come after the point (trailing zeros of the fraction dropped), so equal
/// numbers read equal whatever zeros they were written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    /// The integer part's digits (no leading zero; empty for zero).
    whole: String,
    /// The fraction's digits (no trailing zero).
    fraction: String,
}

impl Decimal {
    /// Reads `-12.50`, `3`, `1e3`, `2.5E-2`; refuses anything else (spaces, `+`, `.5`,
    /// `NaN`, a comma).
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], exponent(&rest[at + 1..])?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || mantissa.ends_with('.') {
            return None;
        }
        // Move the point by the exponent, on the digits.
        let all = format!("{whole}{fraction}");
        let point = i64::try_from(whole.len()).ok()? + exponent;
        let (whole, fraction) = if point <= 0 {
            (
                String::new(),
                format!("{}{all}", "0".repeat(point.unsigned_abs() as usize)),
            )
        } else if point as usize >= all.len() {
            (
                format!("{all}{}", "0".repeat(point as usize - all.len())),
                String::new(),
            )
        } else {
            (
                all[..point as usize].to_string(),
                all[point as usize..].to_string(),
            )
        };
        let whole = whole.trim_start_matches('0').to_string();
        let fraction = fraction.trim_end_matches('0').to_string();
        let zero = whole.is_empty() && fraction.is_empty();
        Some(Decimal {
            negative: negative && !zero,
            whole,
            fraction,
        })
    }

    /// The shortest plain writing: `-12.5`, `0`, `0.05`.
    pub(crate) fn canonical(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let whole = if self.whole.is_empty() {
            "0"
        } else {
            &self.whole
        };
        match self.fraction.is_empty() {
            true => format!("{sign}{whole}"),
            false => format!("{sign}{whole}.{}", self.fraction),
        }
    }

    fn magnitude_cmp(&self, other: &Decimal) -> Ordering {
        self.whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(&other.whole))
            .then_with(|| self.fraction.cmp(&other.fraction))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An exponent: optional sign and up to 4 digits (a decimal of 10,000 digits is
/// refused rather than written out).
fn exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `text` is a calendar date `YYYY-MM-DD`.
pub(crate) fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (
        number(&text[0..4]),
        number(&text[5..7]),
        number(&text[8..10]),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Whether `text` is an RFC 3339 date and time: `2026-11-03T14:05:00Z`, with optional
/// fractions of a second and an offset instead of `Z`.
pub(crate) fn is_datetime(text: &str) -> bool {
    let Some((date, time)) = text.split_once(['T', 't']) else {
        return false;
    };
    let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return false,
    };
    let hms = clock.split_once('.').map_or(clock, |(hms, fraction)| {
        match !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) {
            true => hms,
            false => "",
        }
    });
    is_date(date) && is_clock(hms, true) && (zone.eq_ignore_ascii_case("z") || is_offset(zone))
}

/// `HH:MM:SS` (or `HH:MM` for an offset), in range; a leap second is allowed.
fn is_clock(text: &str, seconds: bool) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let limits: &[u32] = if seconds { &[23, 59, 60] } else { &[23, 59] };
    parts.len() == limits.len()
        && parts
            .iter()
            .zip(limits)
            .all(|(p, max)| p.len() == 2 && number(p).is_some_and(|n| n <= *max))
}

fn is_offset(zone: &str) -> bool {
    zone.strip_prefix(['+', '-'])
        .is_some_and(|rest| is_clock(rest, false))
}

fn number(digits: &str) -> Option<u32> {
    match digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok(),
        false => None,
    }
}

/// Reads a size: `10 MiB`, `500 KB`, `1048576` (bytes). Binary units (KiB, MiB, GiB)
/// are powers of 1024, decimal ones (KB, MB, GB) of 1000.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "the size {text:?} does not read: write a number of bytes or a number and a unit (B, KB, KiB, MB, MiB, GB, GiB), like \"10 MiB\""
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_bytes))
        .ok_or_else(|| format!("the size {text:?} does not read as a number of bytes"))
}

/// A media type as `type/subtype` (or `type/*` in a rule).
pub(crate) fn check_media_type(text: &str) -> Result<(), String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match text.split_once('/') {
        Some((kind, sub)) if token(kind) && (token(sub) || sub == "*") => Ok(()),
        _ => Err(format!(
            "{text:?} is not a media type; write it as type/subtype, like \"application/pdf\""
        )),
    }
}

/// Whether a media type is allowed by one of `allowed` (`image/*` allows `image/png`).
pub(crate) fn media_type_allowed(media_type: &str, allowed: &[String]) -> bool {
    let media_type = media_type.to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix("/*") {
            Some(kind) => media_type.split_once('/').is_some_and(|(k, _)| k == kind),
            None => a == media_type,
        }
    })
}

/// A limit of a field of `kind`, read and written one way.
pub(crate) fn canonical_limit(kind: Kind, text: &str) -> Result<String, String> {
    match kind {
        Kind::Integer => text
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("the limit {text:?} is not an integer")),
        Kind::Decimal => Decimal::parse(text)
            .map(|d| d.canonical())
            .ok_or_else(|| format!("the limit {text:?} is not a decimal, like \"12.50\"")),
        Kind::Date if is_date(text) => Ok(text.to_string()),
        Kind::Date => Err(format!(
            "the limit {text:?} is not a date, like \"2026-01-31\""
        )),
        other => Err(format!("a {} field takes no min or max", other.name())),
    }
}

/// Compares two values of `kind` (limits or values, as text); `None` when one does not
/// read.
pub(crate) fn compare(kind: Kind, a: &str, b: &str) -> Option<Ordering> {
    match kind {
        Kind::Integer => Some(a.parse::<i64>().ok()?.cmp(&b.parse::<i64>().ok()?)),
        Kind::Decimal => Some(Decimal::parse(a)?.cmp(&Decimal::parse(b)?)),
        // Dates as YYYY-MM-DD compare as text.
        Kind::Date => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_read_exactly() {
        let d = |s: &str| Decimal::parse(s).map(|d| d.canonical());
        assert_eq!(d("12.50").as_deref(), Some("12.5"));
        assert_eq!(d("-0.0").as_deref(), Some("0"));
        assert_eq!(d("007").as_deref(), Some("7"));
        assert_eq!(d("1e3").as_deref(), Some("1000"));
        assert_eq!(d("2.5E-2").as_deref(), Some("0.025"));
        assert_eq!(
            d("0.10000000000000000001").as_deref(),
            Some("0.10000000000000000001")
        );
        for bad in [
            "", ".5", "5.", "+1", "1,5", "NaN", "1e", "1e99999", " 1", "--1",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        let p = |s: &str| Decimal::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(p("0.1") < p("0.10000000000000000001"));
        assert!(p("-2") < p("-1.5"));
        assert!(p("10") > p("9.99"));
        assert_eq!(p("1.50").cmp(&p("1.5")), Ordering::Equal);
    }

    #[test]
    fn dates_and_times() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-13-01"));
        assert!(!is_date("2023-1-01"));
        assert!(is_datetime("2026-11-03T14:05:00Z"));
        assert!(is_datetime("2026-11-03T14:05:00.123+03:00"));
        assert!(!is_datetime("2026-11-03T14:05:00"));
        assert!(!is_datetime("2026-11-03 14:05:00Z"));
        assert!(!is_datetime("2026-11-03T24:05:00Z"));
    }

    #[test]
    fn sizes_and_media_types() {
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("99999999999 GiB").is_err());
        assert!(check_media_type("application/pdf").is_ok());
        assert!(check_media_type("image/*").is_ok());
        assert!(check_media_type("pdf").is_err());
        let allowed = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(media_type_allowed("image/PNG", &allowed));
        assert!(media_type_allowed("application/pdf", &allowed));
        assert!(!media_type_allowed("text/plain", &allowed));
    }
}
