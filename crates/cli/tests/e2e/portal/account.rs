//! The account's page over HTTP, on a real primary: changing the address by the link
//! mailed to the new one, the account's language, session timeouts from `config.toml`,
//! and pending invitations withdrawn.

use super::{FORM, acme_with_a_viewer, get, mailed_path, post, signed_up, signed_up_again};
use crate::harness::{Node, http_with};

/// Every mail in the primary's outbox to `to`, as written.
fn mails_to(primary: &Node, to: &str) -> Vec<String> {
    let outbox = primary.data.join("mail").join("outbox");
    std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .filter(|m| m.contains(&format!("To: {to}")))
        .collect()
}

/// Every audit entry of the primary, as `sitesync audit --json` lists them.
fn audit_actions(primary: &Node) -> Vec<(String, String)> {
    let listed = primary.cli(&["--json", "audit"]).json();
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("detail"))
        })
        .collect()
}

#[test]
fn a_member_changes_their_address_by_the_link_mailed_to_the_new_one() {
    let cluster = crate::harness::Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let ann = signed_up(&primary, "ann@example.org");
    let elsewhere = signed_up_again(&primary, "ann@example.org");
    signed_up(&primary, "bob@example.org");
    let right = "current=violet+umbrella+harbour+seventeen";

    let page = get(addr, "/account", &ann);
    assert!(
        page.body.contains("Change email") && page.body.contains("New email"),
        "{}",
        page.body
    );
    let wrong = post(
        addr,
        "/account/email",
        &ann,
        b"email=ann%40new.example&current=not+her+password+at+all",
    );
    assert!(
        wrong.status == 400 && wrong.body.contains("not right"),
        "{wrong:?}"
    );

    // A taken address answers as a free one; its owner is mailed, with no link.
    let ask = |email: &str| {
        let body = format!("email={}&{right}", email.replace('@', "%40"));
        post(addr, "/account/email", &ann, body.as_bytes())
    };
    let (taken, free) = (ask("bob@example.org"), ask("ann@new.example"));
    for answer in [&taken, &free] {
        assert!(
            answer.status == 200 && answer.body.contains("a message with a link is on its way"),
            "{answer:?}"
        );
    }
    let strip = |body: &str| body.split("<tbody>").next().unwrap_or_default().to_string();
    assert_eq!(strip(&taken.body), strip(&free.body), "the same words");
    let bobs = mails_to(&primary, "bob@example.org");
    let told = bobs
        .iter()
        .find(|m| m.contains("move another sitesync account"));
    assert!(told.is_some_and(|m| !m.contains("/email/")), "{bobs:?}");

    // Until the link is followed the old address stays; its page changes nothing.
    let link = mailed_path(&primary, "ann@new.example", "email");
    let offer = http_with(addr, "GET", &link, &[], None);
    assert!(
        offer.status == 200 && offer.body.contains("Use this address"),
        "{offer:?}"
    );
    assert!(get(addr, "/account", &ann).body.contains("ann@example.org"));
    let followed = post(addr, &link, &ann, b"");
    assert!(
        followed.status == 200 && followed.body.contains("uses this address now"),
        "{followed:?}"
    );
    let now = get(addr, "/account", &ann);
    assert!(now.body.contains("ann@new.example"), "this session goes on");
    assert_eq!(
        get(addr, "/account", &elsewhere).status,
        303,
        "the other ended"
    );
    let olds = mails_to(&primary, "ann@example.org");
    assert!(
        olds.iter()
            .any(|m| m.contains("changed from ann@example.org to ann@new.example")),
        "{olds:?}"
    );
    let again = post(addr, &link, &ann, b"");
    assert!(
        again.status == 404 && again.body.contains("no longer works"),
        "{again:?}"
    );
    assert!(audit_actions(&primary).contains(&(
        "email_changed".into(),
        "ann@example.org to ann@new.example".into()
    )));

    // An address that got an account before the link was followed is refused.
    assert_eq!(ask("cat@example.org").status, 200);
    let late = mailed_path(&primary, "cat@example.org", "email");
    signed_up(&primary, "cat@example.org");
    let refused = http_with(addr, "POST", &late, &[FORM], None);
    assert!(
        refused.status == 409 && refused.body.contains("got an account of its own"),
        "{refused:?}"
    );
    assert!(get(addr, "/account", &ann).body.contains("ann@new.example"));
}

#[test]
fn an_account_reads_its_pages_in_the_language_it_chose() {
    let cluster = crate::harness::Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let ann = signed_up(&primary, "ann@example.org");
    let page = |accept: &str| {
        let headers = [("Cookie", ann.as_str()), ("Accept-Language", accept)];
        http_with(addr, "GET", "/account", &headers, None).body
    };
    assert!(
        page("ru").contains("<html lang=\"ru\">"),
        "the browser's at first"
    );
    assert!(page("en").contains("Automatic (as the browser asks)"));

    let chosen = post(addr, "/account/language", &ann, b"language=ru");
    assert!(
        chosen.status == 200 && chosen.body.contains("Язык ваших страниц выбран"),
        "{chosen:?}"
    );
    for accept in ["en", "de"] {
        let body = page(accept);
        assert!(body.contains("<html lang=\"ru\">"), "{accept}: {body}");
        assert!(body.contains("value=\"ru\" lang=\"ru\" selected"), "{body}");
    }
    let orgs = get(addr, "/orgs", &ann);
    assert!(orgs.body.contains("<html lang=\"ru\">"), "every page");

    let unknown = post(addr, "/account/language", &ann, b"language=xx");
    assert_eq!(unknown.status, 400, "{unknown:?}");
    let automatic = post(addr, "/account/language", &ann, b"language=auto");
    assert_eq!(automatic.status, 200);
    assert!(page("en").contains("<html lang=\"en\">"));
    assert!(page("ru").contains("<html lang=\"ru\">"));
}

