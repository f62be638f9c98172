//! The primary's side of the sync paths in PostgreSQL: applying a group of pushed
//! batches and serving pull pages.
//!
//! A group is applied in a handful of statements whatever its size: the `head` row is
//! locked, every record the group names is read in one query, each batch is merged in
//! memory (a batch that fails is dropped alone), and what changed is written back with
//! one statement per table, from arrays. Round trips, not rows, are what a
//! PostgreSQL on the other end of a socket costs.

use crate::records::{Head, decode, names_files};
use crate::{Error, Tx, id, sql};
use serde_json::value::RawValue;
use sitesync_core::{
    Assignment, Clock, FieldVersion, MergeError, OrgId, RecordState, Rejection, SiteId, StoreId,
    merge,
};
use sitesync_protocol::{PulledRecord, PushResponse, RejectedChange};
use sitesync_store::names::describe_store;
use sitesync_store::{
    Encoded, PreparedPush, PulledPage, PushBatch, PushOutcome, StoreError, check_rights,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A record's key: organisation, collection, id.
type Key = (OrgId, String, String);

/// A record as the group holds it: as read, as a pushed change stored as a new
/// record, or merged.
#[derive(Clone)]
enum Held {
    Read(Vec<u8>),
    New(Encoded),
    Merged(RecordState),
}

/// What a group has done so far: the records it holds (those it changed with their
/// new sequence), the rejections and conflicts it logged, and how far each site's
/// pushes are acknowledged.
#[derive(Default, Clone)]
struct Group {
    records: HashMap<Key, (Held, Option<u64>)>,
    rejections: Vec<Rejected>,
    conflicts: Vec<Conflicted>,
    acked: HashMap<SiteId, u64>,
    seq: u64,
    clock: Clock,
}

#[derive(Clone)]
struct Rejected {
    org: OrgId,
    site: SiteId,
    change_seq: u64,
    collection: String,
    record_id: String,
    reason: String,
    fields: String,
}

#[derive(Clone)]
struct Conflicted {
    org: OrgId,
    collection: String,
    record_id: String,
    field: String,
    winner: FieldVersion,
    loser: FieldVersion,
}

/// What a site may write, read once per batch.
struct Rights {
    acked: u64,
    writable: Assignment,
    restricted: HashSet<String>,
    stores: HashSet<StoreId>,
}

/// Applies batches inside one transaction; a batch that fails is undone alone.
pub(crate) fn apply_group(
    tx: &mut Tx,
    batches: &[PushBatch],
    now_ms: u64,
) -> Result<Vec<Result<PushOutcome, Error>>, Error> {
    let head = Head::lock(tx)?;
    let went_back_ms = head.incarnation / 1_000_000;
    let rights = rights(tx, batches)?;
    // A batch of a site that is not there fails alone.
    let mut run = |careful| -> Result<_, Error> {
        let start = Group {
            records: load_named(tx, batches)?,
            seq: head.seq,
            clock: head.clock,
            ..Group::default()
        };
        Ok(merge_group(start, batches, &rights, went_back_ms, careful))
    };
    // A batch fails on its own only when a stored record is unreadable, so the group
    // first runs without keeping a copy to go back to before each batch; if a batch
    // fails, it runs again (reading the records again) with one.
    let (group, outcomes) = match run(false)? {
        Some(done) => done,
        None => run(true)?.ok_or_else(|| StoreError::Unavailable("a push group failed".into()))?,
    };
    write_group(tx, &group, now_ms)?;
    Ok(outcomes)
}

/// Merges every batch into `group`. Without `careful`, gives up (`None`) at the first
/// batch that fails; with it, undoes that batch alone and goes on.
fn merge_group(
    mut group: Group,
    batches: &[PushBatch],
    rights: &[Option<Rights>],
    went_back_ms: u64,
    careful: bool,
) -> Option<(Group, Vec<Result<PushOutcome, Error>>)> {
    let mut outcomes = Vec::with_capacity(batches.len());
    for (batch, rights) in batches.iter().zip(rights) {
        let before = careful.then(|| group.clone());
        let applied = match rights {
            Some(rights) => Work { group: &mut group }.apply_batch(batch, rights, went_back_ms),
            None => Err(StoreError::NotFound(format!("no site {}", batch.site)).into()),
        };
        match applied {
            Ok(outcome) => {
                group
                    .acked
                    .insert(batch.site, outcome.response.acked_through);
                outcomes.push(Ok(outcome));
            }
            Err(error) => {
                group = before?;
                outcomes.push(Err(error));
            }
        }
    }
    Some((group, outcomes))
}

/// Every record the group's changes name, as stored, in one query.
fn load_named(
    tx: &mut Tx,
    batches: &[PushBatch],
) -> Result<HashMap<Key, (Held, Option<u64>)>, Error> {
    let (mut orgs, mut collections, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for batch in batches {
        for prepared in batch.changes {
            orgs.push(sql(batch.org));
            collections.push(prepared.change.collection.as_str());
            ids.push(prepared.change.id.as_str());
        }
    }
    let rows = tx.query(
        "SELECT r.org, r.collection, r.id, r.state
           FROM records r
           JOIN unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[]) AS k(org, collection, id)
             ON r.org = k.org AND r.collection = k.collection AND r.id = k.id",
        &[&orgs, &collections, &ids],
    )?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (id(row.get(0)), row.get(1), row.get(2));
            (key, (Held::Read(row.get(3)), None))
        })
        .collect())
}

