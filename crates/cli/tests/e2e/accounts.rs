//! The operator's account commands on a real primary, and mail written to the outbox.

use crate::harness::{Cluster, Out};

/// The mails in a data folder's outbox, as written.
fn outbox(data: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(data.join("mail").join("outbox"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// A command refused with exit `code`, saying `says`.
#[track_caller]
fn refused(out: &Out, code: i32, says: &str) {
    assert_eq!(out.code, Some(code), "{}", out.describe());
    assert!(out.stderr.contains(says), "{}", out.describe());
}

#[test]
fn the_operator_makes_an_account_owner_of_an_organisation_made_with_the_cli() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    cluster.org(&primary, "Acme");
    let made = primary
        .cli(&["--json", "account", "create", "ann@example.org"])
        .json();
    assert_eq!(
        (made["email"].as_str(), made["confirmed"].as_bool()),
        (Some("ann@example.org"), Some(true))
    );
    let mails = outbox(&primary.data);
    let set = mails
        .iter()
        .find(|m| m.contains("To: ann@example.org"))
        .expect("a mail to ann");
    // The link points at the running primary, and works for a week.
    assert!(set.contains(&format!("{}/reset/", primary.url())), "{set}");
    assert!(set.contains("for 7 days"), "{set}");

    let granted = primary.cli(&[
        "account",
        "grant",
        "ann@example.org",
        "--org",
        "Acme",
        "--role",
        "owner",
    ]);
    assert!(granted.success(), "{}", granted.describe());
    let wrong = primary.cli(&[
        "account",
        "grant",
        "ann@example.org",
        "--org",
        "Acme",
        "--role",
        "king",
    ]);
    refused(&wrong, 2, "viewer, manager, admin, owner");
    let nobody = primary.cli(&["account", "disable", "nobody@example.org"]);
    refused(&nobody, 2, "account list");
    let taken = primary.cli(&["account", "create", "ANN@example.org"]);
    assert_eq!(taken.code, Some(4), "{}", taken.describe());

    assert!(
        primary
            .cli(&["account", "set-limit", "ann@example.org", "2"])
            .success()
    );
    assert!(
        primary
            .cli(&["account", "disable", "ann@example.org"])
            .success()
    );
    let listed = primary.cli(&["--json", "account", "list"]).json();
    assert_eq!(listed[0]["disabled"], true, "{listed}");
    assert_eq!(listed[0]["org_limit"], 2, "{listed}");
    let table = primary.cli(&["account", "list"]);
    assert!(table.stdout.contains("disabled"), "{}", table.describe());

    let test = primary.cli(&["mail", "test", "bob@example.org"]);
    assert!(
        test.success() && test.stdout.contains("outbox"),
        "{}",
        test.describe()
    );
    assert!(
        outbox(&primary.data)
            .iter()
            .any(|m| m.contains("To: bob@example.org") && m.contains("got through"))
    );
}
