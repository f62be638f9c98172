//! The tables. One schema serves both roles: a satellite simply leaves the
//! organisation, store and site tables empty, and holds one organisation's records.
//!
//! Upgrades are numbered by `PRAGMA user_version`; each runs once, in a transaction.

use crate::Error;
use rusqlite::{Connection, TransactionBehavior};

const VERSION_1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE orgs (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    key_generation INTEGER NOT NULL DEFAULT 1,   -- bumped by `org rotate-key`
    created_at     INTEGER NOT NULL
);
CREATE TABLE stores (
    id   INTEGER PRIMARY KEY,
    org  INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    UNIQUE (org, name)
);
CREATE TABLE sites (
    id                 INTEGER PRIMARY KEY,       -- 1 is the primary; satellites >= 2
    org                INTEGER NOT NULL REFERENCES orgs(id),
    name               TEXT NOT NULL,
    secret_hash        TEXT NOT NULL,             -- SHA-256 of the 256-bit site secret
    all_stores         INTEGER NOT NULL DEFAULT 0,
    assignment_version INTEGER NOT NULL DEFAULT 1,
    created_at         INTEGER NOT NULL,
    last_contact       INTEGER,
    pull_cursor        INTEGER NOT NULL DEFAULT 0, -- the site has every routed record up to here
    push_acked         INTEGER NOT NULL DEFAULT 0, -- highest outbox seq applied from the site
    revoked            INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE site_stores (
    site    INTEGER NOT NULL REFERENCES sites(id),
    store   INTEGER NOT NULL REFERENCES stores(id),
    leaving INTEGER NOT NULL DEFAULT 0,  -- unassigned; pushes still accepted until the site purges
    PRIMARY KEY (site, store)
);
CREATE TABLE restricted (
    org        INTEGER NOT NULL,
    collection TEXT NOT NULL,
    PRIMARY KEY (org, collection)
);
CREATE TABLE records (
    -- A rowid table with the record's key in a unique index: records arrive in random
    -- key order, and keeping the ~500-byte states out of the key's B-tree keeps those
    -- inserts cheap (the state is appended; only the small index is updated at random).
    org        INTEGER NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    store      INTEGER,                -- NULL: organisation-wide
    deleted    INTEGER NOT NULL,       -- 1 when the state is a bare tombstone
    seq        INTEGER NOT NULL,       -- sequence of the record's last change on this site
    state      BLOB NOT NULL           -- RecordState as canonical JSON
);
CREATE UNIQUE INDEX records_by_key ON records (org, collection, id);
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after acks
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    store      INTEGER,
    change     BLOB NOT NULL
);
CREATE TABLE rejections (
    id         INTEGER PRIMARY KEY,
    org        INTEGER NOT NULL,
    site       INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    change_seq INTEGER NOT NULL,
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE TABLE conflicts (
    id          INTEGER PRIMARY KEY,
    org         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    field       TEXT NOT NULL,
    winner      TEXT NOT NULL,   -- FieldVersion as JSON
    loser       TEXT NOT NULL
);
";

/// Rejections keep what the change wrote (so an application can enter it again) and the
/// record's sequence after the change was taken back (so a read can tell whether the
/// record is still as the rejection left it); both are NULL in rows of version 1.
const VERSION_2: &str = "
ALTER TABLE rejections ADD COLUMN fields TEXT;          -- the change's fields, a JSON object
ALTER TABLE rejections ADD COLUMN record_seq INTEGER;   -- records.seq once taken back; NULL: removed
CREATE INDEX rejections_by_record ON rejections (org, collection, record_id);
";

const VERSION_3: &str = "
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                 -- argon2id, PHC string
    confirmed     INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    org_limit     INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,                  -- SHA-256 of the token; never the token
    account    INTEGER NOT NULL REFERENCES accounts(id),
    purpose    TEXT NOT NULL,                     -- session, confirm, reset
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX tokens_by_account ON tokens (account, purpose);
CREATE TABLE members (
    org     INTEGER NOT NULL REFERENCES orgs(id),
    account INTEGER NOT NULL REFERENCES accounts(id),
    role    TEXT NOT NULL,                        -- viewer, manager, admin, owner
    PRIMARY KEY (org, account)
);
";

const VERSION_4: &str = "
CREATE TABLE invitations (
    hash       TEXT PRIMARY KEY,                  -- SHA-256 of the token; never the token
    org        INTEGER NOT NULL REFERENCES orgs(id),
    email      TEXT NOT NULL COLLATE NOCASE,
    role       TEXT NOT NULL,
    invited_by INTEGER NOT NULL REFERENCES accounts(id),
    expires_at INTEGER NOT NULL
);
";

/// The audit log (see `AuditStorage`): entries only appended, read newest first by id,
/// by organisation or by the account an entry of no organisation is about.
const VERSION_5: &str = "
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    org     INTEGER,                -- NULL: of no one organisation (sign-ins, settings)
    at      INTEGER NOT NULL,       -- ms since the epoch
    actor   TEXT NOT NULL,          -- an account's e-mail, 'operator (command line)', 'local API'
    account INTEGER,                -- the account the entry is about, if any
    from_ip TEXT,                   -- the request's IP address, if it came over the network
    action  TEXT NOT NULL,          -- login, key_rotated, role_changed, ...
    detail  TEXT NOT NULL           -- never a secret or a password
);
CREATE INDEX audit_by_org ON audit (org, id);
CREATE INDEX audit_by_account ON audit (account, id);
";

