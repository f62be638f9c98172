//! A record's state as stored in SQLite and sent in pull pages (`RecordState::decode`).
//!
//! Properties: decoding never panics; a decoded state re-encodes to bytes that decode
//! to the same state, and those bytes are canonical (encoding again gives them again);
//! merging the state into itself changes nothing and reports no conflict; merging it
//! into an empty record (a site's first copy) and then again changes nothing more.

use sitesync_core::{RecordState, merge};

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Ok(state) = RecordState::decode(data) else {
        return;
    };
    let bytes = state.encode();
    let back = RecordState::decode(&bytes).expect("an encoded state decodes");
    assert_eq!(
        back,
        state,
        "the state changed through {}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(back.encode(), bytes, "the encoding is not canonical");

    let mut same = state.clone();
    let merged = merge(&mut same, &state).expect("a state merges with itself");
    assert!(!merged.changed && merged.conflicts.is_empty());
    assert_eq!(same, state);

    let mut first = RecordState::default();
    merge(&mut first, &state).expect("anything merges into an empty record");
    let copy = first.clone();
    let again = merge(&mut first, &state).expect("the same state merges again");
    assert!(!again.changed, "a repeated merge changed the record");
    assert_eq!(first, copy);
}
