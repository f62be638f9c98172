//! Organisations' licences (see `sitesync_core::licence`): a row of `licences` per
//! organisation (site limit, expiry) and a row of `licence_modules` per module granted.

use crate::{Error, Tx, id, sql};
use sitesync_core::{Day, Licence, Module, OrgId};
use sitesync_store::StoreError;

/// Gives a new organisation its licence: every module off, sites unlimited, no expiry.
pub(crate) fn create(tx: &mut Tx, org: OrgId) -> Result<(), Error> {
    tx.execute("INSERT INTO licences (org) VALUES ($1)", &[&sql(org)])?;
    Ok(())
}

/// An organisation's licence.
pub(crate) fn read(tx: &mut Tx, org: OrgId) -> Result<Licence, Error> {
    let row = tx.query_opt(
        "SELECT l.sites, l.expires FROM orgs o LEFT JOIN licences l ON l.org = o.id WHERE o.id = $1",
        &[&sql(org)],
    )?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("no organisation {org}")).into());
    };
    let (sites, expires): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
    let sites = sites
        .map(|n| u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("site limit {n}"))))
        .transpose()?;
    let rows = tx.query(
        "SELECT module, until FROM licence_modules WHERE org = $1",
        &[&sql(org)],
    )?;
    let mut modules = std::collections::BTreeMap::new();
    for row in rows {
        let (name, until): (String, Option<i64>) = (row.get(0), row.get(1));
        // A module this version does not know (written by a newer one) is left out,
        // and kept in the table.
        if let Some(module) = Module::parse(&name) {
            modules.insert(module, until.map(Day));
        }
    }
    Ok(Licence {
        modules,
        sites,
        expires: expires.map(Day),
    })
}

/// Replaces an organisation's licence.
pub(crate) fn write(tx: &mut Tx, org: OrgId, licence: &Licence) -> Result<(), Error> {
    let sites = licence.sites.map(sql);
    let expires = licence.expires.map(|d| d.0);
    tx.execute(
        "INSERT INTO licences (org, sites, expires) VALUES ($1, $2, $3)
         ON CONFLICT (org) DO UPDATE SET sites = $2, expires = $3",
        &[&sql(org), &sites, &expires],
    )?;
    let known: Vec<&str> = Module::ALL.iter().map(|m| m.name()).collect();
    tx.execute(
        "DELETE FROM licence_modules WHERE org = $1 AND module = ANY($2)",
        &[&sql(org), &known],
    )?;
    for (module, until) in &licence.modules {
        tx.execute(
            "INSERT INTO licence_modules (org, module, until) VALUES ($1, $2, $3)",
            &[&sql(org), &module.name(), &until.map(|d| d.0)],
        )?;
    }
    Ok(())
}

/// Refuses to enrol one more site of `org` when its licence admits no more: revoked
/// sites are not counted. The organisation's row is locked first, so two enrolments
/// at once (in any processes) count one after the other.
pub(crate) fn admit_site(tx: &mut Tx, org: OrgId) -> Result<(), Error> {
    tx.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", &[&sql(org)])?;
    let licence = read(tx, org)?;
    let enrolled: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM sites WHERE org = $1 AND NOT revoked",
            &[&sql(org)],
        )?
        .get(0);
    match licence.sites {
        Some(limit) if !licence.admits_site(id(enrolled)) => {
            Err(StoreError::SiteLimit { limit }.into())
        }
        _ => Ok(()),
    }
}
