//! The satellite's sync agent: the driver of the sans-IO session
//! ([`sitesync_protocol::session`]). The session decides; this carries its actions out
//! over a [`Transport`] (HTTP in production) and the site's database, and feeds the
//! results back. What the session must not forget is in the database (see [`state`]).
//!
//! A first sync keeps three stages busy at once: the primary reads page N+2 while page
//! N+1 is decoded here and page N is written. The driver asks for a page on a task of
//! its own as soon as the session asks (which it does once the previous answer's
//! headers said the cursor), and writes on a blocking thread while pages keep coming.

mod pages;
pub mod state;

use crate::client::Client;
use crate::error::NodeError;
use crate::node::{Shared, blocking, now_ms};
use crate::transport::Transport;
use pages::{Event, Pages};
use sitesync_core::{OrgId, SiteId};
use sitesync_protocol::session::{Action, Durable, Mode, Request, Satellite, Target};
use sitesync_protocol::{PushRequest, PushResponse, PushedChange};
use std::sync::Arc;
use tokio::task::JoinHandle;

pub use sitesync_protocol::session::LIVE_WAIT_MS;

/// Records written in one transaction when that many have arrived: random keys dirty
/// index pages all over, and a page of the index written once for many records is the
/// biggest saving there is.
const MAX_PER_COMMIT: usize = 50_000;

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

/// A satellite's connection to its primary.
pub struct Agent<T: Transport = Client> {
    node: Shared,
    transport: T,
    org: OrgId,
    site: SiteId,
}

impl Agent<Client> {
    /// The agent of the satellite running in `node`, over HTTP.
    pub fn new(node: Shared) -> Result<Agent<Client>, NodeError> {
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
        // An error of an earlier run not followed by a good round: the primary hears
        // of it with the first pull.
        let notes = node.site.satellite()?.sync_notes()?;
        if let Some((error, at)) = notes.last_error.filter(|(_, at)| *at > notes.last_sync) {
            client.note_error(at, &error);
        }
        Ok(Agent::with_transport(node, client))
    }

    /// The client, for `status`.
    pub fn client(&self) -> &Client {
        &self.transport
    }
}

/// What a lane of the agent is doing besides the session's own actions.
#[derive(Default)]
struct Work {
    pages: Pages,
    /// A write of pages under way.
    writing: Option<JoinHandle<Result<(), NodeError>>>,
    /// The error behind the session's last failure (a round returns it).
    error: Option<NodeError>,
}

impl<T: Transport> Agent<T> {
    /// The agent of the satellite running in `node`, reaching its primary by `transport`.
    pub fn with_transport(node: Shared, transport: T) -> Agent<T> {
        let config = &node.site.config;
        Agent {
            org: config.org_id.unwrap_or_default(),
            site: config.site_id,
            transport,
            node,
        }
    }

