//! The state a running node shares between its HTTP handlers and background tasks.

use crate::error::NodeError;
use crate::site::Site;
use sitesync_core::{OrgId, SiteId};
use sitesync_service::attempts::{Attempts, Subject};
use sitesync_store::{ChangeFeed, Contact, CredentialCache, NonceLog, PreparedPush, PushOutcome};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// A running node.
pub struct Node {
    /// The site it runs, shared with the service's waiting reads (which run on
    /// blocking threads of their own).
    pub site: Arc<Site>,
    /// Bumped after every committed change to the records here. Long-polling pulls wait
    /// on it, so a change reaches waiting satellites as soon as it is durable, and so do
    /// local reads waiting for a record to arrive.
    pub changes: Box<dyn ChangeFeed>,
    /// Woken by local writes on a satellite, so its pusher sends them at once.
    pub local_write: Notify,
    /// Whether the local API asks for the bearer token (bound beyond loopback).
    pub api_token_required: bool,
    /// Set when `serve` is stopping: long-polls answer at once.
    pub stopping: AtomicBool,
    /// Primary: sync requests not yet written to the database. Every pull would
    /// otherwise commit (and fsync) a "last contact" of its own; instead they are
    /// gathered here and written once a second by [`flush_contacts`].
    pub contacts: Mutex<HashMap<SiteId, Contact>>,
    /// Primary: sites with a pull open now (a long poll), and when their contact was
    /// last noted: [`flush_contacts`] notes them again every [`STILL_THERE_MS`], so
    /// `site list` shows a satellite waiting in a long poll as in contact.
    pub polling: Mutex<HashMap<SiteId, Polling>>,
    /// Primary: pushed batches on their way to the group committer.
    pub pushes: mpsc::Sender<PushJob>,
    /// Failed credential checks, to slow guessing down.
    pub attempts: Attempts,
    /// Primary: the nonces of recent sync requests, so none is served twice.
    pub fresh: Box<dyn NonceLog>,
    /// Primary: sites whose requests it checked recently.
    pub credentials: Box<dyn CredentialCache>,
    /// The committer's end of `pushes`, taken by `serve` when it starts the committer.
    pub push_queue: Mutex<Option<mpsc::Receiver<PushJob>>>,
}

/// A pushed batch on its way from a push handler to the group committer (`commit`).
pub struct PushJob {
    /// The satellite's organisation.
    pub org: OrgId,
    /// The satellite.
    pub site: SiteId,
    /// Its changes, prepared by the request's handler.
    pub changes: Vec<PreparedPush>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<PushOutcome, NodeError>>,
}

/// How often a site waiting in a long poll is noted as in contact again (see
/// `sitesync_service::ONLINE_WITHIN_MS`).
pub const STILL_THERE_MS: u64 = 10_000;

/// A site's open pulls.
#[derive(Debug, Default, Clone, Copy)]
pub struct Polling {
    open: usize,
    noted_at: u64,
}

/// A pull held open; the site stops counting as waiting when it is dropped.
pub struct OpenPull<'a> {
    node: &'a Node,
    site: SiteId,
}

impl Drop for OpenPull<'_> {
    fn drop(&mut self) {
        let mut polling = self.node.polling.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = polling.get_mut(&self.site) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 {
                polling.remove(&self.site);
            }
        }
    }
}

/// A node shared by handlers and tasks.
pub type Shared = Arc<Node>;

impl Node {
    /// Tells waiters that records changed here by a local write (which also wakes a
    /// satellite's pusher).
    pub fn notify_changed(&self) {
        self.notify_pulled();
        self.local_write.notify_one();
    }

    /// Tells waiters (reads waiting for a record) that pulled records were applied.
    pub fn notify_pulled(&self) {
        self.changes.announce();
    }

