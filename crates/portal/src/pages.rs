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
use sitesync_core::time;
use sitesync_service::attempts::Subject;
use sitesync_service::{
    Account, Actor, ErrorKind, MIN_PASSWORD, MemberRole, Registration, ServiceError, Site, SiteView,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register_form).post(register))
        .route("/confirm/{token}", get(confirm_form).post(confirm))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/reset", get(reset_form).post(ask_reset))
        .route("/reset/{token}", get(new_password_form).post(set_password))
        .route("/orgs", get(orgs).post(create_org))
        .route("/orgs/{org}", get(org))
        .route("/orgs/{org}/rotate-key", get(rotate_form).post(rotate))
        .route("/orgs/{org}/stores", get(stores).post(create_store))
        .route("/orgs/{org}/sites", get(sites_table))
        .route("/orgs/{org}/sites/{site}", get(site_page_of))
        .route("/orgs/{org}/sites/{site}/assign", post(assign))
        .route("/orgs/{org}/sites/{site}/revoke", post(revoke))
        .route("/orgs/{org}/members", get(members))
        .route("/orgs/{org}/members/invite", post(invite))
        .route("/orgs/{org}/members/{member}/role", post(set_role))
        .route("/orgs/{org}/members/{member}/remove", post(remove_member))
        .route("/invite/{token}", get(invitation).post(accept))
        .route("/account", get(account))
        .route("/account/end-others", post(end_others))
        .route("/account/password", post(change_password))
        .route("/static/portal.css", get(css))
        .route("/static/portal.js", get(js))
        .route("/static/htmx.min.js", get(htmx))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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

fn text(headers: &HeaderMap) -> &'static Text {
    for_reader(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The signed-in account and its session token; a reader who is not signed in (or
/// whose session ended) is sent to sign in instead.
struct SignedIn(Account, String);

impl FromRequestParts<Portal> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let Some(token) = portal.session_token(&parts.headers) else {
            return Err(Redirect::to("/login").into_response());
        };
        let asked = token.clone();
        match blocking(portal, move |site| site.session(&asked, now_ms())).await {
            Ok(account) => Ok(SignedIn(account, token)),
            Err(_) => Err((
                [(header::SET_COOKIE, portal.cookie(None))],
                Redirect::to("/login"),
            )
                .into_response()),
        }
    }
}

/// A form page: what it asks, where it posts, and what it says.
#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    t: &'a Text,
    who: Option<String>,
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
    fn new(t: &'a Text, heading: &'static str, action: &str, button: &'static str) -> Self {
        FormPage {
            t,
            who: None,
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
    who: Option<String>,
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
            who: None,
            heading,
            message,
            link,
        },
    )
}

/// The status of a page shown again with why the form was refused, or plainly.
fn shown_with(error: &Option<String>) -> StatusCode {
    match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    }
}

/// A failed use-case as a page: its words, with the status its kind has.
fn failure(t: &Text, error: &ServiceError) -> Response {
    let (status, _) = error.kind().http();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let words = match status {
        StatusCode::NOT_FOUND => t.s("not_found").to_string(),
        s if s.is_server_error() => t.s("error_title").to_string(),
        _ => error.to_string(),
    };
    message(t, status, "error_title", words, Some(("go_home", "/")))
}

#[derive(Clone, Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn home(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    match portal.session_token(&headers) {
        Some(_) => Redirect::to("/orgs").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

fn register_page(t: &Text) -> FormPage<'_> {
    let mut form = FormPage::new(t, "register_title", "/register", "create_account");
    form.password_autocomplete = "new-password";
    form.links = vec![("have_account", "/login")];
    form
}

async fn register_form(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let t = text(&headers);
    match portal.site.registration() {
        Registration::Open => page(StatusCode::OK, &register_page(t)),
        _ => message(
            t,
            StatusCode::FORBIDDEN,
            "register_title",
            t.s("registration_closed").into(),
            Some(("sign_in", "/login")),
        ),
    }
}

