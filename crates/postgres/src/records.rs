//! [`SiteStorage`]: reading records, the primary's own writes (from the CLI, the
//! local API, the portal), and reading the conflict and rejection logs.

use crate::{Error, PgStore, Tx, id, sql};
use postgres::Row;
use sitesync_core::{Clock, FieldVersion, OrgId, RecordState, SiteId, validate};
use sitesync_store::{
    ConflictRow, Digests, ListQuery, LocalWrite, RejectionRow, SiteStorage, StoreDigest,
    StoreError, StoredRecord,
};

/// The `head` row, locked until the transaction ends: every transaction that numbers
/// changes takes it first (see the crate's documentation).
pub(crate) struct Head {
    pub seq: u64,
    pub clock: Clock,
    pub incarnation: u64,
}

impl Head {
    pub(crate) fn lock(tx: &mut Tx) -> Result<Head, Error> {
        let row = tx.query_one("SELECT seq, hlc, incarnation FROM head FOR UPDATE", &[])?;
        Ok(Head {
            seq: id(row.get(0)),
            clock: Clock::resume(id(row.get(1))),
            incarnation: id(row.get(2)),
        })
    }

    pub(crate) fn save(&self, tx: &mut Tx) -> Result<(), Error> {
        tx.execute(
            "UPDATE head SET seq = $1, hlc = $2",
            &[&sql(self.seq), &sql(self.clock.last())],
        )?;
        Ok(())
    }
}

impl SiteStorage for PgStore {
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

    fn list(&self, org: OrgId, query: &ListQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT id, state, seq FROM records
                 WHERE org = $1 AND collection = $2 AND NOT deleted
                   AND ($3::BIGINT IS NULL OR store = $3) AND id > $4
                 ORDER BY id LIMIT $5",
                &[
                    &sql(org),
                    &query.collection,
                    &query.store.map(sql),
                    &query.after.as_deref().unwrap_or(""),
                    &i64::from(query.limit),
                ],
            )?;
            rows.iter()
                .map(|row| stored(query.collection.clone(), row.get(0), row.get(1), row.get(2)))
                .collect()
        })
    }

    fn records_naming_files(&self, org: OrgId) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT collection, id, state, seq FROM records
                 WHERE org = $1 AND NOT deleted AND files",
                &[&sql(org)],
            )?;
            rows.iter()
                .map(|row| stored(row.get(0), row.get(1), row.get(2), row.get(3)))
                .collect()
        })
    }

    fn digest(&self, org: OrgId) -> Result<Vec<StoreDigest>, StoreError> {
        self.read(|tx| {
            let mut digests = Digests::default();
            // In pages by key, so an organisation of millions of records is never held
            // in memory at once.
            let mut after = (String::new(), String::new());
            loop {
                let rows = tx.query(
                    "SELECT store, collection, id, state FROM records
                     WHERE org = $1 AND (collection, id) > ($2, $3)
                     ORDER BY collection, id LIMIT 10000",
                    &[&sql(org), &after.0, &after.1],
                )?;
                let Some(last) = rows.last() else { break };
                after = (last.get(1), last.get(2));
                for row in &rows {
                    let store = row.get::<_, Option<i64>>(0).map(id);
                    digests.add(store, row.get(1), row.get(2), row.get(3));
                }
            }
            Ok(digests.finish())
        })
    }

    /// The primary's own writes, all in one transaction or none. PostgreSQL holds only
    /// a primary, which has no outbox: `outbox` is refused.
    fn write_local_batch(
        &self,
        org: OrgId,
        writes: Vec<(String, String, LocalWrite)>,
        site: SiteId,
        now_ms: u64,
        outbox: bool,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        if outbox {
            return Err(StoreError::Refused(
                "a satellite's records live in SQLite, not PostgreSQL".into(),
            ));
        }
        for (collection, record_id, _) in &writes {
            validate::stored_collection(collection)?;
            validate::record_id(record_id)?;
        }
        self.write(|tx| {
            let mut head = Head::lock(tx)?;
            let mut records = Vec::with_capacity(writes.len());
            for (collection, record_id, write) in writes {
                let (mut state, _) = load(tx, org, &collection, &record_id)?.unwrap_or_default();
                write.apply(
                    &mut state,
                    &collection,
                    &record_id,
                    &mut head.clock,
                    (site, now_ms),
                )?;
                head.seq += 1;
                save(tx, org, &collection, &record_id, &state, head.seq)?;
                records.push(StoredRecord {
                    collection,
                    id: record_id,
                    state,
                    seq: head.seq,
                });
            }
            head.save(tx)?;
            Ok(records)
        })
    }

    fn conflicts(&self, org: OrgId, limit: u32) -> Result<Vec<ConflictRow>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT at, collection, record_id, field, winner, loser FROM conflicts
                 WHERE org = $1 ORDER BY id DESC LIMIT $2",
                &[&sql(org), &i64::from(limit)],
            )?;
            let version = |text: &str| {
                serde_json::from_str::<FieldVersion>(text)
                    .map_err(|e| StoreError::Corrupt(format!("conflict entry: {e}")))
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(ConflictRow {
                    at: id(row.get(0)),
                    collection: row.get(1),
                    record_id: row.get(2),
                    field: row.get(3),
                    winner: version(row.get(4))?,
                    loser: version(row.get(5))?,
                });
            }
            Ok(out)
        })
    }

    fn rejections(&self, org: OrgId, limit: u32) -> Result<Vec<RejectionRow>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT r.id, r.at, r.site, r.change_seq, r.collection, r.record_id, r.reason, r.fields
                   FROM rejections r WHERE org = $1 ORDER BY id DESC LIMIT $2",
                &[&sql(org), &i64::from(limit)],
            )?;
            rows.iter().map(rejection).collect()
        })
    }

    fn rejection_count(&self, org: OrgId, after: u64) -> Result<u64, StoreError> {
        self.read(|tx| {
            let row = tx.query_one(
                "SELECT COUNT(*) FROM rejections WHERE org = $1 AND id > $2",
                &[&sql(org), &sql(after)],
            )?;
            Ok(id(row.get(0)))
        })
    }

    fn record_rejection(
        &self,
        org: OrgId,
        collection: &str,
        record_id: &str,
    ) -> Result<Option<RejectionRow>, StoreError> {
        self.read(|tx| {
            let newest = tx.query_opt(
                "SELECT r.id, r.at, r.site, r.change_seq, r.collection, r.record_id, r.reason, r.fields,
                        r.record_seq IS NOT DISTINCT FROM c.seq
                   FROM rejections r LEFT JOIN records c
                     ON c.org = r.org AND c.collection = r.collection AND c.id = r.record_id
                  WHERE r.org = $1 AND r.collection = $2 AND r.record_id = $3
                  ORDER BY r.id DESC LIMIT 1",
                &[&sql(org), &collection, &record_id],
            )?;
            match newest {
                Some(row) if row.get::<_, bool>(8) => Ok(Some(rejection(&row)?)),
                _ => Ok(None),
            }
        })
    }

    fn head(&self) -> Result<u64, StoreError> {
        self.statement(|tx| Ok(id(tx.query_one("SELECT seq FROM head", &[])?.get(0))))
    }

    fn collections(&self, org: OrgId) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT collection, COUNT(*) FROM records WHERE org = $1 AND NOT deleted
                 GROUP BY collection ORDER BY collection",
                &[&sql(org)],
            )?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), id(row.get(1))))
                .collect())
        })
    }

    fn collection_version(&self, org: OrgId, collection: &str) -> Result<u64, StoreError> {
        self.read(|tx| {
            let row = tx.query_one(
                "SELECT COALESCE(MAX(seq), 0) FROM records WHERE org = $1 AND collection = $2",
                &[&sql(org), &collection],
            )?;
            Ok(id(row.get(0)))
        })
    }
}

