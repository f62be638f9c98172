//! What an account says of itself: its address, changed only by a link mailed to the new
//! one, and the language it reads the portal in.
//!
//! A change of address asks for the current password, and answers the same whether or
//! not the new address has an account (that address is mailed that it has one, instead
//! of a link): nobody learns from it who has an account. Until the link is followed the
//! old address stays; following it ends the account's other sessions and its pending
//! links, and tells the old address.

use crate::accounts::{CONFIRM_FOR_MS, by_account, check_email, new_token_string};
use crate::error::{Refusal, ServiceError};
use crate::mail::Mail;
use crate::secrets::token_hash;
use crate::site::Site;
use sitesync_store::{Account, AuditAction, EmailChange, Purpose};
use std::net::IpAddr;

/// Checks a language tag an account chose (`en`, `ru`, `pt-br`): the portal offers
/// only the ones it has words for.
fn check_language(tag: &str) -> Result<String, ServiceError> {
    let tag = tag.trim().to_ascii_lowercase();
    let fine = (2..=8).contains(&tag.len())
        && tag.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && !tag.starts_with('-');
    match fine {
        true => Ok(tag),
        false => {
            let english = format!("{tag:?} is not a language; choose one the page offers");
            Err(Refusal::new("language_invalid", english).into())
        }
    }
}

impl Site {
    /// Sets the language the session's account reads the portal in; `None`: its
    /// browser's.
    pub fn set_language(
        &self,
        token: &str,
        language: Option<&str>,
        now_ms: u64,
    ) -> Result<Account, ServiceError> {
        let account = self.session(token, now_ms)?;
        let language = language.map(check_language).transpose()?;
        let store = self.accounts_storage()?;
        store.set_language(account.id, language.as_deref())?;
        tracing::info!(account = account.id, "language chosen");
        Ok(store.account(account.id)?)
    }

    /// Asks to move the session's account to the address `email`, its current
    /// `password` given: mails the new address a link that makes the change (or, when
    /// that address has an account, a mail saying so). The answer is the same either way.
    pub fn ask_email_change(
        &self,
        token: &str,
        (email, password): (&str, &str),
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let account = self.session(token, now_ms)?;
        self.check_current_password(&account, password)?;
        let email = check_email(email)?;
        if email.eq_ignore_ascii_case(&account.email) {
            let english = format!("{email} is your address already: nothing was changed");
            return Err(Refusal::new("email_same", english)
                .with("email", email)
                .into());
        }
        let store = self.accounts_storage()?;
        if store.account_by_email(&email)?.is_some() {
            tracing::info!(
                account = account.id,
                "address change asked for a taken address"
            );
            return self.mail_address_taken(&email);
        }
        let (link, hash) = new_token_string()?;
        store.put_email_change(&EmailChange {
            hash,
            account: account.id,
            email: email.clone(),
            expires_at: now_ms.saturating_add(CONFIRM_FOR_MS),
        })?;
        tracing::info!(account = account.id, "address change asked for");
        self.send_mail(&Mail {
            to: email,
            subject: "Confirm your new address for sitesync".into(),
            body: format!(
                "To make this the address of your sitesync account (now {}), open:\n\n{}/email/{link}\n\nThe link works once, for 7 days; until then the account keeps its old address. If you did not ask for it, ignore this mail.\n",
                account.email,
                self.portal_url()
            ),
        })
        .map(|_| ())
    }

    fn mail_address_taken(&self, email: &str) -> Result<(), ServiceError> {
        self.send_mail(&Mail {
            to: email.to_string(),
            subject: "Your sitesync account".into(),
            body: format!(
                "Someone asked to move another sitesync account to this address, which has an account already: nothing was changed.\n\nTo sign in, go to {0}/login. If you forgot your password, set a new one at {0}/reset.\n",
                self.portal_url()
            ),
        })
        .map(|_| ())
    }

    /// Makes the change of address of a link mailed by [`Site::ask_email_change`],
    /// followed from `from`: refused when the new address got an account meanwhile.
    /// The account's sessions end but `keep` (the follower's own session, when it is
    /// the account's), its pending links with them; the old address is told.
    pub fn change_email(
        &self,
        link: &str,
        keep: Option<&str>,
        from: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<Account, ServiceError> {
        let store = self.accounts_storage()?;
        let change = store
            .take_email_change(&token_hash(link), now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        let old = store.account(change.account)?;
        store.set_email(old.id, &change.email)?;
        let keep = keep.map(token_hash);
        store.drop_tokens(old.id, Purpose::Session, keep.as_deref())?;
        store.drop_tokens(old.id, Purpose::Reset, None)?;
        store.drop_tokens(old.id, Purpose::Confirm, None)?;
        tracing::info!(account = old.id, "address changed");
        let mut entry = by_account(
            &old.email,
            Some(old.id),
            from,
            AuditAction::EmailChanged,
            now_ms,
        );
        entry.detail = format!("{} to {}", old.email, change.email);
        self.note(&entry)?;
        self.send_mail(&Mail {
            to: old.email.clone(),
            subject: "Your sitesync address was changed".into(),
            body: format!(
                "The address of your sitesync account was changed from {} to {}, and its other sessions ended. Mail for the account goes to the new address now.\n\nIf it was not you, tell the operator of {} at once.\n",
                old.email,
                change.email,
                self.portal_url()
            ),
        })?;
        Ok(store.account(old.id)?)
    }
}
