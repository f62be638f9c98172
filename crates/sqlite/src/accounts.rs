//! [`AccountStorage`]: the cloud account's accounts, tokens and memberships.

use crate::{Error, SqliteStore, id, sql};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use sitesync_core::OrgId;
use sitesync_store::{
    Account, AccountId, AccountStorage, EmailChange, Invitation, Purpose, Role, StoreError, Token,
};

const ACCOUNT: &str = "SELECT id, email, confirmed, disabled, org_limit, created_at, language,
    password_hash FROM accounts";
const TOKEN: &str = "SELECT hash, account, purpose, created_at, seen_at, expires_at FROM tokens";
const INVITATION: &str = "SELECT hash, org, email, role, invited_by, expires_at FROM invitations";
const EMAIL_CHANGE: &str = "SELECT hash, account, email, expires_at FROM email_changes";

fn invitation_row(row: &Row) -> rusqlite::Result<(Invitation, String)> {
    Ok((
        Invitation {
            hash: row.get(0)?,
            org: id(row.get(1)?),
            email: row.get(2)?,
            role: Role::Viewer,
            invited_by: id(row.get(4)?),
            expires_at: id(row.get(5)?),
        },
        row.get(3)?,
    ))
}

/// An invitation read with its role's name, the role filled in.
fn with_role((mut invitation, role): (Invitation, String)) -> Result<Invitation, Error> {
    invitation.role = role_of(&role)?;
    Ok(invitation)
}

fn account_row(row: &Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: id(row.get(0)?),
        email: row.get(1)?,
        confirmed: row.get(2)?,
        disabled: row.get(3)?,
        org_limit: row.get(4)?,
        created_at: id(row.get(5)?),
        language: row.get(6)?,
    })
}

fn email_change_row(row: &Row) -> rusqlite::Result<EmailChange> {
    Ok(EmailChange {
        hash: row.get(0)?,
        account: id(row.get(1)?),
        email: row.get(2)?,
        expires_at: id(row.get(3)?),
    })
}

fn token_row(row: &Row) -> rusqlite::Result<Token> {
    let purpose: String = row.get(2)?;
    Ok(Token {
        hash: row.get(0)?,
        account: id(row.get(1)?),
        purpose: match purpose.as_str() {
            "confirm" => Purpose::Confirm,
            "reset" => Purpose::Reset,
            _ => Purpose::Session,
        },
        created_at: id(row.get(3)?),
        seen_at: id(row.get(4)?),
        expires_at: id(row.get(5)?),
    })
}

fn role_of(name: &str) -> Result<Role, Error> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("role {name:?}")).into())
}

fn must_change(changed: usize, account: AccountId) -> Result<(), Error> {
    match changed {
        0 => Err(StoreError::NotFound(format!("there is no account {account}")).into()),
        _ => Ok(()),
    }
}

