//! The sync protocol's bodies, plain (not compressed), as the primary decodes requests
//! (enrol, push) and the satellite decodes answers (enrol, push, pull).
//!
//! Properties: decoding never panics; a body over the limit is refused as too large and
//! one within it never is; whatever decodes re-encodes (compressed or not, as `encode`
//! chooses) to a body that decodes to the same message; every pulled record's state
//! either is refused or round-trips through its canonical bytes.

use serde::{Serialize, de::DeserializeOwned};
use sitesync_core::RecordState;
use sitesync_protocol::{
    CodecError, EnrolRequest, EnrolResponse, PullResponse, PushRequest, PushResponse, decode,
    encode,
};

/// The largest limit tried: the primary's real limits are below this.
const BIG: usize = 64 << 20;

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // Small limits as well as a big one, so the limit check is exercised both ways.
    let limit = [16, 256, 4096, BIG][usize::from(selector >> 6)];
    match selector % 5 {
        0 => {
            round_trip::<EnrolRequest>(body, limit);
        }
        1 => {
            round_trip::<PushRequest>(body, limit);
        }
        2 => {
            round_trip::<EnrolResponse>(body, limit);
        }
        3 => {
            round_trip::<PushResponse>(body, limit);
        }
        _ => {
            if let Some(page) = round_trip::<PullResponse>(body, limit) {
                for record in &page.records {
                    if let Ok(state) = record.decode_state() {
                        assert_eq!(RecordState::decode(&state.encode()).ok(), Some(state));
                    }
                }
            }
        }
    }
}

/// Decodes `body` as a `T` within `limit`, checks the properties above, and returns the
/// message when it decoded.
fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8], limit: usize) -> Option<T> {
    match decode::<T>(body, false, limit) {
        Ok(message) => {
            assert!(body.len() <= limit, "a body over the limit was accepted");
            let (again, compressed) = encode(&message);
            let back: T = decode(&again, compressed, BIG).expect("a re-encoded message decodes");
            assert_eq!(
                json(&message),
                json(&back),
                "the message changed in a round trip"
            );
            Some(message)
        }
        Err(CodecError::TooLarge { .. }) => {
            assert!(
                body.len() > limit,
                "a body within the limit was called too large"
            );
            None
        }
        Err(_) => None,
    }
}

/// A message as a JSON value, to compare messages that do not implement `PartialEq`.
fn json<T: Serialize>(message: &T) -> serde_json::Value {
    serde_json::to_value(message).expect("a decoded message serialises")
}
