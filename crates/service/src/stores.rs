//! Stores of an organisation, and its restricted collections, on the primary.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use sitesync_store::{Org, StoreRow};

impl Site {
    /// Creates a store in an organisation (by id or name); returns it with its
    /// organisation.
    pub fn create_store(
        &self,
        actor: Actor,
        org: &str,
        name: &str,
    ) -> Result<(StoreRow, Org), ServiceError> {
        actor.local("create stores")?;
        self.primary_only()?;
        let org = self.primary()?.org(org)?;
        let store = self.primary()?.create_store(org.id, name)?;
        tracing::info!(org = org.id, store = store.id, %actor, "store created");
        Ok((store, org))
    }

    /// An organisation's stores.
    pub fn stores(&self, actor: Actor, org: &str) -> Result<Vec<StoreRow>, ServiceError> {
        actor.local("list stores")?;
        self.primary_only()?;
        let org = self.primary()?.org(org)?;
        Ok(self.primary()?.stores(org.id)?)
    }

    /// Makes a collection of an organisation writable on the primary only (catalogues,
    /// price lists); returns the organisation.
    pub fn restrict(&self, actor: Actor, org: &str, collection: &str) -> Result<Org, ServiceError> {
        actor.local("restrict collections")?;
        self.primary_only()?;
        let org = self.primary()?.org(org)?;
        self.primary()?.restrict(org.id, collection)?;
        tracing::info!(org = org.id, collection, %actor, "collection restricted");
        Ok(org)
    }

    /// The collections of an organisation only the primary may write.
    pub fn restricted(&self, actor: Actor, org: &str) -> Result<Vec<String>, ServiceError> {
        actor.local("list restricted collections")?;
        self.primary_only()?;
        let org = self.primary()?.org(org)?;
        Ok(self.primary()?.restricted(org.id)?)
    }
}
