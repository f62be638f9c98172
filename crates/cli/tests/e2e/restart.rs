//! A primary killed with SIGKILL and restarted keeps every change it acknowledged, and
//! the satellites resume: by themselves when it comes back on the same address, and
//! after `settings set primary-url` when it moved.

use crate::harness::{Cluster, Node, WAIT, eventually, same_everywhere};

#[track_caller]
fn arrives(node: &Node, collection: &str, id: &str) {
    eventually(&format!("{collection}/{id} at {}", node.name), WAIT, || {
        node.get(collection, id)
            .map(|_| ())
            .ok_or_else(|| node.log_tail())
    });
}

#[test]
fn primary_restart_keeps_acknowledged_changes_and_satellites_resume() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut a = cluster.satellite("site-a", &primary, &key, &[]);
    let mut b = cluster.satellite("site-b", &primary, &key, &[]);
    a.serve();
    b.serve();

    a.put("notes", "before", r#"{"v":"a"}"#, None);
    arrives(&b, "notes", "before");
    primary.put("notes", "by-primary", r#"{"v":"p"}"#, None);
    arrives(&a, "notes", "by-primary");

    let old = primary.addr();
    primary.kill();
    // Satellites work on while the primary is down, and say why they are behind.
    a.put("notes", "down-a", r#"{"v":"a"}"#, None);
    let r = b.http("PUT", "/api/v1/notes/down-b", Some(br#"{"v":"b"}"#));
    assert_eq!(r.status, 200, "{r:?}");
    // A write acknowledged by a satellite's API survives a SIGKILL of that satellite.
    b.kill();
    b.serve();
    assert!(
        b.get("notes", "down-b").is_some(),
        "the acknowledged write survived"
    );
    // Both edit the same field of the same record while cut off.
    a.put("notes", "shared", r#"{"v":"from a"}"#, None);
    b.put("notes", "shared", r#"{"v":"from b"}"#, None);
    let status = a.status();
    assert_eq!(status["to_push"], 2, "{status}");
    assert!(
        status["verdict"].as_str().unwrap().contains("reach"),
        "the verdict says the primary is unreachable: {status}"
    );

    // Back on the same address: the satellites find it again by themselves.
    primary.set("listen", &old.to_string()).ok();
    primary.serve();
    assert_eq!(primary.addr(), old);
    assert!(
        primary.get("notes", "before").is_some(),
        "an acknowledged push survived"
    );
    assert!(
        primary.get("notes", "by-primary").is_some(),
        "the primary's own write survived"
    );
    arrives(&b, "notes", "down-a");
    arrives(&a, "notes", "down-b");
    arrives(&primary, "notes", "down-a");
    arrives(&primary, "notes", "down-b");
    a.put("notes", "after", r#"{"v":"a"}"#, None);
    arrives(&b, "notes", "after");

    // Killed again and brought up on another address: satellites are told the new URL.
    primary.kill();
    primary.set("listen", "127.0.0.1:0").ok();
    let new = primary.serve();
    assert_ne!(new, old);
    for s in [&mut a, &mut b] {
        s.stop();
        s.set("primary-url", &primary.url()).ok();
        s.serve();
    }
    a.put("notes", "moved", r#"{"v":"a"}"#, None);
    arrives(&b, "notes", "moved");
    eventually("both satellites in sync", WAIT, || {
        let (sa, sb) = (a.status(), b.status());
        (sa["verdict"] == "in sync" && sb["verdict"] == "in sync")
            .then_some(())
            .ok_or(format!("{sa}\n{sb}"))
    });
    for id in [
        "before",
        "by-primary",
        "down-a",
        "down-b",
        "after",
        "moved",
        "shared",
    ] {
        same_everywhere("notes", id, &[&primary, &a, &b]);
    }
    let conflicts = primary
        .cli(&["--json", "conflicts", "--org", "Acme"])
        .json();
    assert!(
        conflicts
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "shared" && c["field"] == "v"),
        "the edits made while the primary was down are a logged conflict: {conflicts}"
    );
    assert_eq!(a.ids("notes"), primary.ids("notes"));
    assert_eq!(b.ids("notes"), primary.ids("notes"));
    a.stop();
    b.stop();
    primary.stop();
}

/// A site whose state is in its data folder is served by one process: a second `serve`
/// is refused at once, naming the first, and the first keeps serving as before (its
/// `serve.json` stays, so a command's write still reaches it and the primary at once).
#[test]
fn a_second_serve_on_one_data_folder_is_refused_naming_the_first() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let mut a = cluster.satellite("site-a", &primary, &key, &[]);
    a.serve();
    let mut second = crate::harness::spawn(&a, &["serve"]);
    let exit = second
        .wait(std::time::Duration::from_secs(10))
        .expect("a second serve exits at once instead of serving beside the first");
    assert!(!exit.success(), "a second serve exited 0");
    let log = a.log_tail();
    assert!(
        log.contains(&format!("process {}", a.pid())) && log.contains("stop it first"),
        "the refusal names the running serve: {log}"
    );
    a.put("notes", "beside", r#"{"v":"a"}"#, None);
    arrives(&primary, "notes", "beside");
    assert!(a.status()["serving"].is_string(), "{}", a.status());
}
