//! [`SiteStorage`]: reading records, writing them locally (from the CLI or the local
//! API), and reading the conflict and rejection logs.

use crate::journal::{Setting, meta_u64, set_meta};
use crate::{Error, SqliteStore, id, sql};
use rusqlite::{OptionalExtension, Transaction, params};
use sitesync_core::{Clock, FieldVersion, OrgId, RecordState, SiteId, validate};
use sitesync_store::{
    ConflictRow, Digests, ListQuery, LocalWrite, MAX_AHEAD_MS, RejectionRow, SiteStorage,
    StoreDigest, StoreError, StoredRecord,
};

impl SiteStorage for SqliteStore {
    /// One record, deleted or not; `None` if this site has never seen it.
    fn record(
        &self,
        org: OrgId,
        collection: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.read(|tx| {
            Ok(
                load(tx, org, collection, id)?.map(|(state, seq)| StoredRecord {
                    collection: collection.to_string(),
                    id: id.to_string(),
                    state,
                    seq,
                }),
            )
        })
    }

    /// Live (not deleted) records of a collection, in id order.
    fn list(&self, org: OrgId, query: &ListQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, state, seq FROM records
                 WHERE org = ?1 AND collection = ?2 AND deleted = 0
                   AND (?3 IS NULL OR store = ?3) AND id > ?4
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    sql(org),
                    query.collection,
                    query.store.map(sql),
                    query.after.as_deref().unwrap_or(""),
                    query.limit
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (record_id, bytes, seq) = row?;
                out.push(StoredRecord {
                    collection: query.collection.clone(),
                    state: decode(&bytes, &record_id)?,
                    id: record_id,
                    seq: id(seq),
                });
            }
            Ok(out)
        })
    }

    fn records_naming_files(&self, org: OrgId) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(|tx| {
            // The partial index records_naming_files holds exactly these records.
            let mut stmt = tx.prepare_cached(
                "SELECT collection, id, state, seq FROM records INDEXED BY records_naming_files
                 WHERE org = ?1 AND deleted = 0 AND files = 1",
            )?;
            let mut rows = stmt.query(params![sql(org)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let record_id: String = row.get(1)?;
                let bytes: Vec<u8> = row.get(2)?;
                out.push(StoredRecord {
                    collection: row.get(0)?,
                    state: decode(&bytes, &record_id)?,
                    id: record_id,
                    seq: id(row.get::<_, i64>(3)?),
                });
            }
            Ok(out)
        })
    }

    /// A digest of every store this site holds records of, in store order.
    fn digest(&self, org: OrgId) -> Result<Vec<StoreDigest>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT store, collection, id, state FROM records WHERE org = ?1 ORDER BY collection, id",
            )?;
            let mut rows = stmt.query(params![sql(org)])?;
            let mut digests = Digests::default();
            while let Some(row) = rows.next()? {
                let store = row.get::<_, Option<i64>>(0)?.map(id);
                let (collection, record_id, state): (String, String, Vec<u8>) =
                    (row.get(1)?, row.get(2)?, row.get(3)?);
                digests.add(store, &collection, &record_id, &state);
            }
            Ok(digests.finish())
        })
    }

    /// Makes many writes at this site durable in one transaction: all of them or, if
    /// one is refused, none. Returns the records as they now are.
    fn write_local_batch(
        &self,
        org: OrgId,
        writes: Vec<(String, String, LocalWrite)>,
        site: SiteId,
        now_ms: u64,
        outbox: bool,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        for (collection, record_id, _) in &writes {
            validate::stored_collection(collection)?;
            validate::record_id(record_id)?;
        }
        self.write(|tx| {
            let mut clock = Clock::resume(meta_u64(tx, Setting::Hlc)?);
            if outbox {
                clock = satellite_clock(clock, now_ms);
            }
            let mut seq = meta_u64(tx, Setting::Seq)?;
            let mut records = Vec::with_capacity(writes.len());
            for (collection, record_id, write) in writes {
                seq += 1;
                let state = write_one(
                    tx,
                    org,
                    &collection,
                    &record_id,
                    write,
                    (site, now_ms, seq),
                    &mut clock,
                    outbox,
                )?;
                records.push(StoredRecord {
                    collection,
                    id: record_id,
                    state,
                    seq,
                });
            }
            set_meta(tx, Setting::Seq, &seq.to_string())?;
            set_meta(tx, Setting::Hlc, &clock.last().to_string())?;
            Ok(records)
        })
    }

    /// The most recent conflicts of an organisation, newest first.
    fn conflicts(&self, org: OrgId, limit: u32) -> Result<Vec<ConflictRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT at, collection, record_id, field, winner, loser FROM conflicts
                 WHERE org = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![sql(org), limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, collection, record_id, field, winner, loser) = row?;
                let version = |text: &str| {
                    serde_json::from_str::<FieldVersion>(text)
                        .map_err(|e| StoreError::Corrupt(format!("conflict entry: {e}")))
                };
                out.push(ConflictRow {
                    at: id(at),
                    collection,
                    record_id,
                    field,
                    winner: version(&winner)?,
                    loser: version(&loser)?,
                });
            }
            Ok(out)
        })
    }

    /// The most recent rejected changes of an organisation, newest first.
    fn rejections(&self, org: OrgId, limit: u32) -> Result<Vec<RejectionRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {REJECTION} FROM rejections r WHERE org = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![sql(org), limit], |row| Ok(rejection(row)))?;
            rows.map(|r| r?).collect::<Result<Vec<_>, Error>>()
        })
    }

    fn record_rejection(
        &self,
        org: OrgId,
        collection: &str,
        record_id: &str,
    ) -> Result<Option<RejectionRow>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {REJECTION}, r.record_seq IS c.seq
                 FROM rejections r LEFT JOIN records c
                   ON c.org = r.org AND c.collection = r.collection AND c.id = r.record_id
                 WHERE r.org = ?1 AND r.collection = ?2 AND r.record_id = ?3
                 ORDER BY r.id DESC LIMIT 1"
            ))?;
            let newest = stmt
                .query_row(params![sql(org), collection, record_id], |row| {
                    Ok((rejection(row), row.get::<_, bool>(8)?))
                })
                .optional()?;
            match newest {
                Some((row, true)) => Ok(Some(row?)),
                _ => Ok(None),
            }
        })
    }

    fn rejection_count(&self, org: OrgId, after: u64) -> Result<u64, StoreError> {
        self.read(|tx| {
            Ok(id(tx.query_row(
                "SELECT COUNT(*) FROM rejections WHERE org = ?1 AND id > ?2",
                [sql(org), sql(after)],
                |row| row.get(0),
            )?))
        })
    }

    fn collections(&self, org: OrgId) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT collection, COUNT(*) FROM records WHERE org = ?1 AND deleted = 0
                 GROUP BY collection ORDER BY collection",
            )?;
            let rows = stmt.query_map([sql(org)], |row| Ok((row.get(0)?, id(row.get(1)?))))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn head(&self) -> Result<u64, StoreError> {
        self.read(|tx| meta_u64(tx, Setting::Seq))
    }

    fn collection_version(&self, org: OrgId, collection: &str) -> Result<u64, StoreError> {
        self.read(|tx| {
            let seq: i64 = tx
                .prepare_cached(
                    // By the key's index: on the primary the planner would otherwise walk
                    // records_by_seq backwards through every record of the organisation
                    // when the collection has none (a push went from 90k to 17k changes/s).
                    "SELECT COALESCE(MAX(seq), 0) FROM records INDEXED BY records_by_key
                      WHERE org = ?1 AND collection = ?2",
                )?
                .query_row(params![sql(org), collection], |row| row.get(0))?;
            Ok(id(seq))
        })
    }
}

