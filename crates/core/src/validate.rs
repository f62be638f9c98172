//! Limits and checks for everything a person or the network hands in.
//!
//! Each check returns an [`InvalidInput`] whose message names what was wrong, so a user
//! or a client library can fix the input without reading code.

use serde_json::{Map, Value};
use thiserror::Error;
use unicode_normalization::is_nfc;

/// Longest collection name, in bytes.
pub const MAX_COLLECTION_LEN: usize = 64;
/// Longest record id, in bytes.
pub const MAX_RECORD_ID_LEN: usize = 256;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 256;
/// Most fields in one record.
pub const MAX_FIELDS: usize = 1_000;
/// Deepest nesting of arrays and objects in a field value.
pub const MAX_DEPTH: usize = 32;
/// Longest organisation, store or site name, in bytes.
pub const MAX_NAME_LEN: usize = 100;

/// An input that sitesync refuses, with the reason.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{what} {problem}")]
pub struct InvalidInput {
    /// What was checked ("collection name", "record id", …).
    pub what: String,
    /// What is wrong with it.
    pub problem: String,
}

fn invalid(what: &str, problem: impl Into<String>) -> InvalidInput {
    InvalidInput {
        what: what.to_string(),
        problem: problem.into(),
    }
}

/// A text that must be non-empty, short and free of control characters.
fn text(what: &str, value: &str, max: usize) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(invalid(what, "is empty"));
    }
    if value.len() > max {
        return Err(invalid(
            what,
            format!("is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(
            what,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    // The same-looking text in another normal form would be another record or name
    // ("é" as one character or as "e" and an accent); normalising would change what
    // was written, so it is refused instead.
    if !is_nfc(value) {
        return Err(invalid(
            what,
            "is not in Unicode normal form C: write accented letters as one character each (é, not e followed by an accent)",
        ));
    }
    Ok(())
}

/// A collection name: 1–64 bytes of ASCII letters, digits, `_`, `-` and `.`, starting
/// with a letter or digit (it appears in URL paths and file names).
pub fn collection(name: &str) -> Result<(), InvalidInput> {
    text("collection name", name, MAX_COLLECTION_LEN)?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(invalid(
            "collection name",
            format!("contains {c:?}; use letters, digits, '_', '-' or '.'"),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "collection name",
            "must start with a letter or digit",
        ));
    }
    Ok(())
}

/// A collection a site stores: a collection name, or a reserved collection in which
/// sitesync keeps reference data of its own (the definitions, `_collections`), which
/// only the primary's own commands write: no person, API call or satellite can name it.
pub fn stored_collection(name: &str) -> Result<(), InvalidInput> {
    if name == crate::definition::DEFINITIONS {
        return Ok(());
    }
    collection(name)
}

/// A record id: 1–256 bytes, no control characters.
pub fn record_id(id: &str) -> Result<(), InvalidInput> {
    text("record id", id, MAX_RECORD_ID_LEN)
}

/// An organisation, store or site name: 1–100 bytes, no control characters, and not
/// a number (so a name can never be mistaken for an id: ids are looked up with Rust's
/// integer parsing, which also reads "+5" as 5).
pub fn name(what: &str, name: &str) -> Result<(), InvalidInput> {
    text(what, name, MAX_NAME_LEN)?;
    if name.trim() != name {
        return Err(invalid(what, "starts or ends with a space"));
    }
    let digits = name.strip_prefix(['+', '-']).unwrap_or(name);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            what,
            "is a number, which would read as an id; add a letter",
        ));
    }
    Ok(())
}

/// The fields of a write: a JSON object of at most 1,000 fields with valid names and
/// values nested at most 32 deep.
pub fn fields(value: Value) -> Result<Map<String, Value>, InvalidInput> {
    let Value::Object(map) = value else {
        return Err(invalid(
            "record body",
            "must be a JSON object of fields, like {\"name\": \"Aspirin\"}",
        ));
    };
    if map.len() > MAX_FIELDS {
        return Err(invalid(
            "record body",
            format!("has {} fields; the limit is {MAX_FIELDS}", map.len()),
        ));
    }
    for (name, value) in &map {
        field(name, value)?;
    }
    Ok(map)
}

/// One field: a valid name, and a value nested at most 32 deep.
pub fn field(name: &str, value: &Value) -> Result<(), InvalidInput> {
    text("field name", name, MAX_FIELD_NAME_LEN)?;
    if depth(value) > MAX_DEPTH {
        return Err(invalid(
            "field value",
            format!("of {name:?} is nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    Ok(())
}

/// How deeply arrays and objects nest in `value` (a scalar is depth 0).
fn depth(value: &Value) -> usize {
    // Most values are scalars: no stack to allocate.
    if !matches!(value, Value::Array(_) | Value::Object(_)) {
        return 0;
    }
    // Iterative, so a hostile value cannot overflow the stack here.
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collection_names() {
        assert!(collection("price_lists").is_ok());
        assert_eq!(
            collection("").unwrap_err().to_string(),
            "collection name is empty"
        );
        assert!(collection("a/b").unwrap_err().to_string().contains("'/'"));
        assert!(collection("..").is_err());
        assert!(
            collection(&"x".repeat(65))
                .unwrap_err()
                .to_string()
                .contains("limit is 64")
        );
    }

    #[test]
    fn record_ids() {
        assert!(record_id("inv-2026/0001 é").is_ok());
        assert!(
            record_id("a\u{0}b")
                .unwrap_err()
                .to_string()
                .contains("U+0000")
        );
        assert!(record_id(&"x".repeat(257)).is_err());
        // "é" composed is accepted; the same letter as "e" and a combining accent,
        // which looks the same, is refused rather than made a second record.
        assert!(record_id("caf\u{e9}").is_ok());
        assert!(
            record_id("cafe\u{301}")
                .unwrap_err()
                .to_string()
                .contains("normal form C")
        );
        assert!(name("store name", "Ne\u{301}gociant").is_err());
    }

    #[test]
    fn names_are_not_digits() {
        assert!(name("store name", "Pharmacy 2").is_ok());
        assert!(name("store name", "42").is_err());
        // Found by the `names` fuzz target: "+11" was a valid name that reads as id 11.
        assert!(name("store name", "+11").is_err());
        assert!(name("store name", "-3").is_err());
        assert!(name("store name", "+").is_ok());
        assert!(name("store name", " x").is_err());
    }

    #[test]
    fn field_bodies() {
        assert!(fields(json!({"a": 1})).is_ok());
        assert!(fields(json!([1])).is_err());
        assert!(
            fields(json!({"": 1}))
                .unwrap_err()
                .to_string()
                .contains("field name is empty")
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(
            fields(json!({"d": deep}))
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
    }
}
