//! The primary's side of the sync paths: applying pushed batches (the group commit's
//! transaction) and reading pull pages, and the pieces a satellite's side shares
//! (inserting a new record, logging a rejection).

use crate::journal::{Setting, log_conflicts, meta_u64, set_meta};
use crate::records::{load, save};
use crate::{Error, id, sql};
use rusqlite::{Transaction, params};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sitesync_core::{Assignment, Clock, MergeError, OrgId, Rejection, SiteId, StoreId, merge};
use sitesync_protocol::{PulledRecord, PushResponse, PushedChange, RejectedChange};
use sitesync_store::StoreError;
use sitesync_store::names::describe_store;
use sitesync_store::{Encoded, PreparedPush, PushBatch, PushOutcome, check_rights};
use std::collections::{BTreeSet, HashSet};

/// The most rows one pull scans: a site of one small store among big ones still gets an
/// answer (with `more`) in bounded time.
const MAX_SCAN: usize = 50_000;

/// A refused change as `rejections` records it.
pub(crate) struct Refused<'a> {
    pub org: OrgId,
    /// The site that made the change.
    pub site: SiteId,
    pub change_seq: u64,
    pub collection: &'a str,
    pub record_id: &'a str,
    pub reason: &'a str,
    /// The fields the change wrote, when known.
    pub fields: Option<Map<String, Value>>,
    /// The record's sequence here once the change was taken back (`None`: removed, or
    /// not taken back here).
    pub record_seq: Option<u64>,
}

/// Records a refused change in `rejections`.
pub(crate) fn log_rejection(tx: &Transaction, refused: Refused, now_ms: u64) -> Result<(), Error> {
    let fields = refused.fields.map(|f| Value::Object(f).to_string());
    tx.prepare_cached(
        "INSERT INTO rejections (org, site, at, change_seq, collection, record_id, reason, fields, record_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        sql(refused.org),
        refused.site,
        sql(now_ms),
        sql(refused.change_seq),
        refused.collection,
        refused.record_id,
        refused.reason,
        fields,
        refused.record_seq.map(sql),
    ])?;
    Ok(())
}

/// Applies batches inside one transaction. With `savepoints`, each batch runs in one,
/// so that a batch that fails is undone alone and answered with its error; without,
/// the first batch that fails fails the group.
pub(crate) fn apply_group(
    tx: &Transaction,
    batches: &[PushBatch],
    now_ms: u64,
    savepoints: bool,
) -> Result<Vec<Result<PushOutcome, Error>>, Error> {
    let mut clock = Clock::resume(meta_u64(tx, Setting::Hlc)?);
    let mut seq = meta_u64(tx, Setting::Seq)?;
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        if !savepoints {
            outcomes.push(Ok(apply_batch(tx, batch, now_ms, &mut clock, &mut seq)?));
            continue;
        }
        tx.execute_batch("SAVEPOINT push_batch")?;
        let (clock_before, seq_before) = (clock, seq);
        match apply_batch(tx, batch, now_ms, &mut clock, &mut seq) {
            Ok(outcome) => {
                tx.execute_batch("RELEASE push_batch")?;
                outcomes.push(Ok(outcome));
            }
            Err(error) => {
                tx.execute_batch("ROLLBACK TO push_batch; RELEASE push_batch")?;
                (clock, seq) = (clock_before, seq_before);
                outcomes.push(Err(error));
            }
        }
    }
    set_meta(tx, Setting::Seq, &seq.to_string())?;
    set_meta(tx, Setting::Hlc, &clock.last().to_string())?;
    Ok(outcomes)
}

