//! `sitesync account …` and `sitesync mail test`: the operator's side of the cloud
//! account, on the primary's machine.

use crate::admin::site;
use crate::output::{Output, table};
use crate::{AccountCmd, MailCmd};
use anyhow::Result;
use serde_json::{Value, json};
use sitesync_core::time;
use sitesync_node::{DataDir, now_ms};
use sitesync_service::{Account, Actor, Mail};
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
