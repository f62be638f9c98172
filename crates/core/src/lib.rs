//! The pure core of sitesync: what a record is, how sites order their changes and how
//! replicas merge them, where a change may go, and what input is acceptable.
//!
//! Nothing here touches a socket, a file, SQL or the system clock: time comes in as an
//! argument, so every rule can be tested (and property-tested) in isolation.
//!
//! # Layout
//!
//! - [`clock`]: the hybrid logical clock and the [`Stamp`] that orders every change.
//! - [`record`]: a record's replicated state ([`RecordState`]) and how a local write
//!   becomes a change.
//! - [`merge`]: the field-level last-writer-wins merge, with conflict detection.
//! - [`counter`]: counter fields (`{"add": N}`), whose adds from every site add up.
//! - [`routing`]: which records a site receives and which changes it may write.
//! - [`licence`]: an organisation's licence: its modules, site limit and expiry.
//! - [`definition`]: collections' definitions (typed fields, custom fields by role),
//!   whether a write or a record fits one, and whether a new one refuses nothing the
//!   old one took.
//! - [`file`]: files in records: their metadata, chunks and manifests.
//! - [`validate`]: limits and checks for names, ids and field values.
//! - [`exact`]: reading handed-in JSON without changing it (repeated keys and numbers
//!   a double cannot hold are refused).
//! - [`time`]: turning a clock reading into an RFC 3339 timestamp.

pub mod clock;
pub mod counter;
pub mod definition;
pub mod exact;
pub mod file;
pub mod licence;
pub mod merge;
pub mod record;
pub mod routing;
pub mod time;
pub mod validate;

pub use clock::{Clock, Stamp};
pub use counter::Counter;
pub use definition::{Definition, DefinitionError, Refusal};
pub use licence::{Day, Licence, LicenceChange, Module};
pub use merge::{Conflict, MergeError, Merged, merge};
pub use record::{FieldVersion, RecordState, StateSummary};
pub use routing::{Assignment, Rejection};
pub use validate::InvalidInput;

/// Identifies a site within its primary. Site 1 is always the primary itself.
pub type SiteId = u32;
/// Identifies a store within a primary (store ids are unique across organisations).
pub type StoreId = u64;
/// Identifies an organisation within a primary.
pub type OrgId = u64;

/// The primary's site id, reserved as in mSupply's "Sync ID 1 is the primary server".
pub const PRIMARY_SITE: SiteId = 1;
