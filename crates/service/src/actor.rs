//! Who is asking. Every use-case takes one, so what each asker may do is decided here,
//! once, and not by whichever edge happens to call.

use crate::error::ServiceError;
use sitesync_core::SiteId;
use std::fmt;

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
    // A portal user with a role in an organisation goes here when the portal lands:
    // the variant carries the user and the organisation, and `local` and
    // `may_see_site` check the role and the organisation instead of refusing.
}

impl Actor {
    /// Refuses a site: only people at this machine (the operator, an API caller) may do
    /// `what`.
    pub(crate) fn local(self, what: &'static str) -> Result<(), ServiceError> {
        match self {
            Actor::Operator | Actor::Api => Ok(()),
            Actor::Site(_) => Err(self.not_allowed(what)),
        }
    }

    /// A site may see its own entry on the primary; people may see every site's.
    pub(crate) fn may_see_site(self, site: SiteId) -> Result<(), ServiceError> {
        match self {
            Actor::Site(own) if own != site => Err(self.not_allowed("see another site")),
            _ => Ok(()),
        }
    }

    fn not_allowed(self, what: &'static str) -> ServiceError {
        tracing::warn!(actor = %self, what, "refused");
        ServiceError::NotAllowed {
            actor: self.to_string(),
            what,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator => f.write_str("the operator"),
            Actor::Api => f.write_str("a local API caller"),
            Actor::Site(id) => write!(f, "site {id}"),
        }
    }
}
