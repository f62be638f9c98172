//! `sitesync init primary` and `sitesync init satellite`: making a data folder.
//!
//! Either succeeds whole or leaves no data folder behind: the folder is made only once
//! every check (and, for a satellite, the enrolment) has passed, and removed again if
//! writing it fails half-way. `config.toml` is written last, so a folder without one is
//! never mistaken for a site.

use crate::client::Client;
use crate::config::{
    Config, ConfigError, DataDir, Role, check_auth_code, check_listen, check_primary_url,
    write_private,
};
use crate::error::NodeError;
use crate::secrets::{code_hash, random_hex, token_hash};
use crate::tls::{self, Trust};
use sitesync_core::validate;
use sitesync_protocol::{EnrolRequest, OrgRef, SiteConfig};
use sitesync_sqlite::SqliteStore;
use sitesync_store::SatelliteStorage;
use std::path::{Path, PathBuf};

/// What `init` made, to tell the person once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Initialised {
    /// The new site's id.
    pub site_id: u32,
    /// Satellite: its organisation.
    pub organisation: Option<OrgRef>,
    /// Satellite: what it holds.
    pub stores: Vec<String>,
    /// The authorisation code, when `init` generated it (shown once, stored hashed).
    pub auth_code: Option<String>,
    /// The local API's bearer token (shown once, stored hashed).
    pub api_token: String,
    /// Primary made with a self-signed certificate: its SHA-256 fingerprint, for
    /// satellites to pin (`init satellite --tls-fingerprint`).
    pub tls_fingerprint: Option<String>,
}

/// Options of `init satellite`.
#[derive(Debug, Clone, Default)]
pub struct SatelliteOptions {
    /// The primary's base URL.
    pub primary_url: String,
    /// The organisation's sync key.
    pub sync_key: String,
    /// The site id asked for.
    pub site_id: Option<i64>,
    /// The site's name.
    pub name: Option<String>,
    /// Stores by id or name.
    pub stores: Vec<String>,
    /// Every store.
    pub all_stores: bool,
    /// Where `serve` listens.
    pub listen: String,
    /// The authorisation code; generated when absent.
    pub auth_code: Option<String>,
    /// Trust the primary's certificate when it chains to one in this PEM file.
    pub ca: Option<PathBuf>,
    /// Trust exactly the primary certificate with this SHA-256 fingerprint.
    pub tls_fingerprint: Option<String>,
}

/// TLS of a new primary.
#[derive(Debug, Clone, Default)]
pub struct PrimaryTls {
    /// Make a self-signed certificate (for these names beside this machine's own).
    pub self_signed: bool,
    /// Names (host names or IP addresses) satellites will reach the primary by.
    pub names: Vec<String>,
}

/// Makes a primary's data folder; its state in the SQLite file there, or in the
/// PostgreSQL `database` (which must hold no primary yet).
pub fn init_primary(
    dir: &DataDir,
    listen: &str,
    auth_code: Option<String>,
    tls: PrimaryTls,
    database: Option<&str>,
) -> Result<Initialised, NodeError> {
    check_listen(listen).map_err(NodeError::BadRequest)?;
    ensure_new(dir)?;
    if let Some(url) = database {
        check_new_database(url)?;
    }
    let (auth_code, generated) = auth_code_or_new(auth_code)?;
    let api_token = random_hex(32)?;
    let certificate = match tls.self_signed {
        true => Some(tls::self_signed(certificate_names(listen, tls.names))?),
        false => None,
    };
    let config = Config {
        role: Role::Primary,
        site_id: sitesync_core::PRIMARY_SITE,
        name: "primary".to_string(),
        listen: listen.to_string(),
        auth_code_hash: code_hash(&auth_code)?,
        api_token_hash: token_hash(&api_token),
        primary_url: None,
        org_id: None,
        org_name: None,
        tls_cert: certificate.as_ref().map(|_| "tls.crt".into()),
        tls_key: certificate.as_ref().map(|_| "tls.key".into()),
        primary_ca: None,
        primary_fingerprint: None,
        public_url: None,
        database: database.map(str::to_string),
        registration: None,
        sessions: None,
        sites: None,
        files: None,
        mail: None,
    };
    let primary_key = random_hex(32)?;
    let mut tls_fingerprint = None;
    create(dir, |dir| {
        write_private(&dir.primary_key_path(), primary_key.as_bytes())?;
        if let Some((cert, key)) = &certificate {
            write_private(&dir.tls_key_path(), key.as_bytes())?;
            write_private(&dir.tls_cert_path(), cert.as_bytes())?;
            let der = tls::load_certs(&dir.tls_cert_path())?;
            tls_fingerprint = der.first().map(|c| tls::fingerprint(c));
        }
        if database.is_none() {
            open_private_db(dir, Role::Primary)?;
        }
        dir.save(&config)?;
        Ok(())
    })?;
    Ok(Initialised {
        site_id: config.site_id,
        organisation: None,
        stores: Vec::new(),
        auth_code: generated,
        api_token,
        tls_fingerprint,
    })
}

