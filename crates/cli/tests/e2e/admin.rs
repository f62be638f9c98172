//! Administration seen from the sites: restricted collections and store reassignment.

use crate::harness::{Cluster, WAIT, eventually};
use std::collections::BTreeSet;

#[test]
fn restricted_collections_are_refused_locally_and_rejected_by_the_primary() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let a = cluster.satellite("site-a", &primary, &key, &["--all-stores"]);
    let b = cluster.satellite("site-b", &primary, &key, &["--all-stores"]);
    let c = cluster.satellite("site-c", &primary, &key, &[]);

    // B writes a price before it hears of the restriction.
    b.put("prices", "sneaked", r#"{"price":1}"#, None);
    b.put("notes", "fine", r#"{"v":1}"#, None);
    primary
        .cli(&["collection", "restrict", "prices", "--org", "Acme"])
        .ok();
    primary.put("prices", "official", r#"{"price":5}"#, None);

    // A has heard of it: its write is refused locally and never stored.
    a.sync();
    let line = a
        .cli(&[
            "record",
            "put",
            "prices",
            "local",
            r#"{"price":2}"#,
            "--org-wide",
        ])
        .fails();
    assert!(line.contains("prices"), "{line}");
    assert!(a.get("prices", "local").is_none());
    assert_eq!(a.status()["to_push"], 0, "nothing was queued");
    // Editing the primary's own price at a satellite is refused as well.
    a.cli(&[
        "record",
        "put",
        "prices",
        "official",
        r#"{"price":0}"#,
        "--org-wide",
    ])
    .fails();
    assert_eq!(
        a.get("prices", "official").expect("pulled")["fields"]["price"],
        5
    );

    // B's change reaches the primary, which rejects it; both sides say so.
    let report = b.sync();
    assert!(report["rejected"].as_u64() >= Some(1), "{report}");
    let status = b.status();
    assert!(
        status["rejected"].as_u64() >= Some(1),
        "satellite status: {status}"
    );
    assert_eq!(status["to_push"], 0, "{status}");
    assert!(
        status["verdict"].as_str().unwrap().contains("rejected"),
        "{status}"
    );
    let at_primary = primary.status();
    assert!(
        at_primary["rejected"].as_u64() >= Some(1),
        "primary status: {at_primary}"
    );
    assert!(
        primary.get("prices", "sneaked").is_none(),
        "the primary did not take it"
    );
    assert!(
        primary.get("notes", "fine").is_some(),
        "the rest of the batch was taken"
    );
    assert!(
        b.get("prices", "sneaked").is_none(),
        "B put back the primary's copy (none)"
    );
    for s in [&a, &c] {
        s.sync();
        assert!(
            s.get("prices", "sneaked").is_none(),
            "{} never sees it",
            s.name
        );
        assert_eq!(
            s.get("prices", "official").expect("official")["fields"]["price"],
            5
        );
    }
}

#[test]
fn reassigned_store_leaves_and_the_new_one_arrives() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    for store in ["S1", "S2"] {
        primary
            .cli(&["store", "create", "--org", "Acme", store])
            .ok();
    }
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &key, &["--all-stores"]);
    primary.put("items", "p1", r#"{"v":1}"#, Some("S1"));
    primary.put("items", "p2", r#"{"v":1}"#, Some("S2"));
    primary.put("items", "wide", r#"{"v":1}"#, None);
    a.sync();
    let ids = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(a.ids("items"), ids(&["p1", "wide"]));

    // A writes in S1 but does not sync before losing S1.
    a.put("items", "a-late", r#"{"v":1}"#, Some("S1"));
    primary
        .cli(&["site", "assign", &a.site_id.to_string(), "S2"])
        .ok();
    a.sync();
    assert_eq!(
        a.ids("items"),
        ids(&["p2", "wide"]),
        "S1's records left site A and S2's arrived"
    );
    assert!(
        primary.get("items", "a-late").is_some(),
        "what A still had to push for S1 was pushed before S1 left"
    );
    b.sync();
    assert!(b.get("items", "a-late").is_some());
    // A may now write S2 and no longer S1.
    a.put("items", "a-s2", r#"{"v":1}"#, Some("S2"));
    a.cli(&[
        "record",
        "put",
        "items",
        "a-s1",
        r#"{"v":1}"#,
        "--store",
        "S1",
    ])
    .fails();
    a.sync();
    assert!(primary.get("items", "a-s2").is_some());
    // Later writes in S1 elsewhere do not reach A.
    b.put("items", "b-s1", r#"{"v":1}"#, Some("S1"));
    b.sync();
    a.sync();
    assert_eq!(a.ids("items"), ids(&["p2", "wide", "a-s2"]));

    // Back to all stores while A serves: everything arrives without a `sync`.
    a.serve();
    primary
        .cli(&["site", "assign", &a.site_id.to_string(), "--all-stores"])
        .ok();
    let all = primary.ids("items");
    eventually("every store's records at A", WAIT, || {
        let now = a.ids("items");
        (now == all).then_some(()).ok_or(format!("{now:?}"))
    });
    a.stop();
}

/// Administration reaches a serving satellite as fast as records do: a store created
/// on the primary is writable at an all-stores satellite, and a restricted collection is
/// refused there, within moments, not after the satellite's long poll (50 s) ends.
#[test]
fn administration_reaches_a_serving_satellite_at_once() {
    let soon = std::time::Duration::from_secs(3);
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut a = cluster.satellite("site-a", &primary, &key, &["--all-stores"]);
    a.serve();
    // Caught up, so the satellite's pull is a long poll waiting at the primary.
    a.put("notes", "first", r#"{"v": 1}"#, None);
    eventually("site-a caught up", WAIT, || {
        match primary.get("notes", "first") {
            Some(_) => Ok(()),
            None => Err("not yet".to_string()),
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));

    primary
        .cli(&["store", "create", "--org", "Acme", "South"])
        .ok();
    eventually("a new store writable at site-a", soon, || {
        let out = a.cli(&[
            "record",
            "put",
            "stock",
            "s1",
            r#"{"qty": 1}"#,
            "--store",
            "South",
        ]);
        if out.success() {
            Ok(())
        } else {
            Err(out.describe())
        }
    });
    primary
        .cli(&["collection", "restrict", "items", "--org", "Acme"])
        .ok();
    eventually("a restricted collection refused at site-a", soon, || {
        let out = a.cli(&[
            "record",
            "put",
            "items",
            "i1",
            r#"{"name": "x"}"#,
            "--org-wide",
        ]);
        if out.success() {
            Err("accepted".to_string())
        } else {
            Ok(())
        }
    });
}

/// A write answered 200 at a satellite that could not know the primary would refuse it
/// (the collection was restricted while it was offline) is taken back, and says so:
/// `sync` and `status` exit 14, the local API lists the rejection with what it wrote,
/// the record's state says why, until the rejection is acknowledged.
#[test]
fn a_write_the_primary_rejects_later_is_shown_until_acknowledged() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    primary.put("prices", "official", r#"{"price":5}"#, None);
    let mut b = cluster.satellite("site-b", &primary, &key, &[]);
    b.sync();
    b.serve();

    // Offline, the satellite answers its writes: it cannot know what the primary decides.
    let old = primary.addr();
    primary.kill();
    for (path, body) in [
        ("/api/v1/prices/official", r#"{"price":4}"#),
        ("/api/v1/prices/sneaked", r#"{"price":1}"#),
    ] {
        let r = b.http("PUT", path, Some(body.as_bytes()));
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    b.stop();
    primary
        .cli(&["collection", "restrict", "prices", "--org", "Acme"])
        .ok();
    primary.set("listen", &old.to_string()).ok();
    primary.serve();

    let report = b.sync();
    assert_eq!(
        (
            report["rejected"].as_u64(),
            report["unacknowledged"].as_u64()
        ),
        (Some(2), Some(2)),
        "{report}"
    );
    let status = b.status();
    assert_eq!(status["standing"], "rejected", "{status}");
    let verdict = status["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.contains("2 changes were rejected")
            && verdict.contains("sitesync rejections --ack"),
        "{verdict}"
    );

    b.serve();
    let listed = b.http("GET", "/api/v1/_rejections", None);
    assert_eq!(listed.status, 200, "{listed:?}");
    let listed = listed.json();
    let rows = listed.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{listed}");
    let (sneaked, official) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            sneaked["collection"].as_str(),
            sneaked["record_id"].as_str()
        ),
        (Some("prices"), Some("sneaked"))
    );
    assert_eq!(
        sneaked["fields"],
        serde_json::json!({"price": 1}),
        "what it wrote: {listed}"
    );
    assert_eq!(
        official["fields"],
        serde_json::json!({"price": 4}),
        "what it wrote: {listed}"
    );
    for row in rows {
        assert!(
            row["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("restricted"),
            "{row}"
        );
        assert_eq!(row["acknowledged"], false, "{row}");
    }

    // The record taken back to the primary's copy says it was rejected, and why.
    let record = b.http("GET", "/api/v1/prices/official", None).json();
    assert_eq!(
        record["fields"],
        serde_json::json!({"price": 5}),
        "{record}"
    );
    assert_eq!(record["rejected"]["id"], official["id"], "{record}");
    assert!(
        record["rejected"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("restricted"),
        "{record}"
    );
    // The one the site may not hold answers 404 with the reason.
    let gone = b.http("GET", "/api/v1/prices/sneaked", None);
    assert_eq!(gone.status, 404, "{gone:?}");
    assert!(
        gone.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("restricted"),
        "{gone:?}"
    );
    let text = b.cli(&["rejections"]).ok().stdout;
    assert!(
        text.contains("prices/sneaked") && text.contains("prices/official"),
        "{text}"
    );

    // Acknowledged up to the older one: one remains.
    let through = official["id"].as_u64().expect("an id").to_string();
    b.cli(&["rejections", "--ack", &through]).ok();
    assert_eq!(b.status()["unacknowledged"], 1);
    assert!(
        b.http("GET", "/api/v1/prices/official", None)
            .json()
            .get("rejected")
            .is_none()
    );
    // Then all, through the API: in sync again.
    let acked = b.http("POST", "/api/v1/_rejections/ack", None);
    assert_eq!(
        acked.json()["acknowledged_through"],
        sneaked["id"],
        "{acked:?}"
    );
    assert_eq!(b.status()["standing"], "in_sync");
    assert_eq!(
        b.http("GET", "/api/v1/_rejections", None).json(),
        serde_json::json!([])
    );
    let all = b.http("GET", "/api/v1/_rejections?all=true", None).json();
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all[0]["acknowledged"], true, "{all}");
    b.stop();
    assert_eq!(b.sync()["unacknowledged"], 0);
}
