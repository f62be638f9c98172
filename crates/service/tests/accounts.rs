//! The cloud account's people, on a real primary: registering and confirming by the
//! mailed link (read from the `.eml` file in the outbox), logging in and out, sessions
//! ending, resetting a password, and the operator's account commands.

mod common;

use sitesync_service::{Actor, ErrorKind, ServiceError, Site};

const NOW: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;
const GOOD: &str = "correct horse battery staple";
const OTHER: &str = "violet umbrella harbour seventeen";

/// Every mail in the outbox to `to`, oldest first, as written.
fn mails(site: &Site, to: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(site.outbox())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|m| m.contains(&format!("To: {to}")))
        .collect()
}

/// The token of the last link to `path` mailed to `to`.
fn link(site: &Site, to: &str, path: &str) -> String {
    let prefix = format!("https://sync.example.org/{path}/");
    let all = mails(site, to);
    let mail = all
        .iter()
        .rev()
        .find(|m| m.contains(&prefix))
        .expect("a mail with the link");
    let start = mail.find(&prefix).unwrap() + prefix.len();
    mail[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

fn kind(result: Result<impl std::fmt::Debug, ServiceError>) -> ErrorKind {
    result.expect_err("refused").kind()
}

#[test]
fn an_account_is_registered_confirmed_by_its_link_and_logs_in_and_out() {
    let f = common::primary();
    let site = &f.site;
    site.register("ann@example.org", GOOD, NOW).unwrap();
    let confirm = link(site, "ann@example.org", "confirm");
    assert_eq!(confirm.len(), 64, "256 random bits");
    // Not before the address is confirmed.
    let early = site.log_in("ann@example.org", GOOD, None, NOW).unwrap_err();
    assert!(
        early.to_string().contains("confirm your address"),
        "{early}"
    );
    let ann = site.confirm_address(&confirm, NOW + 1).unwrap();
    assert!(ann.confirmed);
    assert_eq!(
        kind(site.confirm_address(&confirm, NOW + 2)),
        ErrorKind::NotFound,
        "single use"
    );

    let session = site.log_in("Ann@Example.org", GOOD, None, NOW + 3).unwrap();
    assert_eq!(site.session(&session.token, NOW + 4).unwrap().id, ann.id);
    // Used within the hour it lives on; idle for an hour it ends; a day after login it ends.
    assert!(site.session(&session.token, NOW + 4 + HOUR - 1).is_ok());
    assert_eq!(
        kind(site.session(&session.token, NOW + 4 + 2 * HOUR)),
        ErrorKind::Unauthorised
    );
    let other = site
        .log_in("ann@example.org", GOOD, None, NOW + 10)
        .unwrap();
    let mut t = NOW + 10;
    while t < NOW + 10 + 24 * HOUR - HOUR {
        t += HOUR - 1;
        site.session(&other.token, t).unwrap();
    }
    assert_eq!(
        kind(site.session(&other.token, NOW + 10 + 24 * HOUR)),
        ErrorKind::Unauthorised
    );

    // Log out, and log out everywhere else (later: the sessions above have ended).
    let later = NOW + 30 * HOUR;
    let a = site.log_in("ann@example.org", GOOD, None, later).unwrap();
    let b = site
        .log_in("ann@example.org", GOOD, None, later + 1)
        .unwrap();
    let c = site
        .log_in("ann@example.org", GOOD, None, later + 2)
        .unwrap();
    site.log_out(&a.token).unwrap();
    assert!(site.session(&a.token, later + 3).is_err());
    assert_eq!(site.log_out_elsewhere(&b.token, later + 4).unwrap(), 1);
    assert!(site.session(&c.token, later + 5).is_err());
    assert!(site.session(&b.token, later + 5).is_ok());
}

#[test]
fn who_has_an_account_is_not_told_and_weak_passwords_are_refused_with_the_reason() {
    let f = common::primary();
    let site = &f.site;
    let short = site.register("bob@example.org", "short", NOW).unwrap_err();
    assert!(short.to_string().contains("at least 12"), "{short}");
    let common = site
        .register("bob@example.org", "password1234", NOW)
        .unwrap_err();
    assert!(common.to_string().contains("too easy to guess"), "{common}");
    let bad = site.register("not-an-address", GOOD, NOW).unwrap_err();
    assert!(bad.to_string().contains("not an e-mail address"), "{bad}");
    assert!(
        mails(site, "bob@example.org").is_empty(),
        "nothing happened"
    );

    site.register("bob@example.org", GOOD, NOW).unwrap();
    // Registering again answers the same; the mail tells the owner instead.
    site.register("BOB@example.org", OTHER, NOW).unwrap();
    let sent = mails(site, "BOB@example.org");
    assert!(sent.last().unwrap().contains("has an account already"));

    let confirm = link(site, "bob@example.org", "confirm");
    site.confirm_address(&confirm, NOW).unwrap();
    let wrong_password = site
        .log_in("bob@example.org", OTHER, None, NOW)
        .unwrap_err();
    let no_account = site
        .log_in("nobody@example.org", OTHER, None, NOW)
        .unwrap_err();
    assert_eq!(wrong_password.to_string(), no_account.to_string());
    assert_eq!(wrong_password.kind(), ErrorKind::Unauthorised);
    // A reset asked for an address without an account answers the same, and sends nothing.
    site.ask_reset("nobody@example.org", NOW).unwrap();
    assert!(mails(site, "nobody@example.org").is_empty());
}

#[test]
fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let f = common::primary();
    let site = &f.site;
    site.register("cat@example.org", GOOD, NOW).unwrap();
    site.confirm_address(&link(site, "cat@example.org", "confirm"), NOW)
        .unwrap();
    let session = site.log_in("cat@example.org", GOOD, None, NOW).unwrap();

    site.ask_reset("cat@example.org", NOW).unwrap();
    let reset = link(site, "cat@example.org", "reset");
    let weak = site
        .reset_password(&reset, "password1234", NOW + 1)
        .unwrap_err();
    assert!(weak.to_string().contains("too easy"), "{weak}");
    // A refused password does not spend the link; an expired link is refused.
    assert_eq!(
        kind(site.reset_password(&reset, OTHER, NOW + 31 * 60_000)),
        ErrorKind::NotFound
    );
    site.reset_password(&reset, OTHER, NOW + 2).unwrap();
    assert_eq!(
        kind(site.reset_password(&reset, GOOD, NOW + 3)),
        ErrorKind::NotFound,
        "single use"
    );
    assert!(
        site.session(&session.token, NOW + 3).is_err(),
        "every session ended"
    );
    assert!(site.log_in("cat@example.org", GOOD, None, NOW + 4).is_err());
    site.log_in("cat@example.org", OTHER, None, NOW + 4)
        .unwrap();
    assert!(
        mails(site, "cat@example.org")
            .last()
            .unwrap()
            .contains("was changed")
    );
}

#[test]
fn the_operator_makes_accounts_grants_roles_and_disables_them() {
    let f = common::primary();
    let site = &f.site;
    site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let dan = site
        .create_account(Actor::Operator, "dan@example.org", NOW)
        .unwrap();
    assert!(dan.confirmed);
    assert_eq!(
        kind(site.create_account(Actor::Operator, "DAN@example.org", NOW)),
        ErrorKind::Taken
    );
    assert_eq!(
        kind(site.create_account(Actor::Site(2), "eve@example.org", NOW)),
        ErrorKind::Forbidden
    );
    // The operator's account gets a link to set its password, good for a week.
    let set = link(site, "dan@example.org", "reset");
    site.reset_password(&set, GOOD, NOW + 6 * 24 * HOUR)
        .unwrap();
    let session = site
        .log_in("dan@example.org", GOOD, None, NOW + 6 * 24 * HOUR)
        .unwrap();

    let (_, role) = site
        .grant(Actor::Operator, "dan@example.org", "Acme", "Owner")
        .unwrap();
    assert_eq!(role.name(), "owner");
    let orgs = site.memberships(&dan).unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(
        (orgs[0].0.name.as_str(), orgs[0].1.name()),
        ("Acme", "owner")
    );
    let bad_role = site
        .grant(Actor::Operator, "dan@example.org", "Acme", "king")
        .unwrap_err();
    assert!(
        bad_role
            .to_string()
            .contains("viewer, manager, admin, owner"),
        "{bad_role}"
    );

    assert_eq!(
        site.set_org_limit(Actor::Operator, "dan@example.org", 3)
            .unwrap()
            .org_limit,
        3
    );
    site.disable_account(Actor::Operator, "dan@example.org", true)
        .unwrap();
    assert!(site.session(&session.token, NOW + 6 * 24 * HOUR).is_err());
    assert_eq!(
        kind(site.log_in("dan@example.org", GOOD, None, NOW + 6 * 24 * HOUR)),
        ErrorKind::Unauthorised
    );
    let listed = site.accounts(Actor::Operator).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].disabled);
}

