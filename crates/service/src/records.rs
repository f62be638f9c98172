//! Records on this site: put, get (waiting for it to arrive), list and delete, as the
//! CLI's `sitesync record …` and the local API's `/api/v1/{collection}[/{id}]` ask.
//!
//! A write is checked here the way the primary would check it (the store is held, the
//! collection is not restricted), so a refused change is never queued.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use serde::Serialize;
use serde_json::{Map, Value};
use sitesync_core::{OrgId, StoreId, time, validate};
use sitesync_store::{ListQuery, LocalWrite, StoredRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most records one list call returns.
pub const MAX_LIST: u32 = 10_000;

/// The longest a read waits for a record to arrive.
pub const MAX_READ_WAIT: Duration = Duration::from_secs(60);

/// A record as the CLI and the local API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    /// The record's id.
    pub id: String,
    /// Its collection.
    pub collection: String,
    /// Its store's name; `null` for organisation-wide records.
    pub store: Option<String>,
    /// Its visible fields.
    pub fields: Map<String, Value>,
    /// Whether it is deleted.
    pub deleted: bool,
    /// When it last changed (RFC 3339, from the change's clock).
    pub updated_at: Option<String>,
    /// The site that made its last change.
    pub origin_site: Option<u32>,
    /// At a satellite: the primary rejected this record's latest change here, and the
    /// rejection is not acknowledged yet (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RecordRejection>,
}

/// A record's latest change, rejected by the primary (see `sitesync rejections`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRejection {
    /// The rejection's id.
    pub id: u64,
    /// Why the primary refused the change.
    pub reason: String,
    /// When it was recorded here (RFC 3339).
    pub at: String,
}

/// Which store a record written here belongs to, as the writer said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice<'a> {
    /// Nothing said: an existing record keeps its store, and a new one goes where this
    /// site makes plain (see `Site::put_record`).
    Unsaid,
    /// This store, by id or name (`--store NAME`, `?store=NAME`).
    Store(&'a str),
    /// No store: every site of the organisation sees the record (`--org-wide`,
    /// `?org_wide=true`).
    OrgWide,
}

impl<'a> StoreChoice<'a> {
    /// The choice from the edges' two options, refusing both at once.
    pub fn from_options(store: Option<&'a str>, org_wide: bool) -> Result<Self, ServiceError> {
        match (store, org_wide) {
            (Some(store), false) => Ok(StoreChoice::Store(store)),
            (None, true) => Ok(StoreChoice::OrgWide),
            (None, false) => Ok(StoreChoice::Unsaid),
            (Some(store), true) => Err(ServiceError::Input(format!(
                "a record belongs to store {store:?} or is organisation-wide, not both: \
                 give either --store (?store=) or --org-wide (?org_wide=true)"
            ))),
        }
    }
}

/// What a waiting read listens to: the running node's signal that records changed,
/// and whether the node is stopping (then the read answers at once).
pub struct Changes<S: Fn() -> bool> {
    /// Bumped after every committed change to the records here.
    pub changed: watch::Receiver<u64>,
    /// Whether the node is stopping.
    pub stopping: S,
}

impl Site {
    /// Sets fields of a record (creating it), as this site.
    ///
    /// Which store the record belongs to is fixed when it is created, so it is never
    /// guessed where a guess could be wrong (see [`StoreChoice`] and
    /// [`Site::new_record_store`]); a store said for an existing record must be its own.
    pub fn put_record(
        &self,
        actor: Actor,
        org: Option<&str>,
        (collection, id): (&str, &str),
        body: Value,
        store: StoreChoice<'_>,
        now_ms: u64,
    ) -> Result<RecordView, ServiceError> {
        actor.local("write records here; a site's changes arrive by push")?;
        validate::collection(collection)?;
        validate::record_id(id)?;
        let fields = validate::fields(body)?;
        // A record exists through its fields' stamps: a write of no field would make a
        // record that is listed here but never reaches another site.
        if fields.is_empty() {
            return Err(ServiceError::Input(
                "the record body has no fields; set at least one, like {\"name\": \"Aspirin\"}"
                    .into(),
            ));
        }
        // A restricted collection is refused first: whatever the store, it would be.
        self.check_writable(collection, None)?;
        let org = self.org(org)?;
        let existing = self.records().record(org.id, collection, id)?;
        self.check_fits(org.id, (collection, id), &fields, existing.as_ref())?;
        let store = match existing.filter(|r| !r.state.is_empty()) {
            Some(record) => self.existing_record_store(org.id, &record, store)?,
            None => self.new_record_store(org.id, store)?,
        };
        self.write_record(
            org.id,
            (collection, id),
            LocalWrite::Put { store, fields },
            store,
            now_ms,
        )
    }

