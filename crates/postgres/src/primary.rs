//! [`PrimaryStorage`]: the administration of organisations, stores, sites, assignments
//! and restricted collections, and the sync paths (in `sync`).
//!
//! Writes that check a name is free, or count sites against a licence, take the
//! administration's advisory lock first: processes side by side then check and write
//! one after the other, as SQLite's single writer does.

use crate::names::{find_org, find_site, find_store, org_by_id, org_names, org_row};
use crate::names::{site_names, store_names};
use crate::records::Head;
use crate::sync::{apply_group, pull_page, restricted_collections, routed_after};
use crate::{Error, PgStore, Tx, id, licences, sql};
use sitesync_core::{Assignment, Licence, OrgId, SiteId, StoreId, validate};
use sitesync_protocol::SiteConfig;
use sitesync_store::names::check_free;
use sitesync_store::{
    Contact, Org, PrimaryStorage, PulledPage, PushBatch, PushOutcome, SiteRow, StoreError,
    StoreRow, site_config,
};
use std::collections::BTreeSet;

/// The advisory lock of writes that check names or the site limit.
const ADMIN_LOCK: i64 = 0x5175_6e63_0002;

fn admin_lock(tx: &mut Tx) -> Result<(), Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])?;
    Ok(())
}

impl PrimaryStorage for PgStore {
    fn create_org(&self, name: &str, now_ms: u64) -> Result<Org, StoreError> {
        validate::name("organisation name", name)?;
        self.write(|tx| {
            admin_lock(tx)?;
            check_free("organisation", name, org_names(tx)?, None)?;
            let row = tx.query_one(
                "INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id",
                &[&name, &sql(now_ms)],
            )?;
            let org = id(row.get(0));
            licences::create(tx, org)?;
            Ok(Org {
                id: org,
                name: name.to_string(),
                key_generation: 1,
                time_zone: "UTC".into(),
            })
        })
    }

    fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT id, name, key_generation, time_zone FROM orgs WHERE deleted_at IS NULL ORDER BY id",
                &[],
            )?;
            Ok(rows.iter().map(org_row).collect())
        })
    }

    fn org(&self, id_or_name: &str) -> Result<Org, StoreError> {
        self.read(|tx| find_org(tx, id_or_name))?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no organisation {id_or_name:?}; `sitesync org list` shows them"
            ))
        })
    }

    fn org_by_id(&self, org: OrgId) -> Result<Org, StoreError> {
        self.read(|tx| org_by_id(tx, org))?
            .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))
    }

    fn site_by_id(&self, site: SiteId) -> Result<SiteRow, StoreError> {
        self.read(|tx| site_row(tx, site))?
            .ok_or_else(|| StoreError::NotFound(format!("no site {site}")))
    }

    fn rotate_key(&self, org: OrgId) -> Result<Org, StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE orgs SET key_generation = key_generation + 1 WHERE id = $1",
                &[&sql(org)],
            )?;
            existing_org(tx, org)
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
            let rows = tx.query(
                "SELECT r.site, COUNT(*),
                        (SELECT reason FROM rejections n WHERE n.org = $1 AND n.site = r.site
                          ORDER BY n.id DESC LIMIT 1)
                   FROM rejections r WHERE r.org = $1 GROUP BY r.site ORDER BY r.site",
                &[&sql(org)],
            )?;
            rows.iter()
                .map(|row| Ok((site_id(row.get(0))?, id(row.get(1)), row.get(2))))
                .collect()
        })
    }

    fn delete_org(&self, org: OrgId, now_ms: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            admin_lock(tx)?;
            let enrolled: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM sites WHERE org = $1 AND NOT revoked",
                    &[&sql(org)],
                )?
                .get(0);
            if enrolled > 0 {
                return Err(StoreError::Conflict(format!(
                    "the organisation still has {enrolled} enrolled site(s): revoke them first"
                ))
                .into());
            }
            tx.execute(
                "DELETE FROM site_stores WHERE site IN (SELECT id FROM sites WHERE org = $1)",
                &[&sql(org)],
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
                tx.execute_text(&format!("DELETE FROM {table} WHERE org = $1"), &[&sql(org)])?;
            }
            let renamed = tx.execute(
                "UPDATE orgs SET deleted_at = $2, name = '(deleted ' || id || ')'
                  WHERE id = $1 AND deleted_at IS NULL",
                &[&sql(org), &sql(now_ms)],
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
                "UPDATE orgs SET time_zone = $2 WHERE id = $1",
                &[&sql(org), &zone],
            )?;
            existing_org(tx, org)
        })
    }

    fn create_store(&self, org: OrgId, name: &str) -> Result<StoreRow, StoreError> {
        validate::name("store name", name)?;
        self.write(|tx| {
            admin_lock(tx)?;
            check_free("store", name, store_names(tx, org)?, None)?;
            let row = tx.query_one(
                "INSERT INTO stores (org, name) VALUES ($1, $2) RETURNING id",
                &[&sql(org), &name],
            )?;
            Ok(StoreRow {
                id: id(row.get(0)),
                org,
                name: name.to_string(),
            })
        })
    }

    fn stores(&self, org: OrgId) -> Result<Vec<StoreRow>, StoreError> {
        self.read(|tx| org_stores(tx, org))
    }

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
            admin_lock(tx)?;
            check_free("store", name, store_names(tx, org)?, Some(store))?;
            let n = tx.execute(
                "UPDATE stores SET name = $3 WHERE org = $1 AND id = $2",
                &[&sql(org), &sql(store), &name],
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

    fn delete_store(&self, org: OrgId, store: StoreId, purge: bool) -> Result<u64, StoreError> {
        self.write(|tx| {
            admin_lock(tx)?;
            // Numbers nothing, but waits for a push in flight that may write to the store.
            Head::lock(tx)?;
            let held: Vec<String> = tx
                .query(
                    "SELECT s.name FROM site_stores ss JOIN sites s ON s.id = ss.site
                      WHERE ss.store = $1 AND NOT s.revoked ORDER BY s.id",
                    &[&sql(store)],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if !held.is_empty() {
                return Err(StoreError::Refused(format!(
                    "store {store} is assigned to {}; assign those sites other stores first (`sitesync site assign`)",
                    held.join(", ")
                ))
                .into());
            }
            let records: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM records WHERE org = $1 AND store = $2",
                    &[&sql(org), &sql(store)],
                )?
                .get(0);
            if records > 0 && !purge {
                return Err(StoreError::Refused(format!(
                    "store {store} holds {records} records; delete them first, or purge them with the store (--purge)"
                ))
                .into());
            }
            tx.execute(
                "DELETE FROM records WHERE org = $1 AND store = $2",
                &[&sql(org), &sql(store)],
            )?;
            tx.execute("DELETE FROM site_stores WHERE store = $1", &[&sql(store)])?;
            let n = tx.execute(
                "DELETE FROM stores WHERE org = $1 AND id = $2",
                &[&sql(org), &sql(store)],
            )?;
            if n == 0 {
                return Err(
                    StoreError::NotFound(format!("no store {store} in this organisation")).into(),
                );
            }
            tx.execute(
                "UPDATE sites SET assignment_version = assignment_version + 1 WHERE org = $1 AND all_stores",
                &[&sql(org)],
            )?;
            Ok(id(records))
        })
    }

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
            admin_lock(tx)?;
            licences::admit_site(tx, org)?;
            let site = free_site_id(tx, requested)?;
            let name = name.map_or_else(|| format!("satellite-{site}"), str::to_string);
            check_free("site", &name, site_names(tx, Some(org))?, None)?;
            tx.execute(
                "INSERT INTO sites (id, org, name, secret_hash, all_stores, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &i64::from(site),
                    &sql(org),
                    &name,
                    &secret_hash(site),
                    &assignment.all_stores,
                    &sql(now_ms),
                ],
            )?;
            let stores: Vec<i64> = assignment.stores.iter().map(|s| sql(*s)).collect();
            tx.execute(
                "INSERT INTO site_stores (site, store) SELECT $1, unnest($2::BIGINT[])",
                &[&i64::from(site), &stores],
            )?;
            Ok(site)
        })
    }

    fn sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.read(|tx| {
            let ids: Vec<i64> = tx
                .query("SELECT id FROM sites ORDER BY id", &[])?
                .iter()
                .map(|row| row.get(0))
                .collect();
            let mut sites = Vec::with_capacity(ids.len());
            for n in ids.into_iter().filter_map(|n| SiteId::try_from(n).ok()) {
                // Sites of a deleted organisation read as none.
                sites.extend(site_row(tx, n)?);
            }
            Ok(sites)
        })
    }

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
            admin_lock(tx)?;
            let row = existing_site(tx, site)?;
            let taken = site_names(tx, Some(row.org))?;
            check_free("site", name, taken, Some(u64::from(site)))?;
            tx.execute(
                "UPDATE sites SET name = $2 WHERE id = $1",
                &[&i64::from(site), &name],
            )?;
            existing_site(tx, site)
        })
    }

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
            tx.execute("DELETE FROM site_stores WHERE site = $1", &[&i64::from(site)])?;
            tx.execute("DELETE FROM sites WHERE id = $1", &[&i64::from(site)])?;
            Ok(())
        })
    }

    fn assign(&self, site: SiteId, assignment: &Assignment) -> Result<u64, StoreError> {
        let n = i64::from(site);
        self.write(|tx| {
            // Pushes of the site read its assignment: one in flight finishes first.
            tx.execute("SELECT 1 FROM sites WHERE id = $1 FOR UPDATE", &[&n])?;
            // A site that held every store held them without rows here: give each of
            // its organisation's stores a row first, so those it loses are "leaving" too.
            tx.execute(
                "INSERT INTO site_stores (site, store)
                 SELECT s.id, st.id FROM sites s JOIN stores st ON st.org = s.org
                  WHERE s.id = $1 AND s.all_stores
                 ON CONFLICT DO NOTHING",
                &[&n],
            )?;
            tx.execute(
                "UPDATE site_stores SET leaving = TRUE WHERE site = $1",
                &[&n],
            )?;
            let stores: Vec<i64> = assignment.stores.iter().map(|s| sql(*s)).collect();
            tx.execute(
                "INSERT INTO site_stores (site, store) SELECT $1, unnest($2::BIGINT[])
                 ON CONFLICT (site, store) DO UPDATE SET leaving = FALSE",
                &[&n, &stores],
            )?;
            if assignment.all_stores {
                tx.execute(
                    "UPDATE site_stores SET leaving = FALSE WHERE site = $1",
                    &[&n],
                )?;
            }
            let row = tx.query_opt(
                "UPDATE sites SET all_stores = $2, assignment_version = assignment_version + 1
                  WHERE id = $1 RETURNING assignment_version",
                &[&n, &assignment.all_stores],
            )?;
            match row {
                Some(row) => Ok(id(row.get(0))),
                None => Err(StoreError::NotFound(format!("no site {site}")).into()),
            }
        })
    }

    /// Notes sync requests from sites, in one transaction (see the SQLite backend).
    fn touch_sites(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        self.write_recoverable(|tx| {
            for c in contacts {
                let site = i64::from(c.site);
                tx.execute(
                    "UPDATE sites SET last_contact = GREATEST(COALESCE(last_contact, 0), $2),
                            pull_cursor = GREATEST(pull_cursor, COALESCE($3::BIGINT, 0)),
                            version = COALESCE($4, version)
                      WHERE id = $1",
                    &[&site, &sql(c.at), &c.pull_cursor.map(sql), &c.version],
                )?;
                if let Some((at, error)) = &c.error {
                    tx.execute(
                        "UPDATE sites SET last_error_at = $2, last_error = $3
                          WHERE id = $1 AND COALESCE(last_error_at, 0) < $2",
                        &[&site, &sql(*at), error],
                    )?;
                }
                if let Some(version) = c.applied_assignment {
                    tx.execute(
                        "DELETE FROM site_stores WHERE site = $1 AND leaving
                           AND (SELECT assignment_version FROM sites WHERE id = $1) <= $2",
                        &[&site, &sql(version)],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn revoke_site(&self, site: SiteId) -> Result<Org, StoreError> {
        self.write(|tx| {
            let row = tx
                .query_opt(
                    "UPDATE sites SET revoked = TRUE WHERE id = $1 RETURNING org",
                    &[&i64::from(site)],
                )?
                .ok_or_else(|| StoreError::NotFound(format!("no site {site}")))?;
            let org = id(row.get(0));
            tx.execute(
                "UPDATE orgs SET key_generation = key_generation + 1 WHERE id = $1",
                &[&sql(org)],
            )?;
            existing_org(tx, org)
        })
    }

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

    fn restrict(&self, org: OrgId, collection: &str) -> Result<(), StoreError> {
        validate::collection(collection)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO restricted (org, collection) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&sql(org), &collection],
            )?;
            Ok(())
        })
    }

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
                "DELETE FROM restricted WHERE org = $1 AND collection = $2",
                &[&sql(org), &collection],
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

    fn apply_pushes(
        &self,
        batches: &[PushBatch],
        now_ms: u64,
    ) -> Result<Vec<Result<PushOutcome, StoreError>>, StoreError> {
        let outcomes = self.write(|tx| apply_group(tx, batches, now_ms))?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(|e| self.store_error(e)))
            .collect())
    }

    fn pull(
        &self,
        org: OrgId,
        assignment: &Assignment,
        only: Option<&BTreeSet<StoreId>>,
        cursor: u64,
        limit: usize,
    ) -> Result<PulledPage, StoreError> {
        self.statement(|tx| pull_page(tx, org, assignment, only, cursor, limit))
    }

    fn incarnation(&self) -> Result<u64, StoreError> {
        self.statement(|tx| {
            Ok(id(tx
                .query_one("SELECT incarnation FROM head", &[])?
                .get(0)))
        })
    }

    fn back_up(&self, _dest: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Refused(format!(
            "this primary's state is in PostgreSQL at {}: back it up with PostgreSQL's tools \
             (pg_dump, or your server's base backups and WAL archive)",
            self.place
        )))
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

