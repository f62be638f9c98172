//! The values storage passes in and out: organisations, stores and sites, records,
//! the journal's entries, and the satellite's sync state.

use crate::StoreError;
use crate::names::describe_store;
use serde_json::{Map, Value};
use sitesync_core::{Assignment, Clock, FieldVersion, OrgId, RecordState, SiteId, StoreId, merge};
use sitesync_protocol::PulledRecord;

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// Its name, unique on the primary.
    pub name: String,
    /// Which sync key is current: `org rotate-key` bumps it, retiring the old key.
    pub key_generation: u64,
    /// The IANA time zone its people read times in (`Europe/Moscow`; `UTC` unless set).
    pub time_zone: String,
}

/// A store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRow {
    /// Its id, unique on the primary.
    pub id: StoreId,
    /// Its organisation.
    pub org: OrgId,
    /// Its name, unique in the organisation.
    pub name: String,
}

/// A satellite, as the primary knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    /// Its site id (2 or more).
    pub id: SiteId,
    /// Its organisation.
    pub org: OrgId,
    /// Its name.
    pub name: String,
    /// SHA-256 of its secret, hex.
    pub secret_hash: String,
    /// When it enrolled (ms since the epoch).
    pub enrolled_at: u64,
    /// The stores it holds.
    pub assignment: Assignment,
    /// Bumped at each change of assignment.
    pub assignment_version: u64,
    /// When it last made a sync request (ms since the epoch).
    pub last_contact: Option<u64>,
    /// It holds every routed record up to this sequence.
    pub pull_cursor: u64,
    /// Whether its access has been revoked.
    pub revoked: bool,
    /// The sitesync version it last said it runs.
    pub version: Option<String>,
    /// The last error it reported from its own side (when, and what), such as a time it
    /// could not reach the primary.
    pub last_error: Option<(u64, String)>,
}

/// A sync request from a site, as `touch_sites` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The site.
    pub site: SiteId,
    /// When it asked (ms since the epoch).
    pub at: u64,
    /// The cursor it pulled from: it holds every routed record up to there.
    pub pull_cursor: Option<u64>,
    /// The assignment version it has applied.
    pub applied_assignment: Option<u64>,
    /// The sitesync version it says it runs.
    pub version: Option<String>,
    /// The last error it reports from its own side: when, and what.
    pub error: Option<(u64, String)>,
}

/// A concurrent edit, as recorded.
#[derive(Debug, Clone)]
pub struct ConflictRow {
    /// When this site found it (ms since the epoch).
    pub at: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub record_id: String,
    /// The field both writes set.
    pub field: String,
    /// The version that won.
    pub winner: FieldVersion,
    /// The version that lost.
    pub loser: FieldVersion,
}

/// A change the primary refused, as recorded.
#[derive(Debug, Clone)]
pub struct RejectionRow {
    /// Its id: stable, and rising in the order rejections were recorded.
    pub id: u64,
    /// When (ms since the epoch).
    pub at: u64,
    /// The site that made the change.
    pub site: SiteId,
    /// The change's outbox sequence at that site.
    pub change_seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub record_id: String,
    /// Why it was refused.
    pub reason: String,
    /// The fields the change wrote (none for a delete), so an application can enter them
    /// again; `None` when not known (recorded before they were kept).
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A record as this site holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Its collection.
    pub collection: String,
    /// Its id.
    pub id: String,
    /// Its replicated state.
    pub state: RecordState,
    /// The sequence of its last change on this site.
    pub seq: u64,
}

/// What a site holds of one store (or of the organisation-wide records): two sites
/// hold identical replicas of it exactly when their digests are equal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreDigest {
    /// The store (`None`: organisation-wide records).
    pub store: Option<StoreId>,
    /// Records held, tombstones included.
    pub records: u64,
    /// SHA-256, as hex, over every record's collection, id and canonical state, in key order.
    pub digest: String,
}

/// A write made at this site.
#[derive(Debug, Clone)]
pub enum LocalWrite {
    /// Set these fields (others keep their values), creating the record if needed in
    /// `store` (`None`: organisation-wide).
    Put {
        /// The store of a new record; must match the store of an existing one.
        store: Option<StoreId>,
        /// The fields to set.
        fields: Map<String, Value>,
    },
    /// Delete the record.
    Delete,
}

