//! What a site can tell about its data: the conflicts it found, the changes the primary
//! rejected, and a digest of each store for comparing replicas.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use sitesync_store::{ConflictRow, RejectionRow, StoreDigest};

impl Site {
    /// Concurrent edits of the same field found here, newest first, `limit` at most.
    pub fn conflicts(
        &self,
        actor: Actor,
        org: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ConflictRow>, ServiceError> {
        actor.local("read this site's conflict log")?;
        let org = self.org(org)?;
        Ok(self.records().conflicts(org.id, limit)?)
    }

    /// Changes of this site's organisation that the primary rejected, newest first.
    pub fn rejections(
        &self,
        actor: Actor,
        org: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RejectionRow>, ServiceError> {
        actor.local("read this site's rejection log")?;
        let org = self.org(org)?;
        Ok(self.records().rejections(org.id, limit)?)
    }

    /// One digest per store held (and one for organisation-wide records): two sites
    /// hold identical replicas of a store exactly when its digests match.
    pub fn digest(
        &self,
        actor: Actor,
        org: Option<&str>,
    ) -> Result<Vec<StoreDigest>, ServiceError> {
        actor.local("read this site's digest")?;
        let org = self.org(org)?;
        Ok(self.records().digest(org.id)?)
    }
}
