//! The error of a storage operation, by kind, whatever the backend.

use sitesync_core::InvalidInput;
use std::path::PathBuf;
use thiserror::Error;

/// A failed storage operation. Every backend reports its failures as one of these
/// kinds, so the layers above decide what to tell the user without knowing the backend.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write is not allowed.
    #[error("{0}")]
    Refused(String),
    /// The name or id is already in use.
    #[error("{0}")]
    Conflict(String),
    /// An enrolment past the organisation's licensed number of sites (revoked sites
    /// not counted).
    #[error("the organisation's licence allows at most {limit} enrolled sites")]
    SiteLimit {
        /// The licensed number of sites.
        limit: u64,
    },
    /// The input was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
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
    /// The database could not do the operation now (busy, locked, an IO error, a lost
    /// connection); nothing was changed, and the same operation may succeed later.
    #[error("database error: {0}")]
    Unavailable(String),
}