async fn register(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let email = form.email.clone();
    match blocking(&portal, move |site| {
        site.register(&form.email, &form.password, now_ms())
    })
    .await
    {
        Ok(()) => message(
            t,
            StatusCode::OK,
            "check_mail_title",
            t.s("check_mail").into(),
            None,
        ),
        Err(error) if error.kind() == ErrorKind::Forbidden => failure(t, &error),
        Err(error) => {
            let mut again = register_page(t);
            again.email = email;
            again.error = Some(error.to_string());
            page(StatusCode::BAD_REQUEST, &again)
        }
    }
}

async fn confirm_form(headers: HeaderMap, Path(token): Path<String>) -> Response {
    let t = text(&headers);
    let mut form = FormPage::new(
        t,
        "confirm_title",
        &format!("/confirm/{token}"),
        "confirm_button",
    );
    form.ask_email = false;
    form.password_label = None;
    page(StatusCode::OK, &form)
}

async fn confirm(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let t = text(&headers);
    match blocking(&portal, move |site| site.confirm_address(&token, now_ms())).await {
        Ok(_) => message(
            t,
            StatusCode::OK,
            "confirm_title",
            t.s("confirmed").into(),
            Some(("sign_in", "/login")),
        ),
        Err(error) => failure(t, &error),
    }
}

fn login_page(t: &Text) -> FormPage<'_> {
    let mut form = FormPage::new(t, "sign_in_title", "/login", "sign_in");
    form.links = vec![("no_account", "/register"), ("forgot", "/reset")];
    form
}

async fn login_form(headers: HeaderMap) -> Response {
    page(StatusCode::OK, &login_page(text(&headers)))
}

async fn login(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let now = Instant::now();
    let subjects = [
        Subject::Address(peer.ip()),
        Subject::Account(form.email.trim().to_lowercase()),
    ];
    let mut again = login_page(t);
    again.email = form.email.clone();
    if let Some(wait) = subjects
        .iter()
        .find_map(|s| portal.attempts.refused(s, now))
    {
        tracing::warn!(%peer, "sign-in refused: too many failed attempts");
        again.error = Some(t.s("too_many").to_string());
        let retry = [(header::RETRY_AFTER, wait.to_string())];
        return (retry, page(StatusCode::TOO_MANY_REQUESTS, &again)).into_response();
    }
    let asked = form.clone();
    match blocking(&portal, move |site| {
        site.log_in(&asked.email, &asked.password, now_ms())
    })
    .await
    {
        Ok(session) => (
            [(header::SET_COOKIE, portal.cookie(Some(&session.token)))],
            Redirect::to("/orgs"),
        )
            .into_response(),
        Err(error) => {
            if matches!(error, ServiceError::WrongLogin) {
                tracing::warn!(%peer, "failed sign-in");
                portal.attempts.failed(&subjects, now);
            }
            again.error = Some(error.to_string());
            let (status, _) = error.kind().http();
            page(
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
                &again,
            )
        }
    }
}

async fn logout(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Some(token) = portal.session_token(&headers) {
        let _ = blocking(&portal, move |site| site.log_out(&token)).await;
    }
    (
        [(header::SET_COOKIE, portal.cookie(None))],
        Redirect::to("/login"),
    )
        .into_response()
}

async fn reset_form(headers: HeaderMap) -> Response {
    let t = text(&headers);
    let mut form = FormPage::new(t, "reset_title", "/reset", "send_reset");
    form.password_label = None;
    page(StatusCode::OK, &form)
}

async fn ask_reset(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    // The same answer whether or not the address has an account.
    let _ = blocking(&portal, move |site| site.ask_reset(&form.email, now_ms())).await;
    message(
        t,
        StatusCode::OK,
        "check_mail_title",
        t.s("check_mail").into(),
        None,
    )
}

fn new_password_page<'a>(t: &'a Text, token: &str) -> FormPage<'a> {
    let mut form = FormPage::new(
        t,
        "set_password_title",
        &format!("/reset/{token}"),
        "set_password",
    );
    form.ask_email = false;
    form.password_label = Some("new_password");
    form.password_autocomplete = "new-password";
    form
}

async fn new_password_form(headers: HeaderMap, Path(token): Path<String>) -> Response {
    page(StatusCode::OK, &new_password_page(text(&headers), &token))
}

