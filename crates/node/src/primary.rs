//! The primary's sync API: enrolment, push and long-polling pull.
//!
//! Every request but enrolment is signed with the site's secret (see
//! [`RequestStamp`]); a wrong, missing, replayed, stale or revoked credential gets the
//! same 401 and changes nothing. Every answer says the primary's time in
//! [`TIME_HEADER`], from which satellites learn how far their clocks are off.

use crate::error::NodeError;
use crate::node::{PushJob, Shared, blocking, now_ms};
use crate::secrets::{RequestStamp, token_matches};
use crate::wire::{self, MAX_SYNC_BODY, check_version, decode, encode};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use sitesync_core::Assignment;
use sitesync_core::{OrgId, SiteId, StoreId};
use sitesync_protocol::session::primary::{self as decide, Look};
use sitesync_protocol::{
    CURSOR_HEADER, EnrolRequest, MORE_HEADER, PullQuery, PullResponse, PushRequest, TIME_HEADER,
};
use sitesync_service::ErrorKind;
use sitesync_store::{Contact, PreparedPush, PrimaryStorage, PushOutcome, SiteRow, StoreError};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

pub use decide::{MAX_BATCH, MAX_PAGE};
/// Longest a pull may wait for a change.
pub const MAX_WAIT: Duration = Duration::from_millis(decide::MAX_WAIT_MS);

/// The sync routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/sync/v1/enrol", post(enrol))
        .route("/sync/v1/push", post(push))
        .route("/sync/v1/pull", get(pull))
        .merge(crate::files::sync_routes())
        // Compressed bodies are checked again after decompression, against the same limit.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_SYNC_BODY))
        .layer(axum::middleware::map_response(with_time))
}

/// Adds the primary's clock to an answer (refusals too: a satellite whose clock is
/// far off learns the offset from the 401 its stale signature earned).
async fn with_time(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(TIME_HEADER, HeaderValue::from(now_ms()));
    response
}

