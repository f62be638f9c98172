//! A site's data folder and its configuration file.
//!
//! ```text
//! DATA/
//!   config.toml    role, site id, addresses, hashes of the authorisation code and API token (0600)
//!   sitesync.db    the SQLite database (0600), with its -wal and -shm files
//!   primary.key    primary only: the key sync keys are derived from (0600)
//!   site.key       satellite only: the site's own credential (0600)
//!   tls.crt        primary made with --self-signed: its TLS certificate
//!   tls.key        primary made with --self-signed: the certificate's private key (0600)
//!   primary-ca.pem satellite enrolled with --ca: the certificates it trusts for the primary
//!   serve.json     while `serve` runs: its process id and the address it listens on
//! ```

pub use crate::span::Span;
use serde::{Deserialize, Serialize};
use sitesync_core::{OrgId, SiteId};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A problem with the data folder or its files.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The folder holds no site.
    #[error(
        "{0} is not a sitesync data folder; create one with `sitesync init primary` or `sitesync init satellite`, or pass --data"
    )]
    NotInitialised(PathBuf),
    /// The folder already holds a site.
    #[error("{0} already holds a sitesync site; use another --data folder")]
    AlreadyInitialised(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration file is not valid.
    #[error("{path} is not a valid configuration: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The role a site plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Site 1: serves the organisations and their satellites.
    Primary,
    /// A site that syncs through the primary.
    Satellite,
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Primary or satellite.
    pub role: Role,
    /// This site's id (1 on the primary).
    pub site_id: SiteId,
    /// This site's name.
    pub name: String,
    /// Where `serve` listens (the sync API on the primary, the local API on both).
    pub listen: String,
    /// argon2id hash of the authorisation code that guards the sync settings.
    pub auth_code_hash: String,
    /// SHA-256 of the bearer token the local API asks for when not bound to loopback.
    pub api_token_hash: String,
    /// Satellite: the primary's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_url: Option<String>,
    /// Satellite: the organisation it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Satellite: the organisation's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Primary: the TLS certificate chain (PEM) `serve` uses unless told another;
    /// relative to the data folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// Primary: the certificate's private key (PEM); relative to the data folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Satellite: trust the primary's certificates that chain to this file's (relative
    /// to the data folder) instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ca: Option<PathBuf>,
    /// Satellite: trust exactly the primary certificate with this SHA-256 fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_fingerprint: Option<String>,
    /// Primary: the portal's address as people reach it (`https://sync.example.org`),
    /// for links in mail; the address `serve` listens on when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Primary: the PostgreSQL database holding its state (`postgres://USER@HOST/DB`,
    /// never with a password: that comes from `PGPASSWORD`); the SQLite file in the data
    /// folder when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Primary: who may make an account in the portal (`open` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
    /// Primary: how mail leaves (`[mail]`); into the outbox folder when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSettings>,
    /// Primary: how long the portal's sessions last (`[sessions]`); 1 hour unused and
    /// 24 hours in all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionSettings>,
    /// Primary: when a quiet site counts as stale or lost (`[sites]`); after a day and
    /// after three days when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<SiteHealth>,
    /// Files: their size limits and how long one no record refers to stays
    /// (`[files]`); 100 MiB a file, 10 GiB an organisation and a day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FileSettings>,
}

/// `[files]` in `config.toml` (`settings set file-max-size 20MiB`, `org-files-max-size
/// 50GiB`, `file-grace 1h`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// The largest file, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
    /// The most all of one organisation's files may hold, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_org_size: Option<u64>,
    /// How long a file no record refers to any more is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Span>,
}

impl FileSettings {
    /// The largest file unless set: 100 MiB.
    pub const MAX_FILE: u64 = 100 << 20;
    /// The most an organisation's files hold unless set: 10 GiB.
    pub const MAX_ORG: u64 = 10 << 30;
    /// How long an unreferenced file stays unless set: a day.
    pub const GRACE: Span = Span::days(1);

