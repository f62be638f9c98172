//! The portal in a real browser: Debian's Chromium driven by playwright-core
//! (`crates/portal/tests/browser/flow.mjs`), against a real primary, with a real
//! satellite enrolled by the sync key the browser read off the page. Screenshots of
//! every page visited are saved under the test's temporary target folder, printed.

mod account;

use crate::harness::{Cluster, Node, http_with};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn browser_tests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../portal/tests/browser")
}

/// The browser flow, started.
fn flow_command(primary: &Node, shots: &std::path::Path, args: &[&str]) -> Command {
    let dir = browser_tests();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need playwright-core: run `npm ci` in {} (and install Debian's chromium); .ci/run does both",
        dir.display()
    );
    let mut command = Command::new("node");
    command
        .arg("flow.mjs")
        .args(args)
        .current_dir(&dir)
        .env("PORTAL", primary.url())
        .env("OUTBOX", primary.data.join("mail").join("outbox"))
        .env("SHOTS", shots);
    command
}

/// A phase of the browser flow running, once it printed "watching", with the reader of
/// the rest of its output.
struct Watching(std::process::Child, std::thread::JoinHandle<Vec<String>>);

fn flow_started(primary: &Node, shots: &std::path::Path, args: &[&str]) -> Watching {
    use std::io::BufRead;
    let mut child = flow_command(primary, shots, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("its output");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let started = lines.next().and_then(Result::ok);
    assert_eq!(
        started.as_deref(),
        Some("watching"),
        "the flow did not start watching"
    );
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    Watching(child, rest)
}

impl Watching {
    /// Waits for the flow to end; returns what it printed last, as JSON.
    fn finish(self, primary: &Node) -> Value {
        let out = self.0.wait_with_output().expect("node ends");
        let printed = self.1.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "browser flow failed:\n{stderr}\n{printed:?}\nprimary log:\n{}",
            primary.log_tail()
        );
        let last = printed.last().cloned().unwrap_or_default();
        serde_json::from_str(&last)
            .unwrap_or_else(|e| panic!("the flow printed no JSON ({e}): {printed:?}"))
    }
}

/// Runs a phase of the browser flow; returns what it printed last, as JSON.
fn flow(primary: &Node, shots: &std::path::Path, args: &[&str]) -> Value {
    let out = flow_command(primary, shots, args)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow {args:?} failed:\n{stderr}\n{stdout}\nprimary log:\n{}",
        primary.log_tail()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the flow printed no JSON ({e}): {stdout}"))
}

