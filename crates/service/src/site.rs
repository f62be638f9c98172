//! A site opened from its data folder: what every use-case works on, with its storage
//! by role. Also the lookups the use-cases share (which organisation, which store,
//! what this satellite may write).

use crate::actor::Actor;
use crate::config::{Config, DataDir, Role};
use crate::definitions::Definitions;
use crate::error::ServiceError;
use crate::secrets::SyncKeys;
use sitesync_core::{Assignment, OrgId, StoreId};
use sitesync_postgres::PgStore;
use sitesync_protocol::{OrgRef, SiteConfig};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{
    Org, PrimaryStorage, Role as MemberRole, SatelliteStorage, SiteStorage, SyncState,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    /// Its database. Edges (the CLI, the local API) go through the use-cases; the sync
    /// paths reach it through [`primary`](Site::primary) and
    /// [`satellite`](Site::satellite).
    storage: Storage,
    /// Primary: derives and checks sync keys (from `primary.key`); `None` on a satellite.
    pub keys: Option<SyncKeys>,
    /// The satellite's [`SiteConfig`] as last read or saved by this process. Only the
    /// sync agent changes it (through [`save_site_config`](Site::save_site_config)); a
    /// `sitesync sync` run beside a running `serve` can change it too, and `serve` then
    /// follows on its next pull. Record writes consult it several times each.
    site_config: Mutex<Option<SiteConfig>>,
    /// Each organisation's collection definitions, parsed, with the version of the
    /// definitions collection they were read at (see `Site::definitions`): a write
    /// costs one indexed read to know they are current, never a parse.
    pub(crate) definitions: Mutex<HashMap<OrgId, Arc<Definitions>>>,
}

/// What a satellite noted about its last sync rounds, for `status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncNotes {
    /// When it last finished a sync (ms since the epoch; 0: never).
    pub last_sync: u64,
    /// The last sync error, when it is newer than the last successful sync.
    pub last_error: Option<String>,
}

