//! [`AuditStorage`]: the audit log, appended to and paged through newest first by id.

use crate::{Error, SqliteStore, id, sql};
use rusqlite::{Row, params};
use sitesync_core::OrgId;
use sitesync_store::{Audit, AuditAction, AuditEntry, AuditStorage, StoreError};

const ENTRY: &str = "SELECT id, org, at, actor, account, from_ip, action, detail FROM audit";

/// An organisation's entries: its own, and those of no organisation about an account
/// that is one of its members (a sign-in), never what a member did in another one.
const OF_ORG: &str = "(org = ?1 OR (org IS NULL
    AND account IN (SELECT account FROM members WHERE org = ?1)))";

fn entry_row(row: &Row) -> rusqlite::Result<(AuditEntry, String)> {
    let org: Option<i64> = row.get(1)?;
    let account: Option<i64> = row.get(4)?;
    Ok((
        AuditEntry {
            id: id(row.get(0)?),
            audit: Audit {
                org: org.map(id),
                at: id(row.get(2)?),
                actor: row.get(3)?,
                account: account.map(id),
                from: row.get(5)?,
                action: AuditAction::Login,
                detail: row.get(7)?,
            },
        },
        row.get(6)?,
    ))
}

/// An entry read with its action's name, the action filled in.
fn with_action((mut entry, action): (AuditEntry, String)) -> Result<AuditEntry, Error> {
    entry.audit.action = AuditAction::parse(&action)
        .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?;
    Ok(entry)
}

impl AuditStorage for SqliteStore {
    fn append_audit(&self, audit: &Audit) -> Result<u64, StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO audit (org, at, actor, account, from_ip, action, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                audit.org.map(sql),
                sql(audit.at),
                audit.actor,
                audit.account.map(sql),
                audit.from,
                audit.action.name(),
                audit.detail
            ])?;
            Ok(id(tx.last_insert_rowid()))
        })
    }

    fn audit(
        &self,
        org: Option<OrgId>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let which = match org {
            Some(_) => OF_ORG,
            None => "?1 IS NULL",
        };
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "{ENTRY} WHERE {which} AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![org.map(sql), before.map_or(i64::MAX, sql), limit],
                entry_row,
            )?;
            rows.map(|row| with_action(row?)).collect()
        })
    }
}
