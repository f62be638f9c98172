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

/// A primary of Acme with stores S1 and S2, serving.
fn acme_with_two_stores(cluster: &Cluster) -> (Node, String) {
    let mut primary = cluster.primary();
    let acme = cluster.org(&primary, "Acme");
    for store in ["S1", "S2"] {
        primary
            .cli(&["store", "create", "--org", "Acme", store])
            .ok();
    }
    primary.org = Some("Acme".into());
    (primary, acme)
}

/// A satellite of Acme holding S1 and S2.
fn holding_both(cluster: &Cluster, primary: &Node, acme: &str) -> Node {
    cluster.satellite(
        "site-both",
        primary,
        acme,
        &["--store", "S1", "--store", "S2"],
    )
}

#[test]
fn a_satellite_holding_one_store_writes_a_new_record_to_that_store() {
    let cluster = Cluster::new();
    let (primary, acme) = acme_with_two_stores(&cluster);
    let one = cluster.satellite("site-one", &primary, &acme, &["--store", "S1"]);
    let same = cluster.satellite("site-same", &primary, &acme, &["--store", "S1"]);
    let other = cluster.satellite("site-other", &primary, &acme, &["--store", "S2"]);

    let written = one
        .cli(&[
            "--json",
            "record",
            "put",
            "stock",
            "aspirin",
            r#"{"qty":40}"#,
        ])
        .json();
    assert_eq!(written["store"], "S1", "{written}");
    for s in [&one, &same, &other] {
        s.sync();
    }
    assert_eq!(
        same.get("stock", "aspirin").expect("at S1's other site")["store"],
        "S1"
    );
    assert_eq!(
        primary.get("stock", "aspirin").expect("at the primary")["store"],
        "S1"
    );
    assert_eq!(
        other.get("stock", "aspirin"),
        None,
        "S1's stock never reaches S2's site"
    );
}

