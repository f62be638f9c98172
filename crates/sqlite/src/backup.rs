//! Copies of a primary's database: a backup taken while it serves, and a restore that
//! puts one back as a new incarnation.

use crate::{Error, SqliteStore, lock};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sitesync_store::{PrimaryStorage, StoreError};
use std::path::Path;

/// Writes a consistent copy of the database to `dest`, a file that must not exist yet,
/// while other connections go on reading and writing: SQLite's `VACUUM INTO` copies one
/// snapshot, compacted.
pub(crate) fn back_up(store: &SqliteStore, dest: &Path) -> Result<(), StoreError> {
    let Some(dest_text) = dest.to_str() else {
        return Err(StoreError::Refused(format!(
            "{} is not a path SQLite can write to: use one of UTF-8 characters",
            dest.display()
        )));
    };
    lock(&store.reader)
        .execute("VACUUM INTO ?1", [dest_text])
        .map(|_| ())
        .map_err(|e| store.store_error(Error::from(e)))
}

impl SqliteStore {
    /// Puts the primary's database `backup` in place of the one at `path`, which no
    /// process may have open (its files, with its log, are replaced), and starts a new
    /// incarnation at `now_ms`, so satellites give back what the backup lacks. Returns it
    /// opened.
    pub fn restore_primary(
        backup: &Path,
        path: &Path,
        now_ms: u64,
    ) -> Result<SqliteStore, StoreError> {
        SqliteStore::check_backup(backup)?;
        let io = |what: &str, e: std::io::Error| {
            StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
        };
        // Copied beside it, then renamed over it: the database is whole at every moment.
        let staging = path.with_extension("db-restoring");
        std::fs::copy(backup, &staging).map_err(|e| io("cannot copy the backup beside", e))?;
        for log in ["db-wal", "db-shm"] {
            match std::fs::remove_file(path.with_extension(log)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("cannot remove the log of", e));
                }
                _ => {}
            }
        }
        std::fs::rename(&staging, path).map_err(|e| io("cannot put the backup in place of", e))?;
        let store = SqliteStore::open_primary(path)?;
        store.new_incarnation(now_ms)?;
        Ok(store)
    }

    /// Checks that `backup` is a readable primary's database, before anything is
    /// replaced.
    pub fn check_backup(backup: &Path) -> Result<(), StoreError> {
        let not_one = |why: String| {
            StoreError::Refused(format!(
                "{} is not a backup of a sitesync primary ({why}): give the database file \
             `sitesync backup` wrote",
                backup.display()
            ))
        };
        if !backup.is_file() {
            return Err(StoreError::NotFound(format!(
                "there is no backup at {}",
                backup.display()
            )));
        }
        let conn = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| not_one(e.to_string()))?;
        // Only a primary notes the file its incarnation belongs to.
        let primary: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'database_file'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| not_one(e.to_string()))?;
        match primary {
            Some(_) => Ok(()),
            None => Err(not_one("it is a satellite's, or older than backups".into())),
        }
    }
}