    /// One full round: push, pull until caught up, push what was written meanwhile.
    /// `progress(done, total)` follows the pull.
    pub async fn sync(
        &self,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<SyncReport, NodeError> {
        let before = self.transport.traffic();
        let mut session = Satellite::round(MAX_PER_COMMIT);
        let mut work = Work::default();
        let mut pulled = 0;
        loop {
            let Some(action) = session.poll_action() else {
                self.wait(&mut session, &mut work).await;
                let report = session.report();
                if report.pulled > pulled {
                    pulled = report.pulled;
                    progress(pulled, report.total.max(pulled));
                }
                continue;
            };
            if let Action::Finished { ok } = action {
                if !ok {
                    let reason = session.error().unwrap_or("the sync failed").to_string();
                    return Err(work.error.take().unwrap_or(NodeError::Remote(reason)));
                }
                break;
            }
            self.act(action, &mut session, &mut work).await;
        }
        let report = session.report();
        let after = self.transport.traffic();
        Ok(SyncReport {
            pushed: report.pushed,
            rejected: report.rejected,
            pulled: report.pulled,
            bytes_sent: after.0 - before.0,
            bytes_received: after.1 - before.1,
        })
    }

    /// Runs until the node stops: a pusher woken by local writes and a long-polling puller.
    pub async fn run(self: Arc<Self>) {
        let pusher = tokio::spawn(self.clone().lane(Mode::LivePush));
        self.lane(Mode::LivePull).await;
        pusher.abort();
    }

    /// Drives a live lane until the node stops.
    async fn lane(self: Arc<Self>, mode: Mode) {
        let mut session = Satellite::new(mode, MAX_PER_COMMIT);
        let mut work = Work::default();
        while !self.node.is_stopping() {
            match session.poll_action() {
                Some(Action::WaitUntil(at)) => self.rest(&mut session, mode, at).await,
                Some(action) => self.act(action, &mut session, &mut work).await,
                None => self.wait(&mut session, &mut work).await,
            }
        }
    }

    /// Waits until `at`, or on the push lane until a local write.
    async fn rest(&self, session: &mut Satellite, mode: Mode, at: u64) {
        let pause = std::time::Duration::from_millis(at.saturating_sub(now_ms()));
        if mode == Mode::LivePush {
            tokio::select! {
                _ = self.node.local_write.notified() => session.handle_wake(now_ms()),
                _ = tokio::time::sleep(pause) => session.handle_timeout(now_ms()),
            }
        } else {
            tokio::time::sleep(pause).await;
            session.handle_timeout(now_ms());
        }
    }

    /// Waits for what the session waits for: a page, its headers, or a write.
    async fn wait(&self, session: &mut Satellite, work: &mut Work) {
        let writing = work.writing.is_some();
        if !writing && !work.pages.is_waiting() {
            // Nothing is coming: the session would wait forever.
            let error = NodeError::Internal("the sync session is stuck".into());
            return self.failed(session, work, error);
        }
        tokio::select! {
            written = async { work.writing.as_mut()?.await.ok() }, if writing => {
                work.writing = None;
                match written.unwrap_or_else(|| Err(NodeError::Internal("writing pages failed".into()))) {
                    Ok(()) => session.handle_stored(now_ms()),
                    Err(e) => self.failed(session, work, e),
                }
            }
            event = work.pages.next(), if work.pages.is_waiting() => match event {
                Some(Event::Started(next, more)) => session.handle_pull_started(next, more, now_ms()),
                Some(Event::Page(Ok(page))) => {
                    session.handle_page(page.info.clone(), now_ms());
                    work.pages.ready.push_back(page);
                }
                Some(Event::Page(Err(e))) => self.failed(session, work, e),
                None => {}
            },
        }
    }

    /// Carries out one action of the session.
    async fn act(&self, action: Action, session: &mut Satellite, work: &mut Work) {
        let result = match action {
            Action::Send(Request::Pull(query)) => {
                work.pages.ask(&self.transport, query);
                return;
            }
            Action::ApplyPages {
                pages,
                target,
                cursor,
            } => {
                self.write_pages(work, pages, target, cursor);
                return;
            }
            Action::Send(Request::Push(request)) => match self.push(&request).await {
                Ok(answer) => return session.handle_push_answer(answer, now_ms()),
                Err(e) => Err(e),
            },
            Action::ReadOutbox { limit } => match self.outbox(limit).await {
                Ok(changes) => return session.handle_outbox(changes, now_ms()),
                Err(e) => Err(e),
            },
            Action::NoteSynced => return self.note_synced().await,
            Action::NoteError(reason) => return self.note_error(reason).await,
            Action::WaitUntil(at) => {
                let pause = at.saturating_sub(now_ms());
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                return session.handle_timeout(now_ms());
            }
            Action::Finished { .. } => return,
            Action::ReadHeldStores => match self.held_stores().await {
                Ok(held) => return session.handle_held_stores(held, now_ms()),
                Err(e) => Err(e),
            },
            Action::GiveBack { incarnation } => {
                // The pages in hand came from a cursor that means nothing to the primary
                // now; a write of pages under way ends first (what it wrote is real).
                work.pages.clear();
                if let Some(writing) = work.writing.take() {
                    let _ = writing.await;
                }
                let known = session.durable().incarnation;
                self.give_back(known, incarnation).await
            }
            Action::Load => match self.load().await {
                Ok(durable) => return session.handle_loaded(durable, now_ms()),
                Err(e) => Err(e),
            },
            step => self.store_step(step).await,
        };
        match result {
            Ok(()) => session.handle_stored(now_ms()),
            Err(e) => self.failed(session, work, e),
        }
    }

    fn failed(&self, session: &mut Satellite, work: &mut Work, error: NodeError) {
        work.pages.clear();
        session.handle_failure(error.to_string(), now_ms());
        work.error = Some(error);
    }

    /// Reads the durable state into the session ([`Action::Load`]).
    async fn load(&self) -> Result<Durable, NodeError> {
        blocking(&self.node, |node| {
            let config = node.site.site_config()?;
            Ok(state::load(node.site.satellite()?, config)?)
        })
        .await
    }

    /// The stores this site holds records of (a scan, done only when the assignment
    /// changes).
    async fn held_stores(&self) -> Result<Vec<sitesync_core::StoreId>, NodeError> {
        let org = self.org;
        blocking(&self.node, move |node| {
            Ok(node.site.satellite()?.held_stores(org)?)
        })
        .await
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<PushedChange>, NodeError> {
        blocking(&self.node, move |node| {
            Ok(node.site.satellite()?.outbox(limit)?)
        })
        .await
    }

    async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        let answer = self.transport.push(request).await?;
        for rejected in &answer.rejected {
            tracing::warn!(collection = %rejected.collection, id = %rejected.id, reason = %rejected.reason, "the primary rejected a change");
        }
        Ok(answer)
    }

    /// Writes the oldest `pages` pages with `cursor`, on a blocking thread, while more
    /// pages keep coming.
    fn write_pages(&self, work: &mut Work, pages: usize, target: Target, cursor: u64) {
        let records: Vec<_> = work
            .pages
            .take(pages)
            .into_iter()
            .flat_map(|p| p.records)
            .collect();
        let (node, org) = (self.node.clone(), self.org);
        work.writing = Some(tokio::spawn(async move {
            let n = records.len();
            blocking(&node, move |node| {
                let store = node.site.satellite()?;
                Ok(state::apply_pages(
                    store,
                    org,
                    &records,
                    target,
                    cursor,
                    now_ms(),
                )?)
            })
            .await?;
            if n > 0 {
                node.notify_pulled();
            }
            Ok(())
        }));
    }

    /// Carries out a storage step of following an assignment, or takes in a push's
    /// answer.
    async fn store_step(&self, step: Action) -> Result<(), NodeError> {
        let (org, site) = (self.org, self.site);
        blocking(&self.node, move |node| {
            let store = node.site.satellite()?;
            match step {
                Action::AckPush(answer) => store.ack_push(org, site, &answer, now_ms())?,
                Action::Purge(id) => {
                    let n = store.purge_store(org, id)?;
                    tracing::info!(
                        store = id,
                        records = n,
                        "store no longer assigned: its records left this site"
                    );
                }
                Action::StartBackfill(stores) => store.start_backfill(&stores)?,
                Action::SaveConfig { config, applied } => {
                    node.site.save_site_config(&config, applied)?;
                }
                other => {
                    return Err(NodeError::Internal(format!(
                        "the sync session asked for {other:?} as a storage step"
                    )));
                }
            }
            Ok(())
        })
        .await
    }

    /// Queues every record held here for the primary, which went back, and wakes the
    /// push lane ([`Action::GiveBack`]).
    async fn give_back(&self, known: u64, incarnation: u64) -> Result<(), NodeError> {
        let org = self.org;
        let queued = blocking(&self.node, move |node| {
            Ok(node.site.satellite()?.give_back(org, incarnation)?)
        })
        .await?;
        if known != 0 {
            tracing::warn!(
                records = queued,
                "the primary went back (restored from a backup?): every record held here \
                 goes back to it, and this site pulls again from the start"
            );
        }
        self.node.local_write.notify_one();
        Ok(())
    }

    async fn note_synced(&self) {
        let _ = blocking(&self.node, |node| {
            Ok(node.site.satellite()?.note_sync(Ok(()), now_ms())?)
        })
        .await;
    }

    async fn note_error(&self, reason: String) {
        tracing::warn!(error = %reason, "sync failed");
        self.transport.note_error(now_ms(), &reason);
        let _ = blocking(&self.node, move |node| {
            Ok(node.site.satellite()?.note_sync(Err(&reason), now_ms())?)
        })
        .await;
    }
}