#[test]
fn a_person_signs_up_creates_an_organisation_and_watches_a_site() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&shots).expect("a folder for screenshots");

    let signed_up = flow(&primary, &shots, &["signup"]);
    let key = signed_up["syncKey"]
        .as_str()
        .expect("the sync key")
        .to_string();
    let org = signed_up["org"]
        .as_str()
        .expect("the organisation's page")
        .to_string();
    cluster.secret("sync key read in the browser", &key);

    // With the organisation's page open, a real satellite enrols with the key the page
    // showed, writes and syncs: the page shows it "in sync" without a reload.
    let watching = flow_started(&primary, &shots, &["sites", &org]);
    let shop = cluster.satellite("shop", &primary, &key, &[]);
    shop.put("notes", "hello", r#"{"from":"shop"}"#, None);
    shop.sync();
    let watched = watching.finish(&primary);
    assert_eq!(watched["siteId"], shop.site_id.to_string(), "{watched}");

    assert_eq!(flow(&primary, &shots, &["reset"])["reset"], true);
    let viewer = flow(&primary, &shots, &["viewer", &org]);
    assert_eq!(viewer["viewerRefused"], 403, "{viewer}");
    let site = shop.site_id.to_string();
    // A licence whose files module ends in a week: the Licences page warns of it.
    let in_a_week = Command::new("date")
        .args(["-u", "-d", "+7 days", "+%F"])
        .output()
        .expect("date runs");
    let day = String::from_utf8_lossy(&in_a_week.stdout)
        .trim()
        .to_string();
    let module = format!("files={day}");
    let licence = [
        "org",
        "licence",
        "Acme Pharmacies",
        "--sites",
        "5",
        "--module",
        &module,
    ];
    let licensed = primary.cli(&licence);
    assert!(licensed.success(), "{}", licensed.describe());
    assert_eq!(
        flow(&primary, &shots, &["admin", &org, &site])["assigned"],
        true
    );
    shop.sync();
    let settings = shop.cli(&["settings", "show"]);
    assert!(
        settings.stdout.contains("North"),
        "the store assigned in the browser reached the site: {}",
        settings.describe()
    );
    eprintln!("portal screenshots: {}", shots.display());
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Registers and confirms `email` through the portal's pages, as plain HTTP; returns a
/// session cookie (`session=TOKEN`).
fn signed_up(primary: &Node, email: &str) -> String {
    let body = format!(
        "email={}&password=violet+umbrella+harbour+seventeen",
        email.replace('@', "%40")
    );
    let addr = primary.addr();
    let r = http_with(addr, "POST", "/register", &[FORM], Some(body.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let path = mailed_path(primary, email, "confirm");
    assert_eq!(http_with(addr, "POST", &path, &[FORM], None).status, 200);
    let r = http_with(addr, "POST", "/login", &[FORM], Some(body.as_bytes()));
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = r
        .headers("set-cookie")
        .first()
        .expect("a session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

#[test]
fn the_portal_refuses_cross_site_posts_tells_no_one_who_has_an_account_and_shows_only_its_members_organisations()
 {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let page = http_with(addr, "GET", "/login", &[], None);
    assert_eq!(page.status, 200);
    let policy = page.headers("content-security-policy").join(" ");
    for part in [
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(part), "{policy}");
    }
    assert_eq!(page.headers("x-content-type-options"), ["nosniff"]);
    assert!(!page.body.contains("<script>"), "no inline script");

    // A post from another site is refused, whatever it carries.
    let body = b"email=x%40example.org&password=violet+umbrella+harbour+seventeen";
    for foreign in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "http://evil.example"),
    ] {
        let r = http_with(addr, "POST", "/register", &[FORM, foreign], Some(body));
        assert_eq!(r.status, 403, "{foreign:?}: {r:?}");
    }
    assert!(!primary.data.join("mail").exists(), "nothing was sent");
    // No state changes on GET.
    assert_eq!(http_with(addr, "GET", "/logout", &[], None).status, 405);

    let ann = signed_up(&primary, "ann@example.org");
    let bob = signed_up(&primary, "bob@example.org");
    // Who has an account is not told: a wrong password and an unknown address get the
    // same answer, and registering a taken address answers like a new one.
    let wrong = http_with(
        addr,
        "POST",
        "/login",
        &[FORM],
        Some(b"email=ann%40example.org&password=not+her+password+at+all"),
    );
    let unknown = http_with(
        addr,
        "POST",
        "/login",
        &[FORM],
        Some(b"email=zed%40example.org&password=not+her+password+at+all"),
    );
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(
        wrong.body.replace("ann%40", ""),
        unknown.body.replace("zed%40", "").replace("zed@", "ann@")
    );
    let again = http_with(
        addr,
        "POST",
        "/register",
        &[FORM],
        Some(b"email=ann%40example.org&password=violet+umbrella+harbour+seventeen"),
    );
    let fresh = http_with(
        addr,
        "POST",
        "/register",
        &[FORM],
        Some(b"email=new%40example.org&password=violet+umbrella+harbour+seventeen"),
    );
    assert_eq!(
        (again.status, again.body.clone()),
        (fresh.status, fresh.body.clone())
    );

    // Ann's organisation is hers: Bob is told it does not exist, and so is anyone
    // signed out sent to sign in.
    let made = http_with(
        addr,
        "POST",
        "/orgs",
        &[FORM, ("Cookie", &ann)],
        Some(b"name=Ann+Pharmacies"),
    );
    assert_eq!(made.status, 303, "{made:?}");
    let path = made.headers("location")[0].to_string();
    let hers = http_with(addr, "GET", &path, &[("Cookie", &ann)], None);
    assert!(
        hers.status == 200 && hers.body.contains("data-testid=\"sync-key\""),
        "{hers:?}"
    );
    let not_his = http_with(addr, "GET", &path, &[("Cookie", &bob)], None);
    assert_eq!(not_his.status, 404, "{not_his:?}");
    assert!(!not_his.body.contains("Ann Pharmacies"));
    let signed_out = http_with(addr, "GET", &path, &[], None);
    assert_eq!(signed_out.status, 303);
    // One organisation per account unless the operator raises the limit.
    let second = http_with(
        addr,
        "POST",
        "/orgs",
        &[FORM, ("Cookie", &ann)],
        Some(b"name=Ann+Two"),
    );
    assert_eq!(second.status, 400, "{second:?}");
    assert!(second.body.contains("raise the limit"), "{}", second.body);
    primary.cli(&["account", "set-limit", "ann@example.org", "2"]);
    let second = http_with(
        addr,
        "POST",
        "/orgs",
        &[FORM, ("Cookie", &ann)],
        Some(b"name=Ann+Two"),
    );
    assert_eq!(second.status, 303, "{second:?}");

    // Signing out ends the session on the server, not only in the browser.
    let out = http_with(addr, "POST", "/logout", &[("Cookie", &ann)], None);
    assert_eq!(out.status, 303);
    assert_eq!(
        http_with(addr, "GET", &path, &[("Cookie", &ann)], None).status,
        303
    );

    // Guessing is slowed: after ten failed sign-ins of one account within a minute, even
    // the right password waits (429, with when to try again).
    let guess = b"email=bob%40example.org&password=not+his+password+at+all";
    for _ in 0..11 {
        assert_eq!(
            http_with(addr, "POST", "/login", &[FORM], Some(guess)).status,
            401
        );
    }
    let right = b"email=bob%40example.org&password=violet+umbrella+harbour+seventeen";
    let held = http_with(addr, "POST", "/login", &[FORM], Some(right));
    assert_eq!(held.status, 429, "{held:?}");
    let wait: u64 = held.headers("retry-after")[0].parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

/// An organisation "Acme" made in the portal by its owner, with a viewer the operator
/// granted: their session cookies, and the organisation's page.
fn acme_with_a_viewer(primary: &Node) -> (String, String, String) {
    let owner = signed_up(primary, "owner@example.org");
    let viewer = signed_up(primary, "viewer@example.org");
    let made = http_with(
        primary.addr(),
        "POST",
        "/orgs",
        &[FORM, ("Cookie", &owner)],
        Some(b"name=Acme"),
    );
    let org = made.headers("location")[0].to_string();
    grant(primary, "viewer@example.org", "Acme", "viewer");
    (owner, viewer, org)
}

/// The operator gives `email` role `role` in organisation `org`.
fn grant(primary: &Node, email: &str, org: &str, role: &str) {
    let granted = primary.cli(&["account", "grant", email, "--org", org, "--role", role]);
    assert!(granted.success(), "{}", granted.describe());
}

/// GET `path` with the session cookie `who`.
fn get(addr: std::net::SocketAddr, path: &str, who: &str) -> crate::harness::Response {
    http_with(addr, "GET", path, &[("Cookie", who)], None)
}

/// POST the form `body` to `path` with the session cookie `who`.
fn post(
    addr: std::net::SocketAddr,
    path: &str,
    who: &str,
    body: &[u8],
) -> crate::harness::Response {
    http_with(addr, "POST", path, &[FORM, ("Cookie", who)], Some(body))
}

/// The sync key on an organisation's page, if the page shows it.
fn key_on(page: &str) -> Option<String> {
    let start = page.find("data-testid=\"sync-key\">")? + "data-testid=\"sync-key\">".len();
    Some(page[start..].chars().take_while(|c| *c != '<').collect())
}

#[test]
fn what_a_role_may_not_do_is_absent_from_the_page_and_refused_by_the_server() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);

    // The viewer sees the organisation and its stores, not the key or what changes them.
    let seen = get(addr, &org, &viewer);
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(
        seen.body.contains("Acme") && key_on(&seen.body).is_none(),
        "{}",
        seen.body
    );
    assert!(!seen.body.contains("Rotate sync key"));
    let stores = get(addr, &format!("{org}/stores"), &viewer);
    assert!(
        stores.status == 200 && !stores.body.contains("Create store"),
        "{stores:?}"
    );
    for (path, body) in [("rotate-key", &b""[..]), ("stores", &b"name=North"[..])] {
        let refused = post(addr, &format!("{org}/{path}"), &viewer, body);
        assert_eq!(refused.status, 403, "{path}: {refused:?}");
    }
    assert_eq!(get(addr, &format!("{org}/rotate-key"), &viewer).status, 403);

    // The owner may: rotate the key (after a page that says what it does) and add stores.
    let page = get(addr, &org, &owner);
    let old_key = key_on(&page.body).expect("the owner sees the key");
    assert!(page.body.contains("Rotate sync key"));
    let confirm = get(addr, &format!("{org}/rotate-key"), &owner);
    assert!(confirm.body.contains("keep syncing"), "{}", confirm.body);
    let rotated = post(addr, &format!("{org}/rotate-key"), &owner, b"");
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_key = key_on(&rotated.body).expect("the new key");
    assert_ne!(new_key, old_key);
    assert!(
        rotated.body.contains("no longer enrols"),
        "{}",
        rotated.body
    );
    let late = cluster.path("late");
    let refused = crate::harness::sitesync(
        &late,
        &[
            "init",
            "satellite",
            "--primary",
            &primary.url(),
            "--sync-key",
            &old_key,
        ],
    );
    assert_eq!(
        refused.code,
        Some(6),
        "the old key enrols no more: {}",
        refused.describe()
    );
    cluster.secret("rotated key", &new_key);
    cluster.secret("old key", &old_key);

    assert_eq!(
        post(addr, &format!("{org}/stores"), &owner, b"name=North").status,
        303
    );
    let listed = get(addr, &format!("{org}/stores"), &owner);
    assert!(listed.body.contains("North") && listed.body.contains("Create store"));
    let twice = post(addr, &format!("{org}/stores"), &owner, b"name=north");
    assert_eq!(twice.status, 400, "{twice:?}");
    assert!(
        twice.body.contains("role=\"alert\""),
        "the reason is shown: {}",
        twice.body
    );
}

/// The checkbox name of store `store` on a site's page.
fn checkbox_of(page: &str, store: &str) -> String {
    let label = page
        .split("<label class=\"check\">")
        .find(|l| l.contains(&format!("> {store}</label>")))
        .unwrap_or_else(|| panic!("no checkbox for {store}: {page}"));
    let start = label.find("name=\"").expect("a name") + "name=\"".len();
    label[start..].chars().take_while(|c| *c != '"').collect()
}

#[test]
fn a_manager_assigns_stores_to_a_real_site_and_an_admin_revokes_it_after_typing_its_name() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    for store in ["North", "South"] {
        let body = format!("name={store}");
        assert_eq!(
            post(addr, &format!("{org}/stores"), &owner, body.as_bytes()).status,
            303
        );
    }
    let page = http_with(addr, "GET", &org, &[("Cookie", &owner)], None);
    let key = key_on(&page.body).expect("the key");
    cluster.secret("sync key", &key);
    let till = cluster.satellite("till", &primary, &key, &["--store", "North"]);
    primary.org = Some("Acme".into());
    primary.put("stock", "south-1", r#"{"qty":1}"#, Some("South"));
    till.sync();
    assert!(
        till.get("stock", "south-1").is_none(),
        "South is not the till's yet"
    );

    // The owner ticks South on the till's page; the till gets South's records.
    let site = format!("{org}/sites/{}", till.site_id);
    let shown = http_with(addr, "GET", &site, &[("Cookie", &owner)], None);
    assert_eq!(shown.status, 200, "{shown:?}");
    let (north, south) = (
        checkbox_of(&shown.body, "North"),
        checkbox_of(&shown.body, "South"),
    );
    let ticked = format!("{north}=on&{south}=on");
    assert_eq!(
        post(addr, &format!("{site}/assign"), &viewer, ticked.as_bytes()).status,
        403
    );
    let saved = post(addr, &format!("{site}/assign"), &owner, ticked.as_bytes());
    assert!(
        saved.status == 200 && saved.body.contains("saved"),
        "{saved:?}"
    );
    till.sync();
    assert!(
        till.get("stock", "south-1").is_some(),
        "South's record reached the till"
    );

    // Times read in the organisation's time zone, and how long ago.
    let zoned = post(
        addr,
        &format!("{org}/time-zone"),
        &owner,
        b"time_zone=Asia%2FTokyo",
    );
    assert!(zoned.body.contains("value=\"Asia/Tokyo\""), "{zoned:?}");
    // Contacts are written once a second.
    crate::harness::eventually("the site's last contact", Duration::from_secs(5), || {
        let shown = get(addr, &site, &owner).body;
        match shown.contains("just now · ") && shown.contains(" +09:00") {
            true => Ok(()),
            false => Err(shown),
        }
    });

    // Revoking asks for the site's name; a wrong one changes nothing.
    let wrong = post(addr, &format!("{site}/revoke"), &owner, b"name=tills");
    assert_eq!(wrong.status, 400, "{wrong:?}");
    till.sync();
    assert_eq!(
        post(addr, &format!("{site}/revoke"), &viewer, b"name=till").status,
        403
    );
    let revoked = post(addr, &format!("{site}/revoke"), &owner, b"name=till");
    assert!(
        revoked.status == 200 && revoked.body.contains("revoked"),
        "{revoked:?}"
    );
    let refused = till.cli(&["sync"]);
    assert_eq!(refused.code, Some(6), "{}", refused.describe());

    // Another organisation's member sees no trace of the site.
    let stranger = signed_up(&primary, "stranger@example.org");
    for path in [site.clone(), format!("{org}/sites"), org.clone()] {
        let seen = http_with(addr, "GET", &path, &[("Cookie", &stranger)], None);
        assert_eq!(seen.status, 404, "{path}: {seen:?}");
    }
    primary.stop();
}

/// The link to `path` in the newest mail to `to` in the primary's outbox, as a path.
fn mailed_path(primary: &Node, to: &str, path: &str) -> String {
    let outbox = primary.data.join("mail").join("outbox");
    let mut mails: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| {
            let at = e.metadata().and_then(|m| m.modified()).unwrap();
            (at, std::fs::read_to_string(e.path()).unwrap())
        })
        .filter(|(_, m)| m.contains(&format!("To: {to}")) && m.contains(&format!("/{path}/")))
        .collect();
    mails.sort();
    let mail = &mails
        .last()
        .unwrap_or_else(|| panic!("no /{path}/ mail to {to}"))
        .1;
    let start = mail.find(&format!("/{path}/")).unwrap();
    mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

/// The member id of `email` on a members page.
fn member_id(page: &str, email: &str) -> String {
    let row = page
        .split("data-testid=\"member-row\"")
        .find(|r| r.contains(&format!("<td>{email}</td>")))
        .unwrap_or_else(|| panic!("no row for {email}: {page}"));
    let start = row.find("data-member-id=\"").unwrap() + "data-member-id=\"".len();
    row[start..].chars().take_while(|c| *c != '"').collect()
}

#[test]
fn members_are_invited_by_mail_given_roles_and_removed_and_an_owner_always_stays() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    let members = format!("{org}/members");
    assert_eq!(
        get(addr, &members, &viewer).status,
        403,
        "viewers do not manage members"
    );
    let invited = post(
        addr,
        &format!("{members}/invite"),
        &owner,
        b"email=new%40example.org&role=manager",
    );
    assert!(
        invited.status == 200 && invited.body.contains("invitation was sent"),
        "{invited:?}"
    );

    // The invited address has no account: the link's page makes one and joins.
    let link = mailed_path(&primary, "new@example.org", "invite");
    let offer = http_with(addr, "GET", &link, &[], None);
    assert!(
        offer.status == 200 && offer.body.contains("Create account and join"),
        "{offer:?}"
    );
    let joined = http_with(
        addr,
        "POST",
        &link,
        &[FORM],
        Some(b"password=violet+umbrella+harbour+seventeen"),
    );
    assert_eq!(joined.status, 303, "{joined:?}");
    assert_eq!(joined.headers("location"), [org.as_str()]);
    let new = joined.headers("set-cookie")[0]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(
        key_on(&get(addr, &org, &new).body).is_some(),
        "a manager sees the key"
    );
    assert_eq!(
        http_with(addr, "POST", &link, &[FORM], Some(b"password=x")).status,
        404,
        "single use"
    );

    // The owner makes the new member admin; an admin may not touch owners.
    let page = get(addr, &members, &owner).body;
    let (new_id, owner_id) = (
        member_id(&page, "new@example.org"),
        member_id(&page, "owner@example.org"),
    );
    let changed = post(
        addr,
        &format!("{members}/{new_id}/role"),
        &owner,
        b"role=admin",
    );
    assert!(
        changed.status == 200 && changed.body.contains("member was changed"),
        "{changed:?}"
    );
    assert_eq!(
        post(
            addr,
            &format!("{members}/{new_id}/role"),
            &new,
            b"role=owner"
        )
        .status,
        403
    );
    assert_eq!(
        post(addr, &format!("{members}/{owner_id}/remove"), &new, b"").status,
        403
    );
    // The only owner cannot step down or leave.
    let alone = post(
        addr,
        &format!("{members}/{owner_id}/role"),
        &owner,
        b"role=admin",
    );
    assert!(
        alone.status == 400 && alone.body.contains("at least one owner"),
        "{alone:?}"
    );
    assert_eq!(
        post(addr, &format!("{members}/{owner_id}/remove"), &owner, b"").status,
        400
    );

    // An invitation for an address with an account is accepted signed in as it, only.
    post(
        addr,
        &format!("{members}/invite"),
        &owner,
        b"email=viewer%40example.org&role=manager",
    );
    let link = mailed_path(&primary, "viewer@example.org", "invite");
    let wrong = post(addr, &link, &new, b"");
    assert!(
        wrong.status == 400 && wrong.body.contains("sign in as that address"),
        "{wrong:?}"
    );
    assert!(
        get(addr, &link, &viewer).body.contains(">Join<"),
        "a Join button for the invited account"
    );
    assert_eq!(post(addr, &link, &viewer, b"").status, 303);
    assert!(
        key_on(&get(addr, &org, &viewer).body).is_some(),
        "the viewer is a manager now"
    );

    // Removed, the member's organisation is gone for it.
    assert_eq!(
        post(addr, &format!("{members}/{new_id}/remove"), &owner, b"").status,
        200
    );
    assert_eq!(get(addr, &org, &new).status, 404);
}

