//! Starting real `sitesync` processes in temporary folders, talking to them, and
//! waiting for them to agree.
//!
//! Every test makes its own [`Cluster`]: one temporary root holding each site's data
//! folder and the stderr log of each `serve`. Sites listen on `127.0.0.1:0`; the port a
//! `serve` got is read from its `serve.json`. A [`Node`] kills its `serve` when dropped,
//! and [`Guard`] does the same for any other child, so a failing test leaves nothing
//! running.

#![allow(dead_code)]

use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sitesync");
/// How long a test waits for something that should happen (propagation, a restart).
pub const WAIT: Duration = Duration::from_secs(15);

/// A value unique within this test process, for codes and names.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id())
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(self.success(), "command failed: {}", self.describe());
        self
    }

    /// Asserts the command succeeded and parses its stdout as JSON.
    #[track_caller]
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", out.describe()))
    }

    /// Asserts the command failed with exactly one `error: …` line on stderr, and
    /// returns that line.
    #[track_caller]
    pub fn fails(self) -> String {
        assert!(
            !self.success() && self.code.is_some(),
            "command should have failed with an exit code: {}",
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr: {}",
            self.describe()
        );
        assert!(
            lines[0].starts_with("error: "),
            "the line should start with `error: `: {}",
            self.describe()
        );
        lines[0].to_string()
    }
}

/// Runs `sitesync --data DATA ARGS…` to completion.
pub fn sitesync(data: &Path, args: &[&str]) -> Out {
    sitesync_env(data, &[], args)
}

