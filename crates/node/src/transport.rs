//! The seam between the satellite's driver and its primary: push, pull and enrol.
//!
//! Two implementations: the HTTP [`Client`], and [`Memory`], which calls the primary's
//! handling ([`crate::primary::serve_push`], [`crate::primary::serve_pull`]) on the
//! primary's store in the same process, for tests that need no server.
//!
//! The trait returns `impl Future + Send` (edition 2024 allows it in traits), so no
//! boxing crate is needed and the driver can spawn a pull onto its own task; the price
//! is that the trait is not object-safe, which nothing here needs: the driver is
//! generic over its transport.

use crate::client::Client;
use crate::error::NodeError;
use sitesync_core::{OrgId, SiteId};
use sitesync_protocol::{
    EnrolRequest, EnrolResponse, PullQuery, PullResponse, PushRequest, PushResponse,
};
use sitesync_store::PrimaryStorage;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A page whose answer has begun to arrive: the next cursor and whether more wait, when
/// the answer said them before its body (`None` otherwise), and the page itself.
pub struct Started {
    /// The next cursor and `more`, from the headers.
    pub next: Option<(u64, bool)>,
    /// Reads and decodes the page.
    pub page: Pin<Box<dyn Future<Output = Result<PullResponse, NodeError>> + Send>>,
}

/// How a satellite reaches its primary.
pub trait Transport: Clone + Send + Sync + 'static {
    /// Pushes a batch of changes.
    fn push(
        &self,
        request: &PushRequest,
    ) -> impl Future<Output = Result<PushResponse, NodeError>> + Send;

    /// Pulls one page (waiting up to `query.wait_ms` for one).
    fn pull(
        &self,
        query: &PullQuery,
    ) -> impl Future<Output = Result<PullResponse, NodeError>> + Send;

    /// Sends a pull and returns once the answer's headers have arrived.
    fn start_pull(
        &self,
        query: &PullQuery,
    ) -> impl Future<Output = Result<Started, NodeError>> + Send;

    /// Enrols a new satellite with a sync key.
    fn enrol(
        &self,
        request: &EnrolRequest,
    ) -> impl Future<Output = Result<EnrolResponse, NodeError>> + Send;

    /// Body bytes sent and received so far (as on the wire).
    fn traffic(&self) -> (u64, u64);

    /// Notes an error of this side at `at`, for the primary to hear of with the next
    /// pull (it shows it on the site's page); an in-process primary has no page.
    fn note_error(&self, _at: u64, _error: &str) {}
}

impl Transport for Client {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        Client::push(self, request).await
    }

    async fn pull(&self, query: &PullQuery) -> Result<PullResponse, NodeError> {
        Client::pull(self, query).await
    }

    async fn start_pull(&self, query: &PullQuery) -> Result<Started, NodeError> {
        let started = Client::start_pull(self, query).await?;
        Ok(Started {
            next: started.next,
            page: Box::pin(started.finish()),
        })
    }

    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, NodeError> {
        Client::enrol(self, request).await
    }

    fn traffic(&self) -> (u64, u64) {
        Client::traffic(self)
    }

    fn note_error(&self, at: u64, error: &str) {
        Client::note_error(self, at, error);
    }
}

/// A primary in this process: each request is handled at once on its store, as the
/// sync API would handle it (a long poll answers at once: there is no one to wait for).
/// Enrolment needs the primary's keys, so it is refused.
#[derive(Clone)]
pub struct Memory {
    primary: Arc<dyn PrimaryStorage>,
    org: OrgId,
    site: SiteId,
    clock: fn() -> u64,
}

impl Memory {
    /// Satellite `site` of `org`, talking to the primary holding `primary`, whose clock
    /// is `clock`.
    pub fn new(
        primary: Arc<dyn PrimaryStorage>,
        org: OrgId,
        site: SiteId,
        clock: fn() -> u64,
    ) -> Memory {
        Memory {
            primary,
            org,
            site,
            clock,
        }
    }
}

impl Transport for Memory {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        let outcome = crate::primary::serve_push(
            self.primary.as_ref(),
            self.org,
            self.site,
            request.changes.clone(),
            (self.clock)(),
        )?;
        Ok(outcome.response)
    }

    async fn pull(&self, query: &PullQuery) -> Result<PullResponse, NodeError> {
        let site = self.primary.site_by_id(self.site)?;
        let (_, answer) = crate::primary::serve_pull(self.primary.as_ref(), &site, query)?;
        Ok(answer)
    }

    async fn start_pull(&self, query: &PullQuery) -> Result<Started, NodeError> {
        let answer = Transport::pull(self, query).await?;
        Ok(Started {
            next: Some((answer.cursor, answer.more)),
            page: Box::pin(std::future::ready(Ok(answer))),
        })
    }

    async fn enrol(&self, _request: &EnrolRequest) -> Result<EnrolResponse, NodeError> {
        Err(NodeError::NotFound(
            "an in-memory primary does not enrol sites".into(),
        ))
    }

    fn traffic(&self) -> (u64, u64) {
        (0, 0)
    }
}