async fn set_password(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let asked = token.clone();
    match blocking(&portal, move |site| {
        site.reset_password(&asked, &form.password, now_ms())
    })
    .await
    {
        Ok(_) => (
            [(header::SET_COOKIE, portal.cookie(None))],
            message(
                t,
                StatusCode::OK,
                "set_password_title",
                t.s("password_set").into(),
                Some(("sign_in", "/login")),
            ),
        )
            .into_response(),
        Err(error @ ServiceError::Input(_)) => {
            let mut again = new_password_page(t, &token);
            again.error = Some(error.to_string());
            page(StatusCode::BAD_REQUEST, &again)
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage<'a> {
    t: &'a Text,
    who: Option<String>,
    orgs: Vec<(u64, String, &'static str)>,
    error: Option<String>,
}

async fn orgs_page(portal: &Portal, t: &Text, account: Account, error: Option<String>) -> Response {
    let who = Some(account.email.clone());
    match blocking(portal, move |site| site.memberships(&account)).await {
        Ok(memberships) => {
            let orgs = memberships
                .into_iter()
                .map(|(org, role)| (org.id, org.name, role.name()))
                .collect();
            let status = shown_with(&error);
            page(
                status,
                &OrgsPage {
                    t,
                    who,
                    orgs,
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

async fn orgs(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
) -> Response {
    orgs_page(&portal, text(&headers), account, None).await
}

#[derive(Deserialize)]
struct NewOrg {
    #[serde(default)]
    name: String,
}

async fn create_org(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Form(form): Form<NewOrg>,
) -> Response {
    let t = text(&headers);
    let owner = account.clone();
    match blocking(&portal, move |site| {
        site.create_org_as(&owner, &form.name, now_ms())
    })
    .await
    {
        Ok(made) => Redirect::to(&format!("/orgs/{}", made.org.id)).into_response(),
        Err(error) => orgs_page(&portal, t, account, Some(error.to_string())).await,
    }
}

/// A site's row on its organisation's page.
struct SiteLine {
    id: u32,
    name: String,
    stores: String,
    last_contact: String,
    health: &'static str,
    behind: u64,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage<'a> {
    t: &'a Text,
    who: Option<String>,
    id: u64,
    can_admin: bool,
    note: Option<&'static str>,
    org: String,
    role: &'static str,
    /// Shown to managers and above: the key enrols sites, which write data.
    sync_key: Option<String>,
    command: String,
    sites: Vec<SiteLine>,
}

/// An account's membership of an organisation, and the organisation's sites.
fn member_sites(
    site: &Site,
    account: &Account,
    org: u64,
) -> Result<(sitesync_service::Membership, Vec<SiteView>), ServiceError> {
    let member = site.membership(account, org)?;
    let sites = site
        .sites(Actor::Operator)?
        .into_iter()
        .filter(|s| s.row.org == member.org.id)
        .collect();
    Ok((member, sites))
}

fn site_lines(t: &Text, sites: &[SiteView]) -> Vec<SiteLine> {
    let now = now_ms();
    sites.iter().map(|s| site_line(t, s, now)).collect()
}

/// The sites table alone, which the organisation's page fetches again every two
/// seconds while it is open (htmx), so a site that syncs turns "in sync" by itself.
#[derive(Template)]
#[template(path = "org.html", block = "sites")]
struct SitesTable<'a> {
    t: &'a Text,
    id: u64,
    sites: Vec<SiteLine>,
}

async fn sites_table(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    let t = text(&headers);
    match blocking(&portal, move |site| member_sites(site, &account, org)).await {
        Ok((member, sites)) => page(
            StatusCode::OK,
            &SitesTable {
                t,
                id: member.org.id,
                sites: site_lines(t, &sites),
            },
        ),
        Err(error) => failure(t, &error),
    }
}

/// A site as its organisation's pages show it.
fn site_line(t: &Text, s: &SiteView, now: u64) -> SiteLine {
    SiteLine {
        id: s.row.id,
        name: s.row.name.clone(),
        stores: match (s.row.assignment.all_stores, s.stores.is_empty()) {
            (true, _) => t.s("all_stores").to_string(),
            (false, true) => t.s("org_wide_only").to_string(),
            (false, false) => s.stores.join(", "),
        },
        last_contact: s
            .row
            .last_contact
            .map_or_else(|| t.s("never").to_string(), time::rfc3339),
        health: health(s.row.revoked, s.row.last_contact, s.behind, now),
        behind: s.behind,
    }
}

/// How a site is doing, by when it was last heard of.
fn health(revoked: bool, last_contact: Option<u64>, behind: u64, now: u64) -> &'static str {
    const DAY: u64 = 86_400_000;
    match (revoked, last_contact) {
        (true, _) => "revoked",
        (false, None) => "never_connected",
        (false, Some(at)) if now.saturating_sub(at) > 3 * DAY => "lost",
        (false, Some(at)) if now.saturating_sub(at) > DAY => "stale",
        (false, Some(at)) if now.saturating_sub(at) > sitesync_service::ONLINE_WITHIN_MS => "late",
        (false, Some(_)) if behind > 0 => "online",
        (false, Some(_)) => "in_sync",
    }
}

async fn org(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    org_page(&portal, text(&headers), account, org, None).await
}

/// An organisation's page: its sync key, the command that enrols a site, its sites.
async fn org_page(
    portal: &Portal,
    t: &Text,
    account: Account,
    org: u64,
    note: Option<&'static str>,
) -> Response {
    let who = Some(account.email.clone());
    let base = portal.site.portal_url();
    let found = blocking(portal, move |site| {
        let (member, sites) = member_sites(site, &account, org)?;
        let detail = site.show_org(Actor::Operator, &member.org.id.to_string())?;
        Ok((member, detail, sites))
    })
    .await;
    let (member, detail, sites) = match found {
        Ok(found) => found,
        Err(error) => return failure(t, &error),
    };
    let sites = site_lines(t, &sites);
    let command = format!(
        "sitesync init satellite --primary {base} --sync-key {}",
        detail.key.sync_key
    );
    page(
        StatusCode::OK,
        &OrgPage {
            t,
            who,
            id: member.org.id,
            can_admin: member.role >= MemberRole::Admin,
            note,
            org: member.org.name,
            role: member.role.name(),
            sync_key: (member.role >= MemberRole::Manager).then_some(detail.key.sync_key),
            command,
            sites,
        },
    )
}

#[derive(Template)]
#[template(path = "rotate.html")]
struct RotatePage<'a> {
    t: &'a Text,
    who: Option<String>,
    id: u64,
    org: String,
}

async fn rotate_form(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    let t = text(&headers);
    let who = Some(account.email.clone());
    let what = "rotate the sync key";
    match blocking(&portal, move |site| {
        site.as_member(&account, org, MemberRole::Admin, what)
    })
    .await
    {
        Ok(member) => page(
            StatusCode::OK,
            &RotatePage {
                t,
                who,
                id: member.org.id,
                org: member.org.name,
            },
        ),
        Err(error) => failure(t, &error),
    }
}

async fn rotate(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    let t = text(&headers);
    let asking = account.clone();
    let rotated = blocking(&portal, move |site| {
        let member = site.as_member(&asking, org, MemberRole::Admin, "rotate the sync key")?;
        site.rotate_key(Actor::Operator, &member.org.id.to_string())
    })
    .await;
    match rotated {
        Ok(_) => {
            (portal.changed)();
            org_page(&portal, t, account, org, Some("rotated")).await
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Template)]
#[template(path = "stores.html")]
struct StoresPage<'a> {
    t: &'a Text,
    who: Option<String>,
    id: u64,
    org: String,
    can_manage: bool,
    stores: Vec<(u64, String)>,
    error: Option<String>,
}

async fn stores_page(
    portal: &Portal,
    t: &Text,
    account: Account,
    org: u64,
    error: Option<String>,
) -> Response {
    let who = Some(account.email.clone());
    let found = blocking(portal, move |site| {
        let member = site.membership(&account, org)?;
        let stores = site.stores(Actor::Operator, &member.org.id.to_string())?;
        Ok((member, stores))
    })
    .await;
    match found {
        Ok((member, stores)) => {
            let status = shown_with(&error);
            page(
                status,
                &StoresPage {
                    t,
                    who,
                    id: member.org.id,
                    can_manage: member.role >= MemberRole::Manager,
                    org: member.org.name,
                    stores: stores.into_iter().map(|s| (s.id, s.name)).collect(),
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

async fn stores(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    stores_page(&portal, text(&headers), account, org, None).await
}

#[derive(Deserialize)]
struct NewStore {
    #[serde(default)]
    name: String,
}

async fn create_store(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
    Form(form): Form<NewStore>,
) -> Response {
    let t = text(&headers);
    let asking = account.clone();
    let made = blocking(&portal, move |site| {
        let member = site.as_member(&asking, org, MemberRole::Manager, "create stores")?;
        site.create_store(Actor::Operator, &member.org.id.to_string(), &form.name)
    })
    .await;
    match made {
        Ok(_) => {
            (portal.changed)();
            Redirect::to(&format!("/orgs/{org}/stores")).into_response()
        }
        // Not a member, or not allowed: no form to show again.
        Err(error) if matches!(error.kind(), ErrorKind::Forbidden | ErrorKind::NotFound) => {
            failure(t, &error)
        }
        Err(error) => stores_page(&portal, t, account, org, Some(error.to_string())).await,
    }
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage<'a> {
    t: &'a Text,
    who: Option<String>,
    org_id: u64,
    org: String,
    site: SiteLine,
    revoked: bool,
    all_stores: bool,
    stores: Vec<(u64, String, bool)>,
    can_manage: bool,
    can_admin: bool,
    note: Option<&'static str>,
    error: Option<String>,
}

async fn site_page(
    portal: &Portal,
    t: &Text,
    account: Account,
    (org, id): (u64, u32),
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let who = Some(account.email.clone());
    let found = blocking(portal, move |site| {
        let (member, view) = site.member_site(&account, org, id)?;
        let stores = site.stores(Actor::Operator, &member.org.id.to_string())?;
        Ok((member, view, stores))
    })
    .await;
    let (member, view, stores) = match found {
        Ok(found) => found,
        Err(error) => return failure(t, &error),
    };
    let held = &view.row.assignment;
    let stores = stores
        .into_iter()
        .map(|s| (s.id, s.name, held.all_stores || held.stores.contains(&s.id)))
        .collect();
    let status = shown_with(&error);
    page(
        status,
        &SitePage {
            t,
            who,
            org_id: member.org.id,
            org: member.org.name,
            revoked: view.row.revoked,
            all_stores: view.row.assignment.all_stores,
            site: site_line(t, &view, now_ms()),
            stores,
            can_manage: member.role >= MemberRole::Manager,
            can_admin: member.role >= MemberRole::Admin,
            note,
            error,
        },
    )
}

async fn site_page_of(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path((org, id)): Path<(u64, u32)>,
) -> Response {
    site_page(&portal, text(&headers), account, (org, id), (None, None)).await
}

async fn assign(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path((org, id)): Path<(u64, u32)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let t = text(&headers);
    let asking = account.clone();
    let done = blocking(&portal, move |site| {
        let member = site.as_member(&asking, org, MemberRole::Manager, "assign stores to sites")?;
        site.member_site(&asking, org, id)?;
        let stores: Vec<String> = site
            .stores(Actor::Operator, &member.org.id.to_string())?
            .into_iter()
            .filter(|s| form.contains_key(&format!("store_{}", s.id)))
            .map(|s| s.id.to_string())
            .collect();
        site.assign_site(
            Actor::Operator,
            &id.to_string(),
            &stores,
            form.contains_key("all_stores"),
        )
    })
    .await;
    match done {
        Ok(_) => {
            (portal.changed)();
            site_page(&portal, t, account, (org, id), (Some("assigned"), None)).await
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Deserialize)]
struct Confirmation {
    #[serde(default)]
    name: String,
}

async fn revoke(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path((org, id)): Path<(u64, u32)>,
    Form(form): Form<Confirmation>,
) -> Response {
    let t = text(&headers);
    let asking = account.clone();
    let done = blocking(&portal, move |site| {
        site.as_member(&asking, org, MemberRole::Admin, "revoke sites")?;
        let (_, view) = site.member_site(&asking, org, id)?;
        if form.name.trim() != view.row.name {
            return Ok(false);
        }
        site.revoke_site(Actor::Operator, &id.to_string())?;
        Ok(true)
    })
    .await;
    match done {
        Ok(true) => {
            (portal.changed)();
            site_page(&portal, t, account, (org, id), (Some("revoked_note"), None)).await
        }
        Ok(false) => {
            let error = Some(t.s("wrong_name").to_string());
            site_page(&portal, t, account, (org, id), (None, error)).await
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage<'a> {
    t: &'a Text,
    who: Option<String>,
    id: u64,
    org: String,
    members: Vec<(u64, String, &'static str)>,
    roles: [&'static str; 4],
    note: Option<&'static str>,
    error: Option<String>,
}

async fn members_page(
    portal: &Portal,
    t: &Text,
    account: Account,
    org: u64,
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let who = Some(account.email.clone());
    match blocking(portal, move |site| site.members(&account, org)).await {
        Ok((member, members)) => {
            let status = shown_with(&error);
            page(
                status,
                &MembersPage {
                    t,
                    who,
                    id: member.org.id,
                    org: member.org.name,
                    members: members
                        .into_iter()
                        .map(|(a, r)| (a.id, a.email, r.name()))
                        .collect(),
                    roles: MemberRole::ALL.map(MemberRole::name),
                    note,
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

async fn members(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    members_page(&portal, text(&headers), account, org, (None, None)).await
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Makes a change of members as the signed-in account: the page again with `note`, or
/// with why it was refused (a role the asker may not touch is refused outright).
async fn change_members(
    portal: &Portal,
    (account, headers): (Account, &HeaderMap),
    (org, note): (u64, &'static str),
    change: impl FnOnce(&Site, &Account) -> Result<(), ServiceError> + Send + 'static,
) -> Response {
    let t = text(headers);
    let asking = account.clone();
    match blocking(portal, move |site| change(site, &asking)).await {
        Ok(()) => members_page(portal, t, account, org, (Some(note), None)).await,
        Err(error) if matches!(error.kind(), ErrorKind::Forbidden | ErrorKind::NotFound) => {
            failure(t, &error)
        }
        Err(error) => members_page(portal, t, account, org, (None, Some(error.to_string()))).await,
    }
}

async fn invite(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
    Form(form): Form<MemberForm>,
) -> Response {
    change_members(
        &portal,
        (account, &headers),
        (org, "invited_note"),
        move |site, asking| site.invite(asking, org, &form.email, &form.role, now_ms()),
    )
    .await
}

async fn set_role(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path((org, member)): Path<(u64, u64)>,
    Form(form): Form<MemberForm>,
) -> Response {
    change_members(
        &portal,
        (account, &headers),
        (org, "member_changed"),
        move |site, asking| site.set_role(asking, org, member, &form.role),
    )
    .await
}

async fn remove_member(
    State(portal): State<Portal>,
    SignedIn(account, _): SignedIn,
    headers: HeaderMap,
    Path((org, member)): Path<(u64, u64)>,
) -> Response {
    change_members(
        &portal,
        (account, &headers),
        (org, "member_changed"),
        move |site, asking| site.remove_member(asking, org, member),
    )
    .await
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    t: &'a Text,
    who: Option<String>,
    token: String,
    org: String,
    role: &'static str,
    email: String,
    signed_in: bool,
    has_account: bool,
    min_password: usize,
    error: Option<String>,
}

/// The signed-in account, if the request carries a live session.
async fn maybe_signed_in(portal: &Portal, headers: &HeaderMap) -> Option<(Account, String)> {
    let token = portal.session_token(headers)?;
    let asked = token.clone();
    let account = blocking(portal, move |site| site.session(&asked, now_ms()))
        .await
        .ok()?;
    Some((account, token))
}

async fn invitation_page(
    portal: &Portal,
    headers: &HeaderMap,
    token: String,
    error: Option<String>,
) -> Response {
    let t = text(headers);
    let signed = maybe_signed_in(portal, headers).await;
    let asked = token.clone();
    match blocking(portal, move |site| site.invitation(&asked, now_ms())).await {
        Ok(invited) => {
            let status = shown_with(&error);
            page(
                status,
                &InvitePage {
                    t,
                    who: signed.as_ref().map(|(a, _)| a.email.clone()),
                    token,
                    org: invited.org.name,
                    role: invited.role.name(),
                    email: invited.email,
                    signed_in: signed.is_some(),
                    has_account: invited.has_account,
                    min_password: MIN_PASSWORD,
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

async fn invitation(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    invitation_page(&portal, &headers, token, None).await
}

#[derive(Deserialize)]
struct NewPassword {
    #[serde(default)]
    password: String,
}

async fn accept(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> Response {
    let t = text(&headers);
    let signed = maybe_signed_in(&portal, &headers).await;
    let asked = token.clone();
    let joined = blocking(&portal, move |site| match signed {
        Some((account, _)) => Ok((None, site.accept_invitation(&asked, &account, now_ms())?)),
        None => {
            let (session, member) = site.join_by_invitation(&asked, &form.password, now_ms())?;
            Ok((Some(session.token), member))
        }
    })
    .await;
    match joined {
        Ok((session, member)) => {
            let to = Redirect::to(&format!("/orgs/{}", member.org.id));
            match session {
                Some(token) => {
                    ([(header::SET_COOKIE, portal.cookie(Some(&token)))], to).into_response()
                }
                None => to.into_response(),
            }
        }
        Err(error @ ServiceError::Input(_)) => {
            invitation_page(&portal, &headers, token, Some(error.to_string())).await
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    who: Option<String>,
    email: String,
    note: Option<&'static str>,
    error: Option<String>,
    min_password: usize,
    sessions: Vec<(String, String, bool)>,
}

async fn account_page(
    portal: &Portal,
    SignedIn(account, token): SignedIn,
    headers: &HeaderMap,
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let t = text(headers);
    match blocking(portal, move |site| site.sessions(&token, now_ms())).await {
        Ok(sessions) => {
            let sessions = sessions
                .into_iter()
                .map(|s| {
                    (
                        time::rfc3339(s.started_at),
                        time::rfc3339(s.seen_at),
                        s.current,
                    )
                })
                .collect();
            let email = account.email.clone();
            let status = shown_with(&error);
            page(
                status,
                &AccountPage {
                    t,
                    who: Some(account.email),
                    email,
                    note,
                    error,
                    min_password: MIN_PASSWORD,
                    sessions,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

async fn account(State(portal): State<Portal>, who: SignedIn, headers: HeaderMap) -> Response {
    account_page(&portal, who, &headers, (None, None)).await
}

async fn end_others(State(portal): State<Portal>, who: SignedIn, headers: HeaderMap) -> Response {
    let token = who.1.clone();
    if let Err(error) = blocking(&portal, move |site| {
        site.log_out_elsewhere(&token, now_ms())
    })
    .await
    {
        return failure(text(&headers), &error);
    }
    account_page(&portal, who, &headers, (Some("ended_others"), None)).await
}

#[derive(Deserialize)]
struct PasswordChange {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
}

async fn change_password(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
    Form(form): Form<PasswordChange>,
) -> Response {
    let token = who.1.clone();
    let changed = blocking(&portal, move |site| {
        site.change_password(&token, &form.current, &form.password, now_ms())
    })
    .await;
    match changed {
        Ok(()) => account_page(&portal, who, &headers, (Some("password_changed"), None)).await,
        Err(error @ ServiceError::Input(_)) => {
            account_page(&portal, who, &headers, (None, Some(error.to_string()))).await
        }
        Err(error) => failure(text(&headers), &error),
    }
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

/// htmx 2.0.11 (BSD Zero-Clause: `static/htmx-LICENSE`), vendored: nothing is fetched
/// from elsewhere. It refreshes the sites table while the page is open.
async fn htmx() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/htmx-2.0.11.min.js"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/portal.js"),
    )
        .into_response()
}
