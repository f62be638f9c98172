//! The tables, the same as SQLite's primary holds (`sitesync-sqlite`'s schema) in
//! PostgreSQL's types, plus what processes share: the `head` row that numbers
//! changes in commit order, and the replay nonces.
//!
//! Upgrades are numbered in `schema_version`; each runs once, in a transaction, under
//! an advisory lock, so processes starting together upgrade once.

use crate::Error;
use postgres::Client;

/// The advisory lock taken while the schema is made or upgraded.
const SCHEMA_LOCK: i64 = 0x5175_6e63_0001;

const VERSION_1: &str = r#"
CREATE TABLE head (
    one         BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq         BIGINT NOT NULL DEFAULT 0,   -- the sequence of the latest change applied
    hlc         BIGINT NOT NULL DEFAULT 0,   -- the hybrid logical clock's last reading
    incarnation BIGINT NOT NULL DEFAULT 0,   -- see PrimaryStorage::incarnation
    database    TEXT                         -- the database the incarnation belongs to
);
INSERT INTO head DEFAULT VALUES;
CREATE TABLE orgs (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    key_generation BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    time_zone      TEXT NOT NULL DEFAULT 'UTC',
    deleted_at     BIGINT
);
CREATE TABLE stores (
    id   BIGSERIAL PRIMARY KEY,
    org  BIGINT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    UNIQUE (org, name)
);
CREATE TABLE sites (
    id                 BIGINT PRIMARY KEY,        -- 1 is the primary; satellites >= 2
    org                BIGINT NOT NULL REFERENCES orgs(id),
    name               TEXT NOT NULL,
    secret_hash        TEXT NOT NULL,
    all_stores         BOOLEAN NOT NULL DEFAULT FALSE,
    assignment_version BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    last_contact       BIGINT,
    pull_cursor        BIGINT NOT NULL DEFAULT 0,
    push_acked         BIGINT NOT NULL DEFAULT 0,
    revoked            BOOLEAN NOT NULL DEFAULT FALSE,
    version            TEXT,
    last_error_at      BIGINT,
    last_error         TEXT
);
CREATE TABLE site_stores (
    site    BIGINT NOT NULL REFERENCES sites(id),
    store   BIGINT NOT NULL REFERENCES stores(id),
    leaving BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (site, store)
);
CREATE TABLE restricted (
    org        BIGINT NOT NULL,
    collection TEXT NOT NULL,
    PRIMARY KEY (org, collection)
);
-- Keys compare by bytes (COLLATE "C"), as SQLite's do: pages by id and digests
-- come out in the same order on both.
CREATE TABLE records (
    org        BIGINT NOT NULL,
    collection TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    store      BIGINT,
    deleted    BOOLEAN NOT NULL,
    seq        BIGINT NOT NULL,
    state      BYTEA NOT NULL,
    files      BOOLEAN,                 -- TRUE when the state may name a file; else NULL
    PRIMARY KEY (org, collection, id)
);
CREATE INDEX records_by_seq ON records (org, seq);
CREATE INDEX records_naming_files ON records (org) WHERE files;
CREATE TABLE rejections (
    id         BIGSERIAL PRIMARY KEY,
    org        BIGINT NOT NULL,
    site       BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    change_seq BIGINT NOT NULL,
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    fields     TEXT,
    record_seq BIGINT
);
CREATE INDEX rejections_by_record ON rejections (org, collection, record_id);
CREATE INDEX rejections_by_site ON rejections (org, site, id);
CREATE TABLE conflicts (
    id         BIGSERIAL PRIMARY KEY,
    org        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    winner     TEXT NOT NULL,
    loser      TEXT NOT NULL
);
CREATE INDEX conflicts_by_org ON conflicts (org, id);
CREATE TABLE accounts (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    confirmed     BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    org_limit     BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    language      TEXT
);
CREATE UNIQUE INDEX accounts_by_email ON accounts (lower(email));
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    account    BIGINT NOT NULL REFERENCES accounts(id),
    purpose    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_by_account ON tokens (account, purpose);
CREATE TABLE members (
    org     BIGINT NOT NULL REFERENCES orgs(id),
    account BIGINT NOT NULL REFERENCES accounts(id),
    role    TEXT NOT NULL,
    PRIMARY KEY (org, account)
);
CREATE TABLE invitations (
    hash       TEXT PRIMARY KEY,
    org        BIGINT NOT NULL REFERENCES orgs(id),
    email      TEXT NOT NULL,
    role       TEXT NOT NULL,
    invited_by BIGINT NOT NULL REFERENCES accounts(id),
    expires_at BIGINT NOT NULL
);
CREATE TABLE email_changes (
    hash       TEXT PRIMARY KEY,
    account    BIGINT NOT NULL REFERENCES accounts(id),
    email      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX email_changes_by_account ON email_changes (account);
CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    org     BIGINT,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    account BIGINT,
    from_ip TEXT,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_by_org ON audit (org, id);
CREATE INDEX audit_by_account ON audit (account, id);
CREATE TABLE licences (
    org     BIGINT PRIMARY KEY REFERENCES orgs(id),
    sites   BIGINT,
    expires BIGINT
);
CREATE TABLE licence_modules (
    org    BIGINT NOT NULL REFERENCES orgs(id),
    module TEXT NOT NULL,
    until  BIGINT,
    PRIMARY KEY (org, module)
);
-- Signed requests' nonces, shared by every process so a replay is refused by all.
CREATE TABLE nonces (
    site  BIGINT NOT NULL,
    nonce BIGINT NOT NULL,
    time  BIGINT NOT NULL,               -- the request's time, ms; forgotten once too old
    PRIMARY KEY (site, nonce)
);
CREATE INDEX nonces_by_time ON nonces (time);
"#;

/// Every version, in order.
const VERSIONS: &[&str] = &[VERSION_1];

/// The schema version this build writes.
pub(crate) const CURRENT: i32 = VERSIONS.len() as i32;

/// Brings the database up to the current schema, refusing one made by a newer build.
pub(crate) fn upgrade(client: &mut Client) -> Result<(), Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let version: i32 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO schema_version VALUES (0)", &[])?;
            0
        }
    };
    if version > CURRENT {
        return Err(sitesync_store::StoreError::Refused(format!(
            "the database holds schema version {version}, made by a newer sitesync (this one knows {CURRENT}): run the newer sitesync"
        ))
        .into());
    }
    for (n, batch) in VERSIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(batch)?;
        tx.execute("UPDATE schema_version SET version = $1", &[&(n as i32 + 1)])?;
    }
    tx.commit()?;
    Ok(())
}
