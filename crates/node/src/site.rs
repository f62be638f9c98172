//! A site opened from its data folder, and the record operations that the CLI and the
//! local API share: resolving organisation and store names, checking what this site may
//! write, and presenting records.

use crate::config::{Config, DataDir, Role};
use crate::error::NodeError;
use serde::Serialize;
use serde_json::{Map, Value};
use sitesync_core::{Assignment, OrgId, StoreId, time, validate};
use sitesync_protocol::{OrgRef, SiteConfig};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{
    ListQuery, LocalWrite, PrimaryStorage, SatelliteStorage, SiteStorage, StoredRecord,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most records one list call returns.
pub const MAX_LIST: u32 = 10_000;

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
}

/// The database of a site, by its role.
enum Storage {
    Primary(Box<dyn PrimaryStorage>),
    Satellite(Box<dyn SatelliteStorage>),
}

/// An opened site.
pub struct Site {
    /// Its data folder.
    pub dir: DataDir,
    /// Its configuration.
    pub config: Config,
    /// Its database.
    storage: Storage,
    /// The satellite's [`SiteConfig`] as last read or saved by this process. Only the
    /// sync agent changes it (through [`save_site_config`](Site::save_site_config)); a
    /// `sitesync sync` run beside a running `serve` can change it too, and `serve` then
    /// follows on its next pull. Record writes consult it several times each.
    site_config: Mutex<Option<SiteConfig>>,
}

impl Site {
    /// Opens the site in `dir`.
    pub fn open(dir: DataDir) -> Result<Site, NodeError> {
        let config = dir.load()?;
        let path = dir.db_path();
        let storage = match config.role {
            Role::Primary => Storage::Primary(Box::new(SqliteStore::open_primary(&path)?)),
            Role::Satellite => Storage::Satellite(Box::new(SqliteStore::open(&path)?)),
        };
        Ok(Site {
            dir,
            config,
            storage,
            site_config: Mutex::new(None),
        })
    }

    /// Its records and journal, whatever its role.
    pub fn records(&self) -> &dyn SiteStorage {
        match &self.storage {
            Storage::Primary(store) => store.as_ref(),
            Storage::Satellite(store) => store.as_ref(),
        }
    }

    /// The primary's storage; refused on a satellite.
    pub fn primary(&self) -> Result<&dyn PrimaryStorage, NodeError> {
        match &self.storage {
            Storage::Primary(store) => Ok(store.as_ref()),
            Storage::Satellite(_) => Err(NodeError::NotFound(
                "this site is a satellite; this is done on the primary".into(),
            )),
        }
    }

    /// A satellite's storage; refused on the primary.
    pub fn satellite(&self) -> Result<&dyn SatelliteStorage, NodeError> {
        match &self.storage {
            Storage::Satellite(store) => Ok(store.as_ref()),
            Storage::Primary(_) => Err(NodeError::BadRequest(
                "this site is the primary; this is done on a satellite".into(),
            )),
        }
    }

    /// Whether this is the primary.
    pub fn is_primary(&self) -> bool {
        self.config.role == Role::Primary
    }

    /// The organisation a record operation is for. The primary holds many and needs one
    /// named; a satellite holds one, and a name given there must be it.
    pub fn org(&self, named: Option<&str>) -> Result<OrgRef, NodeError> {
        if self.is_primary() {
            let Some(named) = named else {
                return Err(NodeError::BadRequest(
                    "the primary holds many organisations: name one with --org (or ?org= in the API)".into(),
                ));
            };
            let org = self.primary()?.org(named)?;
            return Ok(OrgRef {
                id: org.id,
                name: org.name,
            });
        }
        let own = OrgRef {
            id: self.config.org_id.unwrap_or_default(),
            name: self.config.org_name.clone().unwrap_or_default(),
        };
        match named {
            Some(n) if n != own.name && n != own.id.to_string() => {
                Err(NodeError::BadRequest(format!(
                    "this site belongs to organisation {:?}, not {n:?}",
                    own.name
                )))
            }
            _ => Ok(own),
        }
    }

    /// What the primary last said this satellite holds and may write.
    pub fn site_config(&self) -> Result<SiteConfig, NodeError> {
        let mut cached = self.site_config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = &*cached {
            return Ok(config.clone());
        }
        let config = self.satellite()?.site_config()?.unwrap_or_default();
        *cached = Some(config.clone());
        Ok(config)
    }

    /// Saves a new site configuration from the primary.
    pub fn save_site_config(&self, config: &SiteConfig) -> Result<(), NodeError> {
        self.satellite()?.save_site_config(config)?;
        *self.site_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        Ok(())
    }

    /// Takes in a new assignment from the primary (see
    /// [`SatelliteStorage::follow_assignment`]).
    pub fn follow_assignment(
        &self,
        config: &SiteConfig,
        added: &[StoreId],
    ) -> Result<(), NodeError> {
        self.satellite()?.follow_assignment(config, added)?;
        *self.site_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        Ok(())
    }

