//! [`PrimaryStorage`]: the administration of organisations, stores, sites, assignments
//! and restricted collections, and the primary's sync paths (serving pulls here,
//! applying pushed batches in `sync`).

use crate::journal::{Setting, meta, meta_u64, set_meta};
use crate::licences;
use crate::names::{
    self, find_org, find_site, find_store, org_names, org_row, site_names, store_names,
};
use crate::sync::{apply_group, pull_page, restricted_collections, routed_after};
use crate::{Error, SqliteStore, id, sql};
use rusqlite::{OptionalExtension, Transaction, params};
use sitesync_core::{Assignment, Licence, OrgId, SiteId, StoreId, validate};
use sitesync_protocol::SiteConfig;
use sitesync_store::names::check_free;
use sitesync_store::{
    Contact, Org, PrimaryStorage, PulledPage, PushBatch, PushOutcome, SiteRow, StoreError,
    StoreRow, site_config,
};
use std::collections::BTreeSet;

impl PrimaryStorage for SqliteStore {
    /// Creates an organisation.
    fn create_org(&self, name: &str, now_ms: u64) -> Result<Org, StoreError> {
        validate::name("organisation name", name)?;
        self.write(|tx| {
            check_free("organisation", name, org_names(tx)?, None)?;
            tx.execute(
                "INSERT INTO orgs (name, created_at) VALUES (?1, ?2)",
                params![name, sql(now_ms)],
            )?;
            let org = id(tx.last_insert_rowid());
            licences::create(tx, org)?;
            Ok(Org {
                id: org,
                name: name.to_string(),
                key_generation: 1,
                time_zone: "UTC".into(),
            })
        })
    }

