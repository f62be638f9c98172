//! Bad input through the local API and the CLI: a 4xx (or a non-zero exit) with an error
//! naming the problem, nothing changed, and the server still serving.

use crate::harness::{Cluster, Node};
use serde_json::Value;

/// Asserts a request is refused with a 4xx JSON error containing `needle`.
#[track_caller]
fn refused(node: &Node, method: &str, path: &str, body: &[u8], needle: &str) {
    let r = node.http(method, path, Some(body));
    assert!(
        (400..500).contains(&r.status),
        "{method} {path}: expected a 4xx, got {r:?}"
    );
    let answer: Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("{method} {path}: the error is not JSON ({e}): {r:?}"));
    let error = answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: no `error` in {answer}"));
    assert!(
        error.to_lowercase().contains(&needle.to_lowercase()),
        "{method} {path}: the error should mention {needle:?}: {error}"
    );
}

fn snapshot(node: &Node) -> (Value, Value) {
    let list = node.http("GET", "/api/v1/items?limit=1000", None);
    assert_eq!(list.status, 200, "{list:?}");
    let status = node.status();
    (list.json(), status["to_push"].clone())
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    a.serve();
    let r = a.http("PUT", "/api/v1/items/good?store=S1", Some(br#"{"n":1}"#));
    assert_eq!(r.status, 200, "{r:?}");
    let good = r.json();
    assert_eq!(good["id"], "good");
    assert_eq!(good["store"], "S1");
    assert_eq!(good["fields"]["n"], 1);
    // Let the live pusher send the good write first, so the snapshot is steady.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while snapshot(&a).1 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the good write was never pushed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = snapshot(&a);

    let long_collection = "c".repeat(65);
    let long_id = "i".repeat(257);
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("/api/v1/items/x".into(), br#"{"n":"#.to_vec(), "json"),
        ("/api/v1/items/x".into(), b"not json".to_vec(), "json"),
        ("/api/v1/items/x".into(), b"[1,2]".to_vec(), "object"),
        ("/api/v1/items/x".into(), br#""text""#.to_vec(), "object"),
        ("/api/v1/items/x".into(), b"null".to_vec(), "object"),
        ("/api/v1/items/x".into(), b"{}".to_vec(), "no fields"),
        (
            "/api/v1/items/x".into(),
            br#"{"":1}"#.to_vec(),
            "field name",
        ),
        (
            format!("/api/v1/{long_collection}/x"),
            br#"{"n":1}"#.to_vec(),
            "collection name",
        ),
        (
            format!("/api/v1/items/{long_id}"),
            br#"{"n":1}"#.to_vec(),
            "record id",
        ),
        (
            "/api/v1/it%01ems/x".into(),
            br#"{"n":1}"#.to_vec(),
            "collection name",
        ),
        (
            "/api/v1/items/x%0Ay".into(),
            br#"{"n":1}"#.to_vec(),
            "control character",
        ),
        (
            "/api/v1/items/x%00".into(),
            br#"{"n":1}"#.to_vec(),
            "control character",
        ),
        (
            "/api/v1/it%20ems/x".into(),
            br#"{"n":1}"#.to_vec(),
            "collection name",
        ),
        (
            "/api/v1/items/x?store=Nowhere".into(),
            br#"{"n":1}"#.to_vec(),
            "unknown store",
        ),
        (
            "/api/v1/items/good?store=S1".into(),
            br#"{"n":"#.to_vec(),
            "json",
        ),
    ];
    for (path, body, needle) in &cases {
        refused(&a, "PUT", path, body, needle);
    }
    // A body over the 1 MiB limit, well-formed.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1 << 20));
    refused(&a, "PUT", "/api/v1/items/big", big.as_bytes(), "limit");
    // Empty names cannot be routed at all, but still get a JSON 4xx.
    for path in ["/api/v1//x", "/api/v1/items/"] {
        refused(&a, "PUT", path, br#"{"n":1}"#, "empty");
    }
    refused(&a, "POST", "/api/v1/items/x", br#"{"n":1}"#, "method");
    // Reads with bad names or parameters.
    refused(
        &a,
        "GET",
        &format!("/api/v1/{long_collection}"),
        b"",
        "collection name",
    );
    refused(
        &a,
        "GET",
        "/api/v1/items?store=Nowhere",
        b"",
        "unknown store",
    );
    refused(&a, "GET", "/api/v1/items?limit=lots", b"", "limit");
    refused(&a, "GET", "/api/v1/items/missing", b"", "no record");
    refused(
        &a,
        "DELETE",
        &format!("/api/v1/items/{long_id}"),
        b"",
        "record id",
    );

    assert_eq!(snapshot(&a), before, "refused requests changed nothing");
    assert_eq!(a.api_get("items", "good"), Some(good.clone()));

    // The same through the CLI (serve still running).
    let cli_cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["items".into(), "x".into(), "{bad".into()], "json"),
        (vec!["items".into(), "x".into(), "[1]".into()], "object"),
        (vec!["items".into(), "x".into(), "{}".into()], "no fields"),
        (
            vec!["".into(), "x".into(), r#"{"n":1}"#.into()],
            "collection name",
        ),
        (
            vec!["items".into(), "".into(), r#"{"n":1}"#.into()],
            "record id",
        ),
        (
            vec![long_collection.clone(), "x".into(), r#"{"n":1}"#.into()],
            "collection name",
        ),
        (
            vec!["items".into(), long_id.clone(), r#"{"n":1}"#.into()],
            "record id",
        ),
        (
            vec!["items".into(), "a\u{7}b".into(), r#"{"n":1}"#.into()],
            "control character",
        ),
        (
            vec!["it\tems".into(), "x".into(), r#"{"n":1}"#.into()],
            "collection name",
        ),
        (
            vec![
                "items".into(),
                "x".into(),
                r#"{"n":1}"#.into(),
                "--store".into(),
                "Nowhere".into(),
            ],
            "unknown store",
        ),
    ];
    for (args, needle) in &cli_cases {
        let mut full = vec!["record", "put"];
        full.extend(args.iter().map(String::as_str));
        let line = a.cli(&full).fails();
        assert!(
            line.to_lowercase().contains(needle),
            "record put {args:?}: the error should mention {needle:?}: {line}"
        );
    }
    let line = a
        .cli(&["record", "list", "items", "--store", "Nowhere"])
        .fails();
    assert!(line.contains("unknown store"), "{line}");
    let line = a.cli(&["record", "get", "items", "missing"]).fails();
    assert!(line.contains("missing"), "{line}");

    assert_eq!(snapshot(&a), before, "refused commands changed nothing");

    // The server still serves, and good writes still work and sync.
    let r = a.http("GET", "/api/v1/status", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["role"], "satellite");
    let r = a.http("PUT", "/api/v1/items/after?store=S1", Some(br#"{"n":2}"#));
    assert_eq!(r.status, 200, "{r:?}");
    // Partial update: other fields are kept.
    let r = a.http("PUT", "/api/v1/items/after", Some(br#"{"m":3}"#));
    assert_eq!(r.json()["fields"], serde_json::json!({"n": 2, "m": 3}));
    let page = a.http("GET", "/api/v1/items?limit=1", None).json();
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    let next = a
        .http("GET", "/api/v1/items?limit=5&after=after", None)
        .json();
    assert_eq!(next[0]["id"], "good", "{next}");
    a.stop();
}