/// Runs `sitesync --data DATA ARGS…` to completion with extra environment variables.
pub fn sitesync_env(data: &Path, env: &[(String, String)], args: &[&str]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data").arg(data).args(args);
    cmd.env_remove("SITESYNC_DATA").env_remove("SITESYNC_LOG");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    Out {
        cmd: format!("sitesync --data {} {}", data.display(), args.join(" ")),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `init satellite` of a primary at `url` with a sync key, into `data`.
pub fn enrol(data: &Path, url: &str, key: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "init",
        "satellite",
        "--primary",
        url,
        "--sync-key",
        key,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    sitesync(data, &args)
}

/// Kills (SIGKILL) and reaps a child when dropped.
pub struct Guard(pub Child);

impl Guard {
    /// SIGKILL now; returns whether the child was still running.
    pub fn kill(&mut self) -> bool {
        let running = matches!(self.0.try_wait(), Ok(None));
        let _ = self.0.kill();
        let _ = self.0.wait();
        running
    }

    /// Waits for the child to finish, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to a process.
pub fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// Polls `f` until it gives a value or `timeout` passes; panics with `what` and the
/// last observation otherwise.
#[track_caller]
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// One test's sites, logs and secrets, under one temporary root.
pub struct Cluster {
    pub root: TempDir,
    /// Every secret printed to a person during the test: none may appear in a file.
    pub secrets: RefCell<Vec<(String, String)>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster {
            root: tempfile::Builder::new()
                .prefix("sitesync-e2e-")
                .tempdir()
                .expect("temp dir"),
            secrets: RefCell::new(Vec::new()),
        }
    }

    /// A path under the root (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Notes a secret that must never be found in clear in a file.
    pub fn secret(&self, what: &str, value: &str) {
        assert!(!value.is_empty(), "empty secret {what}");
        self.secrets
            .borrow_mut()
            .push((what.to_string(), value.to_string()));
    }

    /// Makes a primary and starts its `serve`.
    pub fn primary(&self) -> Node {
        self.primary_with(&[], &[])
    }

    /// Makes a primary with more `init primary` options (`--self-signed` makes it serve
    /// TLS) and starts its `serve` with `serve` options.
    pub fn primary_with(&self, init: &[&str], serve: &[&str]) -> Node {
        let data = self.path("primary");
        let auth_code = unique("primary-code");
        let mut args = vec![
            "--json",
            "init",
            "primary",
            "--listen",
            "127.0.0.1:0",
            "--auth-code",
            &auth_code,
        ];
        args.extend_from_slice(init);
        let made = sitesync(&data, &args).json();
        let api_token = made["api_token"].as_str().expect("api_token").to_string();
        self.secret("primary auth code", &auth_code);
        self.secret("primary api token", &api_token);
        let mut node = Node::new("primary", data, self.path("primary.serve.log"), auth_code);
        node.api_token = api_token;
        node.site_id = 1;
        node.https = init.contains(&"--self-signed") || serve.contains(&"--tls-cert");
        node.tls_fingerprint = made["tls_fingerprint"].as_str().map(str::to_string);
        node.serve_args = serve.iter().map(|a| a.to_string()).collect();
        node.serve();
        node
    }

    /// Enrols a satellite with `primary` (which must be serving), not yet serving.
    /// `extra` holds enrolment options like `--store S1` or `--all-stores`.
    pub fn satellite(&self, name: &str, primary: &Node, sync_key: &str, extra: &[&str]) -> Node {
        self.satellite_via(name, &primary.url(), sync_key, extra)
    }

    /// Enrols a satellite with the primary at `url` (like a proxy in front of it).
    pub fn satellite_via(&self, name: &str, url: &str, sync_key: &str, extra: &[&str]) -> Node {
        let data = self.path(name);
        let mut args = vec![
            "--json",
            "init",
            "satellite",
            "--primary",
            url,
            "--sync-key",
            sync_key,
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let made = sitesync(&data, &args).json();
        let auth_code = made["auth_code"]
            .as_str()
            .expect("a generated auth code")
            .to_string();
        let api_token = made["api_token"].as_str().expect("api_token").to_string();
        self.secret(&format!("{name} auth code"), &auth_code);
        self.secret(&format!("{name} api token"), &api_token);
        let mut node = Node::new(
            name,
            data,
            self.path(&format!("{name}.serve.log")),
            auth_code,
        );
        node.api_token = api_token;
        node.site_id = made["site_id"].as_u64().expect("site_id") as u32;
        node.org = made["organisation"]["name"].as_str().map(str::to_string);
        node
    }

    /// Creates an organisation on the primary; returns its sync key.
    pub fn org(&self, primary: &Node, name: &str) -> String {
        let org = primary.cli(&["--json", "org", "create", name]).json();
        let key = org["sync_key"].as_str().expect("sync_key").to_string();
        self.secret(&format!("sync key of {name}"), &key);
        key
    }

    /// Every file under the root (data folders and logs).
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root.path(), &mut out);
        out
    }
}

/// One site: its data folder and, while it serves, its `serve` process.
pub struct Node {
    pub name: String,
    pub data: PathBuf,
    pub log: PathBuf,
    pub auth_code: String,
    pub api_token: String,
    pub site_id: u32,
    /// The organisation record commands name with `--org` (needed on the primary).
    pub org: Option<String>,
    /// Whether its sync API speaks TLS (its URL is https).
    pub https: bool,
    /// Options for `serve`.
    pub serve_args: Vec<String>,
    /// A primary's self-signed certificate's fingerprint, as `init` printed it.
    pub tls_fingerprint: Option<String>,
    /// Environment variables every process of this site gets (like a clock offset).
    pub env: Vec<(String, String)>,
    serve: Option<Guard>,
    addr: Option<SocketAddr>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Node {
    fn new(name: &str, data: PathBuf, log: PathBuf, auth_code: String) -> Node {
        Node {
            name: name.to_string(),
            data,
            log,
            auth_code,
            api_token: String::new(),
            site_id: 0,
            org: None,
            https: false,
            serve_args: Vec::new(),
            tls_fingerprint: None,
            env: Vec::new(),
            serve: None,
            addr: None,
        }
    }

    /// Runs a command on this site.
    pub fn cli(&self, args: &[&str]) -> Out {
        sitesync_env(&self.data, &self.env, args)
    }

    /// Starts `serve` and waits until it answers; returns its address.
    pub fn serve(&mut self) -> SocketAddr {
        assert!(self.serve.is_none(), "{} already serves", self.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .arg("--data")
            .arg(&self.data)
            .arg("serve")
            .args(&self.serve_args)
            .env_remove("SITESYNC_DATA")
            .env("SITESYNC_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let pid = child.id();
        let mut guard = Guard(child);
        let serve_json = self.data.join("serve.json");
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            if let Ok(Some(status)) = guard.0.try_wait() {
                panic!(
                    "`serve` of {} exited at start with {status}; its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let running: Option<Value> = std::fs::read(&serve_json)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(running) = running
                && running["pid"].as_u64() == Some(u64::from(pid))
            {
                let addr: SocketAddr = running["addr"]
                    .as_str()
                    .expect("addr in serve.json")
                    .parse()
                    .expect("a socket address");
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break addr;
                }
            }
            assert!(
                Instant::now() < deadline,
                "`serve` of {} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.serve = Some(guard);
        self.addr = Some(addr);
        addr
    }

    /// Whether `serve` runs.
    pub fn serving(&self) -> bool {
        self.serve.is_some()
    }

    /// The pid of `serve`.
    pub fn pid(&self) -> u32 {
        self.serve.as_ref().expect("serving").0.id()
    }

    /// SIGKILLs `serve`, if it runs.
    pub fn kill(&mut self) {
        if let Some(mut guard) = self.serve.take() {
            guard.kill();
        }
    }

    /// Stops `serve` with SIGTERM and waits for it to exit cleanly.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.serve.take() {
            terminate(guard.0.id());
            let status = guard.wait(WAIT).expect("serve stops on SIGTERM");
            assert!(status.success(), "serve of {} exited {status}", self.name);
        }
    }

    /// The address `serve` listens (or last listened) on.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the node has served")
    }

    /// `http://ADDR` of this node (`https://` when it serves TLS).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    fn with_org<'a>(&'a self, mut args: Vec<&'a str>) -> Vec<&'a str> {
        if let Some(org) = &self.org {
            args.push("--org");
            args.push(org);
        }
        args
    }

    /// `record put` (with `--store` when given); returns the record.
    pub fn put(&self, collection: &str, id: &str, fields: &str, store: Option<&str>) -> Value {
        let mut args = vec!["--json", "record", "put", collection, id, fields];
        if let Some(store) = store {
            args.push("--store");
            args.push(store);
        }
        self.cli(&self.with_org(args)).json()
    }

    /// `record get`: the record, or `None` when absent or deleted.
    pub fn get(&self, collection: &str, id: &str) -> Option<Value> {
        let out = self.cli(&self.with_org(vec!["--json", "record", "get", collection, id]));
        if out.success() {
            Some(out.json())
        } else {
            assert!(
                out.stderr.contains("no record") || out.stderr.contains("deleted"),
                "record get failed otherwise: {out:?}"
            );
            None
        }
    }

    /// `record delete`.
    pub fn delete(&self, collection: &str, id: &str) -> Value {
        self.cli(&self.with_org(vec!["--json", "record", "delete", collection, id]))
            .json()
    }

    /// Every live record of a collection (paging through `record list`).
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let mut args = vec!["--json", "record", "list", collection, "--limit", "10000"];
            let after = all
                .last()
                .map(|r| r["id"].as_str().expect("id").to_string());
            if let Some(after) = &after {
                args.push("--after");
                args.push(after);
            }
            let page = self.cli(&self.with_org(args)).json();
            let page = page.as_array().expect("a list").clone();
            let done = page.len() < 10_000;
            all.extend(page);
            if done {
                return all;
            }
        }
    }

    /// The ids `list` returns, asserting there are no duplicates.
    #[track_caller]
    pub fn ids(&self, collection: &str) -> BTreeSet<String> {
        let list = self.list(collection);
        let ids: BTreeSet<String> = list
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(
            ids.len(),
            list.len(),
            "{}: `record list {collection}` returned duplicate ids",
            self.name
        );
        ids
    }

    /// `sync`, asserting it succeeds.
    #[track_caller]
    pub fn sync(&self) -> Value {
        self.cli(&["--json", "sync"]).json()
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        self.cli(&["--json", "status"]).json()
    }

    /// `settings set KEY VALUE` with this site's auth code.
    pub fn set(&self, key: &str, value: &str) -> Out {
        let code = self.auth_code.clone();
        self.cli(&["settings", "set", key, value, "--auth-code", &code])
    }

    /// A request to this node's local API.
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        http(self.addr(), method, path, body)
    }

    /// GET a record through the local API (`None` on 404).
    pub fn api_get(&self, collection: &str, id: &str) -> Option<Value> {
        let r = self.http("GET", &format!("/api/v1/{collection}/{id}"), None);
        match r.status {
            200 => Some(r.json()),
            404 => None,
            _ => panic!("GET {collection}/{id} at {}: {r:?}", self.name),
        }
    }

    /// The last lines of this node's serve log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {self:?}"))
    }
}

