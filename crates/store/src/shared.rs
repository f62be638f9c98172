//! What a running primary keeps besides its database, behind seams: today each lives
//! in the process's memory; when several primary processes serve one database, each
//! must be shared between them (a table, a notification channel), and that version
//! takes the in-memory one's place without the code around it changing.

use crate::{SiteRow, StoreError};
use sitesync_core::SiteId;
use tokio::sync::watch;

/// Tells whoever waits for new changes (long-polling pulls, reads waiting for a record)
/// that some were committed. A hint only: a woken waiter asks storage again, so a hint
/// lost or given twice costs a query, never a change.
pub trait ChangeFeed: Send + Sync {
    /// Tells every listener that changes were committed.
    fn announce(&self);
    /// A listener: its value moves at each announcement.
    fn listen(&self) -> watch::Receiver<u64>;
}

/// The change feed of one process: a counter in memory.
pub struct LocalFeed(watch::Sender<u64>);

impl Default for LocalFeed {
    fn default() -> LocalFeed {
        LocalFeed(watch::channel(0).0)
    }
}

impl ChangeFeed for LocalFeed {
    fn announce(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn listen(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// The nonces of recent signed requests, so that none is served twice.
pub trait NonceLog: Send + Sync {
    /// Whether a request of `site` made at `time` with `nonce` may be served at `now`
    /// (all ms since the epoch); remembers the nonce. A request outside the window of
    /// accepted times, or whose nonce was seen, is refused. An error says the nonces
    /// could not be checked (their database is unreachable), which is no verdict on
    /// the request.
    fn admit(&self, site: SiteId, nonce: u64, time: u64, now: u64) -> Result<bool, StoreError>;
}

/// Sites whose requests were checked lately, with their derived secrets, so a signed
/// request is checked without a trip to the database.
pub trait CredentialCache: Send + Sync {
    /// A site and its secret, if remembered and still fresh.
    fn get(&self, site: SiteId) -> Option<(SiteRow, String)>;
    /// Remembers a site just read, with the secret derived for it.
    fn remember(&self, site: SiteRow, secret: String);
    /// Forgets every site: an administrator changed one.
    fn forget_all(&self);
}
