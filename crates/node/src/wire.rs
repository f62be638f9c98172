//! Protocol bodies in HTTP: decoding requests within limits, encoding answers.

use crate::error::NodeError;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sitesync_protocol::{ERROR_HEADER, VERSION, VERSION_HEADER, codec};

/// Largest sync request body, after decompression.
pub const MAX_SYNC_BODY: usize = 32 << 20;

/// Refuses a request from a satellite that speaks another protocol version.
pub fn check_version(headers: &HeaderMap) -> Result<(), NodeError> {
    match headers
        .get(VERSION_HEADER)
        .map(|v| v.to_str().map(str::trim))
    {
        None => Ok(()),
        Some(Ok(v)) if v == VERSION.to_string() => Ok(()),
        Some(v) => Err(NodeError::BadRequest(format!(
            "protocol version {:?} is not supported: this primary speaks version {VERSION}; upgrade the satellite or the primary so they match",
            v.unwrap_or("?")
        ))),
    }
}

/// The sitesync version a satellite says it runs (`User-Agent: sitesync/0.1.0`).
pub fn site_version(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(USER_AGENT)?.to_str().ok()?;
    let version = agent.strip_prefix("sitesync/")?;
    let ok = version.len() <= 32
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    ok.then(|| version.to_string())
}

/// The last error a satellite reports from its side ([`ERROR_HEADER`]): when, and what
/// (at most 300 characters).
pub fn reported_error(headers: &HeaderMap) -> Option<(u64, String)> {
    let value = headers.get(ERROR_HEADER)?.to_str().ok()?;
    let (at, text) = value.split_once(' ')?;
    let text: String = text.trim().chars().take(300).collect();
    Some((at.parse().ok()?, text)).filter(|(_, t)| !t.is_empty())
}

/// The header value a satellite sends for its last error: printable ASCII only (other
/// characters become `?`), at most 300 characters.
pub fn error_header(at: u64, error: &str) -> String {
    let text: String = error
        .chars()
        .take(300)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("{at} {text}")
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Whether a body is zstd-compressed.
pub fn is_compressed(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"))
}

/// Decodes a protocol request body.
pub fn decode<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> Result<T, NodeError> {
    Ok(codec::decode(body, is_compressed(headers), limit)?)
}

/// Encodes a protocol answer, compressed when large.
pub fn encode<T: Serialize>(message: &T) -> Response {
    let (body, compressed) = codec::encode(message);
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if compressed {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
    }
    response
}
