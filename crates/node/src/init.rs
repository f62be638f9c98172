//! `sitesync init primary` and `sitesync init satellite`: making a data folder.
//!
//! Either succeeds whole or leaves no data folder behind: the folder is made only once
//! every check (and, for a satellite, the enrolment) has passed, and removed again if
//! writing it fails half-way. `config.toml` is written last, so a folder without one is
//! never mistaken for a site.

use crate::client::Client;
use crate::config::{
    Config, ConfigError, DataDir, Role, check_auth_code, check_primary_url, write_private,
};
use crate::error::NodeError;
use crate::secrets::{code_hash, random_hex, token_hash};
use crate::site::SITE_CONFIG;
use sitesync_core::validate;
use sitesync_protocol::{EnrolRequest, OrgRef, SiteConfig};
use sitesync_store::Store;
use std::path::Path;

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
}

/// Makes a primary's data folder.
pub fn init_primary(
    dir: &DataDir,
    listen: &str,
    auth_code: Option<String>,
) -> Result<Initialised, NodeError> {
    ensure_new(dir)?;
    let (auth_code, generated) = auth_code_or_new(auth_code)?;
    let api_token = random_hex(32)?;
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
    };
    let primary_key = random_hex(32)?;
    create(dir, |dir| {
        write_private(&dir.primary_key_path(), primary_key.as_bytes())?;
        open_private_db(dir)?.serve_pulls()?;
        dir.save(&config)?;
        Ok(())
    })?;
    Ok(Initialised {
        site_id: config.site_id,
        organisation: None,
        stores: Vec::new(),
        auth_code: generated,
        api_token,
    })
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
    let (auth_code, generated) = auth_code_or_new(options.auth_code.clone())?;
    let api_token = random_hex(32)?;
    let client = Client::new(&options.primary_url)?;
    let answer = client
        .enrol(&EnrolRequest {
            sync_key: options.sync_key.trim().to_string(),
            site_id: options.site_id,
            name: options.name.clone(),
            stores: options.stores.clone(),
            all_stores: options.all_stores,
        })
        .await?;
    let config = Config {
        role: Role::Satellite,
        site_id: answer.site_id,
        name: options.name.unwrap_or_else(|| "satellite".to_string()),
        listen: options.listen,
        auth_code_hash: code_hash(&auth_code)?,
        api_token_hash: token_hash(&api_token),
        primary_url: Some(client.base().to_string()),
        org_id: Some(answer.org.id),
        org_name: Some(answer.org.name.clone()),
    };
    let site_config: &SiteConfig = &answer.config;
    create(dir, |dir| {
        write_private(&dir.site_key_path(), answer.secret.as_bytes())?;
        let store = open_private_db(dir)?;
        store.set_meta(
            SITE_CONFIG,
            &serde_json::to_string(site_config).unwrap_or_default(),
        )?;
        store.set_meta(
            "assignment_applied",
            &site_config.assignment_version.to_string(),
        )?;
        dir.save(&config)?;
        Ok(())
    })?;
    Ok(Initialised {
        site_id: answer.site_id,
        organisation: Some(answer.org),
        stores: site_config.stores.iter().map(|s| s.name.clone()).collect(),
        auth_code: generated,
        api_token,
    })
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
fn open_private_db(dir: &DataDir) -> Result<Store, NodeError> {
    let path = dir.db_path();
    write_private(&path, b"")?;
    let store = Store::open(&path)?;
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