#[test]
fn a_satellite_holding_several_stores_asks_which_store_a_new_record_belongs_to() {
    let cluster = Cluster::new();
    let (primary, acme) = acme_with_two_stores(&cluster);
    let both = holding_both(&cluster, &primary, &acme);
    let every = cluster.satellite("site-every", &primary, &acme, &["--all-stores"]);

    for s in [&both, &every] {
        let out = s.cli(&["record", "put", "stock", "aspirin", r#"{"qty":40}"#]);
        assert_eq!(out.code, Some(2), "invalid input: {}", out.describe());
        let line = out.fails();
        for needle in ["\"S1\"", "\"S2\"", "--store NAME", "--org-wide"] {
            assert!(line.contains(needle), "{}: {needle} in {line}", s.name);
        }
        assert_eq!(
            s.get("stock", "aspirin"),
            None,
            "{}: nothing written",
            s.name
        );
        assert_eq!(s.status()["to_push"], 0, "{}: nothing queued", s.name);
    }

    // Said outright, each is written where it was meant to be.
    both.put("stock", "ibuprofen", r#"{"qty":3}"#, Some("S2"));
    let wide = both
        .cli(&[
            "--json",
            "record",
            "put",
            "notes",
            "closed-monday",
            r#"{"v":1}"#,
            "--org-wide",
        ])
        .json();
    assert_eq!(wide["store"], serde_json::Value::Null, "{wide}");
    // Both at once is a command line that cannot be read.
    let out = both.cli(&[
        "record",
        "put",
        "notes",
        "x",
        r#"{"v":1}"#,
        "--org-wide",
        "--store",
        "S1",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("--org-wide"), "{}", out.describe());
    assert_eq!(both.get("notes", "x"), None);
    both.sync();
    every.sync();
    assert_eq!(
        every.get("notes", "closed-monday").expect("org-wide")["store"],
        serde_json::Value::Null
    );
    assert_eq!(
        every.get("stock", "ibuprofen").expect("of S2")["store"],
        "S2"
    );
}

#[test]
fn a_store_that_is_not_the_records_own_is_refused_and_changes_nothing() {
    let cluster = Cluster::new();
    let (primary, acme) = acme_with_two_stores(&cluster);
    let both = holding_both(&cluster, &primary, &acme);
    both.put("stock", "aspirin", r#"{"qty":40}"#, Some("S1"));
    both.put("notes", "wide", r#"{"v":1}"#, None);

    for (collection, id, store) in [
        ("stock", "aspirin", vec!["--store", "S2"]),
        ("stock", "aspirin", vec!["--org-wide"]),
        ("notes", "wide", vec!["--store", "S1"]),
    ] {
        let mut args = vec!["record", "put", collection, id, r#"{"qty":0,"v":0}"#];
        args.extend(&store);
        let out = both.cli(&args);
        assert_eq!(out.code, Some(4), "taken: {}", out.describe());
        let line = out.fails();
        assert!(line.contains("fixed when it is created"), "{line}");
    }
    let line = both
        .cli(&[
            "record",
            "put",
            "stock",
            "aspirin",
            r#"{"qty":0}"#,
            "--store",
            "S2",
        ])
        .fails();
    assert!(
        line.contains("\"S1\"") && line.contains("\"S2\""),
        "names both stores: {line}"
    );
    let aspirin = both.get("stock", "aspirin").unwrap();
    assert_eq!(
        (aspirin["store"].clone(), aspirin["fields"].clone()),
        ("S1".into(), serde_json::json!({"qty": 40}))
    );
    assert_eq!(
        both.get("notes", "wide").unwrap()["fields"],
        serde_json::json!({"v": 1})
    );

    // Its own store, or none said, still edits it.
    both.put("stock", "aspirin", r#"{"qty":39}"#, Some("S1"));
    let edited = both
        .cli(&[
            "--json",
            "record",
            "put",
            "stock",
            "aspirin",
            r#"{"qty":38}"#,
        ])
        .json();
    assert_eq!(
        (edited["store"].clone(), edited["fields"]["qty"].clone()),
        ("S1".into(), 38.into())
    );
}

#[test]
fn the_local_api_asks_for_a_store_and_refuses_a_wrong_one() {
    let cluster = Cluster::new();
    let (primary, acme) = acme_with_two_stores(&cluster);
    let mut both = holding_both(&cluster, &primary, &acme);
    both.serve();

    let asked = both.http("PUT", "/api/v1/stock/aspirin", Some(br#"{"qty":40}"#));
    assert_eq!(asked.status, 400, "{asked:?}");
    let error = asked.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for needle in ["\"S1\"", "\"S2\"", "?store=", "?org_wide=true"] {
        assert!(error.contains(needle), "{needle} in {error}");
    }
    assert_eq!(
        both.http("GET", "/api/v1/stock/aspirin", None).status,
        404,
        "nothing written"
    );

    // Said outright (a store, or organisation-wide; never both), it is written there.
    for (path, status, store) in [
        ("stock/aspirin?store=S1", 200, serde_json::json!("S1")),
        ("notes/wide?org_wide=true", 200, serde_json::Value::Null),
        (
            "notes/x?org_wide=true&store=S1",
            400,
            serde_json::Value::Null,
        ),
    ] {
        let r = both.http("PUT", &format!("/api/v1/{path}"), Some(br#"{"qty":40}"#));
        assert_eq!(r.status, status, "{path}: {r:?}");
        if status == 200 {
            assert_eq!(r.json()["store"], store, "{path}: {r:?}");
        }
    }

    let wrong = both.http(
        "PUT",
        "/api/v1/stock/aspirin?store=S2",
        Some(br#"{"qty":0}"#),
    );
    assert_eq!(wrong.status, 409, "{wrong:?}");
    assert_eq!(wrong.json()["code"], "taken");
    let error = wrong.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("\"S1\"") && error.contains("\"S2\""),
        "{error}"
    );
    let kept = both.http("GET", "/api/v1/stock/aspirin", None).json();
    assert_eq!(
        (kept["store"].clone(), kept["fields"]["qty"].clone()),
        ("S1".into(), 40.into())
    );
    both.stop();
}
