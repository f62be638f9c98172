//! Transport security: the sync API over TLS (self-signed and pinned, or signed by a
//! CA and checked with `--ca`), wrong certificates refused with a clear error, and
//! signed requests that cannot be replayed, altered or borrowed by another site.

use crate::harness::{Cluster, enrol, http, sitesync, sitesync_env};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[test]
fn a_self_signed_primary_is_trusted_by_fingerprint_or_by_its_certificate() {
    let cluster = Cluster::new();
    let primary = cluster.primary_with(&["--self-signed"], &[]);
    let fingerprint = primary
        .tls_fingerprint
        .clone()
        .expect("init primary --self-signed prints the fingerprint");
    assert_eq!(fingerprint.len(), 95, "SHA-256 as colon-separated hex");
    assert!(primary.url().starts_with("https://"));
    let key = cluster.org(&primary, "Acme");
    let cert = primary.data.join("tls.crt");

    let pinned = cluster.satellite(
        "pinned",
        &primary,
        &key,
        &["--tls-fingerprint", &fingerprint.replace(':', "")],
    );
    let by_cert = cluster.satellite("by-cert", &primary, &key, &["--ca", cert.to_str().unwrap()]);
    assert!(
        by_cert.data.join("primary-ca.pem").exists(),
        "the satellite keeps its own copy"
    );
    pinned.put("items", "a", r#"{"v":1}"#, None);
    pinned.sync();
    by_cert.put("items", "b", r#"{"v":2}"#, None);
    by_cert.sync();
    pinned.sync();
    for node in [&pinned, &by_cert] {
        assert_eq!(
            node.ids("items"),
            ["a", "b"].map(String::from).into(),
            "{}",
            node.name
        );
    }

    // Wrong trust is refused before anything is sent, with the reason, and no folder.
    let url = primary.url();
    let wrong = "AB".repeat(32);
    for (name, extra, expected) in [
        (
            "wrong-pin",
            vec!["--tls-fingerprint", wrong.as_str()],
            "fingerprint",
        ),
        ("system-roots", vec![], "UnknownIssuer"),
    ] {
        let data = cluster.path(name);
        let error = enrol(&data, &url, &key, &extra).fails();
        assert!(
            error.contains("TLS check") && error.contains(expected),
            "{name}: {error}"
        );
        assert!(
            !data.exists(),
            "{name}: a refused enrolment leaves no folder"
        );
    }
    let error = enrol(
        &cluster.path("not-a-fingerprint"),
        &url,
        &key,
        &["--tls-fingerprint", "12:34"],
    )
    .fails();
    assert!(error.contains("not a SHA-256 fingerprint"), "{error}");
    let plain_url = url.replace("https://", "http://");
    let error = enrol(
        &cluster.path("ca-over-http"),
        &plain_url,
        &key,
        &["--ca", cert.to_str().unwrap()],
    )
    .fails();
    assert!(error.contains("https://"), "{error}");
}

#[test]
fn plain_http_beyond_this_machine_is_told_to_use_tls() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no non-loopback address to connect from");
        return;
    };
    let cluster = Cluster::new();
    let primary = cluster.primary_with(&["--self-signed"], &[]);
    // Rebind on every address so the request arrives from a non-loopback peer.
    let mut primary = primary;
    primary.stop();
    primary.set("listen", "0.0.0.0:0");
    let addr = primary.serve();
    let answer = http(
        SocketAddr::new(ip, addr.port()),
        "GET",
        "/sync/v1/pull",
        None,
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("https://"), "{answer:?}");
    // From this machine, plain HTTP still reaches the local API.
    let local = http(
        SocketAddr::from(([127, 0, 0, 1], addr.port())),
        "GET",
        "/api/v1/status",
        None,
    );
    assert_ne!(local.status, 400, "{local:?}");
}

