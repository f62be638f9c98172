//! A record body sent to the local API (`PUT /api/v1/{collection}/{id}`), read as the
//! API reads it (JSON, then `validate::fields`), and written into a record state.
//!
//! Properties: nothing panics or overflows the stack, however deep or large the JSON;
//! an accepted body has at most `MAX_FIELDS` fields, each with a valid name; the record
//! written from it reads back exactly the values sent; and its state survives encoding
//! to the bytes stored and sent.

use sitesync_core::validate::{self, MAX_FIELDS};
use sitesync_core::{Clock, RecordState, counter};

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Ok(body) = sitesync_core::exact::parse(data) else {
        return;
    };
    // What is accepted reads as any JSON parser reads it: exactness only refuses.
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(data).ok(),
        Some(body.clone())
    );
    let Ok(fields) = validate::fields(body.clone()) else {
        return;
    };
    assert!(fields.len() <= MAX_FIELDS);
    for (name, value) in &fields {
        assert!(validate::field(name, value).is_ok());
    }
    let mut clock = Clock::default();
    // An add (`{"add": N}`) that is not a whole number is refused, naming the field.
    let written = match RecordState::default().write(Some(3), fields.clone(), &mut clock, 1_000, 2)
    {
        Ok(written) => written,
        Err(_) => {
            let bad_add = fields.iter().any(|(n, v)| counter::amount(n, v).is_err());
            assert!(bad_add, "only an add that is not a whole number is refused");
            return;
        }
    };
    // A record written from nothing holds what was written, an add as its amount.
    let expected: serde_json::Map<_, _> = fields
        .iter()
        .map(|(name, value)| match counter::amount(name, value) {
            Ok(Some(n)) => (name.clone(), n.into()),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    assert_eq!(
        written.values(),
        expected,
        "the record does not hold what was written"
    );
    let stored = RecordState::decode(&written.encode()).expect("an encoded state decodes");
    assert_eq!(stored, written, "the state changed through its bytes");
    assert_eq!(stored.values(), expected);
}