    /// The names of the stores this site knows, by id.
    pub fn store_names(&self, org: OrgId) -> Result<HashMap<StoreId, String>, NodeError> {
        Ok(if self.is_primary() {
            self.primary()?
                .stores(org)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect()
        } else {
            self.site_config()?
                .stores
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect()
        })
    }

    /// A store by id or name, among those this site knows.
    pub fn resolve_store(&self, org: OrgId, id_or_name: &str) -> Result<StoreId, NodeError> {
        let names = self.store_names(org)?;
        if let Some((id, _)) = names.iter().find(|(_, name)| name.as_str() == id_or_name) {
            return Ok(*id);
        }
        match id_or_name.parse::<StoreId>() {
            Ok(id) if names.contains_key(&id) => Ok(id),
            _ => Err(NodeError::BadRequest(format!(
                "unknown store {id_or_name:?}{}",
                if self.is_primary() {
                    "; `sitesync store list --org ORG` shows the stores"
                } else {
                    "; this site holds only the stores `sitesync status` lists"
                }
            ))),
        }
    }

    /// Sets fields of a record (creating it), as this site.
    pub fn put(
        &self,
        org: Option<&str>,
        collection: &str,
        id: &str,
        body: Value,
        store: Option<&str>,
        now_ms: u64,
    ) -> Result<RecordView, NodeError> {
        validate::collection(collection)?;
        validate::record_id(id)?;
        let fields = validate::fields(body)?;
        // A record exists through its fields' stamps: a write of no field would make a
        // record that is listed here but never reaches another site.
        if fields.is_empty() {
            return Err(NodeError::BadRequest(
                "the record body has no fields; set at least one, like {\"name\": \"Aspirin\"}"
                    .into(),
            ));
        }
        let org = self.org(org)?;
        let store = store.map(|s| self.resolve_store(org.id, s)).transpose()?;
        let existing = self.records().record(org.id, collection, id)?;
        let store = existing
            .as_ref()
            .filter(|r| !r.state.is_empty())
            .map_or(store, |r| r.state.store.or(store));
        self.check_writable(collection, store)?;
        let record = self.records().write_local(
            org.id,
            collection,
            id,
            LocalWrite::Put { store, fields },
            self.config.site_id,
            now_ms,
            !self.is_primary(),
        )?;
        self.view(org.id, &record)
    }

    /// Deletes a record, as this site.
    pub fn delete(
        &self,
        org: Option<&str>,
        collection: &str,
        id: &str,
        now_ms: u64,
    ) -> Result<RecordView, NodeError> {
        validate::collection(collection)?;
        validate::record_id(id)?;
        let org = self.org(org)?;
        let existing = self.records().record(org.id, collection, id)?;
        let store = existing.as_ref().and_then(|r| r.state.store);
        self.check_writable(collection, store)?;
        let record = self.records().write_local(
            org.id,
            collection,
            id,
            LocalWrite::Delete,
            self.config.site_id,
            now_ms,
            !self.is_primary(),
        )?;
        self.view(org.id, &record)
    }

    /// One live record.
    pub fn get(
        &self,
        org: Option<&str>,
        collection: &str,
        id: &str,
    ) -> Result<RecordView, NodeError> {
        validate::collection(collection)?;
        validate::record_id(id)?;
        let org = self.org(org)?;
        match self.records().record(org.id, collection, id)? {
            Some(record) if !record.state.is_deleted() => self.view(org.id, &record),
            Some(_) => Err(NodeError::NotFound(format!(
                "record {id:?} in {collection:?} was deleted"
            ))),
            None => Err(NodeError::NotFound(format!(
                "no record {id:?} in collection {collection:?}"
            ))),
        }
    }

    /// Live records of a collection, in id order, `limit` at most after the id `after`.
    pub fn list(
        &self,
        org: Option<&str>,
        collection: &str,
        store: Option<&str>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<RecordView>, NodeError> {
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

    /// Refuses a write that the primary would reject anyway, before it is made.
    fn check_writable(&self, collection: &str, store: Option<StoreId>) -> Result<(), NodeError> {
        if self.is_primary() {
            return Ok(());
        }
        let config = self.site_config()?;
        let assignment = Assignment {
            all_stores: config.all_stores,
            stores: config.stores.iter().map(|s| s.id).collect(),
        };
        let restricted = config.restricted.iter().any(|c| c == collection);
        assignment.may_write(store, restricted).map_err(|reason| {
            NodeError::Forbidden(format!("cannot write {collection:?} here: {reason}"))
        })
    }

    fn view(&self, org: OrgId, record: &StoredRecord) -> Result<RecordView, NodeError> {
        Ok(view(record, &self.store_names(org)?))
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
    }
}
