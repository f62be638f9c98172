//! [`AccountStorage`]: the cloud account's accounts, tokens and memberships.
//!
//! Addresses are compared as `lower(email)`, what the unique index of `accounts` is
//! made of (SQLite's columns are `COLLATE NOCASE`), and sorted as
//! `lower(email COLLATE "C")`: ASCII letters folded, then bytes, as NOCASE sorts.
//! Single-use things (tokens, invitations, changes of address) are spent by one
//! `DELETE … RETURNING`, so two processes spending the same one at once cannot both
//! get it.

use crate::{Error, PgStore, Tx, id, sql};
use postgres::Row;
use postgres::error::SqlState;
use sitesync_core::OrgId;
use sitesync_store::{
    Account, AccountId, AccountStorage, EmailChange, Invitation, Purpose, Role, StoreError, Token,
};

/// `SELECT`s an account's columns, `password_hash` last, from `accounts`, then `$rest`.
macro_rules! accounts {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, confirmed, disabled, org_limit, created_at, language,
             password_hash FROM accounts ",
            $rest
        )
    };
}

/// A token's columns.
macro_rules! token {
    () => {
        "hash, account, purpose, created_at, seen_at, expires_at"
    };
}

/// An invitation's columns.
macro_rules! invitation {
    () => {
        "hash, org, email, role, invited_by, expires_at"
    };
}

/// A change of address's columns.
macro_rules! email_change {
    () => {
        "hash, account, email, expires_at"
    };
}

fn invitation_row(row: &Row) -> Result<Invitation, Error> {
    let role: String = row.try_get(3)?;
    Ok(Invitation {
        hash: row.try_get(0)?,
        org: id(row.try_get(1)?),
        email: row.try_get(2)?,
        role: role_of(&role)?,
        invited_by: id(row.try_get(4)?),
        expires_at: id(row.try_get(5)?),
    })
}

fn account_row(row: &Row) -> Result<Account, Error> {
    let org_limit: i64 = row.try_get(4)?;
    Ok(Account {
        id: id(row.try_get(0)?),
        email: row.try_get(1)?,
        confirmed: row.try_get(2)?,
        disabled: row.try_get(3)?,
        org_limit: u32::try_from(org_limit)
            .map_err(|_| StoreError::Corrupt(format!("organisation limit {org_limit}")))?,
        created_at: id(row.try_get(5)?),
        language: row.try_get(6)?,
    })
}

/// An account read with its password hash (column 7).
fn account_with_hash(row: &Row) -> Result<(Account, String), Error> {
    Ok((account_row(row)?, row.try_get(7)?))
}

/// An account read with its role's name (column 7), the role parsed.
fn account_with_role(row: &Row) -> Result<(Account, Role), Error> {
    let role: String = row.try_get(7)?;
    Ok((account_row(row)?, role_of(&role)?))
}

fn email_change_row(row: &Row) -> Result<EmailChange, Error> {
    Ok(EmailChange {
        hash: row.try_get(0)?,
        account: id(row.try_get(1)?),
        email: row.try_get(2)?,
        expires_at: id(row.try_get(3)?),
    })
}

fn token_row(row: &Row) -> Result<Token, Error> {
    let purpose: String = row.try_get(2)?;
    Ok(Token {
        hash: row.try_get(0)?,
        account: id(row.try_get(1)?),
        purpose: match purpose.as_str() {
            "confirm" => Purpose::Confirm,
            "reset" => Purpose::Reset,
            _ => Purpose::Session,
        },
        created_at: id(row.try_get(3)?),
        seen_at: id(row.try_get(4)?),
        expires_at: id(row.try_get(5)?),
    })
}

fn role_of(name: &str) -> Result<Role, Error> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("role {name:?}")).into())
}

fn no_account(account: AccountId) -> Error {
    StoreError::NotFound(format!("there is no account {account}")).into()
}

fn taken(email: &str) -> Error {
    StoreError::Conflict(format!(
        "an account with the address {email} exists already"
    ))
    .into()
}

/// Whether `error` is PostgreSQL refusing a second row of a unique key.
fn is_unique_violation(error: &Error) -> bool {
    matches!(error, Error::Pg(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION))
}

fn must_change(changed: u64, account: AccountId) -> Result<(), Error> {
    match changed {
        0 => Err(no_account(account)),
        _ => Ok(()),
    }
}

fn get_account(tx: &mut Tx, account: AccountId) -> Result<Account, Error> {
    let row = tx.query_opt(accounts!("WHERE id = $1"), &[&sql(account)])?;
    row.as_ref()
        .map(account_row)
        .transpose()?
        .ok_or_else(|| no_account(account))
}

