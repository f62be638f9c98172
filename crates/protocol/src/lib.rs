//! The sync protocol between satellites and their primary: versioned messages and the
//! codec that turns them into HTTP bodies.
//!
//! # Layout
//!
//! - [`messages`]: every request and response body, version [`VERSION`].
//! - [`codec`]: JSON bodies, zstd-compressed when large, decoded within size limits.
//!
//! # The exchange
//!
//! A satellite enrols once with the organisation's sync key and receives its own site
//! credentials. From then on every request is signed with those credentials (the time,
//! a nonce, the method and path under HMAC-SHA-256; the secret itself never travels
//! again), and a sync round is:
//!
//! 1. **push**: local changes in outbox order, in batches; the primary applies each batch
//!    in one transaction and acknowledges the highest outbox sequence it has made durable.
//!    A retried batch is recognised by its sequence numbers and not applied twice.
//! 2. **pull**: routed records with a primary sequence above the satellite's cursor, in
//!    pages; the satellite applies each page and its new cursor in one transaction. With
//!    `wait_ms` the primary holds an empty pull open until something arrives (long-poll),
//!    so a change reaches online sites in milliseconds.

pub mod codec;
pub mod messages;
pub mod session;

pub use codec::{CodecError, decode, encode};
pub use messages::*;

/// The protocol version this build speaks. Sent in the `Sitesync-Protocol` header; a
/// primary refuses versions it does not know with a clear error.
pub const VERSION: u32 = 1;

/// The HTTP header carrying [`VERSION`].
pub const VERSION_HEADER: &str = "sitesync-protocol";

/// Pull answers repeat their `cursor` in this header, so a satellite can ask for the
/// next page as soon as the headers arrive, before the body is read.
pub const CURSOR_HEADER: &str = "sitesync-cursor";

/// Pull answers repeat `more` (1 or 0) in this header.
pub const MORE_HEADER: &str = "sitesync-more";

/// A satellite's pulls carry the last error of its own side that it has not yet told
/// the primary of: `MS TEXT` (when, in ms since the epoch, and what, in printable
/// ASCII), so the primary's operator sees why a site was away.
pub const ERROR_HEADER: &str = "sitesync-last-error";

/// Every answer of the primary carries its clock (ms since the epoch) in this header;
/// satellites sign requests with their estimate of that clock, so a site whose own clock
/// is hours off still signs with a time the primary accepts.
pub const TIME_HEADER: &str = "sitesync-time";