    /// Starts stopping: wakes every waiter so it can finish.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify_changed();
        self.local_write.notify_waiters();
    }

    /// Notes that `site` holds a pull open (noted as in contact at `now`) until the
    /// returned guard is dropped.
    pub fn open_pull(&self, site: SiteId, now: u64) -> OpenPull<'_> {
        let mut polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        let entry = polling.entry(site).or_default();
        entry.open += 1;
        entry.noted_at = entry.noted_at.max(now);
        OpenPull { node: self, site }
    }

    /// The sites waiting in a pull whose contact was last noted [`STILL_THERE_MS`] ago
    /// or more, noted again now.
    fn still_there(&self, now: u64) -> Vec<Contact> {
        let mut polling = self.polling.lock().unwrap_or_else(|p| p.into_inner());
        polling
            .iter_mut()
            .filter(|(_, p)| now.saturating_sub(p.noted_at) >= STILL_THERE_MS)
            .map(|(site, p)| {
                p.noted_at = now;
                Contact {
                    site: *site,
                    at: now,
                    pull_cursor: None,
                    applied_assignment: None,
                    version: None,
                    error: None,
                }
            })
            .collect()
    }

    /// Notes a sync request from a site, to be written by [`flush_contacts`].
    pub fn note_contact(&self, contact: Contact) {
        let mut contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = contacts
            .entry(contact.site)
            .or_insert_with(|| contact.clone());
        entry.at = entry.at.max(contact.at);
        entry.pull_cursor = entry.pull_cursor.max(contact.pull_cursor);
        entry.applied_assignment = entry.applied_assignment.max(contact.applied_assignment);
        entry.version = contact.version.or(entry.version.take());
        entry.error = entry.error.take().max(contact.error);
    }

    /// Refuses a request at once when its address has failed too often lately.
    pub fn check_address(&self, peer: std::net::IpAddr) -> Result<(), NodeError> {
        match self
            .attempts
            .refused(&Subject::Address(peer), std::time::Instant::now())
        {
            Some(seconds) => Err(NodeError::TooManyAttempts(seconds)),
            None => Ok(()),
        }
    }

    /// Notes a failed credential check (logged with the address and the claimed site,
    /// never the secret), pauses when guessing goes on, and returns the error to answer.
    pub async fn failed_attempt(
        &self,
        what: &str,
        peer: std::net::IpAddr,
        site: Option<SiteId>,
    ) -> NodeError {
        tracing::warn!(%peer, site, "{what} with wrong credentials");
        let mut subjects = vec![Subject::Address(peer)];
        subjects.extend(site.map(Subject::Site));
        let pause = self.attempts.failed(&subjects, std::time::Instant::now());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        NodeError::Unauthorised
    }

    /// Whether `serve` is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T: Send + 'static>(
    node: &Shared,
    work: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || work(&node))
        .await
        .map_err(|e| NodeError::Internal(format!("background task failed: {e}")))?
}

/// Milliseconds since the Unix epoch, from the system clock, moved by
/// [`CLOCK_OFFSET_VAR`] when it is set. Every wall-clock reading of a node (clock
/// stamps, the primary's limit on stamps ahead, contact and error times) comes from here.
pub fn now_ms() -> u64 {
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    system.saturating_add_signed(clock_offset_ms())
}

/// Environment variable holding signed milliseconds added to the system clock: a way to
/// simulate a site whose clock is wrong (tests of clock skew). Read once per process.
pub const CLOCK_OFFSET_VAR: &str = "SITESYNC_CLOCK_OFFSET_MS";

fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let Ok(text) = std::env::var(CLOCK_OFFSET_VAR) else {
            return 0;
        };
        match text.trim().parse() {
            Ok(offset) => {
                tracing::warn!(offset_ms = offset, "the wall clock is moved by {CLOCK_OFFSET_VAR}");
                offset
            }
            Err(_) => {
                tracing::warn!(value = %text, "{CLOCK_OFFSET_VAR} is not a whole number of milliseconds; ignored");
                0
            }
        }
    })
}

/// Writes the noted sync requests to the database once a second until the node stops,
/// and once more then.
pub async fn flush_contacts(node: Shared) {
    loop {
        let stopping = node.is_stopping();
        let mut batch: Vec<Contact> = {
            let mut contacts = node.contacts.lock().unwrap_or_else(|p| p.into_inner());
            contacts.drain().map(|(_, c)| c).collect()
        };
        batch.extend(node.still_there(now_ms()));
        if !batch.is_empty()
            && let Err(e) = blocking(&node, move |node| {
                Ok(node.site.primary()?.touch_sites(&batch)?)
            })
            .await
        {
            tracing::warn!(error = %e, "cannot record the sites' last contact");
        }
        if stopping {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
