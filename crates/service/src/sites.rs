//! Satellites on the primary: enrolment, the list, one site, its stores (assignment)
//! and revocation.

use crate::actor::Actor;
use crate::config::SiteHealth;
use crate::error::{ServiceError, must_exist};
use crate::secrets::{SyncKeys, token_hash};
use crate::site::Site;
use sitesync_core::{Assignment, OrgId, SiteId};
use sitesync_protocol::{EnrolRequest, EnrolResponse, OrgRef};
use sitesync_store::{AuditAction, Org, Role, SiteRow, StoreError};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

/// A satellite as the list and `show` present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteView {
    /// The site as stored.
    pub row: SiteRow,
    /// Its organisation's name.
    pub organisation: String,
    /// The names of the stores it holds, or `["all"]`.
    pub stores: Vec<String>,
    /// Routed changes it has not pulled yet.
    pub behind: u64,
    /// How many of its changes the primary rejected, and why the newest was.
    pub rejected: (u64, Option<String>),
}

/// How recent a site's last contact must be for it to count as online: a serving
/// satellite waiting in a long poll is noted every 10 s (each note is a row written on
/// the primary: with 10,000 sites, every 5 s cost the idle primary a tenth more CPU).
pub const ONLINE_WITHIN_MS: u64 = 25_000;

/// How a site is doing, by when it was last heard of and what it has not pulled yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// In contact lately, and holding every change routed to it.
    InSync,
    /// In contact lately, still pulling what was routed to it.
    Online,
    /// Not heard of for longer than a long poll lasts.
    Late,
    /// Quiet for longer than `[sites] stale_after` (a day).
    Stale,
    /// Quiet for longer than `[sites] lost_after` (three days).
    Lost,
    /// Enrolled, never in contact since.
    NeverConnected,
    /// Refused for good.
    Revoked,
}

impl Health {
    /// Its name (`in_sync`, `late`, …), as the portal's words are keyed.
    pub fn name(self) -> &'static str {
        match self {
            Health::InSync => "in_sync",
            Health::Online => "online",
            Health::Late => "late",
            Health::Stale => "stale",
            Health::Lost => "lost",
            Health::NeverConnected => "never_connected",
            Health::Revoked => "revoked",
        }
    }
}

impl SiteView {
    /// How the site is doing at `now_ms`, with the thresholds of `[sites]`.
    pub fn health(&self, now_ms: u64, thresholds: &SiteHealth) -> Health {
        let quiet = |at: u64| now_ms.saturating_sub(at);
        match (self.row.revoked, self.row.last_contact) {
            (true, _) => Health::Revoked,
            (false, None) => Health::NeverConnected,
            (false, Some(at)) if quiet(at) > thresholds.lost_after().ms() => Health::Lost,
            (false, Some(at)) if quiet(at) > thresholds.stale_after().ms() => Health::Stale,
            (false, Some(at)) if quiet(at) > ONLINE_WITHIN_MS => Health::Late,
            (false, Some(_)) if self.behind > 0 => Health::Online,
            (false, Some(_)) => Health::InSync,
        }
    }

    /// Whether the site is online at `now_ms`: not revoked, and in contact lately.
    pub fn online(&self, now_ms: u64) -> bool {
        !self.row.revoked
            && self
                .row
                .last_contact
                .is_some_and(|at| now_ms.saturating_sub(at) <= ONLINE_WITHIN_MS)
    }
}

/// A site's new set of stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The site.
    pub site: SiteId,
    /// Its new assignment version: the site follows when it pulls a different one.
    pub assignment_version: u64,
}

/// A revoked site and its organisation's new sync key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The site.
    pub site: SiteId,
    /// Its organisation, at its new key generation.
    pub org: Org,
    /// The new sync key (the old one cannot enrol a site again).
    pub sync_key: String,
}

impl Site {
    /// When a quiet site counts as stale or lost (`[sites]` in `config.toml`).
    pub fn site_health(&self) -> SiteHealth {
        self.config.sites.clone().unwrap_or_default()
    }

