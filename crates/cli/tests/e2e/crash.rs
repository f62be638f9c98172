//! A satellite SIGKILLed in the middle of a sync (pulling or pushing) and restarted
//! converges: nothing lost, nothing duplicated, nothing applied twice.
//!
//! The kills are aimed at the middle of a transfer by watching the satellite's cursor
//! (or outbox) in its database, but the assertions are only about the end state, so
//! they hold wherever a kill lands.

use crate::harness::{
    Cluster, Guard, Node, WAIT, bulk_fields, bulk_id, eventually, fill, head, outbox_len,
    pull_cursor, spawn,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const RECORDS: u64 = 20_000;

/// Kills `child` once `progress()` reaches `at` (or lets it finish); returns whether
/// the kill landed while it was still running.
fn kill_when(mut child: Guard, at: u64, progress: impl Fn() -> u64) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if !child.running() {
            return false;
        }
        if progress() >= at {
            return child.kill();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill()
}

/// Asserts `node` holds exactly bulk records `0..RECORDS` with their fields.
#[track_caller]
fn holds_all(node: &Node, collection: &str) {
    let list = node.list(collection);
    let ids: BTreeSet<&str> = list.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), list.len(), "{}: duplicate ids", node.name);
    assert_eq!(list.len() as u64, RECORDS, "{}: record count", node.name);
    for (n, record) in list.iter().enumerate() {
        let n = n as u64;
        assert_eq!(
            record["id"],
            bulk_id(n).as_str(),
            "{}: ids in order",
            node.name
        );
        assert_eq!(
            record["fields"],
            Value::Object(bulk_fields(n)),
            "{}: fields of {}",
            node.name,
            bulk_id(n)
        );
    }
}

fn no_conflicts(node: &Node, org: Option<&str>) {
    let mut args = vec!["--json", "conflicts"];
    if let Some(org) = org {
        args.extend(["--org", org]);
    }
    let conflicts = node.cli(&args).json();
    assert_eq!(
        conflicts,
        Value::Array(vec![]),
        "{}: re-applying the same changes is no conflict",
        node.name
    );
}

#[test]
fn satellite_killed_mid_pull_resumes_without_loss_or_duplicates() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let store = primary
        .cli(&["--json", "store", "create", "--org", "Acme", "S1"])
        .json();
    let store_id = store["id"].as_u64().expect("store id");
    let org_id = primary.cli(&["--json", "org", "show", "Acme"]).json()["id"]
        .as_u64()
        .expect("org id");
    // Half in store S1, half organisation-wide, written as the primary writes them.
    fill(
        &primary,
        org_id,
        "items",
        Some(store_id),
        0..RECORDS / 2,
        false,
    );
    fill(&primary, org_id, "items", None, RECORDS / 2..RECORDS, false);
    let top = head(&primary);
    assert!(top >= RECORDS, "primary seq {top}");

    let mut b = cluster.satellite("site-b", &primary, &key, &["--all-stores"]);
    let cursor = |node: &Node| pull_cursor(node);
    let mut landed = 0;
    for fraction in [4, 2] {
        let at = cursor(&b).max(top / fraction);
        landed += kill_when(spawn(&b, &["sync"]), at, || cursor(&b)) as u32;
    }
    // And the live agent of `serve`, killed mid-pull too.
    let at = cursor(&b).max(top * 3 / 4);
    b.serve();
    {
        let deadline = Instant::now() + WAIT;
        while cursor(&b) < at && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        landed += (cursor(&b) < top) as u32;
        b.kill();
    }
    eprintln!("kills that landed mid-pull: {landed} of 3");

    // Restarted, it catches up.
    b.serve();
    eventually("site B catches up", WAIT, || {
        let st = b.status();
        (st["to_pull"] == 0 && st["verdict"] == "in sync")
            .then_some(())
            .ok_or(st.to_string())
    });
    b.stop();
    holds_all(&b, "items");
    holds_all(&primary, "items");
    no_conflicts(&b, None);
    let report = b.sync();
    assert_eq!(report["pulled"], 0, "nothing left to pull: {report}");
    // Stores came through with their records.
    assert_eq!(b.get("items", &bulk_id(0)).unwrap()["store"], "S1");
    assert_eq!(
        b.get("items", &bulk_id(RECORDS - 1)).unwrap()["store"],
        Value::Null
    );
}

#[test]
fn satellite_killed_mid_push_resumes_without_loss_or_duplicates() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let org_id = primary.cli(&["--json", "org", "show", "Acme"]).json()["id"]
        .as_u64()
        .expect("org id");
    let a = cluster.satellite("site-a", &primary, &key, &[]);
    let mut c = cluster.satellite("site-c", &primary, &key, &[]);
    // Written at A as `record put` writes, queued for the primary.
    fill(&a, org_id, "items", None, 0..RECORDS, true);
    assert_eq!(a.status()["to_push"], RECORDS);

    let mut landed = 0;
    for fraction in [4, 2] {
        let pushed = || RECORDS - outbox_len(&a);
        landed += kill_when(spawn(&a, &["sync"]), RECORDS / fraction, pushed) as u32;
    }
    eprintln!("kills that landed mid-push: {landed} of 2");
    let left = outbox_len(&a);
    a.sync();
    assert_eq!(
        a.status()["to_push"],
        0,
        "A pushed everything (had {left} left)"
    );

    holds_all(&primary, "items");
    holds_all(&a, "items");
    no_conflicts(&primary, Some("Acme"));
    no_conflicts(&a, None);
    // Another satellite, serving, receives each record once.
    c.serve();
    eventually("site C catches up", WAIT, || {
        let st = c.status();
        (st["to_pull"] == 0 && st["verdict"] == "in sync")
            .then_some(())
            .ok_or(st.to_string())
    });
    c.stop();
    holds_all(&c, "items");
    // The primary's books agree: A is not behind and nothing was rejected.
    let status = primary.status();
    assert_eq!(status["rejected"], 0, "{status}");
}