impl LocalWrite {
    /// Makes this write at site `site` at `now_ms` on `state` (the record as this site
    /// holds it; empty when new), stamped by `clock`. Returns the change it made, which
    /// is to be queued when the site pushes. Refused when a record would move to
    /// another store; "not found" for deleting a record that is not there.
    pub fn apply(
        self,
        state: &mut RecordState,
        collection: &str,
        record_id: &str,
        clock: &mut Clock,
        (site, now_ms): (SiteId, u64),
    ) -> Result<RecordState, StoreError> {
        let change = match self {
            LocalWrite::Put { store, fields } => {
                if !state.is_empty() && store.is_some() && store != state.store {
                    return Err(StoreError::Refused(format!(
                        "record {record_id:?} belongs to {}; a record cannot move to another store",
                        describe_store(state.store)
                    )));
                }
                state.write(store, fields, clock, now_ms, site)?
            }
            LocalWrite::Delete => {
                if state.is_empty() || state.is_deleted() {
                    return Err(StoreError::NotFound(format!(
                        "no record {record_id:?} in collection {collection:?}"
                    )));
                }
                state.delete(clock, now_ms, site)
            }
        };
        // The change was built from this very state, so it names the same store.
        merge(state, &change).map_err(|e| StoreError::Refused(e.to_string()))?;
        Ok(change)
    }
}

/// Which records `list` returns.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this collection.
    pub collection: String,
    /// Only this store's records.
    pub store: Option<StoreId>,
    /// Only ids after this one (the cursor of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// Where a satellite stands in following its primary. Each part is saved in the same
/// transaction as the work it stands for, so a satellite stopped at any moment resumes
/// where it was, with nothing lost and nothing applied twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Every routed record up to this primary sequence is applied here.
    pub pull_cursor: u64,
    /// The assignment version whose purge is done (its backfill may still be pending).
    pub assignment_applied: u64,
    /// A backfill of newly assigned stores in progress.
    pub backfill: Option<Backfill>,
    /// The primary's incarnation when this site last followed it (0: not known).
    pub incarnation: u64,
}

/// The records of newly assigned stores, being pulled from the beginning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfill {
    /// The stores being backfilled.
    pub stores: Vec<StoreId>,
    /// Every record of those stores up to this primary sequence is applied here.
    pub cursor: u64,
}

/// One page of a pull as the primary's storage reads it, with where the primary stands.
#[derive(Debug, Clone, Default)]
pub struct PulledPage {
    /// Routed records after the cursor, in sequence order.
    pub records: Vec<PulledRecord>,
    /// The sequence of the last row looked at (records routed elsewhere are passed
    /// over), or the cursor asked from.
    pub next: u64,
    /// Whether more records are waiting.
    pub more: bool,
    /// The primary's latest sequence (of any organisation: it never goes back unless
    /// the primary's state does; a purge of records does not lower it).
    pub head: u64,
    /// The primary's incarnation ([`PrimaryStorage::incarnation`](crate::PrimaryStorage::incarnation)).
    pub incarnation: u64,
}

/// Which cursor a pulled page moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The main pull, of everything routed to the site.
    Pull,
    /// The backfill of newly assigned stores.
    Backfill,
}

/// What a satellite noted of its last sync rounds, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncNotes {
    /// When a round last succeeded (ms since the epoch; 0: never).
    pub last_sync: u64,
    /// The last failure, with when it happened (ms since the epoch).
    pub last_error: Option<(String, u64)>,
}

/// The digests of what a site holds, built record by record in key order (collection,
/// then id, by bytes): every backend hashes the same way, so two sites' digests are
/// equal exactly when they hold the same records.
#[derive(Default)]
pub struct Digests(std::collections::BTreeMap<Option<StoreId>, (u64, sha2::Sha256)>);

impl Digests {
    /// Adds one record (records must come in key order).
    pub fn add(&mut self, store: Option<StoreId>, collection: &str, id: &str, state: &[u8]) {
        use sha2::Digest;
        let (count, hash) = self.0.entry(store).or_default();
        *count += 1;
        // Each part is length-prefixed, so no two records hash alike by accident.
        for part in [collection.as_bytes(), id.as_bytes(), state] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }

    /// A digest per store, in store order.
    pub fn finish(self) -> Vec<StoreDigest> {
        use sha2::Digest;
        self.0
            .into_iter()
            .map(|(store, (records, hash))| StoreDigest {
                store,
                records,
                digest: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect()
    }
}

/// What a site holds and may write, as it is told in every pull: the stores of its
/// organisation it is assigned, and the collections restricted to the primary.
pub fn site_config(
    site: &SiteRow,
    org_stores: Vec<StoreRow>,
    restricted: std::collections::HashSet<String>,
) -> sitesync_protocol::SiteConfig {
    let stores = org_stores
        .into_iter()
        .filter(|s| site.assignment.routes(Some(s.id)))
        .map(|s| sitesync_protocol::StoreRef {
            id: s.id,
            name: s.name,
        })
        .collect();
    let mut restricted: Vec<String> = restricted.into_iter().collect();
    restricted.sort();
    sitesync_protocol::SiteConfig {
        assignment_version: site.assignment_version,
        all_stores: site.assignment.all_stores,
        stores,
        restricted,
    }
}