/// An account made by the operator, with `GOOD` set as its password by the mailed link.
fn account_with_password(site: &Site, email: &str) -> sitesync_service::Account {
    site.create_account(Actor::Operator, email, NOW).unwrap();
    site.reset_password(&link(site, email, "reset"), GOOD, NOW + 1)
        .unwrap()
}

#[test]
fn a_member_acts_only_in_its_organisation_as_far_as_its_role_goes_and_every_change_is_audited() {
    let f = common::primary();
    let site = &f.site;
    site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let other = site
        .create_org(Actor::Operator, "Other", NOW)
        .unwrap()
        .org
        .id;
    let ann = account_with_password(site, "ann@example.org");
    let vic = account_with_password(site, "vic@example.org");
    let zed = account_with_password(site, "zed@example.org");
    site.grant(Actor::Operator, "ann@example.org", "Acme", "admin")
        .unwrap();
    site.grant(Actor::Operator, "vic@example.org", "Acme", "viewer")
        .unwrap();
    site.grant(Actor::Operator, "zed@example.org", "Other", "owner")
        .unwrap();
    let from = Some("192.0.2.7".parse().unwrap());
    let acme = site.membership(&ann, 1).unwrap().org.id;
    let admin = site.membership(&ann, acme).unwrap().actor(from);
    let viewer = site.membership(&vic, acme).unwrap().actor(None);
    assert_eq!(
        admin.to_string(),
        format!("account {} (admin of organisation {acme})", ann.id)
    );

    // A viewer may look, not change; nobody reaches another organisation (404).
    assert!(site.stores(viewer, "Acme").unwrap().is_empty());
    assert_eq!(
        kind(site.create_store(viewer, "Acme", "North")),
        ErrorKind::Forbidden
    );
    assert_eq!(kind(site.rotate_key(viewer, "Acme")), ErrorKind::Forbidden);
    assert_eq!(
        kind(site.audit_log(viewer, Some("Acme"), None, 10)),
        ErrorKind::Forbidden
    );
    assert_eq!(kind(site.rotate_key(admin, "Other")), ErrorKind::NotFound);
    assert_eq!(
        kind(site.create_store(admin, &other.to_string(), "X")),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(site.audit_log(admin, Some("Other"), None, 10)),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(site.audit_log(admin, None, None, 10)),
        ErrorKind::Forbidden
    );
    // An admin manages members but not owners.
    assert_eq!(
        kind(site.set_role(admin, acme, vic.id, "owner")),
        ErrorKind::Forbidden
    );

    // What the admin does, and signing in, goes into Acme's log, newest first.
    site.create_store(admin, "Acme", "North").unwrap();
    site.rotate_key(admin, "Acme").unwrap();
    site.set_role(admin, acme, vic.id, "manager").unwrap();
    site.invite(admin, acme, ("new@example.org", "viewer"), NOW)
        .unwrap();
    site.remove_member(admin, acme, vic.id).unwrap();
    let wrong = site
        .log_in("ann@example.org", OTHER, from, NOW + 2)
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Unauthorised);
    site.log_in("ann@example.org", GOOD, from, NOW + 3).unwrap();
    site.log_in("zed@example.org", GOOD, None, NOW + 4).unwrap();
    site.log_in("nobody@example.org", GOOD, None, NOW + 5)
        .unwrap_err();
    site.create_store(Actor::Operator, "Other", "Far").unwrap();

    let log = site.audit_log(admin, Some("Acme"), None, 100).unwrap();
    let lines: Vec<(&str, &str, Option<&str>, &str)> = log
        .iter()
        .map(|e| {
            let a = &e.audit;
            (
                a.action.name(),
                a.actor.as_str(),
                a.from.as_deref(),
                a.detail.as_str(),
            )
        })
        .collect();
    let ip = Some("192.0.2.7");
    assert_eq!(
        lines,
        [
            ("login", "ann@example.org", ip, ""),
            ("login_failed", "ann@example.org", ip, "wrong password"),
            (
                "member_removed",
                "ann@example.org",
                ip,
                "vic@example.org (manager)"
            ),
            (
                "member_invited",
                "ann@example.org",
                ip,
                "new@example.org as viewer"
            ),
            (
                "role_changed",
                "ann@example.org",
                ip,
                "vic@example.org: viewer to manager"
            ),
            ("key_rotated", "ann@example.org", ip, "generation 2"),
            ("store_created", "ann@example.org", ip, "North (1)"),
            (
                "role_changed",
                "operator (command line)",
                None,
                "vic@example.org: granted viewer"
            ),
            (
                "role_changed",
                "operator (command line)",
                None,
                "ann@example.org: granted admin"
            ),
            ("password_reset", "ann@example.org", None, ""),
            ("org_created", "operator (command line)", None, "Acme"),
        ],
        "Acme's log holds no entry of Other, nor of its owner's sign-in, nor of a member gone"
    );
    // Paged by id: the next page starts below the last entry of the one before.
    let first = site.audit_log(admin, Some("Acme"), None, 5).unwrap();
    let next = site
        .audit_log(admin, Some("Acme"), Some(first[4].id), 5)
        .unwrap();
    assert_eq!(first[..], log[..5]);
    assert_eq!(next[..], log[5..10]);

    // The operator's log holds every entry: the unknown address typed, the setting
    // changed (named, its value only when it is not a secret), the account disabled.
    sitesync_service::set_setting(
        &f.dir,
        Actor::Operator,
        ("registration", "invite"),
        common::CODE,
    )
    .unwrap();
    sitesync_service::set_setting(
        &f.dir,
        Actor::Operator,
        ("auth-code", "new-secret-code-1"),
        common::CODE,
    )
    .unwrap();
    site.disable_account(Actor::Operator, "zed@example.org", true)
        .unwrap();
    let all = site.audit_log(Actor::Operator, None, None, 100).unwrap();
    let newest: Vec<(&str, &str)> = all[..4]
        .iter()
        .map(|e| (e.audit.action.name(), e.audit.detail.as_str()))
        .collect();
    assert_eq!(
        newest,
        [
            ("account_disabled", "zed@example.org: disabled"),
            ("setting_changed", "auth-code"),
            ("setting_changed", "registration = invite"),
            ("store_created", "Far (2)"),
        ]
    );
    assert_eq!(
        all[0].audit.account,
        Some(zed.id),
        "about the account disabled"
    );
    assert!(all.iter().any(|e| e.audit.actor == "nobody@example.org"
        && e.audit.detail == "no such account"
        && e.audit.account.is_none()));
    for e in &all {
        let a = &e.audit;
        for secret in [GOOD, OTHER, "new-secret-code-1"] {
            assert!(
                !a.detail.contains(secret) && !a.actor.contains(secret),
                "{a:?}"
            );
        }
    }
}