/// Licences (see `sitesync_core::licence`): a row per organisation, those made before
/// this version too, with every module off, sites unlimited and no expiry.
const VERSION_6: &str = "
CREATE TABLE licences (
    org     INTEGER PRIMARY KEY REFERENCES orgs(id),
    sites   INTEGER,                              -- most sites enrolled (revoked not counted); NULL: unlimited
    expires INTEGER                               -- last day valid, days since 1970-01-01 UTC; NULL: never
);
CREATE TABLE licence_modules (
    org    INTEGER NOT NULL REFERENCES orgs(id),
    module TEXT NOT NULL,                         -- files, exchange-links; no row: off
    until  INTEGER,                               -- last day on, days since 1970-01-01 UTC; NULL: no end of its own
    PRIMARY KEY (org, module)
);
INSERT INTO licences (org) SELECT id FROM orgs;
";

/// The index a primary reads pulls by ("records of this organisation after sequence
/// C"). Satellites serve no pulls and skip it: every index costs each record written.
pub const PULL_INDEX: &str = "CREATE INDEX IF NOT EXISTS records_by_seq ON records (org, seq)";
/// The name of [`PULL_INDEX`].
pub const PULL_INDEX_NAME: &str = "records_by_seq";

/// Version 7: each organisation's time zone (IANA name), in which the portal shows its
/// times (UTC for organisations made before); the version each site says it runs and
/// the last error it reported.
const VERSION_7: &str = "
ALTER TABLE orgs ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE sites ADD COLUMN version TEXT;
ALTER TABLE sites ADD COLUMN last_error_at INTEGER;
ALTER TABLE sites ADD COLUMN last_error TEXT;
";