fn existing_org(tx: &mut Tx, org: OrgId) -> Result<Org, Error> {
    Ok(
        org_by_id(tx, org)?
            .ok_or_else(|| StoreError::NotFound(format!("no organisation {org}")))?,
    )
}

fn site_id(n: i64) -> Result<SiteId, Error> {
    Ok(SiteId::try_from(n).map_err(|_| StoreError::Corrupt(format!("site id {n}")))?)
}

/// The next free site id, or `requested` when it is allowed and free.
fn free_site_id(tx: &mut Tx, requested: Option<i64>) -> Result<SiteId, Error> {
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
            let holder = tx.query_opt("SELECT name FROM sites WHERE id = $1", &[&i64::from(n)])?;
            if let Some(holder) = holder {
                let holder: String = holder.get(0);
                return Err(StoreError::Conflict(format!(
                    "site id {n} is taken by site {holder:?}"
                ))
                .into());
            }
            Ok(n)
        }
        None => {
            let max: i64 = tx
                .query_one("SELECT COALESCE(MAX(id), 1) FROM sites", &[])?
                .get(0);
            Ok(SiteId::try_from(max + 1)
                .map_err(|_| StoreError::Refused("no site id is free".into()))?)
        }
    }
}

/// A site that must exist.
fn existing_site(tx: &mut Tx, site: SiteId) -> Result<SiteRow, Error> {
    Ok(site_row(tx, site)?.ok_or_else(|| {
        StoreError::NotFound(format!("no site {site}; `sitesync site list` shows them"))
    })?)
}

