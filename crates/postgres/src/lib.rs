//! The PostgreSQL backend of a primary's storage: its state in one database that
//! several `sitesync serve` processes share, on one machine or many. Implements
//! [`SiteStorage`], [`PrimaryStorage`], [`AccountStorage`] and [`AuditStorage`] for
//! [`PgStore`]. Satellites keep SQLite.
//!
//! # Layout
//!
//! - [`PgStore`] (this file): the connection pool and transactions; the one place
//!   PostgreSQL's errors become [`StoreError`]s.
//! - `schema`: the tables, created and upgraded under an advisory lock.
//! - `records`: [`SiteStorage`]: reading records, the primary's own writes, the logs.
//! - `primary`: [`PrimaryStorage`]'s administration of organisations, stores and sites.
//! - `sync`: applying pushed batches and serving pulls.
//! - `names`, `licences`: finding things by name; licences and the site limit.
//! - `accounts`, `audit`: the cloud account's people and the audit log.
//! - `feed`: what the processes share besides the tables (wake-ups, nonces).
//! - `migrate`: a SQLite primary's state moved in.
//!
//! # Positions in commit order
//!
//! Pulls read "records of this organisation after sequence C", so a sequence must
//! never become visible after a higher one: a reader that has seen N must have seen
//! everything up to N. PostgreSQL's sequences do not promise that (two transactions
//! take numbers, the later number commits first). So every transaction that changes
//! records takes the one `head` row `FOR UPDATE` before it numbers anything, numbers
//! its changes from it, and writes the row back: the row lock is held until commit,
//! and PostgreSQL makes a commit visible before it releases its locks, so the next
//! writer numbers from where the last visible commit ended. Writers of records run
//! one at a time over the whole primary; each process groups the pushes that arrive
//! meanwhile into one such transaction (group commit), so processes take turns per
//! group, not per change.

mod accounts;
mod audit;
mod feed;
mod licences;
mod migrate;
mod names;
mod primary;
mod records;
mod schema;
mod sync;

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};
use sitesync_core::InvalidInput;
use sitesync_store::StoreError;
#[cfg(doc)]
use sitesync_store::{AccountStorage, AuditStorage, PrimaryStorage, SiteStorage};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

pub use feed::{CHANNEL, PgFeed, RECHECK};
pub use migrate::{Copied, migrate_sqlite};

/// A failure inside this crate: PostgreSQL's, or one already said in storage's words.
#[derive(Debug, Error)]
pub(crate) enum Error {
    /// PostgreSQL failed (a lost connection, a constraint, …).
    #[error("{0}")]
    Pg(#[from] postgres::Error),
    /// A failure said in storage's words.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Error {
        Error::Store(e.into())
    }
}

/// The most connections one process opens: PostgreSQL gives each a process of its
/// own, so several `serve` processes share what the server allows (100 by default).
const MAX_CONNECTIONS: usize = 8;

/// How long a caller waits for a connection when every one is busy.
const CHECKOUT_WAIT: Duration = Duration::from_secs(30);