impl AccountStorage for PgStore {
    fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        confirmed: bool,
        now_ms: u64,
    ) -> Result<Account, StoreError> {
        self.write(|tx| {
            // The unique index decides, also between processes creating it at once.
            let row = tx.query_opt(
                "INSERT INTO accounts (email, password_hash, confirmed, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
                &[&email, &password_hash, &confirmed, &sql(now_ms)],
            )?;
            let Some(row) = row else {
                return Err(taken(email));
            };
            get_account(tx, id(row.try_get(0)?))
        })
    }

    fn account(&self, account: AccountId) -> Result<Account, StoreError> {
        self.read(|tx| get_account(tx, account))
    }

    fn account_by_email(&self, email: &str) -> Result<Option<(Account, String)>, StoreError> {
        self.read(|tx| {
            let row = tx.query_opt(accounts!("WHERE lower(email) = lower($1)"), &[&email])?;
            row.as_ref().map(account_with_hash).transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(accounts!("ORDER BY id"), &[])?;
            rows.iter().map(account_row).collect()
        })
    }

    fn set_password(&self, account: AccountId, password_hash: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET password_hash = $2 WHERE id = $1",
                &[&sql(account), &password_hash],
            )?;
            must_change(changed, account)
        })
    }

    fn confirm_account(&self, account: AccountId) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET confirmed = TRUE WHERE id = $1",
                &[&sql(account)],
            )?;
            must_change(changed, account)
        })
    }

    fn set_disabled(&self, account: AccountId, disabled: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET disabled = $2 WHERE id = $1",
                &[&sql(account), &disabled],
            )?;
            must_change(changed, account)?;
            if disabled {
                tx.execute("DELETE FROM tokens WHERE account = $1", &[&sql(account)])?;
            }
            Ok(())
        })
    }

    fn set_org_limit(&self, account: AccountId, limit: u32) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET org_limit = $2 WHERE id = $1",
                &[&sql(account), &i64::from(limit)],
            )?;
            must_change(changed, account)
        })
    }

    fn set_language(&self, account: AccountId, language: Option<&str>) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET language = $2 WHERE id = $1",
                &[&sql(account), &language],
            )?;
            must_change(changed, account)
        })
    }

    fn set_email(&self, account: AccountId, email: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let taken_by_another = tx
                .query_opt(
                    "SELECT 1 FROM accounts WHERE lower(email) = lower($1) AND id != $2",
                    &[&email, &sql(account)],
                )?
                .is_some();
            if taken_by_another {
                return Err(taken(email));
            }
            // Another process may take the address between the check and the update.
            let changed = tx
                .execute(
                    "UPDATE accounts SET email = $2 WHERE id = $1",
                    &[&sql(account), &email],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        taken(email)
                    } else {
                        e
                    }
                })?;
            must_change(changed, account)?;
            tx.execute(
                "DELETE FROM email_changes WHERE account = $1",
                &[&sql(account)],
            )?;
            Ok(())
        })
    }

    fn put_email_change(&self, change: &EmailChange) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO email_changes (hash, account, email, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &change.hash,
                    &sql(change.account),
                    &change.email,
                    &sql(change.expires_at),
                ],
            )?;
            Ok(())
        })
    }

    fn take_email_change(
        &self,
        hash: &str,
        now_ms: u64,
    ) -> Result<Option<EmailChange>, StoreError> {
        self.write(|tx| {
            let row = tx.query_opt(
                concat!(
                    "DELETE FROM email_changes WHERE hash = $1 RETURNING ",
                    email_change!()
                ),
                &[&hash],
            )?;
            let found = row.as_ref().map(email_change_row).transpose()?;
            Ok(found.filter(|c| c.expires_at > now_ms))
        })
    }

    fn put_token(&self, token: &Token) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (hash, account, purpose, created_at, seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &token.hash,
                    &sql(token.account),
                    &token.purpose.name(),
                    &sql(token.created_at),
                    &sql(token.seen_at),
                    &sql(token.expires_at),
                ],
            )?;
            Ok(())
        })
    }

    fn token(
        &self,
        hash: &str,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Option<Token>, StoreError> {
        self.read(|tx| {
            let row = tx.query_opt(
                concat!(
                    "SELECT ",
                    token!(),
                    " FROM tokens WHERE hash = $1 AND purpose = $2 AND expires_at > $3"
                ),
                &[&hash, &purpose.name(), &sql(now_ms)],
            )?;
            row.as_ref().map(token_row).transpose()
        })
    }

    fn take_token(
        &self,
        hash: &str,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Option<Token>, StoreError> {
        self.write(|tx| {
            let row = tx.query_opt(
                concat!(
                    "DELETE FROM tokens WHERE hash = $1 AND purpose = $2 RETURNING ",
                    token!()
                ),
                &[&hash, &purpose.name()],
            )?;
            let token = row.as_ref().map(token_row).transpose()?;
            Ok(token.filter(|t| t.expires_at > now_ms))
        })
    }

    fn touch_token(&self, hash: &str, now_ms: u64) -> Result<(), StoreError> {
        self.write_recoverable(|tx| {
            tx.execute(
                "UPDATE tokens SET seen_at = $2 WHERE hash = $1",
                &[&hash, &sql(now_ms)],
            )?;
            Ok(())
        })
    }

    fn drop_tokens(
        &self,
        account: AccountId,
        purpose: Purpose,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM tokens WHERE account = $1 AND purpose = $2
                 AND hash IS DISTINCT FROM $3",
                &[&sql(account), &purpose.name(), &keep],
            )
        })
    }

    fn tokens(
        &self,
        account: AccountId,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Vec<Token>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                concat!(
                    "SELECT ",
                    token!(),
                    " FROM tokens WHERE account = $1 AND purpose = $2 AND expires_at > $3
                     ORDER BY created_at DESC"
                ),
                &[&sql(account), &purpose.name(), &sql(now_ms)],
            )?;
            rows.iter().map(token_row).collect()
        })
    }

    fn set_member(&self, org: OrgId, account: AccountId, role: Role) -> Result<(), StoreError> {
        self.write(|tx| {
            get_account(tx, account)?;
            tx.execute(
                "INSERT INTO members (org, account, role) VALUES ($1, $2, $3)
                 ON CONFLICT (org, account) DO UPDATE SET role = excluded.role",
                &[&sql(org), &sql(account), &role.name()],
            )?;
            Ok(())
        })
    }

    fn memberships(&self, account: AccountId) -> Result<Vec<(OrgId, Role)>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT org, role FROM members WHERE account = $1 ORDER BY org",
                &[&sql(account)],
            )?;
            rows.iter()
                .map(|row| {
                    let role: String = row.try_get(1)?;
                    Ok((id(row.try_get(0)?), role_of(&role)?))
                })
                .collect()
        })
    }

    fn members(&self, org: OrgId) -> Result<Vec<(Account, Role)>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                r#"SELECT a.id, a.email, a.confirmed, a.disabled, a.org_limit, a.created_at,
                        a.language, m.role
                 FROM members m JOIN accounts a ON a.id = m.account
                 WHERE m.org = $1 ORDER BY lower(a.email COLLATE "C")"#,
                &[&sql(org)],
            )?;
            rows.iter().map(account_with_role).collect()
        })
    }

    fn remove_member(&self, org: OrgId, account: AccountId) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM members WHERE org = $1 AND account = $2",
                &[&sql(org), &sql(account)],
            )?;
            Ok(())
        })
    }

    fn put_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO invitations (hash, org, email, role, invited_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &invitation.hash,
                    &sql(invitation.org),
                    &invitation.email,
                    &invitation.role.name(),
                    &sql(invitation.invited_by),
                    &sql(invitation.expires_at),
                ],
            )?;
            Ok(())
        })
    }

    fn invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError> {
        self.read(|tx| {
            let row = tx.query_opt(
                concat!(
                    "SELECT ",
                    invitation!(),
                    " FROM invitations WHERE hash = $1 AND expires_at > $2"
                ),
                &[&hash, &sql(now_ms)],
            )?;
            row.as_ref().map(invitation_row).transpose()
        })
    }

    fn take_invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError> {
        self.write(|tx| {
            let row = tx.query_opt(
                concat!(
                    "DELETE FROM invitations WHERE hash = $1 RETURNING ",
                    invitation!()
                ),
                &[&hash],
            )?;
            let found = row.as_ref().map(invitation_row).transpose()?;
            Ok(found.filter(|i| i.expires_at > now_ms))
        })
    }

    fn invitations(&self, org: OrgId, now_ms: u64) -> Result<Vec<Invitation>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                concat!(
                    "SELECT ",
                    invitation!(),
                    r#" FROM invitations WHERE org = $1 AND expires_at > $2
                     ORDER BY expires_at, lower(email COLLATE "C")"#
                ),
                &[&sql(org), &sql(now_ms)],
            )?;
            rows.iter().map(invitation_row).collect()
        })
    }

    fn withdraw_invitation(
        &self,
        org: OrgId,
        hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.write(|tx| {
            let row = tx.query_opt(
                concat!(
                    "DELETE FROM invitations WHERE hash = $1 AND org = $2 RETURNING ",
                    invitation!()
                ),
                &[&hash, &sql(org)],
            )?;
            row.as_ref().map(invitation_row).transpose()
        })
    }
}