/// Makes every session of the primary look unused for `minutes` more.
fn idle_for(primary: &Node, minutes: i64) {
    let update = "UPDATE tokens SET seen_at = seen_at - ?1 WHERE purpose = 'session'";
    super::backdate(primary, update, minutes);
}

#[test]
fn a_shortened_idle_timeout_ends_a_session_and_nonsense_is_refused() {
    let cluster = crate::harness::Cluster::new();
    let mut primary = cluster.primary();
    let ann = signed_up(&primary, "ann@example.org");
    idle_for(&primary, 31);
    assert_eq!(
        get(primary.addr(), "/account", &ann).status,
        200,
        "unused for 31 minutes: alive within the default hour"
    );

    let code = primary.auth_code.clone();
    let set = |key: &str, value: &str| {
        primary.cli(&["settings", "set", key, value, "--auth-code", &code])
    };
    for (key, value, says) in [
        ("session-idle", "soon", "like 30m, 2h or 1d"),
        ("session-idle", "10s", "like 30m, 2h or 1d"),
        ("session-idle", "30d", "from 5m to 7d"),
        ("session-lifetime", "1m", "from 5m to 90d"),
    ] {
        let refused = set(key, value);
        assert_eq!(refused.code, Some(2), "{}", refused.describe());
        assert!(refused.fails().contains(says), "{key} {value}");
    }
    assert!(set("session-idle", "30m").success());
    assert!(set("session-lifetime", "12h").success());
    let shown = primary.cli(&["settings", "show"]).ok().stdout;
    for line in ["session-idle", "30m", "session-lifetime", "12h"] {
        assert!(shown.contains(line), "{shown}");
    }
    primary.stop();
    primary.serve();
    let addr = primary.addr();
    let bob = signed_up(&primary, "bob@example.org");
    assert_eq!(get(addr, "/account", &bob).status, 200);
    idle_for(&primary, 31);
    for who in [&ann, &bob] {
        assert_eq!(
            get(addr, "/account", who).status,
            303,
            "unused for 31 minutes: ended by the 30-minute idle timeout"
        );
    }
}

/// The path a members page's Withdraw button posts to, for the invitation of `email`.
fn withdraw_path(page: &str, email: &str) -> String {
    let row = page
        .split("data-testid=\"invitation-row\"")
        .find(|r| r.contains(&format!("<td>{email}</td>")))
        .unwrap_or_else(|| panic!("no pending invitation of {email}: {page}"));
    let start = row.find("action=\"").expect("a form") + "action=\"".len();
    row[start..].chars().take_while(|c| *c != '"').collect()
}

#[test]
fn an_admin_sees_pending_invitations_and_withdraws_one_whose_link_then_no_longer_works() {
    let cluster = crate::harness::Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    let members = format!("{org}/members");
    let none = get(addr, &members, &owner);
    assert!(
        none.body.contains("No invitation is waiting"),
        "{}",
        none.body
    );
    let invited = post(
        addr,
        &format!("{members}/invite"),
        &owner,
        b"email=new%40example.org&role=manager",
    );
    assert_eq!(invited.status, 200, "{invited:?}");
    let link = mailed_path(&primary, "new@example.org", "invite");

    let page = get(addr, &members, &owner).body;
    let row = page
        .split("data-testid=\"invitation-row\"")
        .nth(1)
        .expect("the invitation listed");
    for cell in [
        "new@example.org",
        "manager",
        "owner@example.org",
        " +00:00<",
        "Withdraw",
    ] {
        assert!(row.contains(cell), "{cell}: {row}");
    }
    let withdraw = withdraw_path(&page, "new@example.org");
    assert_eq!(post(addr, &withdraw, &viewer, b"").status, 403);
    let russian = http_with(
        addr,
        "GET",
        &members,
        &[("Cookie", &owner), ("Accept-Language", "ru")],
        None,
    );
    assert!(russian.body.contains("Ожидающие приглашения"));

    let withdrawn = post(addr, &withdraw, &owner, b"");
    assert!(
        withdrawn.status == 200 && withdrawn.body.contains("invitation was withdrawn"),
        "{withdrawn:?}"
    );
    assert!(!withdrawn.body.contains("data-testid=\"invitation-row\""));
    let dead = http_with(addr, "GET", &link, &[], None);
    assert!(
        dead.status == 404 && dead.body.contains("no longer works"),
        "{dead:?}"
    );
    assert_eq!(post(addr, &withdraw, &owner, b"").status, 404, "once");
    let audit = get(addr, &format!("{org}/audit"), &owner);
    assert!(
        audit.body.contains("withdrew an invitation")
            && audit.body.contains("new@example.org as manager"),
        "{}",
        audit.body
    );
}
