//! An organisation's sites: the table that refreshes itself, a site's page, assigning its
//! stores and revoking it.

use super::*;

/// A site's row on its organisation's page.
pub(super) struct SiteLine {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) stores: String,
    /// How long ago, as a person says it ("3 min ago").
    pub(super) last_contact: String,
    /// When exactly, in the organisation's time zone.
    pub(super) last_contact_at: String,
    pub(super) health: &'static str,
    pub(super) behind: u64,
    /// How many of its changes were rejected, and why the newest was.
    pub(super) rejected: u64,
    pub(super) rejected_why: String,
    /// The sitesync version it runs, if it said.
    pub(super) version: String,
    /// The last error it reported: what, and when (how long ago, and exactly).
    pub(super) last_error: Option<(String, String, String)>,
}

/// An account's membership of an organisation, and the organisation's sites.
pub(super) fn member_sites(
    site: &Site,
    account: &Account,
    org: u64,
) -> Result<(sitesync_service::Membership, Vec<SiteView>), ServiceError> {
    let member = site.membership(account, org)?;
    let sites = site.sites(member.actor(None))?;
    Ok((member, sites))
}

pub(super) fn site_lines(
    t: &Text,
    sites: &[SiteView],
    zone: &str,
    thresholds: &SiteHealth,
) -> Vec<SiteLine> {
    let now = now_ms();
    sites
        .iter()
        .map(|s| site_line(t, s, (now, zone), thresholds))
        .collect()
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

pub(super) async fn sites_table(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    let t = who.t;
    let account = who.account.clone();
    match blocking(&portal, move |site| member_sites(site, &account, org)).await {
        Ok((member, sites)) => page(
            StatusCode::OK,
            &SitesTable {
                t,
                id: member.org.id,
                sites: site_lines(t, &sites, &member.org.time_zone, &portal.site.site_health()),
            },
        ),
        Err(error) => failure(t, &error),
    }
}

/// A site as its organisation's pages show it.
pub(super) fn site_line(
    t: &Text,
    s: &SiteView,
    (now, zone): (u64, &str),
    thresholds: &SiteHealth,
) -> SiteLine {
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
            .map_or_else(|| t.s("never").to_string(), |at| ago(t, at, now)),
        last_contact_at: s
            .row
            .last_contact
            .map_or_else(String::new, |at| local_time(at, zone)),
        health: s.health(now, thresholds).name(),
        behind: s.behind,
        rejected: s.rejected.0,
        rejected_why: s.rejected.1.clone().unwrap_or_default(),
        version: s.row.version.clone().unwrap_or_default(),
        last_error: s
            .row
            .last_error
            .as_ref()
            .map(|(at, what)| (what.clone(), ago(t, *at, now), local_time(*at, zone))),
    }
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
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

pub(super) async fn site_page(
    portal: &Portal,
    t: &Text,
    who: SignedIn,
    (org, id): (u64, u32),
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let account = who.account.clone();
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
            nav: who.nav(Some(member.org.id)),
            org_id: member.org.id,
            org: member.org.name,
            revoked: view.row.revoked,
            all_stores: view.row.assignment.all_stores,
            site: site_line(
                t,
                &view,
                (now_ms(), &member.org.time_zone),
                &portal.site.site_health(),
            ),
            stores,
            can_manage: member.role >= MemberRole::Manager,
            can_admin: member.role >= MemberRole::Admin,
            note,
            error,
        },
    )
}

pub(super) async fn site_page_of(
    State(portal): State<Portal>,
    who: SignedIn,
    Path((org, id)): Path<(u64, u32)>,
) -> Response {
    site_page(&portal, who.t, who, (org, id), (None, None)).await
}

pub(super) async fn assign(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path((org, id)): Path<(u64, u32)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let done = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        let stores: Vec<String> = site
            .stores(actor, &org.to_string())?
            .into_iter()
            .filter(|s| form.contains_key(&format!("store_{}", s.id)))
            .map(|s| s.id.to_string())
            .collect();
        site.assign_site(
            actor,
            &id.to_string(),
            &stores,
            form.contains_key("all_stores"),
        )
    })
    .await;
    match done {
        Ok(_) => {
            (portal.changed)();
            site_page(&portal, t, who, (org, id), (Some("assigned"), None)).await
        }
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn revoke(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path((org, id)): Path<(u64, u32)>,
    Form(form): Form<Confirmation>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let done = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        let revoked = site.revoke_site_named(actor, &id.to_string(), &form.name)?;
        Ok(revoked.is_some())
    })
    .await;
    match done {
        Ok(true) => {
            (portal.changed)();
            site_page(&portal, t, who, (org, id), (Some("revoked_note"), None)).await
        }
        Ok(false) => {
            let error = Some(t.s("wrong_name").to_string());
            site_page(&portal, t, who, (org, id), (None, error)).await
        }
        Err(error) => failure(t, &error),
    }
}
