//! The SQLite backend of storage: one database file per site, in WAL mode. Implements
//! [`SiteStorage`], [`SatelliteStorage`] and [`PrimaryStorage`] for [`SqliteStore`].
//!
//! # Layout
//!
//! - [`SqliteStore`] (this file): opening the database and running transactions; the one
//!   place SQLite's errors become [`StoreError`]s.
//! - `schema`: the tables, created and upgraded by `PRAGMA user_version`.
//! - `records`: [`SiteStorage`]: reading records and writing them locally.
//! - `satellite`: [`SatelliteStorage`]: the outbox, applying pulled pages, purges and
//!   the sync state.
//! - `admin`: [`PrimaryStorage`]: organisations, stores, sites and restricted collections.
//! - `sync`: the primary's side of the sync paths: applying pushed batches, serving pulls.
//! - `names`: finding organisations, stores and sites by id or name (names unique
//!   without regard to case).
//! - `licences`: organisations' licences, and the site limit enrolment keeps.
//! - `journal`: the conflict and rejection logs, and the small typed settings in `meta`.
//! - `accounts`: [`AccountStorage`](sitesync_store::AccountStorage): the cloud
//!   account's accounts, tokens and memberships.
//! - `audit`: [`AuditStorage`](sitesync_store::AuditStorage): the audit log.
//! - `backup`: a primary's backup, taken while it serves, and its restore.
//! - `checkpoint`: copying the write-ahead log into the database, on a thread of its own.
//!
//! # Guarantees
//!
//! Every method that writes runs in one `BEGIN IMMEDIATE` transaction: when it fails,
//! nothing of it is left behind. Writes that must not be lost (local writes, pushes the
//! primary acknowledges, rejections) commit with `synchronous=FULL` and survive a crash
//! of the process and of the machine; writes that can be fetched or redone (pulled
//! pages with their cursor, acknowledgements, contact times) skip the fsync and survive
//! a crash of the process (see `SqliteStore::write_recoverable`). Several processes may
//! open the same database (a `serve` and a `record put` command): SQLite's locks
//! serialise their writers, and every counter is read inside the writing transaction.
//! So the sequence a transaction reads is the order of commits.

mod accounts;
mod audit;
mod backup;
mod checkpoint;
mod journal;
mod licences;
mod names;
mod primary;
mod records;
mod satellite;
mod schema;
mod sync;

use checkpoint::Checkpoints;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use sitesync_core::InvalidInput;
use sitesync_store::StoreError;
#[cfg(doc)]
use sitesync_store::{PrimaryStorage, SatelliteStorage, SiteStorage};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

/// A failure inside this crate: SQLite's, or one already said in storage's words.
/// Turned into a [`StoreError`] by kind where a transaction ends ([`SqliteStore::commit`],
/// [`SqliteStore::read`]), so no SQLite type crosses the storage seam.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// SQLite failed (a locked database, an IO error, …).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A failure said in storage's words.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Error {
        Error::Store(e.into())
    }
}

/// The database of one site.
pub struct SqliteStore {
    /// The folder holding the database, named in disk errors.
    folder: PathBuf,
    /// The connection that writes. One writer at a time is what SQLite allows anyway;
    /// holding it behind a mutex keeps this process's writers from spinning on the lock.
    writer: Mutex<Connection>,
    /// A separate connection for reads, which WAL lets run beside the writer.
    reader: Mutex<Connection>,
    /// Checkpoints run beside the writer. Declared after it: dropping it waits for the
    /// checkpointer, which ends when the writer's connection has closed.
    checkpoints: Checkpoints,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, upgrading its tables.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let open = || {
            let mut writer = connect(path)?;
            // SQLite opens a database in a folder that takes no writes read-only when a
            // previous run left its log behind; such a site cannot work either.
            if writer.is_readonly(rusqlite::MAIN_DB)? {
                return Err(StoreError::ReadOnly(folder.clone()).into());
            }
            schema::upgrade(&mut writer)?;
            let reader = connect(path)?;
            // SQLite drops a reader's whole page cache whenever another connection has
            // written, which is nearly every read on a busy primary; a small cache makes
            // that drop cheap.
            reader.pragma_update(None, "cache_size", -4_096)?;
            // Last: the checkpointer ends only once the writer has closed, so nothing
            // may fail (and drop it before the writer) after it starts.
            let checkpoints = Checkpoints::start(&mut writer, path)?;
            Ok((writer, reader, checkpoints))
        };
        let (writer, reader, checkpoints) = open().map_err(|e| store_error(&folder, e))?;
        Ok(SqliteStore {
            folder,
            checkpoints,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Opens a primary's database: one that serves pulls, which read by an index a
    /// satellite does without (every index costs each record written). The index is
    /// made the first time.
    pub fn open_primary(path: &Path) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore::open(path)?;
        let indexed = store.read(|tx| {
            Ok(tx
                .prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1")?
                .exists([schema::PULL_INDEX_NAME])?)
        })?;
        if !indexed {
            store.write(|tx| Ok(tx.execute_batch(schema::PULL_INDEX)?))?;
        }
        // Read first: a write costs a durable commit, and every command opens the file.
        let file = file_identity(path);
        if !store.read(|tx| primary::same_file(tx, &file))? {
            store.write(|tx| primary::follow_file(tx, &file))?;
        }
        Ok(store)
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds, and durably:
    /// when this returns, the write survives a crash of the process or the machine.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        self.commit("FULL", f)
    }

    /// Like [`write`](Self::write), but for writes that can be recovered from elsewhere
    /// (records pulled with their cursor, acknowledgements, last-contact times): the
    /// commit skips its fsync. It still survives a crash of the process; a power loss
    /// may drop the latest such commits, but never a part of one, and never one that
    /// came before a durable commit (the WAL keeps them in order). What is dropped is
    /// fetched again: the cursor that says it was applied is dropped with it.
    fn write_recoverable<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        self.commit("NORMAL", f)
    }