    /// Every organisation, by id.
    fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT id, name, key_generation, time_zone FROM orgs WHERE deleted_at IS NULL ORDER BY id")?;
            let rows = stmt.query_map([], org_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// An organisation by id or name.
    fn org(&self, id_or_name: &str) -> Result<Org, StoreError> {
        self.read(|tx| find_org(tx, id_or_name))?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no organisation {id_or_name:?}; `sitesync org list` shows them"
            ))
        })
    }

    /// An organisation by id only (a name that looks like an id never matches).
    fn org_by_id(&self, org: OrgId) -> Result<Org, StoreError> {
        self.read(|tx| names::org_by_id(tx, org))?
            .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))
    }

    /// A satellite by id only.
    fn site_by_id(&self, site: SiteId) -> Result<SiteRow, StoreError> {
        self.read(|tx| site_row(tx, site))?
            .ok_or_else(|| StoreError::NotFound(format!("no site {site}")))
    }

    /// Retires an organisation's sync key and makes a new one current.
    fn rotate_key(&self, org: OrgId) -> Result<Org, StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE orgs SET key_generation = key_generation + 1 WHERE id = ?1",
                [sql(org)],
            )?;
            Ok(find_org(tx, &org.to_string())?
                .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))?)
        })
    }

    fn licence(&self, org: OrgId) -> Result<Licence, StoreError> {
        self.read(|tx| licences::read(tx, org))
    }

    fn set_licence(&self, org: OrgId, licence: &Licence) -> Result<(), StoreError> {
        self.write(|tx| {
            licences::read(tx, org)?;
            licences::write(tx, org, licence)
        })
    }

    fn rejections_by_site(&self, org: OrgId) -> Result<Vec<(SiteId, u64, String)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT r.site, COUNT(*),
                        (SELECT reason FROM rejections n WHERE n.org = ?1 AND n.site = r.site
                          ORDER BY n.id DESC LIMIT 1)
                   FROM rejections r WHERE r.org = ?1 GROUP BY r.site ORDER BY r.site",
            )?;
            let rows = stmt.query_map([sql(org)], |row| {
                Ok((row.get(0)?, id(row.get(1)?), row.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn delete_org(&self, org: OrgId, now_ms: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            let enrolled: i64 = tx.query_row(
                "SELECT COUNT(*) FROM sites WHERE org = ?1 AND revoked = 0",
                [sql(org)],
                |row| row.get(0),
            )?;
            if enrolled > 0 {
                return Err(StoreError::Conflict(format!(
                    "the organisation still has {enrolled} enrolled site(s): revoke them first"
                ))
                .into());
            }
            tx.execute(
                "DELETE FROM site_stores WHERE site IN (SELECT id FROM sites WHERE org = ?1)",
                [sql(org)],
            )?;
            for table in [
                "records",
                "rejections",
                "conflicts",
                "restricted",
                "stores",
                "members",
                "invitations",
                "licence_modules",
                "licences",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE org = ?1"), [sql(org)])?;
            }
            let renamed = tx.execute(
                "UPDATE orgs SET deleted_at = ?2, name = '(deleted ' || id || ')'
                  WHERE id = ?1 AND deleted_at IS NULL",
                params![sql(org), sql(now_ms)],
            )?;
            match renamed {
                1 => Ok(()),
                _ => Err(StoreError::NotFound(format!("no organisation {org}")).into()),
            }
        })
    }

    fn set_time_zone(&self, org: OrgId, zone: &str) -> Result<Org, StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE orgs SET time_zone = ?2 WHERE id = ?1",
                params![sql(org), zone],
            )?;
            Ok(names::org_by_id(tx, org)?
                .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))?)
        })
    }

    /// Creates a store in an organisation.
    fn create_store(&self, org: OrgId, name: &str) -> Result<StoreRow, StoreError> {
        validate::name("store name", name)?;
        self.write(|tx| {
            check_free("store", name, store_names(tx, org)?, None)?;
            tx.execute(
                "INSERT INTO stores (org, name) VALUES (?1, ?2)",
                params![sql(org), name],
            )?;
            Ok(StoreRow {
                id: id(tx.last_insert_rowid()),
                org,
                name: name.to_string(),
            })
        })
    }

    /// The stores of an organisation, by id.
    fn stores(&self, org: OrgId) -> Result<Vec<StoreRow>, StoreError> {
        self.read(|tx| org_stores(tx, org))
    }

    /// A store of an organisation, by id or name.
    fn store(&self, org: OrgId, id_or_name: &str) -> Result<StoreRow, StoreError> {
        self.read(|tx| find_store(tx, org, id_or_name))?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no store {id_or_name:?} in this organisation; `sitesync store list` shows them"
                ))
            })
    }

    fn rename_store(&self, org: OrgId, store: StoreId, name: &str) -> Result<StoreRow, StoreError> {
        validate::name("store name", name)?;
        self.write(|tx| {
            check_free("store", name, store_names(tx, org)?, Some(store))?;
            let n = tx.execute(
                "UPDATE stores SET name = ?3 WHERE org = ?1 AND id = ?2",
                params![sql(org), sql(store), name],
            )?;
            if n == 0 {
                return Err(
                    StoreError::NotFound(format!("no store {store} in this organisation")).into(),
                );
            }
            Ok(StoreRow {
                id: store,
                org,
                name: name.to_string(),
            })
        })
    }

    /// Refused while a site holds the store by name (it would lose its data without
    /// being reassigned), or while the store holds records, unless `purge`. Sites that
    /// hold every store are given a new assignment version, so they purge it too.
    fn delete_store(&self, org: OrgId, store: StoreId, purge: bool) -> Result<u64, StoreError> {
        self.write(|tx| {
            let held: Vec<String> = tx
                .prepare("SELECT s.name FROM site_stores ss JOIN sites s ON s.id = ss.site WHERE ss.store = ?1 AND s.revoked = 0")?
                .query_map([sql(store)], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            if !held.is_empty() {
                return Err(StoreError::Refused(format!(
                    "store {store} is assigned to {}; assign those sites other stores first (`sitesync site assign`)",
                    held.join(", ")
                ))
                .into());
            }
            let records: i64 = tx.query_row(
                "SELECT COUNT(*) FROM records WHERE org = ?1 AND store = ?2",
                params![sql(org), sql(store)],
                |row| row.get(0),
            )?;
            if records > 0 && !purge {
                return Err(StoreError::Refused(format!(
                    "store {store} holds {records} records; delete them first, or purge them with the store (--purge)"
                ))
                .into());
            }
            tx.execute("DELETE FROM records WHERE org = ?1 AND store = ?2", params![sql(org), sql(store)])?;
            tx.execute("DELETE FROM site_stores WHERE store = ?1", [sql(store)])?;
            let n = tx.execute("DELETE FROM stores WHERE org = ?1 AND id = ?2", params![sql(org), sql(store)])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no store {store} in this organisation")).into());
            }
            tx.execute(
                "UPDATE sites SET assignment_version = assignment_version + 1 WHERE org = ?1 AND all_stores = 1",
                [sql(org)],
            )?;
            Ok(id(records))
        })
    }

    /// Registers a satellite enrolled at `now_ms`. Takes `requested` as its id when free
    /// (2 or more), or the next free id; `secret_hash` gives the hash of the secret of
    /// the site with a given id. A site without a name is called `satellite-ID`.
    fn create_site(
        &self,
        org: OrgId,
        requested: Option<i64>,
        name: Option<&str>,
        secret_hash: &dyn Fn(SiteId) -> String,
        assignment: &Assignment,
        now_ms: u64,
    ) -> Result<SiteId, StoreError> {
        if let Some(name) = name {
            validate::name("site name", name)?;
        }
        self.write(|tx| {
            licences::admit_site(tx, org)?;
            let site = free_site_id(tx, requested)?;
            let name = name.map_or_else(|| format!("satellite-{site}"), str::to_string);
            check_free("site", &name, site_names(tx, Some(org))?, None)?;
            tx.execute(
                "INSERT INTO sites (id, org, name, secret_hash, all_stores, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![site, sql(org), name, secret_hash(site), assignment.all_stores, sql(now_ms)],
            )?;
            for store in &assignment.stores {
                tx.execute("INSERT INTO site_stores (site, store) VALUES (?1, ?2)", params![site, sql(*store)])?;
            }
            Ok(site)
        })
    }

    /// Every satellite, by id.
    fn sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.read(|tx| {
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM sites ORDER BY id")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            ids.into_iter()
                .filter_map(|n| SiteId::try_from(n).ok())
                // Sites of a deleted organisation read as none.
                .filter_map(|n| site_row(tx, n).transpose())
                .collect()
        })
    }

    /// A satellite by id, or by name.
    fn site(&self, id_or_name: &str) -> Result<SiteRow, StoreError> {
        self.read(|tx| match find_site(tx, id_or_name)? {
            Some(n) => site_row(tx, n),
            None => Ok(None),
        })?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "no site {id_or_name:?}; `sitesync site list` shows them"
            ))
        })
    }

    fn rename_site(&self, site: SiteId, name: &str) -> Result<SiteRow, StoreError> {
        validate::name("site name", name)?;
        self.write(|tx| {
            let row = existing_site(tx, site)?;
            check_free(
                "site",
                name,
                site_names(tx, Some(row.org))?,
                Some(u64::from(site)),
            )?;
            tx.execute(
                "UPDATE sites SET name = ?2 WHERE id = ?1",
                params![site, name],
            )?;
            existing_site(tx, site)
        })
    }

    /// Only a revoked site may be removed: one still enrolled would be refused at its
    /// next request without being told why.
    fn remove_site(&self, site: SiteId) -> Result<(), StoreError> {
        self.write(|tx| {
            let row = existing_site(tx, site)?;
            if !row.revoked {
                return Err(StoreError::Refused(format!(
                    "site {site} ({:?}) is still enrolled; revoke it first (`sitesync site revoke {site}`)",
                    row.name
                ))
                .into());
            }
            tx.execute("DELETE FROM site_stores WHERE site = ?1", [site])?;
            tx.execute("DELETE FROM sites WHERE id = ?1", [site])?;
            Ok(())
        })
    }

    /// Changes a site's stores. Stores taken away stay writable ("leaving") until the
    /// site says it has pushed its last changes for them and purged them.
    fn assign(&self, site: SiteId, assignment: &Assignment) -> Result<u64, StoreError> {
        self.write(|tx| {
            // A site that held every store held them without rows here: give each of
            // its organisation's stores a row first, so those it loses are "leaving" too.
            tx.execute(
                "INSERT OR IGNORE INTO site_stores (site, store)
                 SELECT s.id, st.id FROM sites s JOIN stores st ON st.org = s.org
                 WHERE s.id = ?1 AND s.all_stores = 1",
                [site],
            )?;
            tx.execute(
                "UPDATE site_stores SET leaving = 1 WHERE site = ?1",
                [site],
            )?;
            for store in &assignment.stores {
                tx.execute(
                    "INSERT INTO site_stores (site, store) VALUES (?1, ?2)
                     ON CONFLICT (site, store) DO UPDATE SET leaving = 0",
                    params![site, sql(*store)],
                )?;
            }
            tx.execute(
                "UPDATE sites SET all_stores = ?2, assignment_version = assignment_version + 1 WHERE id = ?1",
                params![site, assignment.all_stores],
            )?;
            if assignment.all_stores {
                tx.execute("UPDATE site_stores SET leaving = 0 WHERE site = ?1", [site])?;
            }
            Ok(id(tx.query_row("SELECT assignment_version FROM sites WHERE id = ?1", [site], |row| row.get(0))?))
        })
    }

    /// Notes sync requests from sites, in one transaction: when each last came, how far
    /// it has pulled, and which assignment it has applied (forgetting the stores it has
    /// purged since).
    fn touch_sites(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        self.write_recoverable(|tx| {
            for c in contacts {
                tx.prepare_cached(
                    "UPDATE sites SET last_contact = MAX(COALESCE(last_contact, 0), ?2),
                            pull_cursor = MAX(pull_cursor, COALESCE(?3, 0)) WHERE id = ?1",
                )?
                .execute(params![c.site, sql(c.at), c.pull_cursor.map(sql)])?;
                if let Some(version) = &c.version {
                    let changed =
                        "UPDATE sites SET version = ?2 WHERE id = ?1 AND version IS NOT ?2";
                    tx.prepare_cached(changed)?
                        .execute(params![c.site, version])?;
                }
                if let Some((at, error)) = &c.error {
                    tx.prepare_cached(
                        "UPDATE sites SET last_error_at = ?2, last_error = ?3
                          WHERE id = ?1 AND COALESCE(last_error_at, 0) < ?2",
                    )?
                    .execute(params![c.site, sql(*at), error])?;
                }
                if let Some(version) = c.applied_assignment {
                    tx.prepare_cached(
                        "DELETE FROM site_stores WHERE site = ?1 AND leaving = 1
                           AND (SELECT assignment_version FROM sites WHERE id = ?1) <= ?2",
                    )?
                    .execute(params![c.site, sql(version)])?;
                }
            }
            Ok(())
        })
    }

    /// Revokes a site: its credentials stop working.
    ///
    /// Its organisation's sync key is rotated in the same transaction: whoever ran the
    /// site knew the key, and must not enrol again with it. Returns the organisation,
    /// at its new key generation.
    fn revoke_site(&self, site: SiteId) -> Result<Org, StoreError> {
        self.write(|tx| {
            let org: i64 = tx
                .query_row("SELECT org FROM sites WHERE id = ?1", [site], |row| {
                    row.get(0)
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("no site {site}")))?;
            tx.execute("UPDATE sites SET revoked = 1 WHERE id = ?1", [site])?;
            tx.execute(
                "UPDATE orgs SET key_generation = key_generation + 1 WHERE id = ?1",
                [org],
            )?;
            Ok(find_org(tx, &org.to_string())?
                .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))?)
        })
    }

    /// What a site holds and may write, as sent to it.
    fn site_config(&self, site: &SiteRow) -> Result<SiteConfig, StoreError> {
        self.read(|tx| {
            let stores = org_stores(tx, site.org)?;
            Ok(site_config(
                site,
                stores,
                restricted_collections(tx, site.org)?,
            ))
        })
    }

    /// Makes a collection writable on the primary only.
    fn restrict(&self, org: OrgId, collection: &str) -> Result<(), StoreError> {
        validate::collection(collection)?;
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO restricted (org, collection) VALUES (?1, ?2)",
                params![sql(org), collection],
            )?;
            Ok(())
        })
    }

    /// The collections only the primary may write.
    fn restricted(&self, org: OrgId) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            let mut names: Vec<String> = restricted_collections(tx, org)?.into_iter().collect();
            names.sort();
            Ok(names)
        })
    }

    fn unrestrict(&self, org: OrgId, collection: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM restricted WHERE org = ?1 AND collection = ?2",
                params![sql(org), collection],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "collection {collection:?} is not restricted; `sitesync collection list` shows those that are"
                ))
                .into());
            }
            Ok(())
        })
    }

    /// Applies batches pushed by satellites, all in one transaction (group commit: one
    /// durable commit serves every satellite whose push arrived meanwhile). A batch that
    /// fails is undone alone and answered with its error, and the others still commit.
    ///
    /// Changes at or below a site's acknowledged outbox sequence were applied before
    /// (the satellite is retrying after a lost answer) and are skipped. Each other change
    /// is checked against the site's assignment and the restricted collections, then
    /// merged; a refused change is recorded in `rejections` with its reason.
    fn apply_pushes(
        &self,
        batches: &[PushBatch],
        now_ms: u64,
    ) -> Result<Vec<Result<PushOutcome, StoreError>>, StoreError> {
        // A batch fails on its own only when a stored record is unreadable, so the group
        // first runs without a savepoint per batch (each copies every page it touches
        // before changing it, which costs a fifth of a push). If a batch fails, the
        // whole group is undone and run again with one.
        let outcomes = self
            .write(|tx| apply_group(tx, batches, now_ms, false))
            .or_else(|_| self.write(|tx| apply_group(tx, batches, now_ms, true)))?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(|e| self.store_error(e)))
            .collect())
    }

    /// One page of the records routed to a site after `cursor`: organisation-wide
    /// records and those of the assigned stores, or only of `only` (a backfill of newly
    /// assigned stores, which excludes organisation-wide records the site already has).
    /// Returns the records, the next cursor and whether more are waiting.
    fn pull(
        &self,
        org: OrgId,
        assignment: &Assignment,
        only: Option<&BTreeSet<StoreId>>,
        cursor: u64,
        limit: usize,
    ) -> Result<PulledPage, StoreError> {
        self.read(|tx| {
            let (records, next, more) = pull_page(tx, org, assignment, only, cursor, limit)?;
            Ok(PulledPage {
                records,
                next,
                more,
                head: meta_u64(tx, Setting::Seq)?,
                incarnation: meta_u64(tx, Setting::Incarnation)?,
            })
        })
    }

    fn incarnation(&self) -> Result<u64, StoreError> {
        self.read(|tx| meta_u64(tx, Setting::Incarnation))
    }

    fn back_up(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        crate::backup::back_up(self, dest)
    }

    fn new_incarnation(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.write(|tx| start_incarnation(tx, now_ms))
    }

    fn routed_after(
        &self,
        org: OrgId,
        assignment: &Assignment,
        cursor: u64,
    ) -> Result<u64, StoreError> {
        self.read(|tx| routed_after(tx, org, assignment, cursor))
    }
}