fn get_account(tx: &Transaction, account: AccountId) -> Result<Account, Error> {
    tx.prepare_cached(&format!("{ACCOUNT} WHERE id = ?1"))?
        .query_row([sql(account)], account_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no account {account}")).into())
}

impl AccountStorage for SqliteStore {
    fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        confirmed: bool,
        now_ms: u64,
    ) -> Result<Account, StoreError> {
        self.write(|tx| {
            let taken: bool = tx
                .prepare_cached("SELECT 1 FROM accounts WHERE email = ?1")?
                .exists([email])?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "an account with the address {email} exists already"
                ))
                .into());
            }
            tx.prepare_cached(
                "INSERT INTO accounts (email, password_hash, confirmed, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![email, password_hash, confirmed, sql(now_ms)])?;
            get_account(tx, id(tx.last_insert_rowid()))
        })
    }

    fn account(&self, account: AccountId) -> Result<Account, StoreError> {
        self.read(|tx| get_account(tx, account))
    }

    fn account_by_email(&self, email: &str) -> Result<Option<(Account, String)>, StoreError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(&format!("{ACCOUNT} WHERE email = ?1"))?
                .query_row([email], |row| Ok((account_row(row)?, row.get(7)?)))
                .optional()?)
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!("{ACCOUNT} ORDER BY id"))?;
            let rows = stmt.query_map([], account_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn set_password(&self, account: AccountId, password_hash: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE id = ?1")?
                .execute(params![sql(account), password_hash])?;
            must_change(changed, account)
        })
    }

    fn confirm_account(&self, account: AccountId) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET confirmed = 1 WHERE id = ?1")?
                .execute([sql(account)])?;
            must_change(changed, account)
        })
    }

    fn set_disabled(&self, account: AccountId, disabled: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET disabled = ?2 WHERE id = ?1")?
                .execute(params![sql(account), disabled])?;
            must_change(changed, account)?;
            if disabled {
                tx.prepare_cached("DELETE FROM tokens WHERE account = ?1")?
                    .execute([sql(account)])?;
            }
            Ok(())
        })
    }

    fn set_org_limit(&self, account: AccountId, limit: u32) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET org_limit = ?2 WHERE id = ?1")?
                .execute(params![sql(account), limit])?;
            must_change(changed, account)
        })
    }

    fn set_language(&self, account: AccountId, language: Option<&str>) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET language = ?2 WHERE id = ?1")?
                .execute(params![sql(account), language])?;
            must_change(changed, account)
        })
    }

    fn set_email(&self, account: AccountId, email: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let taken: bool = tx
                .prepare_cached("SELECT 1 FROM accounts WHERE email = ?1 AND id != ?2")?
                .exists(params![email, sql(account)])?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "an account with the address {email} exists already"
                ))
                .into());
            }
            let changed = tx
                .prepare_cached("UPDATE accounts SET email = ?2 WHERE id = ?1")?
                .execute(params![sql(account), email])?;
            must_change(changed, account)?;
            tx.prepare_cached("DELETE FROM email_changes WHERE account = ?1")?
                .execute([sql(account)])?;
            Ok(())
        })
    }

    fn put_email_change(&self, change: &EmailChange) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO email_changes (hash, account, email, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                change.hash,
                sql(change.account),
                change.email,
                sql(change.expires_at)
            ])?;
            Ok(())
        })
    }

    fn take_email_change(
        &self,
        hash: &str,
        now_ms: u64,
    ) -> Result<Option<EmailChange>, StoreError> {
        self.write(|tx| {
            let found = tx
                .prepare_cached(&format!("{EMAIL_CHANGE} WHERE hash = ?1"))?
                .query_row([hash], email_change_row)
                .optional()?;
            tx.prepare_cached("DELETE FROM email_changes WHERE hash = ?1")?
                .execute([hash])?;
            Ok(found.filter(|c| c.expires_at > now_ms))
        })
    }

    fn put_token(&self, token: &Token) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO tokens (hash, account, purpose, created_at, seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                token.hash,
                sql(token.account),
                token.purpose.name(),
                sql(token.created_at),
                sql(token.seen_at),
                sql(token.expires_at)
            ])?;
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
            Ok(tx
                .prepare_cached(&format!(
                    "{TOKEN} WHERE hash = ?1 AND purpose = ?2 AND expires_at > ?3"
                ))?
                .query_row(params![hash, purpose.name(), sql(now_ms)], token_row)
                .optional()?)
        })
    }

    fn take_token(
        &self,
        hash: &str,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Option<Token>, StoreError> {
        self.write(|tx| {
            let token = tx
                .prepare_cached(&format!("{TOKEN} WHERE hash = ?1 AND purpose = ?2"))?
                .query_row(params![hash, purpose.name()], token_row)
                .optional()?;
            tx.prepare_cached("DELETE FROM tokens WHERE hash = ?1 AND purpose = ?2")?
                .execute(params![hash, purpose.name()])?;
            Ok(token.filter(|t| t.expires_at > now_ms))
        })
    }

    fn touch_token(&self, hash: &str, now_ms: u64) -> Result<(), StoreError> {
        self.write_recoverable(|tx| {
            tx.prepare_cached("UPDATE tokens SET seen_at = ?2 WHERE hash = ?1")?
                .execute(params![hash, sql(now_ms)])?;
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
            let dropped = tx
                .prepare_cached(
                    "DELETE FROM tokens WHERE account = ?1 AND purpose = ?2
                     AND hash IS NOT ?3",
                )?
                .execute(params![sql(account), purpose.name(), keep])?;
            Ok(dropped as u64)
        })
    }

    fn tokens(
        &self,
        account: AccountId,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Vec<Token>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "{TOKEN} WHERE account = ?1 AND purpose = ?2 AND expires_at > ?3
                 ORDER BY created_at DESC"
            ))?;
            let rows = stmt.query_map(
                params![sql(account), purpose.name(), sql(now_ms)],
                token_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn set_member(&self, org: OrgId, account: AccountId, role: Role) -> Result<(), StoreError> {
        self.write(|tx| {
            get_account(tx, account)?;
            tx.prepare_cached(
                "INSERT INTO members (org, account, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT (org, account) DO UPDATE SET role = excluded.role",
            )?
            .execute(params![sql(org), sql(account), role.name()])?;
            Ok(())
        })
    }

    fn memberships(&self, account: AccountId) -> Result<Vec<(OrgId, Role)>, StoreError> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT org, role FROM members WHERE account = ?1 ORDER BY org")?;
            let rows = stmt.query_map([sql(account)], |row| {
                Ok((id(row.get(0)?), row.get::<_, String>(1)?))
            })?;
            rows.map(|r| {
                let (org, role) = r?;
                Ok((org, role_of(&role)?))
            })
            .collect()
        })
    }

    fn members(&self, org: OrgId) -> Result<Vec<(Account, Role)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT a.id, a.email, a.confirmed, a.disabled, a.org_limit, a.created_at,
                        a.language, m.role
                 FROM members m JOIN accounts a ON a.id = m.account
                 WHERE m.org = ?1 ORDER BY a.email",
            )?;
            let rows = stmt.query_map([sql(org)], |row| {
                Ok((account_row(row)?, row.get::<_, String>(7)?))
            })?;
            rows.map(|r| {
                let (account, role) = r?;
                Ok((account, role_of(&role)?))
            })
            .collect()
        })
    }

    fn remove_member(&self, org: OrgId, account: AccountId) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM members WHERE org = ?1 AND account = ?2")?
                .execute(params![sql(org), sql(account)])?;
            Ok(())
        })
    }

    fn put_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO invitations (hash, org, email, role, invited_by, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                invitation.hash,
                sql(invitation.org),
                invitation.email,
                invitation.role.name(),
                sql(invitation.invited_by),
                sql(invitation.expires_at)
            ])?;
            Ok(())
        })
    }

    fn invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError> {
        self.read(|tx| {
            tx.prepare_cached(&format!("{INVITATION} WHERE hash = ?1 AND expires_at > ?2"))?
                .query_row(params![hash, sql(now_ms)], invitation_row)
                .optional()?
                .map(with_role)
                .transpose()
        })
    }

    fn take_invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError> {
        self.write(|tx| {
            let found = tx
                .prepare_cached(&format!("{INVITATION} WHERE hash = ?1"))?
                .query_row([hash], invitation_row)
                .optional()?
                .map(with_role)
                .transpose()?;
            tx.prepare_cached("DELETE FROM invitations WHERE hash = ?1")?
                .execute([hash])?;
            Ok(found.filter(|i| i.expires_at > now_ms))
        })
    }

    fn invitations(&self, org: OrgId, now_ms: u64) -> Result<Vec<Invitation>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "{INVITATION} WHERE org = ?1 AND expires_at > ?2 ORDER BY expires_at, email"
            ))?;
            let rows = stmt.query_map(params![sql(org), sql(now_ms)], invitation_row)?;
            rows.map(|r| with_role(r?)).collect()
        })
    }

    fn withdraw_invitation(
        &self,
        org: OrgId,
        hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.write(|tx| {
            let found = tx
                .prepare_cached(&format!("{INVITATION} WHERE hash = ?1 AND org = ?2"))?
                .query_row(params![hash, sql(org)], invitation_row)
                .optional()?
                .map(with_role)
                .transpose()?;
            tx.prepare_cached("DELETE FROM invitations WHERE hash = ?1 AND org = ?2")?
                .execute(params![hash, sql(org)])?;
            Ok(found)
        })
    }
}
