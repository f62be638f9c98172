//! `sitesync org licence`: an organisation's licence shown, or changed and shown.

use crate::admin::OPERATOR;
use crate::output::{Output, table};
use anyhow::Result;
use serde_json::{Value, json};
use sitesync_node::now_ms;
use sitesync_service::{
    LicenceChange, LicenceView, Module, ModuleState, ServiceError, Site, plural,
};

/// What the command line says of a licence: `--sites`, each `--module`, `--expires`.
pub struct Asked {
    pub org: String,
    pub sites: Option<String>,
    pub modules: Vec<String>,
    pub expires: Option<String>,
}

/// Shows the licence, after changing it when anything is asked. Input is read whole
/// before anything changes, so a bad part changes nothing.
pub fn licence(site: &Site, out: &Output, asked: Asked) -> Result<()> {
    let change = LicenceChange::parse(
        asked.sites.as_deref(),
        &asked.modules,
        asked.expires.as_deref(),
    )
    .map_err(ServiceError::from)?;
    let view = match change.is_empty() {
        true => site.licence(OPERATOR, &asked.org, now_ms())?,
        false => site.change_licence(OPERATOR, &asked.org, &change, now_ms())?,
    };
    let value = as_json(&view);
    out.print(&value, || as_text(&view));
    Ok(())
}

/// A module's state in words.
fn state(view: &LicenceView, module: Module) -> String {
    match view.module(module) {
        ModuleState::Off => "off".into(),
        ModuleState::On(None) => "on".into(),
        ModuleState::On(Some(day)) => format!("on until {day}"),
        ModuleState::Expired(day) => format!("expired after {day}"),
    }
}

fn as_json(view: &LicenceView) -> Value {
    let modules: Vec<Value> = Module::ALL
        .iter()
        .map(|&m| {
            let until = view.licence.modules.get(&m).copied().flatten();
            let state = match view.module(m) {
                ModuleState::Off => "off",
                ModuleState::On(_) => "on",
                ModuleState::Expired(_) => "expired",
            };
            json!({"name": m.name(), "state": state, "until": until.map(|d| d.to_string())})
        })
        .collect();
    let expiring: Vec<Value> = view
        .expiring()
        .iter()
        .map(|e| json!({"module": e.module.map(Module::name), "last_day": e.last_day.to_string()}))
        .collect();
    json!({
        "org": {"id": view.org.id, "name": view.org.name},
        "sites": {"limit": view.licence.sites, "enrolled": view.enrolled},
        "expires": view.licence.expires.map(|d| d.to_string()),
        "expired": view.licence.expired(view.today),
        "modules": modules,
        "expiring": expiring,
    })
}

fn as_text(view: &LicenceView) -> String {
    let limit = view
        .licence
        .sites
        .map_or("unlimited".to_string(), |n| n.to_string());
    let expires = match view.licence.expires {
        None => "never".to_string(),
        Some(day) if view.licence.expired(view.today) => format!("{day} (expired)"),
        Some(day) => format!("{day} (the last day it is valid)"),
    };
    let rows: Vec<Vec<String>> = Module::ALL
        .iter()
        .map(|&m| vec![m.name().to_string(), state(view, m)])
        .collect();
    let mut text = format!(
        "licence of organisation {} {:?}\nsites: {} enrolled, limit {limit}\nexpires: {expires}\n{}",
        view.org.id,
        view.org.name,
        view.enrolled,
        table(&["MODULE", "STATE"], &rows)
    );
    for ending in view.expiring() {
        let what = ending
            .module
            .map_or("the licence".to_string(), |m| format!("module {m}"));
        let days = (ending.last_day.0 - view.today.0) as u64;
        text.push_str(&format!(
            "\nwarning: {what} ends after {} (in {})",
            ending.last_day,
            plural(days, "day")
        ));
    }
    text
}
