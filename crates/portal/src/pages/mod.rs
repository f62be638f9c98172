//! The portal's pages: signing up, in and out, resetting a password, organisations with
//! their sync key and sites, and the account's sessions.

use crate::Portal;
use crate::text::{Text, for_reader};
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sitesync_service::attempts::Subject;
use sitesync_service::{
    Account, Actor, ErrorKind, MIN_PASSWORD, MemberRole, Registration, ServiceError, Site,
    SiteHealth, SiteView, local_time,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

mod account;
mod audit;
mod licences;
mod members;
mod orgs;
mod sign;
mod sites;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(sign::register_form).post(sign::register))
        .route(
            "/confirm/{token}",
            get(sign::confirm_form).post(sign::confirm),
        )
        .route("/login", get(sign::login_form).post(sign::login))
        .route("/logout", post(sign::logout))
        .route("/reset", get(sign::reset_form).post(sign::ask_reset))
        .route(
            "/reset/{token}",
            get(sign::new_password_form).post(sign::set_password),
        )
        .route("/orgs", get(orgs::orgs).post(orgs::create_org))
        .route("/orgs/{org}", get(orgs::org))
        .route("/orgs/{org}/time-zone", post(orgs::set_time_zone))
        .route("/orgs/{org}/delete", post(orgs::delete))
        .route(
            "/orgs/{org}/rotate-key",
            get(orgs::rotate_form).post(orgs::rotate),
        )
        .route(
            "/orgs/{org}/stores",
            get(orgs::stores).post(orgs::create_store),
        )
        .route("/orgs/{org}/licences", get(licences::licences))
        .route("/orgs/{org}/sites", get(sites::sites_table))
        .route("/orgs/{org}/sites/{site}", get(sites::site_page_of))
        .route("/orgs/{org}/sites/{site}/assign", post(sites::assign))
        .route("/orgs/{org}/sites/{site}/revoke", post(sites::revoke))
        .route("/orgs/{org}/members", get(members::members))
        .route("/orgs/{org}/audit", get(audit::audit))
        .route("/orgs/{org}/members/invite", post(members::invite))
        .route("/orgs/{org}/members/{member}/role", post(members::set_role))
        .route(
            "/orgs/{org}/members/{member}/remove",
            post(members::remove_member),
        )
        .route(
            "/orgs/{org}/invitations/{invitation}/withdraw",
            post(members::withdraw_invitation),
        )
        .route(
            "/invite/{token}",
            get(members::invitation).post(members::accept),
        )
        .route("/account", get(account::account))
        .route("/account/end-others", post(account::end_others))
        .route("/account/password", post(account::change_password))
        .route("/account/email", post(account::ask_email_change))
        .route("/account/language", post(account::set_language))
        .route(
            "/email/{token}",
            get(account::email_form).post(account::change_email),
        )
        .route("/static/portal.css", get(css))
        .route("/static/portal.js", get(js))
        .route("/static/htmx.min.js", get(htmx))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long before `now` the time `at` was, as a person says it: "just now",
/// "3 min ago", "2 h ago", "4 days ago".
fn ago(t: &Text, at: u64, now: u64) -> String {
    let seconds = now.saturating_sub(at) / 1000;
    let (key, n) = match seconds {
        0..10 => return t.s("just_now").to_string(),
        10..60 => ("ago_seconds", seconds),
        60..3600 => ("ago_minutes", seconds / 60),
        3600..86_400 => ("ago_hours", seconds / 3600),
        _ => ("ago_days", seconds / 86_400),
    };
    t.s(key).replace("{n}", &n.to_string())
}

/// Every time zone's name, for the forms that choose one.
fn zones() -> &'static [String] {
    static ZONES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ZONES.get_or_init(sitesync_service::time_zones)
}

/// A page answer: the HTML of a template, with a status.
fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be made",
            )
                .into_response()
        }
    }
}