/// One HTTP/1.1 request with `Connection: close`. The body is written from another
/// thread so a server that answers before reading it all (a body too large) is heard.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or(b"").to_vec();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived (the server closed with body unread).
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("{method} {path}: reading the answer failed: {e}"),
        }
    }
    let _ = sender.join();
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16)
                    .ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The JSON of a record as seen at each of `nodes`, asserting all equal.
#[track_caller]
pub fn same_everywhere(collection: &str, id: &str, nodes: &[&Node]) -> Value {
    let first = nodes[0].get(collection, id);
    for node in &nodes[1..] {
        assert_eq!(
            node.get(collection, id),
            first,
            "{collection}/{id} differs between {} and {}",
            nodes[0].name,
            node.name
        );
    }
    first.unwrap_or(Value::Null)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The fields of bulk record number `n`.
pub fn bulk_fields(n: u64) -> serde_json::Map<String, Value> {
    let value = serde_json::json!({"n": n, "name": format!("item {n}"), "pad": "x".repeat(64)});
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// The id of bulk record number `n`.
pub fn bulk_id(n: u64) -> String {
    format!("r{n:06}")
}

/// Writes records `range` into a site's database as that site would (the same store
/// code `record put` runs, in large transactions, because thousands of single writes
/// would make the test slow). `outbox`: queue them for the primary (a satellite).
pub fn fill(
    node: &Node,
    org: u64,
    collection: &str,
    store: Option<u64>,
    range: std::ops::Range<u64>,
    outbox: bool,
) {
    fill_with(node, org, collection, store, range, outbox, bulk_fields)
}

/// [`fill`] with the fields of record number `n` given by `fields(n)`.
pub fn fill_with(
    node: &Node,
    org: u64,
    collection: &str,
    store: Option<u64>,
    range: std::ops::Range<u64>,
    outbox: bool,
    fields: impl Fn(u64) -> serde_json::Map<String, Value>,
) {
    use sitesync_store::{LocalWrite, SiteStorage};
    let db = sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .expect("open the database");
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(5_000) {
        let writes = chunk
            .iter()
            .map(|&n| {
                let fields = fields(n);
                (
                    collection.to_string(),
                    bulk_id(n),
                    LocalWrite::Put { store, fields },
                )
            })
            .collect();
        db.write_local_batch(org, writes, node.site_id, now_ms(), outbox)
            .expect("bulk write");
    }
}

/// The sequence of the latest change applied at a site (while its processes run).
pub fn head(node: &Node) -> u64 {
    use sitesync_store::SiteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.head())
        .unwrap_or(0)
}

/// A satellite's pull cursor (while its processes run).
pub fn pull_cursor(node: &Node) -> u64 {
    use sitesync_store::SatelliteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.sync_state())
        .map_or(0, |state| state.pull_cursor)
}

/// How many local changes wait in a site's outbox (while its processes run).
pub fn outbox_len(node: &Node) -> u64 {
    use sitesync_store::SatelliteStorage;
    sitesync_sqlite::SqliteStore::open(&node.data.join("sitesync.db"))
        .and_then(|db| db.outbox_len())
        .unwrap_or(0)
}

/// Starts `sitesync ARGS` on a site in the background, killed when dropped.
pub fn spawn(node: &Node, args: &[&str]) -> Guard {
    let log = File::options()
        .create(true)
        .append(true)
        .open(&node.log)
        .expect("log file");
    Guard(
        Command::new(BIN)
            .arg("--data")
            .arg(&node.data)
            .args(args)
            .env_remove("SITESYNC_DATA")
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn"),
    )
}
