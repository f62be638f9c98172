//! Counters: two pharmacies sell boxes of the same stock record while offline; after
//! syncing, every site holds the stock less both sales (with last-writer-wins one sale
//! was lost), a push killed midway and sent again counts once, a stocktake (a set)
//! replaces the total and later sales count on top, and the local API takes adds too.

use crate::harness::{Cluster, Node, same_everywhere, spawn};
use serde_json::{Value, json};
use std::time::Duration;

/// The stock at `node`, as `record get` shows it.
fn qty(node: &Node) -> Value {
    let record = node.get("stock", "aspirin").expect("the stock record");
    record["fields"]["qty"].clone()
}

/// Sells `n` boxes at `site`, with a note in the same write.
fn sell(site: &Node, n: i64) {
    let body = json!({"qty": {"add": -n}, "last_sale": site.name}).to_string();
    let record = site.put("stock", "aspirin", &body, Some("S1"));
    assert!(
        record["fields"]["qty"].is_i64(),
        "a total, not a state: {record}"
    );
}

#[test]
fn concurrent_sales_at_two_sites_both_count() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    primary.org = Some("Acme".into());
    let mut north = cluster.satellite("north", &primary, &key, &["--store", "S1"]);
    let south = cluster.satellite("south", &primary, &key, &["--store", "S1"]);
    let all: [&Node; 3] = [&primary, &north, &south];

    north.put(
        "stock",
        "aspirin",
        r#"{"qty": 100, "name": "Aspirin"}"#,
        Some("S1"),
    );
    north.sync();
    south.sync();
    let mut expected = 100;
    for round in 1..=3 {
        // Both offline: each sells from the stock it last saw.
        sell(&north, round);
        sell(&south, 2 * round);
        sell(&north, 1);
        expected -= 3 * round + 1;
        north.sync();
        south.sync();
        north.sync();
        let record = same_everywhere("stock", "aspirin", &all);
        assert_eq!(record["fields"]["qty"], expected, "round {round}: {record}");
        assert_eq!(record["fields"]["name"], "Aspirin");
    }

    // A push killed at some moment, then sent again, counts once.
    for (i, delay_ms) in [5u64, 20, 60, 150].into_iter().enumerate() {
        sell(&north, 1);
        expected -= 1;
        let mut sync = spawn(&north, &["sync"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        sync.kill();
        north.sync();
        north.sync();
        south.sync();
        let record = same_everywhere("stock", "aspirin", &all);
        assert_eq!(record["fields"]["qty"], expected, "kill {i}: {record}");
    }

    // A stocktake at the primary replaces the total; sales made after it count on top.
    primary.put("stock", "aspirin", r#"{"qty": 50}"#, Some("S1"));
    north.sync();
    south.sync();
    sell(&north, 4);
    sell(&south, 5);
    north.sync();
    south.sync();
    north.sync();
    let record = same_everywhere("stock", "aspirin", &all);
    assert_eq!(record["fields"]["qty"], 41, "{record}");

    let conflicts = primary
        .cli(&["--json", "conflicts", "--org", "Acme"])
        .json();
    assert!(
        !conflicts
            .as_array()
            .expect("a list")
            .iter()
            .any(|c| c["field"] == "qty"),
        "sales are no conflict: {conflicts}"
    );

    // The local API: an add and a plain field in one write, and refusals naming the field.
    north.serve();
    let path = "/api/v1/stock/aspirin?store=S1";
    let r = north.http("PUT", path, Some(br#"{"qty": {"add": -1}, "shelf": "B2"}"#));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["fields"]["qty"], 40, "{r:?}");
    assert_eq!(qty(&north), 40);
    for (body, needle) in [
        (&br#"{"qty": {"add": 1.5}}"#[..], "not a whole number"),
        (br#"{"shelf": {"add": 1}}"#, "\"shelf\" holds \"B2\""),
        (br#"{"qty": {"add": 9223372036854775807}}"#, "range"),
    ] {
        let r = north.http("PUT", path, Some(body));
        assert_eq!(r.status, 400, "{r:?}");
        let error = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(needle), "{needle}: {error}");
    }
    let refused = north
        .cli(&[
            "record",
            "put",
            "stock",
            "aspirin",
            r#"{"qty": {"add": "2"}}"#,
            "--org",
            "Acme",
        ])
        .fails();
    assert!(refused.contains("field \"qty\""), "{refused}");
    assert_eq!(qty(&north), 40);
}
