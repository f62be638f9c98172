//! The one error every use-case returns, in the product's words, each with its kind.

use crate::config::ConfigError;
use crate::kind::ErrorKind;
use crate::secrets::SecretError;
use sitesync_core::{Day, InvalidInput, Module};
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
    /// A person's input refused, with what a portal needs to say why in the reader's
    /// language; the English words are what the command line and the API show.
    #[error("{0}")]
    Refused(Refusal),
    /// Mail could not be sent: the mail server refused it or could not be reached, or
    /// the outbox folder could not be written.
    #[error("{0}")]
    MailNotSent(String),
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
    /// The record was removed here because the primary rejected a change of it and
    /// this site may not hold it.
    #[error(
        "record {id:?} in {collection:?} is not here: the primary rejected its change \
         ({reason}) and this site may not hold it; `sitesync rejections` shows what it \
         wrote"
    )]
    TakenBack {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
        /// Why the primary refused the change.
        reason: String,
    },
    /// This satellite may not write there: the primary would reject the change anyway.
    #[error("cannot write {collection:?} here: {reason}")]
    NotWritable {
        /// The collection written.
        collection: String,
        /// Why (the store is not held, the collection is restricted).
        reason: String,
    },
    /// A new record written at a satellite holding several stores (or every store)
    /// without saying which it belongs to.
    #[error(
        "say which store the new record belongs to: this site holds {}; \
         pass --store NAME (API: ?store=NAME), or --org-wide (API: ?org_wide=true) \
         for a record every site of the organisation sees",
        held_stores(*all_stores, held)
    )]
    StoreNeeded {
        /// The site holds every store of the organisation.
        all_stores: bool,
        /// The names of the stores it holds now.
        held: Vec<String>,
    },
    /// A store said for an existing record is not the record's own: a record's store is
    /// fixed when it is created.
    #[error(
        "record {id:?} in {collection:?} is {own}, not {said}: a record's store is fixed \
         when it is created; write it without --store (or with its own), or give the new \
         record another id"
    )]
    StoreMismatch {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
        /// Where it is ("store \"North\"", or organisation-wide).
        own: String,
        /// Where the writer said it is.
        said: String,
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
    /// An enrolment past the number of sites the organisation's licence allows.
    #[error(
        "organisation {org:?} is licensed for {limit} enrolled sites and has that many: ask \
         the operator of the primary to raise the limit (`sitesync org licence {org:?} \
         --sites N`), or revoke a site no longer used"
    )]
    SiteLimit {
        /// The organisation's name.
        org: String,
        /// The licensed number of sites.
        limit: u64,
    },
    /// A feature of a module the organisation's licence does not grant today.
    #[error("{}", unlicensed(org, *module, *ended, *by_licence))]
    Unlicensed {
        /// The organisation's name.
        org: String,
        /// The module refused.
        module: Module,
        /// The last day it was on, when it was granted and has ended.
        ended: Option<Day>,
        /// Whether the licence as a whole has ended (which ends every module).
        by_licence: bool,
    },
    /// An enrolment presented a wrong or retired sync key. Deliberately says nothing
    /// about which part was wrong.
    #[error("authentication failed")]
    WrongSyncKey,
    /// A login with an address that has no account, a wrong password or a disabled
    /// account: the same words for each, so nobody learns which addresses have one.
    #[error("the address or the password is wrong")]
    WrongLogin,
    /// A session that ended (logged out, idle too long, too old, account disabled).
    #[error("your session has ended: sign in again")]
    SessionEnded,
    /// A confirmation or reset link that was used or has expired.
    #[error("this link was used already or has expired: ask for a new one")]
    LinkExpired,
    /// The settings lock refused the authorisation code.
    #[error("the authorisation code is wrong; nothing was changed")]
    WrongAuthCode,
    /// The satellite's stored copy of its configuration from the primary is unreadable.
    #[error("stored site configuration is unreadable: {0}")]
    SiteConfig(String),
    /// Something that cannot happen did: a bug in sitesync, never the asker's fault.
    #[error("a broken invariant: {0}")]
    Invariant(String),
    /// A collection definition that does not read, or whose fields do not fit together.
    #[error(transparent)]
    Definition(#[from] sitesync_core::DefinitionError),
    /// A write that breaks its collection's definition: the field, rule and value.
    #[error("{collection}/{id}: {refusal}")]
    Unfit {
        /// The record's collection.
        collection: String,
        /// The record's id.
        id: String,
        /// The field, the rule and the value.
        refusal: sitesync_core::Refusal,
    },
    /// A new definition that records held now would not fit, not forced.
    #[error(
        "the new definition of {collection:?} would not fit {count} of its records, like {}; \
         change them first, or give --force to keep the definition anyway (`sitesync \
         collection check` lists them)",
        .examples.join("; ")
    )]
    WouldBreak {
        /// The collection.
        collection: String,
        /// How many records would not fit.
        count: u64,
        /// A few of them, each with why.
        examples: Vec<String>,
    },
    /// Work handed to a background thread did not finish (it panicked, or the runtime
    /// is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
    /// A file's bytes on disk: a limit passed, a chunk that does not match, a full disk.
    #[error(transparent)]
    File(#[from] sitesync_files::FileError),
    /// A file not here whole yet: it is on its way by sync.
    #[error(
        "file {file} is not here yet: the site that put it has not sent it whole; it arrives by sync, try again later"
    )]
    FilePending {
        /// The file's hash.
        file: sitesync_core::file::Hash,
    },
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
            ServiceError::StoreNeeded { .. }
            | ServiceError::Definition(_)
            | ServiceError::Unfit { .. }
            | ServiceError::WouldBreak { .. } => ErrorKind::InvalidInput,
            ServiceError::StoreMismatch { .. } => ErrorKind::Taken,
            ServiceError::NoRecord { .. }
            | ServiceError::Deleted { .. }
            | ServiceError::TakenBack { .. } => ErrorKind::NotFound,
            ServiceError::NotWritable { .. }
            | ServiceError::NotAllowed { .. }
            | ServiceError::SiteLimit { .. }
            | ServiceError::Unlicensed { .. } => ErrorKind::Forbidden,
            ServiceError::WrongAuthCode
            | ServiceError::WrongSyncKey
            | ServiceError::WrongLogin
            | ServiceError::SessionEnded => ErrorKind::Unauthorised,
            ServiceError::LinkExpired => ErrorKind::NotFound,
            ServiceError::MailNotSent(_) => ErrorKind::Unavailable,
            ServiceError::Refused(_) => ErrorKind::InvalidInput,
            ServiceError::SiteConfig(_) => ErrorKind::Corrupt,
            ServiceError::Invariant(_) | ServiceError::Task(_) => ErrorKind::Internal,
            ServiceError::File(e) => file_kind(e),
            ServiceError::FilePending { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Why a person's input was refused, in words any language can say: a message key
/// (the portal's catalogues hold `err_KEY`), the values the message names (`{name}` in
/// it), and the English words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The message's key, without the `err_` prefix: `password_short`, …
    pub key: &'static str,
    /// The values it names, by placeholder.
    pub values: Vec<(&'static str, String)>,
    english: String,
}

impl Refusal {
    /// A refusal `key`, said in English as `english`.
    pub fn new(key: &'static str, english: String) -> Refusal {
        Refusal {
            key,
            values: Vec::new(),
            english,
        }
    }

    /// The same, naming `value` as `{name}`.
    pub fn with(mut self, name: &'static str, value: impl ToString) -> Refusal {
        self.values.push((name, value.to_string()));
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.english)
    }
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> ServiceError {
        ServiceError::Refused(refusal)
    }
}

