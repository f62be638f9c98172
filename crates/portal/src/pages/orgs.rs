//! Organisations: the list and creation, an organisation's page with its sync key, the
//! key's rotation, and its stores.

use super::licences::warnings;
use super::sites::{SiteLine, member_sites, site_lines};
use super::*;

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    zones: &'static [String],
    orgs: Vec<(u64, String, &'static str)>,
    error: Option<String>,
}

pub(super) async fn orgs_page(
    portal: &Portal,
    t: &Text,
    who: SignedIn,
    error: Option<String>,
) -> Response {
    let account = who.account.clone();
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
                    nav: who.nav(None),
                    zones: zones(),
                    orgs,
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn orgs(State(portal): State<Portal>, who: SignedIn) -> Response {
    orgs_page(&portal, who.t, who, None).await
}

#[derive(Deserialize)]
pub(super) struct NewOrg {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_zone: String,
}

pub(super) async fn create_org(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Form(form): Form<NewOrg>,
) -> Response {
    let t = who.t;
    let owner = who.account.clone();
    match blocking(&portal, move |site| {
        let asked = (form.name.as_str(), form.time_zone.as_str());
        site.create_org_as(&owner, asked, Some(peer.ip()), now_ms())
    })
    .await
    {
        Ok(made) => Redirect::to(&format!("/orgs/{}", made.org.id)).into_response(),
        Err(error) => orgs_page(&portal, t, who, Some(say(t, &error))).await,
    }
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    can_admin: bool,
    can_delete: bool,
    error: Option<String>,
    note: Option<&'static str>,
    org: String,
    role: &'static str,
    /// Shown to managers and above: the key enrols sites, which write data.
    sync_key: Option<String>,
    command: String,
    sites: Vec<SiteLine>,
    time_zone: String,
    zones: &'static [String],
    /// For owners: what of the licence ends soon.
    warnings: Vec<String>,
}

pub(super) async fn org(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    org_page(&portal, who.t, who, org, (None, None)).await
}

/// An organisation's page: its sync key, the command that enrols a site, its sites.
pub(super) async fn org_page(
    portal: &Portal,
    t: &Text,
    who: SignedIn,
    org: u64,
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let account = who.account.clone();
    let base = portal.site.portal_url();
    let found = blocking(portal, move |site| {
        let (member, sites) = member_sites(site, &account, org)?;
        let detail = site.show_org(member.actor(None), &member.org.id.to_string())?;
        let (_, licence) = site.member_licence(&account, org, now_ms())?;
        Ok((member, detail, sites, licence))
    })
    .await;
    let (member, detail, sites, licence) = match found {
        Ok(found) => found,
        Err(error) => return failure(t, &error),
    };
    let thresholds = portal.site.site_health();
    let sites = site_lines(t, &sites, &member.org.time_zone, &thresholds);
    let pin = portal
        .pin
        .as_ref()
        .map(|fingerprint| format!(" --tls-fingerprint {fingerprint}"))
        .unwrap_or_default();
    let command = format!(
        "sitesync init satellite --primary {base} --sync-key {}{pin}",
        detail.key.sync_key
    );
    let remember = [(header::SET_COOKIE, portal.remember_org(member.org.id))];
    let shown = page(
        shown_with(&error),
        &OrgPage {
            t,
            nav: who.nav(Some(member.org.id)),
            id: member.org.id,
            can_admin: member.role >= MemberRole::Admin,
            can_delete: member.role == MemberRole::Owner,
            error,
            note,
            org: member.org.name,
            role: member.role.name(),
            sync_key: (member.role >= MemberRole::Manager).then_some(detail.key.sync_key),
            command,
            sites,
            time_zone: member.org.time_zone,
            zones: zones(),
            warnings: match member.role {
                MemberRole::Owner => warnings(t, &licence),
                _ => Vec::new(),
            },
        },
    );
    (remember, shown).into_response()
}

#[derive(Template)]
#[template(path = "rotate.html")]
struct RotatePage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    org: String,
}

pub(super) async fn rotate_form(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    let t = who.t;
    let account = who.account.clone();
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
                nav: who.nav(Some(member.org.id)),
                id: member.org.id,
                org: member.org.name,
            },
        ),
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn rotate(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let rotated = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        site.rotate_key(actor, &org.to_string())
    })
    .await;
    match rotated {
        Ok(_) => {
            (portal.changed)();
            org_page(&portal, t, who, org, (Some("rotated"), None)).await
        }
        Err(error) => failure(t, &error),
    }
}

#[derive(Template)]
#[template(path = "stores.html")]
struct StoresPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    org: String,
    can_manage: bool,
    stores: Vec<(u64, String)>,
    error: Option<String>,
}

pub(super) async fn stores_page(
    portal: &Portal,
    t: &Text,
    who: SignedIn,
    org: u64,
    error: Option<String>,
) -> Response {
    let account = who.account.clone();
    let found = blocking(portal, move |site| {
        let member = site.membership(&account, org)?;
        let stores = site.stores(member.actor(None), &member.org.id.to_string())?;
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
                    nav: who.nav(Some(member.org.id)),
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

pub(super) async fn stores(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    stores_page(&portal, who.t, who, org, None).await
}

#[derive(Deserialize)]
pub(super) struct NewStore {
    #[serde(default)]
    name: String,
}

pub(super) async fn create_store(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path(org): Path<u64>,
    Form(form): Form<NewStore>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let made = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        site.create_store(actor, &org.to_string(), &form.name)
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
        Err(error) => stores_page(&portal, t, who, org, Some(say(t, &error))).await,
    }
}

#[derive(Deserialize)]
pub(super) struct TimeZoneForm {
    #[serde(default)]
    time_zone: String,
}

pub(super) async fn set_time_zone(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path(org): Path<u64>,
    Form(form): Form<TimeZoneForm>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let set = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        site.set_time_zone(actor, &org.to_string(), &form.time_zone)
    })
    .await;
    match set {
        Ok(_) => org_page(&portal, t, who, org, (Some("time_zone_set"), None)).await,
        Err(error) => failure(t, &error),
    }
}

/// Deletes the organisation (owners only, its name typed, no site enrolled): the list of
/// the reader's organisations after, or the organisation's page with why not.
pub(super) async fn delete(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path(org): Path<u64>,
    Form(form): Form<Confirmation>,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    let deleted = blocking(&portal, move |site| {
        let actor = acting(site, &asking, org, peer)?;
        site.delete_org(actor, &org.to_string(), &form.name, now_ms())
    })
    .await;
    match deleted {
        Ok(_) => {
            (portal.changed)();
            Redirect::to("/orgs").into_response()
        }
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            let why = say(t, &error);
            org_page(&portal, t, who, org, (None, Some(why))).await
        }
        Err(error) => failure(t, &error),
    }
}
