//! `sitesync account …`, `sitesync mail test` and `sitesync audit`: the operator's side
//! of the cloud account, on the primary's machine.

use crate::admin::site;
use crate::output::{Output, table};
use crate::{AccountCmd, MailCmd};
use anyhow::Result;
use serde_json::{Value, json};
use sitesync_core::time;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::{Account, Actor, AuditEntry, Mail};
use std::process::ExitCode;

const OPERATOR: Actor = Actor::Operator;

fn view(account: &Account) -> Value {
    json!({
        "id": account.id,
        "email": account.email,
        "confirmed": account.confirmed,
        "disabled": account.disabled,
        "org_limit": account.org_limit,
        "created_at": time::rfc3339(account.created_at),
    })
}

pub fn account(dir: &DataDir, out: &Output, cmd: AccountCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        AccountCmd::List => {
            let accounts = site.accounts(OPERATOR)?;
            let views: Vec<Value> = accounts.iter().map(view).collect();
            out.print(&views, || {
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|a| {
                        let state = match (a.disabled, a.confirmed) {
                            (true, _) => "disabled",
                            (false, true) => "active",
                            (false, false) => "not confirmed",
                        };
                        vec![
                            a.id.to_string(),
                            a.email.clone(),
                            state.into(),
                            a.org_limit.to_string(),
                        ]
                    })
                    .collect();
                table(&["ID", "EMAIL", "STATE", "MAY OWN"], &rows)
            });
        }
        AccountCmd::Create { email } => {
            let made = site.create_account(OPERATOR, &email, now_ms())?;
            out.print(&view(&made), || {
                format!(
                    "account {} made; a link to set its password was mailed to it (see `sitesync mail test` for where mail goes)",
                    made.email
                )
            });
        }
        AccountCmd::Disable { email, enable } => {
            let account = site.disable_account(OPERATOR, &email, !enable)?;
            out.print(&view(&account), || match enable {
                true => format!("account {} may log in again", account.email),
                false => format!("account {} is disabled; its sessions ended", account.email),
            });
        }
        AccountCmd::SetLimit { email, limit } => {
            let account = site.set_org_limit(OPERATOR, &email, limit)?;
            out.print(&view(&account), || {
                format!("account {} may own {limit} organisations", account.email)
            });
        }
        AccountCmd::Grant { email, org, role } => {
            let (account, role) = site.grant(OPERATOR, &email, &org, &role)?;
            out.print(
                &json!({"email": account.email, "org": org, "role": role.name()}),
                || format!("{} is now {} of {org:?}", account.email, role.name()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn mail(dir: &DataDir, out: &Output, cmd: MailCmd) -> Result<ExitCode> {
    let site = site(dir)?;
    match cmd {
        MailCmd::Test { address } => {
            let went = site.send_mail(&Mail {
                to: address.clone(),
                subject: "sitesync test mail".into(),
                body: "This is a test of the primary's mail: it got through.\n".into(),
            })?;
            out.print(&json!({"to": address, "sent": went}), || {
                format!("a test mail to {address}: {went}")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit_view(entry: &AuditEntry) -> Value {
    let a = &entry.audit;
    json!({
        "id": entry.id,
        "org": a.org,
        "at": time::rfc3339(a.at),
        "actor": a.actor,
        "account": a.account,
        "from": a.from,
        "action": a.action.name(),
        "detail": a.detail,
    })
}

/// `sitesync audit`: a page of the audit log, newest first.
pub fn audit(
    dir: &DataDir,
    out: &Output,
    org: Option<&str>,
    (before, limit): (Option<u64>, u32),
) -> Result<ExitCode> {
    let entries = site(dir)?.audit_log(OPERATOR, org, before, limit)?;
    let views: Vec<Value> = entries.iter().map(audit_view).collect();
    out.print(&views, || {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let a = &e.audit;
                vec![
                    e.id.to_string(),
                    time::rfc3339(a.at),
                    a.actor.clone(),
                    a.from.clone().unwrap_or_default(),
                    a.action.name().to_string(),
                    a.detail.clone(),
                ]
            })
            .collect();
        table(&["ID", "WHEN", "WHO", "FROM", "WHAT", "DETAIL"], &rows)
    });
    Ok(ExitCode::SUCCESS)
}
