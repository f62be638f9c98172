//! Reading JSON that a person or a program hands in, exactly: what ordinary JSON
//! parsing would silently change is refused with the reason instead.
//!
//! - A key given twice in one object: a parser keeps one and drops the other.
//! - A number a 64-bit value cannot hold as written: an integer beyond 64 bits (read
//!   as a double, 12345678901234567890123 becomes 1.2345678901234568e22), or a decimal
//!   with more digits than a double keeps (0.10000000000000000001 becomes 0.1).
//!
//! Numbers are checked on the text itself, since a parsed number no longer knows how
//! it was written; keys are checked as the parser decodes them, so `"a"` and `"\u0061"`
//! count as the same key.

use crate::validate::InvalidInput;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses `text` as JSON, refusing duplicate keys and numbers that would change.
pub fn parse(text: &[u8]) -> Result<Value, InvalidInput> {
    let refuse = |problem: String| InvalidInput {
        what: "record body".into(),
        problem,
    };
    check_numbers(text).map_err(refuse)?;
    let Exact(value) =
        serde_json::from_slice(text).map_err(|e| refuse(format!("is not valid JSON: {e}")))?;
    Ok(value)
}

/// Refuses the first number literal outside strings that would not be kept as written.
fn check_numbers(text: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => i = end_of_string(text, i + 1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let literal = String::from_utf8_lossy(&text[start..i]);
                if !kept_exactly(&literal) {
                    return Err(format!(
                        "holds the number {literal}, which cannot be kept exactly as written (integers must fit in 64 bits, decimals in a double's 15–17 digits); send it as a string to keep every digit"
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index just past the string whose body starts at `i`.
fn end_of_string(text: &[u8], mut i: usize) -> usize {
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Whether a JSON number literal reads back as written once parsed. A literal that is
/// not a number at all passes here; the parser refuses it with its own message.
fn kept_exactly(literal: &str) -> bool {
    if !literal.contains(['.', 'e', 'E']) {
        return literal.parse::<i64>().is_ok()
            || literal.parse::<u64>().is_ok()
            || literal.parse::<f64>().is_err();
    }
    match literal.parse::<f64>() {
        Ok(double) if double.is_finite() => digits(literal) == digits(&format!("{double:e}")),
        _ => true,
    }
}

/// A decimal number's significant digits and the power of ten of its last digit, with
/// leading and trailing zeros removed (zero has no digits), so that equal numbers
/// written differently compare equal: `1.50`, `15e-1` and `0.15e1` alike.
fn digits(literal: &str) -> (bool, String, i64) {
    let (mantissa, exponent) = match literal.find(['e', 'E']) {
        Some(at) => (
            &literal[..at],
            literal[at + 1..].parse::<i64>().unwrap_or(0),
        ),
        None => (literal, 0),
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches(['-', '+']);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0');
    let kept = significant.trim_end_matches('0');
    if kept.is_empty() {
        return (false, String::new(), 0);
    }
    let dropped = (significant.len() - kept.len()) as i64;
    let power = exponent - fraction.len() as i64 + dropped;
    (negative, kept.to_string(), power)
}

/// A JSON value read with every object's keys checked for repeats.
struct Exact(Value);

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Exact, D::Error> {
        deserializer.deserialize_any(ExactVisitor).map(Exact)
    }
}

struct ExactVisitor;

impl<'de> Visitor<'de> for ExactVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Exact(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Exact(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears twice in one object; give each key once"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn what_would_change_is_refused() {
        assert!(refusal(r#"{"n": 12345678901234567890123}"#).contains("12345678901234567890123"));
        assert!(refusal(r#"{"n": 0.10000000000000000001}"#).contains("cannot be kept exactly"));
        assert!(refusal(r#"{"a": 1, "a": 2}"#).contains("\"a\" appears twice"));
        assert!(refusal(r#"{"a": 1, "\u0061": 2}"#).contains("appears twice"));
        assert!(refusal(r#"{"x": {"b": [{"c": 1, "c": 1}]}}"#).contains("\"c\" appears twice"));
        assert!(refusal(r#"{"a": "#).contains("not valid JSON"));
    }

    #[test]
    fn what_is_kept_passes_unchanged() {
        let text = r#"{"i": -9223372036854775808, "u": 18446744073709551615, "d": 0.1,
            "e": 1.5e300, "z": -0.0, "t": 1.50, "s": "12345678901234567890123 \" 1e999",
            "l": [1, 2.25, {"k": null, "b": true}], "small": 5e-324}"#;
        let value = parse(text.as_bytes()).unwrap();
        assert_eq!(value["u"], json!(u64::MAX));
        assert_eq!(value["t"], json!(1.5));
        assert_eq!(value["s"], json!("12345678901234567890123 \" 1e999"));
        assert_eq!(value, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn equal_numbers_written_differently_have_equal_digits() {
        assert_eq!(digits("1.50"), digits("15e-1"));
        assert_eq!(digits("0.15e1"), digits("1.5"));
        assert_eq!(digits("-0.0"), digits("0"));
        assert_ne!(digits("1.5"), digits("-1.5"));
        assert_ne!(digits("100"), digits("10"));
    }
}