/// The clock a satellite stamps a local write with. A reading more than
/// `MAX_AHEAD_MS` ahead of the wall clock can only come from this site's own wall clock
/// having been wrong (the primary refuses stamps that far ahead of its clock, so no
/// stamp the site has seen is, when its clock is right): every change stamped with it
/// would be refused, even after the clock is corrected, until the wall clock catches up.
/// So the clock starts again from the wall clock; the changes made with the wrong clock
/// are refused and taken back as before.
fn satellite_clock(clock: Clock, now_ms: u64) -> Clock {
    let ahead = clock.last() >> 16 > now_ms.saturating_add(MAX_AHEAD_MS);
    if ahead { Clock::default() } else { clock }
}

/// One local write inside a transaction: builds the change from the current state,
/// merges it, saves the record with sequence `seq` and queues the change if `outbox`.
#[allow(clippy::too_many_arguments)]
fn write_one(
    tx: &Transaction,
    org: OrgId,
    collection: &str,
    record_id: &str,
    write: LocalWrite,
    (site, now_ms, seq): (SiteId, u64, u64),
    clock: &mut Clock,
    outbox: bool,
) -> Result<RecordState, Error> {
    let (mut state, _) = load(tx, org, collection, record_id)?.unwrap_or_default();
    let change = write.apply(&mut state, collection, record_id, clock, (site, now_ms))?;
    save(tx, org, collection, record_id, &state, seq)?;
    if outbox {
        tx.prepare_cached(
            "INSERT INTO outbox (collection, id, store, change) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            collection,
            record_id,
            change.store.map(sql),
            change.encode()
        ])?;
    }
    Ok(state)
}

