//! What a site can tell about its data: the conflicts it found, the changes the primary
//! rejected, and a digest of each store for comparing replicas.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use serde::Serialize;
use serde_json::{Map, Value};
use sitesync_core::time;
use sitesync_store::{ConflictRow, RejectionRow, StoreDigest};

/// A change the primary rejected, as `sitesync rejections` and
/// `GET /api/v1/_rejections` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionView {
    /// Its id: `sitesync rejections --ack ID` acknowledges it and every older one.
    pub id: u64,
    /// When it was recorded here (RFC 3339).
    pub at: String,
    /// The site that made the change.
    pub site: u32,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub record_id: String,
    /// Why the primary refused it.
    pub reason: String,
    /// What the change wrote (`null` when not known), to enter it again where it may go.
    pub fields: Option<Map<String, Value>>,
    /// Whether it was acknowledged.
    pub acknowledged: bool,
}

impl RejectionView {
    fn new(row: RejectionRow, mark: u64) -> RejectionView {
        RejectionView {
            acknowledged: row.id <= mark,
            id: row.id,
            at: time::rfc3339(row.at),
            site: row.site,
            collection: row.collection,
            record_id: row.record_id,
            reason: row.reason,
            fields: row.fields,
        }
    }
}

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

    /// Changes of this site's organisation that the primary rejected, newest first,
    /// `limit` at most: only those not yet acknowledged, or with `all` every one. The
    /// primary keeps no acknowledgement (a rejection is acknowledged at the site that
    /// made the change), so there every one is listed, none acknowledged.
    pub fn rejections(
        &self,
        actor: Actor,
        org: Option<&str>,
        all: bool,
        limit: u32,
    ) -> Result<Vec<RejectionView>, ServiceError> {
        actor.local("read this site's rejection log")?;
        let org = self.org(org)?;
        let mark = self.rejections_acknowledged()?;
        // Ids rise, so the newest rows are exactly those not acknowledged.
        Ok(self
            .records()
            .rejections(org.id, limit)?
            .into_iter()
            .map(|row| RejectionView::new(row, mark))
            .filter(|r| all || !r.acknowledged)
            .collect())
    }

    /// Acknowledges this satellite's rejections up to `through` (all: `None`), so that
    /// `status` and `sync` no longer report them. Returns the id acknowledged through.
    pub fn acknowledge_rejections(
        &self,
        actor: Actor,
        through: Option<u64>,
    ) -> Result<u64, ServiceError> {
        actor.local("acknowledge this site's rejections")?;
        if self.is_primary() {
            return Err(ServiceError::Input(
                "rejections are acknowledged at the satellite that made the change; \
                 the primary keeps its log as it is"
                    .into(),
            ));
        }
        Ok(self.satellite()?.acknowledge_rejections(through)?)
    }

    /// How many of this satellite's rejections are not acknowledged (0 on the primary).
    pub fn unacknowledged_rejections(&self) -> Result<u64, ServiceError> {
        if self.is_primary() {
            return Ok(0);
        }
        let org = self.config.org_id.unwrap_or_default();
        Ok(self
            .records()
            .rejection_count(org, self.rejections_acknowledged()?)?)
    }

    /// The newest acknowledged rejection's id (on the primary: 0, none).
    fn rejections_acknowledged(&self) -> Result<u64, ServiceError> {
        match self.is_primary() {
            true => Ok(0),
            false => Ok(self.satellite()?.rejections_acknowledged()?),
        }
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