/// What each batch's site may write, in one query for the whole group (`None`: no such
/// site), read after the head is locked so that it sees every commit before.
fn rights(tx: &mut Tx, batches: &[PushBatch]) -> Result<Vec<Option<Rights>>, Error> {
    let sites: Vec<i64> = batches.iter().map(|b| i64::from(b.site)).collect();
    let orgs: Vec<i64> = batches.iter().map(|b| sql(b.org)).collect();
    let rows = tx.query(
        "SELECT k.n, s.push_acked, s.all_stores,
                ARRAY(SELECT store FROM site_stores WHERE site = k.site),
                ARRAY(SELECT collection FROM restricted WHERE org = k.org),
                ARRAY(SELECT id FROM stores WHERE org = k.org)
           FROM unnest($1::BIGINT[], $2::BIGINT[]) WITH ORDINALITY AS k(site, org, n)
           JOIN sites s ON s.id = k.site",
        &[&sites, &orgs],
    )?;
    let mut rights: Vec<Option<Rights>> = batches.iter().map(|_| None).collect();
    for row in rows {
        let n = usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX);
        let stores: Vec<i64> = row.get(3);
        let restricted: Vec<String> = row.get(4);
        let org_stores: Vec<i64> = row.get(5);
        if let Some(slot) = rights.get_mut(n) {
            *slot = Some(Rights {
                acked: id(row.get(1)),
                writable: Assignment {
                    all_stores: row.get(2),
                    stores: stores.into_iter().map(id).collect(),
                },
                restricted: restricted.into_iter().collect(),
                stores: org_stores.into_iter().map(id).collect(),
            });
        }
    }
    Ok(rights)
}

/// One batch's work on the group.
struct Work<'a> {
    group: &'a mut Group,
}