/// Reads a record's state and sequence inside a transaction.
pub(crate) fn load(
    tx: &Transaction,
    org: OrgId,
    collection: &str,
    record_id: &str,
) -> Result<Option<(RecordState, u64)>, Error> {
    let row = tx
        .prepare_cached(
            "SELECT state, seq FROM records WHERE org = ?1 AND collection = ?2 AND id = ?3",
        )?
        .query_row(params![sql(org), collection, record_id], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
        })
        .optional()?;
    match row {
        Some((bytes, seq)) => Ok(Some((decode(&bytes, record_id)?, id(seq)))),
        None => Ok(None),
    }
}

/// Writes a record's state with a new sequence inside a transaction.
pub(crate) fn save(
    tx: &Transaction,
    org: OrgId,
    collection: &str,
    record_id: &str,
    state: &RecordState,
    seq: u64,
) -> Result<(), Error> {
    let bytes = state.encode();
    tx.prepare_cached(
        "INSERT INTO records (org, collection, id, store, deleted, seq, state, files)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (org, collection, id) DO UPDATE
         SET store = excluded.store, deleted = excluded.deleted, seq = excluded.seq,
             state = excluded.state, files = excluded.files",
    )?
    .execute(params![
        sql(org),
        collection,
        record_id,
        state.store.map(sql),
        state.is_deleted(),
        sql(seq),
        &bytes,
        names_files(&bytes)
    ])?;
    Ok(())
}

/// The `files` column of a state's bytes: 1 when they may name a file, else NULL
/// (which keeps the record out of the partial index).
pub(crate) fn names_files(bytes: &[u8]) -> Option<i64> {
    sitesync_core::file::may_name_file(bytes).then_some(1)
}

pub(crate) fn decode(bytes: &[u8], record_id: &str) -> Result<RecordState, Error> {
    Ok(RecordState::decode(bytes)
        .map_err(|e| StoreError::Corrupt(format!("record {record_id:?}: {e}")))?)
}

/// The columns of a [`RejectionRow`], as [`rejection`] reads them.
const REJECTION: &str =
    "r.id, r.at, r.site, r.change_seq, r.collection, r.record_id, r.reason, r.fields";

/// A rejection from a row of [`REJECTION`] columns (the table named `r`).
fn rejection(row: &rusqlite::Row) -> Result<RejectionRow, Error> {
    let fields = match row.get::<_, Option<String>>(7)? {
        None => None,
        Some(text) => match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                let rejection = row.get::<_, i64>(0)?;
                let what = format!("the fields of rejection {rejection}");
                return Err(StoreError::Corrupt(what).into());
            }
        },
    };
    Ok(RejectionRow {
        id: id(row.get(0)?),
        at: id(row.get(1)?),
        site: row.get(2)?,
        change_seq: id(row.get(3)?),
        collection: row.get(4)?,
        record_id: row.get(5)?,
        reason: row.get(6)?,
        fields,
    })
}
