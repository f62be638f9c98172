//! The request and response bodies of protocol version 1.
//!
//! Fields added in later versions must carry `#[serde(default)]`, so that an older
//! satellite and a newer primary still understand each other.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sitesync_core::{OrgId, RecordState, SiteId, StoreId};

/// `POST /sync/v1/enrol`: a new satellite presents the organisation's sync key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The organisation's sync key, exactly as the primary printed it.
    pub sync_key: String,
    /// The site id asked for; the primary picks the next free one when absent.
    #[serde(default)]
    pub site_id: Option<i64>,
    /// A name for the site, shown in `site list`.
    #[serde(default)]
    pub name: Option<String>,
    /// Stores to assign, by id or name.
    #[serde(default)]
    pub stores: Vec<String>,
    /// Assign every store of the organisation, now and later.
    #[serde(default)]
    pub all_stores: bool,
}

/// The primary's answer to a successful enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The site id now registered for this satellite.
    pub site_id: SiteId,
    /// The satellite's own secret. Sent once; the primary keeps only a hash of it.
    pub secret: String,
    /// The organisation the site belongs to.
    pub org: OrgRef,
    /// What the site holds and may write.
    pub config: SiteConfig,
    /// The primary's incarnation (see [`PullResponse::incarnation`]).
    #[serde(default)]
    pub incarnation: u64,
}

/// An organisation, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    /// The organisation's id on the primary.
    pub id: OrgId,
    /// Its name.
    pub name: String,
}

/// A store, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRef {
    /// The store's id on the primary.
    pub id: StoreId,
    /// Its name.
    pub name: String,
}

/// What the primary says a site holds and may write. Sent with every pull, so a
/// changed assignment or restriction reaches the site on its next sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteConfig {
    /// Bumped each time the site's stores change.
    pub assignment_version: u64,
    /// The site holds every store of the organisation.
    pub all_stores: bool,
    /// The stores the site holds (every store of the organisation when `all_stores`).
    pub stores: Vec<StoreRef>,
    /// Collections only the primary may write.
    pub restricted: Vec<String>,
}

impl SiteConfig {
    /// A digest of the configuration (64-bit FNV-1a over its JSON encoding, whose
    /// fields and lists are in a fixed order): equal configurations have equal digests,
    /// so a satellite can say which one it holds in a few bytes of its query string.
    pub fn digest(&self) -> u64 {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// One local change, pushed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushedChange {
    /// The satellite's outbox sequence number: increasing, never reused.
    pub seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// What the change wrote, as a partial record state.
    pub change: RecordState,
}

/// `POST /sync/v1/push`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushRequest {
    /// Changes in outbox order.
    pub changes: Vec<PushedChange>,
}

/// A change the primary refused, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedChange {
    /// The outbox sequence number of the change.
    pub seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// Why it was refused, in words for a person.
    pub reason: String,
    /// The primary's copy of the record when the site may hold it, so the site can put
    /// back what it had overwritten; `None` means the site must not hold the record.
    pub record: Option<RecordState>,
}

/// The primary's answer to a push.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushResponse {
    /// Every change up to this outbox sequence number is durable on the primary (applied
    /// or rejected and recorded); the satellite may drop them from its outbox.
    pub acked_through: u64,
    /// The changes the primary refused.
    pub rejected: Vec<RejectedChange>,
}

/// `GET /sync/v1/pull` query parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullQuery {
    /// The highest primary sequence the satellite has applied.
    #[serde(default)]
    pub cursor: u64,
    /// Page size, in records (the primary caps it).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Hold an empty answer open this long, waiting for a change (long-poll).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Only these stores (comma-separated ids): a backfill of newly assigned stores.
    #[serde(default)]
    pub stores: Option<String>,
    /// The assignment version the satellite has applied (and purged for).
    #[serde(default)]
    pub assignment_version: Option<u64>,
    /// Count the routed records still waiting after this page (costs a scan: ask on
    /// the first page of a long sync, for its progress bar, or for `status`).
    #[serde(default)]
    pub count: bool,
    /// The [`SiteConfig::digest`] of the configuration the satellite holds: a long poll
    /// answers at once when the site's configuration differs (a store created or
    /// renamed, a collection restricted), so administration reaches a serving
    /// satellite as fast as records do. Older satellites leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<u64>,
}

/// A record as the primary holds it, with the sequence of its last change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulledRecord {
    /// The primary's sequence number of the record's last change.
    pub seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The whole record state, as the primary stores it ([`RecordState`]'s canonical
    /// JSON), passed through undecoded: the primary sends its bytes as they are, and
    /// the satellite decodes them with [`PulledRecord::decode_state`].
    pub state: Box<RawValue>,
}

impl PulledRecord {
    /// A pulled record of `state`.
    pub fn new(
        seq: u64,
        collection: String,
        id: String,
        state: &RecordState,
    ) -> Result<PulledRecord, serde_json::Error> {
        Ok(PulledRecord {
            seq,
            collection,
            id,
            state: serde_json::value::to_raw_value(state)?,
        })
    }

    /// Decodes the state, refusing one that is not a valid record state.
    pub fn decode_state(&self) -> Result<RecordState, serde_json::Error> {
        RecordState::decode(self.state.get().as_bytes())
    }
}

/// One page of a pull.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PullResponse {
    /// Records changed after the cursor, in sequence order.
    pub records: Vec<PulledRecord>,
    /// The cursor to send next time: the sequence of the last row the primary looked at
    /// (records routed elsewhere are passed over), or the old cursor.
    pub cursor: u64,
    /// Whether more records are waiting right now.
    pub more: bool,
    /// Routed records still waiting after this page (for progress bars).
    pub remaining: u64,
    /// What the site holds and may write.
    pub config: SiteConfig,
    /// The primary's incarnation: it changes whenever the primary's state may have gone
    /// back (restored from a backup, its database replaced), so a satellite that saved
    /// another one knows that the primary may lack what it had acknowledged. 0 from a
    /// primary that does not say.
    #[serde(default)]
    pub incarnation: u64,
    /// The primary's latest sequence (of any organisation; it never goes back unless the
    /// primary's state does): a satellite whose cursor is beyond it holds what the
    /// primary has lost.
    #[serde(default)]
    pub head: u64,
}

/// An error answer from the primary or the local API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable code ("unauthorised", "invalid_input", …).
    pub code: String,
    /// What went wrong and what to do, for a person.
    pub error: String,
}
