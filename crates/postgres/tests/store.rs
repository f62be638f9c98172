//! The storage contract (`sitesync_store::conformance`), checked against a real
//! PostgreSQL: each test gets databases of its own on the server named by
//! `SITESYNC_TEST_POSTGRES` (default: this machine's, `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped when it ends. Satellites are SQLite files, as they are in use.

use postgres::NoTls;
use sitesync_postgres::PgStore;
use sitesync_sqlite::SqliteStore;
use sitesync_store::conformance::Backend;
use sitesync_store::{PrimaryStorage, SatelliteStorage};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server the tests make their databases on.
fn admin_url() -> String {
    std::env::var("SITESYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Databases made for one test, dropped at its end; SQLite files in a folder of its own.
struct Postgres {
    prefix: String,
    made: Mutex<Vec<String>>,
    dir: tempfile::TempDir,
}

impl Postgres {
    fn new() -> Postgres {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Postgres {
            prefix: format!("sitesync_test_{}_{n}", std::process::id()),
            made: Mutex::new(Vec::new()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The address of database `name`, made the first time.
    fn url(&self, name: &str) -> String {
        let db = format!("{}_{name}", self.prefix);
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if !made.contains(&db) {
            let mut admin = postgres::Client::connect(&admin_url(), NoTls).unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} cannot be reached ({e}): start it, or name another with SITESYNC_TEST_POSTGRES",
                    admin_url()
                )
            });
            for statement in [
                format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                format!("CREATE DATABASE \"{db}\""),
            ] {
                admin.batch_execute(&statement).unwrap();
            }
            made.push(db.clone());
        }
        let base = admin_url();
        let server = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(server, _)| server);
        format!("{server}/{db}")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|p| p.into_inner()));
        if let Ok(mut admin) = postgres::Client::connect(&admin_url(), NoTls) {
            for db in made {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
            }
        }
    }
}

impl Backend for Postgres {
    fn primary(&self, name: &str) -> Box<dyn PrimaryStorage> {
        Box::new(PgStore::open(&self.url(name)).unwrap())
    }

    fn satellite(&self, name: &str) -> Box<dyn SatelliteStorage> {
        Box::new(SqliteStore::open(&self.dir.path().join(format!("{name}.db"))).unwrap())
    }
}

sitesync_store::conformance_suite!(Postgres::new());

/// Positions are given in commit order: a reader following a cursor while writers in
/// four connection pools (as four processes would) commit at once never skips one.
#[test]
fn a_cursor_skips_nothing_while_several_processes_write() {
    use sitesync_core::Assignment;
    use sitesync_store::{LocalWrite, SiteStorage};
    use std::collections::BTreeSet;
    let pg = Postgres::new();
    let url = pg.url("p");
    let first = PgStore::open(&url).unwrap();
    let org = first.create_org("Acme", 1).unwrap().id;
    let (writers, batches, per_batch) = (4, 60, 5);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let seen = std::thread::scope(|scope| {
        for w in 0..writers {
            let (url, done) = (&url, &done);
            scope.spawn(move || {
                let db = PgStore::open(url).unwrap();
                for b in 0..batches {
                    let writes = (0..per_batch)
                        .map(|i| {
                            let fields = serde_json::json!({ "n": i }).as_object().unwrap().clone();
                            let put = LocalWrite::Put {
                                store: None,
                                fields,
                            };
                            ("stock".to_string(), format!("w{w}-{b}-{i}"), put)
                        })
                        .collect();
                    db.write_local_batch(org, writes, 1, 1_000, false).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let reader = PgStore::open(&url).unwrap();
        let everything = Assignment {
            all_stores: true,
            stores: BTreeSet::new(),
        };
        let (mut cursor, mut seen) = (0, BTreeSet::new());
        loop {
            let finished = done.load(Ordering::SeqCst) == writers;
            let page = reader.pull(org, &everything, None, cursor, 7).unwrap();
            seen.extend(page.records.iter().map(|r| r.id.clone()));
            cursor = page.next;
            if finished && !page.more {
                break seen;
            }
        }
    });
    assert_eq!(seen.len(), writers * batches * per_batch);
    assert_eq!(
        first.head().unwrap(),
        (writers * batches * per_batch) as u64
    );
}