/// Checks that a PostgreSQL database can hold a new primary: reachable, its address
/// without a password (config.toml keeps it; the password comes from `PGPASSWORD`),
/// and no primary's state in it yet (a second machine serving a primary copies the
/// first one's config.toml and primary.key instead: a new key would make every
/// organisation's sync key wrong). Makes its tables.
fn check_new_database(url: &str) -> Result<(), NodeError> {
    check_database_address(url)?;
    let store = sitesync_postgres::PgStore::open(url)?;
    let orgs = sitesync_store::PrimaryStorage::orgs(&store)?;
    if !orgs.is_empty() {
        return Err(NodeError::Taken(format!(
            "the database {} already holds a primary ({} organisations): to serve it from this machine too, copy config.toml and primary.key from a machine that serves it",
            store.place(),
            orgs.len()
        )));
    }
    Ok(())
}

/// Refuses a database address that holds a password (config.toml would keep it).
fn check_database_address(url: &str) -> Result<(), NodeError> {
    let has_password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('@').next().filter(|_| rest.contains('@')))
        .is_some_and(|user| user.contains(':'));
    if has_password || url.contains("password=") {
        return Err(NodeError::BadRequest(
            "the database address holds a password, which config.toml would keep: give the address without it and the password in PGPASSWORD".into(),
        ));
    }
    Ok(())
}

/// Moves a primary's state from the SQLite file of its data folder into the PostgreSQL
/// database at `url` and points config.toml at it (`sitesync migrate --to`). Refused
/// while a `serve` runs on the folder, for a satellite, for a primary already in
/// PostgreSQL, and for a target holding a primary unless `replace`. The SQLite file
/// stays where it is, untouched. `progress` is told (rows copied, rows in all).
pub fn migrate_to_postgres(
    dir: &DataDir,
    url: &str,
    replace: bool,
    progress: &dyn Fn(u64, u64),
) -> Result<sitesync_postgres::Copied, NodeError> {
    let mut config = dir.load()?;
    if config.role != Role::Primary {
        return Err(NodeError::BadRequest(
            "only a primary moves to PostgreSQL; a satellite keeps its SQLite file".into(),
        ));
    }
    if let Some(current) = &config.database {
        return Err(NodeError::BadRequest(format!(
            "this primary's state is in PostgreSQL already ({current})"
        )));
    }
    if let Some(addr) = crate::running::running_address(dir) {
        return Err(NodeError::Taken(format!(
            "`sitesync serve` runs on this folder ({addr}): stop it first, so that nothing is written during the move"
        )));
    }
    check_database_address(url)?;
    let store = sitesync_postgres::PgStore::open(url)?;
    let copied = sitesync_postgres::migrate_sqlite(&dir.db_path(), &store, replace, progress)?;
    config.database = Some(url.to_string());
    dir.save(&config)?;
    Ok(copied)
}

/// The names a self-signed certificate is made for: those given, this machine's name,
/// the address it listens on when that names one host, and loopback.
fn certificate_names(listen: &str, given: Vec<String>) -> Vec<String> {
    let mut names = given;
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_string());
    }
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>()
        && !addr.ip().is_unspecified()
    {
        names.push(addr.ip().to_string());
    }
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    names.retain(|n| !n.is_empty());
    names.dedup();
    names
}

