//! The audit log: each administrative use-case notes who did what, when and from
//! where, in the same use-case that makes the change, whichever edge called it (the
//! portal as a member, the command line as the operator, the local API). Sign-ins and
//! failed sign-ins are noted too. Only admins and owners read an organisation's log.
//!
//! An entry names its actor in words at the time it is written (a member's e-mail is
//! looked up then), and its detail never holds a secret or a password.

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::site::Site;
use sitesync_core::OrgId;
use sitesync_store::{AccountId, Audit, AuditAction, AuditEntry, Role};

/// The most entries one page of the log shows.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// How the operator is named in the log.
const OPERATOR: &str = "operator (command line)";
/// How a local API caller is named in the log.
const API: &str = "local API";

/// Now, in ms since the epoch: an entry is stamped when it is written.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Site {
    /// The entry of `action` done by `actor` in `org` (or in none), to `detail`.
    pub(crate) fn audit_entry(
        &self,
        actor: Actor,
        org: Option<OrgId>,
        action: AuditAction,
        detail: String,
    ) -> Result<Audit, ServiceError> {
        let (who, account) = match actor {
            Actor::Operator => (OPERATOR.to_string(), None),
            Actor::Api => (API.to_string(), None),
            Actor::Site(id) => (format!("site {id}"), None),
            Actor::Member { account, .. } => {
                let email = self.accounts_storage()?.account(account)?.email;
                (email, Some(account))
            }
        };
        Ok(Audit {
            org,
            at: now_ms(),
            actor: who,
            account,
            from: actor.from().map(|ip| ip.to_string()),
            action,
            detail,
        })
    }

    /// Notes `action` done by `actor` in `org` (or in none), to `detail`.
    pub(crate) fn audit(
        &self,
        actor: Actor,
        org: Option<OrgId>,
        action: AuditAction,
        detail: String,
    ) -> Result<(), ServiceError> {
        let entry = self.audit_entry(actor, org, action, detail)?;
        self.note(&entry)
    }

    /// Notes the operator's (or an API caller's) `action` on `account`: the entry is
    /// about that account, so the organisations it belongs to see it.
    pub(crate) fn audit_account(
        &self,
        actor: Actor,
        account: AccountId,
        action: AuditAction,
        detail: String,
    ) -> Result<(), ServiceError> {
        let mut entry = self.audit_entry(actor, None, action, detail)?;
        entry.account = Some(account);
        self.note(&entry)
    }

    /// Appends an entry to the log.
    pub(crate) fn note(&self, entry: &Audit) -> Result<(), ServiceError> {
        let id = self.primary()?.append_audit(entry)?;
        tracing::debug!(id, action = entry.action.name(), "audit entry");
        Ok(())
    }

    /// A page of the audit log, newest first: up to `limit` entries older than the
    /// entry `before` (from the newest, without it). Of organisation `org` (id or
    /// name) for its admins and owners, the operator and API callers; every entry
    /// (`org` `None`) for the operator and API callers only.
    pub fn audit_log(
        &self,
        actor: Actor,
        org: Option<&str>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let org = match org {
            Some(org) => {
                let org = self.primary()?.org(org)?;
                actor.in_org(org.id, Role::Admin, "see the audit log")?;
                Some(org.id)
            }
            None => {
                actor.local("see every organisation's audit log")?;
                None
            }
        };
        Ok(self.primary()?.audit(org, before, limit)?)
    }
}
