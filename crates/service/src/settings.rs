//! `sitesync settings`: the sync settings, locked behind the authorisation code as in
//! mSupply's synchronisation preferences.

use crate::actor::Actor;
use crate::config::{
    Config, DataDir, MailSettings, Registration, Role, SessionSettings, SmtpSecurity, Span,
    check_auth_code, check_listen, check_primary_url,
};
use crate::error::ServiceError;
use crate::mail::{SMTP_PASSWORD, check_mailbox};
use crate::secrets::{code_hash, code_matches, random_hex, seal, token_hash};
use crate::site::Site;
use sitesync_core::validate;
use sitesync_store::AuditAction;

/// The settings `settings set` changes.
pub const KEYS: &[&str] = &[
    "primary-url",
    "listen",
    "name",
    "auth-code",
    "api-token",
    "public-url",
    "registration",
    "mail-from",
    "smtp",
    "smtp-security",
    "smtp-user",
    "smtp-password",
    "smtp-ca",
    "session-idle",
    "session-lifetime",
    "site-stale-after",
    "site-lost-after",
    "file-max-size",
    "org-files-max-size",
    "file-grace",
];

impl Site {
    /// The settings as (key, value) pairs; secrets appear only as "set (stored hashed)".
    pub fn settings(&self, actor: Actor) -> Result<Vec<(String, String)>, ServiceError> {
        actor.local("read this site's settings")?;
        let config = &self.config;
        let mut rows = vec![
            ("role", format!("{:?}", config.role).to_lowercase()),
            ("site-id", config.site_id.to_string()),
            ("name", config.name.clone()),
            ("listen", config.listen.clone()),
        ];
        if config.role == Role::Satellite {
            let sc = self.site_config()?;
            rows.push((
                "primary-url",
                config.primary_url.clone().unwrap_or_default(),
            ));
            rows.push(("organisation", config.org_name.clone().unwrap_or_default()));
            let stores: Vec<String> = sc.stores.into_iter().map(|s| s.name).collect();
            rows.push((
                "stores",
                if sc.all_stores {
                    "all".to_string()
                } else {
                    stores.join(", ")
                },
            ));
            rows.push(("site-credential", "set (in site.key, 0600)".to_string()));
        }
        if config.role == Role::Primary {
            let url = config.public_url.clone();
            rows.push((
                "public-url",
                url.unwrap_or_else(|| "(the listen address)".into()),
            ));
            let registration = format!("{:?}", self.registration()).to_lowercase();
            rows.push(("registration", registration));
            rows.extend(mail_rows(config.mail.clone().unwrap_or_default()));
            let sessions = config.sessions.clone().unwrap_or_default();
            rows.push(("session-idle", sessions.idle().to_string()));
            rows.push(("session-lifetime", sessions.lifetime().to_string()));
            let sites = config.sites.clone().unwrap_or_default();
            rows.push(("site-stale-after", sites.stale_after().to_string()));
            rows.push(("site-lost-after", sites.lost_after().to_string()));
        }
        let files = config.files.clone().unwrap_or_default();
        rows.push(("file-max-size", size_text(files.max_file_size())));
        rows.push(("org-files-max-size", size_text(files.max_org_size())));
        let grace = files.grace.unwrap_or(crate::FileSettings::GRACE);
        rows.push(("file-grace", grace.to_string()));
        rows.push(("auth-code", "set (stored hashed)".to_string()));
        rows.push(("api-token", "set (stored hashed)".to_string()));
        Ok(rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// Changes one setting after checking the authorisation code, whoever asks: the lock
/// guards the sync settings even against people at this machine. Returns a message for
/// the person (with a new API token, shown once). A wrong code changes nothing.
///
/// Works on the data folder rather than an opened [`Site`]: a folder whose database
/// cannot be opened can still have its settings repaired.
pub fn set_setting(
    dir: &DataDir,
    actor: Actor,
    (key, value): (&str, &str),
    auth_code: &str,
) -> Result<String, ServiceError> {
    actor.local("change this site's settings")?;
    let mut config = dir.load()?;
    if !code_matches(auth_code, &config.auth_code_hash)? {
        tracing::warn!(
            setting = key,
            %actor,
            "settings change with a wrong authorisation code"
        );
        return Err(ServiceError::WrongAuthCode);
    }
    let message = match key {
        "mail-from" | "smtp" | "smtp-security" | "smtp-user" | "smtp-password" | "smtp-ca" => {
            change_mail(dir, &mut config, key, value)?
        }
        "session-idle" | "session-lifetime" => change_sessions(&mut config, key, value)?,
        "site-stale-after" | "site-lost-after" => change_site_health(&mut config, key, value)?,
        "file-max-size" | "org-files-max-size" | "file-grace" => {
            change_files(&mut config, key, value)?
        }
        _ => change(&mut config, key, value)?,
    };
    dir.save(&config)?;
    tracing::info!(setting = key, %actor, "setting changed");
    if config.role == Role::Primary {
        audit_setting(dir, actor, key, value);
    }
    Ok(message)
}

/// The settings whose values the audit log may show: no secret, nor anything that may
/// carry one. Any other key (the authorisation code, the API token, the SMTP account
/// and password, and keys added later) is noted by its name alone.
const SHOWN_IN_AUDIT: &[&str] = &[
    "primary-url",
    "listen",
    "name",
    "public-url",
    "registration",
    "mail-from",
    "smtp",
    "smtp-security",
    "session-idle",
    "session-lifetime",
    "site-stale-after",
    "site-lost-after",
];

/// Notes a changed setting in the primary's audit log: the key, and the value only when
/// it is not a secret. The change is made already, and a folder whose database does not
/// open must stay repairable, so a failure here is logged rather than returned.
fn audit_setting(dir: &DataDir, actor: Actor, key: &str, value: &str) {
    let detail = match SHOWN_IN_AUDIT.contains(&key) {
        true => format!("{key} = {value}"),
        false => key.to_string(),
    };
    let noted = Site::open(dir.clone()).and_then(|site| {
        let action = AuditAction::SettingChanged;
        site.audit(actor, None, action, detail)
    });
    if let Err(error) = noted {
        tracing::warn!(setting = key, %error, "the setting changed, but the audit log could not be written");
    }
}

/// Applies one setting to `config`; returns the message for the person.
fn change(config: &mut Config, key: &str, value: &str) -> Result<String, ServiceError> {
    let mut message = format!("{key} changed; restart `sitesync serve` if it is running");
    match key {
        "primary-url" if config.role == Role::Satellite => {
            check_primary_url(value).map_err(ServiceError::Input)?;
            config.primary_url = Some(crate::config::primary_urls(value));
        }
        "primary-url" => {
            return Err(ServiceError::Input("the primary has no primary-url".into()));
        }
        "listen" => {
            check_listen(value).map_err(ServiceError::Input)?;
            config.listen = value.to_string();
        }
        "name" => {
            validate::name("site name", value)?;
            config.name = value.to_string();
        }
        "auth-code" => {
            check_auth_code(value).map_err(ServiceError::Input)?;
            config.auth_code_hash = code_hash(value.trim())?;
            message = "auth-code changed".to_string();
        }
        "api-token" => {
            if value != "new" {
                return Err(ServiceError::Input(
                    "use `settings set api-token new` to make a new token".into(),
                ));
            }
            let token = random_hex(32)?;
            config.api_token_hash = token_hash(&token);
            message = format!(
                "new API token (shown once): {token}\nrestart `sitesync serve` if it is running"
            );
        }
        "public-url" | "registration" if config.role != Role::Primary => {
            return Err(ServiceError::Input(format!(
                "{key} is the portal's, on the primary"
            )));
        }
        "public-url" => {
            check_primary_url(value).map_err(ServiceError::Input)?;
            config.public_url = Some(value.trim_end_matches('/').to_string());
        }
        "registration" => {
            let chosen = match value.trim() {
                "open" => Registration::Open,
                "invite" => Registration::Invite,
                "closed" => Registration::Closed,
                other => {
                    return Err(ServiceError::Input(format!(
                        "{other:?} is not a registration policy: open (anyone registers), invite (only by an invitation's link) or closed (the operator makes accounts)"
                    )));
                }
            };
            config.registration = Some(chosen);
        }
        "site-id" | "stores" | "organisation" => {
            return Err(ServiceError::Input(format!(
                "{key} is set by the primary: enrol again with `sitesync init satellite`, or change stores with `sitesync site assign` on the primary"
            )));
        }
        _ => {
            return Err(ServiceError::Input(format!(
                "unknown setting {key:?}; settings are {}",
                KEYS.join(", ")
            )));
        }
    }
    Ok(message)
}

/// Sets how long the portal's sessions last: `session-idle` (a session unused this long
/// ends) or `session-lifetime` (it ends this long after its sign-in), as `30m`, `2h`,
/// `1d`. The idle timeout cannot be longer than the lifetime.
fn change_sessions(config: &mut Config, key: &str, value: &str) -> Result<String, ServiceError> {
    if config.role != Role::Primary {
        return Err(ServiceError::Input(format!(
            "{key} is the portal's, on the primary"
        )));
    }
    let span = Span::parse(value).map_err(ServiceError::Input)?;
    let mut sessions = config.sessions.clone().unwrap_or_default();
    let (least, most) = (SessionSettings::LEAST, SessionSettings::MOST_LIFETIME);
    match key {
        "session-idle" => {
            let most = SessionSettings::MOST_IDLE;
            let what = "an idle timeout";
            sessions.idle = Some(
                span.within(what, least, most)
                    .map_err(ServiceError::Input)?,
            );
        }
        _ => {
            let what = "a session lifetime";
            sessions.lifetime = Some(
                span.within(what, least, most)
                    .map_err(ServiceError::Input)?,
            );
        }
    }
    if sessions.idle().ms() > sessions.lifetime().ms() {
        return Err(ServiceError::Input(format!(
            "the idle timeout ({}) cannot be longer than the session lifetime ({}): shorten it, or lengthen the lifetime first",
            sessions.idle(),
            sessions.lifetime()
        )));
    }
    config.sessions = Some(sessions);
    Ok(format!(
        "{key} set to {span}; restart `sitesync serve` if it is running"
    ))
}

/// Sets when a quiet site counts as stale (`site-stale-after`) or lost
/// (`site-lost-after`) on the portal's pages, as `12h`, `2d`; stale comes before lost.
fn change_site_health(config: &mut Config, key: &str, value: &str) -> Result<String, ServiceError> {
    if config.role != Role::Primary {
        return Err(ServiceError::Input(format!(
            "{key} is the portal's, on the primary"
        )));
    }
    let span = Span::parse(value)
        .and_then(|span| span.within("a site's quiet time", Span::minutes(5), Span::days(365)))
        .map_err(ServiceError::Input)?;
    let mut sites = config.sites.clone().unwrap_or_default();
    match key {
        "site-stale-after" => sites.stale_after = Some(span),
        _ => sites.lost_after = Some(span),
    }
    if sites.stale_after().ms() >= sites.lost_after().ms() {
        return Err(ServiceError::Input(format!(
            "a site is stale ({}) before it is lost ({}): make site-stale-after shorter than site-lost-after",
            sites.stale_after(),
            sites.lost_after()
        )));
    }
    config.sites = Some(sites);
    Ok(format!(
        "{key} set to {span}; restart `sitesync serve` if it is running"
    ))
}

/// A size as `settings set` takes it: `100 MiB`, `3 GiB`, or bytes.
fn size_text(bytes: u64) -> String {
    let unit = [(30, "GiB"), (20, "MiB"), (10, "KiB")]
        .into_iter()
        .find(|(shift, _)| bytes != 0 && bytes.is_multiple_of(1 << shift));
    match unit {
        Some((shift, name)) => format!("{} {name}", bytes >> shift),
        None => format!("{bytes} bytes"),
    }
}

/// `[files]`: a size (`20 MiB`) or, for the grace period, a length of time (`0m` removes
/// unreferenced files at the next sweep).
fn change_files(config: &mut Config, key: &str, value: &str) -> Result<String, ServiceError> {
    let mut files = config.files.clone().unwrap_or_default();
    match key {
        "file-grace" => {
            let span = Span::parse(value)
                .and_then(|s| s.within("a file's grace period", Span::minutes(0), Span::days(365)))
                .map_err(ServiceError::Input)?;
            files.grace = Some(span);
        }
        _ => {
            let size = sitesync_core::definition::parse_size(value).map_err(ServiceError::Input)?;
            if size == 0 {
                return Err(ServiceError::Input(format!(
                    "{key} of 0 bytes would refuse every file: give a size like 100 MiB"
                )));
            }
            match key {
                "file-max-size" => files.max_file_size = Some(size),
                _ => files.max_org_size = Some(size),
            }
        }
    }
    config.files = Some(files);
    Ok(format!(
        "{key} set to {value}; restart `sitesync serve` if it is running"
    ))
}

/// The mail settings as `settings show` lists them: the password only as "set".
fn mail_rows(mail: MailSettings) -> Vec<(&'static str, String)> {
    let or = |value: Option<String>, absent: &str| value.unwrap_or_else(|| absent.into());
    vec![
        (
            "mail-from",
            or(mail.from, "(sitesync <sitesync@localhost>)"),
        ),
        (
            "smtp",
            or(mail.smtp, "none (mail is written to DATA/mail/outbox/)"),
        ),
        (
            "smtp-security",
            mail.security.unwrap_or_default().name().into(),
        ),
        ("smtp-user", or(mail.username, "(none)")),
        (
            "smtp-password",
            mail.password
                .map_or("(none)", |_| "set (stored encrypted)")
                .into(),
        ),
        (
            "smtp-ca",
            or(
                mail.ca.map(|ca| ca.display().to_string()),
                "(the system's roots)",
            ),
        ),
    ]
}

/// Applies one mail setting; an empty value (or `none`) clears it. The SMTP password is
/// sealed under the primary key before it is written.
fn change_mail(
    dir: &DataDir,
    config: &mut Config,
    key: &str,
    value: &str,
) -> Result<String, ServiceError> {
    if config.role != Role::Primary {
        return Err(ServiceError::Input(format!(
            "{key} is the primary's: mail goes out from there"
        )));
    }
    let value = value.trim();
    let given = (!value.is_empty() && value != "none").then(|| value.to_string());
    let mail = config.mail.get_or_insert_with(MailSettings::default);
    match key {
        "mail-from" => {
            if let Some(from) = &given {
                check_mailbox(from)?;
            }
            mail.from = given;
        }
        "smtp" => {
            if let Some(server) = &given {
                check_listen(server).map_err(|_| {
                    ServiceError::Input(format!(
                        "the SMTP server {server:?} must be HOST:PORT, like smtp.example.org:587; `none` writes mail to the outbox folder"
                    ))
                })?;
            }
            mail.smtp = given;
        }
        "smtp-security" => {
            mail.security = Some(match value {
                "starttls" => SmtpSecurity::Starttls,
                "tls" => SmtpSecurity::Tls,
                "none" => SmtpSecurity::None,
                other => {
                    return Err(ServiceError::Input(format!(
                        "{other:?} is not a way to protect SMTP: starttls (port 587), tls (port 465) or none (a relay on this machine)"
                    )));
                }
            });
        }
        "smtp-user" => mail.username = given,
        "smtp-password" => {
            mail.password = match given {
                Some(password) => {
                    let key = dir.read_secret(&dir.primary_key_path())?;
                    Some(seal(key.as_bytes(), SMTP_PASSWORD, &password)?)
                }
                None => None,
            };
        }
        _ => {
            if let Some(ca) = &given {
                let path = dir.resolve(std::path::Path::new(ca));
                let pem = std::fs::read(&path).map_err(|e| {
                    ServiceError::Input(format!(
                        "cannot read the SMTP CA file {}: {e}",
                        path.display()
                    ))
                })?;
                lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|_| {
                    ServiceError::Input(format!("{} holds no PEM certificate", path.display()))
                })?;
            }
            mail.ca = given.map(Into::into);
        }
    }
    if *mail == MailSettings::default() {
        config.mail = None;
    }
    Ok(format!(
        "{key} changed; `sitesync mail test ADDRESS` sends a test mail the new way"
    ))
}