#[test]
fn a_primary_serves_a_ca_signed_certificate_and_satellites_check_chain_and_name() {
    let cluster = Cluster::new();
    let certs = cluster.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = make_ca(&certs, "ca");
    make_ca(&certs, "other-ca");
    make_leaf(&certs, &ca, "127.0.0.1");
    let path = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let (cert, key_file) = (path("leaf.crt"), path("leaf.key"));
    let mut primary = cluster.primary_with(&[], &["--tls-cert", &cert, "--tls-key", &key_file]);
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let trusted = cluster.satellite("trusted", &primary, &key, &["--ca", &path("ca.crt")]);
    trusted.put("items", "a", r#"{"v":1}"#, None);
    trusted.sync();
    assert_eq!(
        primary.get("items", "a").expect("pushed over TLS")["fields"]["v"],
        1
    );

    let url = primary.url();
    let error = enrol(
        &cluster.path("other-ca-site"),
        &url,
        &key,
        &["--ca", &path("other-ca.crt")],
    )
    .fails();
    assert!(error.contains("UnknownIssuer"), "{error}");
    // The certificate names 127.0.0.1 only: reached as localhost it does not match.
    let by_name = url.replace("127.0.0.1", "localhost");
    let error = enrol(
        &cluster.path("wrong-name"),
        &by_name,
        &key,
        &["--ca", &path("ca.crt")],
    )
    .fails();
    assert!(error.contains("not valid for name"), "{error}");
    // Without --ca the system's roots decide: here a store that holds the CA (as an
    // organisation's own CA installed on its machines would be).
    let system = [("SSL_CERT_FILE".to_string(), path("ca.crt"))];
    let args = [
        "init",
        "satellite",
        "--primary",
        &url,
        "--sync-key",
        &key,
        "--listen",
        "127.0.0.1:0",
    ];
    sitesync_env(&cluster.path("system-roots"), &system, &args).ok();
    // A key that does not belong to the certificate stops `serve` at once, saying so.
    let out = sitesync(
        &primary.data,
        &[
            "serve",
            "--tls-cert",
            &cert,
            "--tls-key",
            &path("other-ca.key"),
        ],
    );
    assert!(
        !out.success() && out.stderr.contains("do not fit"),
        "{}",
        out.describe()
    );
}

#[test]
fn signed_requests_cannot_be_replayed_altered_or_borrowed() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let recorder = Recorder::start(primary.addr());
    let url = format!("http://{}", recorder.addr);
    let data = cluster.path("recorded");
    let made = enrol(&data, &url, &key, &["--json"]).json();
    let site = made["site_id"].as_u64().unwrap();
    let other = cluster.satellite("other", &primary, &key, &[]);
    sitesync(&data, &["record", "put", "items", "a", r#"{"v":1}"#]).ok();
    sitesync(&data, &["sync"]).ok();
    let digest = || primary.cli(&["--json", "digest", "--org", "Acme"]).json();
    let before = digest();
    assert_eq!(before[0]["records"], 1, "{before}");

    let push = recorder.request("POST /sync/v1/push");
    let pull = recorder.request("GET /sync/v1/pull");
    for (what, bytes) in [("push", &push), ("pull", &pull)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            text.contains(&format!("site={site}")),
            "{what} is signed: {text}"
        );
        assert!(
            !text.contains("Bearer"),
            "no bearer secret on the wire: {text}"
        );
        let site_key = std::fs::read_to_string(data.join("site.key")).unwrap();
        assert!(!text.contains(site_key.trim()), "the secret never travels");
        assert_eq!(send_raw(primary.addr(), bytes), 401, "a replayed {what}");
    }
    // Altered: the same signature for another cursor.
    let altered = String::from_utf8_lossy(&pull).replacen("cursor=", "cursor=1", 1);
    assert_eq!(
        send_raw(primary.addr(), altered.as_bytes()),
        401,
        "an altered pull"
    );
    // Borrowed: another site's id with this site's signature.
    let borrowed = String::from_utf8_lossy(&pull).replacen(
        &format!("site={site},"),
        &format!("site={},", other.site_id),
        1,
    );
    assert_eq!(
        send_raw(primary.addr(), borrowed.as_bytes()),
        401,
        "another site's id"
    );
    assert_eq!(digest(), before, "refused requests change nothing");
    // The site itself goes on syncing.
    sitesync(&data, &["record", "put", "items", "b", r#"{"v":2}"#]).ok();
    sitesync(&data, &["sync"]).ok();
    assert!(primary.get("items", "b").is_some());
}

/// A forwarding TCP proxy that keeps every byte clients send.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let keep = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 << 10];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Recorder { addr, sent }
    }

    /// The first whole request (head and body) whose request line starts with `start`.
    fn request(&self, start: &str) -> Vec<u8> {
        let sent = self.sent.lock().unwrap().clone();
        let at = sent
            .windows(start.len())
            .position(|w| w == start.as_bytes())
            .unwrap_or_else(|| panic!("no {start} request was sent"));
        let rest = &sent[at..];
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        rest[..head_end + length].to_vec()
    }
}

/// Sends raw request bytes (with `Connection: close` forced) and returns the status.
fn send_raw(addr: SocketAddr, request: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(request).to_string();
    let request = text.replacen("\r\n", "\r\nconnection: close\r\n", 1);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// This machine's address on its default route, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A certificate authority: `NAME.crt` and `NAME.key` in `dir`.
fn make_ca(dir: &Path, name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("sitesync test {name}"));
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), issuer.pem()).unwrap();
    issuer
}

/// A server certificate for `name` signed by `ca`: `leaf.crt` and `leaf.key`.
fn make_leaf(dir: &Path, ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, name: &str) {
    let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join("leaf.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), key.serialize_pem()).unwrap();
}