#[test]
fn an_address_changes_only_by_the_link_mailed_to_it_and_the_old_one_is_told() {
    let f = common::primary();
    let site = &f.site;
    let ann = account_with_password(site, "ann@example.org");
    account_with_password(site, "bob@example.org");
    let here = site.log_in("ann@example.org", GOOD, None, NOW + 2).unwrap();
    let there = site.log_in("ann@example.org", GOOD, None, NOW + 3).unwrap();

    // The current password is asked for; the address must be one, and another.
    let wrong = site
        .ask_email_change(&here.token, ("ann@new.example", OTHER), NOW + 4)
        .unwrap_err();
    assert!(wrong.to_string().contains("not right"), "{wrong}");
    let same = site.ask_email_change(&here.token, ("ANN@example.org", GOOD), NOW + 4);
    assert!(same.unwrap_err().to_string().contains("already"));
    let bad = site.ask_email_change(&here.token, ("nowhere", GOOD), NOW + 4);
    assert_eq!(kind(bad), ErrorKind::InvalidInput);
    assert!(mails(site, "ann@new.example").is_empty(), "nothing sent");

    // A taken address answers the same; its owner is told, and no link goes out.
    site.ask_email_change(&here.token, ("bob@example.org", GOOD), NOW + 5)
        .unwrap();
    let told = mails(site, "bob@example.org");
    assert!(told.last().unwrap().contains("has an account already"));
    assert!(!told.last().unwrap().contains("/email/"));

    // A free one gets a link; until it is followed the old address stays.
    site.ask_email_change(&here.token, ("ann@new.example", GOOD), NOW + 6)
        .unwrap();
    let change = link(site, "ann@new.example", "email");
    assert_eq!(
        site.session(&here.token, NOW + 7).unwrap().email,
        "ann@example.org"
    );
    let from = Some("192.0.2.9".parse().unwrap());
    let moved = site
        .change_email(&change, Some(&here.token), from, NOW + 8)
        .unwrap();
    assert_eq!(
        (moved.id, moved.email.as_str()),
        (ann.id, "ann@new.example")
    );
    assert!(
        site.session(&here.token, NOW + 9).is_ok(),
        "this session goes on"
    );
    assert!(
        site.session(&there.token, NOW + 9).is_err(),
        "the other ended"
    );
    assert_eq!(
        kind(site.change_email(&change, None, None, NOW + 9)),
        ErrorKind::NotFound,
        "single use"
    );
    let old = mails(site, "ann@example.org");
    assert!(
        old.last()
            .unwrap()
            .contains("was changed from ann@example.org to ann@new.example")
    );
    assert!(
        site.log_in("ann@example.org", GOOD, None, NOW + 10)
            .is_err()
    );
    site.log_in("ann@new.example", GOOD, None, NOW + 10)
        .unwrap();
    let log = site.audit_log(Actor::Operator, None, None, 5).unwrap();
    let entry = log
        .iter()
        .find(|e| e.audit.action.name() == "email_changed")
        .expect("audited");
    assert_eq!(
        (
            entry.audit.account,
            entry.audit.from.as_deref(),
            entry.audit.detail.as_str()
        ),
        (
            Some(ann.id),
            Some("192.0.2.9"),
            "ann@example.org to ann@new.example"
        )
    );

    // An address that got an account between the asking and the link is refused.
    site.ask_email_change(&here.token, ("cat@example.org", GOOD), NOW + 11)
        .unwrap();
    let late = link(site, "cat@example.org", "email");
    site.register("cat@example.org", OTHER, NOW + 12).unwrap();
    assert_eq!(
        kind(site.change_email(&late, None, None, NOW + 13)),
        ErrorKind::Taken
    );
    assert_eq!(
        site.session(&here.token, NOW + 14).unwrap().email,
        "ann@new.example"
    );

    // A link lasts 7 days.
    site.ask_email_change(&here.token, ("ann@third.example", GOOD), NOW + 15)
        .unwrap();
    let stale = link(site, "ann@third.example", "email");
    assert_eq!(
        kind(site.change_email(&stale, None, None, NOW + 15 + 7 * 24 * HOUR)),
        ErrorKind::NotFound
    );
}

