//! [`AuditStorage`]: the audit log, appended to and paged through newest first by id.

use crate::{Error, PgStore, id, sql};
use postgres::Row;
use sitesync_core::OrgId;
use sitesync_store::{Audit, AuditAction, AuditEntry, AuditStorage, StoreError};

/// A page of the entries `$which` keeps (of the organisation `$1`), below id `$2`,
/// newest first, at most `$3`.
macro_rules! page {
    ($which:literal) => {
        concat!(
            "SELECT id, org, at, actor, account, from_ip, action, detail FROM audit WHERE ",
            $which,
            " AND id < $2 ORDER BY id DESC LIMIT $3"
        )
    };
}

/// An organisation's entries: its own, and those of no organisation about an account
/// that is one of its members (a sign-in), never what a member did in another one.
const OF_ORG: &str = page!(
    "(org = $1 OR (org IS NULL
    AND account IN (SELECT account FROM members WHERE org = $1)))"
);

/// Every entry (`$1`, the organisation, is NULL).
const EVERY: &str = page!("$1::BIGINT IS NULL");

fn entry_row(row: &Row) -> Result<AuditEntry, Error> {
    let org: Option<i64> = row.try_get(1)?;
    let account: Option<i64> = row.try_get(4)?;
    let action: String = row.try_get(6)?;
    Ok(AuditEntry {
        id: id(row.try_get(0)?),
        audit: Audit {
            org: org.map(id),
            at: id(row.try_get(2)?),
            actor: row.try_get(3)?,
            account: account.map(id),
            from: row.try_get(5)?,
            action: AuditAction::parse(&action)
                .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?,
            detail: row.try_get(7)?,
        },
    })
}

impl AuditStorage for PgStore {
    fn append_audit(&self, audit: &Audit) -> Result<u64, StoreError> {
        self.write(|tx| {
            let row = tx.query_one(
                "INSERT INTO audit (org, at, actor, account, from_ip, action, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &audit.org.map(sql),
                    &sql(audit.at),
                    &audit.actor,
                    &audit.account.map(sql),
                    &audit.from,
                    &audit.action.name(),
                    &audit.detail,
                ],
            )?;
            Ok(id(row.try_get(0)?))
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
            None => EVERY,
        };
        self.read(|tx| {
            let rows = tx.query(
                which,
                &[
                    &org.map(sql),
                    &before.map_or(i64::MAX, sql),
                    &i64::from(limit),
                ],
            )?;
            rows.iter().map(entry_row).collect()
        })
    }
}
