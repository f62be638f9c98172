//! Enrolment errors: each exits non-zero with one clear `error:` line and leaves no data
//! folder behind (and an empty folder that existed before stays empty).

use crate::harness::{Cluster, Node, dead_port, enrol};

/// Asserts the enrolment fails with one error line mentioning one of `words`, and that
/// it made nothing: neither in a new folder nor in an existing empty one.
#[track_caller]
fn refused(cluster: &Cluster, case: &str, url: &str, key: &str, extra: &[&str], words: &[&str]) {
    let fresh = cluster.path(&format!("refused-{case}"));
    let line = enrol(&fresh, url, key, extra).fails();
    let lower = line.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "{case}: the error should mention one of {words:?}: {line}"
    );
    assert!(
        !fresh.exists(),
        "{case}: a data folder was left behind at {}",
        fresh.display()
    );

    let existing = cluster.path(&format!("existing-{case}"));
    std::fs::create_dir(&existing).expect("mkdir");
    enrol(&existing, url, key, extra).fails();
    let left: Vec<_> = std::fs::read_dir(&existing)
        .expect("the existing folder stays")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "{case}: files were left in an existing folder: {left:?}"
    );
}

#[test]
fn enrolment_errors_are_clear_and_leave_nothing() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let other = cluster.org(&primary, "Beta");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    primary
        .cli(&["store", "create", "--org", "Beta", "T1"])
        .ok();
    let url = primary.url();
    let taken = cluster.satellite("site-a", &primary, &key, &["--site-id", "7"]);
    assert_eq!(taken.site_id, 7, "--site-id is honoured");

    // A well-formed key whose secret part is wrong, and one that is not a key at all.
    let mut wrong = key.clone();
    let last = wrong.pop().expect("non-empty");
    wrong.push(if last == '0' { '1' } else { '0' });
    refused(&cluster, "wrong-key", &url, &wrong, &[], &["org show"]);
    refused(
        &cluster,
        "garbage-key",
        &url,
        "not-a-key",
        &[],
        &["org show"],
    );
    refused(
        &cluster,
        "taken-id",
        &url,
        &key,
        &["--site-id", "7"],
        &["taken", "7"],
    );
    for id in ["1", "0", "-1", "-42"] {
        refused(
            &cluster,
            &format!("id{id}"),
            &url,
            &key,
            &["--site-id", id],
            &["site id", id],
        );
    }
    refused(
        &cluster,
        "unknown-store",
        &url,
        &key,
        &["--store", "Nowhere"],
        &["nowhere"],
    );
    // A store of another organisation is unknown to this one.
    refused(
        &cluster,
        "foreign-store",
        &url,
        &key,
        &["--store", "T1"],
        &["t1"],
    );
    let dead = format!("http://127.0.0.1:{}", dead_port());
    refused(
        &cluster,
        "unreachable",
        &dead,
        &key,
        &[],
        &["reach", "connect"],
    );
    refused(&cluster, "bad-url", "ftp://example", &key, &[], &["http"]);

    // None of the refused attempts took a site id or changed the primary.
    let sites = primary.cli(&["--json", "site", "list"]).json();
    let ids: Vec<u64> = sites
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![7], "only the one good enrolment exists: {sites}");
    // A satellite's address given as the primary's says so.
    let mut serving = cluster.satellite("serving", &primary, &key, &[]);
    serving.serve();
    refused(
        &cluster,
        "satellite-url",
        &serving.url(),
        &key,
        &[],
        &["is a satellite"],
    );
    // The other organisation's key still works, and the next id is given out.
    let b = cluster.satellite("site-b", &primary, &other, &[]);
    assert!(b.site_id >= 2 && b.site_id != 7, "site id {}", b.site_id);

    // Initialising twice is refused and changes nothing.
    let config = std::fs::read(taken.data.join("config.toml")).expect("config");
    enrol(&taken.data, &url, &key, &[]).fails();
    assert_eq!(
        std::fs::read(taken.data.join("config.toml")).expect("config"),
        config
    );
}

#[test]
fn rotated_key_stops_enrolling_but_enrolled_sites_keep_syncing() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let old = cluster.org(&primary, "Acme");
    let a = cluster.satellite("site-a", &primary, &old, &[]);
    let rotated = primary.cli(&["--json", "org", "rotate-key", "Acme"]).json();
    let new = rotated["sync_key"].as_str().expect("sync_key").to_string();
    cluster.secret("rotated sync key", &new);
    assert_ne!(new, old);
    let shown = primary.cli(&["--json", "org", "show", "Acme"]).json();
    assert_eq!(
        shown["sync_key"],
        new.as_str(),
        "org show prints the new key"
    );

    refused(
        &cluster,
        "old-key",
        &primary.url(),
        &old,
        &[],
        &["sync key", "credential", "auth"],
    );
    let b = cluster.satellite("site-b", &primary, &new, &[]);

    a.put("notes", "from-a", r#"{"v":1}"#, None);
    a.sync();
    b.sync();
    assert!(
        b.get("notes", "from-a").is_some(),
        "site A, enrolled with the old key, still syncs"
    );
    primary.org = Some("Acme".into());
    assert!(primary.get("notes", "from-a").is_some());
}

