//! Pushed changes and pulled records made ready to apply. Preparing is pure work
//! (checking what needs no database, and encoding each record as a site stores it),
//! done on the request's or the page's own thread, so that a backend's single writer
//! is left only the database work. Every backend applies the same prepared values.

use sitesync_core::{
    Assignment, Definition, OrgId, RecordState, Rejection, SiteId, StateSummary, StoreId, merge,
    validate,
};
use sitesync_protocol::{PulledRecord, PushResponse, PushedChange};
use std::collections::HashSet;
use std::sync::Arc;

/// What the primary did with one pushed batch.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// The answer for the satellite.
    pub response: PushResponse,
    /// How many changes were merged.
    pub applied: usize,
    /// How many concurrent edits were found.
    pub conflicts: usize,
}

/// One satellite's pushed batch.
#[derive(Debug, Clone, Copy)]
pub struct PushBatch<'a> {
    /// The satellite's organisation.
    pub org: OrgId,
    /// The satellite.
    pub site: SiteId,
    /// Its changes, in outbox order, prepared.
    pub changes: &'a [PreparedPush],
}

/// A pushed change made ready to apply: checked for everything that needs no database
/// (names, fields, who stamped it) and encoded as a new record. Preparing is pure work
/// that the primary does on the request's own thread, leaving the single writer only
/// the database work.
#[derive(Debug, Clone)]
pub struct PreparedPush {
    /// The change as pushed.
    pub change: PushedChange,
    /// The outcome of the checks that need no database.
    shape: Result<(), Rejection>,
    /// Another site than the pushing one that stamped it, and the newest of such stamps
    /// (ms): a satellite gives back what it received from others to a primary that went
    /// back ([`PreparedPush::check_origin`]).
    foreign: Option<(SiteId, u64)>,
    /// Its encoding as a new record.
    fresh: Encoded,
    /// The definition of its collection the primary holds, if it has one: the merged
    /// record is checked against it before it is kept ([`PreparedPush::define`]).
    definition: Option<Arc<Definition>>,
}

impl PreparedPush {
    /// Gives the change its collection's definition, to be checked against once merged.
    pub fn define(&mut self, definition: Arc<Definition>) {
        self.definition = Some(definition);
    }

    /// The definition the merged record must fit, if its collection has one.
    pub fn definition(&self) -> Option<&Definition> {
        self.definition.as_deref()
    }

    /// Checks the record as merged against the collection's definition: the fields the
    /// change writes, and the record's required fields (a deleted record fits).
    pub fn check_definition(&self, merged: &RecordState) -> Result<(), Rejection> {
        let Some(definition) = self.definition() else {
            return Ok(());
        };
        if merged.is_deleted() {
            return Ok(());
        }
        let record = merged.values();
        let changed = self.change.change.fields.iter().map(|(k, f)| (k, &f.value));
        definition
            .check_change(changed, &record)
            .map_err(|refusal| Rejection::Unfit(refusal.to_string()))
    }
    /// The outcome of the checks that need no database.
    pub fn shape(&self) -> &Result<(), Rejection> {
        &self.shape
    }

    /// The change encoded as a new record.
    pub fn fresh(&self) -> &Encoded {
        &self.fresh
    }

    /// Prepares a change pushed by `site`, received when the primary's clock read
    /// `now_ms`.
    pub fn new(change: PushedChange, site: SiteId, now_ms: u64) -> PreparedPush {
        let state = &change.change;
        // A counter's change carries the pushing site's own sum only.
        let adds = state.fields.values().filter_map(|f| f.counter.as_deref());
        let foreign = state
            .fields
            .values()
            .map(|f| f.stamp)
            .chain(adds.flat_map(|c| c.adds()))
            .chain(state.deleted)
            .filter(|s| s.site != site)
            .map(|s| (s.site, s.millis()))
            .reduce(|a, b| (a.0, a.1.max(b.1)));
        PreparedPush {
            shape: check_shape(&change, site, now_ms),
            foreign,
            fresh: Encoded::new(&change.change),
            change,
            definition: None,
        }
    }

