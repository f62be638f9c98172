//! Files in records: a file put at one satellite reaches another of the same store
//! byte for byte (by `sitesync sync`, and live through the local API, ranges too); a
//! file not yet at the primary is pending at a site that holds its record (`file get`
//! exits 12, `sync` says so) and arrives once it can; a transfer cut midway by a kill
//! (of the satellite or of the primary during an upload, of the satellite during a
//! download) resumes without moving again what already arrived; a store taken from a site takes
//! its files with it at the next sweep; a chunk altered on disk is caught and fetched
//! anew; and size limits and a definition's file rules refuse a put, leaving the record
//! as it was; a pending file's 503 says why, and a 416 says the file's size.

use crate::harness::{Cluster, Node, Out, WAIT, eventually, http_with};
use serde_json::Value;
use sitesync_sim::Rng;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The size of a chunk (`sitesync_core::file::CHUNK_SIZE`).
const CHUNK: usize = 1 << 20;
/// How long a live file lane may take: it retries a pending file after 2 s, then 4 s…
const LIVE: Duration = Duration::from_secs(40);

/// `len` random bytes from `seed`.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Writes `bytes` to a file named `name` in the cluster's folder; returns its path.
fn write_file(cluster: &Cluster, name: &str, bytes: &[u8]) -> PathBuf {
    let path = cluster.path(name);
    std::fs::write(&path, bytes).expect("write the file to put");
    path
}

/// `sitesync file put COLLECTION ID FIELD PATH EXTRA…` (with `--json`).
fn file_put(
    node: &Node,
    (collection, id, field): (&str, &str, &str),
    path: &Path,
    extra: &[&str],
) -> Out {
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["--json", "file", "put", collection, id, field, &path];
    args.extend_from_slice(extra);
    node.cli(&args)
}

/// `sitesync file get COLLECTION ID FIELD -o OUT`: the bytes written, or the failed
/// command (and then nothing may be at `out`).
fn file_get(
    node: &Node,
    (collection, id, field): (&str, &str, &str),
    out: &Path,
) -> Result<Vec<u8>, Out> {
    let _ = std::fs::remove_file(out);
    let path = out.to_string_lossy().into_owned();
    let run = node.cli(&["--json", "file", "get", collection, id, field, "-o", &path]);
    if !run.success() {
        assert!(
            !out.exists(),
            "a failed `file get` left a file at {}: {}",
            out.display(),
            run.describe()
        );
        return Err(run);
    }
    let said: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("`file get` printed no JSON ({e}): {}", run.describe()));
    let bytes = std::fs::read(out).expect("`file get` wrote its file");
    assert_eq!(said["size"], bytes.len() as u64, "{said}");
    Ok(bytes)
}

/// Asserts two files' bytes are equal without printing megabytes.
#[track_caller]
fn same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// The folder of a site's files of its one organisation (`<data>/files/<org id>`).
fn org_files(node: &Node) -> PathBuf {
    let dir = node.data.join("files");
    let orgs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: no files folder {}: {e}", node.name, dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        orgs.len(),
        1,
        "{}: one organisation's files: {orgs:?}",
        node.name
    );
    orgs[0].clone()
}

/// The chunk files under `<org files>/chunks/`.
fn chunk_files(org: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for folder in std::fs::read_dir(org.join("chunks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for entry in std::fs::read_dir(folder.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(entry.path());
        }
    }
    found.sort();
    found
}

