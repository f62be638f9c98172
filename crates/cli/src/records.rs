//! `sitesync record …` and `sitesync conflicts`: records on this site, whether or not
//! `serve` runs. A write goes straight to the database, then nudges a running `serve`
//! so it pushes the change at once.

use crate::RecordCmd;
use crate::admin::{OPERATOR, site};
use crate::output::{Output, table};
use anyhow::Result;
use serde_json::json;
use sitesync_core::time;
use sitesync_node::running::wake;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::{RecordView, ServiceError, StoreChoice};
use std::process::ExitCode;

pub fn run(dir: &DataDir, out: &Output, cmd: RecordCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        RecordCmd::Put {
            collection,
            id,
            fields,
            store,
            org_wide,
            org,
        } => {
            let store = StoreChoice::from_options(store.as_deref(), org_wide)?;
            let body = sitesync_core::exact::parse(fields.as_bytes()).map_err(|e| {
                ServiceError::Input(format!(
                    "the fields are refused (give an object like '{{\"name\": \"Aspirin\"}}'): {e}"
                ))
            })?;
            let record = site.put_record(
                OPERATOR,
                org.as_deref(),
                (&collection, &id),
                body,
                store,
                now_ms(),
            )?;
            wake(dir);
            print_record(out, &record);
        }
        RecordCmd::Get {
            collection,
            id,
            org,
        } => print_record(
            out,
            &site.get_record(OPERATOR, org.as_deref(), (&collection, &id))?,
        ),
        RecordCmd::Delete {
            collection,
            id,
            org,
        } => {
            let record =
                site.delete_record(OPERATOR, org.as_deref(), (&collection, &id), now_ms())?;
            wake(dir);
            out.print(&record, || format!("deleted {collection}/{id}"));
        }
        RecordCmd::List {
            collection,
            store,
            org,
            limit,
            after,
        } => {
            let records = site.list_records(
                OPERATOR,
                org.as_deref(),
                &collection,
                store.as_deref(),
                (after, limit),
            )?;
            out.print(&records, || {
                let rows: Vec<Vec<String>> = records
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.store.clone().unwrap_or_else(|| "-".into()),
                            serde_json::Value::Object(r.fields.clone()).to_string(),
                        ]
                    })
                    .collect();
                table(&["ID", "STORE", "FIELDS"], &rows)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_record(out: &Output, record: &RecordView) {
    out.print(record, || {
        format!(
            "{}/{}  store: {}  updated {} by site {}\n{}",
            record.collection,
            record.id,
            record.store.as_deref().unwrap_or("-"),
            record.updated_at.as_deref().unwrap_or("-"),
            record
                .origin_site
                .map(|s| s.to_string())
                .unwrap_or_default(),
            serde_json::to_string_pretty(&record.fields).unwrap_or_default()
        )
    });
}

/// `sitesync rejections`: what the primary refused, newest first.
pub fn rejections(
    dir: &DataDir,
    out: &Output,
    org: Option<&str>,
    all: bool,
    limit: u32,
) -> Result<ExitCode> {
    let rows = site(dir)?.rejections(OPERATOR, org, all, limit)?;
    out.print(&rows, || {
        if rows.is_empty() {
            return match all {
                true => "no rejections".to_string(),
                false => "no rejections to acknowledge".to_string(),
            };
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.at.clone(),
                    format!("{}/{}", r.collection, r.record_id),
                    r.reason.clone(),
                    r.fields
                        .clone()
                        .map_or("-".into(), |f| serde_json::Value::Object(f).to_string()),
                ]
            })
            .collect();
        table(&["ID", "WHEN", "RECORD", "REASON", "WROTE"], &cells)
            + "\nacknowledge with `sitesync rejections --ack` (all) or `--ack ID` (up to ID)"
    });
    Ok(ExitCode::SUCCESS)
}

/// `sitesync rejections --ack [ID]`.
pub fn acknowledge(dir: &DataDir, out: &Output, through: Option<u64>) -> Result<ExitCode> {
    let mark = site(dir)?.acknowledge_rejections(OPERATOR, through)?;
    out.print(&json!({ "acknowledged_through": mark }), || {
        format!("rejections up to {mark} acknowledged")
    });
    Ok(ExitCode::SUCCESS)
}

pub fn conflicts(dir: &DataDir, out: &Output, org: Option<&str>, limit: u32) -> Result<ExitCode> {
    let rows: Vec<_> = site(dir)?
        .conflicts(OPERATOR, org, limit)?
        .into_iter()
        .map(|c| {
            json!({
                "at": time::rfc3339(c.at), "collection": c.collection, "id": c.record_id, "field": c.field,
                "winner": {"value": c.winner.value, "site": c.winner.stamp.site, "written_at": time::rfc3339(c.winner.stamp.millis())},
                "loser": {"value": c.loser.value, "site": c.loser.stamp.site, "written_at": time::rfc3339(c.loser.stamp.millis())},
                "rule": "last writer wins (hybrid logical clock, then the higher site id)",
            })
        })
        .collect();
    out.print(&rows, || {
        if rows.is_empty() {
            return "no conflicts".to_string();
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["at"].as_str().unwrap_or("").to_string(),
                    format!(
                        "{}/{}",
                        r["collection"].as_str().unwrap_or(""),
                        r["id"].as_str().unwrap_or("")
                    ),
                    r["field"].as_str().unwrap_or("").to_string(),
                    format!("{} (site {})", r["winner"]["value"], r["winner"]["site"]),
                    format!("{} (site {})", r["loser"]["value"], r["loser"]["site"]),
                ]
            })
            .collect();
        table(&["FOUND", "RECORD", "FIELD", "KEPT", "LOST"], &cells)
            + "\nrule: the later write wins (hybrid logical clock, ties to the higher site id)"
    });
    Ok(ExitCode::SUCCESS)
}

/// `sitesync digest`: one line per store, for comparing replicas across sites.
pub fn digest(dir: &DataDir, out: &Output, org: Option<&str>) -> Result<ExitCode> {
    let stores = site(dir)?.digest(OPERATOR, org)?;
    out.print(&stores, || {
        if stores.is_empty() {
            return "no records".to_string();
        }
        let cells: Vec<Vec<String>> = stores
            .iter()
            .map(|d| {
                vec![
                    d.store
                        .map_or("(organisation-wide)".into(), |s| s.to_string()),
                    d.records.to_string(),
                    d.digest.clone(),
                ]
            })
            .collect();
        table(&["STORE", "RECORDS", "DIGEST (SHA-256)"], &cells)
    });
    Ok(ExitCode::SUCCESS)
}
