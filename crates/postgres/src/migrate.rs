//! Moving a SQLite primary's state into PostgreSQL (`sitesync migrate --to`): every
//! table copied row for row, ids, sequences, cursors and the incarnation kept, so
//! satellites go on with the new primary without re-enrolling, pulling again or giving
//! back what they hold.

use crate::{Error, PgStore, Tx};
use postgres::types::ToSql;
use rusqlite::OptionalExtension;
use rusqlite::types::ValueRef;
use sitesync_store::StoreError;
use std::path::Path;

/// How a column is carried over.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
    Bytes,
}

use Kind::{Bool, Bytes, Int, Text};

/// The tables, in an order their references allow, with their columns.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "orgs",
        &[
            ("id", Int),
            ("name", Text),
            ("key_generation", Int),
            ("created_at", Int),
            ("time_zone", Text),
            ("deleted_at", Int),
        ],
    ),
    ("stores", &[("id", Int), ("org", Int), ("name", Text)]),
    (
        "sites",
        &[
            ("id", Int),
            ("org", Int),
            ("name", Text),
            ("secret_hash", Text),
            ("all_stores", Bool),
            ("assignment_version", Int),
            ("created_at", Int),
            ("last_contact", Int),
            ("pull_cursor", Int),
            ("push_acked", Int),
            ("revoked", Bool),
            ("version", Text),
            ("last_error_at", Int),
            ("last_error", Text),
        ],
    ),
    (
        "site_stores",
        &[("site", Int), ("store", Int), ("leaving", Bool)],
    ),
    ("restricted", &[("org", Int), ("collection", Text)]),
    (
        "licences",
        &[("org", Int), ("sites", Int), ("expires", Int)],
    ),
    (
        "licence_modules",
        &[("org", Int), ("module", Text), ("until", Int)],
    ),
    (
        "accounts",
        &[
            ("id", Int),
            ("email", Text),
            ("password_hash", Text),
            ("confirmed", Bool),
            ("disabled", Bool),
            ("org_limit", Int),
            ("created_at", Int),
            ("language", Text),
        ],
    ),
    (
        "tokens",
        &[
            ("hash", Text),
            ("account", Int),
            ("purpose", Text),
            ("created_at", Int),
            ("seen_at", Int),
            ("expires_at", Int),
        ],
    ),
    ("members", &[("org", Int), ("account", Int), ("role", Text)]),
    (
        "invitations",
        &[
            ("hash", Text),
            ("org", Int),
            ("email", Text),
            ("role", Text),
            ("invited_by", Int),
            ("expires_at", Int),
        ],
    ),
    (
        "email_changes",
        &[
            ("hash", Text),
            ("account", Int),
            ("email", Text),
            ("expires_at", Int),
        ],
    ),
    (
        "audit",
        &[
            ("id", Int),
            ("org", Int),
            ("at", Int),
            ("actor", Text),
            ("account", Int),
            ("from_ip", Text),
            ("action", Text),
            ("detail", Text),
        ],
    ),
    (
        "rejections",
        &[
            ("id", Int),
            ("org", Int),
            ("site", Int),
            ("at", Int),
            ("change_seq", Int),
            ("collection", Text),
            ("record_id", Text),
            ("reason", Text),
            ("fields", Text),
            ("record_seq", Int),
        ],
    ),
    (
        "conflicts",
        &[
            ("id", Int),
            ("org", Int),
            ("at", Int),
            ("collection", Text),
            ("record_id", Text),
            ("field", Text),
            ("winner", Text),
            ("loser", Text),
        ],
    ),
    (
        "records",
        &[
            ("org", Int),
            ("collection", Text),
            ("id", Text),
            ("store", Int),
            ("deleted", Bool),
            ("seq", Int),
            ("state", Bytes),
            ("files", Bool),
        ],
    ),
];

/// Tables whose ids PostgreSQL numbers (BIGSERIAL): their sequences continue after the
/// ids copied.
const NUMBERED: &[&str] = &[
    "orgs",
    "stores",
    "accounts",
    "audit",
    "rejections",
    "conflicts",
];

/// Rows copied per statement.
const CHUNK: usize = 5_000;

