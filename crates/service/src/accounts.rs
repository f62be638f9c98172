//! The cloud account's people: registering with an address that is confirmed by an
//! e-mailed link, logging in and out, sessions, resetting a forgotten password; and the
//! operator's commands for accounts (`sitesync account …`).
//!
//! What a security reviewer checks is kept here, once: passwords are argon2id and must be
//! 12 to 128 characters and not easily guessed (zxcvbn); tokens are 256 random bits,
//! stored as SHA-256, single use where they are links, and expire; registration and the
//! reset request answer the same whether or not the address has an account (the mail
//! says the rest); a wrong address and a wrong password are refused in the same words.

use crate::actor::Actor;
use crate::config::{Registration, Running, SessionSettings};
use crate::error::{Refusal, ServiceError};
use crate::mail::Mail;
use crate::secrets::{code_hash, code_matches, random_hex, token_hash};
use crate::site::Site;
use sitesync_store::{
    Account, AccountId, AccountStorage, Audit, AuditAction, Purpose, Role, StoreError, Token,
};
use std::net::IpAddr;

/// The fewest characters a password has.
pub const MIN_PASSWORD: usize = 12;
/// The most characters a password may have (long passphrases are welcome).
pub const MAX_PASSWORD: usize = 256;
/// How long a confirmation link works.
pub const CONFIRM_FOR_MS: u64 = 7 * 24 * 3_600_000;
/// How long a password reset link works.
pub const RESET_FOR_MS: u64 = 30 * 60_000;

/// A browser's session: its token goes into the cookie, and is not kept here.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session's token (256 random bits, hex).
    pub token: String,
    /// Whose.
    pub account: Account,
}

/// Checks a password a person chose: its length, and that it is not easily guessed.
pub fn check_password(password: &str, email: &str) -> Result<(), ServiceError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD {
        let english = format!(
            "the password is {chars} characters long; use at least {MIN_PASSWORD} (a few words make a good one)"
        );
        let refusal = Refusal::new("password_short", english).with("n", chars);
        return Err(refusal.with("min", MIN_PASSWORD).into());
    }
    if chars > MAX_PASSWORD {
        let english =
            format!("the password is {chars} characters long; use at most {MAX_PASSWORD}");
        let refusal = Refusal::new("password_long", english).with("n", chars);
        return Err(refusal.with("max", MAX_PASSWORD).into());
    }
    let strength = zxcvbn::zxcvbn(password, &[email]);
    if (strength.score() as u8) < 3 {
        let why = strength
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let english = format!(
            "this password is too easy to guess{why}; choose another, such as a few unrelated words"
        );
        return Err(Refusal::new("password_weak", english).into());
    }
    Ok(())
}

/// Checks the shape of an e-mail address (whether it works, only a mail tells).
pub fn check_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim();
    let parts = email.split_once('@');
    let fine = parts.is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    match fine {
        true => Ok(email.to_string()),
        false => {
            let english =
                format!("{email:?} is not an e-mail address; write it like name@example.org");
            Err(Refusal::new("email_invalid", english)
                .with("email", email)
                .into())
        }
    }
}

/// A duration for a person: "30 minutes", "7 days".
fn how_long(ms: u64) -> String {
    match ms {
        ms if ms >= 86_400_000 => format!("{} days", ms / 86_400_000),
        ms if ms >= 3_600_000 => format!("{} hours", ms / 3_600_000),
        ms => format!("{} minutes", ms / 60_000),
    }
}