/// The stores a site holds, for a message.
fn held_stores(all_stores: bool, held: &[String]) -> String {
    let names = held
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    match (all_stores, held.is_empty()) {
        (true, true) => "every store of the organisation (none yet)".into(),
        (true, false) => format!("every store of the organisation ({names})"),
        (false, _) => format!("stores {names}"),
    }
}

/// Why a module is refused, and what the operator types to allow it.
fn unlicensed(org: &str, module: Module, ended: Option<Day>, by_licence: bool) -> String {
    match (ended, by_licence) {
        (Some(day), true) => format!(
            "the licence of organisation {org:?} ended after {day}, and module {module} with \
             it (nothing was deleted): ask the operator of the primary to extend it \
             (`sitesync org licence {org:?} --expires YYYY-MM-DD`)"
        ),
        (Some(day), false) => format!(
            "module {module} of organisation {org:?} was licensed until {day} (nothing was \
             deleted): ask the operator of the primary to extend it (`sitesync org licence \
             {org:?} --module {module}=YYYY-MM-DD`)"
        ),
        (None, _) => format!(
            "organisation {org:?} has no licence for module {module}: ask the operator of the \
             primary to turn it on (`sitesync org licence {org:?} --module {module}=on`)"
        ),
    }
}

/// The kind of a storage failure.
pub fn store_kind(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::Invalid(_) => ErrorKind::InvalidInput,
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::Conflict(_) => ErrorKind::Taken,
        StoreError::Refused(_) | StoreError::SiteLimit { .. } => ErrorKind::Forbidden,
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
        SecretError::BadHash(_) | SecretError::Unsealable(_) => ErrorKind::Corrupt,
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

/// The kind of a file error.
pub fn file_kind(e: &sitesync_files::FileError) -> ErrorKind {
    use sitesync_files::FileError;
    match e {
        FileError::DiskFull { .. } => ErrorKind::DiskFull,
        FileError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem
                || source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            ErrorKind::ReadOnly
        }
        FileError::Io { .. } => ErrorKind::Unavailable,
        FileError::BadChunk { on_disk, .. } if !on_disk.is_empty() => ErrorKind::Corrupt,
        FileError::TooLarge { .. }
        | FileError::BadChunk { .. }
        | FileError::NoSuchChunk { .. }
        | FileError::BadManifest { .. } => ErrorKind::InvalidInput,
    }
}