#[test]
fn the_operator_chooses_who_may_register_and_a_member_changes_their_password() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let (owner, _, org) = acme_with_a_viewer(&primary);
    let addr = primary.addr();

    // A password is changed with the current one; every other session ends.
    let other = signed_up_again(&primary, "owner@example.org");
    let wrong = post(
        addr,
        "/account/password",
        &owner,
        b"current=guess+work+here+now&password=amber+lantern+quietly+drifting",
    );
    assert!(
        wrong.status == 400 && wrong.body.contains("not right"),
        "{wrong:?}"
    );
    let changed = post(
        addr,
        "/account/password",
        &owner,
        b"current=violet+umbrella+harbour+seventeen&password=amber+lantern+quietly+drifting",
    );
    assert!(
        changed.status == 200 && changed.body.contains("password was changed"),
        "{changed:?}"
    );
    assert_eq!(
        http_with(addr, "GET", &org, &[("Cookie", &owner)], None).status,
        200,
        "this one goes on"
    );
    assert_eq!(
        http_with(addr, "GET", &org, &[("Cookie", &other)], None).status,
        303,
        "the other ended"
    );

    // Registration by invitation only: /register says so; an invitation still makes an
    // account. Closed: not even that.
    let code = primary.auth_code.clone();
    let invite_only = primary.cli(&[
        "settings",
        "set",
        "registration",
        "invite",
        "--auth-code",
        &code,
    ]);
    assert!(invite_only.success(), "{}", invite_only.describe());
    primary.stop();
    primary.serve();
    let addr = primary.addr();
    let form = http_with(addr, "GET", "/register", &[], None);
    assert!(
        form.status == 403 && form.body.contains("by invitation"),
        "{form:?}"
    );
    let body = b"email=eve%40example.org&password=violet+umbrella+harbour+seventeen";
    assert_eq!(
        http_with(addr, "POST", "/register", &[FORM], Some(body)).status,
        403
    );
    let owner = signed_up_again(&primary, "owner@example.org");
    let joined = invited_joins(&primary, &owner, &org, "eve@example.org");
    assert_eq!(
        joined.status, 303,
        "an invitation makes an account: {joined:?}"
    );

    let closed = primary.cli(&[
        "settings",
        "set",
        "registration",
        "closed",
        "--auth-code",
        &code,
    ]);
    assert!(closed.success(), "{}", closed.describe());
    primary.stop();
    primary.serve();
    let owner = signed_up_again(&primary, "owner@example.org");
    let refused = invited_joins(&primary, &owner, &org, "fay@example.org");
    assert_eq!(refused.status, 403, "{refused:?}");
    let wrong_value = primary.cli(&[
        "settings",
        "set",
        "registration",
        "sometimes",
        "--auth-code",
        &code,
    ]);
    assert_eq!(wrong_value.code, Some(2), "{}", wrong_value.describe());
}

