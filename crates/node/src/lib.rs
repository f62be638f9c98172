//! A running sitesync site: the primary's sync server, the satellite's sync agent, the
//! local HTTP API, and the set-up and status operations the CLI calls.
//!
//! # Layout
//!
//! - [`config`], [`secrets`] and [`site`]: the data folder, secrets and the opened
//!   site, re-exported from `sitesync-service`, where the use-cases that need them live;
//!   `attempts` (in the service): slowing down guessing of secrets; [`credentials`]: the primary's
//!   memory of the sites it checked.
//! - [`init`]: making a primary's or a satellite's data folder (enrolment), and a
//!   satellite's `rejoin`; [`backup`]: backing the primary up and restoring it.
//! - [`node`]: the state a running node shares; [`serve`]: running it; `lock`: one
//!   `serve` per data folder; [`running`]: how commands find and wake a running `serve`.
//! - [`primary`]: the sync API (enrol, push, long-polling pull); [`commit`]: the group
//!   commit of pushed batches.
//! - [`api`]: the local JSON API, calling the use-cases of `sitesync-service` only.
//! - [`client`] and [`satellite`]: the satellite's side of the protocol.
//! - [`status`]: `sitesync status` (this site's part comes from the service; this adds
//!   what the primary says).
//! - [`error`]: the node's error, its kind, and its HTTP answer (statuses and codes from
//!   `sitesync_service::ErrorKind`, the one table).

mod api;
pub mod backup;
pub mod client;
mod commit;
mod credentials;
mod error;
pub mod files;
pub mod init;
mod lock;
mod node;
pub mod primary;
mod replay;
pub mod running;
pub mod satellite;
pub mod serve;
pub mod status;
pub mod tls;
pub mod transport;
mod wire;

pub use error::NodeError;
pub use node::{Node, Shared, now_ms};
pub use sitesync_service::{Config, DataDir, RecordView, Role, Site, config, secrets};
/// The opened site (moved to `sitesync-service`; re-exported under its old path).
pub mod site {
    pub use sitesync_service::{RecordView, Site, view};
}