#[test]
fn an_account_keeps_the_language_it_chose() {
    let f = common::primary();
    let site = &f.site;
    account_with_password(site, "ann@example.org");
    let s = site.log_in("ann@example.org", GOOD, None, NOW + 2).unwrap();
    assert_eq!(s.account.language, None, "the browser's at first");
    let chosen = site.set_language(&s.token, Some("RU"), NOW + 3).unwrap();
    assert_eq!(chosen.language.as_deref(), Some("ru"));
    assert_eq!(
        site.session(&s.token, NOW + 4).unwrap().language.as_deref(),
        Some("ru")
    );
    assert_eq!(
        kind(site.set_language(&s.token, Some("<script>"), NOW + 5)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        site.set_language(&s.token, None, NOW + 6).unwrap().language,
        None
    );
}

#[test]
fn sessions_last_as_long_as_config_toml_says_and_nonsense_is_refused() {
    let f = common::primary();
    account_with_password(&f.site, "ann@example.org");
    let set = |key: &str, value: &str| {
        sitesync_service::set_setting(&f.dir, Actor::Operator, (key, value), common::CODE)
    };
    for (key, bad, says) in [
        ("session-idle", "soon", "like 30m, 2h or 1d"),
        ("session-idle", "0m", "from 5m to 7d"),
        ("session-idle", "30d", "from 5m to 7d"),
        ("session-lifetime", "1000d", "from 5m to 90d"),
        (
            "session-idle",
            "2d",
            "cannot be longer than the session lifetime",
        ),
    ] {
        let refused = set(key, bad).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{key} {bad}");
        assert!(refused.to_string().contains(says), "{key} {bad}: {refused}");
    }
    set("session-idle", "30m").unwrap();
    set("session-lifetime", "12h").unwrap();
    let site = Site::open(f.dir.clone()).unwrap();
    let shown = site.settings(Actor::Operator).unwrap();
    for row in [("session-idle", "30m"), ("session-lifetime", "12h")] {
        assert!(shown.contains(&(row.0.into(), row.1.into())), "{shown:?}");
    }
    let text = std::fs::read_to_string(f.dir.config_path()).unwrap();
    assert!(
        text.contains("[sessions]\nidle = \"30m\"\nlifetime = \"12h\""),
        "{text}"
    );

    // Unused for 30 minutes a session ends; used every 29 it lives 12 hours.
    let minute = 60_000;
    let idle = site.log_in("ann@example.org", GOOD, None, NOW).unwrap();
    assert!(site.session(&idle.token, NOW + 29 * minute).is_ok());
    assert_eq!(
        kind(site.session(&idle.token, NOW + 60 * minute)),
        ErrorKind::Unauthorised
    );
    let busy = site.log_in("ann@example.org", GOOD, None, NOW).unwrap();
    let mut t = NOW;
    while t + 29 * minute < NOW + 12 * HOUR {
        t += 29 * minute;
        site.session(&busy.token, t).unwrap();
    }
    assert_eq!(
        kind(site.session(&busy.token, NOW + 12 * HOUR)),
        ErrorKind::Unauthorised
    );
    assert!(site.sessions(&idle.token, NOW + 60 * minute).is_err());
}

/// An account made with [`account_with_password`] and given `role` in Acme (id 1),
/// acting there.
fn acme_member(site: &Site, email: &str, role: &str) -> (sitesync_service::Account, Actor) {
    let account = account_with_password(site, email);
    site.grant(Actor::Operator, email, "Acme", role).unwrap();
    let actor = site.membership(&account, 1).unwrap().actor(None);
    (account, actor)
}

#[test]
fn an_admin_sees_pending_invitations_and_withdraws_them() {
    let f = common::primary();
    let site = &f.site;
    site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let (_, owner) = acme_member(site, "ann@example.org", "owner");
    let (vic, admin) = acme_member(site, "vic@example.org", "admin");
    site.invite(owner, 1, ("boss@example.org", "owner"), NOW)
        .unwrap();
    site.invite(admin, 1, ("new@example.org", "viewer"), NOW + 1)
        .unwrap();
    site.invite(admin, 1, ("old@example.org", "viewer"), NOW - 8 * 24 * HOUR)
        .unwrap();
    let pending = site.invitations(admin, 1, NOW + 2).unwrap();
    let seen: Vec<(&str, &str, &str)> = pending
        .iter()
        .map(|i| (i.email.as_str(), i.role.name(), i.invited_by.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("boss@example.org", "owner", "ann@example.org"),
            ("new@example.org", "viewer", "vic@example.org"),
        ],
        "not the expired one"
    );
    assert_eq!(pending[1].expires_at, NOW + 1 + 7 * 24 * HOUR);

    // An admin withdraws a viewer's invitation, not an owner's; its link stops working.
    assert_eq!(
        kind(site.withdraw_invitation(admin, 1, &pending[0].id, NOW + 3)),
        ErrorKind::Forbidden
    );
    let link_token = link(site, "new@example.org", "invite");
    site.withdraw_invitation(admin, 1, &pending[1].id, NOW + 3)
        .unwrap();
    assert_eq!(
        kind(site.invitation(&link_token, NOW + 4)),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(site.withdraw_invitation(admin, 1, &pending[1].id, NOW + 4)),
        ErrorKind::NotFound
    );
    site.withdraw_invitation(owner, 1, &pending[0].id, NOW + 5)
        .unwrap();
    assert!(site.invitations(owner, 1, NOW + 6).unwrap().is_empty());
    let log = site.audit_log(owner, Some("Acme"), None, 2).unwrap();
    let newest: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.audit.action.name(),
                e.audit.actor.as_str(),
                e.audit.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        newest,
        [
            (
                "invitation_withdrawn",
                "ann@example.org",
                "boss@example.org as owner"
            ),
            (
                "invitation_withdrawn",
                "vic@example.org",
                "new@example.org as viewer"
            ),
        ]
    );
    let viewer = {
        site.grant(Actor::Operator, "vic@example.org", "Acme", "viewer")
            .unwrap();
        site.membership(&vic, 1).unwrap().actor(None)
    };
    assert_eq!(kind(site.invitations(viewer, 1, NOW)), ErrorKind::Forbidden);
}
