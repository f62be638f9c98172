//! What kind of thing went wrong, and the one place a kind becomes an HTTP answer or a
//! CLI exit code. Every edge asks this table: the local API and the sync API
//! (`sitesync-node`'s `error.rs`), the command line (`sitesync`'s `main.rs`), and the
//! portal when it comes. The codes are stable: scripts and satellites match on them.
//!
//! | kind | HTTP | code | exit |
//! |---|---|---|---|
//! | invalid input | 400 | `invalid_input` | 2 |
//! | not found | 404 | `not_found` | 3 |
//! | taken | 409 | `taken` | 4 |
//! | forbidden | 403 | `forbidden` | 5 |
//! | unauthorised | 401 | `unauthorised` | 6 |
//! | too many attempts | 429 | `too_many_attempts` | 7 |
//! | disk full | 507 | `disk_full` | 8 |
//! | read-only | 503 | `read_only` | 9 |
//! | corrupt | 500 | `internal` | 10 |
//! | unreachable | 502 | `primary_unreachable` | 11 |
//! | unavailable | 503 | `unavailable` | 12 |
//! | internal | 500 | `internal` | 1 |
//!
//! Exit code 1 is also what any other failure of the command gives; 2 is also what the
//! argument parser gives for a command line it cannot read, which is the same kind of
//! mistake. Corrupt data answers HTTP as `internal` (the details go to the log, as for
//! any other fault of this site) but exits with a code of its own, so a script can tell
//! "restore from backup" from "look at the log".

use serde::Serialize;

/// What kind of thing went wrong, in the terms every edge answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is malformed or names something in the wrong way.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The name or id is already in use.
    Taken,
    /// The asker may not do this.
    Forbidden,
    /// Missing or wrong credentials.
    Unauthorised,
    /// Too many failed attempts lately; wait and try again.
    TooManyAttempts,
    /// The disk holding the data folder is full.
    DiskFull,
    /// The data folder cannot be written.
    ReadOnly,
    /// Stored or received data cannot be read back.
    Corrupt,
    /// The primary cannot be reached, or failed.
    Unreachable,
    /// This site's database cannot do it now (busy, locked, an IO error): nothing was
    /// changed, and the same request may succeed later.
    Unavailable,
    /// A fault of this site (a broken invariant, a failed background task).
    Internal,
}

/// Every kind, for tests and documentation that walk the table.
pub const ALL_KINDS: [ErrorKind; 12] = [
    ErrorKind::InvalidInput,
    ErrorKind::NotFound,
    ErrorKind::Taken,
    ErrorKind::Forbidden,
    ErrorKind::Unauthorised,
    ErrorKind::TooManyAttempts,
    ErrorKind::DiskFull,
    ErrorKind::ReadOnly,
    ErrorKind::Corrupt,
    ErrorKind::Unreachable,
    ErrorKind::Unavailable,
    ErrorKind::Internal,
];

impl ErrorKind {
    /// The HTTP status and stable error code an API answers with.
    pub fn http(self) -> (u16, &'static str) {
        match self {
            ErrorKind::InvalidInput => (400, "invalid_input"),
            ErrorKind::NotFound => (404, "not_found"),
            ErrorKind::Taken => (409, "taken"),
            ErrorKind::Forbidden => (403, "forbidden"),
            ErrorKind::Unauthorised => (401, "unauthorised"),
            ErrorKind::TooManyAttempts => (429, "too_many_attempts"),
            ErrorKind::DiskFull => (507, "disk_full"),
            ErrorKind::ReadOnly => (503, "read_only"),
            ErrorKind::Unreachable => (502, "primary_unreachable"),
            ErrorKind::Unavailable => (503, "unavailable"),
            ErrorKind::Corrupt | ErrorKind::Internal => (500, "internal"),
        }
    }

    /// The exit code of a command that failed this way.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::InvalidInput => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Taken => 4,
            ErrorKind::Forbidden => 5,
            ErrorKind::Unauthorised => 6,
            ErrorKind::TooManyAttempts => 7,
            ErrorKind::DiskFull => 8,
            ErrorKind::ReadOnly => 9,
            ErrorKind::Corrupt => 10,
            ErrorKind::Unreachable => 11,
            ErrorKind::Unavailable => 12,
        }
    }

    /// Whether an API answer may say what went wrong. A fault of this site is told only
    /// to its log: the message may name files and internals a caller has no use for.
    /// A full or read-only disk is said in full: the writer must know its write was not
    /// saved and what would let it through.
    pub fn tells_caller(self) -> bool {
        !matches!(
            self,
            ErrorKind::Corrupt | ErrorKind::Internal | ErrorKind::Unavailable
        )
    }
}