impl Work<'_> {
    fn apply_batch(
        &mut self,
        batch: &PushBatch,
        rights: &Rights,
        went_back_ms: u64,
    ) -> Result<PushOutcome, Error> {
        let (org, site) = (batch.org, batch.site);
        // An earlier batch of the same site in this group counts as acknowledged.
        let acked = self
            .group
            .acked
            .get(&site)
            .map_or(rights.acked, |a| rights.acked.max(*a));
        let mut outcome = PushOutcome {
            response: PushResponse {
                acked_through: acked,
                rejected: Vec::new(),
            },
            ..PushOutcome::default()
        };
        for prepared in batch.changes.iter().filter(|c| c.change.seq > acked) {
            let change = &prepared.change;
            outcome.response.acked_through = outcome.response.acked_through.max(change.seq);
            let key = (org, change.collection.clone(), change.id.clone());
            let checked = prepared
                .shape()
                .clone()
                .and_then(|()| prepared.check_origin(site, went_back_ms))
                .and_then(|()| {
                    check_rights(change, &rights.writable, &rights.restricted, &rights.stores)
                });
            let verdict = match checked {
                Ok(()) => self.merge_pushed(&key, prepared)?,
                // What the primary holds already writes nothing, and is no rejection (a
                // satellite giving back what it holds to a primary that went back).
                Err(_) if self.holds_already(&key, prepared)? => Ok(0),
                Err(rejection) => Err(rejection),
            };
            match verdict {
                Ok(conflicts) => {
                    outcome.applied += 1;
                    outcome.conflicts += conflicts;
                }
                Err(rejection) => {
                    self.reject(&key, site, prepared, rejection, rights, &mut outcome)?
                }
            }
        }
        Ok(outcome)
    }

    /// The record as the group holds it now, decoded.
    fn state(&mut self, key: &Key) -> Result<Option<RecordState>, Error> {
        let Some((held, _)) = self.group.records.get_mut(key) else {
            return Ok(None);
        };
        let state = match held {
            Held::Merged(state) => return Ok(Some(state.clone())),
            Held::Read(bytes) => decode(bytes, &key.2)?,
            Held::New(encoded) => decode(encoded.bytes(), &key.2)?,
        };
        *held = Held::Merged(state.clone());
        Ok(Some(state))
    }

    /// Merges one accepted change; returns how many conflicts it found, or the
    /// rejection when the change names another store than the record's.
    fn merge_pushed(
        &mut self,
        key: &Key,
        prepared: &PreparedPush,
    ) -> Result<Result<usize, Rejection>, Error> {
        let change = &prepared.change;
        let latest = change.change.latest().map_or(0, |s| s.hlc);
        // A defined collection's record is checked as merged, so it never takes the
        // shortcut of storing the change as a new record unread.
        if prepared.definition().is_none() && !self.group.records.contains_key(key) {
            self.group.seq += 1;
            let fresh = (Held::New(prepared.fresh().clone()), Some(self.group.seq));
            self.group.records.insert(key.clone(), fresh);
            self.group.clock.observe(latest);
            return Ok(Ok(0));
        }
        let mut state = self.state(key)?.unwrap_or_default();
        match merge(&mut state, &change.change) {
            Ok(report) => {
                if let Err(unfit) = prepared.check_definition(&state) {
                    return Ok(Err(unfit));
                }
                self.group.clock.observe(latest);
                for conflict in &report.conflicts {
                    self.group.conflicts.push(Conflicted {
                        org: key.0,
                        collection: key.1.clone(),
                        record_id: key.2.clone(),
                        field: conflict.field.clone(),
                        winner: conflict.winner.clone(),
                        loser: conflict.loser.clone(),
                    });
                }
                if report.changed {
                    self.group.seq += 1;
                    let held = (Held::Merged(state), Some(self.group.seq));
                    self.group.records.insert(key.clone(), held);
                }
                Ok(Ok(report.conflicts.len()))
            }
            Err(MergeError::StoreMismatch { have, got }) => Ok(Err(Rejection::StoreMismatch {
                have: describe_store(have),
                got: describe_store(got),
            })),
        }
    }

    /// Whether merging the change would change nothing in the primary's copy.
    fn holds_already(&mut self, key: &Key, prepared: &PreparedPush) -> Result<bool, Error> {
        let Some(mut state) = self.state(key)? else {
            return Ok(false);
        };
        Ok(merge(&mut state, &prepared.change.change).is_ok_and(|report| !report.changed))
    }

    /// Logs a rejected change and answers it, with the primary's copy of the record
    /// when the site may hold it.
    fn reject(
        &mut self,
        key: &Key,
        site: SiteId,
        prepared: &PreparedPush,
        rejection: Rejection,
        rights: &Rights,
        outcome: &mut PushOutcome,
    ) -> Result<(), Error> {
        let change = &prepared.change;
        let reason = rejection.to_string();
        tracing::info!(site, collection = %change.collection, id = %change.id, %reason, "change rejected");
        self.group.rejections.push(Rejected {
            org: key.0,
            site,
            change_seq: change.seq,
            collection: change.collection.clone(),
            record_id: change.id.clone(),
            reason: reason.clone(),
            fields: serde_json::Value::Object(change.change.values()).to_string(),
        });
        let record = self
            .state(key)?
            .filter(|state| rights.writable.routes(state.store));
        outcome.response.rejected.push(RejectedChange {
            seq: change.seq,
            collection: change.collection.clone(),
            id: change.id.clone(),
            reason,
            record,
        });
        Ok(())
    }
}

