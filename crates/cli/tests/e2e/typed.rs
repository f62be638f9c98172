//! Typed collections: definitions made on the primary reach satellites as reference
//! data, each site refuses what does not fit with the field, rule and value named, and
//! the primary rejects what a site wrote before it had the definition.

use crate::harness::{Cluster, Node};

const ITEMS: &str = r#"
[fields.name]
type = "text"
required = true
max_length = 20
[fields.price]
type = "decimal"
min = "0"
"#;

/// Writes a definition file in the cluster's folder; returns its path.
fn schema(cluster: &Cluster, name: &str, text: &str) -> String {
    let path = cluster.path(name);
    std::fs::write(&path, text).expect("write the definition file");
    path.to_string_lossy().into_owned()
}

fn define(primary: &Node, collection: &str, file: &str) -> serde_json::Value {
    let args = [
        "--json",
        "collection",
        "define",
        collection,
        "--org",
        "Acme",
        "--file",
        file,
    ];
    primary.cli(&args).json()
}

#[test]
fn a_definition_reaches_a_satellite_which_refuses_a_bad_write_itself() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut a = cluster.satellite("site-a", &primary, &key, &[]);
    let file = schema(&cluster, "items.toml", ITEMS);
    let defined = define(&primary, "items", &file);
    assert_eq!(defined[0]["changed"], true, "{defined}");
    let fingerprint = defined[0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    primary
        .cli(&["collection", "template", "objectsync", "--org", "Acme"])
        .ok();
    let rating = [
        "field",
        "add",
        "contacts",
        "rating",
        "--org",
        "Acme",
        "--type",
        "integer",
        "--min",
        "1",
        "--max",
        "5",
        "--required",
        "--when",
        "roles=supplier",
    ];
    primary.cli(&rating).ok();
    a.sync();

    // The satellite holds the same definition.
    let shown = a.cli(&["--json", "collection", "show", "items"]).json();
    assert_eq!(shown["fingerprint"], fingerprint.as_str());
    // A bad write is refused there, with the field, rule and value, and never queued.
    let out = a.cli(&[
        "record",
        "put",
        "items",
        "x",
        r#"{"name": "Salt", "price": "-0.5"}"#,
        "--org-wide",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let line = out.fails();
    assert!(
        line.contains("\"price\" breaks the rule min = 0") && line.contains("-0.5"),
        "{line}"
    );
    assert_eq!(a.status()["to_push"], 0);
    assert!(a.get("items", "x").is_none());
    a.put("items", "x", r#"{"name": "Salt", "price": "0.50"}"#, None);

    // A custom field by role: required of suppliers only.
    a.put(
        "contacts",
        "ann",
        r#"{"name": "Ann", "roles": ["customer"]}"#,
        None,
    );
    let line = a
        .cli(&[
            "record",
            "put",
            "contacts",
            "bob",
            r#"{"name": "Bob", "roles": ["supplier"]}"#,
            "--org-wide",
        ])
        .fails();
    assert!(
        line.contains("\"rating\" breaks the rule required (when roles=supplier)"),
        "{line}"
    );
    a.put(
        "contacts",
        "bob",
        r#"{"name": "Bob", "roles": ["supplier"], "rating": 4}"#,
        None,
    );

    // The local API answers 400, naming the field.
    a.serve();
    let r = a.http(
        "PUT",
        "/api/v1/items/y?org_wide=true",
        Some(br#"{"name": "Pepper", "price": "cheap"}"#),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("price") && r.body.contains("decimal"),
        "{r:?}"
    );
    let r = a.http(
        "PUT",
        "/api/v1/items/y?org_wide=true",
        Some(br#"{"name": "Pepper", "price": 2.25}"#),
    );
    assert_eq!(r.status, 200, "{r:?}");
    a.stop();
    a.sync();
    assert!(primary.get("items", "y").is_some());
    assert!(primary.get("contacts", "bob").is_some());
}

#[test]
fn the_primary_rejects_a_change_made_before_the_definition_arrived() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let b = cluster.satellite("site-b", &primary, &key, &[]);
    // B writes before it hears of the definition; one write fits, one does not.
    b.put("items", "cheap", r#"{"name": "Salt", "price": "-1"}"#, None);
    b.put("items", "fine", r#"{"name": "Pepper", "price": "1"}"#, None);
    let file = schema(&cluster, "items.toml", ITEMS);
    define(&primary, "items", &file);

    let report = b.sync();
    assert_eq!(report["rejected"].as_u64(), Some(1), "{report}");
    assert!(
        primary.get("items", "cheap").is_none(),
        "the primary did not take it"
    );
    assert!(primary.get("items", "fine").is_some());
    let rejections = b.cli(&["--json", "rejections"]).json();
    let reason = rejections[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("\"price\" breaks the rule min = 0"),
        "{rejections}"
    );
    assert!(b.status()["rejected"].as_u64() >= Some(1));
}

#[test]
fn stricter_definitions_are_refused_with_a_count_and_bad_files_change_nothing() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    primary.put(
        "items",
        "long",
        r#"{"name": "a name far longer than twenty"}"#,
        None,
    );
    primary.put("items", "ok", r#"{"name": "Salt"}"#, None);

    let bad = schema(
        &cluster,
        "bad.toml",
        "[fields.name]\ntype = \"text\"\nmax_lenght = 3\n",
    );
    let out = primary.cli(&[
        "collection",
        "define",
        "items",
        "--org",
        "Acme",
        "--file",
        &bad,
    ]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    let line = out.fails();
    assert!(line.contains("unknown field `max_lenght`"), "{line}");
    let json = schema(
        &cluster,
        "bad.json",
        r#"{"fields": {"n": {"type": "enum"}}}"#,
    );
    let line = primary
        .cli(&[
            "collection",
            "define",
            "items",
            "--org",
            "Acme",
            "--file",
            &json,
        ])
        .fails();
    assert!(line.contains("needs its values"), "{line}");
    let listed = primary
        .cli(&["--json", "collection", "list", "--org", "Acme"])
        .json();
    assert_eq!(listed[0]["defined"], serde_json::Value::Null, "{listed}");

    let file = schema(&cluster, "items.toml", ITEMS);
    let line = primary
        .cli(&[
            "collection",
            "define",
            "items",
            "--org",
            "Acme",
            "--file",
            &file,
        ])
        .fails();
    assert!(
        line.contains("would not fit 1 of its records") && line.contains("long"),
        "{line}"
    );
    let forced = [
        "--json",
        "collection",
        "define",
        "items",
        "--org",
        "Acme",
        "--file",
        &file,
        "--force",
    ];
    assert_eq!(primary.cli(&forced).json()[0]["misfits"], 1);
    let out = primary.cli(&["--json", "collection", "check", "items", "--org", "Acme"]);
    assert_eq!(out.code, Some(1));
    let misfits: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(misfits[0]["id"], "long", "{misfits}");
    assert_eq!(misfits[0]["rule"], "max_length = 20", "{misfits}");
    let json_file = schema(
        &cluster,
        "items.json",
        &primary
            .cli(&["--json", "collection", "show", "items", "--org", "Acme"])
            .json()["definition"]
            .to_string(),
    );
    let again = define(&primary, "items", &json_file);
    assert_eq!(
        again[0]["changed"], false,
        "the JSON form is the same definition"
    );
}
