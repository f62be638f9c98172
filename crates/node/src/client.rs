//! The satellite's HTTP client for the primary's sync API.

use crate::error::NodeError;
use crate::node::now_ms;
use crate::secrets::RequestStamp;
use crate::tls::{self, Trust};
use crate::wire;
use axum::body::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sitesync_core::SiteId;
use sitesync_core::file::{Hash, Manifest};
use sitesync_protocol::{
    CURSOR_HEADER, ERROR_HEADER, EnrolRequest, EnrolResponse, ErrorBody, MORE_HEADER, PullQuery,
    PullResponse, PushRequest, PushResponse, TIME_HEADER, VERSION, VERSION_HEADER, codec,
};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest answer the satellite accepts from the primary, after decompression.
const MAX_ANSWER: usize = 256 << 20;

/// Talks to one primary.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The primary's base URLs (several processes of one primary), and which one is in
    /// use: a request that cannot reach it moves to the next for the requests after.
    primaries: Arc<Primaries>,
    /// The site and its secret, which signs each request; `None` before enrolment.
    credential: Option<(SiteId, Arc<str>)>,
    /// How far the primary's clock is ahead of this machine's, in ms, as its last answer
    /// said: requests are signed with the primary's time.
    clock_offset: Arc<AtomicI64>,
    /// Body bytes sent and received, as they went over the wire (compressed).
    traffic: Arc<[AtomicU64; 2]>,
    /// The last error of this side not yet told to the primary ([`ERROR_HEADER`]):
    /// sent with each pull until one is answered.
    untold_error: Arc<Mutex<Option<String>>>,
}

impl Client {
    /// A client for the primary at `base` (like `https://10.0.0.5:7700`; several,
    /// separated by commas, for a primary served by several processes), trusting its
    /// TLS certificate by `trust`.
    pub fn new(base: &str, trust: &Trust) -> Result<Client, NodeError> {
        // For the system's roots, reqwest builds its own TLS configuration with the
        // process's default cryptography.
        tls::install_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Below the primary's `serve::HEADER_TIMEOUT`, after which it closes an idle
            // connection: reusing one it is closing would fail a request.
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!("sitesync/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true);
        if let Some(config) = tls::client_config(trust)? {
            builder = builder.tls_backend_preconfigured(config);
        }
        let http = builder
            .build()
            .map_err(|e| NodeError::Internal(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client {
            http,
            primaries: Arc::new(Primaries::new(base)),
            credential: None,
            clock_offset: Arc::default(),
            traffic: Arc::default(),
            untold_error: Arc::default(),
        })
    }

    /// The same client, signing its requests as this site.
    pub fn with_credential(mut self, site: SiteId, secret: &str) -> Client {
        self.credential = Some((site, secret.into()));
        self
    }

    /// Notes an error of this side (at `at`), to tell the primary with the next pull.
    pub fn note_error(&self, at: u64, error: &str) {
        *self.untold_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(wire::error_header(at, error));
    }

    fn untold_error(&self) -> Option<String> {
        self.untold_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Body bytes sent and received so far by this client and its clones.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.traffic[0].load(Ordering::Relaxed),
            self.traffic[1].load(Ordering::Relaxed),
        )
    }

    /// The primary's base URL in use.
    pub fn base(&self) -> &str {
        self.primaries.current()
    }

    /// How many addresses the primary has (its processes).
    pub fn addresses(&self) -> usize {
        self.primaries.urls.len()
    }

    /// Moves to the primary's next address (after a request that did not get through).
    pub fn next_address(&self) {
        self.primaries.next();
    }

    /// Enrols this satellite with a sync key.
    pub async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, NodeError> {
        let url = format!("{}/sync/v1/enrol", self.base());
        self.send(Method::POST, url, Some(request), Duration::from_secs(30))
            .await
    }

    /// Pushes a batch of changes.
    pub async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        let url = format!("{}/sync/v1/push", self.base());
        self.send(Method::POST, url, Some(request), Duration::from_secs(120))
            .await
    }

    /// Pulls one page (waiting up to `query.wait_ms` for one).
    pub async fn pull(&self, query: &PullQuery) -> Result<PullResponse, NodeError> {
        self.start_pull(query).await?.finish().await
    }

