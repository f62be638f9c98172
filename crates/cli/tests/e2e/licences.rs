//! Licences set by the operator with `sitesync org licence`: the site limit refuses a
//! real satellite's enrolment while enrolled sites keep syncing, and bad input is
//! refused with what to type, changing nothing.

use crate::harness::{Cluster, enrol};

#[test]
fn a_site_limit_of_one_refuses_a_second_satellite_and_the_first_keeps_syncing() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let set = primary
        .cli(&["org", "licence", "Acme", "--sites", "1"])
        .ok();
    assert!(set.stdout.contains("limit 1"), "{}", set.describe());
    let first = cluster.satellite("first", &primary, &key, &["--all-stores"]);

    let second = cluster.path("second");
    let line = enrol(&second, &primary.url(), &key, &["--all-stores"]).fails();
    assert!(line.contains("licensed for 1 enrolled sites"), "{line}");
    assert!(
        line.contains(r#"sitesync org licence "Acme" --sites N"#),
        "{line}"
    );
    assert!(
        !second.join("config.toml").exists(),
        "a refused site leaves no data folder behind"
    );

    // Lowering the limit below the sites enrolled refuses only new ones.
    primary
        .cli(&["org", "licence", "Acme", "--sites", "0"])
        .ok();
    primary.org = Some("Acme".into());
    for id in ["before", "after"] {
        first.put("stock", id, r#"{"qty":1}"#, None);
        first.sync();
        assert!(
            primary.get("stock", id).is_some(),
            "{id} reached the primary"
        );
    }
    let shown = primary.cli(&["--json", "org", "licence", "Acme"]).json();
    assert_eq!(shown["sites"]["enrolled"], 1, "{shown}");
    assert_eq!(shown["sites"]["limit"], 0, "{shown}");
}

#[test]
fn bad_licence_input_is_refused_with_what_to_type_and_changes_nothing() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    cluster.org(&primary, "Acme");
    let shown = || primary.cli(&["--json", "org", "licence", "Acme"]).json();
    let before = shown();
    assert_eq!(before["sites"]["limit"], serde_json::Value::Null);
    let bad: [(&[&str], &str); 5] = [
        (&["--sites", "many"], "--sites unlimited"),
        (&["--sites", "-1"], "--sites unlimited"),
        (
            &["--module", "delivery=on"],
            "the modules are files, exchange-links",
        ),
        (&["--module", "files=2027-02-30"], "files=2027-12-31"),
        (&["--expires", "soon"], "--expires never"),
    ];
    for (args, words) in bad {
        // A good part beside the bad one: neither is made.
        let mut command = vec!["org", "licence", "Acme", "--module", "files=on"];
        command.extend_from_slice(args);
        let out = primary.cli(&command);
        assert_eq!(out.code, Some(2), "{}", out.describe());
        let line = out.fails();
        assert!(line.contains(words), "{args:?}: {line}");
    }
    assert_eq!(shown(), before, "nothing changed");
    let unknown = primary.cli(&["org", "licence", "Nope", "--sites", "1"]);
    assert_eq!(unknown.code, Some(3), "{}", unknown.describe());

    let set = [
        "org",
        "licence",
        "Acme",
        "--module",
        "files=2099-01-31",
        "--expires",
        "2099-12-31",
    ];
    let changed = primary.cli(&set).ok();
    assert!(
        changed.stdout.contains("on until 2099-01-31"),
        "{}",
        changed.describe()
    );
    let after = shown();
    assert_eq!(after["modules"][0]["state"], "on", "{after}");
    assert_eq!(after["modules"][1]["state"], "off", "{after}");
    assert_eq!(after["expires"], "2099-12-31", "{after}");
}