fn org_stores(tx: &mut Tx, org: OrgId) -> Result<Vec<StoreRow>, Error> {
    let rows = tx.query(
        "SELECT id, name FROM stores WHERE org = $1 ORDER BY id",
        &[&sql(org)],
    )?;
    Ok(rows
        .iter()
        .map(|row| StoreRow {
            id: id(row.get(0)),
            org,
            name: row.get(1),
        })
        .collect())
}

fn site_row(tx: &mut Tx, site: SiteId) -> Result<Option<SiteRow>, Error> {
    let row = tx.query_opt(
        "SELECT org, name, secret_hash, all_stores, assignment_version, last_contact, pull_cursor,
                revoked, created_at, version, last_error_at, last_error,
                ARRAY(SELECT store FROM site_stores WHERE site = s.id AND NOT leaving ORDER BY store)
           FROM sites s WHERE id = $1
            AND org IN (SELECT id FROM orgs WHERE deleted_at IS NULL)",
        &[&i64::from(site)],
    )?;
    let Some(row) = row else { return Ok(None) };
    let stores: Vec<i64> = row.get(12);
    Ok(Some(SiteRow {
        id: site,
        org: id(row.get(0)),
        name: row.get(1),
        secret_hash: row.get(2),
        assignment: Assignment {
            all_stores: row.get(3),
            stores: stores.into_iter().map(id).collect(),
        },
        assignment_version: id(row.get(4)),
        last_contact: row.get::<_, Option<i64>>(5).map(id),
        pull_cursor: id(row.get(6)),
        revoked: row.get(7),
        enrolled_at: id(row.get(8)),
        version: row.get(9),
        last_error: match (row.get::<_, Option<i64>>(10), row.get(11)) {
            (Some(at), Some(error)) => Some((id(at), error)),
            _ => None,
        },
    }))
}

