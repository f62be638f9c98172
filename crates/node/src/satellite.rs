//! The satellite's sync agent: pushes the outbox, pulls routed records, follows
//! changes of assignment, and (under `serve`) keeps doing so live.
//!
//! Everything the agent knows lives in storage ([`SyncState`]). The pull cursor is
//! written in the same transaction as the records of its page; the steps of following a
//! new assignment (purge, then the new configuration with its backfill) are each
//! recorded after the work they stand for, and each is harmless to repeat. So a
//! satellite killed at any moment resumes where it stopped, with nothing lost and
//! nothing applied twice.

use crate::client::Client;
use crate::error::NodeError;
use crate::node::{Shared, blocking, now_ms};
use sitesync_core::{OrgId, SiteId, StoreId};
use sitesync_protocol::{PullQuery, PullResponse, PushRequest, SiteConfig};
use sitesync_store::{Cursor, Prepared, SyncState};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Changes per pushed batch.
const PUSH_BATCH: usize = 2_000;
/// Records per pulled page.
const PULL_PAGE: u32 = 5_000;
/// Pages a first sync may hold decoded or decoding ahead of the ones being written.
const PAGES_AHEAD: usize = 8;
/// Records written in one transaction when that many have arrived.
const MAX_PER_COMMIT: usize = 50_000;
/// How long a live pull waits for a change before asking again.
pub const LIVE_WAIT_MS: u64 = 50_000;

/// What one `sync` round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Local changes the primary acknowledged.
    pub pushed: u64,
    /// Of those, changes the primary rejected.
    pub rejected: u64,
    /// Records pulled and applied.
    pub pulled: u64,
    /// Body bytes sent to the primary (compressed, as on the wire).
    pub bytes_sent: u64,
    /// Body bytes received from the primary (compressed, as on the wire).
    pub bytes_received: u64,
}

/// A pulled page, its records prepared for writing. Preparing (encoding each record
/// as the database will hold it) happens as the page arrives, so it overlaps the
/// writing of the page before.
struct Page {
    records: Vec<Prepared>,
    cursor: u64,
    more: bool,
    remaining: u64,
    config: SiteConfig,
}

impl Page {
    /// Takes in the page that follows this one: its records, cursor and configuration.
    fn absorb(&mut self, next: Page) {
        self.records.extend(next.records);
        self.cursor = next.cursor;
        self.more = next.more;
        self.config = next.config;
    }

    /// Prepares a page; refuses it whole if one of its records is unreadable.
    fn prepare(answer: PullResponse) -> Result<Page, NodeError> {
        let records = answer
            .records
            .into_iter()
            .map(|record| Prepared::new(record).map_err(NodeError::unreadable_page))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            records,
            cursor: answer.cursor,
            more: answer.more,
            remaining: answer.remaining,
            config: answer.config,
        })
    }
}

/// A page being read and decoded.
type PageTask = tokio::task::JoinHandle<Result<Page, NodeError>>;

/// Waits for a page to be decoded.
async fn decoded(task: PageTask) -> Result<Page, NodeError> {
    task.await
        .map_err(|e| NodeError::Internal(format!("decoding a page failed: {e}")))?
}

/// A satellite's connection to its primary.
pub struct Agent {
    node: Shared,
    client: Client,
    org: OrgId,
    site: SiteId,
}

impl Agent {
    /// The agent of the satellite running in `node`.
    pub fn new(node: Shared) -> Result<Agent, NodeError> {
        let config = &node.site.config;
        let url = config.primary_url.clone().ok_or_else(|| {
            NodeError::Internal(
                "this site has no primary URL; set one with `sitesync settings set primary-url`"
                    .into(),
            )
        })?;
        let secret = node.site.dir.read_secret(&node.site.dir.site_key_path())?;
        let trust = config.primary_trust(&node.site.dir);
        let client = Client::new(&url, &trust)?.with_credential(config.site_id, &secret);
        Ok(Agent {
            org: config.org_id.unwrap_or_default(),
            site: config.site_id,
            client,
            node,
        })
    }