/// The owner invites `email` as viewer; returns the answer to creating its account by
/// the invitation's link.
fn invited_joins(primary: &Node, owner: &str, org: &str, email: &str) -> crate::harness::Response {
    let addr = primary.addr();
    let body = format!("email={}&role=viewer", email.replace('@', "%40"));
    let invite = format!("{org}/members/invite");
    let sent = http_with(
        addr,
        "POST",
        &invite,
        &[FORM, ("Cookie", owner)],
        Some(body.as_bytes()),
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    let link = mailed_path(primary, email, "invite");
    http_with(
        addr,
        "POST",
        &link,
        &[FORM],
        Some(b"password=violet+umbrella+harbour+seventeen"),
    )
}

/// Signs in again an account made by [`signed_up`]; returns the new session's cookie.
fn signed_up_again(primary: &Node, email: &str) -> String {
    let body = format!("email={}&password=", email.replace('@', "%40"));
    for password in [
        "violet+umbrella+harbour+seventeen",
        "amber+lantern+quietly+drifting",
    ] {
        let full = format!("{body}{password}");
        let r = http_with(
            primary.addr(),
            "POST",
            "/login",
            &[FORM],
            Some(full.as_bytes()),
        );
        if r.status == 303 {
            return r.headers("set-cookie")[0]
                .split(';')
                .next()
                .unwrap()
                .to_string();
        }
    }
    panic!("{email} could not sign in again");
}

#[test]
fn the_switcher_lists_the_readers_organisations_and_home_opens_the_last_one_worked_in() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let owner = signed_up(&primary, "owner@example.org");
    let raised = primary.cli(&["account", "set-limit", "owner@example.org", "2"]);
    assert!(raised.success(), "{}", raised.describe());
    let addr = primary.addr();
    let made: Vec<String> = ["Acme", "Beta"]
        .iter()
        .map(|name| {
            let r = post(addr, "/orgs", &owner, format!("name={name}").as_bytes());
            assert_eq!(r.status, 303, "{r:?}");
            r.headers("location")[0].to_string()
        })
        .collect();
    let beta = get(addr, &made[1], &owner);
    assert_eq!(beta.status, 200);
    let page = &beta.body;
    let switcher = &page[page.find("class=\"switcher\"").expect("a switcher")..];
    let switcher = &switcher[..switcher.find("</details>").unwrap()];
    for (name, path) in ["Acme", "Beta"].iter().zip(&made) {
        assert!(
            switcher.contains(&format!("href=\"{path}\">{name}</a>")),
            "{switcher}"
        );
    }
    assert!(switcher.contains("<summary>Beta</summary>"), "{switcher}");
    let remembered = beta.headers("set-cookie")[0].to_string();
    let id = made[1].trim_start_matches("/orgs/");
    assert!(
        remembered.starts_with(&format!("org={id};")) && remembered.contains("Max-Age="),
        "{remembered}"
    );
    let home = |org: &str| {
        let cookies = format!("{owner}; org={org}");
        get(addr, "/", &cookies).headers("location")[0].to_string()
    };
    assert_eq!(
        home(id),
        made[1],
        "home opens the organisation last worked in"
    );
    let acme = made[0].trim_start_matches("/orgs/");
    assert_eq!(home(acme), made[0]);
    assert_eq!(home("999"), "/orgs", "not a member: the list instead");
    let signed_in = post(
        addr,
        "/login",
        "",
        b"email=owner%40example.org&password=violet+umbrella+harbour+seventeen",
    );
    assert_eq!(signed_in.headers("location")[0], "/", "{signed_in:?}");
}

