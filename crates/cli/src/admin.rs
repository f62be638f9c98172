//! Set-up and administration commands: init, org, store, site, collection, settings.
//! Each opens the site, calls one use-case of `sitesync-service` and prints the answer.

use crate::licences;
use crate::output::{Output, table};
use crate::{CollectionCmd, Org, SatelliteArgs, SettingsCmd, SiteCmd, StoreCmd};
use anyhow::{Context, Result};
use serde_json::json;
use sitesync_core::time;
use sitesync_node::init::{self, SatelliteOptions};
use sitesync_node::running::wake;
use sitesync_node::serve::open;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::{Actor, OrgKey, Revoked, Site, check_time_zone, plural, set_setting};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Every command asks as the person at this machine.
pub const OPERATOR: Actor = Actor::Operator;

pub fn init_primary(
    dir: &DataDir,
    out: &Output,
    listen: &str,
    auth_code: Option<String>,
    tls: init::PrimaryTls,
    database: Option<&str>,
) -> Result<ExitCode> {
    let made = init::init_primary(dir, listen, auth_code, tls, database)?;
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
        primary_url: args.primary.join(","),
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

pub fn migrate(dir: &DataDir, out: &Output, to: &str, replace: bool) -> Result<ExitCode> {
    let bar = if out.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "moving {bar:40} {human_pos}/{human_len} rows, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let copied = init::migrate_to_postgres(dir, to, replace, &progress)?;
    bar.finish_and_clear();
    let rows: serde_json::Map<String, serde_json::Value> = copied
        .iter()
        .map(|(t, n)| (t.to_string(), (*n).into()))
        .collect();
    out.print(&json!({ "database": to, "copied": rows }), || {
        let counts: Vec<String> = copied
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        format!(
            "moved the primary into {to} ({})
config.toml now names it; sitesync.db is left as it was
next: `sitesync serve` (and more processes with `serve --listen ADDR`)",
            counts.join(", ")
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn backup(dir: &DataDir, out: &Output, dest: &Path) -> Result<ExitCode> {
    let made = sitesync_node::backup::back_up(dir, dest)?;
    out.print(&made, || {
        format!(
            "backed up the primary ({}, {}) into {}\nit holds the primary's secrets: keep it private; restore with `sitesync restore {}`",
            plural(made.organisations, "organisation"),
            plural(made.sites, "satellite"),
            made.folder.display(),
            made.folder.display()
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn restore(dir: &DataDir, out: &Output, src: &Path) -> Result<ExitCode> {
    let done = sitesync_node::backup::restore(dir, src)?;
    out.print(&done, || {
        let mut text = format!(
            "restored the primary from {} ({}, {})",
            src.display(),
            plural(done.organisations, "organisation"),
            plural(done.sites, "satellite")
        );
        if let Some(aside) = &done.set_aside {
            text += &format!("\nwhat this folder held is in {}", aside.display());
        }
        text + "\nnext: `sitesync serve`; each satellite gives back what it holds when it connects, and sites enrolled after the backup are told to run `sitesync rejoin`. Make again any administration done since the backup (stores, assignments, revocations)"
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn rejoin(dir: &DataDir, out: &Output, sync_key: &str) -> Result<ExitCode> {
    let done = init::rejoin(dir, sync_key).await?;
    out.print(&done, || {
        let id = match done.site_id == done.was {
            true => format!("as site {}", done.site_id),
            false => format!("as site {} (site {} was taken)", done.site_id, done.was),
        };
        format!(
            "joined the primary again {id}; this site's records go back to it on the next sync (`sitesync sync`, or `sitesync serve`)"
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Opens this data folder's site for a command.
pub fn site(dir: &DataDir) -> Result<Arc<Site>> {
    Ok(open(dir.clone())?.site.clone())
}

pub fn org(dir: &DataDir, out: &Output, cmd: Org) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        Org::Create { name, time_zone } => {
            if let Some(zone) = &time_zone {
                check_time_zone(zone)?;
            }
            let OrgKey { mut org, sync_key } = site.create_org(OPERATOR, &name, now_ms())?;
            if let Some(zone) = &time_zone {
                org = site.set_time_zone(OPERATOR, &org.id.to_string(), zone)?;
            }
            let made = json!({"id": org.id, "name": org.name, "time_zone": org.time_zone, "sync_key": sync_key});
            out.print(&made, || {
                format!(
                    "organisation {} {:?} created\nsync key: {sync_key}\nenrol a site with: sitesync init satellite --primary URL --sync-key {sync_key}",
                    org.id, org.name
                )
            });
        }
        Org::List => {
            let rows: Vec<_> = site
                .orgs(OPERATOR)?
                .into_iter()
                .map(|o| json!({"id": o.org.id, "name": o.org.name, "stores": o.stores, "sites": o.sites}))
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
        Org::Show { org } => show_org(&site, out, &org)?,
        Org::Delete { org, confirm } => {
            let name = site.delete_org(OPERATOR, &org, &confirm, now_ms())?;
            out.print(&json!({"deleted": name}), || {
                format!(
                    "organisation {name:?} deleted, with its records, stores, members and licence"
                )
            });
        }
        Org::TimeZone { org, zone } => {
            let org = site.set_time_zone(OPERATOR, &org, &zone)?;
            out.print(
                &json!({"id": org.id, "name": org.name, "time_zone": org.time_zone}),
                || format!("{:?} reads its times in {}", org.name, org.time_zone),
            );
        }
        Org::Licence {
            org,
            sites,
            modules,
            expires,
        } => {
            let asked = licences::Asked {
                org,
                sites,
                modules,
                expires,
            };
            licences::licence(&site, out, asked)?
        }
        Org::RotateKey { org } => {
            let OrgKey { org, sync_key } = site.rotate_key(OPERATOR, &org)?;
            out.print(&json!({"id": org.id, "name": org.name, "sync_key": sync_key}), || {
                format!("new sync key for {:?}: {sync_key}\nthe old key no longer enrols sites; enrolled sites keep working", org.name)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_org(site: &Site, out: &Output, org: &str) -> Result<()> {
    let detail = site.show_org(OPERATOR, org)?;
    let (org, sync_key, restricted) = (&detail.key.org, &detail.key.sync_key, &detail.restricted);
    let stores: Vec<_> = detail
        .stores
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name}))
        .collect();
    let value = json!({"id": org.id, "name": org.name, "sync_key": sync_key, "key_generation": org.key_generation, "time_zone": org.time_zone, "stores": stores, "restricted": restricted});
    out.print(&value, || {
        format!(
            "organisation {} {:?}\nsync key: {sync_key}\ntime zone: {}\nstores: {}\nrestricted collections: {}",
            org.id,
            org.name,
            org.time_zone,
            stores
                .iter()
                .map(|s| format!("{} ({})", plain(&s["name"]), s["id"]))
                .collect::<Vec<_>>()
                .join(", "),
            if restricted.is_empty() {
                "none".to_string()
            } else {
                restricted.join(", ")
            }
        )
    });
    Ok(())
}

pub fn store(dir: &DataDir, out: &Output, cmd: StoreCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        StoreCmd::Create { org, name } => {
            let (store, org) = site.create_store(OPERATOR, &org, &name)?;
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
        StoreCmd::Rename { org, store, name } => {
            let renamed = site.rename_store(OPERATOR, &org, &store, &name)?;
            wake(dir);
            out.print(&json!({"id": renamed.id, "name": renamed.name}), || {
                format!("store {} is now called {:?}", renamed.id, renamed.name)
            });
        }
        StoreCmd::Delete { org, store, purge } => {
            let (store, purged) = site.delete_store(OPERATOR, &org, &store, purge)?;
            wake(dir);
            out.print(&json!({"id": store.id, "name": store.name, "deleted": true, "records_purged": purged}), || {
                format!("store {} {:?} deleted, with {purged} records", store.id, store.name)
            });
        }
        StoreCmd::List { org } => {
            let stores: Vec<_> = site
                .stores(OPERATOR, &org)?
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

pub fn site_cmd(dir: &DataDir, out: &Output, cmd: SiteCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        SiteCmd::List => list_sites(&site, out)?,
        SiteCmd::Assign {
            site: which,
            stores,
            all_stores,
        } => {
            let assigned = site.assign_site(OPERATOR, &which, &stores, all_stores)?;
            wake(dir);
            out.print(&json!({"site": assigned.site, "all_stores": all_stores, "stores": stores, "assignment_version": assigned.assignment_version}), || {
                format!(
                    "site {} now holds {}; it takes the change on its next sync",
                    assigned.site,
                    if all_stores { "every store".to_string() } else if stores.is_empty() { "organisation-wide data only".to_string() } else { stores.join(", ") }
                )
            });
        }
        SiteCmd::Rename { site: which, name } => {
            let renamed = site.rename_site(OPERATOR, &which, &name)?;
            wake(dir);
            out.print(&json!({"site": renamed.id, "name": renamed.name}), || {
                format!("site {} is now called {:?}", renamed.id, renamed.name)
            });
        }
        SiteCmd::Remove { site: which } => {
            let removed = site.remove_site(OPERATOR, &which)?;
            out.print(
                &json!({"site": removed.id, "name": removed.name, "removed": true}),
                || format!("site {} {:?} removed", removed.id, removed.name),
            );
        }
        SiteCmd::Revoke { site: which } => {
            let Revoked {
                site: id,
                org,
                sync_key,
            } = site.revoke_site(OPERATOR, &which)?;
            // A long poll the site has waiting ends now, refused.
            wake(dir);
            out.print(&json!({"site": id, "revoked": true, "organisation": org.name, "sync_key": sync_key}), || {
                format!(
                    "site {id} revoked: its next request is refused\nthe sync key of {:?} was rotated so the old one cannot enrol a site again; new sync key: {sync_key}\n(enrolled sites keep working)",
                    org.name
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_sites(site: &Site, out: &Output) -> Result<()> {
    let rows: Vec<_> = site
        .sites(OPERATOR)?
        .into_iter()
        .map(|v| {
            json!({
                "id": v.row.id, "name": v.row.name, "organisation": v.organisation, "stores": v.stores,
                "last_contact": v.row.last_contact.map(time::rfc3339), "online": v.online(now_ms()), "behind": v.behind, "revoked": v.row.revoked,
            })
        })
        .collect();
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
                    if r["online"] == true { "yes" } else { "no" }.to_string(),
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
                "ONLINE",
                "BEHIND",
            ],
            &cells,
        )
    });
    Ok(())
}

pub fn collection(dir: &DataDir, out: &Output, cmd: CollectionCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        CollectionCmd::Restrict { name, org } => {
            let org = site.restrict(OPERATOR, &org, &name)?;
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
        }
        CollectionCmd::Unrestrict { name, org } => {
            let org = site.unrestrict(OPERATOR, &org, &name)?;
            wake(dir);
            out.print(
                &json!({"collection": name, "org": org.name, "restricted": false}),
                || {
                    format!(
                        "collection {name:?} of {:?} is writable by its satellites again",
                        org.name
                    )
                },
            );
        }
        CollectionCmd::List { org } => {
            let views = site.collections(OPERATOR, &org)?;
            out.print(&views, || {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|v| {
                        let who = if v.restricted {
                            "primary only"
                        } else {
                            "every site"
                        };
                        let defined = v
                            .defined
                            .as_deref()
                            .map_or("-", |f| f.get(..19).unwrap_or(f));
                        vec![
                            v.name.clone(),
                            v.records.to_string(),
                            who.to_string(),
                            defined.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["COLLECTION", "RECORDS", "WRITTEN BY", "DEFINITION"],
                    &rows,
                )
            });
        }
        other => return crate::definitions::collection(dir, out, &site, other),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn settings(dir: &DataDir, out: &Output, cmd: SettingsCmd) -> Result<ExitCode> {
    match cmd {
        SettingsCmd::Show => {
            let rows = site(dir)?.settings(OPERATOR)?;
            let value: serde_json::Map<String, serde_json::Value> =
                rows.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            out.print(&value, || {
                rows.iter()
                    .map(|(k, v)| format!("{k:<18} {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SettingsCmd::Set {
            key,
            value,
            auth_code,
        } => {
            let value = match value.as_str() {
                "-" => read_line_from_stdin(&key)?,
                _ => value,
            };
            let message = set_setting(dir, OPERATOR, (&key, &value), &auth_code)?;
            out.print(&json!({"changed": key, "message": message}), || {
                message.clone()
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A value typed on standard input (`settings set KEY -`), so a secret stays out of the
/// shell's history and the process list.
fn read_line_from_stdin(key: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the value of {key} from standard input"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A JSON value as plain text (strings without quotes).
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
