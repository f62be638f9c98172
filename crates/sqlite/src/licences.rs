//! Organisations' licences (see `sitesync_core::licence`): a row of `licences` per
//! organisation (site limit, expiry) and a row of `licence_modules` per module granted.

use crate::{Error, id, sql};
use rusqlite::{OptionalExtension, Transaction, params};
use sitesync_core::{Day, Licence, Module, OrgId};
use sitesync_store::StoreError;

/// Gives a new organisation its licence: every module off, sites unlimited, no expiry.
pub(crate) fn create(tx: &Transaction, org: OrgId) -> Result<(), Error> {
    tx.execute("INSERT INTO licences (org) VALUES (?1)", [sql(org)])?;
    Ok(())
}

/// An organisation's licence. An organisation without a row has the default (the
/// upgrade gives every one a row; this keeps reading safe all the same).
pub(crate) fn read(tx: &Transaction, org: OrgId) -> Result<Licence, Error> {
    let row: Option<(Option<i64>, Option<i64>)> = tx
        .query_row(
            "SELECT l.sites, l.expires FROM orgs o LEFT JOIN licences l ON l.org = o.id WHERE o.id = ?1",
            [sql(org)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((sites, expires)) = row else {
        return Err(StoreError::NotFound(format!("no organisation {org}")).into());
    };
    let sites = sites
        .map(|n| u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("site limit {n}"))))
        .transpose()?;
    let mut stmt = tx.prepare_cached("SELECT module, until FROM licence_modules WHERE org = ?1")?;
    let rows = stmt.query_map([sql(org)], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?))
    })?;
    let mut modules = std::collections::BTreeMap::new();
    for row in rows {
        let (name, until) = row?;
        // A module this version does not know (written by a newer one) has no feature
        // here to turn on: it is left out, and kept in the table.
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
pub(crate) fn write(tx: &Transaction, org: OrgId, licence: &Licence) -> Result<(), Error> {
    let sites = licence.sites.map(sql);
    let expires = licence.expires.map(|d| d.0);
    tx.execute(
        "INSERT INTO licences (org, sites, expires) VALUES (?1, ?2, ?3)
         ON CONFLICT (org) DO UPDATE SET sites = ?2, expires = ?3",
        params![sql(org), sites, expires],
    )?;
    for module in Module::ALL {
        tx.execute(
            "DELETE FROM licence_modules WHERE org = ?1 AND module = ?2",
            params![sql(org), module.name()],
        )?;
    }
    for (module, until) in &licence.modules {
        tx.execute(
            "INSERT INTO licence_modules (org, module, until) VALUES (?1, ?2, ?3)",
            params![sql(org), module.name(), until.map(|d| d.0)],
        )?;
    }
    Ok(())
}

/// Refuses to enrol one more site of `org` when its licence admits no more: revoked
/// sites are not counted.
pub(crate) fn admit_site(tx: &Transaction, org: OrgId) -> Result<(), Error> {
    let licence = read(tx, org)?;
    let enrolled: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sites WHERE org = ?1 AND revoked = 0",
        [sql(org)],
        |row| row.get(0),
    )?;
    match licence.sites {
        Some(limit) if !licence.admits_site(id(enrolled)) => {
            Err(StoreError::SiteLimit { limit }.into())
        }
        _ => Ok(()),
    }
}
