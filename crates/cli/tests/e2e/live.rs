//! Live propagation: with every site serving and no one calling `sync`, a change made
//! at one satellite is readable at the others within one second.

use crate::harness::{Cluster, Node, WAIT, eventually};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Polls `node`'s local API until `collection/id` has `field` = `value`; returns how long
/// that took after `since`.
fn arrival(
    node: &Node,
    collection: &str,
    id: &str,
    field: &str,
    value: &Value,
    since: Instant,
) -> Duration {
    eventually(
        &format!("{collection}/{id} at {}", node.name),
        WAIT,
        || match node.api_get(collection, id) {
            Some(r) if &r["fields"][field] == value => Ok(since.elapsed()),
            other => Err(format!("{other:?}")),
        },
    )
}

/// Waits until every site has finished its first pull and waits on the long poll.
fn in_sync(sites: &[&Node]) {
    for s in sites {
        eventually(&format!("{} in sync", s.name), WAIT, || {
            let st = s.status();
            (st["verdict"] == "in sync")
                .then_some(())
                .ok_or(st.to_string())
        });
    }
}

#[test]
fn changes_reach_online_sites_within_a_second() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    for store in ["S1", "S2"] {
        primary
            .cli(&["store", "create", "--org", "Acme", store])
            .ok();
    }
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let mut b = cluster.satellite("site-b", &primary, &key, &["--store", "S2"]);
    let mut c = cluster.satellite("site-c", &primary, &key, &["--all-stores"]);
    a.serve();
    b.serve();
    c.serve();
    // Let every agent finish its first pull and wait on the long poll.
    in_sync(&[&a, &b, &c]);

    let limit = Duration::from_secs(1);
    for round in 0..3 {
        // Through the CLI at A, organisation-wide: reaches B and C.
        let value = Value::from(format!("cli-{round}"));
        let start = Instant::now();
        a.put("notes", "n1", &format!(r#"{{"v":{value}}}"#), None);
        for s in [&b, &c] {
            let took = arrival(s, "notes", "n1", "v", &value, start);
            assert!(
                took < limit,
                "CLI write at A took {took:?} to reach {}",
                s.name
            );
        }

        // Through the local API at B, in store S2: reaches C, never A.
        let value = Value::from(round);
        let start = Instant::now();
        let r = b.http(
            "PUT",
            "/api/v1/orders/o1?store=S2",
            Some(format!(r#"{{"qty":{round}}}"#).as_bytes()),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let took = arrival(&c, "orders", "o1", "qty", &value, start);
        assert!(took < limit, "API write at B took {took:?} to reach C");
    }
    assert_eq!(
        a.api_get("orders", "o1"),
        None,
        "S2's record never reaches A"
    );

    // A delete travels live too.
    let start = Instant::now();
    let r = a.http("DELETE", "/api/v1/notes/n1", None);
    assert_eq!(r.status, 200, "{r:?}");
    let took = eventually("the delete at C", WAIT, || match c.api_get("notes", "n1") {
        None => Ok(start.elapsed()),
        Some(r) => Err(r.to_string()),
    });
    assert!(took < limit, "a delete took {took:?}");

    // Every site agrees byte for byte.
    assert_eq!(b.get("orders", "o1"), c.get("orders", "o1"));
    assert_eq!(
        primary_view(&primary, "orders", "o1"),
        c.get("orders", "o1")
    );
    for s in [&mut a, &mut b, &mut c] {
        s.stop();
    }
}

fn primary_view(primary: &Node, collection: &str, id: &str) -> Option<Value> {
    let out = primary.cli(&["--json", "record", "get", collection, id, "--org", "Acme"]);
    out.success().then(|| out.json())
}

/// A read may wait for a record to arrive (`?wait_ms=`): it answers as soon as the
/// record written at another site is applied here, and with a 404 when the time is up.
#[test]
fn a_read_waits_for_a_record_to_arrive() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let mut b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);
    a.serve();
    b.serve();
    in_sync(&[&a, &b]);
    let started = Instant::now();
    let missing = b.http("GET", "/api/v1/items/never?wait_ms=300", None);
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bad = b.http("GET", "/api/v1/items/never?wait_ms=soon", None);
    assert_eq!(bad.status, 400, "{bad:?}");

    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let started = Instant::now();
            (
                b.http("GET", "/api/v1/items/awaited?wait_ms=20000", None),
                started.elapsed(),
            )
        });
        // The reader is waiting before the write is made.
        std::thread::sleep(Duration::from_millis(300));
        let put = a.http("PUT", "/api/v1/items/awaited?store=S1", Some(br#"{"n":7}"#));
        assert_eq!(put.status, 200, "{put:?}");
        let (got, waited) = waiting.join().expect("the waiting read");
        assert_eq!(got.status, 200, "{got:?}\n{}", b.log_tail());
        assert_eq!(got.json()["fields"]["n"], 7);
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(10),
            "answered after {waited:?}"
        );
    });
}

/// `site list` tells the truth about a serving satellite: waiting in a long poll (50 s)
/// it is still in contact, and online (issue "Nothing silently wrong", item 4: before,
/// its last contact was the start of the current long poll, 27 s old here).
#[test]
fn site_list_shows_a_long_polling_satellite_online() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut a = cluster.satellite("site-a", &primary, &key, &[]);
    a.serve();
    // Longer than the 25 s an online site may go without contact, shorter than a poll.
    std::thread::sleep(std::time::Duration::from_secs(27));
    let listed = primary.cli(&["--json", "site", "list"]).json();
    let site = &listed[0];
    assert_eq!(site["online"], true, "{listed}");
    let text = primary.cli(&["site", "list"]).ok().stdout;
    assert!(text.contains("ONLINE") && text.contains("yes"), "{text}");
}