/// The hashes (64 hex digits) with a manifest under `<org files>/manifests/`.
fn manifests(org: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(org.join("manifests"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

/// The file a record's field names, as `record get` shows it.
fn field_file(node: &Node, collection: &str, id: &str, field: &str) -> Option<Value> {
    node.get(collection, id)
        .map(|record| record["fields"][field].clone())
}

/// A primary with organisation Acme and stores S1 and S2.
fn acme(cluster: &Cluster) -> (Node, String) {
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    for store in ["S1", "S2"] {
        primary
            .cli(&["store", "create", "--org", "Acme", store])
            .ok();
    }
    primary.org = Some("Acme".into());
    (primary, key)
}

/// Restarts the primary on the same address after changing a setting.
fn restart_with(primary: &mut Node, key: &str, value: &str) {
    let addr = primary.addr();
    primary.stop();
    primary.set("listen", &addr.to_string()).ok();
    primary.set(key, value).ok();
    assert_eq!(
        primary.serve(),
        addr,
        "the primary came back on its address"
    );
}

/// A raw HTTP answer, its body as bytes.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// `GET path` with these headers, the answer's body kept as bytes (the harness's
/// `http` reads bodies as text).
fn get_raw(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("GET {path}: reading the answer failed: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no HTTP head in {} bytes", raw.len()));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status in {head:?}"));
    let answer = Raw {
        status,
        head,
        body: Vec::new(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size line");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).expect("hex").trim(), 16)
                    .expect("a chunk size");
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Raw { body, ..answer }
}

#[test]
fn a_file_put_at_one_satellite_arrives_byte_identical_at_another() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let mut b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);

    // 3.5 MiB: three whole chunks and a half one.
    let bytes = random_bytes(1, 3 * CHUNK + CHUNK / 2);
    let path = write_file(&cluster, "scan.bin", &bytes);
    let put = file_put(
        &a,
        ("docs", "d1", "scan"),
        &path,
        &[
            "--store",
            "S1",
            "--type",
            "application/pdf",
            "--name",
            "scan 1.pdf",
        ],
    )
    .json();
    assert_eq!(put["size"], bytes.len() as u64, "{put}");
    let hash = put["hash"].as_str().expect("hash").to_string();
    assert!(hash.starts_with("blake3:") && hash.len() == 7 + 64, "{put}");
    let meta = put["record"]["fields"]["scan"].clone();
    assert_eq!(
        meta,
        serde_json::json!({
            "name": "scan 1.pdf",
            "size": bytes.len(),
            "media_type": "application/pdf",
            "hash": hash,
        }),
        "{put}"
    );

    let report = a.sync();
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(
        report["files"]["bytes_sent"],
        bytes.len() as u64,
        "{report}"
    );
    assert_eq!(report["files"]["pending"], 0, "{report}");
    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    assert_eq!(
        report["files"]["bytes_fetched"],
        bytes.len() as u64,
        "{report}"
    );
    assert_eq!(report["files"]["pending"], 0, "{report}");
    assert_eq!(field_file(&b, "docs", "d1", "scan"), Some(meta.clone()));
    assert_eq!(field_file(&primary, "docs", "d1", "scan"), Some(meta));

    let out = cluster.path("scan.out");
    let got = file_get(&b, ("docs", "d1", "scan"), &out)
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &bytes, "the file at B");
    // Nothing left to move: a second round is in sync in words too.
    let text = b.cli(&["sync"]).ok().stdout;
    assert!(text.starts_with("in sync"), "{text}");

    // Live: put through A's local API, read through B's, both serving.
    a.serve();
    b.serve();
    let bytes = random_bytes(2, 2 * CHUNK + 12_345);
    let r = http_with(
        a.addr(),
        "PUT",
        "/api/v1/docs/d2/files/photo?name=photo.png&store=S1",
        &[("Content-Type", "image/png")],
        Some(&bytes),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let answer = r.json();
    assert_eq!(answer["size"], bytes.len() as u64, "{answer}");
    assert_eq!(answer["record"]["fields"]["photo"]["name"], "photo.png");
    assert_eq!(
        answer["record"]["fields"]["photo"]["media_type"],
        "image/png"
    );
    let hash = answer["hash"].as_str().expect("hash").to_string();
    assert_eq!(answer["record"]["fields"]["photo"]["hash"], hash.as_str());

    let path = "/api/v1/docs/d2/files/photo";
    let whole = eventually("the file put at A readable at B", LIVE, || {
        let r = get_raw(b.addr(), path, &[]);
        match r.status {
            200 => Ok(r),
            // Not there yet: no record (404), or the record but not its file (503).
            404 | 503 => Err(format!("{} {}", r.status, String::from_utf8_lossy(&r.body))),
            _ => panic!(
                "GET {path} at B: {} {}",
                r.head,
                String::from_utf8_lossy(&r.body)
            ),
        }
    });
    same_bytes(&whole.body, &bytes, "the file read through B's API");
    assert_eq!(
        whole.header("content-type"),
        Some("image/png"),
        "{}",
        whole.head
    );
    assert_eq!(
        whole.header("etag"),
        Some(format!("\"{hash}\"").as_str()),
        "{}",
        whole.head
    );

    // A range across a chunk boundary: exactly that slice.
    let (first, last) = (CHUNK - 100, CHUNK + 99);
    let range = format!("bytes={first}-{last}");
    let part = get_raw(b.addr(), path, &[("Range", &range)]);
    assert_eq!(part.status, 206, "{}", part.head);
    let expected = format!("bytes {first}-{last}/{}", bytes.len());
    assert_eq!(
        part.header("content-range"),
        Some(expected.as_str()),
        "{}",
        part.head
    );
    same_bytes(&part.body, &bytes[first..=last], "the range");
    // The last bytes, asked from the end.
    let part = get_raw(b.addr(), path, &[("Range", "bytes=-10")]);
    assert_eq!(part.status, 206, "{}", part.head);
    same_bytes(&part.body, &bytes[bytes.len() - 10..], "the last 10 bytes");
    // A range past the end cannot be served.
    let past = format!("bytes={}-", bytes.len());
    let refused = get_raw(b.addr(), path, &[("Range", &past)]);
    assert_eq!(refused.status, 416, "{}", refused.head);
    // (That it says the file's size in `Content-Range` is
    // `an_unsatisfiable_range_is_answered_with_the_files_size`.)
    a.stop();
    b.stop();
}

#[test]
fn a_file_not_yet_at_the_primary_is_pending_where_its_record_arrived() {
    let cluster = Cluster::new();
    let (mut primary, key) = acme(&cluster);
    let a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let mut b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);
    // The primary takes no file over 1 KiB: A's record gets there, its file does not.
    restart_with(&mut primary, "file-max-size", "1 KiB");

    let bytes = random_bytes(3, 3000);
    let path = write_file(&cluster, "note.txt", &bytes);
    file_put(&a, ("docs", "d1", "note"), &path, &["--store", "S1"]).ok();
    let report = a.sync();
    assert_eq!(report["pushed"], 1, "{report}");
    assert_eq!(report["files"]["sent"], 0, "{report}");
    assert_eq!(report["files"]["pending"], 1, "{report}");

    let report = b.sync();
    assert!(report["files"]["pending"].as_u64() > Some(0), "{report}");
    assert_eq!(report["files"]["fetched"], 0, "{report}");
    let meta = field_file(&b, "docs", "d1", "note").expect("B holds the record");
    assert_eq!(meta["size"], 3000, "{meta}");
    assert_eq!(
        meta["media_type"], "text/plain",
        "guessed from the name: {meta}"
    );
    let out = cluster.path("note.out");
    let run = file_get(&b, ("docs", "d1", "note"), &out).expect_err("the file is not at B yet");
    assert_eq!(run.code, Some(12), "{}", run.describe());
    let line = run.fails();
    assert!(line.contains("not here yet"), "{line}");
    let text = b.cli(&["sync"]).ok().stdout;
    assert!(
        !text.starts_with("in sync") && text.contains("1 file still on its way"),
        "B's sync does not say it is in sync while a file is pending: {text}"
    );
    // Nor does `status`, at either end.
    for (site, count, verdict) in [
        (&a, "files_to_send", "1 file to send"),
        (&b, "files_to_fetch", "1 file to fetch"),
    ] {
        let status = site.status();
        assert_eq!(status[count], 1, "{status}");
        assert_eq!(status["standing"], "behind", "{status}");
        assert_eq!(status["verdict"], verdict, "{status}");
    }
    // The local API answers 503 with a JSON error (what it says is
    // `a_pending_file_is_answered_503_saying_it_is_not_here_yet`).
    b.serve();
    let r = b.http("GET", "/api/v1/docs/d1/files/note", None);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["code"], "unavailable", "{r:?}");
    b.stop();

    // Once the primary takes it, A sends it and B fetches it.
    restart_with(&mut primary, "file-max-size", "100 MiB");
    let report = a.sync();
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    let got = file_get(&b, ("docs", "d1", "note"), &out)
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &bytes, "the file at B");
    let text = b.cli(&["sync"]).ok().stdout;
    assert!(text.starts_with("in sync"), "{text}");
    for site in [&a, &b] {
        let status = site.status();
        assert_eq!(status["verdict"], "in sync", "{status}");
    }
}

