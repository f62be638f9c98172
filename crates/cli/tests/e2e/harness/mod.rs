//! Starting real `sitesync` processes in temporary folders, talking to them, and
//! waiting for them to agree.
//!
//! Every test makes its own [`Cluster`]: one temporary root holding each site's data
//! folder and the stderr log of each `serve`. Sites listen on `127.0.0.1:0`; the port a
//! `serve` got is read from its `serve.json`. A [`Node`] kills its `serve` when dropped,
//! and [`Guard`] does the same for any other child, so a failing test leaves nothing
//! running.
//!
//! This file: the cluster and its nodes; `command`: running commands and waiting;
//! `http`: raw HTTP requests; `bulk`: data written straight into a database.

#![allow(dead_code)]

mod bulk;
mod command;
mod http;

pub use bulk::{bulk_fields, bulk_id, fill, fill_with, head, outbox_len, pull_cursor};
pub use command::{Guard, Out, enrol, eventually, sitesync, sitesync_env, terminate};
pub use http::{Response, dead_port, http, http_with, try_http};

use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
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

    /// Runs a command on this site with `input` on its standard input.
    pub fn cli_input(&self, args: &[&str], input: &str) -> Out {
        command::sitesync_input(&self.data, &self.env, args, Some(input))
    }

    /// Starts `serve` and waits until it answers; returns its address.
    pub fn serve(&mut self) -> SocketAddr {
        assert!(self.serve.is_none(), "{} already serves", self.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut env = vec![("SITESYNC_LOG".to_string(), "info".to_string())];
        env.extend(self.env.iter().cloned());
        let started = Guard::serve_with(
            Path::new(BIN),
            &self.data,
            &self.serve_args,
            &env,
            log.into(),
        );
        let guard = started.unwrap_or_else(|e| {
            panic!(
                "`serve` of {} did not start: {e}; its log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        let addr: SocketAddr = guard.addr.parse().expect("a socket address");
        self.serve = Some(guard);
        self.addr = Some(addr);
        addr
    }

    /// Another `serve` process of this site, from the same data folder, listening on
    /// another loopback port (a primary whose state is in PostgreSQL); not started.
    pub fn another_process(&self, name: &str) -> Node {
        let log = self.log.with_file_name(format!("{name}.serve.log"));
        let mut node = Node::new(name, self.data.clone(), log, self.auth_code.clone());
        node.api_token = self.api_token.clone();
        node.site_id = self.site_id;
        node.org = self.org.clone();
        node.https = self.https;
        node.env = self.env.clone();
        node.serve_args = vec!["--listen".into(), "127.0.0.1:0".into()];
        node
    }

    /// Whether `serve` runs.
    pub fn serving(&self) -> bool {
        self.serve.is_some()
    }

    /// The pid of `serve`.
    pub fn pid(&self) -> u32 {
        self.serve.as_ref().expect("serving").child.id()
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
            terminate(guard.child.id());
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

    /// `record put` of a record of `store`, or organisation-wide with `None`: said with
    /// `--org-wide` at a satellite, which otherwise refuses or picks its one store, and
    /// left unsaid at the primary, where that is what no store means. Returns the record.
    pub fn put(&self, collection: &str, id: &str, fields: &str, store: Option<&str>) -> Value {
        let mut args = vec!["--json", "record", "put", collection, id, fields];
        match store {
            Some(store) => args.extend(["--store", store]),
            None if self.site_id != 1 => args.push("--org-wide"),
            None => {}
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
                out.stderr.contains("no record")
                    || out.stderr.contains("deleted")
                    || out.stderr.contains("is not here"),
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

    /// `sync --json`, checking that it exits 0, or 14 exactly when rejected changes are
    /// not acknowledged.
    #[track_caller]
    pub fn sync(&self) -> Value {
        let out = self.cli(&["--json", "sync"]);
        let report: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("sync printed no JSON ({e}): {}", out.describe()));
        let code = match report["unacknowledged"].as_u64() {
            Some(0) => 0,
            Some(_) => 14,
            None => panic!("sync says nothing of rejections: {report}"),
        };
        assert_eq!(out.code, Some(code), "{}: {report}", out.describe());
        report
    }

    /// `status --json`.
    /// Whatever the site's standing, and checking that `status` exits with the code
    /// `status --help` documents for it.
    #[track_caller]
    pub fn status(&self) -> Value {
        let out = self.cli(&["--json", "status"]);
        let report: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {}", out.describe()));
        let code = match report["standing"].as_str() {
            Some("in_sync") => 0,
            Some("behind") => 13,
            Some("unreachable") => 11,
            Some("refused") => 6,
            Some("disk") => 8,
            Some("rejected") => 14,
            other => panic!("status says no standing ({other:?}): {report}"),
        };
        assert_eq!(out.code, Some(code), "{}: {report}", out.describe());
        report
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

/// Starts `sitesync ARGS` on a site in the background, killed when dropped.
pub fn spawn(node: &Node, args: &[&str]) -> Guard {
    let log = File::options()
        .create(true)
        .append(true)
        .open(&node.log)
        .expect("log file");
    Guard::new(
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