/// Writes what a group changed, from arrays: its rejections and conflicts, when it
/// has any, then its records, the sites' acknowledgements and the head in one statement.
fn write_group(tx: &mut Tx, group: &Group, now_ms: u64) -> Result<(), Error> {
    if !group.rejections.is_empty() {
        let r = &group.rejections;
        tx.execute(
            "INSERT INTO rejections (org, site, at, change_seq, collection, record_id, reason, fields)
             SELECT o, s, $3, c, col, rid, reason, f
               FROM unnest($1::BIGINT[], $2::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
                    WITH ORDINALITY AS t(o, s, c, col, rid, reason, f, n)
              ORDER BY n",
            &[
                &r.iter().map(|r| sql(r.org)).collect::<Vec<_>>(),
                &r.iter().map(|r| i64::from(r.site)).collect::<Vec<_>>(),
                &sql(now_ms),
                &r.iter().map(|r| sql(r.change_seq)).collect::<Vec<_>>(),
                &r.iter().map(|r| r.collection.as_str()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.record_id.as_str()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(),
                &r.iter().map(|r| r.fields.as_str()).collect::<Vec<_>>(),
            ],
        )?;
    }
    if !group.conflicts.is_empty() {
        let c = &group.conflicts;
        let encode = |v: &FieldVersion| serde_json::to_string(v).unwrap_or_default();
        tx.execute(
            "INSERT INTO conflicts (org, at, collection, record_id, field, winner, loser)
             SELECT o, $2, col, rid, f, w, l
               FROM unnest($1::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])
                    WITH ORDINALITY AS t(o, col, rid, f, w, l, n)
              ORDER BY n",
            &[
                &c.iter().map(|c| sql(c.org)).collect::<Vec<_>>(),
                &sql(now_ms),
                &c.iter().map(|c| c.collection.as_str()).collect::<Vec<_>>(),
                &c.iter().map(|c| c.record_id.as_str()).collect::<Vec<_>>(),
                &c.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
                &c.iter().map(|c| encode(&c.winner)).collect::<Vec<_>>(),
                &c.iter().map(|c| encode(&c.loser)).collect::<Vec<_>>(),
            ],
        )?;
    }
    write_records(tx, group, now_ms)
}

/// Writes the records a group changed (those with a new sequence, each once), what each
/// site has had acknowledged, and the head: one round trip.
fn write_records(tx: &mut Tx, group: &Group, now_ms: u64) -> Result<(), Error> {
    let mut columns = RecordColumns::default();
    for ((org, collection, record_id), (held, seq)) in &group.records {
        let Some(seq) = seq else { continue };
        let (store, deleted, bytes) = match held {
            Held::Merged(state) => (state.store, state.is_deleted(), state.encode()),
            Held::New(encoded) => (encoded.store(), encoded.deleted(), encoded.bytes().to_vec()),
            // Only records the group changed have a sequence, and those are merged or new.
            Held::Read(_) => continue,
        };
        columns.orgs.push(sql(*org));
        columns.collections.push(collection.as_str());
        columns.ids.push(record_id.as_str());
        columns.stores.push(store.map(sql));
        columns.deleted.push(deleted);
        columns.seqs.push(sql(*seq));
        columns.files.push(names_files(&bytes));
        columns.states.push(bytes);
    }
    let (sites, acked): (Vec<i64>, Vec<i64>) = group
        .acked
        .iter()
        .map(|(site, acked)| (i64::from(*site), sql(*acked)))
        .unzip();
    tx.execute(
        "WITH written AS (
              INSERT INTO records (org, collection, id, store, deleted, seq, state, files)
              SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[],
                                   $5::BOOLEAN[], $6::BIGINT[], $7::BYTEA[], $8::BOOLEAN[])
              ON CONFLICT (org, collection, id) DO UPDATE
              SET store = excluded.store, deleted = excluded.deleted, seq = excluded.seq,
                  state = excluded.state, files = excluded.files
              RETURNING 1),
         acked AS (
              UPDATE sites SET push_acked = GREATEST(push_acked, v.acked), last_contact = $11
                FROM unnest($9::BIGINT[], $10::BIGINT[]) AS v(id, acked)
               WHERE sites.id = v.id
              RETURNING 1)
         UPDATE head SET seq = $12, hlc = $13",
        &[
            &columns.orgs,
            &columns.collections,
            &columns.ids,
            &columns.stores,
            &columns.deleted,
            &columns.seqs,
            &columns.states,
            &columns.files,
            &sites,
            &acked,
            &sql(now_ms),
            &sql(group.seq),
            &sql(group.clock.last()),
        ],
    )?;
    Ok(())
}