#[test]
fn an_organisation_is_made_in_its_time_zone_which_only_an_admin_changes() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let owner = signed_up(&primary, "owner@example.org");
    let refused = post(addr, "/orgs", &owner, b"name=Acme&time_zone=Mars%2FOlympus");
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("is not a time zone"),
        "{}",
        refused.body
    );
    let in_russian = http_with(
        addr,
        "POST",
        "/orgs",
        &[
            FORM,
            ("Cookie", &owner),
            ("Accept-Language", "ru-RU,ru;q=0.9"),
        ],
        Some(b"name=Acme&time_zone=Mars%2FOlympus"),
    );
    assert!(
        in_russian.body.contains("«Mars/Olympus» — не часовой пояс"),
        "{}",
        in_russian.body
    );
    let listed = primary.cli(&["org", "list"]);
    assert!(
        !listed.stdout.contains("Acme"),
        "nothing made: {}",
        listed.describe()
    );
    let made = post(
        addr,
        "/orgs",
        &owner,
        b"name=Acme&time_zone=Europe%2FMoscow",
    );
    assert_eq!(made.status, 303, "{made:?}");
    let org = made.headers("location")[0].to_string();
    let page = get(addr, &org, &owner);
    assert!(
        page.body
            .contains("name=\"time_zone\" value=\"Europe/Moscow\""),
        "{}",
        page.body
    );
    let shown = primary.cli(&["org", "show", "Acme"]);
    assert!(
        shown.stdout.contains("time zone: Europe/Moscow"),
        "{}",
        shown.describe()
    );

    let viewer = signed_up(&primary, "viewer@example.org");
    grant(&primary, "viewer@example.org", "Acme", "viewer");
    let seen = get(addr, &org, &viewer);
    assert!(
        seen.body.contains("Time zone: Europe/Moscow") && !seen.body.contains("/time-zone\""),
        "{}",
        seen.body
    );
    let path = format!("{org}/time-zone");
    assert_eq!(post(addr, &path, &viewer, b"time_zone=UTC").status, 403);
    assert_eq!(post(addr, &path, &owner, b"time_zone=Nowhere").status, 400);
    let set = primary.cli(&["org", "time-zone", "Acme", "America/New_York"]);
    assert!(
        set.stdout.contains("America/New_York"),
        "{}",
        set.describe()
    );
    let wrong = primary
        .cli(&["org", "time-zone", "Acme", "New York"])
        .fails();
    assert!(wrong.contains("IANA"), "{wrong}");
    let made = primary.cli(&[
        "org",
        "create",
        "Beta",
        "--time-zone",
        "Asia/Tokyo",
        "--json",
    ]);
    assert_eq!(made.json()["time_zone"], "Asia/Tokyo");
}

