//! Who is asking. Every use-case takes one, so what each asker may do is decided here,
//! once, and not by whichever edge happens to call.

use crate::error::ServiceError;
use sitesync_core::{OrgId, SiteId};
use sitesync_store::{AccountId, Role as MemberRole, StoreError};
use std::fmt;
use std::net::IpAddr;

/// Who asks for a use-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A person at the command line of this machine: full rights on its own data folder
    /// (whoever can read the folder can open the database anyway). The sync settings
    /// still ask for the authorisation code, as in mSupply's synchronisation preferences.
    Operator,
    /// A caller of the local API, its bearer token already checked by the edge (or on
    /// loopback, where the API is open to the machine's users): the operator's rights.
    Api,
    /// An enrolled satellite, authenticated by the sync API's request signature. It
    /// changes records only by pushing, and may see only its own entry.
    Site(SiteId),
    /// A portal user acting in one organisation with its role there, as its session and
    /// membership were checked by the portal ([`Membership::actor`](crate::Membership::actor)).
    /// It acts only within that organisation (another one is "not found"), and only as
    /// far as its role allows.
    Member {
        /// Its account.
        account: AccountId,
        /// The organisation it acts in.
        org: OrgId,
        /// Its role there.
        role: MemberRole,
        /// The address its request came from, for the audit log.
        from: Option<IpAddr>,
    },
}

impl Actor {
    /// Refuses a site and a portal member: only people at this machine (the operator,
    /// an API caller) may do `what`.
    pub(crate) fn local(self, what: &'static str) -> Result<(), ServiceError> {
        match self {
            Actor::Operator | Actor::Api => Ok(()),
            Actor::Site(_) | Actor::Member { .. } => Err(self.not_allowed(what)),
        }
    }

    /// Refuses a site: only people (at this machine, or members in the portal) may do
    /// `what`. Checked before looking anything up, so a site learns nothing from it.
    pub(crate) fn person(self, what: &'static str) -> Result<(), ServiceError> {
        match self {
            Actor::Site(_) => Err(self.not_allowed(what)),
            _ => Ok(()),
        }
    }

    /// A site may see its own entry on the primary, a member the sites of its own
    /// organisation; people at this machine see every site's.
    pub(crate) fn may_see_site(self, site: SiteId, org: OrgId) -> Result<(), ServiceError> {
        match self {
            Actor::Site(own) if own != site => Err(self.not_allowed("see another site")),
            Actor::Member { org: own, .. } if own != org => Err(no_site(site)),
            _ => Ok(()),
        }
    }

    /// Refuses whoever may not do `what` in organisation `org`: a site; a member of
    /// another organisation, told it does not exist so ids reveal nothing (404); a
    /// member whose role is less than `least` (403). Returns the role the asker acts
    /// with: the operator and API callers have every right.
    pub(crate) fn in_org(
        self,
        org: OrgId,
        least: MemberRole,
        what: &'static str,
    ) -> Result<MemberRole, ServiceError> {
        match self {
            Actor::Operator | Actor::Api => Ok(MemberRole::Owner),
            Actor::Site(_) => Err(self.not_allowed(what)),
            Actor::Member { org: own, .. } if own != org => {
                Err(StoreError::NotFound(format!("there is no organisation {org}")).into())
            }
            Actor::Member { role, .. } if role < least => Err(self.not_allowed(what)),
            Actor::Member { role, .. } => Ok(role),
        }
    }

    /// The account of a portal member; anyone else may not `what` (it needs an
    /// account, such as inviting: the operator grants roles instead).
    pub(crate) fn account(self, what: &'static str) -> Result<AccountId, ServiceError> {
        match self {
            Actor::Member { account, .. } => Ok(account),
            _ => Err(self.not_allowed(what)),
        }
    }

    /// The address the request came from, when it came over the network.
    pub fn from(self) -> Option<IpAddr> {
        match self {
            Actor::Member { from, .. } => from,
            _ => None,
        }
    }

    fn not_allowed(self, what: &'static str) -> ServiceError {
        tracing::warn!(actor = %self, what, "refused");
        let actor = match self {
            // A member's refusal is shown on its page: its role says why.
            Actor::Member { role, .. } => format!("a {}", role.name()),
            _ => self.to_string(),
        };
        ServiceError::NotAllowed { actor, what }
    }
}

fn no_site(site: SiteId) -> ServiceError {
    StoreError::NotFound(format!("there is no site {site}")).into()
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator => f.write_str("the operator"),
            Actor::Api => f.write_str("a local API caller"),
            Actor::Site(id) => write!(f, "site {id}"),
            Actor::Member {
                account, org, role, ..
            } => write!(
                f,
                "account {account} ({} of organisation {org})",
                role.name()
            ),
        }
    }
}