    /// The store of a record not here yet. At the primary, nothing said means
    /// organisation-wide, as it always has: the primary writes the organisation's
    /// reference data, and an operator there names a store for a store's record. At a
    /// satellite, nothing said means the one store it holds (or organisation-wide when it
    /// holds none); holding several, or every store, it cannot tell which the writer
    /// meant, so it asks rather than making the record organisation-wide, which would
    /// show it to every site.
    fn new_record_store(
        &self,
        org: OrgId,
        store: StoreChoice<'_>,
    ) -> Result<Option<StoreId>, ServiceError> {
        match store {
            StoreChoice::Store(name) => self.resolve_store(org, name).map(Some),
            StoreChoice::OrgWide => Ok(None),
            StoreChoice::Unsaid if self.is_primary() => Ok(None),
            StoreChoice::Unsaid => {
                let config = self.site_config()?;
                match config.stores.as_slice() {
                    [] if !config.all_stores => Ok(None),
                    [only] if !config.all_stores => Ok(Some(only.id)),
                    held => Err(ServiceError::StoreNeeded {
                        all_stores: config.all_stores,
                        held: held.iter().map(|s| s.name.clone()).collect(),
                    }),
                }
            }
        }
    }

    /// The store of a record already here: its own. A different store said (or
    /// organisation-wide said of a store's record, or the reverse) is refused: the
    /// writer believes the record is somewhere it is not.
    fn existing_record_store(
        &self,
        org: OrgId,
        record: &StoredRecord,
        store: StoreChoice<'_>,
    ) -> Result<Option<StoreId>, ServiceError> {
        let own = record.state.store;
        let said = match store {
            StoreChoice::Unsaid => return Ok(own),
            StoreChoice::OrgWide => None,
            StoreChoice::Store(name) => Some(self.resolve_store(org, name)?),
        };
        if said == own {
            return Ok(own);
        }
        let names = self.store_names(org)?;
        let name = |store: Option<StoreId>| match store {
            None => "organisation-wide (no store)".to_string(),
            Some(id) => format!(
                "store {:?}",
                names.get(&id).cloned().unwrap_or(id.to_string())
            ),
        };
        Err(ServiceError::StoreMismatch {
            collection: record.collection.clone(),
            id: record.id.clone(),
            own: name(own),
            said: name(said),
        })
    }

    /// Deletes a record, as this site.
    pub fn delete_record(
        &self,
        actor: Actor,
        org: Option<&str>,
        (collection, id): (&str, &str),
        now_ms: u64,
    ) -> Result<RecordView, ServiceError> {
        actor.local("delete records here; a site's changes arrive by push")?;
        validate::collection(collection)?;
        validate::record_id(id)?;
        let org = self.org(org)?;
        let existing = self.records().record(org.id, collection, id)?;
        let store = existing.as_ref().and_then(|r| r.state.store);
        self.write_record(org.id, (collection, id), LocalWrite::Delete, store, now_ms)
    }

    /// Checks and makes a local write of a record of `store`.
    fn write_record(
        &self,
        org: OrgId,
        (collection, id): (&str, &str),
        write: LocalWrite,
        store: Option<StoreId>,
        now_ms: u64,
    ) -> Result<RecordView, ServiceError> {
        self.check_writable(collection, store)?;
        let record = self.records().write_local(
            org,
            collection,
            id,
            write,
            self.config.site_id,
            now_ms,
            !self.is_primary(),
        )?;
        Ok(view(&record, &self.store_names(org)?))
    }