/// The rows of an audit log page, as their cells' text.
fn audit_rows(page: &str) -> Vec<Vec<String>> {
    page.split("data-testid=\"audit-row\"")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or_default();
            row.split("<td>")
                .skip(1)
                .map(|cell| cell.split("</td>").next().unwrap_or_default().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_audit_log_shows_who_did_what_from_where_in_the_portal_and_at_the_command_line() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);

    // The owner fails to sign in once, then signs in; rotates the key and makes the
    // viewer a manager in the portal; the operator creates a store at the command line.
    let wrong = b"email=owner%40example.org&password=not+the+right+one+at+all";
    let right = b"email=owner%40example.org&password=violet+umbrella+harbour+seventeen";
    let failed = http_with(addr, "POST", "/login", &[FORM], Some(wrong));
    assert_eq!(failed.status, 401, "{failed:?}");
    assert_eq!(
        http_with(addr, "POST", "/login", &[FORM], Some(right)).status,
        303
    );
    assert_eq!(
        post(addr, &format!("{org}/rotate-key"), &owner, b"").status,
        200
    );
    let members = get(addr, &format!("{org}/members"), &owner);
    let member = member_id(&members.body, "viewer@example.org");
    let changed = post(
        addr,
        &format!("{org}/members/{member}/role"),
        &owner,
        b"role=manager",
    );
    assert_eq!(changed.status, 200, "{changed:?}");
    primary
        .cli(&["store", "create", "--org", "Acme", "North"])
        .ok();

    // The owner's audit page shows each, with who and from where.
    let page = get(addr, &format!("{org}/audit"), &owner);
    assert_eq!(page.status, 200, "{page:?}");
    let rows = audit_rows(&page.body);
    let shown = |what: &str, who: &str, from: &str| {
        rows.iter()
            .any(|r| r.len() == 5 && r[1] == who && r[2] == from && r[3] == what)
    };
    let owner_email = "owner@example.org";
    for (what, who, from) in [
        ("created a store", "operator (command line)", ""),
        ("changed a role", owner_email, "127.0.0.1"),
        ("rotated the sync key", owner_email, "127.0.0.1"),
        ("signed in", owner_email, "127.0.0.1"),
        ("failed to sign in", owner_email, "127.0.0.1"),
        ("created the organisation", owner_email, "127.0.0.1"),
    ] {
        assert!(shown(what, who, from), "no {what:?} by {who}: {rows:?}");
    }
    assert_eq!(rows[0][3], "created a store", "newest first: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r[4] == "viewer@example.org: viewer to manager")
    );
    assert!(
        page.body.contains(&format!("href=\"{org}/audit\"")),
        "the owner's tab"
    );
    let russian = http_with(
        addr,
        "GET",
        &format!("{org}/audit"),
        &[("Cookie", &owner), ("Accept-Language", "ru")],
        None,
    );
    assert!(
        russian.body.contains("сменил ключ синхронизации"),
        "{}",
        russian.body
    );

    // A manager (the viewer, promoted) has no link to it and is refused.
    let theirs = get(addr, &org, &viewer);
    assert!(
        theirs.status == 200 && !theirs.body.contains("/audit"),
        "{theirs:?}"
    );
    assert_eq!(get(addr, &format!("{org}/audit"), &viewer).status, 403);

    // The command line shows the portal's entries and its own.
    let listed = primary.cli(&["--json", "audit", "--org", "Acme"]).json();
    let entries = listed.as_array().expect("a list");
    let has = |action: &str, actor: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["actor"] == actor)
    };
    assert!(has("store_created", "operator (command line)"), "{listed}");
    assert!(has("key_rotated", owner_email) && has("login_failed", owner_email));
    assert!(entries.iter().any(|e| e["from"] == "127.0.0.1"), "{listed}");
    let text = primary
        .cli(&["audit", "--org", "Acme", "--limit", "2"])
        .ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two entries: {}", text.stdout);
    assert!(lines[1].contains("store_created") && lines[2].contains("role_changed"));

    // No password reached the audit table, right or wrong.
    let db = rusqlite::Connection::open(primary.data.join("sitesync.db")).expect("the database");
    let everything: String = db
        .query_row(
            "SELECT group_concat(actor || ' ' || coalesce(from_ip, '') || ' ' || action || ' ' || detail, '\n') FROM audit",
            [],
            |row| row.get(0),
        )
        .expect("the audit table");
    assert!(everything.contains("login_failed"), "{everything}");
    for password in ["violet umbrella", "not the right one"] {
        assert!(!everything.contains(password), "{everything}");
    }
}

