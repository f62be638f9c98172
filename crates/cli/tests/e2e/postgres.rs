//! A primary whose state is in PostgreSQL (this machine's server, or the one named by
//! `SITESYNC_TEST_POSTGRES`), served by two processes side by side.

use crate::harness::{Cluster, Node, WAIT, eventually};
use postgres::NoTls;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The server the tests make their databases on.
fn admin_url() -> String {
    std::env::var("SITESYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of one test's own, dropped when it ends.
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    pub fn new() -> Database {
        let name = crate::harness::unique("sitesync_e2e").replace('-', "_");
        let mut admin = postgres::Client::connect(&admin_url(), NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {} cannot be reached: {e}", admin_url()));
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("a database is made");
        let base = admin_url();
        let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
        let url = format!("{server}/{name}");
        Database { name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&admin_url(), NoTls) {
            let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = admin.batch_execute(&drop);
        }
    }
}

/// A throw-away PostgreSQL server of one test's own (`initdb` in a temporary folder, on
/// a free port), for what must not touch the shared one: stopping it like a crash and
/// starting it again. Its programs are found in `SITESYNC_TEST_PG_BIN`, Debian's
/// `/usr/lib/postgresql/*/bin`, or the `PATH`; as root they run as the user `postgres`.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Server {
    pub fn start() -> Server {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("sitesync-pg-")
            .tempdir()
            .expect("a temporary folder");
        let port = crate::harness::dead_port();
        let server = Server { dir, bin, port };
        if as_root() {
            run(Command::new("chown")
                .arg("postgres:")
                .arg(server.dir.path()));
        }
        let data = server.data();
        server.pg(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D", &data],
        );
        server.up();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Makes database `name` on this server; returns its URL.
    pub fn database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url(), NoTls).expect("connect");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("a database is made");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server the way a crash does (no checkpoint, every connection cut),
    /// waits `down`, and starts it again; it recovers from its write-ahead log.
    pub fn crash_and_restart(&self, down: Duration) {
        self.crash();
        std::thread::sleep(down);
        self.up();
    }

    /// Stops the server the way a crash does.
    pub fn crash(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when this is root).
    fn pg(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        run(command.args(args));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Where `initdb` and `pg_ctl` are.
fn pg_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SITESYNC_TEST_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    debian.sort();
    // An empty path runs the programs from the `PATH`.
    debian.pop().unwrap_or_default()
}

#[track_caller]
fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (is PostgreSQL installed?)"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until a satellite says it is in sync (its first pull done, on the long poll).
fn in_sync(site: &Node) {
    eventually(&format!("{} in sync", site.name), WAIT, || {
        let status = site.status();
        (status["verdict"] == "in sync")
            .then_some(())
            .ok_or(status.to_string())
    });
}

/// Polls `node` until `notes/id` holds `v` = `value`; returns how long after `since`.
fn arrival(node: &Node, id: &str, value: &Value, since: Instant) -> Duration {
    eventually(
        &format!("notes/{id} at {}", node.name),
        WAIT,
        || match node.api_get("notes", id) {
            Some(r) if &r["fields"]["v"] == value => Ok(since.elapsed()),
            other => Err(format!("{other:?}")),
        },
    )
}

#[test]
fn two_processes_serve_one_primary_in_postgres() {
    let db = Database::new();
    let cluster = Cluster::new();
    let first = cluster.primary_with(&["--database", &db.url], &[]);
    assert!(
        !first.data.join("sitesync.db").exists(),
        "the state is in PostgreSQL, not in the data folder"
    );
    let key = cluster.org(&first, "Acme");
    let mut second = first.another_process("primary-2");
    second.serve();
    assert_ne!(first.addr(), second.addr());

    // One satellite follows each process; the second is given an address where nothing
    // answers first, and enrols (and syncs) through the next.
    let mut a = cluster.satellite("site-a", &first, &key, &["--all-stores"]);
    let dead = format!("http://127.0.0.1:{}", crate::harness::dead_port());
    let extra = ["--primary", &second.url(), "--all-stores"];
    let mut b = cluster.satellite_via("site-b", &dead, &key, &extra);
    a.serve();
    b.serve();
    in_sync(&a);
    in_sync(&b);

    // A change pushed through one process reaches the satellite long-polling the
    // other as live changes do within one process: well inside a second.
    for round in 0..3 {
        let value = Value::from(format!("round-{round}"));
        let start = Instant::now();
        a.put("notes", "n1", &format!(r#"{{"v":{value}}}"#), None);
        let took = arrival(&b, "n1", &value, start);
        assert!(took < Duration::from_secs(1), "a→b took {took:?}");
        let value = Value::from(round);
        let start = Instant::now();
        b.put("notes", "n2", &format!(r#"{{"v":{value}}}"#), None);
        let took = arrival(&a, "n2", &value, start);
        assert!(took < Duration::from_secs(1), "b→a took {took:?}");
    }

    // Every command works against it: the primary reads what both processes took.
    let held = first
        .cli(&["--json", "record", "list", "notes", "--org", "Acme"])
        .json();
    assert_eq!(held.as_array().map(Vec::len), Some(2), "{held}");
    let digest_a = a.cli(&["--json", "digest"]).json();
    let digest_p = first.cli(&["--json", "digest", "--org", "Acme"]).json();
    assert_eq!(
        digest_a["stores"], digest_p["stores"],
        "{digest_a} / {digest_p}"
    );

    // A revoked site is refused by the other process within a second, without it
    // being told.
    b.stop();
    b.set("primary-url", &second.url()).ok();
    first.cli(&["site", "revoke", "site-b"]).ok();
    std::thread::sleep(Duration::from_millis(1_100));
    let refused = b.cli(&["sync"]).fails();
    assert!(
        refused.contains("revoked") || refused.contains("credentials"),
        "{refused}"
    );
    a.stop();
    second.stop();
}

/// `migrate --to` moves a SQLite primary into PostgreSQL: the satellite goes on with it
/// without enrolling again, pulling again or giving back what it holds, and writes flow
/// both ways after.
#[test]
fn a_sqlite_primary_moves_into_postgres_and_its_satellites_go_on() {
    let db = Database::new();
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    primary
        .cli(&["store", "create", "--org", "Acme", "North"])
        .ok();
    let a = cluster.satellite("site-a", &primary, &key, &["--all-stores"]);
    for i in 0..50 {
        a.put(
            "stock",
            &format!("s{i}"),
            &format!(r#"{{"qty":{i}}}"#),
            Some("North"),
        );
    }
    primary.put("notes", "from-primary", r#"{"v":1}"#, None);
    a.sync();

    // Refused while serving; then moved.
    let refused = primary.cli(&["migrate", "--to", &db.url]).fails();
    assert!(refused.contains("stop it first"), "{refused}");
    let old = primary.addr();
    primary.stop();
    let moved = primary.cli(&["--json", "migrate", "--to", &db.url]).json();
    assert_eq!(moved["copied"]["records"], 51, "{moved}");
    assert_eq!(moved["copied"]["sites"], 1, "{moved}");
    // A second move into the same database is refused, naming --replace.
    let again = primary.cli(&["migrate", "--to", &db.url]).fails();
    assert!(again.contains("already"), "{again}");

    primary.set("listen", &old.to_string()).ok();
    primary.serve();
    let digest_p = primary.cli(&["--json", "digest", "--org", "Acme"]).json();
    let digest_a = a.cli(&["--json", "digest"]).json();
    assert_eq!(
        digest_a["stores"], digest_p["stores"],
        "{digest_a} / {digest_p}"
    );

    // The satellite goes on where it was: nothing pulled again, nothing given back.
    let report = a.sync();
    assert_eq!(report["pulled"], 0, "{report}");
    assert_eq!(report["pushed"], 0, "{report}");
    a.put("stock", "after", r#"{"qty":7}"#, Some("North"));
    primary.put("notes", "after-move", r#"{"v":2}"#, None);
    let report = a.sync();
    assert_eq!(report["pushed"], 1, "{report}");
    // The primary's new record, and the satellite's own change numbered by the primary.
    assert_eq!(report["pulled"], 2, "{report}");
    assert!(primary.get("stock", "after").is_some());
    assert!(a.get("notes", "after-move").is_some());
    primary.stop();
}

/// While PostgreSQL is down a satellite's requests fail as "unavailable, retry", not as
/// wrong credentials: however often it tries, its address is not locked out, and it
/// syncs as soon as the database is back.
#[test]
fn a_database_outage_is_not_taken_for_wrong_credentials() {
    let server = Server::start();
    let database = server.database("sitesync");
    let cluster = Cluster::new();
    let primary = cluster.primary_with(&["--database", &database], &[]);
    let key = cluster.org(&primary, "Acme");
    let site = cluster.satellite("site-a", &primary, &key, &["--all-stores"]);
    site.sync();

    server.crash();
    // More tries than the failures an address may have before it is refused.
    for _ in 0..25 {
        let failed = site.cli(&["sync"]).fails();
        assert!(failed.contains("cannot reach its database"), "{failed}");
        assert!(!failed.contains("credentials"), "{failed}");
    }
    server.up();
    site.put("notes", "back", r#"{"v":1}"#, None);
    let report = site.sync();
    assert_eq!(report["pushed"], 1, "{report}");
}
