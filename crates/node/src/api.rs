//! The local HTTP API of a running site (JSON).
//!
//! ```text
//! PUT    /api/v1/{collection}/{id}[?store=S|?org_wide=true][&org=O]   set fields (body: a JSON object)
//! GET    /api/v1/{collection}/{id}[?org=O]             one record
//! DELETE /api/v1/{collection}/{id}[?org=O]             delete it
//! GET    /api/v1/{collection}[?store=S&limit=N&after=ID&org=O]   list, in id order
//! GET    /api/v1/status                                what `sitesync status --json` prints
//! GET    /api/v1/_rejections[?all=true&limit=N&org=O]  changes the primary rejected
//! POST   /api/v1/_rejections/ack                       acknowledge: body {"through": ID}, or none for all
//! ```
//!
//! Collection names cannot begin with `_`, so the `_` routes never hide a collection.
//!
//! On loopback the API is open to the machine's users; bound to any other address it asks
//! for the bearer token that `init` printed. The primary holds many organisations, so
//! there `org` is required.

use crate::error::NodeError;
use crate::node::{Shared, blocking, now_ms};
use crate::secrets::token_matches;
use crate::status;
use crate::wire::bearer;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sitesync_protocol::ErrorBody;
use sitesync_service::{Actor, Changes, RecordView, RejectionView, ServiceError, StoreChoice};
use std::net::SocketAddr;

/// Largest record body the local API accepts.
pub const MAX_RECORD_BODY: usize = 1 << 20;

/// Query parameters of the record routes.
#[derive(Debug, Default, Deserialize)]
struct RecordQuery {
    org: Option<String>,
    store: Option<String>,
    /// Writing a new record: it belongs to no store (`?org_wide=true`).
    #[serde(default)]
    org_wide: bool,
    limit: Option<u32>,
    after: Option<String>,
    /// Reading one record: wait up to this long for it to exist (to arrive by sync).
    wait_ms: Option<u64>,
}

/// Query parameters of `GET /api/v1/_rejections`.
#[derive(Debug, Default, Deserialize)]
struct RejectionsQuery {
    org: Option<String>,
    /// Acknowledged ones too.
    #[serde(default)]
    all: bool,
    limit: Option<u32>,
}

/// The body of `POST /api/v1/_rejections/ack` (none: acknowledge all).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acknowledge {
    through: u64,
}

/// The local API routes.
pub fn routes(node: Shared) -> axum::Router<Shared> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/_rejections", get(rejections))
        .route("/api/v1/_rejections/ack", post(acknowledge))
        .route("/api/v1/{collection}", get(list))
        .route(
            "/api/v1/{collection}/{id}",
            get(get_record).put(put_record).delete(delete_record),
        )
        .merge(crate::files::api_routes())
        .layer(from_fn_with_state(node, require_token))
        // A nudge from `sitesync record …` in another process: carries nothing and
        // only makes this node look for new changes, so it needs no token.
        .route("/api/v1/_wake", post(wake))
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RECORD_BODY))
        .layer(from_fn(json_errors))
}

async fn no_route() -> NodeError {
    NodeError::NotFound(
        "no such API path: use /api/v1/{collection} or /api/v1/{collection}/{id}, with a collection name and a record id that are not empty".into(),
    )
}

/// Axum answers some bad requests itself, in plain text or with no body: a query string
/// or path it cannot parse, a body over the limit, a method a path does not take. Gives
/// those the same JSON error body as every other error, naming the problem.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    // Headers that say more than the body (a 416's Content-Range) stay.
    let mut kept = response.headers().clone();
    kept.remove(header::CONTENT_TYPE);
    kept.remove(header::CONTENT_LENGTH);
    let text = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, error) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            format!("the request body is over the limit of {MAX_RECORD_BODY} bytes (1 MiB)"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this path does not take that method: records take GET, PUT and DELETE, collections GET".to_string(),
        ),
        _ if text.is_empty() => (
            "invalid_input",
            status.canonical_reason().unwrap_or("bad request").to_string(),
        ),
        _ => ("invalid_input", text),
    };
    let body = ErrorBody {
        code: code.to_string(),
        error,
    };
    let mut answer = (status, Json(body)).into_response();
    answer.headers_mut().extend(kept);
    answer
}

