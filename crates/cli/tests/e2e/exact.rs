//! A value is kept exactly as written or refused with the reason, never changed on the
//! way (issue "Nothing silently wrong", item 9): big integers, repeated keys, ids that
//! look alike in two Unicode forms, and an impossible port.

use crate::harness::{Cluster, sitesync};

#[test]
fn values_are_kept_exactly_or_refused_with_the_reason() {
    let cluster = Cluster::new();
    let folder = cluster.path("bad-port");
    let line = sitesync(&folder, &["init", "primary", "--listen", "127.0.0.1:99999"]).fails();
    assert!(
        line.contains("99999") && line.contains("0 to 65535"),
        "{line}"
    );
    assert!(
        !folder.exists(),
        "a refused init left {} behind",
        folder.display()
    );

    let primary = cluster.primary();
    cluster.org(&primary, "Acme");
    let put = |id: &str, fields: &str| {
        primary.cli(&["record", "put", "notes", id, fields, "--org", "Acme"])
    };
    let big = put("big", r#"{"n": 12345678901234567890123}"#).fails();
    assert!(
        big.contains("12345678901234567890123") && big.contains("string"),
        "{big}"
    );
    let twice = put("twice", r#"{"a": 1, "a": 2}"#).fails();
    assert!(twice.contains("\"a\" appears twice"), "{twice}");
    let decomposed = put("cafe\u{301}", r#"{"a": 1}"#).fails();
    assert!(decomposed.contains("normal form C"), "{decomposed}");
    put("caf\u{e9}", r#"{"n": 18446744073709551615, "d": 0.1}"#).ok();
    let kept = primary
        .cli(&[
            "--json",
            "record",
            "get",
            "notes",
            "caf\u{e9}",
            "--org",
            "Acme",
        ])
        .json();
    assert_eq!(kept["fields"]["n"], serde_json::json!(u64::MAX));
    assert_eq!(kept["fields"]["d"], serde_json::json!(0.1));

    // The same through the local API: refused with the reason, nothing written.
    let answer = primary.http(
        "PUT",
        "/api/v1/notes/big?org=Acme",
        Some(br#"{"n": 0.10000000000000000001}"#),
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("cannot be kept exactly"), "{answer:?}");
    for id in ["big", "twice"] {
        let gone = primary.http("GET", &format!("/api/v1/notes/{id}?org=Acme"), None);
        assert_eq!(gone.status, 404, "{id} was written: {gone:?}");
    }
}
