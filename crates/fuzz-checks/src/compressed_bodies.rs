//! zstd-compressed sync bodies (`Content-Encoding: zstd`), as the primary decodes a
//! push and the satellite a pull page.
//!
//! Properties: a hostile frame never panics the decoder and never yields more than the
//! limit (a compression bomb is refused as too large); and for any JSON text, sending it
//! compressed is the same as sending it plain: the same message or the same refusal,
//! with "too large" exactly when the text is over the limit.

use serde::{Serialize, de::DeserializeOwned};
use sitesync_protocol::{CodecError, PullResponse, PushRequest, decode};
use std::io::Read;

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limit = [64, 1024, 16 << 10, 1 << 20][usize::from(selector >> 6)];
    match selector % 4 {
        0 => hostile_frame::<PushRequest>(body, limit),
        1 => hostile_frame::<PullResponse>(body, limit),
        2 => same_as_plain::<PushRequest>(body, limit),
        _ => same_as_plain::<PullResponse>(body, limit),
    }
}

/// `frame` as a compressed body: whatever it holds, at most `limit` bytes come out.
fn hostile_frame<T: DeserializeOwned>(frame: &[u8], limit: usize) {
    if decode::<T>(frame, true, limit).is_ok() {
        let mut out = Vec::new();
        let read = zstd::stream::read::Decoder::new(frame)
            .and_then(|d| d.take(limit as u64 + 1).read_to_end(&mut out));
        assert!(
            read.is_ok() && out.len() <= limit,
            "more than the limit was accepted"
        );
    }
}

/// `text` compressed decodes exactly as `text` plain does.
fn same_as_plain<T: Serialize + DeserializeOwned>(text: &[u8], limit: usize) {
    let frame = zstd::bulk::compress(text, 1).expect("zstd compresses any input");
    let compressed = decode::<T>(&frame, true, limit);
    let plain = decode::<T>(text, false, limit);
    match (&compressed, &plain) {
        (Ok(a), Ok(b)) => assert_eq!(
            serde_json::to_value(a).ok(),
            serde_json::to_value(b).ok(),
            "compressed and plain bodies decoded differently"
        ),
        (Err(CodecError::TooLarge { .. }), Err(CodecError::TooLarge { .. })) => {
            assert!(text.len() > limit)
        }
        (Err(CodecError::Json(_)), Err(CodecError::Json(_))) => {}
        _ => panic!(
            "compressed: {:?}, plain: {:?}",
            compressed.as_ref().err(),
            plain.as_ref().err()
        ),
    }
}
