//! The node's error type, and the one place errors become HTTP answers.

use crate::config::ConfigError;
use crate::secrets::SecretError;
use crate::tls::TlsError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sitesync_core::InvalidInput;
use sitesync_protocol::{CodecError, ErrorBody};
use sitesync_store::StoreError;
use thiserror::Error;

/// Anything that can go wrong in a node operation.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The data folder or its configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making or checking a secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Input that fails validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A request body that cannot be decoded.
    #[error("bad request body: {0}")]
    Body(#[from] CodecError),
    /// Input that is well-formed but wrong ("no such store", a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Missing or wrong credentials. Deliberately says nothing about which part was wrong.
    #[error("authentication failed")]
    Unauthorised,
    /// Too many failed attempts from this address lately.
    #[error("too many failed attempts from this address; try again in {0} s")]
    TooManyAttempts(u64),
    /// The primary could not be reached, or answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The node is shutting down or a background task failed.
    #[error("{0}")]
    Internal(String),
}

impl NodeError {
    /// The HTTP status and stable error code of this error.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            NodeError::Invalid(_) | NodeError::Body(_) | NodeError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "invalid_input")
            }
            NodeError::Store(StoreError::Invalid(_)) => (StatusCode::BAD_REQUEST, "invalid_input"),
            NodeError::NotFound(_) | NodeError::Store(StoreError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            NodeError::Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, "taken"),
            NodeError::Forbidden(_) | NodeError::Store(StoreError::Refused(_)) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            NodeError::Unauthorised => (StatusCode::UNAUTHORIZED, "unauthorised"),
            // Said in full (not "see the log"): the writer must know its write was not
            // saved and what would let it through.
            NodeError::Store(StoreError::DiskFull(_)) => {
                (StatusCode::INSUFFICIENT_STORAGE, "disk_full")
            }
            NodeError::Store(StoreError::ReadOnly(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "read_only")
            }
            NodeError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            NodeError::Remote(_) => (StatusCode::BAD_GATEWAY, "primary_unreachable"),
            NodeError::Config(_)
            | NodeError::Store(_)
            | NodeError::Secret(_)
            | NodeError::Tls(_)
            | NodeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let error = if matches!(code, "disk_full" | "read_only") {
            tracing::error!(error = %self, "a write failed");
            self.to_string()
        } else if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
            "the server failed to handle the request; its log says why".to_string()
        } else {
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
