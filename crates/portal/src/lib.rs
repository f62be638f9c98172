//! The cloud account: the primary's web portal, served by `sitesync serve` at the root
//! of its address (the sync API stays under `/sync/v1`, the local API under `/api/v1`).
//! Server-rendered HTML (askama), usable without JavaScript; every page calls the
//! service layer's use-cases, never storage.
//!
//! # Layout
//!
//! - this file: the router, and what every page shares: the session cookie, the
//!   protection against cross-site forgery, the security headers;
//! - `pages`: the pages, one handler each, a file per part of the portal (signing in,
//!   organisations, sites, members, the account);
//! - `text`: the message catalogues (English, Russian).
//!
//! # Security
//!
//! - The session is a cookie holding a 256-bit token (stored hashed by the service),
//!   `HttpOnly`, `SameSite=Lax`, and over TLS `Secure` with the `__Host-` prefix.
//! - No state changes on GET. A POST from another site is refused: browsers say where a
//!   request comes from (`Sec-Fetch-Site`, `Origin`), and only this site's own pages
//!   may post.
//! - Every answer carries a content security policy with no inline script, and
//!   `nosniff`, a referrer policy, frame denial, and HSTS over TLS.

mod pages;
mod text;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use sitesync_service::Site;
use sitesync_service::attempts::Attempts;
use std::sync::Arc;

pub use text::{Text, for_reader};

/// What the portal's handlers share.
#[derive(Clone)]
pub struct Portal {
    /// The primary.
    pub site: Arc<Site>,
    /// Whether the primary serves TLS (cookies are `Secure` then).
    pub https: bool,
    /// The fingerprint of the primary's self-signed certificate, which sites pin: the
    /// enrolment command the portal shows names it.
    pub pin: Option<String>,
    /// Failed sign-ins, by address and by account.
    pub attempts: Arc<Attempts>,
    /// Tells the running server that administration changed (stores, assignments,
    /// revocations, keys), so satellites hear of it as fast as of records.
    pub changed: Arc<dyn Fn() + Send + Sync>,
}

/// The portal's routes, for the primary's server to merge with its APIs (which adds
/// each connection's peer address). `changed` is called after each administrative
/// change.
pub fn routes(
    site: Arc<Site>,
    (https, pin): (bool, Option<String>),
    changed: Arc<dyn Fn() + Send + Sync>,
) -> Router {
    let portal = Portal {
        site,
        https,
        pin,
        attempts: Arc::default(),
        changed,
    };
    pages::routes()
        .layer(from_fn_with_state(portal.clone(), guard))
        .with_state(portal)
}

impl Portal {
    /// The session cookie's name: `__Host-` over TLS, which browsers accept only from a
    /// secure page, for the whole host.
    fn cookie_name(&self) -> &'static str {
        match self.https {
            true => "__Host-session",
            false => "session",
        }
    }

    /// The session token the request's cookie holds.
    fn session_token(&self, headers: &HeaderMap) -> Option<String> {
        read_cookie(headers, self.cookie_name())
    }

    /// A `Set-Cookie` value holding `token` (or, with `None`, clearing the cookie).
    fn cookie(&self, token: Option<&str>) -> HeaderValue {
        self.set_cookie(self.cookie_name(), token, "")
    }

    /// The organisation the reader last worked in, remembered by their browser for a
    /// year: `/` opens it.
    fn remembered_org(&self, headers: &HeaderMap) -> Option<u64> {
        read_cookie(headers, self.org_cookie_name())?.parse().ok()
    }

    /// A `Set-Cookie` value remembering organisation `org`.
    fn remember_org(&self, org: u64) -> HeaderValue {
        let name = self.org_cookie_name();
        self.set_cookie(name, Some(&org.to_string()), "; Max-Age=31536000")
    }

    fn org_cookie_name(&self) -> &'static str {
        match self.https {
            true => "__Host-org",
            false => "org",
        }
    }

    fn set_cookie(&self, name: &str, value: Option<&str>, lifetime: &str) -> HeaderValue {
        let secure = if self.https { "; Secure" } else { "" };
        let value = match value {
            Some(value) => {
                format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{lifetime}{secure}")
            }
            None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
        };
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The value of the request's cookie `name`.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Whether a state-changing request comes from this site's own pages: the browser's
/// `Sec-Fetch-Site`, or else its `Origin` against the `Host` asked for. A request that
/// says neither comes from no browser (which would say), so carries no one's cookie
/// unknowingly.
fn same_site(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) == Some(host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Refuses cross-site posts, and adds the security headers to every answer.
async fn guard(
    axum::extract::State(portal): axum::extract::State<Portal>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST && !same_site(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "cross-site post refused");
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if portal.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