/// Applies one satellite's batch inside the group's transaction.
fn apply_batch(
    tx: &Transaction,
    batch: &PushBatch,
    now_ms: u64,
    clock: &mut Clock,
    seq: &mut u64,
) -> Result<PushOutcome, Error> {
    let (org, site) = (batch.org, batch.site);
    let acked: i64 = tx
        .prepare_cached("SELECT push_acked FROM sites WHERE id = ?1")?
        .query_row([site], |row| row.get(0))?;
    let writable = writable_assignment(tx, site)?;
    let restricted = restricted_collections(tx, org)?;
    let stores = org_stores(tx, org)?;
    // The incarnation is the time it began, in nanoseconds.
    let went_back_ms = meta_u64(tx, Setting::Incarnation)? / 1_000_000;
    let mut outcome = PushOutcome {
        response: PushResponse {
            acked_through: id(acked),
            rejected: Vec::new(),
        },
        ..PushOutcome::default()
    };
    for prepared in batch.changes.iter().filter(|c| c.change.seq > id(acked)) {
        let change = &prepared.change;
        outcome.response.acked_through = outcome.response.acked_through.max(change.seq);
        let rights = prepared
            .shape()
            .clone()
            .and_then(|()| prepared.check_origin(site, went_back_ms))
            .and_then(|()| check_rights(change, &writable, &restricted, &stores));
        let verdict = match rights {
            Ok(()) => merge_pushed(tx, org, prepared, now_ms, clock, seq)?,
            // What the primary holds already writes nothing, and is no rejection: a
            // satellite giving back what it holds (the primary went back) sends the
            // records it received too, including those it may not write.
            Err(_) if holds_already(tx, org, change)? => Ok(0),
            Err(rejection) => Err(rejection),
        };
        match verdict {
            Ok(conflicts) => {
                outcome.applied += 1;
                outcome.conflicts += conflicts;
            }
            Err(rejection) => reject(
                tx,
                org,
                site,
                now_ms,
                change,
                rejection,
                &writable,
                &mut outcome,
            )?,
        }
    }
    tx.prepare_cached("UPDATE sites SET push_acked = ?2, last_contact = ?3 WHERE id = ?1")?
        .execute(params![
            site,
            sql(outcome.response.acked_through),
            sql(now_ms)
        ])?;
    Ok(outcome)
}

/// Merges one accepted change into the primary's copy; returns how many conflicts it
/// found, or the rejection when the change names another store than the record's.
fn merge_pushed(
    tx: &Transaction,
    org: OrgId,
    prepared: &PreparedPush,
    now_ms: u64,
    clock: &mut Clock,
    seq: &mut u64,
) -> Result<Result<usize, Rejection>, Error> {
    let change = &prepared.change;
    // A defined collection's record is checked as merged, so it never takes the
    // shortcut of inserting the change as a new record unread.
    if prepared.definition().is_none()
        && insert_new(
            tx,
            org,
            &change.collection,
            &change.id,
            prepared.fresh(),
            *seq + 1,
        )?
    {
        *seq += 1;
        clock.observe(change.change.latest().map_or(0, |s| s.hlc));
        return Ok(Ok(0));
    }
    let (mut state, _) = load(tx, org, &change.collection, &change.id)?.unwrap_or_default();
    match merge(&mut state, &change.change) {
        Ok(report) => {
            if let Err(unfit) = prepared.check_definition(&state) {
                return Ok(Err(unfit));
            }
            clock.observe(change.change.latest().map_or(0, |s| s.hlc));
            log_conflicts(
                tx,
                org,
                now_ms,
                &change.collection,
                &change.id,
                &report.conflicts,
            )?;
            if report.changed {
                *seq += 1;
                save(tx, org, &change.collection, &change.id, &state, *seq)?;
            }
            Ok(Ok(report.conflicts.len()))
        }
        Err(MergeError::StoreMismatch { have, got }) => Ok(Err(Rejection::StoreMismatch {
            have: describe_store(have),
            got: describe_store(got),
        })),
    }
}

/// Whether merging `change` would change nothing in the primary's copy.
fn holds_already(tx: &Transaction, org: OrgId, change: &PushedChange) -> Result<bool, Error> {
    let Some((mut state, _)) = load(tx, org, &change.collection, &change.id)? else {
        return Ok(false);
    };
    Ok(merge(&mut state, &change.change).is_ok_and(|report| !report.changed))
}

/// Inserts a record this site does not hold yet; returns false (changing nothing) when
/// it holds one already.
pub(crate) fn insert_new(
    tx: &Transaction,
    org: OrgId,
    collection: &str,
    record_id: &str,
    fresh: &Encoded,
    seq: u64,
) -> Result<bool, Error> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO records (org, collection, id, store, deleted, seq, state, files)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (org, collection, id) DO NOTHING",
        )?
        .execute(params![
            sql(org),
            collection,
            record_id,
            fresh.store().map(sql),
            fresh.deleted(),
            sql(seq),
            fresh.bytes(),
            crate::records::names_files(fresh.bytes())
        ])?;
    Ok(inserted == 1)
}

