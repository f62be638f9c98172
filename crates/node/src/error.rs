//! The node's error type, its kind, and how it becomes an HTTP answer (the status and
//! code of each kind come from `sitesync_service::ErrorKind`, the one table).

use crate::config::ConfigError;
use crate::secrets::SecretError;
use crate::tls::TlsError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sitesync_core::InvalidInput;
use sitesync_protocol::{CodecError, ErrorBody};
use sitesync_service::{ErrorKind, ServiceError};
use sitesync_store::StoreError;
use thiserror::Error;

/// Anything that can go wrong in a node operation.
#[derive(Debug, Error)]
pub enum NodeError {
    /// A use-case of the service refused or failed, or what the service's errors
    /// already say: the data folder, the database, a secret, invalid input (each
    /// converts through [`ServiceError`], so its kind is decided in one place).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A request body that cannot be decoded.
    #[error("bad request body: {0}")]
    Body(#[from] CodecError),
    /// Input that is well-formed but wrong ("no such store", a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong credentials. Deliberately says nothing about which part was wrong.
    #[error("authentication failed")]
    Unauthorised,
    /// A request signed as a site this primary does not know: it was restored from a
    /// backup taken before the site enrolled (or the site was removed).
    #[error(
        "this primary does not know site {0}: it was probably restored from a backup taken before the site enrolled. \
         To join it again keeping the site's records, run `sitesync rejoin --sync-key KEY` at the site \
         (`sitesync org show ORG` on the primary shows the key)"
    )]
    UnknownSite(sitesync_core::SiteId),
    /// Too many failed attempts from this address lately.
    #[error("too many failed attempts from this address; try again in {0} s")]
    TooManyAttempts(u64),
    /// The primary could not be reached, or answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The primary refused this site's credentials or sync key.
    #[error("{0}")]
    Refused(String),
    /// The primary answered with data this site cannot read (a pulled record).
    #[error("{0}")]
    Unreadable(String),
    /// Another process holds what this one needs (the data folder, for `serve`).
    #[error("{0}")]
    Taken(String),
    /// The node is shutting down or a background task failed.
    #[error("{0}")]
    Internal(String),
}

macro_rules! through_the_service {
    ($($error:ty),*) => {$(
        impl From<$error> for NodeError {
            fn from(error: $error) -> NodeError {
                NodeError::Service(error.into())
            }
        }
    )*};
}

through_the_service!(ConfigError, StoreError, SecretError, InvalidInput);

impl NodeError {
    /// The error a pulled page becomes when one of its records cannot be read: the
    /// primary answered, so it is not unreachable; what it sent is corrupt, and the
    /// page is refused whole.
    pub fn unreadable_page(error: impl std::fmt::Display) -> NodeError {
        NodeError::Unreadable(format!(
            "the primary sent an unreadable {error}; nothing of the page was applied"
        ))
    }

    /// What kind of failure this is (see `sitesync_service::ErrorKind`, which maps it
    /// to an HTTP status, a code and an exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Service(e) => e.kind(),
            NodeError::Body(_) | NodeError::BadRequest(_) => ErrorKind::InvalidInput,
            NodeError::NotFound(_) => ErrorKind::NotFound,
            NodeError::Taken(_) => ErrorKind::Taken,
            NodeError::Unauthorised | NodeError::UnknownSite(_) => ErrorKind::Unauthorised,
            NodeError::TooManyAttempts(_) => ErrorKind::TooManyAttempts,
            NodeError::Remote(_) => ErrorKind::Unreachable,
            NodeError::Refused(_) => ErrorKind::Unauthorised,
            NodeError::Unreadable(_) => ErrorKind::Corrupt,
            NodeError::Tls(_) | NodeError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let (status, code) = kind.http();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A file still on its way is no fault: its message says so and what to do.
        let pending = matches!(self, NodeError::Service(ServiceError::FilePending { .. }));
        let error = if !kind.tells_caller() && !pending {
            tracing::error!(error = %self, "request failed");
            if kind == ErrorKind::Unavailable {
                "the server cannot reach its database for now (its log says why); retry in a while"
            } else {
                "the server failed to handle the request; its log says why"
            }
            .to_string()
        } else {
            if matches!(kind, ErrorKind::DiskFull | ErrorKind::ReadOnly) {
                tracing::error!(error = %self, "a write failed");
            }
            self.to_string()
        };
        (
            status,
            axum::Json(ErrorBody {
                code: code.to_string(),
                error,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitesync_protocol::PulledRecord;
    use sitesync_store::Prepared;

    /// Issue 9: a page with an unreadable record was answered as 502 "primary
    /// unreachable", though the primary had answered.
    #[test]
    fn an_unreadable_pulled_page_is_corrupt_not_unreachable() {
        let record: PulledRecord = serde_json::from_str(
            r#"{"seq": 1, "collection": "items", "id": "a", "state": {"nonsense": 1}}"#,
        )
        .expect("a well-formed pulled record");
        let error = match Prepared::new(record) {
            Err(e) => NodeError::unreadable_page(e),
            Ok(_) => panic!("the record should be refused"),
        };
        assert_eq!(error.kind(), ErrorKind::Corrupt);
        assert_ne!(error.kind().http().1, "primary_unreachable");
        assert_eq!(error.kind().http(), (500, "internal"));
        assert_eq!(
            error.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    /// Kinds come from the one table: a refused credential and a full disk keep their
    /// codes.
    #[test]
    fn node_errors_answer_through_the_kind_table() {
        assert_eq!(
            NodeError::Unauthorised.into_response().status(),
            StatusCode::UNAUTHORIZED
        );
        let full = NodeError::from(StoreError::DiskFull("/data".into()));
        assert_eq!(
            full.into_response().status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
        let remote = NodeError::Remote("cannot reach primary".into());
        assert_eq!(remote.kind().http(), (502, "primary_unreachable"));
    }
}