    /// Checks that the pushing site stamped the change, or else that every stamp of
    /// another site was made before the primary went back (`went_back_ms`: when its
    /// incarnation began, with [`MAX_AHEAD_MS`] for clocks running ahead): a satellite
    /// gives back the records it received from others then, never writes as another
    /// site now.
    pub fn check_origin(&self, site: SiteId, went_back_ms: u64) -> Result<(), Rejection> {
        match self.foreign {
            Some((other, newest)) if newest > went_back_ms.saturating_add(MAX_AHEAD_MS) => {
                Err(Rejection::Invalid(format!(
                    "the change is stamped by site {other}, not by the pushing site {site}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A record state merged into nothing (which makes it canonical) and encoded: what
/// a site stores for a record it did not hold.
#[derive(Debug, Clone)]
pub struct Encoded {
    store: Option<StoreId>,
    deleted: bool,
    bytes: Vec<u8>,
}

impl Encoded {
    /// The record's store (`None`: organisation-wide).
    pub fn store(&self) -> Option<StoreId> {
        self.store
    }

    /// Whether the record is a bare tombstone.
    pub fn deleted(&self) -> bool {
        self.deleted
    }

    /// The canonical encoding of the record's state.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Encodes `state` as a new record.
    pub fn new(state: &RecordState) -> Encoded {
        // A state without a field hidden by its tombstone (nearly every change) is what
        // merging it into nothing gives: it is encoded as it is, without that copy.
        if state.fields.values().all(|f| !f.hidden_by(state.deleted)) {
            return Encoded {
                store: state.store,
                deleted: state.is_deleted(),
                bytes: state.encode(),
            };
        }
        let mut fresh = RecordState::default();
        // Merging into an empty state cannot meet another store.
        let _ = merge(&mut fresh, state);
        Encoded {
            store: fresh.store,
            deleted: fresh.is_deleted(),
            bytes: fresh.encode(),
        }
    }
}

/// A pulled record made ready to apply: checked, and encoded as the database will hold
/// it. Preparing is pure work that a satellite does while earlier pages are written;
/// it keeps only the bytes (not the decoded state), so many pages can wait in memory.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub id: String,
    /// The latest clock reading in the record, for this site's clock.
    latest: u64,
    /// Its canonical encoding.
    fresh: Encoded,
}

impl Prepared {
    /// The latest clock reading in the record, for this site's clock.
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// The record encoded as this site will hold it.
    pub fn fresh(&self) -> &Encoded {
        &self.fresh
    }

    /// Prepares a pulled record; fails, naming the record, when its state is not a
    /// valid record state.
    pub fn new(record: PulledRecord) -> Result<Prepared, String> {
        let unreadable =
            |e: serde_json::Error| format!("record {}/{}: {e}", record.collection, record.id);
        let summary = StateSummary::read(record.state.get().as_bytes()).map_err(unreadable)?;
        // The primary sends states in their stored, canonical form; such bytes are kept
        // as they came, without building the state. A state that is not canonical (a
        // field hidden by the tombstone) is put in canonical form first.
        let fresh = if summary.canonical {
            // The bytes move over without a copy.
            let text: Box<str> = record.state.into();
            Encoded {
                store: summary.store,
                deleted: summary.deleted,
                bytes: text.into_boxed_bytes().into_vec(),
            }
        } else {
            let state = record.decode_state().map_err(unreadable)?;
            Encoded::new(&state)
        };
        Ok(Prepared {
            collection: record.collection,
            id: record.id,
            latest: summary.latest.map_or(0, |s| s.hlc),
            fresh,
        })
    }
}

/// Checks what needs no database in a pushed change: its names, its fields, and that
/// no stamp is far ahead.
pub(crate) fn check_shape(
    change: &PushedChange,
    site: SiteId,
    now_ms: u64,
) -> Result<(), Rejection> {
    let invalid = |e: sitesync_core::InvalidInput| Rejection::Invalid(e.to_string());
    validate::collection(&change.collection).map_err(invalid)?;
    validate::record_id(&change.id).map_err(invalid)?;
    let state = &change.change;
    if state.fields.len() > validate::MAX_FIELDS {
        return Err(Rejection::Invalid(format!(
            "the change sets {} fields; the limit is {}",
            state.fields.len(),
            validate::MAX_FIELDS
        )));
    }
    for (name, field) in &state.fields {
        validate::field(name, &field.value).map_err(invalid)?;
    }
    if state.fields.is_empty() && state.deleted.is_none() {
        return Err(Rejection::Invalid("the change writes nothing".into()));
    }
    let stamps = state.fields.values().map(|f| f.stamp).chain(state.deleted);
    // A stamp far in the future would win every later edit and drag every site's
    // clock along with it (the clock never goes back), so it is refused.
    if let Some(ahead) = stamps
        .map(|s| s.millis())
        .max()
        .filter(|ms| *ms > now_ms + MAX_AHEAD_MS)
    {
        return Err(Rejection::Invalid(format!(
            "the change is stamped {} hours ahead of the primary's clock; correct the clock of site {site}",
            // Rounded: a site 30 hours ahead is read a few milliseconds later.
            (ahead - now_ms + 1_800_000) / 3_600_000
        )));
    }
    Ok(())
}

/// How far ahead of the primary's clock a pushed change may be stamped: clocks of
/// sites may disagree by hours, but not by more than a day.
pub const MAX_AHEAD_MS: u64 = 24 * 3_600_000;

/// Checks that the site may write what the change writes: `stores` are the
/// organisation's stores, `writable` what the site may write.
pub fn check_rights(
    change: &PushedChange,
    writable: &Assignment,
    restricted: &HashSet<String>,
    stores: &HashSet<StoreId>,
) -> Result<(), Rejection> {
    let store = change.change.store;
    if let Some(store) = store
        && !stores.contains(&store)
    {
        return Err(Rejection::UnknownStore(store));
    }
    writable.may_write(store, restricted.contains(&change.collection))
}