/// The next free site id, or `requested` when it is allowed and free.
fn free_site_id(tx: &Transaction, requested: Option<i64>) -> Result<SiteId, Error> {
    match requested {
        Some(n) if n < 2 => Err(StoreError::Refused(format!(
            "site id {n} is not allowed: 1 is the primary, satellites use 2 or more"
        ))
        .into()),
        Some(n) => {
            let n = SiteId::try_from(n).map_err(|_| {
                StoreError::Refused(format!(
                    "site id {n} is too large; the limit is {}",
                    SiteId::MAX
                ))
            })?;
            let holder: Option<String> = tx
                .query_row("SELECT name FROM sites WHERE id = ?1", [n], |row| {
                    row.get(0)
                })
                .optional()?;
            if let Some(holder) = holder {
                return Err(StoreError::Conflict(format!(
                    "site id {n} is taken by site {holder:?}"
                ))
                .into());
            }
            Ok(n)
        }
        None => {
            let max: i64 = tx.query_row("SELECT COALESCE(MAX(id), 1) FROM sites", [], |row| {
                row.get(0)
            })?;
            Ok(SiteId::try_from(max + 1)
                .map_err(|_| StoreError::Refused("no site id is free".into()))?)
        }
    }
}

/// A site that must exist.
fn existing_site(tx: &Transaction, site: SiteId) -> Result<SiteRow, Error> {
    Ok(site_row(tx, site)?.ok_or_else(|| {
        StoreError::NotFound(format!("no site {site}; `sitesync site list` shows them"))
    })?)
}

