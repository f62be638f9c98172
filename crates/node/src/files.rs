//! Files over HTTP: the local API's file routes, the sync API's, and the satellite's
//! file lane, which sends the primary the files put here and fetches the files of the
//! records held here, a chunk at a time, beside the record lanes (a file never holds
//! up a record).
//!
//! ```text
//! local API
//! PUT  /api/v1/{collection}/{id}/files/{field}[?name=N&store=S|org_wide=true&org=O]
//!      the body is the file, streamed; Content-Type is its media type
//! GET  /api/v1/{collection}/{id}/files/{field}[?org=O]   the file, streamed; Range taken
//!      (503 "not here yet" while it is on its way)
//! sync API (signed as every sync request)
//! GET  /sync/v1/files/{hash}?collection=C&id=I            its manifest
//! GET  /sync/v1/files/{hash}/chunks/{n}?collection=C&id=I  chunk n
//! POST /sync/v1/files/{hash}?collection=C&id=I            body: its manifest; answers
//!      the chunks still to send
//! PUT  /sync/v1/files/{hash}/chunks/{n}                   body: chunk n
//! ```

use crate::client::Client;
use crate::error::NodeError;
use crate::node::{Shared, blocking, now_ms};
use crate::primary::authenticate;
use crate::wire::{check_version, decode, encode};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sitesync_core::OrgId;
use sitesync_core::file::{CHUNK_SIZE, Hash, Manifest};
use sitesync_files::{Files, Put};
use sitesync_service::{Actor, ServiceError, StoreChoice};
use sitesync_store::SiteRow;
use std::net::SocketAddr;
use std::time::Duration;

/// The local API's file routes.
pub fn api_routes() -> Router<Shared> {
    Router::new().route(
        "/api/v1/{collection}/{id}/files/{field}",
        get(get_file).put(put_file),
    )
}

/// The sync API's file routes.
pub fn sync_routes() -> Router<Shared> {
    Router::new()
        .route(
            "/sync/v1/files/{hash}",
            get(send_manifest).post(take_manifest),
        )
        .route(
            "/sync/v1/files/{hash}/chunks/{index}",
            get(send_chunk).put(take_chunk),
        )
        .layer(axum::extract::DefaultBodyLimit::max(CHUNK_SIZE + 1024))
}

/// Query parameters of the local file routes.
#[derive(Debug, Default, Deserialize)]
struct FileQuery {
    org: Option<String>,
    store: Option<String>,
    #[serde(default)]
    org_wide: bool,
    /// The file's name (the field's name when absent).
    name: Option<String>,
}

/// What a file put through the local API answers (the CLI's `--json` says the same).
#[derive(Debug, Serialize)]
pub struct FilePut {
    /// The record as written.
    pub record: sitesync_service::RecordView,
    /// The file's hash.
    pub hash: String,
    /// Its size.
    pub size: u64,
}

/// Puts a file, streamed a chunk at a time into this site's files, then into the
/// record's field.
async fn put_file(
    State(node): State<Shared>,
    Path((collection, id, field)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<FilePut>, NodeError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    // Options that cannot be right are refused before any byte is read.
    StoreChoice::from_options(query.store.as_deref(), query.org_wide)?;
    let org = query.org.clone();
    let (put, files) = blocking(&node, move |node| {
        Ok(node.site.start_file(Actor::Api, org.as_deref())?)
    })
    .await?;
    let manifest = receive(put, files, body).await?;
    let name = query.name.clone().unwrap_or_else(|| field.clone());
    let answer = blocking(&node, move |node| {
        let store = StoreChoice::from_options(query.store.as_deref(), query.org_wide)?;
        let record = node.site.attach_file(
            Actor::Api,
            query.org.as_deref(),
            (&collection, &id, &field),
            (&name, &media_type),
            &manifest,
            store,
            now_ms(),
        )?;
        Ok(FilePut {
            record,
            hash: manifest.hash().file_hash(),
            size: manifest.size,
        })
    })
    .await?;
    node.notify_changed();
    Ok(axum::Json(answer))
}

/// Feeds a request's body into `put`, a chunk's worth at a time.
async fn receive(mut put: Put, files: Files, body: Body) -> Result<Manifest, NodeError> {
    let mut stream = body.into_data_stream();
    let mut pending = Vec::with_capacity(CHUNK_SIZE);
    let feed = |mut put: Put, files: Files, bytes: Vec<u8>| async move {
        tokio::task::spawn_blocking(move || {
            put.feed(&files, &bytes)
                .map(|()| (put, files))
                .map_err(ServiceError::from)
        })
        .await
        .map_err(|e| NodeError::Internal(format!("background task failed: {e}")))?
        .map_err(NodeError::from)
    };
    while let Some(frame) = stream.next().await {
        let frame =
            frame.map_err(|e| NodeError::BadRequest(format!("the file's body broke off: {e}")))?;
        pending.extend_from_slice(&frame);
        if pending.len() >= CHUNK_SIZE {
            let bytes = std::mem::replace(&mut pending, Vec::with_capacity(CHUNK_SIZE));
            (put, _) = feed(put, files.clone(), bytes).await?;
        }
    }
    let (put, files) = feed(put, files, pending).await?;
    tokio::task::spawn_blocking(move || put.finish(&files).map_err(ServiceError::from))
        .await
        .map_err(|e| NodeError::Internal(format!("background task failed: {e}")))?
        .map_err(NodeError::from)
}

/// Reads a file: whole, or the byte range a `Range` header asks for.
async fn get_file(
    State(node): State<Shared>,
    Path((collection, id, field)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, NodeError> {
    let here = blocking(&node, move |node| {
        Ok(node
            .site
            .file_of(Actor::Api, query.org.as_deref(), (&collection, &id, &field))?)
    })
    .await?;
    let manifest = here.whole.ok_or(ServiceError::FilePending {
        file: here.file.hash,
    })?;
    let size = manifest.size;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(text) => match byte_range(text, size) {
            Some(range) => Some(range),
            None => {
                let mut refused = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                refused.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                );
                return Ok(refused);
            }
        },
        None => None,
    };
    let (start, end) = range.unwrap_or((0, size));
    let mut response = Response::new(stream_bytes(here.files, manifest, start, end));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&here.file.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ETAG,
        header_value(&format!("\"{}\"", here.file.hash.file_hash())),
    );
    let name = here.file.name.replace(['"', '\\'], "_");
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"{name}\"")),
    );
    if range.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{}/{size}", end.saturating_sub(1))),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` as a half-open range within `size`; `None`
