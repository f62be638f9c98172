//! No secret in clear: after a scenario that enrols, syncs, rotates the sync key and
//! changes codes and tokens, no data folder file and no log holds a sync key, an
//! authorisation code, an API token, or (outside its own `site.key`) a site secret; and
//! the configuration, database and key files are readable by their owner only.

use crate::harness::{Cluster, Node, dead_port, sitesync};
use std::os::unix::fs::PermissionsExt;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_is_stored_or_logged_in_clear() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let key = cluster.org(&primary, "Acme");
    let beta = cluster.org(&primary, "Beta");
    primary
        .cli(&["store", "create", "--org", "Acme", "S1"])
        .ok();
    let mut a = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let b = cluster.satellite("site-b", &primary, &beta, &[]);
    a.serve();

    // Traffic of every kind.
    a.put("items", "x", r#"{"v":1}"#, Some("S1"));
    let r = a.http("PUT", "/api/v1/items/y", Some(br#"{"v":2}"#));
    assert_eq!(r.status, 200, "{r:?}");
    b.put("items", "z", r#"{"v":3}"#, None);
    b.sync();
    // Failed attempts that present secrets must not log them either.
    let wrong = format!("{key}0");
    let out = sitesync(
        &cluster.path("refused"),
        &[
            "init",
            "satellite",
            "--primary",
            &primary.url(),
            "--sync-key",
            &wrong,
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.success());
    assert!(
        !out.stderr.contains(&wrong),
        "the refused key is not echoed: {}",
        out.stderr
    );
    let out = sitesync(
        &cluster.path("refused-2"),
        &[
            "init",
            "satellite",
            "--primary",
            &format!("http://127.0.0.1:{}", dead_port()),
            "--sync-key",
            &key,
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.stderr.contains(&key), "{}", out.stderr);
    let out = a.cli(&[
        "settings",
        "set",
        "name",
        "n",
        "--auth-code",
        "wrong-code-guess",
    ]);
    assert!(!out.stderr.contains("wrong-code-guess"), "{}", out.stderr);
    let r = a.http("GET", "/api/v1/status", None);
    assert_eq!(r.status, 200);

    // Rotate the sync key, change an auth code, make a new API token.
    let rotated = primary.cli(&["--json", "org", "rotate-key", "Acme"]).json();
    cluster.secret("rotated key", rotated["sync_key"].as_str().unwrap());
    let new_code = "fresh-code-for-site-a";
    a.set("auth-code", new_code).ok();
    cluster.secret("new auth code", new_code);
    a.auth_code = new_code.to_string();
    let out = a.set("api-token", "new").ok();
    let token = out
        .stdout
        .split("(shown once): ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("a new token in {out:?}"))
        .to_string();
    cluster.secret("new api token", &token);
    a.stop();
    primary.stop();

    let mut secrets = cluster.secrets.borrow().clone();
    // The random part of each sync key on its own, too.
    for (what, value) in secrets.clone() {
        if what.contains("key")
            && let Some(tail) = value.rsplit('-').next()
        {
            secrets.push((format!("{what} (secret part)"), tail.to_string()));
        }
    }
    let site_secrets: Vec<(String, Vec<u8>)> = [&a, &b]
        .iter()
        .map(|s: &&Node| {
            let path = s.data.join("site.key");
            let secret = std::fs::read_to_string(&path).expect("site.key");
            (
                path.display().to_string(),
                secret.trim().as_bytes().to_vec(),
            )
        })
        .collect();
    let files = cluster.files();
    assert!(
        files.iter().any(|f| f.ends_with("primary.serve.log")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("sitesync.db-wal") || f.ends_with("sitesync.db"))
    );
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        for (what, value) in &secrets {
            assert!(
                !contains(&bytes, value.as_bytes()),
                "{} holds the {what} in clear",
                file.display()
            );
        }
        for (own, secret) in &site_secrets {
            if file.display().to_string() != *own {
                assert!(
                    !contains(&bytes, secret),
                    "{} holds the site secret of {own}",
                    file.display()
                );
            }
        }
    }

    for node in [&primary, &a, &b] {
        let mut expected = vec!["config.toml", "sitesync.db"];
        expected.push(if node.site_id == 1 {
            "primary.key"
        } else {
            "site.key"
        });
        for name in expected {
            let mode = std::fs::metadata(node.data.join(name))
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", node.name))
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "{}/{name} has mode {:o}",
                node.name,
                mode & 0o777
            );
        }
        for file in files.iter().filter(|f| f.starts_with(&node.data)) {
            let mode = std::fs::metadata(file)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is readable by others: {:o}",
                file.display(),
                mode
            );
        }
    }
}
