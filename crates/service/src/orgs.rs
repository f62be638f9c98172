//! Organisations on the primary: create, list, show, rotate the sync key, delete.

use crate::actor::Actor;
use crate::error::{Refusal, ServiceError};
use crate::site::Site;
use sitesync_core::OrgId;
use sitesync_store::{AuditAction, Org, Role, StoreRow};

/// An organisation with its current sync key (shown read-only, never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKey {
    /// The organisation.
    pub org: Org,
    /// Its current sync key.
    pub sync_key: String,
}

/// One line of the organisations list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSummary {
    /// The organisation.
    pub org: Org,
    /// How many stores it has.
    pub stores: usize,
    /// How many satellites it has enrolled (revoked ones included).
    pub sites: usize,
}

/// An organisation in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgDetail {
    /// The organisation and its sync key.
    pub key: OrgKey,
    /// Its stores.
    pub stores: Vec<StoreRow>,
    /// Its collections only the primary may write.
    pub restricted: Vec<String>,
}

impl Site {
    /// Creates an organisation; its sync key enrols its sites.
    pub fn create_org(
        &self,
        actor: Actor,
        name: &str,
        now_ms: u64,
    ) -> Result<OrgKey, ServiceError> {
        actor.local("create organisations")?;
        let org = self.primary()?.create_org(name, now_ms)?;
        tracing::info!(org = org.id, %actor, "organisation created");
        self.audit(
            actor,
            Some(org.id),
            AuditAction::OrgCreated,
            org.name.clone(),
        )?;
        self.with_key(org)
    }

    /// Every organisation, with how many stores and sites it has.
    pub fn orgs(&self, actor: Actor) -> Result<Vec<OrgSummary>, ServiceError> {
        actor.local("list organisations")?;
        let sites = self.primary()?.sites()?;
        self.primary()?
            .orgs()?
            .into_iter()
            .map(|org| {
                Ok(OrgSummary {
                    stores: self.primary()?.stores(org.id)?.len(),
                    sites: sites.iter().filter(|s| s.org == org.id).count(),
                    org,
                })
            })
            .collect()
    }

    /// An organisation (by id or name) with its sync key, stores and restricted
    /// collections.
    pub fn show_org(&self, actor: Actor, org: &str) -> Result<OrgDetail, ServiceError> {
        let org = self.org_for(actor, org, Role::Viewer, "see organisations")?;
        Ok(OrgDetail {
            stores: self.primary()?.stores(org.id)?,
            restricted: self.primary()?.restricted(org.id)?,
            key: self.with_key(org)?,
        })
    }

    /// Issues a new sync key: the old one no longer enrols sites; enrolled sites keep
    /// working.
    pub fn rotate_key(&self, actor: Actor, org: &str) -> Result<OrgKey, ServiceError> {
        let org = self.org_for(actor, org, Role::Admin, "rotate the sync key")?;
        let org = self.primary()?.rotate_key(org.id)?;
        tracing::info!(org = org.id, %actor, "sync key rotated");
        let detail = format!("generation {}", org.key_generation);
        self.audit(actor, Some(org.id), AuditAction::KeyRotated, detail)?;
        self.with_key(org)
    }

    /// Deletes an organisation, an owner's decision, once `confirm` repeats its name and
    /// none of its sites is enrolled any more (revoke them first): its records, stores,
    /// members and licence go for good. Returns its name.
    pub fn delete_org(
        &self,
        actor: Actor,
        org: &str,
        confirm: &str,
        now_ms: u64,
    ) -> Result<String, ServiceError> {
        let org = self.org_for(actor, org, Role::Owner, "delete the organisation")?;
        if confirm.trim() != org.name {
            let english = format!(
                "type the organisation's name, {:?}, to delete it; nothing was deleted",
                org.name
            );
            return Err(Refusal::new("confirm_name", english)
                .with("name", &org.name)
                .into());
        }
        let enrolled = self.enrolled_sites(org.id)?;
        if enrolled > 0 {
            let english = format!(
                "{enrolled} site(s) of the organisation are still enrolled: revoke them first; nothing was deleted"
            );
            return Err(Refusal::new("sites_enrolled", english)
                .with("n", enrolled)
                .into());
        }
        self.primary()?.delete_org(org.id, now_ms)?;
        tracing::warn!(org = org.id, %actor, "organisation deleted");
        let deleted = AuditAction::OrgDeleted;
        self.audit(actor, Some(org.id), deleted, org.name.clone())?;
        Ok(org.name)
    }

    /// How many sites of an organisation are enrolled (not revoked).
    pub(crate) fn enrolled_sites(&self, org: OrgId) -> Result<usize, ServiceError> {
        let sites = self.primary()?.sites()?;
        Ok(sites.iter().filter(|s| s.org == org && !s.revoked).count())
    }

    fn with_key(&self, org: Org) -> Result<OrgKey, ServiceError> {
        Ok(OrgKey {
            sync_key: self.sync_key(&org)?,
            org,
        })
    }
}
