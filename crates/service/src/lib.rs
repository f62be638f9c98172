//! The use-cases of sitesync, one function each, for every edge: the command line, the
//! local API, the sync API and (later) the portal. Each takes who is asking
//! ([`Actor`]) and returns a [`ServiceError`] whose [`ErrorKind`] the edges turn into an
//! HTTP status or an exit code through one table ([`ErrorKind::http`],
//! [`ErrorKind::exit_code`]). An edge never calls storage itself.
//!
//! ```no_run
//! # fn main() -> Result<(), sitesync_service::ServiceError> {
//! use sitesync_service::{Actor, DataDir, Site};
//! let site = Site::open(DataDir::new("./sitesync-data"))?;
//! let created = site.create_org(Actor::Operator, "Acme Pharmacies", 0)?;
//! println!("sync key: {}", created.sync_key);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`actor`](Actor): who asks, and what each asker may do; [`attempts`]: slowing down
//!   guessing (sync credentials, sign-ins), shared by the sync API and the portal.
//! - `kind`: [`ErrorKind`] and the one table of HTTP statuses, codes and exit codes;
//!   `error`: [`ServiceError`], in the product's words.
//! - [`config`]: the data folder and `config.toml`; [`secrets`]: sync keys, site
//!   secrets, the authorisation code and API token.
//! - `site`: [`Site`], a site opened from its data folder, which every use-case works on,
//!   and the lookups they share. The use-cases are its methods, one family a file:
//!   - `orgs`: create, list, show, rotate the sync key;
//!   - `stores`: stores, and restricted collections;
//!   - `definitions`: collections' definitions and custom fields (defined on the
//!     primary, kept as reference data, checked at every site's writes);
//!   - `sites`: enrol, list, show, assign stores, revoke;
//!   - `records`: put, get (waiting for it to arrive), list, delete;
//!   - `reports`: conflicts, rejections, digest;
//!   - `status`: where the site stands;
//!   - `settings`: show, and [`set_setting`] behind the authorisation code;
//!   - `backup`: back the primary up while it serves, and [`restore`] it;
//!   - `accounts`: the cloud account's people: register, confirm, log in and out,
//!     sessions, password resets, and the operator's account commands;
//!   - `licences`: an organisation's licence (modules, site limit, expiry): shown,
//!     changed by the operator, and [`Site::require_module`] for the modules' features;
//!   - `profile`: what an account says of itself: its address (changed by a link
//!     mailed to the new one) and the language it reads the portal in;
//!   - `members`: an organisation's members: invitations (pending ones listed and
//!     withdrawn), roles, removal;
//!   - `audit`: the audit log every administrative use-case writes to, and its pages;
//!   - `mail`: e-mail from the primary (the outbox folder, or an SMTP server);
//!   - `time_zone`: organisations' time zones, and times read in them;
//!   - `span`: lengths of time as typed (`30m`, `2h`, `1d`), for session timeouts.
//!
//! # Why the site lives here
//!
//! The dependencies run one way: `sitesync-node` (HTTP edges, the sync agent) ->
//! `sitesync-service` -> `sitesync-store`. Every use-case needs the opened site (its
//! folder, configuration, database and, on the primary, its sync keys), so [`Site`],
//! [`config`] and [`secrets`] moved here from `sitesync-node`, which re-exports them
//! under their old paths. The sync API's push and pull still reach `Site::store`
//! directly: they are being reworked into a sans-IO session of their own.

mod accounts;
mod actor;
pub mod attempts;
mod audit;
mod backup;
pub mod config;
mod definitions;
mod error;
mod files;
mod kind;
mod licences;
mod mail;
mod members;
mod orgs;
mod profile;
mod records;
mod reports;
pub mod secrets;
mod settings;
mod site;
mod sites;
mod span;
mod status;
mod stores;
mod time_zone;

pub use accounts::{MIN_PASSWORD, Membership, Session, SessionView, check_email, check_password};
pub use actor::Actor;
pub use audit::MAX_AUDIT_PAGE;
pub use backup::{Backup, Restored, restore};
pub use config::{
    Config, DataDir, FileSettings, Registration, Role, SessionSettings, SiteHealth, Span,
};
pub use definitions::{Defined, DefinitionView, Definitions, Misfit, Template, parse_condition};
pub use error::{Refusal, ServiceError, config_kind, secret_kind, store_kind};
pub use files::{FileHere, RecordKey};
pub use kind::{ALL_KINDS, ErrorKind};
pub use licences::LicenceView;
pub use mail::Mail;
pub use members::{Invited, PendingInvitation};
pub use orgs::{OrgDetail, OrgKey, OrgSummary};
pub use records::{
    Changes, MAX_LIST, MAX_READ_WAIT, RecordRejection, RecordView, StoreChoice, view,
};
pub use reports::RejectionView;
pub use settings::{KEYS as SETTING_KEYS, set_setting};
pub use site::Site;
pub use sites::{Assigned, Health, ONLINE_WITHIN_MS, Revoked, SiteView};
/// An organisation's licence and its parts (the rules: `sitesync_core::licence`).
pub use sitesync_core::licence::{
    Day, Expiry, Grant, Licence, LicenceChange, Module, ModuleState, WARN_DAYS,
};
/// A person's account of the cloud account, and an audit log's entry, as the use-cases
/// return them.
pub use sitesync_store::{Account, Audit, AuditAction, AuditEntry, Role as MemberRole};
pub use status::{Standing, Status, plural};
pub use stores::CollectionView;
pub use time_zone::{check_time_zone, local_time, time_zones};