impl Site {
    /// Opens the site in `dir`; a primary reads its `primary.key` too.
    pub fn open(dir: DataDir) -> Result<Site, ServiceError> {
        let config = dir.load()?;
        let path = dir.db_path();
        let (storage, keys) = match config.role {
            Role::Primary => {
                let key = dir.read_secret(&dir.primary_key_path())?;
                let store: Box<dyn PrimaryStorage> = match &config.database {
                    Some(url) => Box::new(PgStore::open(url)?),
                    None => Box::new(SqliteStore::open_primary(&path)?),
                };
                (Storage::Primary(store), Some(SyncKeys::new(key.as_bytes())))
            }
            Role::Satellite => (
                Storage::Satellite(Box::new(SqliteStore::open(&path)?)),
                None,
            ),
        };
        Ok(Site {
            dir,
            config,
            storage,
            keys,
            site_config: Mutex::new(None),
            definitions: Mutex::new(HashMap::new()),
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
    pub fn primary(&self) -> Result<&dyn PrimaryStorage, ServiceError> {
        match &self.storage {
            Storage::Primary(store) => Ok(store.as_ref()),
            Storage::Satellite(_) => Err(ServiceError::Satellite),
        }
    }

    /// A satellite's storage; on the primary, a caller asked for a satellite's part.
    pub fn satellite(&self) -> Result<&dyn SatelliteStorage, ServiceError> {
        match &self.storage {
            Storage::Satellite(store) => Ok(store.as_ref()),
            Storage::Primary(_) => Err(ServiceError::Invariant(
                "a satellite's storage was asked of the primary".into(),
            )),
        }
    }

    /// Whether this is the primary.
    pub fn is_primary(&self) -> bool {
        self.config.role == Role::Primary
    }

    /// The primary's sync keys. `open` reads them for every primary, so their absence
    /// is a bug; callers have reached the primary's storage first.
    pub(crate) fn keys(&self) -> Result<&SyncKeys, ServiceError> {
        self.keys
            .as_ref()
            .ok_or_else(|| ServiceError::Invariant("the primary's sync keys are not loaded".into()))
    }

    /// The current sync key of an organisation.
    pub(crate) fn sync_key(&self, org: &sitesync_store::Org) -> Result<String, ServiceError> {
        Ok(self.keys()?.key(org.id, org.key_generation))
    }

    /// The organisation a record operation is for. The primary holds many and needs one
    /// named; a satellite holds one, and a name given there must be it.
    pub fn org(&self, named: Option<&str>) -> Result<OrgRef, ServiceError> {
        if self.is_primary() {
            let Some(named) = named else {
                return Err(ServiceError::Input(
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
                Err(ServiceError::Input(format!(
                    "this site belongs to organisation {:?}, not {n:?}",
                    own.name
                )))
            }
            _ => Ok(own),
        }
    }

    /// An organisation of the primary (by id or name) in which `actor` may `what`,
    /// which needs the role `least` of a member (see [`Actor::in_org`]).
    pub(crate) fn org_for(
        &self,
        actor: Actor,
        org: &str,
        least: MemberRole,
        what: &'static str,
    ) -> Result<Org, ServiceError> {
        let org = self.primary()?.org(org)?;
        actor.in_org(org.id, least, what)?;
        Ok(org)
    }

    /// What the primary last said this satellite holds and may write.
    pub fn site_config(&self) -> Result<SiteConfig, ServiceError> {
        let mut cached = self.site_config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = &*cached {
            return Ok(config.clone());
        }
        let config = self.satellite()?.saved_site_config()?.unwrap_or_default();
        *cached = Some(config.clone());
        Ok(config)
    }

    /// Saves a site configuration from the primary and, with `applied`, that its
    /// assignment version is applied (see [`SatelliteStorage::save_site_config`]).
    pub fn save_site_config(
        &self,
        config: &SiteConfig,
        applied: Option<u64>,
    ) -> Result<(), ServiceError> {
        self.satellite()?.save_site_config(config, applied)?;
        *self.site_config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config.clone());
        Ok(())
    }

    /// What a satellite noted about its sync rounds (nothing, on the primary).
    pub(crate) fn sync_notes(&self) -> Result<SyncNotes, ServiceError> {
        let Storage::Satellite(store) = &self.storage else {
            return Ok(SyncNotes::default());
        };
        let notes = store.sync_notes()?;
        Ok(SyncNotes {
            last_sync: notes.last_sync,
            last_error: notes
                .last_error
                .filter(|(_, at)| *at > notes.last_sync)
                .map(|(error, _)| error),
        })
    }

    /// Where a satellite stands in following its primary.
    pub fn sync_state(&self) -> Result<SyncState, ServiceError> {
        Ok(self.satellite()?.sync_state()?)
    }

    /// The names of the stores this site knows, by id.
    pub fn store_names(&self, org: OrgId) -> Result<HashMap<StoreId, String>, ServiceError> {
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
    pub fn resolve_store(&self, org: OrgId, id_or_name: &str) -> Result<StoreId, ServiceError> {
        let names = self.store_names(org)?;
        if let Some((id, _)) = names.iter().find(|(_, name)| name.as_str() == id_or_name) {
            return Ok(*id);
        }
        match id_or_name.parse::<StoreId>() {
            Ok(id) if names.contains_key(&id) => Ok(id),
            _ => Err(ServiceError::Input(format!(
                "unknown store {id_or_name:?}{}",
                if self.is_primary() {
                    "; `sitesync store list --org ORG` shows the stores"
                } else {
                    "; this site holds only the stores `sitesync status` lists"
                }
            ))),
        }
    }

    /// Refuses a write that the primary would reject anyway, before it is made. With
    /// no store (organisation-wide) only a restricted collection is refused.
    pub(crate) fn check_writable(
        &self,
        collection: &str,
        store: Option<StoreId>,
    ) -> Result<(), ServiceError> {
        if self.is_primary() {
            return Ok(());
        }
        let config = self.site_config()?;
        let assignment = Assignment {
            all_stores: config.all_stores,
            stores: config.stores.iter().map(|s| s.id).collect(),
        };
        let restricted = config.restricted.iter().any(|c| c == collection);
        assignment
            .may_write(store, restricted)
            .map_err(|reason| ServiceError::NotWritable {
                collection: collection.to_string(),
                reason: reason.to_string(),
            })
    }
}
