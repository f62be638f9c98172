//! Stores of an organisation, and its restricted collections, on the primary.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use serde::Serialize;
use sitesync_core::validate;
use sitesync_store::{AuditAction, Org, Role, StoreRow};

/// A collection of an organisation, as `collection list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionView {
    /// Its name.
    pub name: String,
    /// How many live records the primary holds in it.
    pub records: u64,
    /// Whether only the primary may write it.
    pub restricted: bool,
    /// Its definition's fingerprint, when it has one (absent otherwise, so scripts
    /// reading the list before definitions existed read it unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined: Option<String>,
}

impl Site {
    /// Creates a store in an organisation (by id or name); returns it with its
    /// organisation.
    pub fn create_store(
        &self,
        actor: Actor,
        org: &str,
        name: &str,
    ) -> Result<(StoreRow, Org), ServiceError> {
        let org = self.org_for(actor, org, Role::Manager, "create stores")?;
        let store = self.primary()?.create_store(org.id, name)?;
        tracing::info!(org = org.id, store = store.id, %actor, "store created");
        let detail = format!("{} ({})", store.name, store.id);
        self.audit(actor, Some(org.id), AuditAction::StoreCreated, detail)?;
        Ok((store, org))
    }

    /// An organisation's stores.
    pub fn stores(&self, actor: Actor, org: &str) -> Result<Vec<StoreRow>, ServiceError> {
        let org = self.org_for(actor, org, Role::Viewer, "list stores")?;
        Ok(self.primary()?.stores(org.id)?)
    }

    /// Makes a collection of an organisation writable on the primary only (catalogues,
    /// price lists); returns the organisation.
    pub fn restrict(&self, actor: Actor, org: &str, collection: &str) -> Result<Org, ServiceError> {
        actor.local("restrict collections")?;
        let org = self.primary()?.org(org)?;
        self.primary()?.restrict(org.id, collection)?;
        tracing::info!(org = org.id, collection, %actor, "collection restricted");
        Ok(org)
    }

    /// The collections of an organisation only the primary may write.
    pub fn restricted(&self, actor: Actor, org: &str) -> Result<Vec<String>, ServiceError> {
        actor.local("list restricted collections")?;
        let org = self.primary()?.org(org)?;
        Ok(self.primary()?.restricted(org.id)?)
    }

    /// Renames a store of an organisation; satellites holding it see the new name on
    /// their next sync.
    pub fn rename_store(
        &self,
        actor: Actor,
        org: &str,
        store: &str,
        name: &str,
    ) -> Result<StoreRow, ServiceError> {
        actor.local("rename stores")?;
        let org = self.primary()?.org(org)?;
        let store = self.primary()?.store(org.id, store)?;
        let renamed = self.primary()?.rename_store(org.id, store.id, name)?;
        tracing::info!(org = org.id, store = store.id, %actor, "store renamed");
        Ok(renamed)
    }

    /// Deletes a store no site holds; its records go with it only with `purge`.
    /// Returns the store deleted and how many records were purged.
    pub fn delete_store(
        &self,
        actor: Actor,
        org: &str,
        store: &str,
        purge: bool,
    ) -> Result<(StoreRow, u64), ServiceError> {
        actor.local("delete stores")?;
        let org = self.primary()?.org(org)?;
        let store = self.primary()?.store(org.id, store)?;
        let purged = self.primary()?.delete_store(org.id, store.id, purge)?;
        tracing::info!(org = org.id, store = store.id, purged, %actor, "store deleted");
        Ok((store, purged))
    }

    /// Lets satellites write a restricted collection again; returns the organisation.
    pub fn unrestrict(
        &self,
        actor: Actor,
        org: &str,
        collection: &str,
    ) -> Result<Org, ServiceError> {
        actor.local("unrestrict collections")?;
        let org = self.primary()?.org(org)?;
        self.primary()?.unrestrict(org.id, collection)?;
        tracing::info!(org = org.id, collection, %actor, "collection unrestricted");
        Ok(org)
    }

    /// An organisation's collections: those holding records, and those restricted.
    pub fn collections(
        &self,
        actor: Actor,
        org: &str,
    ) -> Result<Vec<CollectionView>, ServiceError> {
        actor.local("list collections")?;
        let org = self.primary()?.org(org)?;
        let restricted = self.primary()?.restricted(org.id)?;
        let definitions = self.definitions(org.id)?;
        let fingerprint = |name: &str| definitions.get(name).map(|d| d.fingerprint());
        let mut views: Vec<CollectionView> = self
            .records()
            .collections(org.id)?
            .into_iter()
            // Reserved collections (the definitions) are not the organisation's data.
            .filter(|(name, _)| validate::collection(name).is_ok())
            .map(|(name, records)| CollectionView {
                restricted: restricted.contains(&name),
                defined: fingerprint(&name),
                name,
                records,
            })
            .collect();
        let unheld = restricted
            .into_iter()
            .map(|name| (name, true))
            .chain(definitions.names().map(|name| (name.to_string(), false)));
        for (name, restricted) in unheld {
            if !views.iter().any(|v| v.name == name) {
                views.push(CollectionView {
                    defined: fingerprint(&name),
                    name,
                    records: 0,
                    restricted,
                });
            }
        }
        views.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(views)
    }
}