    /// The largest file.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size.unwrap_or(Self::MAX_FILE)
    }

    /// The most an organisation's files hold.
    pub fn max_org_size(&self) -> u64 {
        self.max_org_size.unwrap_or(Self::MAX_ORG)
    }

    /// How long an unreferenced file stays.
    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.grace.unwrap_or(Self::GRACE).ms())
    }
}

/// `[sites]` in `config.toml`: how long a site may be quiet before it counts as stale,
/// then lost (`stale_after = "1d"`, `lost_after = "3d"`; `settings set site-stale-after
/// 12h`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteHealth {
    /// Quiet this long, a site is stale (a day when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after: Option<Span>,
    /// Quiet this long, a site is lost (three days when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_after: Option<Span>,
}

impl SiteHealth {
    /// When a quiet site is stale unless set.
    pub const STALE: Span = Span::days(1);
    /// When a quiet site is lost unless set.
    pub const LOST: Span = Span::days(3);

    /// When a quiet site is stale.
    pub fn stale_after(&self) -> Span {
        self.stale_after.unwrap_or(Self::STALE)
    }

    /// When a quiet site is lost.
    pub fn lost_after(&self) -> Span {
        self.lost_after.unwrap_or(Self::LOST)
    }
}

/// `[sessions]` in `config.toml`: when a signed-in browser must sign in again. Written
/// as typed, `idle = "30m"`, `lifetime = "12h"` (`settings set session-idle 30m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused this long ends (1 hour when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Span>,
    /// A session ends this long after its sign-in, used or not (24 hours when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Span>,
}

impl SessionSettings {
    /// The idle timeout when none is set.
    pub const IDLE: Span = Span::hours(1);
    /// The lifetime when none is set.
    pub const LIFETIME: Span = Span::hours(24);
    /// The shortest either may be: a form takes minutes to fill in.
    pub const LEAST: Span = Span::minutes(5);
    /// The longest idle timeout.
    pub const MOST_IDLE: Span = Span::days(7);
    /// The longest lifetime.
    pub const MOST_LIFETIME: Span = Span::days(90);

    /// The idle timeout in force.
    pub fn idle(&self) -> Span {
        self.idle.unwrap_or(Self::IDLE)
    }

    /// The lifetime in force.
    pub fn lifetime(&self) -> Span {
        self.lifetime.unwrap_or(Self::LIFETIME)
    }
}

/// `[mail]` in `config.toml`: the sender, and the SMTP server mail goes through (with
/// none, each message is written to `DATA/mail/outbox/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// The sender, as `Name <address>` or an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The SMTP server, `HOST:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<String>,
    /// How the connection to it is protected (`starttls` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SmtpSecurity>,
    /// The user name to sign in to it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password, sealed under the primary key (`secrets::seal`): set it with
    /// `sitesync settings set smtp-password -`, never here by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Trust the server's certificates that chain to this PEM file (relative to the data
    /// folder) instead of the system's roots: a relay with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain at first, then TLS before anything else is said (port 587); refused if the
    /// server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on this machine or a trusted network.
    None,
}

impl SmtpSecurity {
    /// Its name, as typed and stored.
    pub fn name(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }
}

/// Who may make an account in the portal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone, at `/register`.
    #[default]
    Open,
    /// Only someone invited to an organisation, by the invitation's link.
    Invite,
    /// Nobody: the operator makes accounts (`sitesync account create`).
    Closed,
}

/// How a satellite trusts its primary's certificate. Kept here, beside the
/// configuration it is read from; `sitesync-node`'s `tls` builds the verifier from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's root certificates.
    System,
    /// The certificates in this PEM file (a private CA, or a self-signed certificate).
    Ca(PathBuf),
    /// Exactly the certificate with this fingerprint (as `tls::fingerprint` prints it).
    Pinned(String),
}

impl Config {
    /// How this satellite trusts its primary's TLS certificate.
    pub fn primary_trust(&self, dir: &DataDir) -> Trust {
        match (&self.primary_fingerprint, &self.primary_ca) {
            (Some(fingerprint), _) => Trust::Pinned(fingerprint.clone()),
            (None, Some(ca)) => Trust::Ca(dir.resolve(ca)),
            (None, None) => Trust::System,
        }
    }
}

