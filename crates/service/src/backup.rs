//! Backing the primary up while it serves, and restoring it from a backup: one command
//! each. A backup is a folder: the database (one consistent snapshot) and the files
//! beside it that the primary cannot run without (its configuration, `primary.key`,
//! from which every site's secret is derived, and its TLS certificate and key).

use crate::actor::Actor;
use crate::config::{ConfigError, DataDir, Role};
use crate::error::ServiceError;
use crate::site::Site;
use serde::Serialize;
use sitesync_sqlite::SqliteStore;
use std::path::{Path, PathBuf};

/// What a backup holds.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The backup's folder.
    pub folder: PathBuf,
    /// Organisations in it.
    pub organisations: u64,
    /// Satellites in it.
    pub sites: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The primary's new incarnation: satellites that saved another give back what
    /// they hold when they next connect.
    pub incarnation: u64,
    /// Where the data folder's files that the backup replaced were moved.
    pub set_aside: Option<PathBuf>,
    /// Organisations the restored primary knows.
    pub organisations: u64,
    /// Satellites the restored primary knows.
    pub sites: u64,
}

/// The files copied with the database, by their paths in a data folder.
fn companions(dir: &DataDir) -> [PathBuf; 4] {
    [
        dir.config_path(),
        dir.primary_key_path(),
        dir.tls_cert_path(),
        dir.tls_key_path(),
    ]
}

impl Site {
    /// Backs the primary up into `dest`, a folder that must be new or empty, while it
    /// goes on serving.
    pub fn back_up(&self, actor: Actor, dest: &Path) -> Result<Backup, ServiceError> {
        actor.local("back the primary up")?;
        let primary = self.primary()?;
        let io = |source| ConfigError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if dest
            .read_dir()
            .is_ok_and(|mut entries| entries.next().is_some())
        {
            return Err(ServiceError::Input(format!(
                "{} is not empty: give a new folder for the backup",
                dest.display()
            )));
        }
        make_private_folder(dest).map_err(io)?;
        let to = DataDir::new(dest);
        primary.back_up(&to.db_path())?;
        copy_companions(&self.dir, &to)?;
        Ok(Backup {
            folder: dest.to_path_buf(),
            organisations: primary.orgs()?.len() as u64,
            sites: primary.sites()?.len() as u64,
        })
    }
}

/// Puts the primary's backup in `src` in place of the primary in `dir`, which nothing
/// may be serving (the caller holds its lock). What the data folder held is moved into
/// a folder beside, first. The restored primary starts a new incarnation at `now_ms`.
pub fn restore(dir: &DataDir, src: &Path, now_ms: u64) -> Result<Restored, ServiceError> {
    let backup = DataDir::new(src);
    if !backup.is_initialised() {
        return Err(ServiceError::Input(format!(
            "there is no backup in {}: give the folder `sitesync backup` made",
            src.display()
        )));
    }
    if backup.load()?.role != Role::Primary {
        return Err(ServiceError::Input(format!(
            "{} is a satellite's folder: a satellite gets its records back from the primary by enrolling again (`sitesync init satellite`)",
            src.display()
        )));
    }
    backup.read_secret(&backup.primary_key_path())?;
    SqliteStore::check_backup(&backup.db_path())?;
    let set_aside = set_aside(dir, now_ms)?;
    copy_companions(&backup, dir)?;
    SqliteStore::restore_primary(&backup.db_path(), &dir.db_path(), now_ms)?;
    let site = Site::open(dir.clone())?;
    let primary = site.primary()?;
    Ok(Restored {
        incarnation: primary.incarnation()?,
        set_aside,
        organisations: primary.orgs()?.len() as u64,
        sites: primary.sites()?.len() as u64,
    })
}

/// Moves the data folder's database (with its log) and companions into a new folder
/// inside it, `before-restore-<time>`; `None` when it held none.
fn set_aside(dir: &DataDir, now_ms: u64) -> Result<Option<PathBuf>, ServiceError> {
    let db = dir.db_path();
    let files: Vec<PathBuf> = ["db-wal", "db-shm"]
        .iter()
        .map(|log| db.with_extension(log))
        .chain([db.clone()])
        .chain(companions(dir))
        .filter(|p| p.exists())
        .collect();
    if files.is_empty() {
        std::fs::create_dir_all(&dir.root).map_err(|source| ConfigError::Io {
            path: dir.root.clone(),
            source,
        })?;
        return Ok(None);
    }
    // Named by the time, without colons (which some file systems refuse).
    let at = sitesync_core::time::rfc3339(now_ms).replace(':', "-");
    let aside = dir.root.join(format!("before-restore-{at}"));
    make_private_folder(&aside).map_err(|source| ConfigError::Io {
        path: aside.clone(),
        source,
    })?;
    for file in files {
        let name = file.file_name().map(PathBuf::from).unwrap_or_default();
        std::fs::rename(&file, aside.join(name)).map_err(|source| ConfigError::Io {
            path: file.clone(),
            source,
        })?;
    }
    Ok(Some(aside))
}

/// Copies the companions of the database that `from` holds into `to`.
fn copy_companions(from: &DataDir, to: &DataDir) -> Result<(), ServiceError> {
    for (source, dest) in companions(from).into_iter().zip(companions(to)) {
        if source.exists() {
            std::fs::copy(&source, &dest).map_err(|e| ConfigError::Io {
                path: dest.clone(),
                source: e,
            })?;
        }
    }
    Ok(())
}

/// Creates a folder only its owner may open (it holds the primary's secrets).
fn make_private_folder(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}