/// What a migration copied: rows per table.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies the primary in the SQLite file `source` into `target`, in one transaction.
/// `replace` empties a target that holds a primary already (refused otherwise);
/// `progress` is told (rows copied, rows in all) as it goes.
pub fn migrate_sqlite(
    source: &Path,
    target: &PgStore,
    replace: bool,
    progress: &dyn Fn(u64, u64),
) -> Result<Copied, StoreError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let sqlite = rusqlite::Connection::open_with_flags(source, flags)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", source.display())))?;
    let read = |e: rusqlite::Error| StoreError::Unavailable(format!("{}: {e}", source.display()));
    let mut total = 0u64;
    for (table, _) in TABLES {
        let n: i64 = sqlite
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(read)?;
        total += crate::id(n);
    }
    let meta = |key: &str| -> Result<i64, StoreError> {
        let value: Option<String> = sqlite
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(read)?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    let head = (meta("seq")?, meta("hlc")?, meta("incarnation")?);
    let copied = target.write(|tx| {
        empty_or_replace(tx, replace)?;
        let mut done = 0u64;
        let mut copied = Copied::new();
        for (table, columns) in TABLES {
            let n = copy_table(&sqlite, tx, table, columns, &mut |rows| {
                done += rows;
                progress(done, total);
            })
            .map_err(|e| match e {
                Error::Store(StoreError::Unavailable(m)) => {
                    StoreError::Unavailable(format!("{table}: {m}"))
                }
                e => StoreError::Unavailable(format!("{table}: {e}")),
            })?;
            copied.push((*table, n));
        }
        for table in NUMBERED {
            tx.execute_text(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )?;
        }
        tx.execute(
            "UPDATE head SET seq = $1, hlc = $2, incarnation = $3",
            &[&head.0, &head.1, &head.2],
        )?;
        Ok(copied)
    })?;
    // The planner's statistics, now rather than at autovacuum's next round.
    target.statement(|tx| tx.execute_text("ANALYZE", &[]))?;
    Ok(copied)
}

/// Refuses a target holding a primary, or empties it when `replace`.
fn empty_or_replace(tx: &mut Tx, replace: bool) -> Result<(), Error> {
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT COUNT(*) FROM orgs) + (SELECT COUNT(*) FROM accounts)",
            &[],
        )?
        .get(0);
    if held > 0 && !replace {
        return Err(StoreError::Conflict(format!(
            "the target database holds a primary already ({held} organisations and accounts): migrate into an empty database, or pass --replace to empty it first"
        ))
        .into());
    }
    let names: Vec<&str> = TABLES.iter().rev().map(|(t, _)| *t).collect();
    tx.execute_text(&format!("TRUNCATE {}, nonces", names.join(", ")), &[])?;
    Ok(())
}

/// One column's values of a chunk, typed for PostgreSQL.
enum Column {
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Int => Column::Int(Vec::new()),
            Bool => Column::Bool(Vec::new()),
            Text => Column::Text(Vec::new()),
            Bytes => Column::Bytes(Vec::new()),
        }
    }

    fn push(&mut self, value: ValueRef) {
        let int = match value {
            ValueRef::Integer(n) => Some(n),
            _ => None,
        };
        let bytes = match value {
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
            _ => None,
        };
        match self {
            Column::Int(v) => v.push(int),
            Column::Bool(v) => v.push(int.map(|n| n != 0)),
            Column::Text(v) => v.push(bytes.map(|b| String::from_utf8_lossy(b).into_owned())),
            Column::Bytes(v) => v.push(bytes.map(<[u8]>::to_vec)),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(v) => v,
            Column::Bool(v) => v,
            Column::Text(v) => v,
            Column::Bytes(v) => v,
        }
    }

    fn array_type(kind: Kind) -> &'static str {
        match kind {
            Int => "BIGINT[]",
            Bool => "BOOLEAN[]",
            Text => "TEXT[]",
            Bytes => "BYTEA[]",
        }
    }
}

/// Copies one table in chunks of [`CHUNK`] rows; returns how many.
fn copy_table(
    sqlite: &rusqlite::Connection,
    tx: &mut Tx,
    table: &str,
    columns: &[(&str, Kind)],
    progress: &mut dyn FnMut(u64),
) -> Result<u64, Error> {
    let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{}", i + 1, Column::array_type(*kind)))
        .collect();
    let insert = format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
        names.join(", "),
        arrays.join(", ")
    );
    let unreadable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
    let mut statement = sqlite
        .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
        .map_err(unreadable)?;
    let mut rows = statement.query([]).map_err(unreadable)?;
    let mut chunk: Vec<Column> = columns.iter().map(|(_, k)| Column::new(*k)).collect();
    let (mut filled, mut copied) = (0usize, 0u64);
    let mut flush = |chunk: &mut Vec<Column>, filled: &mut usize| -> Result<(), Error> {
        if *filled == 0 {
            return Ok(());
        }
        let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().map(Column::param).collect();
        tx.execute_text(&insert, &params)?;
        progress(*filled as u64);
        *chunk = columns.iter().map(|(_, k)| Column::new(*k)).collect();
        *filled = 0;
        Ok(())
    };
    while let Some(row) = rows.next().map_err(unreadable)? {
        for (i, column) in chunk.iter_mut().enumerate() {
            column.push(row.get_ref(i).map_err(unreadable)?);
        }
        filled += 1;
        copied += 1;
        if filled == CHUNK {
            flush(&mut chunk, &mut filled)?;
        }
    }
    flush(&mut chunk, &mut filled)?;
    Ok(copied)
}