/// Checks a primary's URL as a person typed it; several (the processes of one
/// primary, tried in turn when one stops answering) are separated by commas.
pub fn check_primary_url(urls: &str) -> Result<(), String> {
    for url in urls.split(',').map(str::trim) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "the primary URL {url:?} must start with http:// or https://; separate several with commas"
            ));
        }
    }
    Ok(())
}

/// A list of primary URLs as config.toml keeps it: each without a trailing slash,
/// separated by commas.
pub fn primary_urls(typed: &str) -> String {
    let urls: Vec<&str> = typed
        .split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .collect();
    urls.join(",")
}

/// Checks an address to listen on as a person typed it: `HOST:PORT`, the port from 0
/// (any free one) to 65535. Checked when given, so a bad one is refused at `init` or
/// `settings set` rather than when `serve` starts.
pub fn check_listen(listen: &str) -> Result<(), String> {
    let refused = |why: &str| {
        Err(format!(
            "the address {listen:?} {why}; give HOST:PORT, like 127.0.0.1:7701 or 0.0.0.0:7700"
        ))
    };
    let Some((host, port)) = listen.rsplit_once(':') else {
        return refused("has no port");
    };
    if host.is_empty() {
        return refused("has no host");
    }
    match port.parse::<u16>() {
        Ok(_) => Ok(()),
        Err(_) => refused("has a port that is not a number from 0 to 65535"),
    }
}

/// Checks an authorisation code a person chose.
pub fn check_auth_code(code: &str) -> Result<(), String> {
    if code.trim().len() < 4 {
        return Err("the authorisation code must be at least 4 characters long".into());
    }
    Ok(())
}

/// What `serve.json` says while `serve` runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Running {
    /// The process id of `serve`.
    pub pid: u32,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl Running {
    /// Reads the `serve.json` of `dir`; `None` when there is none or it does not parse.
    pub fn read(dir: &DataDir) -> Option<Running> {
        serde_json::from_slice(&fs::read(dir.serve_path()).ok()?).ok()
    }
}

/// The paths of a data folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The folder.
    pub root: PathBuf,
}

impl DataDir {
    /// The data folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `sitesync.db`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("sitesync.db")
    }

    /// `primary.key`.
    pub fn primary_key_path(&self) -> PathBuf {
        self.root.join("primary.key")
    }

    /// `site.key`.
    pub fn site_key_path(&self) -> PathBuf {
        self.root.join("site.key")
    }

    /// `tls.crt`, the certificate `init primary --self-signed` makes.
    pub fn tls_cert_path(&self) -> PathBuf {
        self.root.join("tls.crt")
    }

    /// `tls.key`, its private key.
    pub fn tls_key_path(&self) -> PathBuf {
        self.root.join("tls.key")
    }

    /// `primary-ca.pem`, the certificates a satellite trusts for its primary.
    pub fn primary_ca_path(&self) -> PathBuf {
        self.root.join("primary-ca.pem")
    }

    /// A path from the configuration: relative paths are inside the data folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    /// `serve.json`.
    pub fn serve_path(&self) -> PathBuf {
        self.root.join("serve.json")
    }

    /// Whether a site lives here.
    pub fn is_initialised(&self) -> bool {
        self.config_path().exists()
    }

    /// Reads `config.toml`.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let path = self.config_path();
        if !path.exists() {
            return Err(ConfigError::NotInitialised(self.root.clone()));
        }
        let text = read(&path)?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path,
            message: e.to_string(),
        })
    }

    /// Writes `config.toml` (0600), atomically: a crash leaves the old or the new file.
    pub fn save(&self, config: &Config) -> Result<(), ConfigError> {
        let text = toml::to_string(config).map_err(|e| ConfigError::Invalid {
            path: self.config_path(),
            message: e.to_string(),
        })?;
        write_private(&self.config_path(), text.as_bytes())
    }

    /// Reads a small private file (a key).
    pub fn read_secret(&self, path: &Path) -> Result<String, ConfigError> {
        Ok(read(path)?.trim().to_string())
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file readable by its owner only (0600), through a temporary file and a
/// rename so that a crash never leaves half a file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}
