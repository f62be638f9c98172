//! A primary whose state went back (its folder put back from a copy, or `sitesync
//! restore` from a backup): satellites notice, give back every record they hold, and
//! pull again from where the primary really is, so nothing any site still held is lost
//! and nothing says "in sync" before it is.

use crate::harness::{Cluster, Node, WAIT, eventually};
use crate::invariants::{Holds, Ledger, Site, converged};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// `cp -r FROM TO`: a copy of a stopped data folder, as an administrator makes one.
fn copy_folder(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success(), "cp -r {from:?} {to:?}");
}

/// Writes `ids` at `writer` in `store`, noting each acknowledged write.
fn write(writer: &Node, ledger: &Ledger, ids: &[String], store: Option<&str>) {
    for id in ids {
        let fields = json!({"by": writer.name, "id": id});
        writer.put("stock", id, &fields.to_string(), store);
        ledger.put(&writer.name, "stock", id, store, fields);
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

#[track_caller]
fn holds_all(node: &Node, ids: &[String]) {
    eventually(&format!("{} to hold {ids:?}", node.name), WAIT, || {
        let held = node.ids("stock");
        match ids.iter().find(|id| !held.contains(*id)) {
            Some(missing) => Err(format!("{missing} is missing; {}", node.log_tail())),
            None => Ok(()),
        }
    });
}

/// The issue's scenario, exactly: a stopped primary's folder copied, five records
/// written at a satellite and synced everywhere, the copy put back and the primary
/// started again, five more written. Before incarnations, the all-stores satellite
/// never received four of the last five (its cursor was ahead of the restored
/// primary), the primary had lost the five in between, and every `status` said "in
/// sync".
#[test]
fn a_primary_put_back_from_a_copy_of_its_folder_gets_back_what_the_satellites_hold() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    primary.cli(&["store", "create", "North", "--org", "Acme"]);
    let mut writer = cluster.satellite("writer", &primary, &key, &["--store", "North"]);
    let mut all = cluster.satellite("all", &primary, &key, &["--all-stores"]);
    writer.serve();
    all.serve();
    let address = primary.addr().to_string();
    primary.set("listen", &address);

    primary.stop();
    let copy = cluster.path("primary-copy");
    copy_folder(&primary.data, &copy);
    primary.serve();
    let ledger = Ledger::default();
    let first = ids("first-", 5);
    write(&writer, &ledger, &first, Some("North"));
    holds_all(&all, &first);
    holds_all(&primary, &first);

    // Both satellites are stopped while the primary is put back, so the test sees it as
    // the copy left it (a serving satellite gives back within milliseconds).
    writer.stop();
    all.stop();
    primary.stop();
    std::fs::remove_dir_all(&primary.data).expect("the primary's folder removed");
    copy_folder(&copy, &primary.data);
    primary.serve();
    assert!(
        primary.get("stock", "first-1").is_none(),
        "the copy was taken before the first five"
    );
    // A satellite that has not synced since does not say "in sync".
    let status = all.status();
    assert_eq!(status["standing"], "behind", "{status}");
    writer.serve();
    all.serve();
    let second = ids("second-", 5);
    write(&writer, &ledger, &second, Some("North"));

    let everything: Vec<String> = first.iter().chain(&second).cloned().collect();
    holds_all(&primary, &everything);
    holds_all(&all, &everything);
    let sites = [
        Site::new(&writer, Holds::Stores(vec!["North".into()])),
        Site::new(&all, Holds::All),
    ];
    converged(&Site::new(&primary, Holds::All), &sites, &ledger);
    for node in [&writer, &all] {
        eventually(&format!("{} to say in sync", node.name), WAIT, || {
            let status = node.status();
            match status["standing"] == "in_sync" {
                true => Ok(()),
                false => Err(status.to_string()),
            }
        });
    }
    assert!(
        all.log_tail().contains("the primary went back"),
        "the satellite says what it noticed: {}",
        all.log_tail()
    );
}

/// `sitesync backup` while the primary serves and satellites write; more writes after
/// it (at satellites and at the primary); `sitesync restore`. Every record any site
/// held comes back, everywhere it routes. A site enrolled after the backup is told how
/// to join again, and does, keeping its records.
#[test]
fn backup_while_serving_then_restore_brings_back_what_the_sites_hold() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    for store in ["North", "South"] {
        primary.cli(&["store", "create", store, "--org", "Acme"]);
    }
    let mut north = cluster.satellite("north", &primary, &key, &["--store", "North"]);
    let mut south = cluster.satellite("south", &primary, &key, &["--store", "South"]);
    let mut all = cluster.satellite("all", &primary, &key, &["--all-stores"]);
    for node in [&mut north, &mut south, &mut all] {
        node.serve();
    }
    let address = primary.addr().to_string();
    primary.set("listen", &address);
    let ledger = Ledger::default();
    write(&north, &ledger, &ids("n-before-", 3), Some("North"));

    // The backup is taken while writes go on at two sites.
    let backup = cluster.path("backup");
    let taken = std::thread::scope(|scope| {
        let writers = [
            (&north, "North", "n-during-"),
            (&south, "South", "s-during-"),
        ];
        let handles: Vec<_> = writers
            .iter()
            .map(|&(node, store, prefix)| {
                let ledger = &ledger;
                scope.spawn(move || write(node, ledger, &ids(prefix, 10), Some(store)))
            })
            .collect();
        let taken = primary.cli(&["backup", backup.to_str().expect("a UTF-8 path")]);
        for handle in handles {
            handle.join().expect("a writer");
        }
        taken
    });
    assert!(taken.success(), "{}", taken.describe());
    assert!(
        taken.stdout.contains("keep it private"),
        "{}",
        taken.describe()
    );
    let again = primary.cli(&["backup", backup.to_str().expect("a UTF-8 path")]);
    assert_eq!(
        again.code,
        Some(2),
        "a backup over another: {}",
        again.describe()
    );
    assert!(again.stderr.contains("not empty"), "{}", again.describe());

    // After the backup: more writes, the primary's own among them, and a site enrolled.
    write(&south, &ledger, &ids("s-after-", 3), Some("South"));
    let notes = json!({"by": "primary"});
    primary.put("notes", "after-backup", &notes.to_string(), None);
    ledger.put("primary", "notes", "after-backup", None, notes);
    let late = cluster.satellite("late", &primary, &key, &["--store", "North"]);
    write(&late, &ledger, &ids("late-", 2), Some("North"));
    assert_eq!(late.sync()["pushed"], 2);
    let everything_so_far = ids("s-after-", 3);
    holds_all(&all, &everything_so_far);

    let refused = primary.cli(&["restore", backup.to_str().expect("a UTF-8 path")]);
    assert!(!refused.success(), "restore beside a running serve");
    assert!(
        refused.stderr.contains(&primary.pid().to_string()),
        "says which process serves: {}",
        refused.describe()
    );
    primary.stop();
    let wrong = primary.cli(&["restore", north.data.to_str().expect("a UTF-8 path")]);
    assert!(!wrong.success(), "a satellite's folder is no backup");
    assert!(wrong.stderr.contains("satellite"), "{}", wrong.describe());
    let restored = primary.cli(&["--json", "restore", backup.to_str().expect("a UTF-8 path")]);
    assert!(restored.success(), "{}", restored.describe());
    let set_aside = restored.json()["set_aside"]
        .as_str()
        .expect("what the folder held was set aside")
        .to_string();
    assert!(Path::new(&set_aside).join("sitesync.db").exists());
    primary.serve();

    // The site enrolled after the backup is told what happened and what to do.
    let told = late.cli(&["sync"]);
    assert_eq!(told.code, Some(6), "{}", told.describe());
    assert!(
        told.stderr.contains("restored from a backup") && told.stderr.contains("sitesync rejoin"),
        "{}",
        told.describe()
    );
    let rejoined = late.cli(&["rejoin", "--sync-key", &key]);
    assert!(rejoined.success(), "{}", rejoined.describe());
    late.sync();

    let sites = [
        Site::new(&north, Holds::Stores(vec!["North".into()])),
        Site::new(&south, Holds::Stores(vec!["South".into()])),
        Site::new(&all, Holds::All),
        Site::new(&late, Holds::Stores(vec!["North".into()])),
    ];
    eventually("the late site to sync", WAIT, || {
        let report = late.sync();
        match north.ids("stock").contains("late-1") {
            true => Ok(()),
            false => Err(report.to_string()),
        }
    });
    converged(&Site::new(&primary, Holds::All), &sites, &ledger);
}
