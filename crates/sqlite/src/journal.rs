//! Writing the conflict log, and the small typed settings kept in `meta`.

use crate::{Error, sql};
use rusqlite::{OptionalExtension, Transaction, params};
use sitesync_core::{Conflict, FieldVersion, OrgId};
use sitesync_store::StoreError;

/// A value kept in the `meta` table. Every key is here, with its meaning; the names
/// are those data folders already hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Setting {
    /// The sequence of the latest change applied here.
    Seq,
    /// The hybrid logical clock's last reading.
    Hlc,
    /// Satellite: every routed record up to this primary sequence is applied.
    PullCursor,
    /// Satellite: the assignment version whose purge is done.
    AssignmentApplied,
    /// Satellite: the stores of a backfill in progress, ids separated by commas.
    BackfillStores,
    /// Satellite: how far the backfill in progress has come.
    BackfillCursor,
    /// Satellite: the site configuration last received, as JSON.
    SiteConfig,
    /// Satellite: when a sync round last succeeded.
    LastSync,
    /// Satellite: the last sync failure, and when.
    LastError,
    LastErrorAt,
    /// Primary: its incarnation (see `PrimaryStorage::incarnation`). Satellite: the
    /// primary's, when this site last followed it.
    Incarnation,
    /// Primary: the identity of the database file the incarnation belongs to (device,
    /// inode and creation time): a file put in its place starts a new incarnation.
    DatabaseFile,
    /// Satellite: the id of the newest rejection acknowledged.
    RejectionsAcknowledged,
}

impl Setting {
    fn key(self) -> &'static str {
        match self {
            Setting::Seq => "seq",
            Setting::Hlc => "hlc",
            Setting::PullCursor => "pull_cursor",
            Setting::AssignmentApplied => "assignment_applied",
            Setting::BackfillStores => "backfill_stores",
            Setting::BackfillCursor => "backfill_cursor",
            Setting::SiteConfig => "site_config",
            Setting::LastSync => "last_sync",
            Setting::LastError => "last_error",
            Setting::LastErrorAt => "last_error_at",
            Setting::Incarnation => "incarnation",
            Setting::DatabaseFile => "database_file",
            Setting::RejectionsAcknowledged => "rejections_acknowledged",
        }
    }
}

/// A setting, or `None` when unset.
pub(crate) fn meta(tx: &Transaction, setting: Setting) -> Result<Option<String>, Error> {
    Ok(tx
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([setting.key()], |row| row.get(0))
        .optional()?)
}

/// A numeric setting (0 when unset).
pub(crate) fn meta_u64(tx: &Transaction, setting: Setting) -> Result<u64, Error> {
    match meta(tx, setting)? {
        Some(text) => Ok(text
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("setting {} ({text:?})", setting.key())))?),
        None => Ok(0),
    }
}

/// Sets a setting.
pub(crate) fn set_meta(tx: &Transaction, setting: Setting, value: &str) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([setting.key(), value])?;
    Ok(())
}

pub(crate) fn log_conflicts(
    tx: &Transaction,
    org: OrgId,
    now_ms: u64,
    collection: &str,
    record_id: &str,
    conflicts: &[Conflict],
) -> Result<(), Error> {
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