    /// The client, for `status`.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One full round: push, pull until caught up, push what was written meanwhile.
    /// `progress(done, total)` follows the pull.
    pub async fn sync(
        &self,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<SyncReport, NodeError> {
        let result = self.sync_round(progress).await;
        self.note(&result).await;
        result
    }

    async fn sync_round(
        &self,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<SyncReport, NodeError> {
        let before = self.client.traffic();
        let mut report = self.push_all().await?;
        // Pages flow through three stages at once: the primary reads page N+2 while
        // page N+1 is decoded here and page N is written. Only writing moves the cursor,
        // so a crash anywhere resumes from the last page written.
        let SyncState {
            pull_cursor: start,
            assignment_applied: version,
            ..
        } = self.state().await?;
        let (pages, ready) = mpsc::channel::<PageTask>(PAGES_AHEAD);
        let consume = async {
            // Owned here, so that a failure drops it and the producer stops at once
            // instead of waiting forever for room in a queue nobody reads.
            let mut ready = ready;
            let mut total = None;
            while let Some(task) = ready.recv().await {
                let mut page = decoded(task).await?;
                let total = *total.get_or_insert(page.remaining + page.records.len() as u64);
                // Write every page that has arrived meanwhile in the same transaction:
                // random keys dirty index pages all over, and a page of the index
                // written once for many records is the biggest saving there is.
                while page.records.len() < MAX_PER_COMMIT {
                    let Ok(task) = ready.try_recv() else { break };
                    page.absorb(decoded(task).await?);
                }
                report.pulled += self.apply(page).await?;
                progress(report.pulled, total.max(report.pulled));
            }
            Ok::<_, NodeError>(())
        };
        let (produced, consumed) = tokio::join!(self.produce(start, version, pages), consume);
        consumed?;
        produced?;
        // Ask once more after the last records: it tells the primary how far this site
        // has come (for `site list`) and brings any configuration changed meanwhile.
        self.pull_page(0).await?;
        let again = self.push_all().await?;
        report.pushed += again.pushed;
        report.rejected += again.rejected;
        let after = self.client.traffic();
        report.bytes_sent = after.0 - before.0;
        report.bytes_received = after.1 - before.1;
        Ok(report)
    }

    /// Asks for pages from `cursor` on until the primary has no more, each as soon as
    /// the previous answer's headers give its cursor, and hands them to `pages` in
    /// order, each decoding in a task of its own.
    async fn produce(
        &self,
        mut cursor: u64,
        version: u64,
        pages: mpsc::Sender<PageTask>,
    ) -> Result<(), NodeError> {
        let mut count = true;
        loop {
            let query = PullQuery {
                cursor,
                limit: Some(PULL_PAGE),
                wait_ms: Some(0),
                stores: None,
                assignment_version: Some(version),
                count,
            };
            count = false;
            let started = self.client.start_pull(&query).await?;
            let (next, more, page) = match started.next {
                Some((next, more)) => {
                    let page = tokio::spawn(async move { Page::prepare(started.finish().await?) });
                    (next, more, page)
                }
                // A primary that does not say the cursor in its headers: read the page first.
                None => {
                    let page = Page::prepare(started.finish().await?)?;
                    let (next, more) = (page.cursor, page.more);
                    (next, more, tokio::spawn(async move { Ok(page) }))
                }
            };
            if pages.send(page).await.is_err() || !more {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Runs until the node stops: a pusher woken by local writes and a long-polling puller.
    pub async fn run(self: Arc<Self>) {
        let pusher = tokio::spawn(self.clone().push_loop());
        self.pull_loop().await;
        pusher.abort();
    }

    async fn push_loop(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        while !self.node.is_stopping() {
            match self.push_all().await {
                Ok(_) => backoff.reset(),
                Err(e) => {
                    self.note_error(&e).await;
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            }
            tokio::select! {
                _ = self.node.local_write.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    async fn pull_loop(self: Arc<Self>) {
        let mut backoff = Backoff::default();
        // Ask without waiting until caught up (at start and after an error), so a site
        // with nothing to pull records its successful sync at once instead of after the
        // first long poll ends; then wait for changes.
        let mut wait_ms = 0;
        while !self.node.is_stopping() {
            match self.pull_page(wait_ms).await {
                Ok(more) => {
                    backoff.reset();
                    if !more {
                        self.note(&Ok(())).await;
                        wait_ms = LIVE_WAIT_MS;
                    }
                }
                Err(e) => {
                    self.note_error(&e).await;
                    wait_ms = 0;
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
    }

    /// Pushes every queued change.
    pub async fn push_all(&self) -> Result<SyncReport, NodeError> {
        let mut report = SyncReport::default();
        loop {
            let batch = blocking(&self.node, |node| {
                Ok(node.site.satellite()?.outbox(PUSH_BATCH)?)
            })
            .await?;
            let Some(last) = batch.last().map(|c| c.seq) else {
                return Ok(report);
            };
            let sent = batch.len() as u64;
            let answer = self.client.push(&PushRequest { changes: batch }).await?;
            if answer.acked_through < last {
                return Err(NodeError::Remote(format!(
                    "the primary acknowledged changes up to {} of {last}; will retry",
                    answer.acked_through
                )));
            }
            for rejected in &answer.rejected {
                tracing::warn!(collection = %rejected.collection, id = %rejected.id, reason = %rejected.reason, "the primary rejected a change");
            }
            report.pushed += sent;
            report.rejected += answer.rejected.len() as u64;
            let (org, site) = (self.org, self.site);
            blocking(&self.node, move |node| {
                Ok(node
                    .site
                    .satellite()?
                    .ack_push(org, site, &answer, now_ms())?)
            })
            .await?;
        }
    }

    /// Pulls and applies one page, then follows any change of assignment. Returns
    /// whether more records wait.
    async fn pull_page(&self, wait_ms: u64) -> Result<bool, NodeError> {
        let state = self.state().await?;
        let answer = self.fetch(&state, wait_ms).await?;
        let more = answer.more;
        self.apply(answer).await?;
        Ok(more)
    }

    /// Where this satellite stands.
    async fn state(&self) -> Result<SyncState, NodeError> {
        blocking(&self.node, |node| {
            Ok(node.site.satellite()?.sync_state()?)
        })
        .await
    }

    /// Asks the primary for the page after the pull cursor.
    async fn fetch(&self, state: &SyncState, wait_ms: u64) -> Result<Page, NodeError> {
        let query = PullQuery {
            cursor: state.pull_cursor,
            limit: Some(PULL_PAGE),
            wait_ms: Some(wait_ms),
            stores: None,
            assignment_version: Some(state.assignment_applied),
            count: false,
        };
        Page::prepare(self.client.pull(&query).await?)
    }

    /// Applies a pulled page and its cursor, then follows any change of assignment.
    /// Returns how many records it held.
    async fn apply(&self, answer: Page) -> Result<u64, NodeError> {
        let org = self.org;
        let n = answer.records.len() as u64;
        let config = answer.config;
        let (records, cursor) = (answer.records, answer.cursor);
        blocking(&self.node, move |node| {
            Ok(node
                .site
                .satellite()?
                .apply_pull(org, &records, Cursor::Pull, cursor, now_ms())?)
        })
        .await?;
        if n > 0 {
            self.node.notify_pulled();
        }
        self.follow_assignment(config).await?;
        Ok(n)
    }

    /// Takes in the site configuration the primary sent. When the stores changed: pushes
    /// what is queued, removes the stores taken away, then backfills the stores added.
    async fn follow_assignment(&self, config: SiteConfig) -> Result<(), NodeError> {
        let (old, applied) = blocking(&self.node, |node| {
            Ok((
                node.site.site_config()?,
                node.site.satellite()?.sync_state()?.assignment_applied,
            ))
        })
        .await?;
        if config.assignment_version != applied {
            let ids = |c: &SiteConfig| c.stores.iter().map(|s| s.id).collect::<BTreeSet<StoreId>>();
            let keep = ids(&config);
            let removed: Vec<StoreId> = ids(&old).difference(&keep).copied().collect();
            let added: Vec<StoreId> = keep.difference(&ids(&old)).copied().collect();
            if !removed.is_empty() {
                self.push_all().await?;
            }
            let org = self.org;
            blocking(&self.node, move |node| {
                for store in removed {
                    let n = node.site.satellite()?.purge_store(org, store)?;
                    tracing::info!(
                        store,
                        records = n,
                        "store no longer assigned: its records left this site"
                    );
                }
                Ok(node.site.follow_assignment(&config, &added)?)
            })
            .await?;
        } else if config != old {
            blocking(&self.node, move |node| {
                Ok(node.site.save_site_config(&config)?)
            })
            .await?;
        }
        self.backfill().await
    }

    /// Pulls the existing records of newly assigned stores, resumably.
    async fn backfill(&self) -> Result<(), NodeError> {
        loop {
            let Some(backfill) = self.state().await?.backfill else {
                return Ok(());
            };
            let stores: Vec<String> = backfill.stores.iter().map(u64::to_string).collect();
            let query = PullQuery {
                cursor: backfill.cursor,
                limit: Some(PULL_PAGE),
                stores: Some(stores.join(",")),
                ..PullQuery::default()
            };
            let answer = Page::prepare(self.client.pull(&query).await?)?;
            let org = self.org;
            blocking(&self.node, move |node| {
                let store = node.site.satellite()?;
                store.apply_pull(
                    org,
                    &answer.records,
                    Cursor::Backfill,
                    answer.cursor,
                    now_ms(),
                )?;
                if !answer.more {
                    store.finish_backfill()?;
                }
                Ok(())
            })
            .await?;
            self.node.notify_pulled();
        }
    }

    /// Records the outcome of a round for `status`.
    async fn note<T>(&self, result: &Result<T, NodeError>) {
        match result {
            Ok(_) => {
                let _ = blocking(&self.node, |node| {
                    Ok(node.site.satellite()?.note_sync(Ok(()), now_ms())?)
                })
                .await;
            }
            Err(e) => self.note_error(e).await,
        }
    }

    async fn note_error(&self, error: &NodeError) {
        tracing::warn!(%error, "sync failed");
        let text = error.to_string();
        let _ = blocking(&self.node, move |node| {
            Ok(node.site.satellite()?.note_sync(Err(&text), now_ms())?)
        })
        .await;
    }
}

/// Retry delays: 100 ms doubling up to 5 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(100u64.saturating_mul(1 << self.failures.min(6)))
            .min(Duration::from_secs(5))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}
