//! The cloud account's storage on the primary: people's accounts, their memberships of
//! organisations, and the tokens they hold (sessions, and the single-use links of
//! confirmation, password reset and invitation). Tokens are stored hashed: whoever
//! reads the database cannot use them.

use crate::StoreError;
use sitesync_core::OrgId;

/// An account's id.
pub type AccountId = u64;

/// A person's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its e-mail address, unique without regard to case.
    pub email: String,
    /// Whether the address was confirmed (until then the account cannot log in).
    pub confirmed: bool,
    /// Whether the operator disabled it (it cannot log in; its sessions ended).
    pub disabled: bool,
    /// How many organisations it may own.
    pub org_limit: u32,
    /// When it was made (ms since the epoch).
    pub created_at: u64,
    /// The language its portal pages are in (a catalogue's tag, `en`, `ru`); `None`:
    /// the browser's (`Accept-Language`).
    pub language: Option<String>,
}

/// What a member may do in an organisation, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees sites, stores, data and reports.
    Viewer,
    /// Also manages stores, assigns stores to sites, edits reference data.
    Manager,
    /// Also rotates the sync key, revokes sites, manages members, sees the audit log.
    Admin,
    /// Also manages owners and deletes the organisation.
    Owner,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Manager, Role::Admin, Role::Owner];

    /// Its name, as stored and as typed (`viewer`, …).
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role of a name, if it is one.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A logged-in browser's session.
    Session,
    /// The link that confirms an e-mail address.
    Confirm,
    /// The link that sets a new password.
    Reset,
}

impl Purpose {
    /// Its name, as stored.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Session => "session",
            Purpose::Confirm => "confirm",
            Purpose::Reset => "reset",
        }
    }
}

/// A token as stored: whose, what for, and its times (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The SHA-256 of the token, hex: the token itself is never stored.
    pub hash: String,
    /// Its account.
    pub account: AccountId,
    /// What it is for.
    pub purpose: Purpose,
    /// When it was made.
    pub created_at: u64,
    /// When it was last used (sessions: for the idle timeout).
    pub seen_at: u64,
    /// When it stops working.
    pub expires_at: u64,
}

/// An invitation to join an organisation, as stored (its token only hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The SHA-256 of the invitation's token, hex.
    pub hash: String,
    /// The organisation to join.
    pub org: OrgId,
    /// The address invited: only an account of it may accept.
    pub email: String,
    /// The role given on joining.
    pub role: Role,
    /// The account that invited.
    pub invited_by: AccountId,
    /// When it stops working (ms since the epoch).
    pub expires_at: u64,
}

/// A change of an account's address asked for and not yet confirmed: the link mailed
/// to the new address (its token only hashed) makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    /// The SHA-256 of the link's token, hex.
    pub hash: String,
    /// The account whose address changes.
    pub account: AccountId,
    /// The new address (the account keeps its old one until the link is followed).
    pub email: String,
    /// When it stops working (ms since the epoch).
    pub expires_at: u64,
}

/// The accounts, memberships and tokens of the cloud account.
pub trait AccountStorage: Send + Sync {
    /// Makes an account; a taken address (without regard to case) is a
    /// [`StoreError::Conflict`].
    fn create_account(
        &self,
        email: &str,
        password_hash: &str,
        confirmed: bool,
        now_ms: u64,
    ) -> Result<Account, StoreError>;

    /// An account by id.
    fn account(&self, id: AccountId) -> Result<Account, StoreError>;

    /// An account by e-mail address (without regard to case), with its password hash.
    fn account_by_email(&self, email: &str) -> Result<Option<(Account, String)>, StoreError>;

    /// Every account, by id.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Sets an account's password hash.
    fn set_password(&self, id: AccountId, password_hash: &str) -> Result<(), StoreError>;

    /// Marks an account's address confirmed.
    fn confirm_account(&self, id: AccountId) -> Result<(), StoreError>;

    /// Disables an account (or enables it again); disabling ends its sessions.
    fn set_disabled(&self, id: AccountId, disabled: bool) -> Result<(), StoreError>;

    /// Sets how many organisations an account may own.
    fn set_org_limit(&self, id: AccountId, limit: u32) -> Result<(), StoreError>;

    /// Sets the language an account reads the portal in (`None`: its browser's).
    fn set_language(&self, id: AccountId, language: Option<&str>) -> Result<(), StoreError>;

    /// Gives an account another address; one another account has (without regard to
    /// case) is a [`StoreError::Conflict`]. The account's other pending changes of
    /// address end with it.
    fn set_email(&self, id: AccountId, email: &str) -> Result<(), StoreError>;

    /// Keeps a change of address asked for.
    fn put_email_change(&self, change: &EmailChange) -> Result<(), StoreError>;

    /// Spends a change of address: removes it and returns it, if it had not expired.
    fn take_email_change(&self, hash: &str, now_ms: u64)
    -> Result<Option<EmailChange>, StoreError>;

    /// Keeps a token.
    fn put_token(&self, token: &Token) -> Result<(), StoreError>;

    /// A token that has not expired at `now_ms`, by hash and purpose.
    fn token(&self, hash: &str, purpose: Purpose, now_ms: u64)
    -> Result<Option<Token>, StoreError>;

    /// Spends a single-use token: removes it and returns it, if it had not expired.
    fn take_token(
        &self,
        hash: &str,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Option<Token>, StoreError>;

    /// Notes a session used at `now_ms` (its idle timeout starts again).
    fn touch_token(&self, hash: &str, now_ms: u64) -> Result<(), StoreError>;

    /// Removes an account's tokens of `purpose`, except the one of hash `keep`.
    /// Returns how many.
    fn drop_tokens(
        &self,
        account: AccountId,
        purpose: Purpose,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// An account's tokens of `purpose` that have not expired, newest first.
    fn tokens(
        &self,
        account: AccountId,
        purpose: Purpose,
        now_ms: u64,
    ) -> Result<Vec<Token>, StoreError>;

    /// Gives an account a role in an organisation (replacing the one it had).
    fn set_member(&self, org: OrgId, account: AccountId, role: Role) -> Result<(), StoreError>;

    /// The organisations an account is a member of, with its role there.
    fn memberships(&self, account: AccountId) -> Result<Vec<(OrgId, Role)>, StoreError>;

    /// The members of an organisation, with their roles.
    fn members(&self, org: OrgId) -> Result<Vec<(Account, Role)>, StoreError>;

    /// Takes an account out of an organisation.
    fn remove_member(&self, org: OrgId, account: AccountId) -> Result<(), StoreError>;

    /// Keeps an invitation.
    fn put_invitation(&self, invitation: &Invitation) -> Result<(), StoreError>;

    /// An invitation that has not expired at `now_ms`, by the hash of its token.
    fn invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError>;

    /// Spends an invitation: removes it and returns it, if it had not expired.
    fn take_invitation(&self, hash: &str, now_ms: u64) -> Result<Option<Invitation>, StoreError>;

    /// An organisation's invitations that have not expired at `now_ms` (nor been
    /// accepted), soonest to expire first.
    fn invitations(&self, org: OrgId, now_ms: u64) -> Result<Vec<Invitation>, StoreError>;

    /// Withdraws an invitation of `org` by the hash of its token: removes it and
    /// returns it; `None` when `org` has no such invitation.
    fn withdraw_invitation(&self, org: OrgId, hash: &str)
    -> Result<Option<Invitation>, StoreError>;
}