/// A TCP relay between a satellite and the primary that forwards at most `budget`
/// bytes one way (towards the primary, or towards the satellite), then holds everything
/// else going that way back until opened.
///
/// Killing a site while a transfer is in progress by watching chunks fill is a race on
/// loopback (48 chunks may go in well under a second); with the relay the transfer
/// stops after about ten chunks and stays stopped, a chunk half sent, for as long as the
/// test likes: the kill lands mid-transfer every time.
struct Gate {
    addr: SocketAddr,
    limit: Limit,
}

/// The way a [`Gate`] spends its budget.
#[derive(Clone, Copy)]
enum Towards {
    Primary,
    Satellite,
}

/// A [`Gate`]'s budget, shared by its connections.
#[derive(Clone)]
struct Limit {
    budget: Arc<AtomicU64>,
    /// Some bytes are being held back.
    holding: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
}

impl Gate {
    /// A relay to `upstream` (the primary) spending `budget` on the bytes going `way`.
    fn start(upstream: SocketAddr, way: Towards, budget: u64) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let limit = Limit {
            budget: Arc::new(AtomicU64::new(budget)),
            holding: Arc::new(AtomicBool::new(false)),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let gate = Gate {
            addr,
            limit: limit.clone(),
        };
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if limit.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                // (The primary may be down for a while: the satellite then sees the
                // connection closed, as it would without the relay.)
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let (up, down) = match way {
                    Towards::Primary => (Some(limit.clone()), None),
                    Towards::Satellite => (None, Some(limit.clone())),
                };
                std::thread::spawn(move || relay(client, server, up));
                std::thread::spawn(move || relay(s2, c2, down));
            }
        });
        gate
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the budget is spent and bytes are held back.
    fn holding(&self) -> bool {
        self.limit.holding.load(Ordering::SeqCst)
    }

    /// Lets everything through from now on.
    fn open(&self) {
        self.limit.budget.store(u64::MAX / 2, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.limit.stopping.store(true, Ordering::SeqCst);
        self.open();
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` until EOF, spending the budget of `limit` (when given) on
/// every byte.
fn relay(mut from: TcpStream, mut to: TcpStream, limit: Option<Limit>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut sent = 0;
        while sent < n {
            let mut allowed = n - sent;
            if let Some(limit) = &limit {
                let taken = limit
                    .budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        (left > 0).then(|| left - left.min(allowed as u64))
                    });
                match taken {
                    Ok(left) => allowed = allowed.min(left as usize),
                    Err(_) if limit.stopping.load(Ordering::SeqCst) => return,
                    Err(_) => {
                        limit.holding.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
            }
            if to.write_all(&buf[sent..sent + allowed]).is_err() {
                return;
            }
            sent += allowed;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The number of chunk files at `node` (none before its first file).
fn chunk_count(node: &Node) -> usize {
    match node.data.join("files").exists() {
        true => chunk_files(&org_files(node)).len(),
        false => 0,
    }
}

#[test]
fn an_upload_killed_midway_resumes_without_sending_again_what_arrived() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    // A reaches the primary through the relay; B directly.
    let gate = Gate::start(
        primary.addr(),
        Towards::Primary,
        10 * CHUNK as u64 + CHUNK as u64 / 2,
    );
    let mut a = cluster.satellite_via("site-a", &gate.url(), &key, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);

    let total = 48;
    let bytes = random_bytes(4, total * CHUNK);
    let path = write_file(&cluster, "big.bin", &bytes);
    file_put(&a, ("docs", "big", "data"), &path, &["--store", "S1"]).ok();
    a.serve();

    // The upload runs until the relay holds it back, a chunk half sent.
    let chunks = primary.data.join("files");
    let count = || match chunks.exists() {
        true => chunk_files(&org_files(&primary)).len(),
        false => 0,
    };
    eventually("A's upload to stop at the relay", LIVE, || {
        match gate.holding() && count() > 0 {
            true => Ok(()),
            false => Err(format!(
                "{} chunks at the primary; A: {}",
                count(),
                a.log_tail()
            )),
        }
    });
    // Whatever reached the primary whole is written by now; then no more comes.
    let mut before = count();
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = count();
        assert!(now >= before);
        before = now;
    }
    a.kill();
    assert!(
        (1..total).contains(&before),
        "some but not all chunks at the primary when A was killed: {before}"
    );
    assert_eq!(count(), before, "nothing more arrived after the kill");

    gate.open();
    let report = a.sync();
    let sent = report["files"]["bytes_sent"].as_u64().expect("bytes_sent");
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    assert!(
        sent < bytes.len() as u64,
        "A sent the whole file again: {report}"
    );
    assert_eq!(sent % CHUNK as u64, 0, "whole chunks: {report}");
    let sent_after = (sent / CHUNK as u64) as usize;
    eprintln!("{before} of {total} chunks at the primary at the kill; {sent_after} sent after");
    assert!(
        before + sent_after <= total + 1,
        "{before} chunks were at the primary and A sent {sent_after} more of {total}"
    );
    assert_eq!(count(), total, "the primary holds every chunk");

    fetched_whole(&cluster, &b, &bytes);
    drop(gate);
}

#[test]
fn an_upload_cut_by_a_primary_killed_midway_resumes() {
    let cluster = Cluster::new();
    let (mut primary, key) = acme(&cluster);
    // Restarts come back on the same address, where the relay and B look for it.
    let addr = primary.addr();
    primary.set("listen", &addr.to_string()).ok();
    // A reaches the primary through the relay; B directly.
    let gate = Gate::start(addr, Towards::Primary, 10 * CHUNK as u64 + CHUNK as u64 / 2);
    let mut a = cluster.satellite_via("site-a", &gate.url(), &key, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);

    let total = 40;
    let bytes = random_bytes(16, total * CHUNK);
    let path = write_file(&cluster, "big.bin", &bytes);
    file_put(&a, ("docs", "big", "data"), &path, &["--store", "S1"]).ok();
    a.serve();
    eventually("A's upload to stop at the relay", LIVE, || {
        match gate.holding() && chunk_count(&primary) > 0 {
            true => Ok(()),
            false => Err(format!(
                "{} chunks at the primary; A: {}",
                chunk_count(&primary),
                a.log_tail()
            )),
        }
    });

    // The primary dies with a chunk half received: what it has on disk is what it
    // answered for (each chunk is synced before its answer).
    let logged = std::fs::read_to_string(&a.log).unwrap_or_default().len();
    primary.kill();
    let before = chunk_count(&primary);
    assert!(
        (1..total).contains(&before),
        "some but not all chunks at the primary when it was killed: {before}"
    );
    assert_eq!(
        primary.serve(),
        addr,
        "the primary came back on its address"
    );
    // A sees its upload cut (the relay passes the connection's end on)…
    eventually("A to see its upload cut", WAIT, || {
        let log = std::fs::read_to_string(&a.log).unwrap_or_default();
        match log
            .get(logged..)
            .unwrap_or_default()
            .contains("could not be sent yet")
        {
            true => Ok(()),
            false => Err(a.log_tail()),
        }
    });
    // …and its next try would wait at the held relay: it is stopped, and the upload
    // resumed by `sync`.
    a.kill();
    assert_eq!(chunk_count(&primary), before, "nothing arrived meanwhile");

    gate.open();
    let report = a.sync();
    let sent = report["files"]["bytes_sent"].as_u64().expect("bytes_sent");
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    assert!(
        sent < bytes.len() as u64,
        "A sent the whole file again: {report}"
    );
    assert_eq!(sent % CHUNK as u64, 0, "whole chunks: {report}");
    let sent_after = (sent / CHUNK as u64) as usize;
    eprintln!(
        "{before} of {total} chunks at the primary when it was killed; {sent_after} sent after"
    );
    assert!(
        before + sent_after <= total + 1,
        "{before} chunks were at the primary and A sent {sent_after} more of {total}"
    );
    assert_eq!(
        chunk_count(&primary),
        total,
        "the primary holds every chunk"
    );

    fetched_whole(&cluster, &b, &bytes);
    drop(gate);
}

#[test]
fn a_download_killed_midway_resumes_without_fetching_again_what_arrived() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    // A reaches the primary directly; B through a relay that lets about ten chunks
    // through towards B.
    let a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let gate = Gate::start(
        primary.addr(),
        Towards::Satellite,
        10 * CHUNK as u64 + CHUNK as u64 / 2,
    );
    let mut b = cluster.satellite_via("site-b", &gate.url(), &key, &["--store", "S1"]);

    let total = 40;
    let bytes = random_bytes(17, total * CHUNK);
    let path = write_file(&cluster, "big.bin", &bytes);
    file_put(&a, ("docs", "big", "data"), &path, &["--store", "S1"]).ok();
    let report = a.sync();
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(chunk_count(&primary), total, "the primary holds the file");

    b.serve();
    eventually("B's download to stop at the relay", LIVE, || {
        match gate.holding() && chunk_count(&b) > 0 {
            true => Ok(()),
            false => Err(format!(
                "{} chunks at B; B: {}",
                chunk_count(&b),
                b.log_tail()
            )),
        }
    });
    // Whatever reached B whole is written by now; then no more comes.
    let settled = Instant::now();
    let mut seen = chunk_count(&b);
    while settled.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = chunk_count(&b);
        assert!(now >= seen);
        seen = now;
    }
    b.kill();
    let before = chunk_count(&b);
    assert!(
        (1..total).contains(&before),
        "some but not all chunks at B when it was killed: {before}"
    );

    gate.open();
    let report = b.sync();
    let fetched = report["files"]["bytes_fetched"]
        .as_u64()
        .expect("bytes_fetched");
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    assert!(
        fetched < bytes.len() as u64,
        "B fetched the whole file again: {report}"
    );
    assert_eq!(fetched % CHUNK as u64, 0, "whole chunks: {report}");
    let fetched_after = (fetched / CHUNK as u64) as usize;
    eprintln!("{before} of {total} chunks at B when it was killed; {fetched_after} fetched after");
    // Up to four fetches were in flight: those may be lost, nothing more.
    assert!(
        before + fetched_after <= total + 4,
        "{before} chunks were at B and it fetched {fetched_after} more of {total}"
    );
    assert_eq!(chunk_count(&b), total, "B holds every chunk");
    let got = file_get(&b, ("docs", "big", "data"), &cluster.path("big.out"))
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &bytes, "the file at B");
    drop(gate);
}

#[test]
fn a_store_taken_from_a_site_takes_its_files_at_the_next_sweep() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);
    let bytes = random_bytes(5, CHUNK + 1000);
    let path = write_file(&cluster, "plan.pdf", &bytes);
    let put = file_put(
        &primary,
        ("docs", "plan", "pdf"),
        &path,
        &["--store", "S1", "--org", "Acme"],
    )
    .json();
    let hash = put["hash"].as_str().expect("hash");
    let hex = hash
        .strip_prefix("blake3:")
        .expect("a blake3 hash")
        .to_string();
    // Another file, organisation-wide: it stays.
    let other = random_bytes(6, 5000);
    let other_path = write_file(&cluster, "memo.txt", &other);
    file_put(
        &primary,
        ("docs", "memo", "txt"),
        &other_path,
        &["--org", "Acme"],
    )
    .ok();

    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 2, "{report}");
    let org = org_files(&b);
    assert!(manifests(&org).contains(&hex), "{:?}", manifests(&org));
    assert_eq!(chunk_files(&org).len(), 3, "two chunks and one");
    b.set("file-grace", "0m").ok();
    // Referred to still: a sweep keeps both.
    let swept = b.cli(&["--json", "file", "sweep"]).json();
    assert_eq!(swept["files"], 0, "{swept}");
    assert_eq!(manifests(&org).len(), 2);

    primary
        .cli(&["site", "assign", &b.site_id.to_string(), "S2"])
        .ok();
    b.sync();
    assert!(b.get("docs", "plan").is_none(), "S1's record left B");
    assert!(b.get("docs", "memo").is_some(), "the organisation's stayed");
    let swept = b.cli(&["--json", "file", "sweep"]).json();
    assert_eq!(swept["files"], 1, "{swept}");
    assert_eq!(swept["chunks"], 2, "{swept}");
    assert_eq!(swept["bytes"], bytes.len() as u64, "{swept}");
    assert!(
        !manifests(&org).contains(&hex),
        "the file's manifest is gone: {:?}",
        manifests(&org)
    );
    assert_eq!(manifests(&org).len(), 1, "the memo stays");
    assert_eq!(chunk_files(&org).len(), 1, "only the memo's chunk stays");
    let got = file_get(&b, ("docs", "memo", "txt"), &cluster.path("memo.out"))
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &other, "the memo at B");
    // The primary still has the file for sites that hold S1.
    assert!(manifests(&org_files(&primary)).contains(&hex));
}

#[test]
fn a_chunk_altered_on_disk_is_caught_and_fetched_again() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let b = cluster.satellite("site-b", &primary, &key, &["--store", "S1"]);
    let bytes = random_bytes(7, CHUNK + CHUNK / 2);
    let path = write_file(&cluster, "x.bin", &bytes);
    file_put(
        &primary,
        ("docs", "x", "blob"),
        &path,
        &["--store", "S1", "--org", "Acme"],
    )
    .ok();
    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    let out = cluster.path("x.out");
    let got = file_get(&b, ("docs", "x", "blob"), &out)
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &bytes, "the file at B");

    // The second chunk (the half one) has a byte flipped.
    let chunks = chunk_files(&org_files(&b));
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    let half = chunks
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == CHUNK as u64 / 2))
        .expect("the half chunk")
        .clone();
    let mut altered = std::fs::read(&half).expect("read the chunk");
    altered[1234] ^= 0x40;
    std::fs::write(&half, altered).expect("alter the chunk");

    let run =
        file_get(&b, ("docs", "x", "blob"), &out).expect_err("an altered chunk is not given out");
    let line = run.fails();
    assert!(line.contains("altered"), "{line}");

    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    assert_eq!(
        report["files"]["bytes_fetched"],
        CHUNK as u64 / 2,
        "only that chunk: {report}"
    );
    assert_eq!(report["files"]["pending"], 0, "{report}");
    let got = file_get(&b, ("docs", "x", "blob"), &out)
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, &bytes, "the file fetched again");
}

#[test]
fn a_file_over_the_size_limits_is_refused_and_the_record_stays_as_it_was() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let small = write_file(&cluster, "small.txt", &random_bytes(8, 1000));
    let first = file_put(&a, ("docs", "d1", "att"), &small, &["--store", "S1"]).json();
    let before = field_file(&a, "docs", "d1", "att").expect("the record");
    assert_eq!(before, first["record"]["fields"]["att"]);

    a.set("file-max-size", "1 MiB").ok();
    let big = write_file(&cluster, "big.txt", &random_bytes(9, 2 * CHUNK));
    for id in ["d1", "d2"] {
        let run = file_put(&a, ("docs", id, "att"), &big, &["--store", "S1"]);
        assert_eq!(run.code, Some(2), "{}", run.describe());
        let line = run.fails();
        assert!(
            line.contains("larger than 1048576 bytes, which file-max-size allows"),
            "the message names the limit and its setting: {line}"
        );
    }
    assert_eq!(field_file(&a, "docs", "d1", "att"), Some(before.clone()));
    assert!(a.get("docs", "d2").is_none(), "no record made");

    // The organisation's limit counts the files already here (1000 bytes).
    a.set("file-max-size", "100 MiB").ok();
    a.set("org-files-max-size", "1 MiB").ok();
    let just_over = write_file(&cluster, "over.txt", &random_bytes(10, CHUNK - 999));
    let run = file_put(&a, ("docs", "d1", "att"), &just_over, &["--store", "S1"]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    let line = run.fails();
    assert!(
        line.contains("larger than 1047576 bytes, which what is left of the organisation's org-files-max-size allows"),
        "{line}"
    );
    assert_eq!(field_file(&a, "docs", "d1", "att"), Some(before));
    let fits = write_file(&cluster, "fits.txt", &random_bytes(11, CHUNK - 1000));
    file_put(&a, ("docs", "d3", "att"), &fits, &["--store", "S1"]).ok();

    let report = a.sync();
    assert_eq!(report["pushed"], 2, "{report}");
    assert_eq!(report["files"]["sent"], 2, "{report}");
    assert!(primary.get("docs", "d2").is_none());
}

#[test]
fn a_definitions_file_rules_hold_for_files_put() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let definition = cluster.path("docs.toml");
    std::fs::write(
        &definition,
        "[fields.scan]\ntype = \"file\"\nmax_size = \"1 MiB\"\nmedia_types = [\"application/pdf\"]\n",
    )
    .expect("write the definition");
    let file = definition.to_string_lossy().into_owned();
    primary
        .cli(&[
            "--json",
            "collection",
            "define",
            "docs",
            "--org",
            "Acme",
            "--file",
            &file,
        ])
        .json();
    a.sync();

    let png = write_file(&cluster, "x.png", &random_bytes(12, 2000));
    let run = file_put(
        &a,
        ("docs", "d1", "scan"),
        &png,
        &["--store", "S1", "--type", "image/png"],
    );
    assert_eq!(run.code, Some(2), "{}", run.describe());
    let line = run.fails();
    assert!(
        line.contains("\"scan\"") && line.contains("media_types") && line.contains("image/png"),
        "the field, rule and value are named: {line}"
    );
    // Guessed from the name, the type is refused alike.
    let line = file_put(&a, ("docs", "d1", "scan"), &png, &["--store", "S1"]).fails();
    assert!(line.contains("media_types"), "{line}");
    let big = write_file(&cluster, "big.pdf", &random_bytes(13, CHUNK + 1));
    let run = file_put(&a, ("docs", "d1", "scan"), &big, &["--store", "S1"]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    let line = run.fails();
    assert!(
        line.contains("max_size = 1048576") && line.contains("1048577"),
        "{line}"
    );
    assert!(a.get("docs", "d1").is_none(), "no record made");
    assert_eq!(a.status()["to_push"], 0);

    let pdf_bytes = random_bytes(14, 2000);
    let pdf = write_file(&cluster, "ok.pdf", &pdf_bytes);
    file_put(&a, ("docs", "d1", "scan"), &pdf, &["--store", "S1"]).ok();
    let report = a.sync();
    assert_eq!(report["files"]["sent"], 1, "{report}");
    assert_eq!(
        field_file(&primary, "docs", "d1", "scan").map(|m| m["media_type"].clone()),
        Some("application/pdf".into())
    );
}

/// The metadata of a file nobody has: a record naming it waits for it for ever.
fn nowhere(size: u64) -> String {
    serde_json::json!({
        "name": "lost.txt",
        "size": size,
        "media_type": "text/plain",
        "hash": format!("blake3:{}", "ab".repeat(32)),
    })
    .to_string()
}

#[test]
fn a_pending_file_is_answered_503_saying_it_is_not_here_yet() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let fields = format!("{{\"note\": {}}}", nowhere(3000));
    a.put("docs", "d1", &fields, Some("S1"));
    let run = file_get(&a, ("docs", "d1", "note"), &cluster.path("out"))
        .expect_err("the file is nowhere");
    assert_eq!(run.code, Some(12), "{}", run.describe());
    assert!(run.fails().contains("not here yet"));
    a.serve();
    let r = a.http("GET", "/api/v1/docs/d1/files/note", None);
    assert_eq!(r.status, 503, "{r:?}");
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("not here yet"),
        "the answer says the file is on its way, as `file get` does: {r:?}"
    );
    a.stop();
    assert!(
        !std::fs::read_to_string(&a.log)
            .unwrap_or_default()
            .contains("request failed"),
        "a file on its way is no failure of the server: {}",
        a.log_tail()
    );
}

#[test]
fn an_unsatisfiable_range_is_answered_with_the_files_size() {
    let cluster = Cluster::new();
    let (primary, key) = acme(&cluster);
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let bytes = random_bytes(15, 5000);
    let path = write_file(&cluster, "small.bin", &bytes);
    file_put(&a, ("docs", "d1", "blob"), &path, &["--store", "S1"]).ok();
    a.serve();
    let path = "/api/v1/docs/d1/files/blob";
    let part = get_raw(a.addr(), path, &[("Range", "bytes=4990-")]);
    assert_eq!(part.status, 206, "{}", part.head);
    same_bytes(&part.body, &bytes[4990..], "the last 10 bytes");
    for range in ["bytes=5000-", "bytes=6000-7000"] {
        let refused = get_raw(a.addr(), path, &[("Range", range)]);
        assert_eq!(refused.status, 416, "{range}: {}", refused.head);
        assert_eq!(
            refused.header("content-range"),
            Some("bytes */5000"),
            "{range}: a 416 says the file's size (RFC 9110, 15.5.17): {}",
            refused.head
        );
    }
    a.stop();
}

/// B's round fetches `docs/big` whole, all its bytes and no more, and reads it back.
#[track_caller]
fn fetched_whole(cluster: &Cluster, b: &Node, bytes: &[u8]) {
    let report = b.sync();
    assert_eq!(report["files"]["fetched"], 1, "{report}");
    assert_eq!(report["files"]["pending"], 0, "{report}");
    assert_eq!(
        report["files"]["bytes_fetched"],
        bytes.len() as u64,
        "{report}"
    );
    let got = file_get(b, ("docs", "big", "data"), &cluster.path("big.out"))
        .unwrap_or_else(|run| panic!("{}", run.describe()));
    same_bytes(&got, bytes, "the file at B");
}
