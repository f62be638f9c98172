//! Record ids, collection, field and organisation/store/site names, as they arrive in
//! URL paths, query strings and bodies, checked by `validate`.
//!
//! Properties: no check panics; an accepted collection name is safe as a path segment
//! and a file name (no separator, no leading dot, within its length); an accepted id or
//! field name is within its length and free of control characters; an accepted name can
//! never be read as an id; every refusal names what was refused.

use sitesync_core::validate::{self, MAX_COLLECTION_LEN, MAX_FIELD_NAME_LEN, MAX_RECORD_ID_LEN};

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    // The API reads path segments and parameters as UTF-8 and refuses anything else.
    let text = String::from_utf8_lossy(data);
    let clean =
        |s: &str, max: usize| !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control);
    match validate::collection(&text) {
        Ok(()) => {
            assert!(clean(&text, MAX_COLLECTION_LEN));
            assert!(!text.contains(['/', '\\', '\0', ':']) && !text.starts_with('.'));
        }
        Err(e) => assert!(e.to_string().starts_with("collection name "), "{e}"),
    }
    match validate::record_id(&text) {
        Ok(()) => assert!(clean(&text, MAX_RECORD_ID_LEN)),
        Err(e) => assert!(e.to_string().starts_with("record id "), "{e}"),
    }
    match validate::field(&text, &serde_json::Value::Null) {
        Ok(()) => assert!(clean(&text, MAX_FIELD_NAME_LEN)),
        Err(e) => assert!(e.to_string().starts_with("field name "), "{e}"),
    }
    match validate::name("store name", &text) {
        Ok(()) => {
            // Stores, organisations and sites are looked up by id or name: a name that
            // reads as a number would be taken for an id.
            assert!(
                text.parse::<i64>().is_err(),
                "the name {text:?} reads as an id"
            );
            assert_eq!(text.trim(), text);
        }
        Err(e) => assert!(e.to_string().starts_with("store name "), "{e}"),
    }
}
