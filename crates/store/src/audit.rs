//! The audit log on the primary: who did what to an organisation (or to an account),
//! when and from where. Entries are only appended; a reader pages through them newest
//! first by id, never by offset, so a page stays right while entries arrive.

use crate::StoreError;
use crate::accounts::AccountId;
use sitesync_core::OrgId;

/// What was done, by a short stable name (stored, and the key of its phrase in the
/// portal's catalogues: `audit_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// An account signed in to the portal.
    Login,
    /// A sign-in was refused (the address typed is kept; never the password).
    LoginFailed,
    /// An organisation's sync key was rotated.
    KeyRotated,
    /// A member was given another role (or granted one by the operator).
    RoleChanged,
    /// Someone was invited to join an organisation.
    MemberInvited,
    /// A member was taken out of an organisation.
    MemberRemoved,
    /// A store was created.
    StoreCreated,
    /// A site's stores were changed.
    StoresAssigned,
    /// A site was revoked.
    SiteRevoked,
    /// An organisation was created.
    OrgCreated,
    /// One of the site's settings was changed (named; never a secret's value).
    SettingChanged,
    /// The operator disabled an account, or enabled it again.
    AccountDisabled,
    /// The operator changed how many organisations an account may own.
    LimitChanged,
    /// An account's password was set by a reset link.
    PasswordReset,
    /// An organisation's time zone was set.
    TimeZoneSet,
    /// The operator changed an organisation's licence.
    LicenceChanged,
    /// An account's address was changed (by the link mailed to the new one).
    EmailChanged,
    /// An invitation not yet accepted was withdrawn.
    InvitationWithdrawn,
    /// An organisation was deleted by its owner.
    OrgDeleted,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 19] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::KeyRotated,
        AuditAction::RoleChanged,
        AuditAction::MemberInvited,
        AuditAction::MemberRemoved,
        AuditAction::StoreCreated,
        AuditAction::StoresAssigned,
        AuditAction::SiteRevoked,
        AuditAction::OrgCreated,
        AuditAction::SettingChanged,
        AuditAction::AccountDisabled,
        AuditAction::LimitChanged,
        AuditAction::PasswordReset,
        AuditAction::TimeZoneSet,
        AuditAction::LicenceChanged,
        AuditAction::EmailChanged,
        AuditAction::InvitationWithdrawn,
        AuditAction::OrgDeleted,
    ];

    /// Its name, as stored (`login`, `key_rotated`, …).
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::KeyRotated => "key_rotated",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::MemberInvited => "member_invited",
            AuditAction::MemberRemoved => "member_removed",
            AuditAction::StoreCreated => "store_created",
            AuditAction::StoresAssigned => "stores_assigned",
            AuditAction::SiteRevoked => "site_revoked",
            AuditAction::OrgCreated => "org_created",
            AuditAction::SettingChanged => "setting_changed",
            AuditAction::AccountDisabled => "account_disabled",
            AuditAction::LimitChanged => "limit_changed",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::TimeZoneSet => "time_zone_set",
            AuditAction::LicenceChanged => "licence_changed",
            AuditAction::EmailChanged => "email_changed",
            AuditAction::InvitationWithdrawn => "invitation_withdrawn",
            AuditAction::OrgDeleted => "org_deleted",
        }
    }

    /// The action of a stored name, if it is one.
    pub fn parse(name: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// What an audit entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The organisation it concerns; `None` for an entry of no one organisation (a
    /// sign-in, a setting, an account command), which an organisation's log shows when
    /// its account is one of the organisation's members.
    pub org: Option<OrgId>,
    /// When (ms since the epoch).
    pub at: u64,
    /// Who, in words: an account's e-mail (as it was when written), "operator (command
    /// line)", "local API"; for a failed sign-in, the address typed.
    pub actor: String,
    /// The account the entry is about: the one that acted in the portal or signed in,
    /// or the one an operator's account command changed.
    pub account: Option<AccountId>,
    /// The IP address the request came from, when it came over the network.
    pub from: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// What it was done to, in words: never a secret or a password.
    pub detail: String,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id: entries are numbered in the order they were appended.
    pub id: u64,
    /// What it says.
    pub audit: Audit,
}

/// The audit log.
pub trait AuditStorage: Send + Sync {
    /// Appends an entry, durably; returns its id.
    fn append_audit(&self, audit: &Audit) -> Result<u64, StoreError>;

    /// Up to `limit` entries with ids below `before` (all, without it), newest first.
    /// Of `org`: its own entries, and the entries of no organisation about its members'
    /// accounts (never what a member did in another organisation). Without `org`: every
    /// entry.
    fn audit(
        &self,
        org: Option<OrgId>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