#[derive(Default)]
struct RecordColumns<'a> {
    orgs: Vec<i64>,
    collections: Vec<&'a str>,
    ids: Vec<&'a str>,
    stores: Vec<Option<i64>>,
    deleted: Vec<bool>,
    seqs: Vec<i64>,
    states: Vec<Vec<u8>>,
    files: Vec<Option<bool>>,
}

pub(crate) fn restricted_collections(tx: &mut Tx, org: OrgId) -> Result<HashSet<String>, Error> {
    let rows = tx.query(
        "SELECT collection FROM restricted WHERE org = $1",
        &[&sql(org)],
    )?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The store filter of a pull: `None` for every store (and the organisation-wide
/// records); otherwise the stores, with `wide` saying whether organisation-wide
/// records come too.
fn routing(assignment: &Assignment, only: Option<&BTreeSet<StoreId>>) -> (Option<Vec<i64>>, bool) {
    match only {
        Some(only) => (Some(only.iter().map(|s| sql(*s)).collect()), false),
        None if assignment.all_stores => (None, true),
        None => (
            Some(assignment.stores.iter().map(|s| sql(*s)).collect()),
            true,
        ),
    }
}

/// One page of the records routed to a site after `cursor` (see the trait), with the
/// cursor after it: the last record's sequence, or, when nothing more is routed, the
/// head read in the same snapshot (everything up to it is here).
pub(crate) fn pull_page(
    tx: &mut Tx,
    org: OrgId,
    assignment: &Assignment,
    only: Option<&BTreeSet<StoreId>>,
    cursor: u64,
    limit: usize,
) -> Result<PulledPage, Error> {
    let (stores, wide) = routing(assignment, only);
    let take = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    // One statement, so one snapshot: the head it reads covers every record it reads.
    // The head row comes alone when no record follows the cursor.
    let rows = tx.query(
        "SELECT h.seq, h.incarnation, r.seq, r.collection, r.id, r.state
           FROM head h
           LEFT JOIN LATERAL (
                SELECT seq, collection, id, state FROM records
                 WHERE org = $1 AND seq > $2
                   AND ($3::BIGINT[] IS NULL OR store = ANY($3) OR ($4 AND store IS NULL))
                 ORDER BY seq LIMIT $5) r ON true",
        &[&sql(org), &sql(cursor), &stores, &wide, &take],
    )?;
    // In sequence order whatever order the join gave (already sorted: a linear check).
    let mut rows = rows;
    rows.sort_by_key(|row| row.get::<_, Option<i64>>(2));
    let Some(first) = rows.first() else {
        return Err(StoreError::Corrupt("the head row is missing".into()).into());
    };
    let (head, incarnation) = (id(first.get(0)), id(first.get(1)));
    let found = rows.len() - usize::from(first.get::<_, Option<i64>>(2).is_none());
    let more = found > limit;
    let mut records = Vec::with_capacity(found.min(limit));
    for row in rows.into_iter().take(found.min(limit)) {
        let record_id: String = row.get(4);
        let corrupt =
            |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("record {record_id:?}: {e}"));
        let bytes: Vec<u8> = row.get(5);
        let text = String::from_utf8(bytes).map_err(|e| corrupt(&e))?;
        let state = RawValue::from_string(text).map_err(|e| corrupt(&e))?;
        records.push(PulledRecord {
            seq: id(row.get(2)),
            collection: row.get(3),
            state,
            id: record_id,
        });
    }
    let next = match records.last() {
        Some(last) if more => last.seq,
        _ => head.max(cursor),
    };
    Ok(PulledPage {
        records,
        next,
        more,
        head,
        incarnation,
    })
}

/// How many records routed to a site changed after `cursor`.
pub(crate) fn routed_after(
    tx: &mut Tx,
    org: OrgId,
    assignment: &Assignment,
    cursor: u64,
) -> Result<u64, Error> {
    let (stores, wide) = routing(assignment, None);
    let row = tx.query_one(
        "SELECT COUNT(*) FROM records
          WHERE org = $1 AND seq > $2
            AND ($3::BIGINT[] IS NULL OR store = ANY($3) OR ($4 AND store IS NULL))",
        &[&sql(org), &sql(cursor), &stores, &wide],
    )?;
    Ok(id(row.get(0)))
}