/// Records a rejected change and adds it to the answer, with the primary's copy of the
/// record when the site may hold it.
#[allow(clippy::too_many_arguments)]
fn reject(
    tx: &Transaction,
    org: OrgId,
    site: SiteId,
    now_ms: u64,
    change: &PushedChange,
    rejection: Rejection,
    writable: &Assignment,
    outcome: &mut PushOutcome,
) -> Result<(), Error> {
    let reason = rejection.to_string();
    tracing::info!(site, collection = %change.collection, id = %change.id, %reason, "change rejected");
    let refused = Refused {
        org,
        site,
        change_seq: change.seq,
        collection: &change.collection,
        record_id: &change.id,
        reason: &reason,
        fields: Some(change.change.values()),
        record_seq: None,
    };
    log_rejection(tx, refused, now_ms)?;
    let record = match load(tx, org, &change.collection, &change.id)? {
        Some((state, _)) if writable.routes(state.store) => Some(state),
        _ => None,
    };
    outcome.response.rejected.push(RejectedChange {
        seq: change.seq,
        collection: change.collection.clone(),
        id: change.id.clone(),
        reason,
        record,
    });
    Ok(())
}

/// The stores a site may write: those assigned, plus those being taken away whose last
/// changes may still be on their way.
fn writable_assignment(tx: &Transaction, site: SiteId) -> Result<Assignment, Error> {
    let all_stores: bool = tx.query_row(
        "SELECT all_stores FROM sites WHERE id = ?1",
        [site],
        |row| row.get(0),
    )?;
    let mut stmt = tx.prepare_cached("SELECT store FROM site_stores WHERE site = ?1")?;
    let stores = stmt
        .query_map([site], |row| row.get::<_, i64>(0))?
        .map(|r| r.map(id))
        .collect::<Result<_, _>>()?;
    Ok(Assignment { all_stores, stores })
}

pub(crate) fn restricted_collections(
    tx: &Transaction,
    org: OrgId,
) -> Result<HashSet<String>, Error> {
    let mut stmt = tx.prepare_cached("SELECT collection FROM restricted WHERE org = ?1")?;
    let rows = stmt.query_map([sql(org)], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn org_stores(tx: &Transaction, org: OrgId) -> Result<HashSet<StoreId>, Error> {
    let mut stmt = tx.prepare_cached("SELECT id FROM stores WHERE org = ?1")?;
    let rows = stmt.query_map([sql(org)], |row| row.get::<_, i64>(0))?;
    Ok(rows.map(|r| r.map(id)).collect::<Result<_, _>>()?)
}

/// One page of the records routed to a site after `cursor`: organisation-wide
/// records and those of the assigned stores, or only of `only` (a backfill of newly
/// assigned stores, which excludes organisation-wide records the site already has).
/// Returns the records, the next cursor and whether more are waiting.
pub(crate) fn pull_page(
    tx: &Transaction,
    org: OrgId,
    assignment: &Assignment,
    only: Option<&BTreeSet<StoreId>>,
    cursor: u64,
    limit: usize,
) -> Result<(Vec<PulledRecord>, u64, bool), Error> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, collection, id, store, state FROM records
         WHERE org = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![sql(org), sql(cursor)])?;
    let mut records = Vec::new();
    let mut next = cursor;
    let mut scanned = 0;
    while let Some(row) = rows.next()? {
        if records.len() >= limit || scanned >= MAX_SCAN {
            return Ok((records, next, true));
        }
        scanned += 1;
        next = id(row.get(0)?);
        let store: Option<i64> = row.get(3)?;
        let store = store.map(id);
        let routed = match only {
            Some(only) => store.is_some_and(|s| only.contains(&s)),
            None => assignment.routes(store),
        };
        if !routed {
            continue;
        }
        let record_id: String = row.get(2)?;
        // The stored state is sent as it is, without decoding it here.
        let corrupt =
            |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("record {record_id:?}: {e}"));
        let text = String::from_utf8(row.get(4)?).map_err(|e| corrupt(&e))?;
        let state = RawValue::from_string(text).map_err(|e| corrupt(&e))?;
        records.push(PulledRecord {
            seq: next,
            collection: row.get(1)?,
            state,
            id: record_id,
        });
    }
    Ok((records, next, false))
}

/// How many records routed to a site changed after `cursor`.
pub(crate) fn routed_after(
    tx: &Transaction,
    org: OrgId,
    assignment: &Assignment,
    cursor: u64,
) -> Result<u64, Error> {
    let filter = if assignment.all_stores {
        String::new()
    } else {
        let ids: Vec<String> = assignment.stores.iter().map(u64::to_string).collect();
        format!(" AND (store IS NULL OR store IN ({}))", ids.join(","))
    };
    let n: i64 = tx.query_row(
        &format!("SELECT COUNT(*) FROM records WHERE org = ?1 AND seq > ?2{filter}"),
        params![sql(org), sql(cursor)],
        |row| row.get(0),
    )?;
    Ok(id(n))
}