/// Enrols a satellite with its primary and makes its data folder.
pub async fn init_satellite(
    dir: &DataDir,
    options: SatelliteOptions,
) -> Result<Initialised, NodeError> {
    ensure_new(dir)?;
    if let Some(id) = options.site_id
        && id < 2
    {
        return Err(NodeError::BadRequest(format!(
            "site id {id} is not allowed: 1 is the primary, satellites use 2 or more"
        )));
    }
    if let Some(name) = &options.name {
        validate::name("site name", name)?;
    }
    check_primary_url(&options.primary_url).map_err(NodeError::BadRequest)?;
    check_listen(&options.listen).map_err(NodeError::BadRequest)?;
    let trust = satellite_trust(&options)?;
    let (auth_code, generated) = auth_code_or_new(options.auth_code.clone())?;
    let api_token = random_hex(32)?;
    let client = Client::new(&options.primary_url, &trust)?;
    let request = EnrolRequest {
        sync_key: options.sync_key.trim().to_string(),
        site_id: options.site_id,
        name: options.name.clone(),
        stores: options.stores.clone(),
        all_stores: options.all_stores,
    };
    // Each of the primary's addresses in turn, until one answers.
    let addresses = options.primary_url.split(',').count();
    let mut answer = client.enrol(&request).await;
    for _ in 1..addresses {
        match answer {
            Err(NodeError::Remote(ref e)) if e.starts_with("cannot reach") => {
                answer = client.enrol(&request).await;
            }
            _ => break,
        }
    }
    let answer = answer?;
    let config = Config {
        role: Role::Satellite,
        site_id: answer.site_id,
        name: options.name.unwrap_or_else(|| "satellite".to_string()),
        listen: options.listen,
        auth_code_hash: code_hash(&auth_code)?,
        api_token_hash: token_hash(&api_token),
        primary_url: Some(sitesync_service::config::primary_urls(&options.primary_url)),
        org_id: Some(answer.org.id),
        org_name: Some(answer.org.name.clone()),
        tls_cert: None,
        tls_key: None,
        primary_ca: matches!(trust, Trust::Ca(_)).then(|| "primary-ca.pem".into()),
        primary_fingerprint: match &trust {
            Trust::Pinned(fingerprint) => Some(fingerprint.clone()),
            _ => None,
        },
        public_url: None,
        database: None,
        registration: None,
        sessions: None,
        sites: None,
        files: None,
        mail: None,
    };
    let site_config: &SiteConfig = &answer.config;
    create(dir, |dir| {
        write_private(&dir.site_key_path(), answer.secret.as_bytes())?;
        if let Trust::Ca(path) = &trust {
            // The satellite keeps its own copy: the file given may not last.
            let pem = std::fs::read(path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            write_private(&dir.primary_ca_path(), &pem)?;
        }
        let store = open_private_db(dir, Role::Satellite)?;
        // A new site holds nothing to give back: this saves the primary's incarnation
        // (first: it forgets the assignment applied, which the configuration then sets).
        store.give_back(answer.org.id, answer.incarnation)?;
        store.save_site_config(site_config, Some(site_config.assignment_version))?;
        dir.save(&config)?;
        Ok(())
    })?;
    Ok(Initialised {
        site_id: answer.site_id,
        organisation: Some(answer.org),
        stores: site_config.stores.iter().map(|s| s.name.clone()).collect(),
        auth_code: generated,
        api_token,
        tls_fingerprint: None,
    })
}

/// How a new satellite is to trust its primary, checked before anything is sent.
fn satellite_trust(options: &SatelliteOptions) -> Result<Trust, NodeError> {
    let https = options.primary_url.starts_with("https://");
    let trust = match (&options.tls_fingerprint, &options.ca) {
        (Some(_), Some(_)) => {
            return Err(NodeError::BadRequest(
                "give --ca or --tls-fingerprint, not both".into(),
            ));
        }
        (Some(typed), None) => Trust::Pinned(tls::normalise_fingerprint(typed).ok_or_else(|| {
            NodeError::BadRequest(format!(
                "{typed:?} is not a SHA-256 fingerprint: expected 64 hex digits, with or without colons, as `sitesync init primary --self-signed` prints"
            ))
        })?),
        (None, Some(path)) => {
            tls::load_certs(path)?;
            Trust::Ca(path.clone())
        }
        (None, None) => Trust::System,
    };
    if trust != Trust::System && !https {
        return Err(NodeError::BadRequest(format!(
            "--ca and --tls-fingerprint are for a primary served over TLS: use an https:// URL, not {:?}",
            options.primary_url
        )));
    }
    Ok(trust)
}

fn ensure_new(dir: &DataDir) -> Result<(), NodeError> {
    if dir.is_initialised() {
        return Err(ConfigError::AlreadyInitialised(dir.root.clone()).into());
    }
    Ok(())
}

/// The code given (checked), or a new one to show the person.
fn auth_code_or_new(code: Option<String>) -> Result<(String, Option<String>), NodeError> {
    match code {
        Some(code) => {
            check_auth_code(&code).map_err(NodeError::BadRequest)?;
            Ok((code.trim().to_string(), None))
        }
        None => {
            let code = random_hex(5)?;
            Ok((code.clone(), Some(code)))
        }
    }
}

/// Creates the data folder and fills it; removes what it made if filling fails.
fn create(
    dir: &DataDir,
    fill: impl FnOnce(&DataDir) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let existed = dir.root.exists();
    std::fs::create_dir_all(&dir.root).map_err(|source| ConfigError::Io {
        path: dir.root.clone(),
        source,
    })?;
    let result = fill(dir);
    if result.is_err() {
        if existed {
            for path in [
                dir.config_path(),
                dir.db_path(),
                dir.primary_key_path(),
                dir.site_key_path(),
                dir.tls_cert_path(),
                dir.tls_key_path(),
                dir.primary_ca_path(),
            ] {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("db-wal"));
                let _ = std::fs::remove_file(path.with_extension("db-shm"));
            }
        } else {
            let _ = std::fs::remove_dir_all(&dir.root);
        }
    }
    result
}