/// Starts a new incarnation: the time it begins in nanoseconds (`now_ms`, then counted
/// up), always above the last one.
pub(crate) fn start_incarnation(tx: &mut Tx, now_ms: u64) -> Result<u64, Error> {
    let last = Head::lock(tx)?.incarnation;
    let next = now_ms.saturating_mul(1_000_000).max(last + 1);
    tx.execute("UPDATE head SET incarnation = $1", &[&sql(next)])?;
    Ok(next)
}

/// Starts a new incarnation when the database is not the one the incarnation belongs
/// to: a database restored from a dump (another database), a cluster recovered to a
/// point in time or a standby promoted (another timeline), or a primary opened for the
/// first time. Its identity is the database's oid and the server's timeline.
pub(crate) fn follow_database(store: &PgStore) -> Result<(), StoreError> {
    const IDENTITY: &str = "SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::TEXT
                || ':' || COALESCE(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), ''), database, incarnation FROM head";
    let same = store.read(|tx| {
        let row = tx.query_one(IDENTITY, &[])?;
        let (now, was): (String, Option<String>) = (row.get(0), row.get(1));
        Ok(was.as_deref() == Some(now.as_str()) && row.get::<_, i64>(2) != 0)
    })?;
    if same {
        return Ok(());
    }
    store.write(|tx| {
        let row = tx.query_one(IDENTITY, &[])?;
        let (now, was): (String, Option<String>) = (row.get(0), row.get(1));
        if was.as_deref() == Some(now.as_str()) && row.get::<_, i64>(2) != 0 {
            return Ok(());
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let incarnation = start_incarnation(tx, now_ms)?;
        if was.is_some() {
            tracing::warn!(
                incarnation,
                "this database is not the one the primary last ran on (restored, recovered or promoted?): \
                 a new incarnation starts, and satellites will give back what it may lack"
            );
        }
        tx.execute("UPDATE head SET database = $1", &[&now])?;
        Ok(())
    })
}
