//! The conflict and rejection logs, and the small settings kept in `meta`.

use crate::{Store, StoreError, id, sql};
use rusqlite::{OptionalExtension, Transaction, params};
use sitesync_core::{Conflict, FieldVersion, OrgId, SiteId};

/// A concurrent edit, as recorded.
#[derive(Debug, Clone)]
pub struct ConflictRow {
    /// When this site found it (ms since the epoch).
    pub at: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub record_id: String,
    /// The field both writes set.
    pub field: String,
    /// The version that won.
    pub winner: FieldVersion,
    /// The version that lost.
    pub loser: FieldVersion,
}

/// A change the primary refused, as recorded.
#[derive(Debug, Clone)]
pub struct RejectionRow {
    /// When (ms since the epoch).
    pub at: u64,
    /// The site that made the change.
    pub site: SiteId,
    /// The change's outbox sequence at that site.
    pub change_seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's id.
    pub record_id: String,
    /// Why it was refused.
    pub reason: String,
}

impl Store {
    /// A small setting, or `None` when unset.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|tx| meta(tx, key))
    }

    /// A small numeric setting (0 when unset).
    pub fn meta_u64(&self, key: &str) -> Result<u64, StoreError> {
        self.read(|tx| meta_u64(tx, key))
    }

    /// Sets a small setting.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| set_meta(tx, key, value))
    }

    /// Sets small settings that only report (like the time of the last sync), in one
    /// transaction without an fsync: a power loss may take them back a little.
    pub fn note_meta(&self, pairs: &[(&str, &str)]) -> Result<(), StoreError> {
        self.write_recoverable(|tx| {
            for (key, value) in pairs {
                set_meta(tx, key, value)?;
            }
            Ok(())
        })
    }

    /// The most recent conflicts of an organisation, newest first.
    pub fn conflicts(&self, org: OrgId, limit: u32) -> Result<Vec<ConflictRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT at, collection, record_id, field, winner, loser FROM conflicts
                 WHERE org = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![sql(org), limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, collection, record_id, field, winner, loser) = row?;
                let version = |text: &str| {
                    serde_json::from_str::<FieldVersion>(text)
                        .map_err(|e| StoreError::Corrupt(format!("conflict entry: {e}")))
                };
                out.push(ConflictRow {
                    at: id(at),
                    collection,
                    record_id,
                    field,
                    winner: version(&winner)?,
                    loser: version(&loser)?,
                });
            }
            Ok(out)
        })
    }

    /// The most recent rejected changes of an organisation, newest first.
    pub fn rejections(&self, org: OrgId, limit: u32) -> Result<Vec<RejectionRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT at, site, change_seq, collection, record_id, reason FROM rejections
                 WHERE org = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![sql(org), limit], |row| {
                Ok(RejectionRow {
                    at: id(row.get(0)?),
                    site: row.get(1)?,
                    change_seq: id(row.get(2)?),
                    collection: row.get(3)?,
                    record_id: row.get(4)?,
                    reason: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many changes of an organisation were rejected in all.
    pub fn rejection_count(&self, org: OrgId) -> Result<u64, StoreError> {
        self.read(|tx| {
            Ok(id(tx.query_row(
                "SELECT COUNT(*) FROM rejections WHERE org = ?1",
                [sql(org)],
                |row| row.get(0),
            )?))
        })
    }
}

pub(crate) fn meta(tx: &Transaction, key: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub(crate) fn meta_u64(tx: &Transaction, key: &str) -> Result<u64, StoreError> {
    match meta(tx, key)? {
        Some(text) => text
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("setting {key} ({text:?})"))),
        None => Ok(0),
    }
}

pub(crate) fn set_meta(tx: &Transaction, key: &str, value: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

pub(crate) fn log_conflicts(
    tx: &Transaction,
    org: OrgId,
    now_ms: u64,
    collection: &str,
    record_id: &str,
    conflicts: &[Conflict],
) -> Result<(), StoreError> {
    for conflict in conflicts {
        let encode = |v: &FieldVersion| serde_json::to_string(v).unwrap_or_default();
        tx.prepare_cached(
            "INSERT INTO conflicts (org, at, collection, record_id, field, winner, loser)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            sql(org),
            sql(now_ms),
            collection,
            record_id,
            conflict.field,
            encode(&conflict.winner),
            encode(&conflict.loser)
        ])?;
    }
    Ok(())
}