#[test]
fn every_member_reads_the_licence_and_owners_are_warned_of_what_ends_soon() {
    let cluster = Cluster::new();
    let primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    let soon = sitesync_core::Day::of_ms(crate::harness::now_ms() + 5 * 86_400_000).to_string();
    let files = format!("files={soon}");
    let licence = [
        "org",
        "licence",
        "Acme",
        "--sites",
        "3",
        "--module",
        &files,
        "--expires",
        "2099-12-31",
    ];
    primary.cli(&licence).ok();

    let page = get(addr, &format!("{org}/licences"), &viewer);
    assert_eq!(page.status, 200, "{page:?}");
    for shown in [
        r#"data-module="files" data-state="module_on""#,
        r#"data-module="exchange-links" data-state="module_off""#,
        r#"data-testid="licence-sites">0 / 3<"#,
        r#"data-testid="licence-expires">2099-12-31<"#,
        r#"data-testid="licence-warning""#,
        soon.as_str(),
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not on the page: {}",
            page.body
        );
    }
    assert_eq!(
        page.body.matches("<form").count(),
        1,
        "nothing to change there but signing out"
    );
    let posted = post(addr, &format!("{org}/licences"), &owner, b"sites=9");
    assert_eq!(posted.status, 405, "{posted:?}");

    // The organisation's page links the licences for everyone, and warns owners only.
    let warned = |who: &str| {
        get(addr, &org, who)
            .body
            .contains("data-testid=\"licence-warning\"")
    };
    assert!(
        get(addr, &org, &viewer)
            .body
            .contains(&format!("href=\"{org}/licences\""))
    );
    assert!(warned(&owner) && !warned(&viewer));

    let ru = http_with(
        addr,
        "GET",
        &format!("{org}/licences"),
        &[("Cookie", &viewer), ("Accept-Language", "ru")],
        None,
    );
    assert!(
        ru.body.contains("Лицензии") && ru.body.contains("Файлы"),
        "{ru:?}"
    );
    let stranger = signed_up(&primary, "stranger@example.org");
    assert_eq!(get(addr, &format!("{org}/licences"), &stranger).status, 404);
}

#[test]
fn a_sites_page_says_its_version_its_rejected_changes_and_the_last_error_it_had() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    let key = key_on(&get(addr, &org, &owner).body).expect("the key");
    cluster.secret("sync key", &key);
    let till = cluster.satellite("till", &primary, &key, &[]);
    till.sync();
    // Offline, the till writes a price and cannot sync it.
    primary.kill();
    till.put("prices", "sneaked", r#"{"price":1}"#, None);
    let failed = till.cli(&["sync"]);
    assert!(!failed.success(), "{}", failed.describe());
    primary
        .cli(&["collection", "restrict", "prices", "--org", "Acme"])
        .ok();
    primary.set("listen", &addr.to_string()).ok();
    primary.serve();
    let report = till.sync();
    assert_eq!(report["rejected"].as_u64(), Some(1), "{report}");

    let site = format!("{org}/sites/{}", till.site_id);
    let version = format!("sitesync {}", env!("CARGO_PKG_VERSION"));
    let page = crate::harness::eventually("the till's report", Duration::from_secs(5), || {
        let page = get(addr, &site, &viewer).body;
        // Contacts, with what they report, are written once a second.
        match page.contains(&version) && page.contains("cannot reach primary") {
            true => Ok(page),
            false => Err(page),
        }
    });
    let row = |heading: &str| {
        let start = page
            .find(&format!("<th>{heading}</th><td>"))
            .expect(heading);
        page[start..]
            .split("</td>")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("Rejected").contains("1 · newest:") && row("Rejected").contains("restricted"),
        "{}",
        row("Rejected")
    );
    let error = row("Last error");
    assert!(
        error.contains("cannot reach primary")
            && error.contains(" · ")
            && error.contains(" +00:00"),
        "the till could not reach the primary, and said so when it could: {error}"
    );
    let table = get(addr, &format!("{org}/sites"), &viewer).body;
    assert!(
        table.contains(&format!("<td>{}</td>", env!("CARGO_PKG_VERSION"))),
        "{table}"
    );
    assert!(table.contains("class=\"bad\""), "{table}");
}

/// Runs `update` on the primary's database with `?1` = `minutes` in ms: times moved
/// back, as if that long had passed.
fn backdate(primary: &Node, update: &str, minutes: i64) {
    let db = rusqlite::Connection::open(primary.data.join("sitesync.db")).expect("the database");
    db.execute(update, [minutes * 60_000])
        .expect("times moved back");
}

/// Makes every site of the primary look quiet for `minutes` more.
fn quiet_for(primary: &Node, minutes: i64) {
    let update = "UPDATE sites SET last_contact = last_contact - ?1 WHERE last_contact IS NOT NULL";
    backdate(primary, update, minutes);
}