async fn enrol(
    State(node): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NodeError> {
    check_version(&headers)?;
    node.check_address(peer.ip())?;
    let request: EnrolRequest = decode(&headers, &body, 64 << 10)?;
    let answer = blocking(&node, move |node| {
        Ok(node.site.enrol(&request, now_ms())?)
    })
    .await;
    match answer {
        Ok(answer) => Ok(encode(&answer)),
        Err(error) if error.kind() == ErrorKind::Unauthorised => {
            Err(node.failed_attempt("enrolment", peer.ip(), None).await)
        }
        Err(error) => Err(error),
    }
}

async fn push(
    State(node): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NodeError> {
    check_version(&headers)?;
    let site = authenticate(&node, (&method, &uri, &headers), peer).await?;
    let request: PushRequest = decode(&headers, &body, MAX_SYNC_BODY)?;
    decide::check_batch(request.changes.len()).map_err(refused)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    // Checking and encoding happen here, on the request's own thread, while the single
    // writer works on earlier batches. (A blocking thread per request would compete
    // with that writer for the cores, and the writer is what limits throughput.)
    let now = now_ms();
    let changes = request
        .changes
        .into_iter()
        .map(|c| PreparedPush::new(c, site.id, now))
        .collect();
    let job = PushJob {
        org: site.org,
        site: site.id,
        changes,
        reply,
    };
    let stopped = || NodeError::Internal("the primary is stopping".into());
    node.pushes.send(job).await.map_err(|_| stopped())?;
    let outcome = answer.await.map_err(|_| stopped())??;
    tracing::debug!(
        site = site.id,
        applied = outcome.applied,
        rejected = outcome.response.rejected.len(),
        "push"
    );
    Ok(encode(&outcome.response))
}

async fn pull(
    State(node): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<PullQuery>,
) -> Result<Response, NodeError> {
    check_version(&headers)?;
    let site = authenticate(&node, (&method, &uri, &headers), peer).await?;
    let only = stores_asked(&query, &site.assignment)?;
    let started = now_ms();
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(decide::pull_deadline(query.wait_ms, started) - started);
    let mut changed = node.changes.listen();
    let site_id = site.id;
    // Only the main cursor says how far the site is; a backfill's cursor does not.
    node.note_contact(Contact {
        site: site_id,
        at: started,
        pull_cursor: only.is_none().then_some(query.cursor),
        applied_assignment: query.assignment_version,
        version: wire::site_version(&headers),
        error: wire::reported_error(&headers),
    });
    let _open = node.open_pull(site_id, started);
    let mut site = Some(site);
    loop {
        changed.borrow_and_update();
        let (known, q, o) = (site.take(), query.clone(), only.clone());
        // One trip to the database per look: the site (again, after a wait: it may have
        // been reassigned or revoked meanwhile), its page and its configuration.
        let (look, answer) = blocking(&node, move |node| {
            let store = node.site.primary()?;
            let s = match known {
                Some(s) => s,
                None => store.site_by_id(site_id)?,
            };
            look(store, &s, o.as_ref(), &q)
        })
        .await?;
        // Waiting until the deadline is the tokio clock's; `timeout_at` below tells when
        // it has passed.
        if decide::answers_now(look)
            || node.is_stopping()
            || tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
        {
            let mut response = encode(&answer);
            let headers = response.headers_mut();
            headers.insert(CURSOR_HEADER, answer.cursor.into());
            headers.insert(MORE_HEADER, u64::from(answer.more).into());
            return Ok(response);
        }
    }
}

/// The stores a backfill asks for, or `None` for a main pull.
fn stores_asked(
    query: &PullQuery,
    assignment: &Assignment,
) -> Result<Option<BTreeSet<StoreId>>, NodeError> {
    match &query.stores {
        Some(list) => Ok(Some(
            decide::parse_stores(list, assignment).map_err(refused)?,
        )),
        None => Ok(None),
    }
}

fn refused(refusal: decide::Refusal) -> NodeError {
    NodeError::BadRequest(refusal.to_string())
}

/// One look at the database for a pull of `site`: its page and configuration, and what
/// the look found (for [`decide::decide`]).
fn look(
    store: &dyn PrimaryStorage,
    site: &SiteRow,
    only: Option<&BTreeSet<StoreId>>,
    query: &PullQuery,
) -> Result<(Look, PullResponse), NodeError> {
    if site.revoked {
        return Err(NodeError::Unauthorised);
    }
    let limit = decide::page_limit(query.limit);
    let page = store.pull(site.org, &site.assignment, only, query.cursor, limit)?;
    let remaining = if query.count {
        store.routed_after(site.org, &site.assignment, page.next)?
    } else {
        0
    };
    let config = store.site_config(site)?;
    let look = Look {
        records: page.records.len(),
        more: page.more,
        applied: query.assignment_version,
        current: site.assignment_version,
        config_changed: query.config.is_some_and(|held| held != config.digest()),
    };
    let answer = PullResponse {
        records: page.records,
        cursor: page.next,
        more: page.more,
        remaining,
        config,
        incarnation: page.incarnation,
        head: page.head,
    };
    Ok((look, answer))
}

/// Handles a pull at once, as one look (a long poll is not held): what the sync API
/// would answer if nothing changed meanwhile. For in-process primaries (the simulator,
/// [`crate::transport::Memory`]). Returns whether the look would have answered at once.
pub fn serve_pull(
    store: &dyn PrimaryStorage,
    site: &SiteRow,
    query: &PullQuery,
) -> Result<(bool, PullResponse), NodeError> {
    let only = stores_asked(query, &site.assignment)?;
    let (look, answer) = look(store, site, only.as_ref(), query)?;
    Ok((decide::answers_now(look), answer))
}

/// Handles a push at once, as the sync API and its group committer would (alone in its
/// group). For in-process primaries.
pub fn serve_push(
    store: &dyn PrimaryStorage,
    org: OrgId,
    site: SiteId,
    changes: Vec<sitesync_protocol::PushedChange>,
    now_ms: u64,
) -> Result<PushOutcome, NodeError> {
    decide::check_batch(changes.len()).map_err(refused)?;
    Ok(store.apply_push(org, site, &changes, now_ms)?)
}

/// Checks a request's site credentials and returns the site. A wrong, missing or
/// revoked credential gets the same answer, and counts as a failed attempt.
pub(crate) async fn authenticate(
    node: &Shared,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    peer: SocketAddr,
) -> Result<SiteRow, NodeError> {
    node.check_address(peer.ip())?;
    // The signature covers the path and query as sent.
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestStamp::parse);
    let Some((stamp, signature)) = presented else {
        return Err(node.failed_attempt("sync request", peer.ip(), None).await);
    };
    let id = stamp.site;
    let known = match node.credentials.get(id) {
        Some(known) => Some(known),
        None => match blocking(node, move |node| Ok(node.site.primary()?.site_by_id(id))).await? {
            Ok(site) => secret_of(node, site),
            Err(StoreError::NotFound(_)) => {
                node.failed_attempt("sync request", peer.ip(), Some(id))
                    .await;
                return Err(NodeError::UnknownSite(id));
            }
            // The database is unreachable: no verdict on the credentials.
            Err(e) => return Err(e.into()),
        },
    };
    let valid = known.filter(|(site, secret)| {
        !site.revoked && stamp.verify(signature, secret, method.as_str(), target)
    });
    let Some((site, _)) = valid else {
        return Err(node
            .failed_attempt("sync request", peer.ip(), Some(id))
            .await);
    };
    // The nonce is spent only by a correctly signed request, so a forger cannot use
    // up a site's nonces.
    match node
        .fresh
        .admit(stamp.site, stamp.nonce, stamp.time, now_ms())
    {
        Ok(true) => Ok(site),
        Ok(false) => Err(node
            .failed_attempt("sync request", peer.ip(), Some(id))
            .await),
        Err(e) => Err(e.into()),
    }
}

/// Derives the secret of a site just read and remembers both; `None` when the secret
/// does not match the one the site enrolled with.
fn secret_of(node: &Shared, site: SiteRow) -> Option<(SiteRow, String)> {
    let keys = node.site.keys.as_ref()?;
    let secret = keys.site_secret(site.org, site.id, site.enrolled_at);
    if !token_matches(&secret, &site.secret_hash) {
        tracing::error!(
            site = site.id,
            "the secret derived for this site does not match the one it enrolled with: primary.key has changed since; restore it from backup"
        );
        return None;
    }
    node.credentials.remember(site.clone(), secret.clone());
    Some((site, secret))
}
