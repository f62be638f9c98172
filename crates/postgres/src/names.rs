//! Finding organisations, stores and sites by id or by name (the rules of names are
//! `sitesync_store::names`).

use crate::{Error, Tx, id, sql};
use postgres::Row;
use sitesync_core::{OrgId, SiteId};
use sitesync_store::names::one_named;
use sitesync_store::{Org, StoreRow};

pub(crate) fn org_row(row: &Row) -> Org {
    Org {
        id: id(row.get(0)),
        name: row.get(1),
        key_generation: id(row.get(2)),
        time_zone: row.get(3),
    }
}

fn pairs(rows: Vec<Row>) -> Vec<(u64, String)> {
    rows.iter()
        .map(|row| (id(row.get(0)), row.get(1)))
        .collect()
}

/// Every organisation's id and name.
pub(crate) fn org_names(tx: &mut Tx) -> Result<Vec<(u64, String)>, Error> {
    Ok(pairs(tx.query(
        "SELECT id, name FROM orgs WHERE deleted_at IS NULL",
        &[],
    )?))
}

/// An organisation by id or name.
pub(crate) fn find_org(tx: &mut Tx, id_or_name: &str) -> Result<Option<Org>, Error> {
    let org = match id_or_name.parse::<OrgId>() {
        Ok(org) => Some(org),
        Err(_) => one_named("organisation", id_or_name, org_names(tx)?)?,
    };
    match org {
        Some(org) => org_by_id(tx, org),
        None => Ok(None),
    }
}

/// An organisation by id only.
pub(crate) fn org_by_id(tx: &mut Tx, org: OrgId) -> Result<Option<Org>, Error> {
    let row = tx.query_opt(
        "SELECT id, name, key_generation, time_zone FROM orgs WHERE id = $1 AND deleted_at IS NULL",
        &[&sql(org)],
    )?;
    Ok(row.as_ref().map(org_row))
}

/// Every store's id and name in an organisation.
pub(crate) fn store_names(tx: &mut Tx, org: OrgId) -> Result<Vec<(u64, String)>, Error> {
    Ok(pairs(tx.query(
        "SELECT id, name FROM stores WHERE org = $1",
        &[&sql(org)],
    )?))
}

/// A store of an organisation by id or name.
pub(crate) fn find_store(
    tx: &mut Tx,
    org: OrgId,
    id_or_name: &str,
) -> Result<Option<StoreRow>, Error> {
    let store = match id_or_name.parse::<u64>() {
        Ok(store) => Some(store),
        Err(_) => one_named("store", id_or_name, store_names(tx, org)?)?,
    };
    let Some(store) = store else { return Ok(None) };
    let row = tx.query_opt(
        "SELECT name FROM stores WHERE org = $1 AND id = $2",
        &[&sql(org), &sql(store)],
    )?;
    Ok(row.map(|row| StoreRow {
        id: store,
        org,
        name: row.get(0),
    }))
}

/// Every site's id and name, in one organisation or in all.
pub(crate) fn site_names(tx: &mut Tx, org: Option<OrgId>) -> Result<Vec<(u64, String)>, Error> {
    Ok(pairs(tx.query(
        "SELECT id, name FROM sites WHERE $1::BIGINT IS NULL OR org = $1",
        &[&org.map(sql)],
    )?))
}

/// A site's id, by id or name (sites of every organisation).
pub(crate) fn find_site(tx: &mut Tx, id_or_name: &str) -> Result<Option<SiteId>, Error> {
    match id_or_name.parse::<SiteId>() {
        Ok(site) => Ok(Some(site)),
        Err(_) => Ok(one_named("site", id_or_name, site_names(tx, None)?)?
            .and_then(|site| SiteId::try_from(site).ok())),
    }
}
