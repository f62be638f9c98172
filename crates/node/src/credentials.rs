//! The primary's memory of the sites whose requests it has checked.
//!
//! Every sync request is signed with its site's secret. Checking one takes the site's
//! row from the database (a trip to a blocking thread) and derives its secret: a tenth
//! of a millisecond on the path of every change. So the primary keeps what it read.
//! A site's row changes only by an administrator's command (`site revoke`,
//! `site assign`), which wakes the running server (`_wake`) after committing, and the
//! wake empties this memory; an entry older than [`FRESH_FOR`] is read again anyway, in
//! case a wake was missed.

use sitesync_core::SiteId;
use sitesync_store::{CredentialCache, SiteRow};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a remembered site is trusted without reading it again.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// The same, when several processes serve the primary: an administrator's change
/// wakes only one of them, so the others learn of it by reading again.
pub const SHARED_FRESH_FOR: Duration = Duration::from_secs(1);

/// Sites checked recently, with their derived secrets, in this process's memory.
pub struct Credentials {
    known: Mutex<HashMap<SiteId, Known>>,
    fresh_for: Duration,
}

impl Default for Credentials {
    fn default() -> Credentials {
        Credentials::fresh_for(FRESH_FOR)
    }
}

impl Credentials {
    /// Remembers sites for `fresh_for` each.
    pub fn fresh_for(fresh_for: Duration) -> Credentials {
        Credentials {
            known: Mutex::default(),
            fresh_for,
        }
    }
}

struct Known {
    site: SiteRow,
    secret: String,
    read_at: Instant,
}

impl CredentialCache for Credentials {
    /// A site and its secret, if read recently enough.
    fn get(&self, site: SiteId) -> Option<(SiteRow, String)> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(&site)
            .filter(|k| k.read_at.elapsed() < self.fresh_for)
            .map(|k| (k.site.clone(), k.secret.clone()))
    }

    /// Remembers a site just read, with the secret derived for it.
    fn remember(&self, site: SiteRow, secret: String) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(
            site.id,
            Known {
                site,
                secret,
                read_at: Instant::now(),
            },
        );
    }

    /// Forgets every site: an administrator changed one.
    fn forget_all(&self) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
