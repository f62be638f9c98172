//! Routing: a store's records reach only the sites holding that store, organisation-wide
//! records reach every site of the organisation, and nothing crosses organisations.

use crate::harness::{Cluster, Node};
use std::collections::BTreeSet;

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn records_reach_only_the_sites_they_are_routed_to() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let acme = cluster.org(&primary, "Acme");
    let beta = cluster.org(&primary, "Beta");
    for (org, store) in [("Acme", "S1"), ("Acme", "S2"), ("Beta", "T1")] {
        primary.cli(&["store", "create", "--org", org, store]).ok();
    }
    let a = cluster.satellite("site-a", &primary, &acme, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &acme, &["--store", "S2"]);
    let c = cluster.satellite("site-c", &primary, &acme, &["--all-stores"]);
    let d = cluster.satellite("site-d", &primary, &beta, &["--all-stores"]);
    let ids: BTreeSet<u32> = [a.site_id, b.site_id, c.site_id, d.site_id].into();
    assert_eq!(ids.len(), 4, "every satellite got its own site id");
    assert!(ids.iter().all(|&id| id >= 2), "satellite ids are 2 or more");

    a.put("items", "a-s1", r#"{"by":"a"}"#, Some("S1"));
    b.put("items", "b-s2", r#"{"by":"b"}"#, Some("S2"));
    c.put("items", "c-s2", r#"{"by":"c"}"#, Some("S2"));
    c.put("items", "c-org", r#"{"by":"c"}"#, None);
    a.put("items", "a-org", r#"{"by":"a"}"#, None);
    primary.org = Some("Acme".into());
    primary.put("items", "p-org", r#"{"by":"primary"}"#, None);
    primary.put("items", "p-s1", r#"{"by":"primary"}"#, Some("S1"));
    // The same collection and id in both organisations, with different contents.
    primary.put("items", "shared", r#"{"org":"acme"}"#, None);
    d.put("items", "d-org", r#"{"by":"d"}"#, None);
    d.put("items", "d-t1", r#"{"by":"d"}"#, Some("T1"));
    d.put("items", "shared", r#"{"org":"beta"}"#, None);

    let sats: [&Node; 4] = [&a, &b, &c, &d];
    for _ in 0..2 {
        for s in sats {
            s.sync();
        }
    }

    let acme_wide = ["a-org", "c-org", "p-org", "shared"];
    let with = |extra: &[&str]| {
        let mut all = set(&acme_wide);
        all.extend(set(extra));
        all
    };
    assert_eq!(a.ids("items"), with(&["a-s1", "p-s1"]), "site A holds S1");
    assert_eq!(b.ids("items"), with(&["b-s2", "c-s2"]), "site B holds S2");
    assert_eq!(
        c.ids("items"),
        with(&["a-s1", "p-s1", "b-s2", "c-s2"]),
        "site C holds every store"
    );
    assert_eq!(
        d.ids("items"),
        set(&["d-org", "d-t1", "shared"]),
        "site D (organisation Beta) sees only Beta's records"
    );
    assert_eq!(
        primary.ids("items"),
        with(&["a-s1", "p-s1", "b-s2", "c-s2"]),
        "the primary holds all of Acme's records, none of Beta's"
    );
    primary.org = Some("Beta".into());
    assert_eq!(
        primary.ids("items"),
        set(&["d-org", "d-t1", "shared"]),
        "the primary keeps Beta's records apart"
    );
    assert_eq!(
        primary.get("items", "shared").unwrap()["fields"]["org"],
        "beta"
    );
    primary.org = Some("Acme".into());
    assert_eq!(
        primary.get("items", "shared").unwrap()["fields"]["org"],
        "acme"
    );
    for s in [&a, &b, &c] {
        assert_eq!(
            s.get("items", "shared").unwrap()["fields"]["org"],
            "acme",
            "{} sees its own organisation's copy",
            s.name
        );
    }
    assert_eq!(d.get("items", "shared").unwrap()["fields"]["org"], "beta");

    // Records arrive whole, with their store and origin.
    let seen_at_c = c.get("items", "a-s1").expect("a-s1 at C");
    assert_eq!(seen_at_c["store"], "S1");
    assert_eq!(seen_at_c["origin_site"], a.site_id);
    assert_eq!(seen_at_c, a.get("items", "a-s1").unwrap());

    // A site cannot write a store it does not hold, nor name another organisation.
    let refused = a
        .cli(&[
            "record",
            "put",
            "items",
            "sneak",
            r#"{"x":1}"#,
            "--store",
            "S2",
        ])
        .fails();
    assert!(
        refused.contains("S2") || refused.contains("store"),
        "{refused}"
    );
    a.cli(&["record", "put", "items", "x", r#"{"x":1}"#, "--org", "Beta"])
        .fails();

    // Deletes route the same way.
    a.delete("items", "a-s1");
    a.sync();
    c.sync();
    assert_eq!(c.get("items", "a-s1"), None, "the delete reached site C");
    assert!(!c.ids("items").contains("a-s1"));
}
