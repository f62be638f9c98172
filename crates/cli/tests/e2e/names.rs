//! Names of organisations, stores and sites are unique without regard to case, a site
//! enrolled without a name gets one of its own, and the commands an administrator
//! needs to rename and remove exist (issue "Nothing silently wrong", item 6).

use crate::harness::{Cluster, enrol};

#[test]
fn names_are_unique_and_sites_stores_and_collections_can_be_managed() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let admin = |args: &[&str]| primary.cli(args);
    admin(&["store", "create", "--org", "Acme", "North"]).ok();
    let twice = admin(&["store", "create", "--org", "acme", "north"]);
    assert_eq!(
        twice.code,
        Some(4),
        "a name taken in another case: {}",
        twice.describe()
    );
    assert!(twice.stderr.contains("\"North\""), "{}", twice.stderr);
    let org_twice = admin(&["org", "create", "ACME"]).fails();
    assert!(
        org_twice.contains("unique without regard to case"),
        "{org_twice}"
    );

    // Two satellites enrolled without --name are told apart by name.
    for name in ["site-a", "site-b"] {
        enrol(
            &cluster.path(name),
            &primary.url(),
            &key,
            &["--store", "North"],
        )
        .ok();
    }
    let sites = admin(&["--json", "site", "list"]).json();
    let sites: Vec<(u64, String)> = sites
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().expect("an id"),
                s["name"].as_str().expect("a name").to_string(),
            )
        })
        .collect();
    let [(a, a_name), (b, b_name)] = &sites[..] else {
        panic!("two sites: {sites:?}")
    };
    assert_eq!(
        (a_name.clone(), b_name.clone()),
        (format!("satellite-{a}"), format!("satellite-{b}"))
    );
    admin(&["site", "rename", a_name, "North till"]).ok();
    let taken = admin(&["site", "rename", &b.to_string(), "NORTH TILL"]).fails();
    assert!(taken.contains("North till"), "{taken}");
    admin(&["site", "assign", "north till", "North"]).ok();

    // A store with records is not deleted by accident; a store a site holds not at all.
    admin(&["store", "create", "--org", "Acme", "South"]).ok();
    admin(&[
        "record",
        "put",
        "stock",
        "s1",
        r#"{"qty": 1}"#,
        "--org",
        "Acme",
        "--store",
        "South",
    ])
    .ok();
    let held = admin(&["store", "delete", "--org", "Acme", "North"]).fails();
    assert!(
        held.contains("North till") && held.contains("assign"),
        "{held}"
    );
    let full = admin(&["store", "delete", "--org", "Acme", "South"]).fails();
    assert!(
        full.contains("1 records") && full.contains("--purge"),
        "{full}"
    );
    admin(&["store", "rename", "--org", "Acme", "south", "South Street"]).ok();
    let deleted = admin(&[
        "--json",
        "store",
        "delete",
        "--org",
        "Acme",
        "South Street",
        "--purge",
    ])
    .json();
    assert_eq!(deleted["records_purged"], 1);

    // A site still enrolled is not forgotten; a revoked one is.
    let enrolled = admin(&["site", "remove", &b.to_string()]).fails();
    assert!(enrolled.contains("revoke it first"), "{enrolled}");
    admin(&["site", "revoke", &b.to_string()]).ok();
    admin(&["site", "remove", &b.to_string()]).ok();
    assert_eq!(
        admin(&["--json", "site", "list"])
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    admin(&["collection", "restrict", "items", "--org", "Acme"]).ok();
    admin(&[
        "record",
        "put",
        "stock",
        "n1",
        r#"{"qty": 2}"#,
        "--org",
        "Acme",
        "--store",
        "North",
    ])
    .ok();
    let collections = admin(&["--json", "collection", "list", "--org", "Acme"]).json();
    assert_eq!(
        collections,
        serde_json::json!([
            {"name": "items", "records": 0, "restricted": true},
            {"name": "stock", "records": 1, "restricted": false},
        ])
    );
    admin(&["collection", "unrestrict", "items", "--org", "Acme"]).ok();
    let again = admin(&["collection", "unrestrict", "items", "--org", "Acme"]).fails();
    assert!(again.contains("is not restricted"), "{again}");
}