/// when it asks for nothing there (or for several ranges, which is not served).
pub fn byte_range(text: &str, size: u64) -> Option<(u64, u64)> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (true, false) => {
            let n: u64 = last.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (false, true) => (first.parse().ok()?, size),
        (false, false) => {
            let (a, b): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
            (a, b.saturating_add(1).min(size))
        }
        (true, true) => return None,
    };
    (start < end).then_some((start, end))
}

/// The bytes `start..end` of a file, read a chunk at a time (each checked as read).
fn stream_bytes(files: Files, manifest: Manifest, start: u64, end: u64) -> Body {
    let chunk = CHUNK_SIZE as u64;
    let first = (start / chunk) as usize;
    let stream = futures_util::stream::unfold(first, move |index| {
        let (files, manifest) = (files.clone(), manifest.clone());
        async move {
            if index >= manifest.chunks.len() {
                return None;
            }
            let from = index as u64 * chunk;
            if from >= end {
                return None;
            }
            let read = tokio::task::spawn_blocking(move || files.read_chunk(&manifest, index))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(error = %e, "a file could not be read");
                    return Some((Err(e), usize::MAX));
                }
            };
            let lo = start.saturating_sub(from) as usize;
            let hi = ((end - from).min(bytes.len() as u64)) as usize;
            Some((Ok(Bytes::copy_from_slice(&bytes[lo..hi])), index + 1))
        }
    });
    Body::from_stream(stream)
}

/// The record a file is asked for by (the sync API's query).
#[derive(Debug, Deserialize)]
struct ForRecord {
    collection: String,
    id: String,
}

fn hash_in_path(text: &str) -> Result<Hash, NodeError> {
    Hash::from_hex(text)
        .ok_or_else(|| NodeError::BadRequest(format!("{text:?} is not a file hash: 64 hex digits")))
}

/// The site a signed sync request comes from, checked as every sync request is.
struct SignedSite(SiteRow);

impl FromRequestParts<Shared> for SignedSite {
    type Rejection = NodeError;

    async fn from_request_parts(parts: &mut Parts, node: &Shared) -> Result<Self, NodeError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer)
            .ok_or_else(|| NodeError::Internal("a request without its peer's address".into()))?;
        check_version(&parts.headers)?;
        let request = (&parts.method, &parts.uri, &parts.headers);
        Ok(SignedSite(authenticate(node, request, peer).await?))
    }
}

async fn send_manifest(
    State(node): State<Shared>,
    SignedSite(site): SignedSite,
    Path(hash): Path<String>,
    Query(record): Query<ForRecord>,
) -> Result<Response, NodeError> {
    let file = hash_in_path(&hash)?;
    let manifest = blocking(&node, move |node| {
        let record = (record.collection.as_str(), record.id.as_str());
        Ok(node.site.file_for_site(&site, record, &file)?)
    })
    .await?;
    Ok(encode(&manifest))
}

