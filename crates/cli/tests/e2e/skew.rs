//! Clock skew: sites whose wall clocks are hours apart, or jump backwards between
//! restarts, converge to the same records and keep causality; a site a day ahead is
//! refused clearly and its change taken back. Each site's clock is moved with
//! `SITESYNC_CLOCK_OFFSET_MS` (see docs/design.md).

use crate::harness::{Cluster, Node, same_everywhere};
use crate::invariants::{Holds, Ledger, Site, converged};
use serde_json::json;

const HOUR: i64 = 3_600_000;

/// Every process of `node` from now on reads its wall clock `hours` off.
fn skew(node: &mut Node, hours: i64) {
    node.env = vec![(
        "SITESYNC_CLOCK_OFFSET_MS".to_string(),
        (hours * HOUR).to_string(),
    )];
}

/// A put at `node` of `{"v": value}`, noted in the ledger.
fn put(node: &Node, ledger: &Ledger, id: &str, value: &str) {
    let fields = json!({ "v": value });
    node.put("notes", id, &fields.to_string(), None);
    ledger.put(&node.name, "notes", id, None, fields);
}

/// The value of `shared/id` everywhere, asserting every site holds the same record.
fn value_everywhere(id: &str, nodes: &[&Node]) -> String {
    let record = same_everywhere("shared", id, nodes);
    record["fields"]["v"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Two rounds of `sync` at each satellite, so every change reaches every site.
fn sync_all(satellites: &[&Node]) {
    for _ in 0..2 {
        for s in satellites {
            s.sync();
        }
    }
}

#[test]
fn sites_hours_apart_converge_and_keep_causality() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut ahead = cluster.satellite("ahead", &primary, &key, &[]);
    let mut behind = cluster.satellite("behind", &primary, &key, &[]);
    let mut right = cluster.satellite("right", &primary, &key, &[]);
    skew(&mut ahead, 5);
    skew(&mut behind, -5);
    let ledger = Ledger::default();

    // Causality: the site 10 hours behind edits after seeing the edit of the site ahead;
    // its edit wins everywhere although its wall clock says it was made 10 hours earlier.
    ahead.put("shared", "x", r#"{"v":"first, from ahead"}"#, None);
    ahead.sync();
    behind.sync();
    assert_eq!(
        behind.get("shared", "x").unwrap()["fields"]["v"],
        "first, from ahead"
    );
    behind.put("shared", "x", r#"{"v":"second, from behind"}"#, None);
    // And the other way round, through the primary (its clock in between).
    right.put("shared", "y", r#"{"v":"first, from right"}"#, None);
    right.sync();
    primary.put("shared", "y", r#"{"v":"second, from the primary"}"#, None);
    sync_all(&[&ahead, &behind, &right]);
    assert_eq!(
        value_everywhere("x", &[&primary, &ahead, &behind, &right]),
        "second, from behind"
    );
    assert_eq!(
        value_everywhere("y", &[&primary, &ahead, &behind, &right]),
        "second, from the primary"
    );
    // The late writer's edit saw the earlier one: no conflict is logged for it.
    let conflicts = primary
        .cli(&["--json", "conflicts", "--org", "Acme"])
        .json();
    assert!(
        !conflicts
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "x" || c["id"] == "y"),
        "an edit made after seeing another is no conflict: {conflicts}"
    );

    // Concurrent edits (neither saw the other): the later stamp wins, which is the site
    // ahead, and every site agrees and the primary logs the conflict.
    ahead.put("shared", "z", r#"{"v":"concurrent, from ahead"}"#, None);
    behind.put("shared", "z", r#"{"v":"concurrent, from behind"}"#, None);
    sync_all(&[&ahead, &behind, &right]);
    assert_eq!(
        value_everywhere("z", &[&primary, &ahead, &behind, &right]),
        "concurrent, from ahead"
    );
    let conflicts = primary
        .cli(&["--json", "conflicts", "--org", "Acme"])
        .json();
    assert!(
        conflicts.as_array().unwrap().iter().any(|c| c["id"] == "z"),
        "the concurrent edits are a logged conflict: {conflicts}"
    );

    // A clock that jumps back 10 hours between two runs of a site: its later write still
    // wins over its earlier one (the clock's last reading is kept in the database).
    put(&ahead, &ledger, "jump", "before the jump");
    ahead.sync();
    skew(&mut ahead, -5);
    put(&ahead, &ledger, "jump", "after the jump");
    // Live too: every site serving, writing with its skewed clock.
    for s in [&mut ahead, &mut behind, &mut right] {
        s.serve();
    }
    for (i, s) in [&ahead, &behind, &right, &primary].into_iter().enumerate() {
        for n in 0..5 {
            put(
                s,
                &ledger,
                &format!("live-{i}-{n}"),
                &format!("{} {n}", s.name),
            );
        }
    }
    let sites: Vec<Site> = [&ahead, &behind, &right]
        .into_iter()
        .map(|n| Site::new(n, Holds::All))
        .collect();
    converged(&Site::new(&primary, Holds::All), &sites, &ledger);
    assert_eq!(
        value_everywhere("x", &[&primary, &ahead, &behind, &right]),
        "second, from behind"
    );
    for s in [&mut ahead, &mut behind, &mut right] {
        s.stop();
    }
}

#[test]
fn a_site_a_day_ahead_is_refused_clearly_and_its_change_taken_back() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut far = cluster.satellite("far", &primary, &key, &[]);
    let other = cluster.satellite("other", &primary, &key, &[]);
    skew(&mut far, 30);

    far.put("notes", "from-the-future", r#"{"v":1}"#, None);
    let report = far.sync();
    assert_eq!(report["rejected"], 1, "{report}");
    let out = far.cli(&["status"]);
    assert_eq!(
        out.code,
        Some(14),
        "a rejection not acknowledged: {}",
        out.describe()
    );
    let status = out.stdout;
    assert!(
        status.contains("30 hours ahead") && status.contains("correct the clock"),
        "the site's status says its clock is ahead: {status}"
    );
    // Taken back at the site, never seen elsewhere.
    assert!(
        far.get("notes", "from-the-future").is_none(),
        "taken back at the site"
    );
    other.sync();
    assert!(primary.get("notes", "from-the-future").is_none());
    assert!(other.get("notes", "from-the-future").is_none());
    let rejected = primary.status();
    assert_eq!(
        rejected["rejected"], 1,
        "the primary counts the rejection: {rejected}"
    );

    // Its clock corrected, the site's next write is accepted (its clock, which had
    // followed the wrong wall clock, starts again from the right one).
    skew(&mut far, 0);
    far.put("notes", "after-correction", r#"{"v":2}"#, None);
    let report = far.sync();
    assert_eq!(report["rejected"], 0, "{report}");
    other.sync();
    assert_eq!(
        other.get("notes", "after-correction").unwrap()["fields"]["v"],
        2
    );
    let verdict = far.status()["verdict"].to_string();
    assert!(verdict.contains("1 change was rejected"), "{verdict}");
}
