//! The local API bound beyond loopback asks for the bearer token `init` printed.

use crate::harness::Cluster;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends a GET with an optional `Authorization` header; returns the status and body.
fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_api_beyond_loopback_asks_for_the_token() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut site = cluster.satellite("site-a", &primary, &key, &[]);
    site.set("listen", "0.0.0.0:0").ok();
    let bound = site.serve();
    assert!(
        bound.ip().is_unspecified(),
        "bound to every address: {bound}"
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));

    let (status, body) = get(addr, "/api/v1/status", None);
    assert_eq!(status, 401, "no token: {body}");
    assert!(body.contains("\"error\""), "a JSON error: {body}");
    let (status, _) = get(addr, "/api/v1/status", Some("Bearer not-the-token"));
    assert_eq!(status, 401, "a wrong token");
    let (status, _) = get(
        addr,
        "/api/v1/items",
        Some(&format!("Basic {}", site.api_token)),
    );
    assert_eq!(status, 401, "the token under another scheme");
    let (status, body) = get(
        addr,
        "/api/v1/status",
        Some(&format!("Bearer {}", site.api_token)),
    );
    assert_eq!(status, 200, "the right token: {body}");
    assert!(body.contains("\"role\":\"satellite\""), "{body}");
}

#[test]
fn the_api_on_loopback_is_open_to_the_machine() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let mut site = cluster.satellite("site-a", &primary, &key, &[]);
    let addr = site.serve();
    assert!(addr.ip().is_loopback());
    let (status, body) = get(addr, "/api/v1/status", None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_address_that_keeps_guessing_credentials_is_refused_and_no_guess_is_logged() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let site = cluster.satellite("site-a", &primary, &key, &[]);
    let addr = primary.addr();
    let guess = "0123456789abcdef0123456789abcdef";
    // Each guess claims another (unknown) site, so only the address limit applies.
    let statuses: Vec<u16> = (0..25)
        .map(|i| {
            get(
                addr,
                "/sync/v1/pull?cursor=0",
                Some(&format!("Bearer {}.{guess}", 100 + i)),
            )
            .0
        })
        .collect();
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[21..].iter().all(|s| *s == 429), "{statuses:?}");
    let (status, body) = get(addr, "/sync/v1/pull?cursor=0", None);
    assert_eq!(status, 429, "refused whatever it presents: {body}");
    assert!(body.contains("too many failed attempts"), "{body}");
    // The real site, from the same address, waits out the same minute.
    let refused = site.cli(&["sync"]).fails();
    assert!(refused.contains("too many failed attempts"), "{refused}");
    let log = primary.log_tail();
    assert!(
        log.contains("wrong credentials"),
        "failures are logged: {log}"
    );
    assert!(!log.contains(guess), "a guessed secret is never logged");
}