async fn send_chunk(
    State(node): State<Shared>,
    SignedSite(site): SignedSite,
    Path((hash, index)): Path<(String, usize)>,
    Query(record): Query<ForRecord>,
) -> Result<Response, NodeError> {
    let file = hash_in_path(&hash)?;
    let bytes = blocking(&node, move |node| {
        let record = (record.collection.as_str(), record.id.as_str());
        Ok(node.site.chunk_for_site(&site, record, &file, index)?)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn take_manifest(
    State(node): State<Shared>,
    SignedSite(site): SignedSite,
    Path(hash): Path<String>,
    Query(record): Query<ForRecord>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NodeError> {
    let manifest: Manifest = decode(&headers, &body, CHUNK_SIZE)?;
    let file = hash_in_path(&hash)?;
    if manifest.hash() != file || !manifest.is_whole() {
        return Err(NodeError::BadRequest(format!(
            "the manifest sent is not that of file {file}"
        )));
    }
    let missing = blocking(&node, move |node| {
        let record = (record.collection.as_str(), record.id.as_str());
        Ok(node.site.take_manifest(&site, record, &manifest)?)
    })
    .await?;
    Ok(encode(&missing))
}

async fn take_chunk(
    State(node): State<Shared>,
    SignedSite(site): SignedSite,
    Path((hash, index)): Path<(String, usize)>,
    body: Bytes,
) -> Result<StatusCode, NodeError> {
    let file = hash_in_path(&hash)?;
    blocking(&node, move |node| {
        Ok(node.site.take_chunk(&site, &file, index, &body)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Chunks fetched at once. (Chunks are sent one at a time: a transfer cut short then
/// re-sends at most the chunk in flight.)
const FETCHES_IN_FLIGHT: usize = 4;

/// What one pass of the file lane did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Files the primary now has whole from this site.
    pub sent: u64,
    /// Files fetched whole.
    pub fetched: u64,
    /// Chunk bytes sent.
    pub bytes_sent: u64,
    /// Chunk bytes fetched.
    pub bytes_fetched: u64,
    /// Files still on their way (not yet whole at the primary, or failing).
    pub pending: u64,
}

/// Sends the primary this site's files it lacks, then fetches the files of records
/// held here that are not here whole. A file that fails is left for the next pass.
pub async fn pass(node: &Shared, client: &Client, org: OrgId) -> Result<FileReport, NodeError> {
    let mut report = FileReport::default();
    let (uploads, referenced) = blocking(node, move |node| {
        let uploads = node.site.files(org).uploads().map_err(ServiceError::from)?;
        let referenced = match uploads.is_empty() {
            true => Vec::new(),
            false => node.site.referenced_files(org)?,
        };
        Ok((uploads, referenced))
    })
    .await?;
    let files = node.site.files(org);
    for file in uploads {
        let Some((_, record)) = referenced.iter().find(|(h, _)| *h == file) else {
            // No record here names it any more: nothing to send it for.
            files.uploaded(&file);
            continue;
        };
        match upload(client, &files, record, &file, &mut report).await {
            Ok(()) => {
                files.uploaded(&file);
                report.sent += 1;
            }
            Err(e) => {
                report.pending += 1;
                tracing::info!(file = %file, error = %e, "a file could not be sent yet; trying again later");
            }
        }
    }
    let wanted = blocking(node, move |node| Ok(node.site.files_wanted(org)?)).await?;
    for (file, record) in wanted {
        match fetch(client, &files, &record, &file, &mut report).await {
            Ok(()) => report.fetched += 1,
            Err(e) => {
                report.pending += 1;
                tracing::info!(file = %file, error = %e, "a file could not be fetched yet; trying again later");
            }
        }
    }
    Ok(report)
}

async fn upload(
    client: &Client,
    files: &Files,
    record: &(String, String),
    file: &Hash,
    report: &mut FileReport,
) -> Result<(), NodeError> {
    let manifest = read(files, file, |f, h| f.manifest(h))
        .await?
        .ok_or_else(|| {
            NodeError::Internal(format!("file {file} was put here but its manifest is gone"))
        })?;
    let missing = client.offer_file(record, &manifest).await?;
    for index in missing {
        let m = manifest.clone();
        let bytes = read(files, file, move |f, _| f.read_chunk(&m, index)).await?;
        report.bytes_sent += bytes.len() as u64;
        client.send_chunk(file, index, bytes).await?;
    }
    Ok(())
}

async fn fetch(
    client: &Client,
    files: &Files,
    record: &(String, String),
    file: &Hash,
    report: &mut FileReport,
) -> Result<(), NodeError> {
    let manifest = client.file_manifest(record, file).await?;
    if manifest.hash() != *file || !manifest.is_whole() {
        return Err(NodeError::Remote(format!(
            "the primary sent a manifest that is not that of file {file}"
        )));
    }
    let m = manifest.clone();
    let missing = read(files, file, move |f, _| {
        f.save_manifest(&m)?;
        Ok(f.missing(&m))
    })
    .await?;
    // A few chunks in flight at once hide each one's round trip and write.
    let mut chunks = futures_util::stream::iter(missing)
        .map(|index| {
            let manifest = manifest.clone();
            async move {
                let bytes = client.file_chunk(record, file, index).await?;
                let len = bytes.len() as u64;
                read(files, file, move |f, _| {
                    f.put_chunk(&manifest, index, &bytes, false)
                })
                .await?;
                Ok::<u64, NodeError>(len)
            }
        })
        .buffer_unordered(FETCHES_IN_FLIGHT);
    while let Some(fetched) = chunks.next().await {
        report.bytes_fetched += fetched?;
    }
    // On disk before the file counts as here (a power cut would otherwise leave a
    // chunk to be found wanting only when read).
    drop(chunks);
    read(files, file, move |f, _| f.sync_chunks(&manifest)).await
}

/// Runs `work` on the files on a blocking thread.
async fn read<T: Send + 'static>(
    files: &Files,
    file: &Hash,
    work: impl FnOnce(&Files, &Hash) -> Result<T, sitesync_files::FileError> + Send + 'static,
) -> Result<T, NodeError> {
    let (files, file) = (files.clone(), *file);
    tokio::task::spawn_blocking(move || work(&files, &file))
        .await
        .map_err(|e| NodeError::Internal(format!("background task failed: {e}")))?
        .map_err(|e| NodeError::from(ServiceError::from(e)))
}

/// The longest a live file lane rests between passes after a change. A pass reads
/// every record to find the files they name, so the lane rests at least four times as
/// long as its last pass took (and at least [`LEAST_REST`]): on a large database the
/// scans keep to a fifth of the lane's time.
const PASS_EVERY: Duration = Duration::from_secs(2);
const LEAST_REST: Duration = Duration::from_millis(200);

/// The live file lane of a running satellite: a pass now, then after changes or a
/// minute; sooner, backing off, while files are pending (a file is sent once the
/// primary has its record, which the push lane sends meanwhile). A sweep of
/// unreferenced files runs hourly.
pub async fn lane(node: Shared, client: Client, org: OrgId) {
    let mut changes = node.changes.listen();
    let mut last_sweep = None::<tokio::time::Instant>;
    let mut retry = PASS_EVERY;
    while !node.is_stopping() {
        changes.borrow_and_update();
        let started = tokio::time::Instant::now();
        let (moved, pending) = match pass(&node, &client, org).await {
            Ok(report) => {
                if report.sent + report.fetched > 0 {
                    tracing::info!(
                        sent = report.sent,
                        fetched = report.fetched,
                        pending = report.pending,
                        "files moved"
                    );
                }
                (report.sent + report.fetched > 0, report.pending > 0)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the file lane failed; trying again later");
                (false, true)
            }
        };
        if last_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            last_sweep = Some(tokio::time::Instant::now());
            let _ = blocking(&node, move |node| Ok(node.site.sweep_files(org)?)).await;
        }
        if moved {
            // Records may name more files by now: look again soon (the pass's time was
            // mostly moving files, not reading records).
            tokio::time::sleep(LEAST_REST).await;
            continue;
        }
        let rest = (started.elapsed() * 4).clamp(LEAST_REST, PASS_EVERY);
        tokio::time::sleep(rest).await;
        let wait = match pending {
            true => retry,
            false => Duration::from_secs(60),
        };
        retry = match pending {
            true => (retry * 2).min(Duration::from_secs(60)),
            false => PASS_EVERY,
        };
        let _ = tokio::time::timeout(wait, changes.changed()).await;
    }
}

/// The primary's hourly sweep of every organisation's unreferenced files.
pub async fn sweeper(node: Shared) {
    while !node.is_stopping() {
        let swept = blocking(&node, |node| {
            for org in node.site.primary()?.orgs()? {
                node.site.sweep_files(org.id)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = swept {
            tracing::warn!(error = %e, "sweeping unreferenced files failed; trying again in an hour");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_read_as_http_says_and_nothing_outside_the_file_is_served() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(byte_range("bytes=990-5000", 1000), Some((990, 1000)));
        assert_eq!(byte_range("bytes=-5000", 1000), Some((0, 1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-4", 1000), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("bytes=-", 1000), None);
        assert_eq!(byte_range("lines=0-1", 1000), None);
        assert_eq!(
            byte_range("bytes=0-18446744073709551615", 10),
            Some((0, 10))
        );
    }
}
