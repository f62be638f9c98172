//! The one error every use-case returns, in the product's words, each with its kind.

use crate::config::ConfigError;
use crate::kind::ErrorKind;
use crate::secrets::SecretError;
use sitesync_core::InvalidInput;
use sitesync_store::StoreError;
use thiserror::Error;

/// Why a use-case failed.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The data folder or its configuration file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making or checking a secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A collection name, record id, field or name that fails validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Input that is well-formed but wrong: an unknown store, a missing `--org`, a
    /// setting that does not exist.
    #[error("{0}")]
    Input(String),
    /// The record was never here (or not yet: it may arrive by sync).
    #[error("no record {id:?} in collection {collection:?}")]
    NoRecord {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
    },
    /// The record was deleted.
    #[error("record {id:?} in {collection:?} was deleted")]
    Deleted {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
    },
    /// This satellite may not write there: the primary would reject the change anyway.
    #[error("cannot write {collection:?} here: {reason}")]
    NotWritable {
        /// The collection written.
        collection: String,
        /// Why (the store is not held, the collection is restricted).
        reason: String,
    },
    /// An administration use-case asked of a satellite.
    #[error("this is a satellite: organisations, stores and sites are managed on the primary")]
    Satellite,
    /// The asker may not do this at all (a site asking for what only people may do).
    #[error("{actor} may not {what}")]
    NotAllowed {
        /// Who asked, as [`Actor`](crate::Actor) prints it.
        actor: String,
        /// What it asked for.
        what: &'static str,
    },
    /// An enrolment presented a wrong or retired sync key. Deliberately says nothing
    /// about which part was wrong.
    #[error("authentication failed")]
    WrongSyncKey,
    /// The settings lock refused the authorisation code.
    #[error("the authorisation code is wrong; nothing was changed")]
    WrongAuthCode,
    /// The satellite's stored copy of its configuration from the primary is unreadable.
    #[error("stored site configuration is unreadable: {0}")]
    SiteConfig(String),
    /// Something that cannot happen did: a bug in sitesync, never the asker's fault.
    #[error("a broken invariant: {0}")]
    Invariant(String),
    /// Work handed to a background thread did not finish (it panicked, or the runtime
    /// is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
}

impl ServiceError {
    /// What kind of failure this is, for the edges' one table (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Config(e) => config_kind(e),
            ServiceError::Store(e) => store_kind(e),
            ServiceError::Secret(e) => secret_kind(e),
            ServiceError::Invalid(_) | ServiceError::Input(_) | ServiceError::Satellite => {
                ErrorKind::InvalidInput
            }
            ServiceError::NoRecord { .. } | ServiceError::Deleted { .. } => ErrorKind::NotFound,
            ServiceError::NotWritable { .. } | ServiceError::NotAllowed { .. } => {
                ErrorKind::Forbidden
            }
            ServiceError::WrongAuthCode | ServiceError::WrongSyncKey => ErrorKind::Unauthorised,
            ServiceError::SiteConfig(_) => ErrorKind::Corrupt,
            ServiceError::Invariant(_) | ServiceError::Task(_) => ErrorKind::Internal,
        }
    }
}

/// The kind of a storage failure.
pub fn store_kind(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::Invalid(_) => ErrorKind::InvalidInput,
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::Conflict(_) => ErrorKind::Taken,
        StoreError::Refused(_) => ErrorKind::Forbidden,
        StoreError::DiskFull(_) => ErrorKind::DiskFull,
        StoreError::ReadOnly(_) => ErrorKind::ReadOnly,
        StoreError::Corrupt(_) => ErrorKind::Corrupt,
        StoreError::Unavailable(_) => ErrorKind::Unavailable,
    }
}

/// The kind of a data folder failure.
pub fn config_kind(error: &ConfigError) -> ErrorKind {
    match error {
        // The person named the wrong folder: a mistake in the command line.
        ConfigError::NotInitialised(_) => ErrorKind::InvalidInput,
        ConfigError::AlreadyInitialised(_) => ErrorKind::Taken,
        ConfigError::Invalid { .. } => ErrorKind::Corrupt,
        ConfigError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::StorageFull => ErrorKind::DiskFull,
            std::io::ErrorKind::ReadOnlyFilesystem => ErrorKind::ReadOnly,
            _ => ErrorKind::Internal,
        },
    }
}

/// The kind of a failure to make or check a secret.
pub fn secret_kind(error: &SecretError) -> ErrorKind {
    match error {
        SecretError::BadHash(_) => ErrorKind::Corrupt,
        SecretError::Random(_) => ErrorKind::Internal,
    }
}

/// A storage "not found" for something that must exist (the organisation of a site
/// just read, a site just created) is a broken invariant, not the asker's mistake.
pub(crate) fn must_exist(error: StoreError) -> ServiceError {
    match error {
        StoreError::NotFound(what) => ServiceError::Invariant(format!("{what}, yet it must exist")),
        other => other.into(),
    }
}
