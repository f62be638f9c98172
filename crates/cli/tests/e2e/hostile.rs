//! Hostile and broken input: each gets a bounded, clear refusal and the server goes on
//! serving everyone else.

use crate::harness::{Cluster, Node, Response, now_ms};
use sitesync_node::secrets::RequestStamp;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A request with raw bytes and extra headers, answered in full.
fn raw(node: &Node, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let addr = node.addr();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Response {
        status,
        body: body.to_string(),
        head: head.to_string(),
    }
}

fn refused(answer: &Response, status: u16, words: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer.body.contains(words),
        "the error should name {words:?}: {answer:?}"
    );
}

#[test]
fn hostile_records_are_refused_and_the_site_keeps_serving() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut site = cluster.satellite("site-a", &primary, &key, &[]);
    site.serve();
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    refused(
        &site.http(
            "PUT",
            "/api/v1/items/deep",
            Some(format!("{{\"d\": {deep}}}").as_bytes()),
        ),
        400,
        "JSON",
    );
    refused(
        &raw(
            &site,
            "PUT",
            "/api/v1/items/utf8",
            &[],
            b"{\"name\": \"\xff\xfe\"}",
        ),
        400,
        "JSON",
    );
    let huge_name = "f".repeat(300);
    refused(
        &site.http(
            "PUT",
            "/api/v1/items/huge",
            Some(format!("{{\"{huge_name}\": 1}}").as_bytes()),
        ),
        400,
        "field name",
    );
    refused(
        &site.http("PUT", "/api/v1/items/nul", Some(b"{\"a\\u0000b\": 1}")),
        400,
        "control character",
    );
    refused(
        &site.http("PUT", "/api/v1/..%2Fconfig/x", Some(b"{\"a\": 1}")),
        400,
        "collection name",
    );
    assert!(site.list("items").is_empty(), "nothing was written");
    let ok = site.http("PUT", "/api/v1/items/fine", Some(b"{\"a\": 1}"));
    assert_eq!(ok.status, 200, "the site still serves: {ok:?}");
    // A record id is data, never a path: one that looks like a path is kept as it is
    // and nothing appears outside the data folder.
    let sneaky = site.http(
        "PUT",
        "/api/v1/items/..%2F..%2Fescaped",
        Some(b"{\"a\": 1}"),
    );
    assert_eq!(sneaky.status, 200, "{sneaky:?}");
    assert_eq!(
        site.get("items", "../../escaped").map(|r| r["id"].clone()),
        Some("../../escaped".into())
    );
    let parent = site
        .data
        .parent()
        .expect("parent")
        .parent()
        .expect("grandparent");
    assert!(!parent.join("escaped").exists());
}

#[test]
fn hostile_pushes_are_refused_and_the_primary_keeps_serving() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let site = cluster.satellite("site-a", &primary, &key, &[]);
    let secret = std::fs::read_to_string(site.data.join("site.key")).expect("site.key");
    let id = site.status()["site_id"].as_u64().expect("site id") as u32;
    // Each request is signed afresh, as the satellite would sign it.
    let sign = |method: &str, target: &str| {
        RequestStamp::new(id, now_ms())
            .expect("random nonce")
            .header(secret.trim(), method, target)
    };
    let auth = sign("POST", "/sync/v1/push");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let change =
        r#"{"seq":1,"collection":"items","id":"x","change":{"s":[1,1],"f":{"a":{"v":1}}}}"#;
    let too_many = format!("{{\"changes\":[{}]}}", vec![change; 10_001].join(","));
    refused(
        &raw(
            &primary,
            "POST",
            "/sync/v1/push",
            &headers,
            too_many.as_bytes(),
        ),
        400,
        "limit is 10000",
    );
    let auth = sign("POST", "/sync/v1/push");
    let bomb_headers = [
        ("Authorization", auth.as_str()),
        ("Content-Encoding", "zstd"),
    ];
    refused(
        &raw(
            &primary,
            "POST",
            "/sync/v1/push",
            &bomb_headers,
            b"\x28\xb5\x2f\xfdnot zstd",
        ),
        400,
        "zstd",
    );
    let auth = sign("POST", "/sync/v1/push");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    refused(
        &raw(
            &primary,
            "POST",
            "/sync/v1/push",
            &headers,
            b"{\"changes\": 7}",
        ),
        400,
        "body",
    );
    let auth = sign("GET", "/sync/v1/pull?cursor=0");
    let other_version = [
        ("Authorization", auth.as_str()),
        ("sitesync-protocol", "99"),
    ];
    refused(
        &raw(
            &primary,
            "GET",
            "/sync/v1/pull?cursor=0",
            &other_version,
            b"",
        ),
        400,
        "protocol version",
    );
    // None of it stopped the primary, nor the site's own sync.
    site.sync();
    assert_eq!(site.status()["to_push"], 0);
}

#[test]
fn thousands_of_idle_connections_do_not_shut_others_out() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut site = cluster.satellite("site-a", &primary, &key, &[]);
    let addr = site.serve();
    let idle: Vec<TcpStream> = (0..2_000)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect();
    assert!(idle.len() > 1_900, "only {} connections opened", idle.len());
    let answer = site.http("GET", "/api/v1/status", None);
    assert_eq!(answer.status, 200, "{answer:?}");
    drop(idle);
}

#[test]
fn a_client_that_trickles_its_headers_is_cut_off() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut site = cluster.satellite("site-a", &primary, &key, &[]);
    let addr = site.serve();
    let started = std::time::Instant::now();
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("send");
    // Meanwhile everyone else is served.
    assert_eq!(site.http("GET", "/api/v1/status", None).status, 200);
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(25),
        "the server closed the connection after {held:?}"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "no answer to a request never finished"
    );
}
