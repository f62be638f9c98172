//! An organisation's licence, for every member to read (the operator sets it with
//! `sitesync org licence`; nothing here changes it), and the warnings of what ends soon
//! that owners see on the organisation's page.

use super::*;
use sitesync_service::{LicenceView, Module, ModuleState};

/// One module's line: its name and state in the reader's words, and its last day.
pub(super) struct ModuleLine {
    pub name: &'static str,
    pub label: String,
    pub state: &'static str,
    pub until: Option<String>,
}

#[derive(Template)]
#[template(path = "licences.html")]
struct LicencesPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    org: String,
    modules: Vec<ModuleLine>,
    enrolled: u64,
    limit: Option<u64>,
    expires: Option<String>,
    expired: bool,
    warnings: Vec<String>,
}

/// A module's name in the reader's words.
fn module_label(t: &Text, module: Module) -> String {
    let key = format!("module_{}", module.name().replace('-', "_"));
    t.s(&key).to_string()
}

/// What ends within the warning period, in the reader's words, soonest first.
pub(super) fn warnings(t: &Text, view: &LicenceView) -> Vec<String> {
    view.expiring()
        .iter()
        .map(|ending| {
            let (key, what) = match ending.module {
                Some(m) => ("module_ends", module_label(t, m)),
                None => ("licence_ends", String::new()),
            };
            t.s(key)
                .replace("{module}", &what)
                .replace("{day}", &ending.last_day.to_string())
                .replace("{days}", &(ending.last_day.0 - view.today.0).to_string())
        })
        .collect()
}

fn module_lines(t: &Text, view: &LicenceView) -> Vec<ModuleLine> {
    Module::ALL
        .iter()
        .map(|&module| {
            let (state, until) = match view.module(module) {
                ModuleState::Off => ("module_off", None),
                ModuleState::On(until) => ("module_on", until),
                ModuleState::Expired(day) => ("module_expired", Some(day)),
            };
            ModuleLine {
                name: module.name(),
                label: module_label(t, module),
                state,
                until: until.map(|d| d.to_string()),
            }
        })
        .collect()
}

pub(super) async fn licences(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
    Path(org): Path<u64>,
) -> Response {
    let t = text(&headers);
    let account = who.account.clone();
    let found = blocking(&portal, move |site| {
        site.member_licence(&account, org, now_ms())
    })
    .await;
    let (member, view) = match found {
        Ok(found) => found,
        Err(error) => return failure(t, &error),
    };
    page(
        StatusCode::OK,
        &LicencesPage {
            t,
            nav: who.nav(Some(member.org.id)),
            id: member.org.id,
            org: member.org.name,
            modules: module_lines(t, &view),
            enrolled: view.enrolled,
            limit: view.licence.sites,
            expires: view.licence.expires.map(|d| d.to_string()),
            expired: view.licence.expired(view.today),
            warnings: warnings(t, &view),
        },
    )
}
