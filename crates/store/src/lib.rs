//! Durable storage of a site: its records, its outbox of changes not yet pushed, and on
//! the primary the organisations, stores and sites it serves. SQLite, in WAL mode.
//!
//! # Layout
//!
//! - [`Store`] (this file): opening the database and running transactions.
//! - `schema`: the tables, created and upgraded by `PRAGMA user_version`.
//! - `records`: reading records and writing them locally.
//! - `sync`: applying pushed changes on the primary, serving and applying pulls,
//!   the satellite's outbox.
//! - `admin`: organisations, stores, sites and restricted collections (primary).
//! - `journal`: the conflict and rejection logs, and small settings in `meta`.
//! - `checkpoint`: copying the write-ahead log into the database, on a thread of its own.
//!
//! # Guarantees
//!
//! Every method that writes runs in one `BEGIN IMMEDIATE` transaction: when it fails,
//! nothing of it is left behind. Writes that must not be lost (local writes, pushes the
//! primary acknowledges, rejections) commit with `synchronous=FULL` and survive a crash
//! of the process and of the machine; writes that can be fetched or redone (pulled
//! pages with their cursor, acknowledgements, contact times) skip the fsync and survive
//! a crash of the process (see `Store::write_recoverable`). Several processes may
//! open the same database (a `serve` and a `record put` command): SQLite's locks
//! serialise their writers, and every counter is read inside the writing transaction.

mod admin;
mod checkpoint;
mod journal;
mod records;
mod schema;
mod sync;

pub use admin::{Contact, Org, SiteRow, StoreRow};
pub use journal::{ConflictRow, RejectionRow};
pub use records::{ListQuery, LocalWrite, StoreDigest, StoredRecord};
pub use sync::{Encoded, Prepared, PreparedPush, PushBatch, PushOutcome};

use checkpoint::Checkpoints;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use sitesync_core::InvalidInput;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

/// A failed storage operation.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite failed (a locked database, an IO error, …).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk holding the data folder has no space left. The failed write left
    /// nothing behind; the same write succeeds once space is freed.
    #[error(
        "the disk holding {} is full: free space on it, then retry",
        .0.display()
    )]
    DiskFull(PathBuf),
    /// The data folder cannot be written (a disk mounted read-only, or permissions).
    #[error(
        "{} is read-only: make it writable again (remount its disk read-write or fix its permissions), then retry",
        .0.display()
    )]
    ReadOnly(PathBuf),
    /// A stored value could not be read back: the database was altered outside sitesync.
    #[error("the database holds an unreadable {0}; restore it from a backup or re-enrol the site")]
    Corrupt(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The name or id is already in use.
    #[error("{0}")]
    Taken(String),
    /// The input was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The write is not allowed.
    #[error("{0}")]
    Refused(String),
}

/// The database of one site.
pub struct Store {
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

impl Store {
    /// Opens (creating if needed) the database at `path`, upgrading its tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let open = || {
            let mut writer = connect(path)?;
            // SQLite opens a database in a folder that takes no writes read-only when a
            // previous run left its log behind; such a site cannot work either.
            if writer.is_readonly(rusqlite::MAIN_DB)? {
                return Err(StoreError::ReadOnly(folder.clone()));
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
        let (writer, reader, checkpoints) = open().map_err(|e| disk_error(&folder, e))?;
        Ok(Store {
            folder,
            checkpoints,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Prepares the database to serve pulls, as a primary does (builds an index that a
    /// satellite does without). Cheap once done.
    pub fn serve_pulls(&self) -> Result<(), StoreError> {
        self.write(|tx| Ok(tx.execute_batch(schema::PULL_INDEX)?))
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds, and durably:
    /// when this returns, the write survives a crash of the process or the machine.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError>,
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
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.commit("NORMAL", f)
    }

    /// Runs `f` in one write transaction with SQLite's `synchronous` set to `sync`. The
    /// setting is given for every transaction, so no write inherits another's.
    fn commit<T>(
        &self,
        sync: &str,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError>,
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
        run().map_err(|e| disk_error(&self.folder, e))
    }

    /// Runs `f` on the read connection, in one read transaction (a consistent snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&tx)
    }
}

/// The page size of a new database.
const PAGE_SIZE: i64 = 16_384;

fn connect(path: &Path) -> Result<Connection, StoreError> {
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

/// Turns SQLite's report of a failed write into what a person can act on: a full disk
/// or a read-only folder, naming the folder. SQLite says "disk full" itself; a folder
/// remounted read-only shows as a read-only database or as a bare IO error, so those
/// are told apart by trying to write a small file beside the database.
fn disk_error(folder: &Path, error: StoreError) -> StoreError {
    let StoreError::Sqlite(e) = &error else {
        return error;
    };
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(folder.to_path_buf()),
        Some(ErrorCode::ReadOnly | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
            check_disk(folder).err().unwrap_or(error)
        }
        _ => error,
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