/// Creates the database readable by its owner only.
fn open_private_db(dir: &DataDir, role: Role) -> Result<SqliteStore, NodeError> {
    let path = dir.db_path();
    write_private(&path, b"")?;
    let store = match role {
        Role::Primary => SqliteStore::open_primary(&path)?,
        Role::Satellite => SqliteStore::open(&path)?,
    };
    restrict(&path)?;
    Ok(store)
}

fn restrict(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| ConfigError::Io {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

/// What `rejoin` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejoined {
    /// The site id before.
    pub was: u32,
    /// The site id the primary gave now (the same when it was free).
    pub site_id: u32,
}

/// Enrols this satellite again with a primary that does not know it (restored from a
/// backup taken before it enrolled), keeping its records: asks for its site id, name and
/// stores again, and saves the new secret (and id). The primary's incarnation is not
/// saved, so the next sync gives back every record held here.
pub async fn rejoin(dir: &DataDir, sync_key: &str) -> Result<Rejoined, NodeError> {
    let mut config = dir.load()?;
    let Some(url) = config
        .primary_url
        .clone()
        .filter(|_| config.role == Role::Satellite)
    else {
        return Err(NodeError::BadRequest(
            "`rejoin` is for a satellite; this data folder is the primary's".into(),
        ));
    };
    let held = SqliteStore::open(&dir.db_path())?
        .saved_site_config()?
        .unwrap_or_default();
    let client = Client::new(&url, &config.primary_trust(dir))?;
    let mut request = EnrolRequest {
        sync_key: sync_key.trim().to_string(),
        site_id: Some(i64::from(config.site_id)),
        name: Some(config.name.clone()),
        // A site holding every store lists them all: it asks for every store instead.
        stores: match held.all_stores {
            true => Vec::new(),
            false => held.stores.iter().map(|s| s.name.clone()).collect(),
        },
        all_stores: held.all_stores,
    };
    let answer = match client.enrol(&request).await {
        // Its id or name was taken meanwhile by a site enrolled since the restore.
        Err(NodeError::Remote(reason)) => {
            tracing::info!(%reason, "rejoining under another site id and name");
            (request.site_id, request.name) = (None, None);
            client.enrol(&request).await?
        }
        answer => answer?,
    };
    write_private(&dir.site_key_path(), answer.secret.as_bytes())?;
    let was = config.site_id;
    config.site_id = answer.site_id;
    dir.save(&config)?;
    Ok(Rejoined {
        was,
        site_id: answer.site_id,
    })
}