    /// Every satellite, with its stores, last contact and how far behind it is; a
    /// portal member sees those of its organisation.
    pub fn sites(&self, actor: Actor) -> Result<Vec<SiteView>, ServiceError> {
        let of = match actor {
            Actor::Member { org, .. } => Some(org),
            _ => {
                actor.local("list sites")?;
                None
            }
        };
        let mut rejected = HashMap::new();
        self.primary()?
            .sites()?
            .into_iter()
            .filter(|row| of.is_none_or(|org| row.org == org))
            .map(|row| {
                let of_org = match rejected.entry(row.org) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(new) => new.insert(self.primary()?.rejections_by_site(row.org)?),
                };
                self.site_view(row, of_org)
            })
            .collect()
    }

    /// One satellite (by id or name). A site may see its own entry.
    pub fn show_site(&self, actor: Actor, site: &str) -> Result<SiteView, ServiceError> {
        let row = self.primary()?.site(site)?;
        actor.may_see_site(row.id, row.org)?;
        let rejected = self.primary()?.rejections_by_site(row.org)?;
        self.site_view(row, &rejected)
    }

    /// A site's view, given its organisation's rejections by site.
    fn site_view(
        &self,
        row: SiteRow,
        rejected: &[(SiteId, u64, String)],
    ) -> Result<SiteView, ServiceError> {
        let rejected = rejected
            .iter()
            .find(|(site, _, _)| *site == row.id)
            .map_or((0, None), |(_, count, why)| (*count, Some(why.clone())));
        let org = self.primary()?.org_by_id(row.org).map_err(must_exist)?;
        let stores = match row.assignment.all_stores {
            true => vec!["all".to_string()],
            false => self.store_names_in(row.org, &row.assignment)?,
        };
        let behind = self
            .primary()?
            .routed_after(row.org, &row.assignment, row.pull_cursor)?;
        Ok(SiteView {
            row,
            organisation: org.name,
            stores,
            behind,
            rejected,
        })
    }

    /// Changes the stores a satellite (by id or name) holds: `stores` by id or name, or
    /// every store. The site takes the change on its next sync.
    pub fn assign_site(
        &self,
        actor: Actor,
        site: &str,
        stores: &[String],
        all_stores: bool,
    ) -> Result<Assigned, ServiceError> {
        let what = "assign stores to sites";
        actor.person(what)?;
        let site = self.primary()?.site(site)?;
        actor.in_org(site.org, Role::Manager, what)?;
        let mut assignment = Assignment {
            all_stores,
            ..Assignment::default()
        };
        for name in stores {
            assignment
                .stores
                .insert(self.primary()?.store(site.org, name)?.id);
        }
        let version = self.primary()?.assign(site.id, &assignment)?;
        tracing::info!(site = site.id, version, %actor, "stores assigned");
        let detail = self.assignment_words(&site, &assignment)?;
        self.audit(actor, Some(site.org), AuditAction::StoresAssigned, detail)?;
        Ok(Assigned {
            site: site.id,
            assignment_version: version,
        })
    }

    /// Ends a satellite's access (its next request is refused) and rotates its
    /// organisation's sync key, which whoever ran the site knew.
    pub fn revoke_site(&self, actor: Actor, site: &str) -> Result<Revoked, ServiceError> {
        let site = self.revocable(actor, site)?;
        self.revoke(actor, site)
    }

    /// Revokes a satellite once the asker typed its name (the portal's confirmation):
    /// `None`, and nothing revoked, when the name typed is not the site's. Who may not
    /// revoke it is refused whatever they typed.
    pub fn revoke_site_named(
        &self,
        actor: Actor,
        site: &str,
        typed: &str,
    ) -> Result<Option<Revoked>, ServiceError> {
        let site = self.revocable(actor, site)?;
        if typed.trim() != site.name {
            return Ok(None);
        }
        self.revoke(actor, site).map(Some)
    }

    /// A site (by id or name) that `actor` may revoke.
    fn revocable(&self, actor: Actor, site: &str) -> Result<SiteRow, ServiceError> {
        actor.person("revoke sites")?;
        let site = self.primary()?.site(site)?;
        actor.in_org(site.org, Role::Admin, "revoke sites")?;
        Ok(site)
    }

    fn revoke(&self, actor: Actor, site: SiteRow) -> Result<Revoked, ServiceError> {
        let org = self.primary()?.revoke_site(site.id)?;
        tracing::info!(site = site.id, %actor, "site revoked");
        let detail = format!("{} ({})", site.name, site.id);
        self.audit(actor, Some(site.org), AuditAction::SiteRevoked, detail)?;
        Ok(Revoked {
            site: site.id,
            sync_key: self.sync_key(&org)?,
            org,
        })
    }

    /// A site's new stores in words, for the audit log: "till (2): North, South".
    fn assignment_words(
        &self,
        site: &SiteRow,
        assignment: &Assignment,
    ) -> Result<String, ServiceError> {
        let stores = match assignment.all_stores {
            true => "all stores".to_string(),
            false => self.store_names_in(site.org, assignment)?.join(", "),
        };
        Ok(format!("{} ({}): {stores}", site.name, site.id))
    }

    /// The names of the stores of `org` that `assignment` names.
    fn store_names_in(
        &self,
        org: OrgId,
        assignment: &Assignment,
    ) -> Result<Vec<String>, ServiceError> {
        Ok(self
            .primary()?
            .stores(org)?
            .into_iter()
            .filter(|s| assignment.stores.contains(&s.id))
            .map(|s| s.name)
            .collect())
    }

    /// Renames a satellite.
    pub fn rename_site(
        &self,
        actor: Actor,
        site: &str,
        name: &str,
    ) -> Result<SiteRow, ServiceError> {
        actor.local("rename sites")?;
        let site = self.primary()?.site(site)?;
        let renamed = self.primary()?.rename_site(site.id, name)?;
        tracing::info!(site = site.id, %actor, "site renamed");
        Ok(renamed)
    }

    /// Forgets a revoked satellite (one still enrolled is refused); returns it as it was.
    pub fn remove_site(&self, actor: Actor, site: &str) -> Result<SiteRow, ServiceError> {
        actor.local("remove sites")?;
        let site = self.primary()?.site(site)?;
        self.primary()?.remove_site(site.id)?;
        tracing::info!(site = site.id, %actor, "site removed");
        Ok(site)
    }

    /// Enrols a new satellite of the organisation whose sync key `request` presents:
    /// the key is the asker's credential, so this takes no [`Actor`]. A wrong or retired
    /// key is [`ServiceError::WrongSyncKey`], which the edge counts as a failed attempt.
    pub fn enrol(
        &self,
        request: &EnrolRequest,
        now_ms: u64,
    ) -> Result<EnrolResponse, ServiceError> {
        // Only a primary serves the sync API, so a satellite asked to enrol is a bug.
        let keys = self.keys.as_ref().ok_or_else(|| {
            ServiceError::Invariant("enrolment reached a site that is not a primary".into())
        })?;
        let org = self.key_holder(keys, &request.sync_key)?;
        let assignment = self.enrol_assignment(&org, request)?;
        // The secret is derived from the site and the moment it enrolled, never stored.
        let site_id = self
            .primary()?
            .create_site(
                org.id,
                request.site_id,
                request.name.as_deref(),
                &|site| token_hash(&keys.site_secret(org.id, site, now_ms)),
                &assignment,
                now_ms,
            )
            .map_err(|e| match e {
                StoreError::SiteLimit { limit } => {
                    tracing::warn!(org = org.id, limit, "enrolment past the site limit refused");
                    ServiceError::SiteLimit {
                        org: org.name.clone(),
                        limit,
                    }
                }
                other => other.into(),
            })?;
        let secret = keys.site_secret(org.id, site_id, now_ms);
        let row = self.primary()?.site_by_id(site_id).map_err(must_exist)?;
        let config = self.primary()?.site_config(&row)?;
        tracing::info!(site = site_id, org = org.id, name = %row.name, "site enrolled");
        Ok(EnrolResponse {
            site_id,
            secret,
            org: OrgRef {
                id: org.id,
                name: org.name,
            },
            config,
            incarnation: self.primary()?.incarnation()?,
        })
    }

    /// The organisation whose current sync key this is.
    fn key_holder(&self, keys: &SyncKeys, sync_key: &str) -> Result<Org, ServiceError> {
        let (org_id, _) = SyncKeys::parse(sync_key).ok_or(ServiceError::WrongSyncKey)?;
        let org = self
            .primary()?
            .org_by_id(org_id)
            .map_err(|_| ServiceError::WrongSyncKey)?;
        if !keys.verify(sync_key, org.id, org.key_generation) {
            tracing::warn!(org = org.id, "enrolment with a wrong or retired sync key");
            return Err(ServiceError::WrongSyncKey);
        }
        Ok(org)
    }

    fn enrol_assignment(
        &self,
        org: &Org,
        request: &EnrolRequest,
    ) -> Result<Assignment, ServiceError> {
        let mut assignment = Assignment {
            all_stores: request.all_stores,
            stores: BTreeSet::new(),
        };
        for store in &request.stores {
            let row = self.primary()?.store(org.id, store).map_err(|_| {
                ServiceError::Input(format!(
                    "unknown store {store:?} in organisation {:?}",
                    org.name
                ))
            })?;
            assignment.stores.insert(row.id);
        }
        Ok(assignment)
    }
}