/// Runs a use-case on a blocking thread (SQLite and argon2 block).
async fn blocking<T: Send + 'static>(
    portal: &Portal,
    work: impl FnOnce(&Site) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let site: Arc<Site> = portal.site.clone();
    tokio::task::spawn_blocking(move || work(&site))
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))?
}

/// The words for a reader: in the language their account chose (`chosen`), else the
/// one their browser asks for.
fn text_for(chosen: Option<&str>, headers: &HeaderMap) -> &'static Text {
    let asked = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    for_reader(chosen.or(asked))
}

/// The words for a reader who is not signed in: their browser's language.
fn text(headers: &HeaderMap) -> &'static Text {
    text_for(None, headers)
}

/// The signed-in account, its session token, the organisations it belongs to and the
/// words it reads (its account's language, else its browser's); a reader who is not
/// signed in (or whose session ended) is sent to sign in instead.
pub(super) struct SignedIn {
    account: Account,
    token: String,
    orgs: Vec<(u64, String, MemberRole)>,
    t: &'static Text,
}

impl SignedIn {
    /// The header of a page of this reader's, working in organisation `current`.
    fn nav(&self, current: Option<u64>) -> Option<Nav> {
        Some(Nav {
            who: self.account.email.clone(),
            orgs: self.orgs.clone(),
            current: current.and_then(|id| self.orgs.iter().find(|o| o.0 == id).cloned()),
        })
    }
}

impl FromRequestParts<Portal> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let Some(token) = portal.session_token(&parts.headers) else {
            return Err(Redirect::to("/login").into_response());
        };
        signed_in(portal, token, &parts.headers).await.map_err(|_| {
            (
                [(header::SET_COOKIE, portal.cookie(None))],
                Redirect::to("/login"),
            )
                .into_response()
        })
    }
}

/// The reader of a session token, with the organisations they belong to.
async fn signed_in(
    portal: &Portal,
    token: String,
    headers: &HeaderMap,
) -> Result<SignedIn, ServiceError> {
    let asked = token.clone();
    let (account, orgs) = blocking(portal, move |site| {
        let account = site.session(&asked, now_ms())?;
        let orgs = site.memberships(&account)?;
        Ok((account, orgs))
    })
    .await?;
    let orgs = orgs
        .into_iter()
        .map(|(org, role)| (org.id, org.name, role))
        .collect();
    Ok(SignedIn {
        t: text_for(account.language.as_deref(), headers),
        account,
        token,
        orgs,
    })
}

/// The signed-in reader, if the request carries a live session.
async fn maybe_signed_in(portal: &Portal, headers: &HeaderMap) -> Option<SignedIn> {
    signed_in(portal, portal.session_token(headers)?, headers)
        .await
        .ok()
}

/// The signed-in `account` acting in organisation `org`, its request from `from`: the
/// use-cases it calls check the organisation (another one is "not found") and the role.
fn acting(
    site: &Site,
    account: &Account,
    org: u64,
    from: SocketAddr,
) -> Result<Actor, ServiceError> {
    Ok(site.membership(account, org)?.actor(Some(from.ip())))
}

/// The header of a signed-in page: who is signed in, the organisations to switch
/// between, and the one being worked in, with the reader's role there (which decides
/// the tabs shown).
pub(super) struct Nav {
    who: String,
    orgs: Vec<(u64, String, MemberRole)>,
    current: Option<(u64, String, MemberRole)>,
}

impl Nav {
    /// Whether the reader's role in the current organisation is at least `role` (by
    /// name: `manager`, `admin`, `owner`).
    fn may(&self, role: &str) -> bool {
        let least = MemberRole::parse(role).unwrap_or(MemberRole::Owner);
        self.current
            .as_ref()
            .is_some_and(|(_, _, held)| *held >= least)
    }
}