fn org_stores(tx: &Transaction, org: OrgId) -> Result<Vec<StoreRow>, Error> {
    let mut stmt = tx.prepare_cached("SELECT id, name FROM stores WHERE org = ?1 ORDER BY id")?;
    let rows = stmt.query_map([sql(org)], |row| {
        Ok(StoreRow {
            id: id(row.get(0)?),
            org,
            name: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn site_row(tx: &Transaction, site: SiteId) -> Result<Option<SiteRow>, Error> {
    let row = tx
        .query_row(
            "SELECT org, name, secret_hash, all_stores, assignment_version, last_contact, pull_cursor, revoked, created_at,
                    version, last_error_at, last_error
             FROM sites WHERE id = ?1
              AND org IN (SELECT id FROM orgs WHERE deleted_at IS NULL)",
            [site],
            |row| {
                Ok(SiteRow {
                    id: site,
                    org: id(row.get(0)?),
                    name: row.get(1)?,
                    secret_hash: row.get(2)?,
                    assignment: Assignment { all_stores: row.get(3)?, stores: Default::default() },
                    assignment_version: id(row.get(4)?),
                    last_contact: row.get::<_, Option<i64>>(5)?.map(id),
                    pull_cursor: id(row.get(6)?),
                    revoked: row.get(7)?,
                    enrolled_at: id(row.get(8)?),
                    version: row.get(9)?,
                    last_error: match (row.get::<_, Option<i64>>(10)?, row.get(11)?) {
                        (Some(at), Some(error)) => Some((id(at), error)),
                        _ => None,
                    },
                })
            },
        )
        .optional()?;
    let Some(mut row) = row else { return Ok(None) };
    let mut stmt =
        tx.prepare_cached("SELECT store FROM site_stores WHERE site = ?1 AND leaving = 0")?;
    row.assignment.stores = stmt
        .query_map([site], |r| r.get::<_, i64>(0))?
        .map(|r| r.map(id))
        .collect::<Result<_, _>>()?;
    Ok(Some(row))
}

/// Whether the database file is the one its incarnation belongs to.
pub(crate) fn same_file(tx: &Transaction, file: &str) -> Result<bool, Error> {
    Ok(meta(tx, Setting::DatabaseFile)?.as_deref() == Some(file)
        && meta_u64(tx, Setting::Incarnation)? != 0)
}

/// Starts a new incarnation when the database file is not the one the incarnation
/// belongs to: a copy put in its place (its state may have gone back), or a primary
/// opened for the first time.
pub(crate) fn follow_file(tx: &Transaction, file: &str) -> Result<(), Error> {
    if same_file(tx, file)? {
        return Ok(());
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let incarnation = start_incarnation(tx, now_ms)?;
    if meta(tx, Setting::DatabaseFile)?.is_some() {
        tracing::warn!(
            incarnation,
            "this database file is not the one the primary last ran on (restored or copied?): \
             a new incarnation starts, and satellites will give back what it may lack"
        );
    }
    set_meta(tx, Setting::DatabaseFile, file)
}

/// Starts a new incarnation: the time it begins in nanoseconds (`now_ms`, then counted
/// up), always above the last one.
fn start_incarnation(tx: &Transaction, now_ms: u64) -> Result<u64, Error> {
    let last = meta_u64(tx, Setting::Incarnation)?;
    let next = now_ms.saturating_mul(1_000_000).max(last + 1);
    set_meta(tx, Setting::Incarnation, &next.to_string())?;
    Ok(next)
}
