//! Concurrent edits: two satellites change the same fields of the same record without
//! seeing each other; after syncing every site holds the identical record, and the
//! primary lists the conflict.

use crate::harness::{Cluster, Node, same_everywhere};

#[test]
fn concurrent_edits_converge_and_are_logged() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    primary.org = Some("Acme".into());
    let a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);
    let c = cluster.satellite("site-c", &primary, &key, &["--all-stores"]);
    let all: [&Node; 4] = [&primary, &a, &b, &c];

    a.put(
        "items",
        "x",
        r#"{"name":"Aspirin","price":1,"qty":5}"#,
        Some("S1"),
    );
    a.sync();
    b.sync();
    c.sync();
    same_everywhere("items", "x", &all);

    // Offline edits of the same record: `price` at both, other fields at one each.
    a.put(
        "items",
        "x",
        r#"{"price":10,"name":"Aspirin 500"}"#,
        Some("S1"),
    );
    b.put("items", "x", r#"{"price":20,"qty":7}"#, Some("S1"));
    // And an organisation-wide record, edited at both, where B also deletes it.
    a.put("items", "y", r#"{"v":"first"}"#, None);
    a.sync();
    b.sync();
    a.put("items", "y", r#"{"v":"from a"}"#, None);
    b.delete("items", "y");

    for s in [&b, &a, &c, &b, &a] {
        s.sync();
    }
    let x = same_everywhere("items", "x", &all);
    let fields = &x["fields"];
    assert_eq!(fields["name"], "Aspirin 500", "A's other field kept: {x}");
    assert_eq!(fields["qty"], 7, "B's other field kept: {x}");
    assert!(
        fields["price"] == 10 || fields["price"] == 20,
        "one of the concurrent prices wins: {x}"
    );
    same_everywhere("items", "y", &all);
    for s in all {
        assert_eq!(
            s.ids("items"),
            a.ids("items"),
            "{} lists the same records",
            s.name
        );
    }

    let conflicts = primary
        .cli(&["--json", "conflicts", "--org", "Acme"])
        .json();
    let list = conflicts.as_array().expect("a list");
    let price = list
        .iter()
        .find(|c| c["id"] == "x" && c["field"] == "price")
        .unwrap_or_else(|| panic!("the primary lists the price conflict: {conflicts}"));
    assert_eq!(price["collection"], "items");
    assert_eq!(price["winner"]["value"], fields["price"], "{price}");
    let lost = if fields["price"] == 10 { 20 } else { 10 };
    assert_eq!(price["loser"]["value"], lost, "{price}");
    assert!(
        !list
            .iter()
            .any(|c| c["id"] == "x" && (c["field"] == "name" || c["field"] == "qty")),
        "fields edited at one site only are no conflict: {conflicts}"
    );
}