fn stored(
    collection: String,
    record_id: String,
    bytes: &[u8],
    seq: i64,
) -> Result<StoredRecord, Error> {
    Ok(StoredRecord {
        collection,
        state: decode(bytes, &record_id)?,
        id: record_id,
        seq: id(seq),
    })
}

/// Reads a record's state and sequence inside a transaction.
pub(crate) fn load(
    tx: &mut Tx,
    org: OrgId,
    collection: &str,
    record_id: &str,
) -> Result<Option<(RecordState, u64)>, Error> {
    let row = tx.query_opt(
        "SELECT state, seq FROM records WHERE org = $1 AND collection = $2 AND id = $3",
        &[&sql(org), &collection, &record_id],
    )?;
    match row {
        Some(row) => Ok(Some((decode(row.get(0), record_id)?, id(row.get(1))))),
        None => Ok(None),
    }
}

/// Writes a record's state with a new sequence inside a transaction.
pub(crate) fn save(
    tx: &mut Tx,
    org: OrgId,
    collection: &str,
    record_id: &str,
    state: &RecordState,
    seq: u64,
) -> Result<(), Error> {
    let bytes = state.encode();
    tx.execute(
        "INSERT INTO records (org, collection, id, store, deleted, seq, state, files)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (org, collection, id) DO UPDATE
         SET store = excluded.store, deleted = excluded.deleted, seq = excluded.seq,
             state = excluded.state, files = excluded.files",
        &[
            &sql(org),
            &collection,
            &record_id,
            &state.store.map(sql),
            &state.is_deleted(),
            &sql(seq),
            &bytes,
            &names_files(&bytes),
        ],
    )?;
    Ok(())
}

/// The `files` column of a state's bytes: TRUE when they may name a file, else NULL
/// (which keeps the record out of the partial index).
pub(crate) fn names_files(bytes: &[u8]) -> Option<bool> {
    sitesync_core::file::may_name_file(bytes).then_some(true)
}

pub(crate) fn decode(bytes: &[u8], record_id: &str) -> Result<RecordState, Error> {
    Ok(RecordState::decode(bytes)
        .map_err(|e| StoreError::Corrupt(format!("record {record_id:?}: {e}")))?)
}

/// A rejection from a row of columns id, at, site, change_seq, collection, record_id,
/// reason, fields.
fn rejection(row: &Row) -> Result<RejectionRow, Error> {
    let fields = match row.get::<_, Option<String>>(7) {
        None => None,
        Some(text) => match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                let what = format!("the fields of rejection {}", row.get::<_, i64>(0));
                return Err(StoreError::Corrupt(what).into());
            }
        },
    };
    let site: i64 = row.get(2);
    Ok(RejectionRow {
        id: id(row.get(0)),
        at: id(row.get(1)),
        site: SiteId::try_from(site).map_err(|_| StoreError::Corrupt(format!("site {site}")))?,
        change_seq: id(row.get(3)),
        collection: row.get(4),
        record_id: row.get(5),
        reason: row.get(6),
        fields,
    })
}
