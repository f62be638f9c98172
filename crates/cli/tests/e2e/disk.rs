//! A full disk and a read-only data folder, at a satellite and at the primary.
//!
//! Each site's data folder is a small tmpfs of its own. While records are written and
//! synced, the disk is filled up (a ballast file) or remounted read-only; then:
//! writers get an error naming the folder and what to do, `status` and the log say the
//! same, reads are still served, nothing is corrupted or lost, and when the disk is
//! repaired (remounted bigger, or read-write) sync resumes by itself and the replicas
//! end identical (`sitesync digest`), holding every acknowledged write.
//!
//! Mounting needs root (CI runs as root); elsewhere the tests say why and skip.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of each site's disk: room for the test's records, small enough to fill fast.
const DISK: &str = "32m";
/// The size a full disk is remounted at to free space.
const BIGGER: &str = "64m";

/// A tmpfs mounted on a data folder, unmounted when dropped.
struct Disk {
    dir: PathBuf,
}

/// What goes wrong with a disk.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Full,
    ReadOnly,
}

impl Fault {
    /// The HTTP status, error code and words a writer gets.
    fn answer(self) -> (u16, &'static str, &'static str) {
        match self {
            Fault::Full => (507, "disk_full", "is full: free space on it, then retry"),
            Fault::ReadOnly => (503, "read_only", "is read-only: make it writable again"),
        }
    }
}

fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Disk {
    /// Mounts a tmpfs on `dir` (created), or says why it cannot and returns `None`.
    fn new(dir: &Path) -> Option<Disk> {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let size = format!("size={DISK}");
        match mount(&["-t", "tmpfs", "-o", &size, "tmpfs", &dir.to_string_lossy()]) {
            Ok(()) => Some(Disk {
                dir: dir.to_path_buf(),
            }),
            Err(e) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs on {} ({e}); run as root",
                    dir.display()
                );
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let options = format!("remount,{options}");
        mount(&["-o", &options, &self.dir.to_string_lossy()])
            .unwrap_or_else(|e| panic!("remount {} {options}: {e}", self.dir.display()));
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Breaks the disk: fills it to the last byte, or makes it read-only.
    fn break_with(&self, fault: Fault) {
        match fault {
            Fault::ReadOnly => self.remount("ro"),
            Fault::Full => {
                let mut file = std::fs::File::create(self.ballast()).expect("ballast");
                for chunk in [1 << 20, 4 << 10, 1] {
                    while file.write_all(&vec![7u8; chunk]).is_ok() {}
                }
            }
        }
    }

    /// Repairs the disk: more space (the ballast stays), or writable again.
    fn repair(&self, fault: Fault) {
        match fault {
            Fault::ReadOnly => self.remount("rw"),
            Fault::Full => self.remount(&format!("size={BIGGER}")),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Lazy: detaches at once even if a process still holds a file there.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The writes acknowledged to a writer: record id → the value of its field `n`.
type Acked = BTreeMap<String, u64>;

/// PUTs `stock/{id}` through a site's local API; `Ok` when acknowledged.
fn put(node: &Node, id: &str, n: u64, acked: &mut Acked) -> Result<(), Response> {
    let org = node
        .org
        .as_deref()
        .map(|o| format!("&org={o}"))
        .unwrap_or_default();
    let body = json!({"n": n, "pad": "x".repeat(200)}).to_string();
    let path = format!("/api/v1/stock/{id}?store=North{org}");
    let answer = node.http("PUT", &path, Some(body.as_bytes()));
    if answer.status != 200 {
        return Err(answer);
    }
    acked.insert(id.to_string(), n);
    Ok(())
}

/// Asserts a refused write named the folder and the fault.
#[track_caller]
fn assert_refused(answer: Response, disk: &Disk, fault: Fault) {
    let (status, code, words) = fault.answer();
    let body = answer.json();
    assert_eq!(
        (answer.status, body["code"].as_str()),
        (status, Some(code)),
        "{answer:?}"
    );
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&*disk.dir.to_string_lossy()) && error.contains(words),
        "the error should name {} and say {words:?}: {error}",
        disk.dir.display()
    );
}

/// Every store's digest at a site (the primary's of its organisation).
fn digest(node: &Node) -> Value {
    let mut args = vec!["--json", "digest"];
    if let Some(org) = &node.org {
        args.extend(["--org", org]);
    }
    node.cli(&args).json()
}

/// Waits until both sites hold identical replicas, then checks each database's
/// integrity and that every acknowledged write is there, with its value.
#[track_caller]
fn check_invariants(primary: &Node, sat: &Node, acked: &Acked) {
    eventually(
        "identical digests at the primary and the satellite",
        WAIT,
        || {
            let (p, s) = (digest(primary), digest(sat));
            if p == s {
                Ok(())
            } else {
                Err(format!("primary {p}, satellite {s}"))
            }
        },
    );
    for node in [primary, sat] {
        let db = rusqlite::Connection::open_with_flags(
            node.data.join("sitesync.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "{}'s database", node.name);
        let held: BTreeMap<String, u64> = node
            .list("stock")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap_or_default().to_string(),
                    r["fields"]["n"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect();
        for (id, n) in acked {
            assert_eq!(
                held.get(id),
                Some(n),
                "{}: acknowledged write {id} lost",
                node.name
            );
        }
    }
}

/// A primary and a satellite (holding every store), each on its own small disk.
fn sites(cluster: &Cluster) -> Option<(Disk, Disk, Node, Node)> {
    let primary_disk = Disk::new(&cluster.path("primary"))?;
    let sat_disk = Disk::new(&cluster.path("sat"))?;
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary
        .cli(&["store", "create", "--org", "Acme", "North"])
        .ok();
    primary.org = Some("Acme".to_string());
    let mut sat = cluster.satellite("sat", &primary, &key, &["--all-stores"]);
    sat.serve();
    Some((primary_disk, sat_disk, primary, sat))
}

/// A disk that fills up, first at the satellite, then at the primary, while both run.
fn scenario(fault: Fault) {
    let cluster = Cluster::new();
    let Some((primary_disk, sat_disk, primary, sat)) = sites(&cluster) else {
        return;
    };
    let mut acked = Acked::new();
    for n in 0..20 {
        put(&sat, &format!("s{n}"), n, &mut acked).expect("a write before the fault");
        put(&primary, &format!("p{n}"), n, &mut acked).expect("a write before the fault");
    }
    check_invariants(&primary, &sat, &acked);

    // The satellite's disk fails while the primary keeps writing.
    sat_disk.break_with(fault);
    let refused = put(&sat, "s-refused", 1, &mut acked).expect_err("a write on a broken disk");
    assert_refused(refused, &sat_disk, fault);
    let line = sat
        .cli(&[
            "record",
            "put",
            "stock",
            "s-cli",
            r#"{"n": 1}"#,
            "--store",
            "North",
        ])
        .fails();
    assert!(line.contains(fault.answer().2), "record put: {line}");
    for n in 20..30 {
        put(&primary, &format!("p{n}"), n, &mut acked).expect("the primary still writes");
    }
    // Reads are still served, and status and the log say what is wrong.
    assert_eq!(
        sat.api_get("stock", "s3").expect("a read")["fields"]["n"],
        3
    );
    let status = sat.status();
    for said in [&status["disk"], &status["verdict"]] {
        let said = said.as_str().unwrap_or_default();
        assert!(said.contains(fault.answer().2), "status: {status}");
    }
    eventually("the satellite's log names the fault", WAIT, || {
        let log = std::fs::read_to_string(&sat.log).unwrap_or_default();
        if log.contains(fault.answer().2) {
            Ok(())
        } else {
            Err(sat.log_tail())
        }
    });

    // Repaired: the satellite catches up by itself and takes writes again.
    sat_disk.repair(fault);
    eventually("the satellite pulls what it missed", WAIT, || {
        sat.api_get("stock", "p29")
            .ok_or_else(|| "p29 not there yet".to_string())
    });
    put(&sat, "s-after", 99, &mut acked).expect("a write after the repair");
    check_invariants(&primary, &sat, &acked);

    // The primary's disk fails: the satellite keeps taking writes and holds them.
    primary_disk.break_with(fault);
    assert_refused(
        put(&primary, "p-refused", 1, &mut acked).expect_err("a write on a broken disk"),
        &primary_disk,
        fault,
    );
    for n in 100..110 {
        put(&sat, &format!("s{n}"), n, &mut acked).expect("the satellite still writes");
    }
    eventually(
        "the satellite's status names the primary's fault",
        WAIT,
        || {
            let status = sat.status();
            let error = status["last_error"].as_str().unwrap_or_default();
            if error.contains(fault.answer().2) {
                Ok(())
            } else {
                Err(status.to_string())
            }
        },
    );
    let read = primary.http("GET", "/api/v1/stock/s3?org=Acme", None);
    assert_eq!(read.status, 200, "the primary still serves reads: {read:?}");

    primary_disk.repair(fault);
    check_invariants(&primary, &sat, &acked);
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_sync_resumes_when_space_returns() {
    scenario(Fault::Full);
}

/// A data folder found read-only (Linux refuses to remount a disk read-only while a
/// process holds a file open for writing there, so the site is stopped first, as after
/// a reboot onto a read-only disk): every command and `serve` refuse with the fault
/// named, and once the folder is writable again sync resumes and nothing is lost.
#[test]
fn a_read_only_data_folder_is_refused_clearly_and_sync_resumes_when_writable() {
    let fault = Fault::ReadOnly;
    let cluster = Cluster::new();
    let Some((primary_disk, sat_disk, mut primary, mut sat)) = sites(&cluster) else {
        return;
    };
    let mut acked = Acked::new();
    for n in 0..10 {
        put(&sat, &format!("s{n}"), n, &mut acked).expect("a write");
        put(&primary, &format!("p{n}"), n, &mut acked).expect("a write");
    }
    check_invariants(&primary, &sat, &acked);

    // The satellite's folder is read-only while the primary takes writes.
    sat.stop();
    sat_disk.break_with(fault);
    for args in [
        &[
            "record",
            "put",
            "stock",
            "s-cli",
            r#"{"n": 1}"#,
            "--store",
            "North",
        ][..],
        &["status"],
        &["serve"],
    ] {
        let line = sat.cli(args).fails();
        assert!(
            line.contains(fault.answer().2) && line.contains(&*sat_disk.dir.to_string_lossy()),
            "{args:?}: {line}"
        );
    }
    for n in 10..20 {
        put(&primary, &format!("p{n}"), n, &mut acked).expect("the primary still writes");
    }
    sat_disk.repair(fault);
    sat.serve();
    put(&sat, "s-after", 99, &mut acked).expect("a write after the repair");
    check_invariants(&primary, &sat, &acked);

    // The primary's folder is read-only: it does not start, the satellite keeps writing
    // and says it cannot reach it; once writable, the primary (on its old port) catches up.
    let port = primary.addr().to_string();
    primary.set("listen", &port).ok();
    primary.stop();
    primary_disk.break_with(fault);
    let line = primary.cli(&["serve"]).fails();
    assert!(line.contains(fault.answer().2), "serve: {line}");
    for n in 100..110 {
        put(&sat, &format!("s{n}"), n, &mut acked).expect("the satellite still writes");
    }
    primary_disk.repair(fault);
    primary.serve();
    check_invariants(&primary, &sat, &acked);
}

/// Files and a full disk. A file fetched onto a satellite whose disk fills midway leaves
/// nothing half-written (every chunk there checks against its name, no temporary file
/// stays), stays pending (`file get` exits 12, `status` counts it), and arrives whole once
/// there is room; a file put on a full disk is refused with the fault named and writes
/// no record.
#[test]
fn a_file_meeting_a_full_disk_leaves_nothing_half_written_and_arrives_when_space_returns() {
    let cluster = Cluster::new();
    let Some((_primary_disk, sat_disk, primary, sat)) = sites(&cluster) else {
        return;
    };
    let org = primary.cli(&["--json", "org", "show", "Acme"]).json()["id"]
        .as_u64()
        .expect("org id");
    let files = sat.data.join("files").join(org.to_string());
    // 12 MiB of noise (no two chunks alike), kept outside the small disks.
    let mut rng = sitesync_sim::Rng::new(12);
    let bytes: Vec<u8> = (0..(12 << 20) / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    let source = cluster.path("big.bin");
    std::fs::write(&source, &bytes).expect("write the file");
    // Room for the record, not for the file.
    sat_disk.break_with(Fault::Full);
    let ballast = std::fs::OpenOptions::new()
        .write(true)
        .open(sat_disk.ballast())
        .expect("ballast");
    let full = ballast.metadata().expect("ballast size").len();
    ballast.set_len(full - (4 << 20)).expect("free 4 MiB");
    let source_arg = source.to_string_lossy().into_owned();
    let put = [
        "file",
        "put",
        "docs",
        "d1",
        "scan",
        &source_arg,
        "--store",
        "North",
        "--org",
        "Acme",
    ];
    primary.cli(&put).ok();
    eventually("the record reaches the satellite", WAIT, || {
        sat.api_get("docs", "d1")
            .ok_or_else(|| "not there yet".to_string())
    });
    eventually(
        "the satellite's file lane meets the full disk",
        WAIT,
        || {
            let log = std::fs::read_to_string(&sat.log).unwrap_or_default();
            match log.contains("the disk is full") {
                true => Ok(()),
                false => Err(sat.log_tail()),
            }
        },
    );
    let chunks: Vec<PathBuf> = std::fs::read_dir(files.join("chunks"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    assert!(
        chunks.len() < 12,
        "the disk could not hold every chunk: {}",
        chunks.len()
    );
    for chunk in &chunks {
        let content = std::fs::read(chunk).expect("read a chunk");
        let name = chunk
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert_eq!(
            blake3_hex(&content),
            name,
            "a chunk on disk is whole and checks against its name"
        );
    }
    let left: Vec<_> = std::fs::read_dir(files.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "no half-written file stays: {left:?}");
    let out = cluster.path("got.bin");
    let out_arg = out.to_string_lossy().into_owned();
    let get = ["file", "get", "docs", "d1", "scan", "-o", &out_arg];
    assert_eq!(
        sat.cli(&get).code,
        Some(12),
        "pending while it cannot be written"
    );
    assert_eq!(sat.status()["files_to_fetch"], 1);

    // A file put on the full disk is refused, and no record is written.
    sat_disk.break_with(Fault::Full);
    let put = [
        "file",
        "put",
        "docs",
        "d2",
        "scan",
        &source_arg,
        "--store",
        "North",
    ];
    let refused = sat.cli(&put);
    assert_eq!(refused.code, Some(8), "{}", refused.describe());
    assert!(refused.fails().contains("the disk is full"));
    assert!(
        sat.api_get("docs", "d2").is_none(),
        "no record for a refused file"
    );

    // Room again: the file arrives whole.
    sat_disk.repair(Fault::Full);
    std::fs::remove_file(sat_disk.ballast()).expect("remove the ballast");
    // (`serve`'s lane backs off up to a minute after failing; a round fetches it now.)
    let report = sat.sync();
    assert_eq!(report["files"]["pending"], 0, "{report}");
    let got = sat.cli(&get);
    assert!(got.success(), "{}", got.describe());
    assert!(
        std::fs::read(&out).expect("the file") == bytes,
        "the bytes put"
    );
}

/// BLAKE3 of `bytes`, in hex (as the files' chunks are named).
fn blake3_hex(bytes: &[u8]) -> String {
    sitesync_core::file::Hash::of(bytes).to_hex()
}
