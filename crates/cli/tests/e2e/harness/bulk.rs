//! Bulk data written straight into a site's database, and what its database says while
//! its processes run.

use super::{Node, now_ms};
use serde_json::Value;

/// The fields of bulk record number `n`.
pub fn bulk_fields(n: u64) -> serde_json::Map<String, Value> {
    let value = serde_json::json!({"n": n, "name": format!("item {n}"), "pad": "x".repeat(64)});
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// The id of bulk record number `n`.
pub fn bulk_id(n: u64) -> String {
    format!("r{n:06}")
}

/// Writes records `range` into a site's database as that site would (the same store
/// code `record put` runs, in large transactions, because thousands of single writes
/// would make the test slow). `outbox`: queue them for the primary (a satellite).
pub fn fill(
    node: &Node,
    org: u64,
    collection: &str,
    store: Option<u64>,
    range: std::ops::Range<u64>,
    outbox: bool,
) {
    fill_with(node, org, collection, store, range, outbox, bulk_fields)
}

/// [`fill`] with the fields of record number `n` given by `fields(n)`.
pub fn fill_with(
    node: &Node,
    org: u64,
    collection: &str,
    store: Option<u64>,
    range: std::ops::Range<u64>,
    outbox: bool,
    fields: impl Fn(u64) -> serde_json::Map<String, Value>,
) {
    use sitesync_store::{LocalWrite, SiteStorage};
    let db = sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .expect("open the database");
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(5_000) {
        let writes = chunk
            .iter()
            .map(|&n| {
                let fields = fields(n);
                (
                    collection.to_string(),
                    bulk_id(n),
                    LocalWrite::Put { store, fields },
                )
            })
            .collect();
        db.write_local_batch(org, writes, node.site_id, now_ms(), outbox)
            .expect("bulk write");
    }
}

/// The sequence of the latest change applied at a site (while its processes run).
pub fn head(node: &Node) -> u64 {
    use sitesync_store::SiteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.head())
        .unwrap_or(0)
}

/// A satellite's pull cursor (while its processes run).
pub fn pull_cursor(node: &Node) -> u64 {
    use sitesync_store::SatelliteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.sync_state())
        .map_or(0, |state| state.pull_cursor)
}

/// How many local changes wait in a site's outbox (while its processes run).
pub fn outbox_len(node: &Node) -> u64 {
    use sitesync_store::SatelliteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.outbox_len())
        .unwrap_or(0)
}