#[test]
fn when_a_quiet_site_is_stale_or_lost_is_the_operators_choice() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let addr = primary.addr();
    let (owner, _, org) = acme_with_a_viewer(&primary);
    let key = key_on(&get(addr, &org, &owner).body).expect("the key");
    cluster.secret("sync key", &key);
    let till = cluster.satellite("till", &primary, &key, &[]);
    till.sync();
    let health = |owner: &str| {
        let page = get(addr, &format!("{org}/sites"), owner).body;
        let start = page.find("class=\"health ").expect("a health cell") + 14;
        page[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    crate::harness::eventually(
        "the till's contact",
        Duration::from_secs(5),
        || match health(&owner).as_str() {
            "in_sync" => Ok(()),
            other => Err(other.to_string()),
        },
    );
    // Backdated while the primary is stopped: a running one may still count the till's
    // last (abandoned) long poll as a contact, and write it back when it stops.
    primary.stop();
    quiet_for(&primary, 10);
    primary.set("listen", &addr.to_string()).ok();
    primary.serve();
    assert_eq!(health(&owner), "late", "ten minutes quiet, by default");

    let refused = primary.set("site-stale-after", "soon").fails();
    assert!(refused.contains("like 30m"), "{refused}");
    let backwards = primary.set("site-lost-after", "12h").fails();
    assert!(backwards.contains("stale"), "{backwards}");
    primary.set("site-stale-after", "5m").ok();
    let shown = primary.cli(&["settings", "show"]);
    assert!(shown.stdout.contains("5m"), "{}", shown.describe());
    primary.stop();
    primary.set("listen", &addr.to_string()).ok();
    primary.serve();
    assert_eq!(health(&owner), "stale", "quiet for longer than 5m");
    primary.set("site-lost-after", "8m").ok();
    primary.stop();
    primary.set("listen", &addr.to_string()).ok();
    primary.serve();
    assert_eq!(health(&owner), "lost", "quiet for longer than 8m");
}

#[test]
fn a_self_signed_primarys_enrolment_command_pins_its_certificate_and_enrols_a_site() {
    let cluster = Cluster::new();
    let primary = cluster.primary_with(&["--self-signed"], &[]);
    let fingerprint = primary.tls_fingerprint.clone().expect("a fingerprint");
    let owner = signed_up(&primary, "owner@example.org");
    assert!(owner.starts_with("__Host-session="), "{owner}");
    let made = post(primary.addr(), "/orgs", &owner, b"name=Acme");
    let org = made.headers("location")[0].to_string();
    let page = get(primary.addr(), &org, &owner).body;
    let start = page
        .find("<pre id=\"enrol-command\">")
        .expect("the command")
        + 24;
    let command = page[start..].split("</pre>").next().unwrap_or_default();
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[..3], ["sitesync", "init", "satellite"], "{command}");
    let flag = |name: &str| {
        let at = args.iter().position(|a| *a == name).expect(name);
        args[at + 1].to_string()
    };
    assert_eq!(flag("--tls-fingerprint"), fingerprint, "{command}");
    assert_eq!(flag("--primary"), primary.url(), "{command}");
    let key = flag("--sync-key");
    cluster.secret("sync key", &key);
    // The command as shown enrols a real site over the pinned TLS.
    let till = cluster.satellite("till", &primary, &key, &["--tls-fingerprint", &fingerprint]);
    till.put("notes", "hello", r#"{"from":"till"}"#, None);
    till.sync();
    let other = Cluster::new();
    let plain = other.primary();
    let owner = signed_up(&plain, "owner@example.org");
    let made = post(plain.addr(), "/orgs", &owner, b"name=Acme");
    let page = get(plain.addr(), made.headers("location")[0], &owner).body;
    assert!(!page.contains("--tls-fingerprint"), "no pin without TLS");
}

#[test]
fn an_owner_deletes_the_organisation_after_revoking_its_sites_and_typing_its_name() {
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    let addr = primary.addr();
    let (owner, viewer, org) = acme_with_a_viewer(&primary);
    grant(&primary, "viewer@example.org", "Acme", "admin");
    let key = key_on(&get(addr, &org, &owner).body).expect("the key");
    cluster.secret("sync key", &key);
    let till = cluster.satellite("till", &primary, &key, &[]);
    primary.org = Some("Acme".into());
    primary.put("prices", "p1", r#"{"price":3}"#, None);
    till.sync();
    let delete = format!("{org}/delete");
    let page = get(addr, &org, &owner).body;
    assert!(
        page.contains(&format!("action=\"{delete}\"")),
        "owners see it"
    );
    let admin_page = get(addr, &org, &viewer).body;
    assert!(!admin_page.contains(&delete), "an admin does not");
    assert_eq!(post(addr, &delete, &viewer, b"name=Acme").status, 403);
    let wrong = post(addr, &delete, &owner, b"name=Acm");
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert!(
        wrong.body.contains("Type the organisation"),
        "{}",
        wrong.body
    );
    let enrolled = post(addr, &delete, &owner, b"name=Acme");
    assert_eq!(enrolled.status, 400, "{enrolled:?}");
    assert!(
        enrolled.body.contains("revoke them first"),
        "{}",
        enrolled.body
    );
    assert!(primary.get("prices", "p1").is_some(), "nothing deleted yet");

    let site = format!("{org}/sites/{}", till.site_id);
    assert_eq!(
        post(addr, &format!("{site}/revoke"), &owner, b"name=till").status,
        200
    );
    let deleted = post(addr, &delete, &owner, b"name=Acme");
    assert_eq!(deleted.status, 303, "{deleted:?}");
    assert_eq!(deleted.headers("location")[0], "/orgs");
    assert_eq!(get(addr, &org, &owner).status, 404);
    assert_eq!(get(addr, &org, &viewer).status, 404);
    let listed = primary.cli(&["org", "list"]);
    assert!(!listed.stdout.contains("Acme"), "{}", listed.describe());
    let audit = primary.cli(&["audit"]);
    assert!(audit.stdout.contains("org_deleted"), "{}", audit.describe());
    let refused = till.cli(&["sync"]);
    assert!(
        !refused.success(),
        "the till is refused: {}",
        refused.describe()
    );
    // The operator deletes one too, from the command line.
    primary.cli(&["org", "create", "Beta"]).ok();
    let wrong = primary
        .cli(&["org", "delete", "Beta", "--confirm", "beta"])
        .fails();
    assert!(wrong.contains("type the organisation's name"), "{wrong}");
    primary
        .cli(&["org", "delete", "Beta", "--confirm", "Beta"])
        .ok();
    assert!(!primary.cli(&["org", "list"]).stdout.contains("Beta"));
}