/// Version 8: the language an account reads the portal in (NULL: its browser's), and
/// the changes of address asked for, waiting for the link mailed to the new address.
const VERSION_8: &str = "
ALTER TABLE accounts ADD COLUMN language TEXT;   -- a catalogue's tag (en, ru); NULL: automatic
CREATE TABLE email_changes (
    hash       TEXT PRIMARY KEY,                  -- SHA-256 of the link's token; never the token
    account    INTEGER NOT NULL REFERENCES accounts(id),
    email      TEXT NOT NULL COLLATE NOCASE,      -- the new address
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_changes_by_account ON email_changes (account);
";

/// Version 9: an organisation deleted by its owner keeps a row (renamed, with when it
/// was deleted) so that its revoked sites keep their ids, which are never given again;
/// rejections by site, which the portal's sites table counts every time it refreshes.
const VERSION_9: &str = "
ALTER TABLE orgs ADD COLUMN deleted_at INTEGER;
CREATE INDEX rejections_by_site ON rejections (org, site, id);
";

/// Version 10: whether a record's state names a file (it holds `blake3:`; set by the
/// writes with a fast byte search), with a partial index of those records: the file
/// lane, the sweep and `status` read them alone.
const VERSION_10: &str = "
ALTER TABLE records ADD COLUMN files INTEGER;
UPDATE records SET files = 1 WHERE instr(state, 'blake3:') > 0;
CREATE INDEX records_naming_files ON records (org) WHERE files = 1;
";

/// Brings the database up to the current schema.
///
/// The version is read inside the writing transaction, so two processes opening a new
/// database at once cannot both create it.
pub fn upgrade(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 1 {
        tx.execute_batch(VERSION_1)?;
        tx.pragma_update(None, "user_version", 1)?;
    }
    if version < 2 {
        tx.execute_batch(VERSION_2)?;
        tx.pragma_update(None, "user_version", 2)?;
    }
    if version < 3 {
        tx.execute_batch(VERSION_3)?;
        tx.pragma_update(None, "user_version", 3)?;
    }
    if version < 4 {
        tx.execute_batch(VERSION_4)?;
        tx.pragma_update(None, "user_version", 4)?;
    }
    if version < 5 {
        tx.execute_batch(VERSION_5)?;
        tx.pragma_update(None, "user_version", 5)?;
    }
    if version < 6 {
        tx.execute_batch(VERSION_6)?;
        tx.pragma_update(None, "user_version", 6)?;
    }
    if version < 7 {
        tx.execute_batch(VERSION_7)?;
        tx.pragma_update(None, "user_version", 7)?;
    }
    if version < 8 {
        tx.execute_batch(VERSION_8)?;
        tx.pragma_update(None, "user_version", 8)?;
    }
    if version < 9 {
        tx.execute_batch(VERSION_9)?;
        tx.pragma_update(None, "user_version", 9)?;
    }
    if version < 10 {
        tx.execute_batch(VERSION_10)?;
        tx.pragma_update(None, "user_version", 10)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_keeps_its_rejections_through_the_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(VERSION_1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO rejections (org, site, at, change_seq, collection, record_id, reason)
             VALUES (1, 2, 3, 4, 'stock', 'a', 'no')",
            [],
        )
        .unwrap();
        upgrade(&mut conn).unwrap();
        upgrade(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        let row: (String, Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT reason, fields, record_seq FROM rejections",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((version, row), (10, ("no".into(), None, None)));
    }

    #[test]
    fn organisations_made_before_licences_get_the_default_licence() {
        let mut conn = Connection::open_in_memory().unwrap();
        for batch in [VERSION_1, VERSION_2, VERSION_3, VERSION_4] {
            conn.execute_batch(batch).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute("INSERT INTO orgs (name, created_at) VALUES ('Old', 1)", [])
            .unwrap();
        upgrade(&mut conn).unwrap();
        let row: (i64, Option<i64>, Option<i64>) = conn
            .query_row("SELECT org, sites, expires FROM licences", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .unwrap();
        let modules: i64 = conn
            .query_row("SELECT COUNT(*) FROM licence_modules", [], |row| row.get(0))
            .unwrap();
        assert_eq!((row, modules), ((1, None, None), 0));
    }

    #[test]
    fn records_that_named_files_before_version_10_are_found_after_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = [
            VERSION_1, VERSION_2, VERSION_3, VERSION_4, VERSION_5, VERSION_6, VERSION_7, VERSION_8,
            VERSION_9,
        ];
        for batch in before {
            conn.execute_batch(batch).unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        let insert = "INSERT INTO records (org, collection, id, store, deleted, seq, state)
                      VALUES (1, 'c', ?1, NULL, 0, 1, ?2)";
        conn.execute(
            insert,
            (
                "a",
                br#"{"f":{"cv":{"v":{"hash":"blake3:00"}}}}"#.as_slice(),
            ),
        )
        .unwrap();
        conn.execute(insert, ("b", br#"{"f":{"n":{"v":1}}}"#.as_slice()))
            .unwrap();
        upgrade(&mut conn).unwrap();
        let named: Vec<String> = conn
            .prepare("SELECT id FROM records INDEXED BY records_naming_files WHERE org = 1 AND files = 1")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(named, vec!["a".to_string()]);
    }
}