/// A primary's state in PostgreSQL.
pub struct PgStore {
    pool: Pool,
    /// Where the database is, for messages: `HOST:PORT/DATABASE` (never a password).
    place: String,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST/DB`, or any form
    /// PostgreSQL's clients take; the password from `PGPASSWORD` when the address has
    /// none) and brings its tables up to date.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let config = connect_config(url)?;
        let store = PgStore {
            place: place(&config),
            pool: Pool {
                config,
                state: Mutex::new(PoolState::default()),
                freed: Condvar::new(),
            },
        };
        store.run(|conn| schema::upgrade(&mut conn.client))?;
        primary::follow_database(&store)?;
        Ok(store)
    }

    /// Where the database is, as `HOST:PORT/DATABASE`.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Runs `f` in one write transaction, committed (durably) only if `f` succeeds.
    fn write<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T, Error>) -> Result<T, StoreError> {
        self.transaction(Kind::Durable, f)
    }

    /// Like [`write`](Self::write), for writes that can be recovered from elsewhere
    /// (contact times): the commit does not wait for the disk. A crash of PostgreSQL may
    /// drop the latest such commits, whole, never one before a durable commit.
    fn write_recoverable<T>(
        &self,
        f: impl FnOnce(&mut Tx) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        self.transaction(Kind::Recoverable, f)
    }

    /// Runs `f` in one read-only transaction on one snapshot.
    fn read<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T, Error>) -> Result<T, StoreError> {
        self.transaction(Kind::Read, f)
    }

    /// Runs `f`, which sends one statement: atomic and on one snapshot by itself, so
    /// it needs no transaction around it (and no round trips to open and close one).
    fn statement<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T, Error>) -> Result<T, StoreError> {
        self.transaction(Kind::Statement, f)
    }

    fn transaction<T>(
        &self,
        kind: Kind,
        f: impl FnOnce(&mut Tx) -> Result<T, Error>,
    ) -> Result<T, StoreError> {
        self.run(|conn| {
            let begin = kind.begin();
            if let Some(begin) = begin {
                conn.client.batch_execute(begin)?;
            }
            let result = f(&mut Tx {
                client: &mut conn.client,
                statements: &mut conn.statements,
            });
            if begin.is_none() {
                return result;
            }
            match result {
                Ok(value) => {
                    conn.client.batch_execute("COMMIT")?;
                    Ok(value)
                }
                Err(e) => {
                    // A connection left inside a transaction is not given to anyone.
                    conn.broken = conn.client.batch_execute("ROLLBACK").is_err();
                    Err(e)
                }
            }
        })
    }

    /// Runs `f` on a connection of the pool.
    fn run<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, Error>) -> Result<T, StoreError> {
        off_async(|| {
            let mut conn = self.pool.get().map_err(|e| self.store_error(e))?;
            let result = f(&mut conn);
            self.pool.put(conn);
            result.map_err(|e| self.store_error(e))
        })
    }

    /// Says a failure in storage's words, naming the database.
    fn store_error(&self, error: Error) -> StoreError {
        let e = match error {
            Error::Store(e) => return e,
            Error::Pg(e) => e,
        };
        let place = &self.place;
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == postgres::error::SqlState::DISK_FULL {
                return StoreError::Unavailable(format!(
                    "PostgreSQL at {place} has no disk space left: free space on its server, then retry"
                ));
            }
            return StoreError::Unavailable(format!("PostgreSQL at {place}: {db}"));
        }
        if e.is_closed() {
            return StoreError::Unavailable(format!(
                "the connection to PostgreSQL at {place} was lost ({e}); nothing was changed that was not committed, retry"
            ));
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if io {
            return StoreError::Unavailable(format!(
                "PostgreSQL at {place} cannot be reached ({e}): check that it runs and that the address is right"
            ));
        }
        StoreError::Unavailable(format!("PostgreSQL at {place}: {e}"))
    }
}

/// How a unit of work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One statement, without a transaction around it.
    Statement,
    /// A read-only transaction on one snapshot.
    Read,
    /// A transaction whose commit waits for the disk.
    Durable,
    /// A transaction whose commit does not wait for the disk.
    Recoverable,
}

impl Kind {
    /// What opens its transaction, settings included (one round trip).
    fn begin(self) -> Option<&'static str> {
        match self {
            Kind::Statement => None,
            Kind::Read => Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            Kind::Durable => Some("BEGIN"),
            Kind::Recoverable => Some("BEGIN; SET LOCAL synchronous_commit TO OFF"),
        }
    }
}

/// The connection settings of `url`, with the password from `PGPASSWORD` when it
/// names none, and a timeout for connecting.
pub(crate) fn connect_config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|e| {
        StoreError::Invalid(InvalidInput {
            what: "PostgreSQL address".into(),
            problem: format!("{e}; write it as postgres://USER@HOST:PORT/DATABASE"),
        })
    })?;
    if config.get_password().is_none()
        && let Ok(password) = std::env::var("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.application_name("sitesync");
    // Its queries read by key, or in sequence order up to a limit. On statistics not
    // yet updated after a bulk load, the planner may pick a bitmap scan for a pull
    // page, which reads the whole rest of the table and sorts it for each page (48 ms
    // instead of 1 ms a page of 5,000 records at 200,000; docs/design.md).
    let options = config.get_options().map(str::to_string);
    let options = match options {
        Some(o) if !o.is_empty() => format!("{o} -c enable_bitmapscan=off"),
        _ => "-c enable_bitmapscan=off".to_string(),
    };
    config.options(&options);
    Ok(config)
}

/// Makes a new, empty database `name` on the server at `server` (an address of any
/// database there), after dropping one of that name; returns the new one's address.
/// For throw-away databases: benchmarks and tests.
pub fn make_database(server: &str, name: &str) -> Result<String, StoreError> {
    let config = connect_config(server)?;
    let place = place(&config);
    let fail = |e: postgres::Error| StoreError::Unavailable(format!("PostgreSQL at {place}: {e}"));
    off_async(|| {
        let mut admin = config.connect(NoTls).map_err(fail)?;
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ] {
            admin.batch_execute(&statement).map_err(fail)?;
        }
        Ok::<(), StoreError>(())
    })?;
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` on the server at `server`, closing its connections.
pub fn drop_database(server: &str, name: &str) -> Result<(), StoreError> {
    let config = connect_config(server)?;
    off_async(|| {
        let mut admin = config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    })
}

/// Runs blocking database work where blocking is allowed. The client blocks on a
/// runtime of its own, which tokio forbids on a thread driving async tasks (a command
/// run inside the CLI's runtime, an async handler): there the thread first leaves the
/// runtime's duty (`block_in_place`). Blocking threads and threads of no runtime run
/// it as it is.
fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// `HOST:PORT/DATABASE` of a configuration.
fn place(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// One connection, with the statements it has prepared.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Whether it may be in a state the next user must not inherit.
    broken: bool,
}

/// A connection inside a unit of work (see `Kind`), preparing each statement once per
/// connection.
pub(crate) struct Tx<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<&'static str, Statement>,
}