#[test]
fn a_revoked_site_is_refused() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let a = cluster.satellite("site-a", &primary, &key, &[]);
    let b = cluster.satellite("site-b", &primary, &key, &[]);
    a.put("notes", "before", r#"{"v":1}"#, None);
    a.sync();

    let revoked = primary
        .cli(&["--json", "site", "revoke", &a.site_id.to_string()])
        .json();
    let new_key = revoked["sync_key"]
        .as_str()
        .expect("a new sync key")
        .to_string();
    cluster.secret("rotated sync key of Acme", &new_key);
    assert_ne!(
        new_key, key,
        "revoking a site rotates its organisation's sync key"
    );
    let list = primary.cli(&["--json", "site", "list"]).json();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == a.site_id)
        .expect("site A listed");
    assert_eq!(row["revoked"], true, "{row}");

    a.put("notes", "after", r#"{"v":1}"#, None);
    let line = a.cli(&["sync"]).fails();
    assert!(line.contains("refused") || line.contains("auth"), "{line}");
    assert!(
        primary.get("notes", "after").is_none(),
        "a revoked site's change is not taken"
    );
    let status = a.status();
    assert_eq!(status["to_push"], 1, "{status}");
    assert_ne!(status["verdict"], "in sync", "{status}");
    // The other site is unaffected.
    b.sync();
    assert!(b.get("notes", "before").is_some());
    assert!(b.get("notes", "after").is_none());
    // Whoever ran the revoked site cannot enrol again with the key it knew; the new
    // key enrols.
    let line = enrol(&cluster.path("again"), &primary.url(), &key, &[]).fails();
    assert!(line.contains("refused") || line.contains("auth"), "{line}");
    enrol(&cluster.path("new-site"), &primary.url(), &new_key, &[]).ok();
}

#[test]
fn a_wrong_auth_code_changes_no_setting() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let a = cluster.satellite("site-a", &primary, &key, &[]);
    let sites: [&Node; 2] = [&primary, &a];
    for site in sites {
        let before_file = std::fs::read(site.data.join("config.toml")).expect("config");
        let before = site.cli(&["--json", "settings", "show"]).json();
        for (k, v) in [
            ("listen", "127.0.0.1:9"),
            ("name", "renamed"),
            ("auth-code", "new-code-1234"),
            ("api-token", "new"),
            ("primary-url", "http://127.0.0.1:9"),
        ] {
            let line = site
                .cli(&["settings", "set", k, v, "--auth-code", "not-the-code"])
                .fails();
            assert!(line.contains("wrong"), "{}: {line}", site.name);
        }
        assert_eq!(
            std::fs::read(site.data.join("config.toml")).expect("config"),
            before_file,
            "{}: config.toml changed after wrong codes",
            site.name
        );
        assert_eq!(site.cli(&["--json", "settings", "show"]).json(), before);
        // The right code does change it (so the check above means something).
        site.set("name", "renamed").ok();
        let after = site.cli(&["--json", "settings", "show"]).json();
        assert_eq!(after["name"], "renamed", "{after}");
        let shown = serde_json::to_string(&after).unwrap();
        assert!(
            !shown.contains(&site.auth_code),
            "settings show never prints the code"
        );
    }
    // Settings the primary owns cannot be set locally, even with the right code.
    a.set("site-id", "9").fails();
}

/// `status` exits with where the site stands (the harness checks each code against the
/// standing): 0 in sync, 13 behind, 11 cannot reach the primary, 6 refused.
#[test]
fn status_exits_with_where_the_site_stands() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let a = cluster.satellite("site-a", &primary, &key, &[]);
    let b = cluster.satellite("site-b", &primary, &key, &[]);
    assert_eq!(a.status()["standing"], "behind", "never synced");
    a.sync();
    assert_eq!(a.status()["standing"], "in_sync");
    a.put("notes", "n1", r#"{"v": 1}"#, None);
    assert_eq!(a.status()["standing"], "behind", "a change to push");
    a.sync();
    b.sync();
    primary
        .cli(&["site", "revoke", &b.site_id.to_string()])
        .ok();
    let refused = b.status();
    assert_eq!(refused["standing"], "refused", "{refused}");
    primary.stop();
    let down = a.status();
    assert_eq!(down["standing"], "unreachable", "{down}");
}