    /// Sends a pull and returns as soon as the answer's headers have arrived: they say
    /// the next cursor, so the next page can be asked for while this one is still being
    /// read and decoded.
    pub async fn start_pull(&self, query: &PullQuery) -> Result<StartedPull, NodeError> {
        let mut params = vec![("cursor", query.cursor.to_string())];
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        if let Some(wait) = query.wait_ms {
            params.push(("wait_ms", wait.to_string()));
        }
        if let Some(stores) = &query.stores {
            params.push(("stores", stores.clone()));
        }
        if let Some(version) = query.assignment_version {
            params.push(("assignment_version", version.to_string()));
        }
        if let Some(config) = query.config {
            params.push(("config", config.to_string()));
        }
        if query.count {
            params.push(("count", "true".to_string()));
        }
        let encoded: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("{}/sync/v1/pull?{}", self.base(), encoded.join("&"));
        let timeout = Duration::from_millis(query.wait_ms.unwrap_or(0)) + Duration::from_secs(60);
        let told = self.untold_error();
        let response = self.start::<()>(Method::GET, url, None, timeout).await?;
        if let Some(told) = told {
            let mut untold = self.untold_error.lock().unwrap_or_else(|p| p.into_inner());
            if untold.as_ref() == Some(&told) {
                *untold = None;
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let next = header(CURSOR_HEADER).zip(header(MORE_HEADER).map(|m| m == 1));
        Ok(StartedPull {
            next,
            response,
            client: self.clone(),
        })
    }

    /// The URL of a file's route, for a record.
    fn file_url(
        &self,
        file: &Hash,
        chunk: Option<usize>,
        record: Option<&(String, String)>,
    ) -> Result<String, NodeError> {
        let mut url = format!("{}/sync/v1/files/{}", self.base(), file.to_hex());
        if let Some(index) = chunk {
            url.push_str(&format!("/chunks/{index}"));
        }
        let Some((collection, id)) = record else {
            return Ok(url);
        };
        reqwest::Url::parse_with_params(&url, &[("collection", collection), ("id", id)])
            .map(String::from)
            .map_err(|e| NodeError::Internal(format!("cannot make a file URL: {e}")))
    }

    /// The manifest of a file of `record`.
    pub async fn file_manifest(
        &self,
        record: &(String, String),
        file: &Hash,
    ) -> Result<Manifest, NodeError> {
        let url = self.file_url(file, None, Some(record))?;
        self.send::<(), _>(Method::GET, url, None, Duration::from_secs(60))
            .await
    }

    /// Chunk `index` of a file of `record`.
    pub async fn file_chunk(
        &self,
        record: &(String, String),
        file: &Hash,
        index: usize,
    ) -> Result<Vec<u8>, NodeError> {
        let url = self.file_url(file, Some(index), Some(record))?;
        let response = self
            .start::<()>(Method::GET, url, None, Duration::from_secs(120))
            .await?;
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        self.traffic[1].fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes.to_vec())
    }

    /// Offers the primary a file put here for `record`; answers the chunks it lacks.
    pub async fn offer_file(
        &self,
        record: &(String, String),
        manifest: &Manifest,
    ) -> Result<Vec<usize>, NodeError> {
        let url = self.file_url(&manifest.hash(), None, Some(record))?;
        self.send(Method::POST, url, Some(manifest), Duration::from_secs(60))
            .await
    }

    /// Sends chunk `index` of a file the primary was offered.
    pub async fn send_chunk(
        &self,
        file: &Hash,
        index: usize,
        bytes: Vec<u8>,
    ) -> Result<(), NodeError> {
        let url = self.file_url(file, Some(index), None)?;
        self.traffic[0].fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let body = (Bytes::from(bytes), false);
        self.execute(Method::PUT, url, Some(body), Duration::from_secs(120))
            .await
            .map(|_| ())
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let response = self.start(method, url, body, timeout).await?;
        self.finish(response).await
    }

    /// Sends a request; returns the answer once its headers say it succeeded.
    async fn start<B: Serialize>(
        &self,
        method: Method,
        url: String,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<reqwest::Response, NodeError> {
        let body = body.map(|body| {
            let (bytes, compressed) = codec::encode(body);
            self.traffic[0].fetch_add(bytes.len() as u64, Ordering::Relaxed);
            (Bytes::from(bytes), compressed)
        });
        self.execute(method, url, body, timeout).await
    }

    /// Sends a request with a body as it is; returns the answer once its headers say
    /// it succeeded.
    async fn execute(
        &self,
        method: Method,
        url: String,
        body: Option<(Bytes, bool)>,
        timeout: Duration,
    ) -> Result<reqwest::Response, NodeError> {
        let mut signed_again = false;
        loop {
            let offset = self.clock_offset.load(Ordering::Relaxed);
            let request = self.request(&method, &url, body.as_ref(), timeout)?;
            let response = self
                .http
                .execute(request)
                .await
                .map_err(|e| self.unreachable(e))?;
            self.learn_time(&response);
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            // Signed with a clock far from the primary's: the refusal told us its time,
            // so sign again, once, with the corrected estimate.
            let corrected = self.clock_offset.load(Ordering::Relaxed).abs_diff(offset);
            if status == StatusCode::UNAUTHORIZED && !signed_again && corrected > 1_000 {
                signed_again = true;
                continue;
            }
            return Err(self.refusal(response).await);
        }
    }

    /// Builds a request, signed when this client has credentials.
    fn request(
        &self,
        method: &Method,
        url: &str,
        body: Option<&(Bytes, bool)>,
        timeout: Duration,
    ) -> Result<reqwest::Request, NodeError> {
        let mut call = self
            .http
            .request(method.clone(), url)
            .timeout(timeout)
            .header(VERSION_HEADER, VERSION.to_string());
        if let Some(error) = self.untold_error().filter(|_| *method == Method::GET) {
            call = call.header(ERROR_HEADER, error);
        }
        if let Some((bytes, compressed)) = body {
            call = call
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            if *compressed {
                call = call.header(CONTENT_ENCODING, "zstd");
            }
        }
        let mut request = call
            .build()
            .map_err(|e| NodeError::BadRequest(format!("cannot make a request to {url}: {e}")))?;
        if let Some((site, secret)) = &self.credential {
            let time = now_ms().saturating_add_signed(self.clock_offset.load(Ordering::Relaxed));
            let url = request.url();
            let target = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_string(),
            };
            let header = RequestStamp::new(*site, time)?.header(secret, method.as_str(), &target);
            let value = HeaderValue::from_str(&header)
                .map_err(|e| NodeError::Internal(format!("cannot sign a request: {e}")))?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(request)
    }

    /// Notes how far this machine's clock is from the primary's, from an answer.
    fn learn_time(&self, response: &reqwest::Response) {
        let primary = response
            .headers()
            .get(TIME_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if let Some(primary) = primary {
            let offset = primary.saturating_sub(now_ms() as i64);
            self.clock_offset.store(offset, Ordering::Relaxed);
        }
    }

    /// The error a refused request becomes.
    async fn refusal(&self, response: reqwest::Response) -> NodeError {
        let status = response.status();
        let response_path = response.url().path().to_string();
        let compressed = is_zstd(&response);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return self.unreachable(e),
        };
        let detail = codec::decode::<ErrorBody>(&bytes, compressed, 1 << 20)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        let enrolling = response_path.ends_with("/sync/v1/enrol");
        match status.as_u16() {
            401 if enrolling => NodeError::Refused(format!(
                "the primary refused the sync key ({detail}): it is wrong, or it was rotated (revoking a site rotates it). The current key is shown on the primary by `sitesync org show ORG`"
            )),
            401 if detail == NodeError::Unauthorised.to_string() => NodeError::Refused(format!(
                "the primary refused this site's credentials ({detail}): the site may have been revoked, or enrolled again elsewhere"
            )),
            401 => NodeError::Refused(format!(
                "the primary refused this site's credentials: {detail}"
            )),
            400..=499 => NodeError::Remote(format!("the primary refused the request: {detail}")),
            _ => NodeError::Remote(format!("the primary failed ({status}): {detail}")),
        }
    }

    /// Reads and decodes a successful answer.
    async fn finish<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, NodeError> {
        let compressed = is_zstd(&response);
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        self.traffic[1].fetch_add(bytes.len() as u64, Ordering::Relaxed);
        codec::decode(&bytes, compressed, MAX_ANSWER).map_err(|e| {
            NodeError::Remote(format!(
                "the primary sent an answer this site cannot read: {e}"
            ))
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> NodeError {
        if let Some(problem) = tls_problem(&error) {
            return NodeError::Remote(format!(
                "the primary at {} failed the TLS check: {problem}. Check the URL and the --ca or --tls-fingerprint this site was enrolled with (the primary prints its fingerprint at `sitesync init primary --self-signed` and when `sitesync serve` starts)",
                self.base()
            ));
        }
        let reason = if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            "connection failed".to_string()
        } else {
            error.to_string()
        };
        let tried = self.base().to_string();
        if error.is_connect() || error.is_timeout() {
            self.primaries.next();
        }
        NodeError::Remote(format!("cannot reach primary at {tried}: {reason}"))
    }
}

/// The base URLs of a primary's processes, and the one in use.
struct Primaries {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Primaries {
    fn new(list: &str) -> Primaries {
        let mut urls: Vec<String> = list
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            urls.push(String::new());
        }
        Primaries {
            urls,
            current: AtomicUsize::new(0),
        }
    }

    fn current(&self) -> &str {
        let n = self.current.load(Ordering::Relaxed) % self.urls.len();
        &self.urls[n]
    }

    /// Moves to the next URL (the first after the last).
    fn next(&self) {
        if self.urls.len() > 1 {
            let n = self.current.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(primary = %self.urls[n % self.urls.len()], "trying the primary's next address");
        }
    }
}

/// A pull whose answer has begun to arrive.
pub struct StartedPull {
    /// The next cursor and whether more records wait, from the answer's headers (`None`
    /// from a primary that does not send them).
    pub next: Option<(u64, bool)>,
    response: reqwest::Response,
    client: Client,
}

impl StartedPull {
    /// Reads and decodes the page.
    pub async fn finish(self) -> Result<PullResponse, NodeError> {
        self.client.finish(self.response).await
    }
}

/// What TLS refused, when a request failed in the TLS handshake.
fn tls_problem(error: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An I/O error hides the error it wraps from `source`.
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        };
    }
    None
}

fn is_zstd(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"))
}
