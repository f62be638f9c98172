//! `sitesync status`: where a site stands, with a plain verdict.

use crate::error::NodeError;
use crate::node::{Shared, blocking};
use crate::satellite::Agent;
use crate::serve::running_address;
use serde::Serialize;
use sitesync_core::time;
use sitesync_protocol::PullQuery;
use sitesync_store::SyncNotes;
use std::time::Duration;

/// How a site stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// "primary" or "satellite".
    pub role: String,
    /// This site's id.
    pub site_id: u32,
    /// This site's name.
    pub name: String,
    /// Satellite: its organisation. Primary: `null` (it serves several).
    pub organisation: Option<String>,
    /// Satellite: the primary's URL.
    pub primary: Option<String>,
    /// Where `serve` listens, when it runs.
    pub serving: Option<String>,
    /// Satellite: the stores it holds.
    pub stores: Vec<String>,
    /// Satellite: it holds every store of the organisation.
    pub all_stores: bool,
    /// Primary: how many organisations and satellites it serves.
    pub organisations: Option<u64>,
    /// Primary: how many satellites are enrolled.
    pub sites: Option<u64>,
    /// When the site last finished a sync (RFC 3339).
    pub last_sync: Option<String>,
    /// Local changes not yet acknowledged by the primary.
    pub to_push: u64,
    /// Routed changes on the primary not yet pulled (`null` when the primary cannot be asked).
    pub to_pull: Option<u64>,
    /// Changes the primary rejected.
    pub rejected: u64,
    /// The last sync error, when it is newer than the last successful sync.
    pub last_error: Option<String>,
    /// Why the data folder cannot be written (a full disk, a read-only folder): then
    /// nothing syncs, and the site cannot even record its sync errors.
    pub disk: Option<String>,
    /// One line: "in sync", "3 changes to push", "cannot reach primary: …".
    pub verdict: String,
}

/// Builds the status report. With `ask_primary`, a satellite asks its primary how many
/// changes wait for it (a short request; an unreachable primary is reported, not fatal).
pub async fn report(node: &Shared, ask_primary: bool) -> Result<Status, NodeError> {
    let serving = running_address(&node.site.dir);
    let mut status = blocking(node, move |node| {
        let site = &node.site;
        let config = &site.config;
        let notes = match site.satellite() {
            Ok(store) => store.sync_notes()?,
            Err(_) => SyncNotes::default(),
        };
        let last_sync = notes.last_sync;
        let last_error = notes
            .last_error
            .filter(|(_, at)| *at > last_sync)
            .map(|(error, _)| error);
        let mut status = Status {
            role: if site.is_primary() {
                "primary"
            } else {
                "satellite"
            }
            .to_string(),
            site_id: config.site_id,
            name: config.name.clone(),
            organisation: config.org_name.clone(),
            primary: config.primary_url.clone(),
            serving,
            stores: Vec::new(),
            all_stores: false,
            organisations: None,
            sites: None,
            last_sync: (last_sync > 0).then(|| time::rfc3339(last_sync)),
            to_push: 0,
            to_pull: None,
            rejected: 0,
            last_error,
            disk: sitesync_sqlite::check_disk(&site.dir.root)
                .err()
                .map(|e| e.to_string()),
            verdict: String::new(),
        };
        if site.is_primary() {
            let orgs = site.primary()?.orgs()?;
            status.rejected = orgs
                .iter()
                .map(|o| site.records().rejection_count(o.id))
                .sum::<Result<u64, _>>()?;
            status.organisations = Some(orgs.len() as u64);
            status.sites = Some(site.primary()?.sites()?.len() as u64);
        } else {
            let sc = site.site_config()?;
            status.stores = sc.stores.into_iter().map(|s| s.name).collect();
            status.all_stores = sc.all_stores;
            status.to_push = site.satellite()?.outbox_len()?;
            status.rejected = site
                .records()
                .rejection_count(config.org_id.unwrap_or_default())?;
        }
        Ok(status)
    })
    .await?;
    let mut unreachable = None;
    if !node.site.is_primary() && ask_primary {
        match behind(node).await {
            Ok(n) => status.to_pull = Some(n),
            Err(e) => unreachable = Some(e.to_string()),
        }
    }
    status.verdict = verdict(&status, unreachable);
    Ok(status)
}

async fn behind(node: &Shared) -> Result<u64, NodeError> {
    let agent = Agent::new(node.clone())?;
    let state = blocking(node, |node| Ok(node.site.satellite()?.sync_state()?)).await?;
    let (cursor, applied) = (state.pull_cursor, state.assignment_applied);
    let query = PullQuery {
        cursor,
        limit: Some(0),
        count: true,
        assignment_version: Some(applied),
        ..PullQuery::default()
    };
    match tokio::time::timeout(Duration::from_secs(3), agent.client().pull(&query)).await {
        Ok(answer) => Ok(answer?.remaining),
        Err(_) => Err(NodeError::Remote(format!(
            "cannot reach primary at {}: timed out",
            agent.client().base()
        ))),
    }
}

fn verdict(status: &Status, unreachable: Option<String>) -> String {
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    if let Some(disk) = &status.disk {
        return disk.clone();
    }
    if status.role == "primary" {
        return match &status.serving {
            Some(addr) => format!(
                "serving {} and {} on {addr}",
                plural(status.organisations.unwrap_or(0), "organisation"),
                plural(status.sites.unwrap_or(0), "satellite")
            ),
            None => "not serving: start the primary with `sitesync serve`".to_string(),
        };
    }
    let mut verdict = if let Some(reason) = unreachable {
        reason
    } else if let Some(error) = &status.last_error {
        format!("last sync failed: {error}")
    } else if status.to_push > 0 {
        plural(status.to_push, "change") + " to push"
    } else if status.to_pull.unwrap_or(0) > 0 {
        plural(status.to_pull.unwrap_or(0), "change") + " to pull"
    } else if status.last_sync.is_none() {
        "never synced: run `sitesync sync` or `sitesync serve`".to_string()
    } else {
        "in sync".to_string()
    };
    if status.rejected > 0 {
        verdict += &format!(
            "; {} rejected by the primary (see `sitesync status`)",
            match status.rejected {
                1 => "1 change was".to_string(),
                n => format!("{n} changes were"),
            }
        );
    }
    verdict
}
