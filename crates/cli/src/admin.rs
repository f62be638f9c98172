//! Set-up and administration commands: init, org, store, site, collection, settings.

use crate::output::{Output, table};
use crate::{Org, SatelliteArgs, SettingsCmd, SiteCmd, StoreCmd};
use anyhow::{Result, bail};
use serde_json::json;
use sitesync_core::{Assignment, time};
use sitesync_node::init::{self, SatelliteOptions};
use sitesync_node::serve::{open, wake};
use sitesync_node::{DataDir, Shared, now_ms, settings};
use std::process::ExitCode;

pub fn init_primary(
    dir: &DataDir,
    out: &Output,
    listen: &str,
    auth_code: Option<String>,
    tls: init::PrimaryTls,
) -> Result<ExitCode> {
    let made = init::init_primary(dir, listen, auth_code, tls)?;
    out.print(&made, || {
        let mut text = format!(
            "primary (site 1) created in {}\nlocal API token (shown once): {}",
            dir.root.display(),
            made.api_token
        );
        if let Some(code) = &made.auth_code {
            text +=
                &format!("\nauthorisation code (shown once; it unlocks `settings set`): {code}");
        }
        if let Some(fingerprint) = &made.tls_fingerprint {
            text += &format!(
                "\nTLS certificate (self-signed) fingerprint, SHA-256: {fingerprint}\nsatellites enrol with: sitesync init satellite --primary https://HOST:PORT --tls-fingerprint {fingerprint} --sync-key KEY"
            );
        }
        text + "\nnext: `sitesync org create NAME`, then `sitesync serve`"
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn init_satellite(dir: &DataDir, out: &Output, args: SatelliteArgs) -> Result<ExitCode> {
    let options = SatelliteOptions {
        primary_url: args.primary,
        sync_key: args.sync_key,
        site_id: args.site_id,
        name: args.name,
        stores: args.stores,
        all_stores: args.all_stores,
        listen: args.listen,
        auth_code: args.auth_code,
        ca: args.ca,
        tls_fingerprint: args.tls_fingerprint,
    };
    let made = init::init_satellite(dir, options).await?;
    out.print(&made, || {
        let org = made
            .organisation
            .as_ref()
            .map(|o| o.name.as_str())
            .unwrap_or("?");
        let mut text = format!(
            "enrolled as site {} of {org:?}, holding {}\nlocal API token (shown once): {}",
            made.site_id,
            if made.stores.is_empty() {
                "organisation-wide data only".to_string()
            } else {
                made.stores.join(", ")
            },
            made.api_token
        );
        if let Some(code) = &made.auth_code {
            text +=
                &format!("\nauthorisation code (shown once; it unlocks `settings set`): {code}");
        }
        text + "\nnext: `sitesync sync` for one round, or `sitesync serve` to stay in sync"
    });
    Ok(ExitCode::SUCCESS)
}

/// Opens the primary's node, or says why this is not one.
fn primary(dir: &DataDir) -> Result<Shared> {
    let node = open(dir.clone())?;
    if !node.site.is_primary() {
        bail!("this is a satellite: organisations, stores and sites are managed on the primary");
    }
    Ok(node)
}

pub fn org(dir: &DataDir, out: &Output, cmd: Org) -> Result<ExitCode> {
    let node = primary(dir)?;
    let store = node.site.primary()?;
    let key = |org: &sitesync_store::Org| {
        node.sync_keys
            .as_ref()
            .map(|k| k.key(org.id, org.key_generation))
            .unwrap_or_default()
    };
    match cmd {
        Org::Create { name } => {
            let org = store.create_org(&name, now_ms())?;
            let sync_key = key(&org);
            out.print(&json!({"id": org.id, "name": org.name, "sync_key": sync_key}), || {
                format!(
                    "organisation {} {:?} created\nsync key: {sync_key}\nenrol a site with: sitesync init satellite --primary URL --sync-key {sync_key}",
                    org.id, org.name
                )
            });
        }
        Org::List => {
            let orgs = store.orgs()?;
            let sites = store.sites()?;
            let rows: Vec<_> = orgs
                .iter()
                .map(|o| {
                    let n_stores = store.stores(o.id).map(|s| s.len()).unwrap_or(0);
                    let n_sites = sites.iter().filter(|s| s.org == o.id).count();
                    json!({"id": o.id, "name": o.name, "stores": n_stores, "sites": n_sites})
                })
                .collect();
            out.print(&rows, || {
                table(
                    &["ID", "NAME", "STORES", "SITES"],
                    &rows
                        .iter()
                        .map(|r| {
                            ["id", "name", "stores", "sites"]
                                .iter()
                                .map(|k| plain(&r[k]))
                                .collect()
                        })
                        .collect::<Vec<_>>(),
                )
            });
        }
        Org::Show { org } => {
            let org = store.org(&org)?;
            let sync_key = key(&org);
            let stores: Vec<_> = store
                .stores(org.id)?
                .into_iter()
                .map(|s| json!({"id": s.id, "name": s.name}))
                .collect();
            let restricted = store.restricted(org.id)?;
            let value = json!({"id": org.id, "name": org.name, "sync_key": sync_key, "key_generation": org.key_generation, "stores": stores, "restricted": restricted});
            out.print(&value, || {
                format!(
                    "organisation {} {:?}\nsync key: {sync_key}\nstores: {}\nrestricted collections: {}",
                    org.id,
                    org.name,
                    stores.iter().map(|s| format!("{} ({})", plain(&s["name"]), s["id"])).collect::<Vec<_>>().join(", "),
                    if restricted.is_empty() { "none".to_string() } else { restricted.join(", ") }
                )
            });
        }
        Org::RotateKey { org } => {
            let org = store.org(&org)?;
            let org = store.rotate_key(org.id)?;
            let sync_key = key(&org);
            out.print(&json!({"id": org.id, "name": org.name, "sync_key": sync_key}), || {
                format!("new sync key for {:?}: {sync_key}\nthe old key no longer enrols sites; enrolled sites keep working", org.name)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn store(dir: &DataDir, out: &Output, cmd: StoreCmd) -> Result<ExitCode> {
    let node = primary(dir)?;
    let db = node.site.primary()?;
    match cmd {
        StoreCmd::Create { org, name } => {
            let org = db.org(&org)?;
            let store = db.create_store(org.id, &name)?;
            wake(dir);
            out.print(
                &json!({"id": store.id, "name": store.name, "org": org.name}),
                || {
                    format!(
                        "store {} {:?} created in {:?}",
                        store.id, store.name, org.name
                    )
                },
            );
        }
        StoreCmd::List { org } => {
            let org = db.org(&org)?;
            let stores: Vec<_> = db
                .stores(org.id)?
                .into_iter()
                .map(|s| json!({"id": s.id, "name": s.name}))
                .collect();
            out.print(&stores, || {
                table(
                    &["ID", "NAME"],
                    &stores
                        .iter()
                        .map(|s| vec![plain(&s["id"]), plain(&s["name"])])
                        .collect::<Vec<_>>(),
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn site(dir: &DataDir, out: &Output, cmd: SiteCmd) -> Result<ExitCode> {
    let node = primary(dir)?;
    let db = node.site.primary()?;
    match cmd {
        SiteCmd::List => {
            let mut rows = Vec::new();
            for site in db.sites()? {
                let org = db.org(&site.org.to_string())?;
                let stores: Vec<String> = if site.assignment.all_stores {
                    vec!["all".to_string()]
                } else {
                    db.stores(site.org)?
                        .into_iter()
                        .filter(|s| site.assignment.stores.contains(&s.id))
                        .map(|s| s.name)
                        .collect()
                };
                let behind = db.routed_after(site.org, &site.assignment, site.pull_cursor)?;
                rows.push(json!({
                    "id": site.id, "name": site.name, "organisation": org.name, "stores": stores,
                    "last_contact": site.last_contact.map(time::rfc3339), "behind": behind, "revoked": site.revoked,
                }));
            }
            out.print(&rows, || {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            plain(&r["id"]),
                            plain(&r["name"])
                                + if r["revoked"] == true {
                                    " (revoked)"
                                } else {
                                    ""
                                },
                            plain(&r["organisation"]),
                            r["stores"]
                                .as_array()
                                .map(|a| a.iter().map(plain).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default(),
                            r["last_contact"].as_str().unwrap_or("never").to_string(),
                            plain(&r["behind"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "NAME",
                        "ORGANISATION",
                        "STORES",
                        "LAST CONTACT",
                        "BEHIND",
                    ],
                    &cells,
                )
            });
        }
        SiteCmd::Assign {
            site,
            stores,
            all_stores,
        } => {
            let site = db.site(&site)?;
            let mut assignment = Assignment {
                all_stores,
                ..Assignment::default()
            };
            for name in &stores {
                assignment.stores.insert(db.store(site.org, name)?.id);
            }
            let version = db.assign(site.id, &assignment)?;
            wake(dir);
            out.print(&json!({"site": site.id, "all_stores": all_stores, "stores": stores, "assignment_version": version}), || {
                format!(
                    "site {} now holds {}; it takes the change on its next sync",
                    site.id,
                    if all_stores { "every store".to_string() } else if stores.is_empty() { "organisation-wide data only".to_string() } else { stores.join(", ") }
                )
            });
        }
        SiteCmd::Revoke { site } => {
            let site = db.site(&site)?;
            let org = db.revoke_site(site.id)?;
            // A long poll the site has waiting ends now, refused.
            wake(dir);
            let sync_key = node
                .sync_keys
                .as_ref()
                .map(|k| k.key(org.id, org.key_generation))
                .unwrap_or_default();
            out.print(&json!({"site": site.id, "revoked": true, "organisation": org.name, "sync_key": sync_key}), || {
                format!(
                    "site {} revoked: its next request is refused\nthe sync key of {:?} was rotated so the old one cannot enrol a site again; new sync key: {sync_key}\n(enrolled sites keep working)",
                    site.id, org.name
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restrict(dir: &DataDir, out: &Output, name: &str, org: &str) -> Result<ExitCode> {
    let node = primary(dir)?;
    let org = node.site.primary()?.org(org)?;
    node.site.primary()?.restrict(org.id, name)?;
    wake(dir);
    out.print(
        &json!({"collection": name, "org": org.name, "restricted": true}),
        || {
            format!(
                "collection {name:?} of {:?} is now writable on the primary only",
                org.name
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub fn settings(dir: &DataDir, out: &Output, cmd: SettingsCmd) -> Result<ExitCode> {
    match cmd {
        SettingsCmd::Show => {
            let node = open(dir.clone())?;
            let rows = settings::show(&node.site)?;
            let value: serde_json::Map<String, serde_json::Value> =
                rows.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            out.print(&value, || {
                rows.iter()
                    .map(|(k, v)| format!("{k:<16} {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SettingsCmd::Set {
            key,
            value,
            auth_code,
        } => {
            let message = settings::set(dir, &key, &value, &auth_code)?;
            out.print(&json!({"changed": key, "message": message}), || {
                message.clone()
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSON value as plain text (strings without quotes).
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