/// The parameters of a statement.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The rows of a statement, prepared once per connection.
    pub(crate) fn query(&mut self, sql: &'static str, params: &Params) -> Result<Vec<Row>, Error> {
        let statement = self.prepared(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    /// The one row of a statement, or none.
    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &Params,
    ) -> Result<Option<Row>, Error> {
        let statement = self.prepared(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    /// The one row of a statement.
    pub(crate) fn query_one(&mut self, sql: &'static str, params: &Params) -> Result<Row, Error> {
        let statement = self.prepared(sql)?;
        Ok(self.client.query_one(&statement, params)?)
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &'static str, params: &Params) -> Result<u64, Error> {
        let statement = self.prepared(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }

    /// Runs a statement built at run time (not kept prepared).
    pub(crate) fn execute_text(&mut self, sql: &str, params: &Params) -> Result<u64, Error> {
        Ok(self.client.execute(sql, params)?)
    }
}

/// At most [`MAX_CONNECTIONS`] connections, made when needed and kept.
struct Pool {
    config: Config,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    /// Connections made and not dropped, idle or in use.
    open: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection, a new one while fewer than the most are open, or the first
    /// one given back.
    fn get(&self) -> Result<Conn, Error> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(conn);
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return self.connect().inspect_err(|_| {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                });
            }
            let (next, waited) = self
                .freed
                .wait_timeout(state, CHECKOUT_WAIT)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = next;
            if waited.timed_out() && state.idle.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "all {MAX_CONNECTIONS} connections to PostgreSQL stayed busy for {}s",
                    CHECKOUT_WAIT.as_secs()
                ))
                .into());
            }
        }
    }

    fn connect(&self) -> Result<Conn, Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
            broken: false,
        })
    }

    /// Gives a connection back; a closed one is dropped.
    fn put(&self, conn: Conn) {
        let mut state = self.lock();
        if conn.client.is_closed() || conn.broken {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.freed.notify_one();
    }
}

impl Drop for Pool {
    /// Closing a connection blocks too (see [`off_async`]).
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        off_async(|| drop(idle));
    }
}

/// Converts an id read from PostgreSQL (never negative here) to `u64`.
fn id(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Converts a `u64` id or sequence to PostgreSQL's `bigint`.
fn sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