    /// Runs `f` in one write transaction with SQLite's `synchronous` set to `sync`. The
    /// setting is given for every transaction, so no write inherits another's.
    fn commit<T>(
        &self,
        sync: &str,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        let run = || {
            conn.pragma_update(None, "synchronous", sync)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            self.checkpoints.after_commit(&conn);
            Ok(value)
        };
        run().map_err(|e| self.store_error(e))
    }

    /// Says a failure in storage's words, naming this database's folder.
    fn store_error(&self, error: Error) -> StoreError {
        store_error(&self.folder, error)
    }

    /// Runs `f` on the read connection, in one read transaction (a consistent snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.reader);
        let run = || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            f(&tx)
        };
        run().map_err(|e| self.store_error(e))
    }
}

/// The page size of a new database.
const PAGE_SIZE: i64 = 16_384;

/// The identity of a database file: its device, inode and creation time (in
/// nanoseconds, where the file system keeps it), which a copy put in its place does not
/// share: file systems hand a freed inode to the next file made, so the inode alone
/// would let a folder removed and copied back pass for the same file (found by the
/// restore test). Empty where the platform has none: never a new one.
fn file_identity(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(path) {
            let born = m
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            return format!("{}:{}:{born}", m.dev(), m.ino());
        }
    }
    String::new()
}

fn connect(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // 16 KiB pages instead of 4 KiB: a million records pulled in one catch-up write a
    // quarter as many pages, WAL frames and system calls (measured: 1M records of 420
    // bytes load in 4.2 s instead of 5.4 s), and the primary takes 93k pushed changes/s
    // instead of 82k. Takes effect only when the database is created, before it turns
    // to WAL; an existing database keeps its page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A 64 MiB page cache for the writer (the default is 2 MiB; the reader's is set
    // smaller in `Store::open`): the key index of a million records then stays in
    // memory, and every page SQLite has to read again is a system call.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoint the WAL every 64 MiB instead of every 4 MiB: a page rewritten many
    // times between checkpoints is copied to the database once. The setting counts
    // pages, of whatever size the database has. (The writer's connection hands its
    // checkpoints to a thread instead: see `checkpoint`.)
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    conn.pragma_update(None, "wal_autocheckpoint", (64 << 20) / page_size.max(512))?;
    Ok(conn)
}

/// Says SQLite's report of a failure in storage's words. A full disk or a read-only
/// folder is named with the folder: SQLite says "disk full" itself; a folder remounted
/// read-only shows as a read-only database or as a bare IO error, so those are told
/// apart by trying to write a small file beside the database.
fn store_error(folder: &Path, error: Error) -> StoreError {
    let e = match error {
        Error::Store(e) => return e,
        Error::Sqlite(e) => e,
    };
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(folder.to_path_buf()),
        Some(ErrorCode::ReadOnly | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
            check_disk(folder)
                .err()
                .unwrap_or_else(|| StoreError::Unavailable(e.to_string()))
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt(format!("database file ({e})"))
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Checks that the disk holding `folder` takes writes: writes (and removes) a file of
/// a few pages there, which fails on a full disk or a read-only folder. `status` uses
/// it to say why a site cannot sync when it cannot even record that it failed.
pub fn check_disk(folder: &Path) -> Result<(), StoreError> {
    let probe = folder.join(format!(".disk-check-{}", std::process::id()));
    let written = std::fs::File::create(&probe).and_then(|mut f| f.write_all(&[0; 16 << 10]));
    let _ = std::fs::remove_file(&probe);
    match written {
        Err(e) if e.kind() == ErrorKind::StorageFull => {
            Err(StoreError::DiskFull(folder.to_path_buf()))
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied
            ) =>
        {
            Err(StoreError::ReadOnly(folder.to_path_buf()))
        }
        _ => Ok(()),
    }
}

/// Locks a connection. A thread that panicked while holding it cannot have left a
/// transaction open (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Converts an id read from SQLite (always non-negative here) to `u64`.
fn id(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Converts a `u64` id or sequence to SQLite's `i64` (all ids fit: they come from SQLite).
fn sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
