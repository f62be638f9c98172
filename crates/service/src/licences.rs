//! Licences on the primary (the rules: `sitesync_core::licence`): the operator shows and
//! changes an organisation's licence, its members see it, the features of an optional
//! module ask [`Site::require_module`] before they work, and enrolment refuses a site
//! past the limit (kept by storage in the transaction that enrols: see `sites`).

use crate::accounts::Membership;
use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use sitesync_core::licence::{Expiry, ModuleState};
use sitesync_core::{Day, Licence, LicenceChange, Module, OrgId};
use sitesync_store::{Account, AuditAction, Org, Role};

/// An organisation's licence as it stands on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceView {
    /// The organisation.
    pub org: Org,
    /// Its licence as set.
    pub licence: Licence,
    /// How many of its sites are enrolled and not revoked: what the limit counts.
    pub enrolled: u64,
    /// The day (UTC) the states below are for.
    pub today: Day,
}

impl LicenceView {
    /// Where a module stands today.
    pub fn module(&self, module: Module) -> ModuleState {
        self.licence.module(module, self.today)
    }

    /// What ends within the warning period, soonest first.
    pub fn expiring(&self) -> Vec<Expiry> {
        self.licence.expiring(self.today)
    }
}

/// A licence in a line, for the audit log: `sites 3, expires 2027-12-31, files on
/// until 2027-06-30, exchange-links on`.
fn describe(licence: &Licence) -> String {
    let sites = licence.sites.map_or("unlimited".into(), |n| n.to_string());
    let expires = licence.expires.map_or("never".into(), |d| d.to_string());
    let mut parts = vec![format!("sites {sites}"), format!("expires {expires}")];
    for (module, until) in &licence.modules {
        parts.push(match until {
            Some(day) => format!("{module} on until {day}"),
            None => format!("{module} on"),
        });
    }
    parts.join(", ")
}

impl Site {
    /// An organisation's licence (by id or name), for the operator.
    pub fn licence(
        &self,
        actor: Actor,
        org: &str,
        now_ms: u64,
    ) -> Result<LicenceView, ServiceError> {
        actor.local("see licences")?;
        let org = self.primary()?.org(org)?;
        self.licence_view(org, now_ms)
    }

    /// Changes an organisation's licence (by id or name) and returns it as it is now.
    /// Nothing is deleted by a change: a module turned off keeps its data, and sites
    /// past a lowered limit keep syncing.
    pub fn change_licence(
        &self,
        actor: Actor,
        org: &str,
        change: &LicenceChange,
        now_ms: u64,
    ) -> Result<LicenceView, ServiceError> {
        actor.local("change licences")?;
        let org = self.primary()?.org(org)?;
        let licence = self.primary()?.licence(org.id)?.changed(change);
        self.primary()?.set_licence(org.id, &licence)?;
        tracing::info!(org = org.id, %actor, ?licence, "licence changed");
        let detail = describe(&licence);
        self.audit(actor, Some(org.id), AuditAction::LicenceChanged, detail)?;
        self.licence_view(org, now_ms)
    }

    /// An organisation's licence for any of its members (others are told it does not
    /// exist).
    pub fn member_licence(
        &self,
        account: &Account,
        org: OrgId,
        now_ms: u64,
    ) -> Result<(Membership, LicenceView), ServiceError> {
        let member = self.as_member(account, org, Role::Viewer, "see the licence")?;
        let view = self.licence_view(member.org.clone(), now_ms)?;
        Ok((member, view))
    }

    /// Refuses the features of `module` to an organisation whose licence does not
    /// grant it today (never granted, its grant ended, or the licence ended).
    pub fn require_module(
        &self,
        org: OrgId,
        module: Module,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let licence = self.primary()?.licence(org)?;
        let today = Day::of_ms(now_ms);
        let ended = match licence.module(module, today) {
            ModuleState::On(_) => return Ok(()),
            ModuleState::Off => None,
            ModuleState::Expired(day) => Some(day),
        };
        let org = self.primary()?.org_by_id(org)?;
        tracing::info!(org = org.id, %module, "unlicensed module refused");
        Err(ServiceError::Unlicensed {
            org: org.name,
            module,
            ended,
            by_licence: licence.expired(today),
        })
    }

    fn licence_view(&self, org: Org, now_ms: u64) -> Result<LicenceView, ServiceError> {
        let enrolled = self.enrolled_sites(org.id)?;
        Ok(LicenceView {
            licence: self.primary()?.licence(org.id)?,
            enrolled: enrolled as u64,
            today: Day::of_ms(now_ms),
            org,
        })
    }
}