/// A form page: what it asks, where it posts, and what it says.
#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    heading: &'static str,
    action: String,
    ask_email: bool,
    email: String,
    password_label: Option<&'static str>,
    password_autocomplete: &'static str,
    min_password: usize,
    button: &'static str,
    error: Option<String>,
    note: Option<&'static str>,
    links: Vec<(&'static str, &'static str)>,
}

impl<'a> FormPage<'a> {
    /// The page of a mailed link: one button that does what the link is for (a GET
    /// changes nothing).
    fn link_button(t: &'a Text, heading: &'static str, action: &str, button: &'static str) -> Self {
        let mut form = FormPage::new(t, heading, action, button);
        form.ask_email = false;
        form.password_label = None;
        form
    }

    fn new(t: &'a Text, heading: &'static str, action: &str, button: &'static str) -> Self {
        FormPage {
            t,
            nav: None,
            heading,
            action: action.to_string(),
            ask_email: true,
            email: String::new(),
            password_label: Some("password"),
            password_autocomplete: "current-password",
            min_password: MIN_PASSWORD,
            button,
            error: None,
            note: None,
            links: Vec::new(),
        }
    }
}

/// A page that says one thing, with maybe a link on.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    heading: &'static str,
    message: String,
    link: Option<(&'static str, &'static str)>,
}

fn message(
    t: &Text,
    status: StatusCode,
    heading: &'static str,
    message: String,
    link: Option<(&'static str, &'static str)>,
) -> Response {
    page(
        status,
        &MessagePage {
            t,
            nav: None,
            heading,
            message,
            link,
        },
    )
}

/// A dangerous change's form: the name typed to confirm it (a site's to revoke it, an
/// organisation's to delete it).
#[derive(Deserialize)]
pub(super) struct Confirmation {
    #[serde(default)]
    name: String,
}

/// The status of a page shown again with why the form was refused, or plainly.
fn shown_with(error: &Option<String>) -> StatusCode {
    match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    }
}

/// Why a use-case failed, in the reader's language where the catalogue has the words,
/// else in the service's English.
fn say(t: &Text, error: &ServiceError) -> String {
    let key = match error {
        ServiceError::Refused(refusal) => format!("err_{}", refusal.key),
        ServiceError::WrongLogin => "err_wrong_login".into(),
        ServiceError::LinkExpired => "err_link_expired".into(),
        ServiceError::SessionEnded => "err_session_ended".into(),
        ServiceError::NotAllowed { .. } => "err_not_allowed".into(),
        _ => return error.to_string(),
    };
    let Some(words) = t.get(&key) else {
        return error.to_string();
    };
    match error {
        ServiceError::Refused(refusal) => refusal
            .values
            .iter()
            .fold(words.to_string(), |said, (name, value)| {
                said.replace(&format!("{{{name}}}"), value)
            }),
        _ => words.to_string(),
    }
}

/// A failed use-case as a page: its words, with the status its kind has.
fn failure(t: &Text, error: &ServiceError) -> Response {
    let (status, _) = error.kind().http();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let words = match status {
        StatusCode::NOT_FOUND => t.s("not_found").to_string(),
        s if s.is_server_error() => t.s("error_title").to_string(),
        _ => say(t, error),
    };
    message(t, status, "error_title", words, Some(("go_home", "/")))
}

/// The organisation the reader last worked in, or the list of them; signing in
/// otherwise.
async fn home(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let Some(who) = maybe_signed_in(&portal, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    match portal.remembered_org(&headers) {
        Some(org) if who.orgs.iter().any(|o| o.0 == org) => {
            Redirect::to(&format!("/orgs/{org}")).into_response()
        }
        _ => Redirect::to("/orgs").into_response(),
    }
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}

/// htmx 2.0.11 (BSD Zero-Clause: `static/htmx-LICENSE`), vendored: nothing is fetched
/// from elsewhere. It refreshes the sites table while the page is open.
async fn htmx() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/htmx-2.0.11.min.js"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/portal.js"),
    )
        .into_response()
}
