//! Message bodies on the wire.
//!
//! A body is JSON. Bodies of [`COMPRESS_OVER`] bytes or more are compressed with zstd
//! and sent with `Content-Encoding: zstd`: record batches are repetitive, so whole-batch
//! compression shrinks them several times (compressing records one by one gains almost
//! nothing). Decoding refuses bodies, compressed or not, that would exceed the caller's
//! size limit, so a small hostile body cannot expand into gigabytes.

use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

/// Bodies at least this large are compressed.
pub const COMPRESS_OVER: usize = 1024;

/// zstd level: fast enough that compression never shows up next to SQLite.
const LEVEL: i32 = 1;

/// Why a body could not be read.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The body (after decompression) is larger than allowed.
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The compressed body is not valid zstd.
    #[error("the body is not valid zstd: {0}")]
    Compression(std::io::Error),
    /// The body is not the expected JSON.
    #[error("the body is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes a message: returns the body and whether it is zstd-compressed.
pub fn encode<T: Serialize>(message: &T) -> (Vec<u8>, bool) {
    // Messages are plain data (strings, numbers, maps with string keys): serialising
    // them cannot fail.
    let json = serde_json::to_vec(message).unwrap_or_default();
    if json.len() < COMPRESS_OVER {
        return (json, false);
    }
    match zstd::bulk::compress(&json, LEVEL) {
        Ok(small) => (small, true),
        Err(_) => (json, false),
    }
}

/// Decodes a message of at most `limit` bytes (before compression).
pub fn decode<T: DeserializeOwned>(
    body: &[u8],
    compressed: bool,
    limit: usize,
) -> Result<T, CodecError> {
    if compressed {
        let json = decompress(body, limit)?;
        Ok(serde_json::from_slice(&json)?)
    } else {
        if body.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        Ok(serde_json::from_slice(body)?)
    }
}

fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(body).map_err(CodecError::Compression)?;
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(CodecError::Compression)?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{PushRequest, PushedChange};
    use sitesync_core::RecordState;

    fn batch(n: usize) -> PushRequest {
        PushRequest {
            changes: (0..n as u64)
                .map(|seq| PushedChange {
                    seq,
                    collection: "items".into(),
                    id: format!("item-{seq}"),
                    change: RecordState::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn small_bodies_stay_plain_and_large_ones_shrink() {
        let (small, compressed) = encode(&batch(1));
        assert!(!compressed);
        assert!(decode::<PushRequest>(&small, false, 1 << 20).is_ok());
        let (large, compressed) = encode(&batch(1000));
        assert!(compressed);
        let raw = serde_json::to_vec(&batch(1000)).unwrap();
        assert!(
            large.len() * 4 < raw.len(),
            "{} vs {}",
            large.len(),
            raw.len()
        );
        let back: PushRequest = decode(&large, true, 1 << 20).unwrap();
        assert_eq!(back.changes.len(), 1000);
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let zeros = vec![b' '; 10 << 20];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        assert!(bomb.len() < 10_000);
        let err = decode::<PushRequest>(&bomb, true, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<PushRequest>(b"\xff\x00garbage", true, 1024).is_err());
        assert!(decode::<PushRequest>(b"{\"changes\": 5}", false, 1024).is_err());
    }
}