async fn require_token(
    State(node): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, NodeError> {
    if node.api_token_required {
        node.check_address(peer.ip())?;
        let token = bearer(request.headers());
        if !token.is_some_and(|t| token_matches(t, &node.site.config.api_token_hash)) {
            return Err(node
                .failed_attempt("local API request", peer.ip(), None)
                .await);
        }
    }
    Ok(next.run(request).await)
}

async fn put_record(
    State(node): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
    Query(query): Query<RecordQuery>,
    body: Bytes,
) -> Result<Json<RecordView>, NodeError> {
    let body = sitesync_core::exact::parse(&body)?;
    let view = blocking(&node, move |node| {
        let store = StoreChoice::from_options(query.store.as_deref(), query.org_wide)?;
        Ok(node.site.put_record(
            Actor::Api,
            query.org.as_deref(),
            (&collection, &id),
            body,
            store,
            now_ms(),
        )?)
    })
    .await?;
    node.notify_changed();
    Ok(Json(view))
}

/// Reads a record; with `wait_ms`, waits for it to arrive (see
/// `Site::get_record_waiting`).
async fn get_record(
    State(node): State<Shared>,
    Path(key): Path<(String, String)>,
    Query(query): Query<RecordQuery>,
) -> Result<Json<RecordView>, NodeError> {
    let changes = Changes {
        changed: node.changes.listen(),
        stopping: || node.is_stopping(),
    };
    let view = node
        .site
        .get_record_waiting(Actor::Api, query.org, key, query.wait_ms, changes)
        .await?;
    Ok(Json(view))
}

async fn delete_record(
    State(node): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
    Query(query): Query<RecordQuery>,
) -> Result<Json<RecordView>, NodeError> {
    let view = blocking(&node, move |node| {
        Ok(node.site.delete_record(
            Actor::Api,
            query.org.as_deref(),
            (&collection, &id),
            now_ms(),
        )?)
    })
    .await?;
    node.notify_changed();
    Ok(Json(view))
}

async fn list(
    State(node): State<Shared>,
    Path(collection): Path<String>,
    Query(query): Query<RecordQuery>,
) -> Result<Json<Vec<RecordView>>, NodeError> {
    Ok(Json(
        blocking(&node, move |node| {
            Ok(node.site.list_records(
                Actor::Api,
                query.org.as_deref(),
                &collection,
                query.store.as_deref(),
                (query.after, query.limit.unwrap_or(100)),
            )?)
        })
        .await?,
    ))
}

async fn rejections(
    State(node): State<Shared>,
    Query(query): Query<RejectionsQuery>,
) -> Result<Json<Vec<RejectionView>>, NodeError> {
    Ok(Json(
        blocking(&node, move |node| {
            Ok(node.site.rejections(
                Actor::Api,
                query.org.as_deref(),
                query.all,
                query.limit.unwrap_or(100),
            )?)
        })
        .await?,
    ))
}

/// Acknowledges rejections; answers `{"acknowledged_through": ID}`.
async fn acknowledge(
    State(node): State<Shared>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, NodeError> {
    let through = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => Some(
            serde_json::from_slice::<Acknowledge>(&body)
                .map_err(|e| {
                    ServiceError::Input(format!(
                        "give {{\"through\": ID}} to acknowledge up to a rejection, \
                         or no body for all: {e}"
                    ))
                })?
                .through,
        ),
    };
    let mark = blocking(&node, move |node| {
        Ok(node.site.acknowledge_rejections(Actor::Api, through)?)
    })
    .await?;
    Ok(Json(serde_json::json!({ "acknowledged_through": mark })))
}

async fn status(State(node): State<Shared>) -> Result<Json<status::Status>, NodeError> {
    Ok(Json(status::report(&node, Actor::Api, true).await?))
}

/// A command changed the database under the running server: records (look for
/// changes to push and to hand out) or sites (read them again).
async fn wake(State(node): State<Shared>) {
    node.credentials.forget_all();
    node.notify_changed();
}
