//! The satellite's HTTP client for the primary's sync API.

use crate::error::NodeError;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sitesync_core::SiteId;
use sitesync_protocol::{
    CURSOR_HEADER, EnrolRequest, EnrolResponse, ErrorBody, MORE_HEADER, PullQuery, PullResponse,
    PushRequest, PushResponse, VERSION, VERSION_HEADER, codec,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest answer the satellite accepts from the primary, after decompression.
const MAX_ANSWER: usize = 256 << 20;

/// Talks to one primary.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// `Bearer <site>.<secret>`; empty before enrolment.
    credential: String,
    /// Body bytes sent and received, as they went over the wire (compressed).
    traffic: Arc<[AtomicU64; 2]>,
}

impl Client {
    /// A client for the primary at `base` (like `http://10.0.0.5:7700`).
    pub fn new(base: &str) -> Result<Client, NodeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Below the primary's `serve::HEADER_TIMEOUT`, after which it closes an idle
            // connection: reusing one it is closing would fail a request.
            .pool_idle_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| NodeError::Internal(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            credential: String::new(),
            traffic: Arc::default(),
        })
    }

    /// The same client, sending this site's credentials.
    pub fn with_credential(mut self, site: SiteId, secret: &str) -> Client {
        self.credential = format!("Bearer {site}.{secret}");
        self
    }

    /// Body bytes sent and received so far by this client and its clones.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.traffic[0].load(Ordering::Relaxed),
            self.traffic[1].load(Ordering::Relaxed),
        )
    }

    /// The primary's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Enrols this satellite with a sync key.
    pub async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, NodeError> {
        let call = self.http.post(format!("{}/sync/v1/enrol", self.base));
        self.send(call, Some(request), Duration::from_secs(30))
            .await
    }

    /// Pushes a batch of changes.
    pub async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        let call = self.http.post(format!("{}/sync/v1/push", self.base));
        self.send(call, Some(request), Duration::from_secs(120))
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
        if query.count {
            params.push(("count", "true".to_string()));
        }
        let encoded: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let call = self
            .http
            .get(format!("{}/sync/v1/pull?{}", self.base, encoded.join("&")));
        let timeout = Duration::from_millis(query.wait_ms.unwrap_or(0)) + Duration::from_secs(60);
        let response = self.start::<()>(call, None, timeout).await?;
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

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        call: reqwest::RequestBuilder,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let response = self.start(call, body, timeout).await?;
        self.finish(response).await
    }

    /// Sends a request; returns the answer once its headers say it succeeded.
    async fn start<B: Serialize>(
        &self,
        mut call: reqwest::RequestBuilder,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<reqwest::Response, NodeError> {
        call = call
            .timeout(timeout)
            .header(VERSION_HEADER, VERSION.to_string());
        if !self.credential.is_empty() {
            call = call.header(AUTHORIZATION, &self.credential);
        }
        if let Some(body) = body {
            let (bytes, compressed) = codec::encode(body);
            self.traffic[0].fetch_add(bytes.len() as u64, Ordering::Relaxed);
            call = call.header(CONTENT_TYPE, "application/json").body(bytes);
            if compressed {
                call = call.header(CONTENT_ENCODING, "zstd");
            }
        }
        let response = call.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let compressed = is_zstd(&response);
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        let detail = codec::decode::<ErrorBody>(&bytes, compressed, 1 << 20)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(match status.as_u16() {
            401 => NodeError::Remote(format!(
                "the primary refused this site's credentials ({detail}): the site may have been revoked, or enrolled again elsewhere"
            )),
            400..=499 => NodeError::Remote(format!("the primary refused the request: {detail}")),
            _ => NodeError::Remote(format!("the primary failed ({status}): {detail}")),
        })
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
        let reason = if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            "connection failed".to_string()
        } else {
            error.to_string()
        };
        NodeError::Remote(format!("cannot reach primary at {}: {reason}", self.base))
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

fn is_zstd(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"))
}
