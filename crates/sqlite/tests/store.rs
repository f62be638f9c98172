//! The storage contract (`sitesync_store::conformance`), checked against real SQLite
//! files in temporary folders, and what only SQLite has: its write-ahead log.

use serde_json::json;
use sitesync_sqlite::SqliteStore;
use sitesync_store::conformance::Backend;
use sitesync_store::{LocalWrite, PrimaryStorage, SatelliteStorage, SiteStorage};

/// Each name is a database file in a temporary folder of the test's own.
struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Sqlite {
        Sqlite(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.path().join(format!("{name}.db"))
    }
}

impl Backend for Sqlite {
    fn primary(&self, name: &str) -> Box<dyn PrimaryStorage> {
        Box::new(SqliteStore::open_primary(&self.path(name)).unwrap())
    }

    fn satellite(&self, name: &str) -> Box<dyn SatelliteStorage> {
        Box::new(SqliteStore::open(&self.path(name)).unwrap())
    }
}

sitesync_store::conformance_suite!(Sqlite::new());

#[test]
fn the_log_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.db");
    let db = SqliteStore::open(&path).unwrap();
    let filler = "x".repeat(1_000);
    for batch in 0..48 {
        let writes = (0..1_000)
            .map(|i| {
                let id = format!("r{batch}-{i}");
                (
                    "notes".to_string(),
                    id,
                    LocalWrite::Put {
                        store: None,
                        fields: json!({ "text": filler }).as_object().unwrap().clone(),
                    },
                )
            })
            .collect();
        db.write_local_batch(1, writes, 2, 10, false).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
    while size() < 16 << 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    assert!(
        size() >= 16 << 20,
        "the database file holds {} bytes, the log {wal}",
        size()
    );
    assert_eq!(db.digest(1).unwrap()[0].records, 48_000);
}
