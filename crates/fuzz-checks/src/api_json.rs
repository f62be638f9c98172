//! A record body sent to the local API (`PUT /api/v1/{collection}/{id}`), read as the
//! API reads it (JSON, then `validate::fields`), and written into a record state.
//!
//! Properties: nothing panics or overflows the stack, however deep or large the JSON;
//! an accepted body has at most `MAX_FIELDS` fields, each with a valid name; the record
//! written from it reads back exactly the values sent; and its state survives encoding
//! to the bytes stored and sent.

use sitesync_core::validate::{self, MAX_FIELDS};
use sitesync_core::{Clock, RecordState};

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
    let written = RecordState::default().write(Some(3), fields.clone(), &mut clock, 1_000, 2);
    assert_eq!(
        written.values(),
        fields,
        "the record does not hold what was written"
    );
    let stored = RecordState::decode(&written.encode()).expect("an encoded state decodes");
    assert_eq!(stored, written, "the state changed through its bytes");
    assert_eq!(serde_json::Value::Object(stored.values()), body);
}