    /// One live record.
    pub fn get_record(
        &self,
        actor: Actor,
        org: Option<&str>,
        (collection, id): (&str, &str),
    ) -> Result<RecordView, ServiceError> {
        actor.local("read records here; a site's records arrive by pull")?;
        validate::collection(collection)?;
        validate::record_id(id)?;
        let org = self.org(org)?;
        let rejected = self.record_rejection(org.id, (collection, id))?;
        let (collection, id) = (collection.to_string(), id.to_string());
        match self.records().record(org.id, &collection, &id)? {
            Some(record) if !record.state.is_deleted() => Ok(RecordView {
                rejected,
                ..view(&record, &self.store_names(org.id)?)
            }),
            Some(_) => Err(ServiceError::Deleted { collection, id }),
            None => match rejected {
                Some(rejection) => Err(ServiceError::TakenBack {
                    collection,
                    id,
                    reason: rejection.reason,
                }),
                None => Err(ServiceError::NoRecord { collection, id }),
            },
        }
    }

    /// The record's latest change as rejected by the primary, while that rejection is
    /// not acknowledged and nothing changed the record since (a satellite only).
    fn record_rejection(
        &self,
        org: OrgId,
        (collection, id): (&str, &str),
    ) -> Result<Option<RecordRejection>, ServiceError> {
        if self.is_primary() {
            return Ok(None);
        }
        let Some(row) = self.records().record_rejection(org, collection, id)? else {
            return Ok(None);
        };
        if row.id <= self.satellite()?.rejections_acknowledged()? {
            return Ok(None);
        }
        Ok(Some(RecordRejection {
            id: row.id,
            reason: row.reason,
            at: time::rfc3339(row.at),
        }))
    }

    /// Reads a record. With `wait_ms`, a record that is not (or no longer) here is
    /// waited for until it arrives or the time is up (at most [`MAX_READ_WAIT`]; then
    /// "not found"): a client that expects a record from another site learns of it the
    /// moment it is applied, without polling. Reads run on a blocking thread.
    pub async fn get_record_waiting<S: Fn() -> bool>(
        self: &Arc<Self>,
        actor: Actor,
        org: Option<String>,
        (collection, id): (String, String),
        wait_ms: Option<u64>,
        mut changes: Changes<S>,
    ) -> Result<RecordView, ServiceError> {
        let wait = Duration::from_millis(wait_ms.unwrap_or(0)).min(MAX_READ_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            changes.changed.borrow_and_update();
            let (site, org, key) = (self.clone(), org.clone(), (collection.clone(), id.clone()));
            let found = tokio::task::spawn_blocking(move || {
                site.get_record(actor, org.as_deref(), (&key.0, &key.1))
            })
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?;
            match found {
                Err(
                    ServiceError::NoRecord { .. }
                    | ServiceError::Deleted { .. }
                    | ServiceError::TakenBack { .. },
                ) if !(changes.stopping)()
                    && tokio::time::timeout_at(deadline, changes.changed.changed())
                        .await
                        .is_ok_and(|woken| woken.is_ok()) => {}
                found => return found,
            }
        }
    }

    /// Live records of a collection, in id order, `limit` (at most [`MAX_LIST`]) after
    /// the id `after`.
    pub fn list_records(
        &self,
        actor: Actor,
        org: Option<&str>,
        collection: &str,
        store: Option<&str>,
        (after, limit): (Option<String>, u32),
    ) -> Result<Vec<RecordView>, ServiceError> {
        actor.local("list records here; a site's records arrive by pull")?;
        validate::collection(collection)?;
        let org = self.org(org)?;
        let store = store.map(|s| self.resolve_store(org.id, s)).transpose()?;
        let query = ListQuery {
            collection: collection.to_string(),
            store,
            after,
            limit: limit.min(MAX_LIST),
        };
        let names = self.store_names(org.id)?;
        Ok(self
            .records()
            .list(org.id, &query)?
            .iter()
            .map(|r| view(r, &names))
            .collect())
    }
}

/// Presents a stored record.
pub fn view(record: &StoredRecord, store_names: &HashMap<StoreId, String>) -> RecordView {
    let latest = record.state.latest();
    RecordView {
        id: record.id.clone(),
        collection: record.collection.clone(),
        store: record.state.store.map(|s| {
            store_names
                .get(&s)
                .cloned()
                .unwrap_or_else(|| s.to_string())
        }),
        fields: record.state.values(),
        deleted: record.state.is_deleted(),
        updated_at: latest.map(|s| time::rfc3339(s.millis())),
        origin_site: latest.map(|s| s.site),
        rejected: None,
    }
}