/// A new random token (256 bits, hex) and its hash, as stored.
pub(crate) fn new_token_string() -> Result<(String, String), ServiceError> {
    let token = random_hex(32)?;
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// A new random token and what is stored of it.
fn new_token(
    account: u64,
    purpose: Purpose,
    now_ms: u64,
    lasts: u64,
) -> Result<(String, Token), ServiceError> {
    let (token, hash) = new_token_string()?;
    let stored = Token {
        hash,
        account,
        purpose,
        created_at: now_ms,
        seen_at: now_ms,
        expires_at: now_ms.saturating_add(lasts),
    };
    Ok((token, stored))
}

impl Site {
    /// The primary's storage of accounts (refused on a satellite).
    pub(crate) fn accounts_storage(&self) -> Result<&dyn AccountStorage, ServiceError> {
        let primary = self.primary()?;
        Ok(primary)
    }

    /// How long sessions last (`[sessions]` in `config.toml`, read when the site opened).
    fn session_settings(&self) -> SessionSettings {
        self.config.sessions.clone().unwrap_or_default()
    }

    /// Whether a session has neither sat unused for the idle timeout nor outlived its
    /// lifetime at `now_ms`: both as configured now, so shortening them ends sessions
    /// already begun.
    fn going(&self, session: &Token, now_ms: u64) -> bool {
        let settings = self.session_settings();
        now_ms.saturating_sub(session.seen_at) < settings.idle().ms()
            && now_ms.saturating_sub(session.created_at) < settings.lifetime().ms()
    }

    /// Who may make an account in the portal (`registration` in `config.toml`).
    pub fn registration(&self) -> Registration {
        self.config.registration.unwrap_or_default()
    }

    /// Changes the password of the session's account, which must give its current one:
    /// the account's other sessions end, and a mail says it changed.
    pub fn change_password(
        &self,
        token: &str,
        current: &str,
        new: &str,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let account = self.session(token, now_ms)?;
        self.check_current_password(&account, current)?;
        let store = self.accounts_storage()?;
        check_password(new, &account.email)?;
        store.set_password(account.id, &code_hash(new)?)?;
        store.drop_tokens(account.id, Purpose::Session, Some(&token_hash(token)))?;
        store.drop_tokens(account.id, Purpose::Reset, None)?;
        tracing::info!(account = account.id, "password changed");
        self.send_mail(&Mail {
            to: account.email.clone(),
            subject: "Your sitesync password was changed".into(),
            body: format!(
                "The password of your account was changed, and every other session ended.\n\nIf it was not you, set a new one at once at {}/reset.\n",
                self.portal_url()
            ),
        })
        .map(|_| ())
    }

    /// Refuses a change to `account` unless `current` is its password.
    pub(crate) fn check_current_password(
        &self,
        account: &Account,
        current: &str,
    ) -> Result<(), ServiceError> {
        let (_, hash) = self
            .accounts_storage()?
            .account_by_email(&account.email)?
            .ok_or(ServiceError::SessionEnded)?;
        match code_matches(current, &hash)? {
            true => Ok(()),
            false => {
                let english = "the current password is not right: nothing was changed";
                Err(Refusal::new("current_password_wrong", english.into()).into())
            }
        }
    }

    /// The portal's address, for links in mail: `public_url` in `config.toml`, or the
    /// address the running `serve` listens on (or is to listen on).
    pub fn portal_url(&self) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = match self.config.tls_cert {
            Some(_) => "https",
            None => "http",
        };
        let address = Running::read(&self.dir)
            .map(|running| running.addr.to_string())
            .unwrap_or_else(|| self.config.listen.clone());
        format!("{scheme}://{address}")
    }

    /// Registers an account and mails the link that confirms its address. An address
    /// that has an account already gets a mail saying so instead, and the answer is the
    /// same: nobody learns from it who has an account.
    pub fn register(&self, email: &str, password: &str, now_ms: u64) -> Result<(), ServiceError> {
        if self.registration() != Registration::Open {
            return Err(ServiceError::NotAllowed {
                actor: "anyone".into(),
                what: "register here: accounts are made by invitation or by the operator",
            });
        }
        let email = check_email(email)?;
        check_password(password, &email)?;
        let store = self.accounts_storage()?;
        // Hashed before looking, so both answers take the time of a hash.
        let hash = code_hash(password)?;
        if store.account_by_email(&email)?.is_some() {
            return self.send_mail(&Mail {
                to: email,
                subject: "Your sitesync account".into(),
                body: format!(
                    "Someone (you, perhaps) tried to register with this address, which has an account already.\n\nTo sign in, go to {0}/login. If you forgot your password, set a new one at {0}/reset.\n",
                    self.portal_url()
                ),
            }).map(|_| ());
        }
        let account = store.create_account(&email, &hash, false, now_ms)?;
        self.mail_confirmation(&account, now_ms)
    }

    fn mail_confirmation(&self, account: &Account, now_ms: u64) -> Result<(), ServiceError> {
        let (token, stored) = new_token(account.id, Purpose::Confirm, now_ms, CONFIRM_FOR_MS)?;
        self.accounts_storage()?.put_token(&stored)?;
        self.send_mail(&Mail {
            to: account.email.clone(),
            subject: "Confirm your address for sitesync".into(),
            body: format!(
                "To confirm this address and start using your account, open:\n\n{}/confirm/{token}\n\nThe link works once, for 7 days. If you did not register, ignore this mail.\n",
                self.portal_url()
            ),
        })
        .map(|_| ())
    }

    /// Confirms an address by the token of its link.
    pub fn confirm_address(&self, token: &str, now_ms: u64) -> Result<Account, ServiceError> {
        let store = self.accounts_storage()?;
        let spent = store
            .take_token(&token_hash(token), Purpose::Confirm, now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        store.confirm_account(spent.account)?;
        Ok(store.account(spent.account)?)
    }

    /// Logs in from `from`: a new session for an enabled, confirmed account whose
    /// password matches. Both a sign-in and a refusal go into the audit log (with the
    /// address typed, never the password); the answer does not say which part was wrong.
    pub fn log_in(
        &self,
        email: &str,
        password: &str,
        from: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<Session, ServiceError> {
        let store = self.accounts_storage()?;
        let typed = email.trim();
        let failed = |account: Option<AccountId>, why: &str| {
            let entry = by_account(typed, account, from, AuditAction::LoginFailed, now_ms);
            self.note(&Audit {
                detail: why.to_string(),
                ..entry
            })
        };
        // An unknown address costs a hash too, so the answer takes as long.
        let Some((account, hash)) = store.account_by_email(typed)? else {
            let _ = code_hash(password);
            failed(None, "no such account")?;
            return Err(ServiceError::WrongLogin);
        };
        if !code_matches(password, &hash)? || account.disabled {
            let why = match account.disabled {
                true => "account disabled",
                false => "wrong password",
            };
            failed(Some(account.id), why)?;
            return Err(ServiceError::WrongLogin);
        }
        if !account.confirmed {
            failed(Some(account.id), "address not confirmed")?;
            let english = "confirm your address first: open the link in the mail sent to it";
            return Err(Refusal::new("not_confirmed", english.into()).into());
        }
        let lifetime = self.session_settings().lifetime().ms();
        let (token, stored) = new_token(account.id, Purpose::Session, now_ms, lifetime)?;
        store.put_token(&stored)?;
        tracing::info!(account = account.id, "logged in");
        let login = AuditAction::Login;
        self.note(&by_account(
            &account.email,
            Some(account.id),
            from,
            login,
            now_ms,
        ))?;
        Ok(Session { token, account })
    }

    /// The account of a session that has not ended (by its idle or its absolute time);
    /// notes it used.
    pub fn session(&self, token: &str, now_ms: u64) -> Result<Account, ServiceError> {
        let store = self.accounts_storage()?;
        let hash = token_hash(token);
        let session = store
            .token(&hash, Purpose::Session, now_ms)?
            .filter(|s| self.going(s, now_ms))
            .ok_or(ServiceError::SessionEnded)?;
        let account = store.account(session.account)?;
        if account.disabled {
            return Err(ServiceError::SessionEnded);
        }
        store.touch_token(&hash, now_ms)?;
        Ok(account)
    }

    /// Ends a session.
    pub fn log_out(&self, token: &str) -> Result<(), ServiceError> {
        self.accounts_storage()?
            .take_token(&token_hash(token), Purpose::Session, 0)?;
        Ok(())
    }

    /// Ends every session of the session's account but this one (ended ones are
    /// cleared too). Returns how many were still going.
    pub fn log_out_elsewhere(&self, token: &str, now_ms: u64) -> Result<u64, ServiceError> {
        let account = self.session(token, now_ms)?;
        let keep = token_hash(token);
        let store = self.accounts_storage()?;
        let going = store
            .tokens(account.id, Purpose::Session, now_ms)?
            .iter()
            .filter(|s| s.hash != keep && self.going(s, now_ms))
            .count();
        store.drop_tokens(account.id, Purpose::Session, Some(&keep))?;
        Ok(going as u64)
    }

    /// Mails a link that sets a new password, when the address has an account; the
    /// answer is the same either way.
    pub fn ask_reset(&self, email: &str, now_ms: u64) -> Result<(), ServiceError> {
        let email = check_email(email)?;
        let store = self.accounts_storage()?;
        let Some((account, _)) = store.account_by_email(&email)? else {
            return Ok(());
        };
        if account.disabled {
            return Ok(());
        }
        self.mail_reset(&account, now_ms, RESET_FOR_MS)
    }

    fn mail_reset(&self, account: &Account, now_ms: u64, lasts: u64) -> Result<(), ServiceError> {
        let (token, stored) = new_token(account.id, Purpose::Reset, now_ms, lasts)?;
        self.accounts_storage()?.put_token(&stored)?;
        self.send_mail(&Mail {
            to: account.email.clone(),
            subject: "Set your sitesync password".into(),
            body: format!(
                "To set a new password for your account, open:\n\n{}/reset/{token}\n\nThe link works once, for {}. If you did not ask for it, ignore this mail: your password stays as it is.\n",
                self.portal_url(),
                how_long(lasts)
            ),
        })
        .map(|_| ())
    }

    /// Sets a new password by the token of a reset link: every session ends, the
    /// address counts as confirmed (the link reached it), and a mail says it changed.
    pub fn reset_password(
        &self,
        token: &str,
        password: &str,
        now_ms: u64,
    ) -> Result<Account, ServiceError> {
        let store = self.accounts_storage()?;
        let hash = token_hash(token);
        let pending = store
            .token(&hash, Purpose::Reset, now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        let account = store.account(pending.account)?;
        check_password(password, &account.email)?;
        let new_hash = code_hash(password)?;
        store
            .take_token(&hash, Purpose::Reset, now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        store.set_password(account.id, &new_hash)?;
        store.confirm_account(account.id)?;
        store.drop_tokens(account.id, Purpose::Session, None)?;
        store.drop_tokens(account.id, Purpose::Reset, None)?;
        self.send_mail(&Mail {
            to: account.email.clone(),
            subject: "Your sitesync password was changed".into(),
            body: format!(
                "The password of your account was changed, and every session ended.\n\nIf it was not you, set a new one at once at {}/reset.\n",
                self.portal_url()
            ),
        })?;
        tracing::info!(account = account.id, "password reset");
        let reset = AuditAction::PasswordReset;
        self.note(&by_account(
            &account.email,
            Some(account.id),
            None,
            reset,
            now_ms,
        ))?;
        Ok(store.account(account.id)?)
    }

    /// Every account (the operator's `account list`).
    pub fn accounts(&self, actor: Actor) -> Result<Vec<Account>, ServiceError> {
        actor.local("list accounts")?;
        Ok(self.accounts_storage()?.accounts()?)
    }

    /// Makes a confirmed account for `email` (the operator's `account create`) and mails
    /// it a link to set its password, valid as long as a confirmation link.
    pub fn create_account(
        &self,
        actor: Actor,
        email: &str,
        now_ms: u64,
    ) -> Result<Account, ServiceError> {
        actor.local("create accounts")?;
        let email = check_email(email)?;
        // Nobody knows this password: the owner sets one by the link.
        let unknown = code_hash(&random_hex(32)?)?;
        let account = self
            .accounts_storage()?
            .create_account(&email, &unknown, true, now_ms)?;
        self.mail_reset(&account, now_ms, CONFIRM_FOR_MS)?;
        Ok(account)
    }

    fn account_named(&self, email: &str) -> Result<Account, ServiceError> {
        self.accounts_storage()?
            .account_by_email(email.trim())?
            .map(|(account, _)| account)
            .ok_or_else(|| {
                ServiceError::Input(format!(
                    "there is no account {:?}; `sitesync account list` shows them",
                    email.trim()
                ))
            })
    }

    /// Disables an account (its sessions end) or enables it again.
    pub fn disable_account(
        &self,
        actor: Actor,
        email: &str,
        disabled: bool,
    ) -> Result<Account, ServiceError> {
        actor.local("disable accounts")?;
        let account = self.account_named(email)?;
        self.accounts_storage()?
            .set_disabled(account.id, disabled)?;
        let detail = match disabled {
            true => format!("{}: disabled", account.email),
            false => format!("{}: enabled again", account.email),
        };
        self.audit_account(actor, account.id, AuditAction::AccountDisabled, detail)?;
        Ok(self.accounts_storage()?.account(account.id)?)
    }

    /// Sets how many organisations an account may own.
    pub fn set_org_limit(
        &self,
        actor: Actor,
        email: &str,
        limit: u32,
    ) -> Result<Account, ServiceError> {
        actor.local("change an account's limit")?;
        let account = self.account_named(email)?;
        self.accounts_storage()?.set_org_limit(account.id, limit)?;
        let detail = format!("{}: may own {limit} organisations", account.email);
        self.audit_account(actor, account.id, AuditAction::LimitChanged, detail)?;
        Ok(self.accounts_storage()?.account(account.id)?)
    }

    /// Gives an account a role in an organisation (so organisations made with the CLI
    /// get owners).
    pub fn grant(
        &self,
        actor: Actor,
        email: &str,
        org: &str,
        role: &str,
    ) -> Result<(Account, Role), ServiceError> {
        actor.local("grant roles")?;
        let role = Role::parse(role).ok_or_else(|| {
            ServiceError::Input(format!(
                "{role:?} is not a role; the roles are {}",
                Role::ALL.map(Role::name).join(", ")
            ))
        })?;
        let account = self.account_named(email)?;
        let org = self.primary()?.org(org)?;
        self.accounts_storage()?
            .set_member(org.id, account.id, role)?;
        tracing::info!(
            account = account.id,
            org = org.id,
            role = role.name(),
            "role granted"
        );
        let detail = format!("{}: granted {}", account.email, role.name());
        self.audit(actor, Some(org.id), AuditAction::RoleChanged, detail)?;
        Ok((account, role))
    }

    /// The organisations an account belongs to, with its role in each.
    pub fn memberships(
        &self,
        account: &Account,
    ) -> Result<Vec<(sitesync_store::Org, Role)>, ServiceError> {
        let store = self.primary()?;
        store
            .memberships(account.id)?
            .into_iter()
            .map(|(org, role)| Ok((store.org_by_id(org)?, role)))
            .collect()
    }
}

/// An organisation a member works in, with the member's role there.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The member's account.
    pub account: AccountId,
    /// The organisation.
    pub org: sitesync_store::Org,
    /// The member's role.
    pub role: Role,
}

impl Membership {
    /// The member acting in its organisation, from the address `from`: what the
    /// portal passes to the use-cases it calls.
    pub fn actor(&self, from: Option<IpAddr>) -> Actor {
        Actor::Member {
            account: self.account,
            org: self.org.id,
            role: self.role,
            from,
        }
    }
}

/// An entry about an account acting for itself (a sign-in, a password reset, a new
/// organisation): `who` is its address (or the one typed, for a failed sign-in).
pub(crate) fn by_account(
    who: &str,
    account: Option<AccountId>,
    from: Option<IpAddr>,
    action: AuditAction,
    at: u64,
) -> Audit {
    Audit {
        org: None,
        at,
        // An address is at most 254 characters; what was typed may be anything.
        actor: who.chars().take(254).collect(),
        account,
        from: from.map(|ip| ip.to_string()),
        action,
        detail: String::new(),
    }
}

impl Site {
    /// Creates an organisation for a logged-in account (asking from `from`), which
    /// becomes its owner: an account may own as many as its limit allows (one, unless
    /// the operator raised it). Its people read times in `zone` (UTC when empty).
    pub fn create_org_as(
        &self,
        account: &Account,
        (name, zone): (&str, &str),
        from: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<crate::OrgKey, ServiceError> {
        let zone = match zone.trim() {
            "" => "UTC".to_string(),
            zone => crate::check_time_zone(zone)?,
        };
        let owned = self
            .accounts_storage()?
            .memberships(account.id)?
            .iter()
            .filter(|(_, role)| *role == Role::Owner)
            .count();
        if owned >= account.org_limit as usize {
            let english = format!(
                "you own {owned} organisations, as many as your account may; ask the operator to raise the limit"
            );
            return Err(Refusal::new("org_limit", english).with("n", owned).into());
        }
        let org = self.primary()?.create_org(name, now_ms)?;
        let org = self.primary()?.set_time_zone(org.id, &zone)?;
        self.accounts_storage()?
            .set_member(org.id, account.id, Role::Owner)?;
        tracing::info!(
            account = account.id,
            org = org.id,
            "organisation created in the portal"
        );
        let created = AuditAction::OrgCreated;
        self.note(&Audit {
            org: Some(org.id),
            detail: org.name.clone(),
            ..by_account(&account.email, Some(account.id), from, created, now_ms)
        })?;
        Ok(crate::OrgKey {
            sync_key: self.sync_key(&org)?,
            org,
        })
    }

    /// An account's membership of an organisation; an organisation it is not a member
    /// of is "not found", as if it did not exist, so ids reveal nothing.
    pub fn membership(
        &self,
        account: &Account,
        org: sitesync_core::OrgId,
    ) -> Result<Membership, ServiceError> {
        let role = self
            .accounts_storage()?
            .memberships(account.id)?
            .into_iter()
            .find_map(|(id, role)| (id == org).then_some(role))
            .ok_or_else(|| StoreError::NotFound(format!("there is no organisation {org}")))?;
        Ok(Membership {
            account: account.id,
            org: self.primary()?.org_by_id(org)?,
            role,
        })
    }
}

/// A session as its account's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// When it began (ms since the epoch).
    pub started_at: u64,
    /// When it was last used.
    pub seen_at: u64,
    /// Whether it is the session asking.
    pub current: bool,
}

impl Site {
    /// The sessions still going of the session's account, newest first.
    pub fn sessions(&self, token: &str, now_ms: u64) -> Result<Vec<SessionView>, ServiceError> {
        let account = self.session(token, now_ms)?;
        let current = token_hash(token);
        Ok(self
            .accounts_storage()?
            .tokens(account.id, Purpose::Session, now_ms)?
            .into_iter()
            .filter(|s| self.going(s, now_ms))
            .map(|s| SessionView {
                started_at: s.created_at,
                seen_at: s.seen_at,
                current: s.hash == current,
            })
            .collect())
    }
}

impl Site {
    /// An account's membership of an organisation, when its role is at least `least`:
    /// a member with a lesser role may not `what` (403); a non-member is told the
    /// organisation does not exist (404).
    pub fn as_member(
        &self,
        account: &Account,
        org: sitesync_core::OrgId,
        least: Role,
        what: &'static str,
    ) -> Result<Membership, ServiceError> {
        let member = self.membership(account, org)?;
        if member.role < least {
            tracing::warn!(
                account = account.id,
                org,
                role = member.role.name(),
                what,
                "refused"
            );
            return Err(ServiceError::NotAllowed {
                actor: format!("a {}", member.role.name()),
                what,
            });
        }
        Ok(member)
    }
}

impl Site {
    /// A site of an organisation the account is a member of; a site of another
    /// organisation is "not found", as if it did not exist.
    pub fn member_site(
        &self,
        account: &Account,
        org: sitesync_core::OrgId,
        site: sitesync_core::SiteId,
    ) -> Result<(Membership, crate::SiteView), ServiceError> {
        let member = self.membership(account, org)?;
        let view = self.show_site(member.actor(None), &site.to_string())?;
        Ok((member, view))
    }
}
