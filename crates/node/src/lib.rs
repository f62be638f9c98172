//! A running sitesync site: the primary's sync server, the satellite's sync agent, the
//! local HTTP API, and the set-up and status operations the CLI calls.
//!
//! # Layout
//!
//! - [`config`]: the data folder and `config.toml`.
//! - [`secrets`]: sync keys, site secrets, the authorisation code and API token;
//!   [`attempts`]: slowing down guessing of them; [`credentials`]: the primary's
//!   memory of the sites it checked.
//! - [`site`]: a site opened from its data folder; record operations shared by the CLI
//!   and the local API.
//! - [`init`]: making a primary's or a satellite's data folder (enrolment).
//! - [`settings`]: the sync settings behind the authorisation code.
//! - [`node`]: the state a running node shares; [`serve`]: running it.
//! - [`primary`]: the sync API (enrol, push, long-polling pull); [`commit`]: the group
//!   commit of pushed batches.
//! - [`api`]: the local JSON API.
//! - [`client`] and [`satellite`]: the satellite's side of the protocol.
//! - [`status`]: `sitesync status`.
//! - [`error`]: the node's error, and its mapping to HTTP statuses.

pub mod api;
pub mod attempts;
pub mod client;
pub mod commit;
pub mod config;
pub mod credentials;
pub mod error;
pub mod init;
pub mod node;
pub mod primary;
pub mod replay;
pub mod satellite;
pub mod secrets;
pub mod serve;
pub mod settings;
pub mod site;
pub mod status;
pub mod tls;
pub mod transport;
mod wire;

pub use config::{Config, DataDir, Role};
pub use error::NodeError;
pub use node::{Node, Shared, now_ms};
pub use site::{RecordView, Site};
