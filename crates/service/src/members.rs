//! An organisation's members: invitations by e-mail (single use, for 7 days), roles
//! changed, members removed, and always at least one owner. Admins manage members;
//! only owners make, unmake or remove owners.

use crate::accounts::{
    CONFIRM_FOR_MS, Membership, Session, check_email, check_password, new_token_string,
};
use crate::actor::Actor;
use crate::config::Registration;
use crate::error::ServiceError;
use crate::mail::Mail;
use crate::secrets::{code_hash, token_hash};
use crate::site::Site;
use sitesync_core::OrgId;
use sitesync_store::{Account, AccountId, AuditAction, Invitation, Org, Role, StoreError};
use std::net::IpAddr;

/// An invitation as its link's page shows it.
#[derive(Debug, Clone)]
pub struct Invited {
    /// The organisation to join.
    pub org: Org,
    /// The address invited.
    pub email: String,
    /// The role given on joining.
    pub role: Role,
    /// Whether the address has an account already (it signs in to accept; otherwise
    /// the page makes one).
    pub has_account: bool,
}

/// An invitation not yet accepted, as the members page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvitation {
    /// What names it to withdraw it: the SHA-256 of its token (which the hash does not
    /// give away, so it is no use to accept the invitation).
    pub id: String,
    /// The address invited.
    pub email: String,
    /// The role given on joining.
    pub role: Role,
    /// Who invited, by address (as it is now).
    pub invited_by: String,
    /// When its link stops working (ms since the epoch).
    pub expires_at: u64,
}

fn role_named(name: &str) -> Result<Role, ServiceError> {
    Role::parse(name).ok_or_else(|| {
        ServiceError::Input(format!(
            "{name:?} is not a role; the roles are {}",
            Role::ALL.map(Role::name).join(", ")
        ))
    })
}

impl Site {
    /// The members of an organisation, for its admins and owners.
    pub fn members(&self, actor: Actor, org: OrgId) -> Result<Vec<(Account, Role)>, ServiceError> {
        actor.in_org(org, Role::Admin, "see the members")?;
        Ok(self.accounts_storage()?.members(org)?)
    }

    /// The invitations of an organisation not yet accepted and not expired, soonest to
    /// expire first, for its admins and owners.
    pub fn invitations(
        &self,
        actor: Actor,
        org: OrgId,
        now_ms: u64,
    ) -> Result<Vec<PendingInvitation>, ServiceError> {
        actor.in_org(org, Role::Admin, "see the invitations")?;
        let store = self.accounts_storage()?;
        store
            .invitations(org, now_ms)?
            .into_iter()
            .map(|i| {
                Ok(PendingInvitation {
                    invited_by: store.account(i.invited_by)?.email,
                    id: i.hash,
                    email: i.email,
                    role: i.role,
                    expires_at: i.expires_at,
                })
            })
            .collect()
    }

    /// Withdraws the pending invitation `id` of an organisation: its link stops working.
    /// Admins withdraw invitations; only owners those that make owners.
    pub fn withdraw_invitation(
        &self,
        actor: Actor,
        org: OrgId,
        id: &str,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let pending = self
            .invitations(actor, org, now_ms)?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| StoreError::NotFound("there is no such invitation pending".into()))?;
        if pending.role == Role::Owner {
            actor.in_org(org, Role::Owner, "withdraw invitations of owners")?;
        }
        self.accounts_storage()?
            .withdraw_invitation(org, id)?
            .ok_or_else(|| StoreError::NotFound("there is no such invitation pending".into()))?;
        tracing::info!(%actor, org, "invitation withdrawn");
        let detail = format!("{} as {}", pending.email, pending.role.name());
        self.audit(actor, Some(org), AuditAction::InvitationWithdrawn, detail)
    }

    /// Invites `email` to join an organisation as `role`: mails a single-use link. A
    /// member invites (admins; owners only invite owners).
    pub fn invite(
        &self,
        actor: Actor,
        org: OrgId,
        (email, role): (&str, &str),
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let role = role_named(role)?;
        let least = if role == Role::Owner {
            Role::Owner
        } else {
            Role::Admin
        };
        actor.in_org(org, least, "invite members with this role")?;
        let inviter = self
            .accounts_storage()?
            .account(actor.account("invite members")?)?;
        let org = self.primary()?.org_by_id(org)?;
        let email = check_email(email)?;
        let (token, hash) = new_token_string()?;
        self.accounts_storage()?.put_invitation(&Invitation {
            hash,
            org: org.id,
            email: email.clone(),
            role,
            invited_by: inviter.id,
            expires_at: now_ms.saturating_add(CONFIRM_FOR_MS),
        })?;
        tracing::info!(
            account = inviter.id,
            org = org.id,
            role = role.name(),
            "member invited"
        );
        let detail = format!("{email} as {}", role.name());
        self.audit(actor, Some(org.id), AuditAction::MemberInvited, detail)?;
        self.send_mail(&Mail {
            to: email,
            subject: format!("Join {} on sitesync", org.name),
            body: format!(
                "{} invites you to join {} as {}.\n\nTo accept, open:\n\n{}/invite/{token}\n\nThe link works once, for 7 days.\n",
                inviter.email,
                org.name,
                role.name(),
                self.portal_url()
            ),
        })
        .map(|_| ())
    }

    /// What an invitation's link offers.
    pub fn invitation(&self, token: &str, now_ms: u64) -> Result<Invited, ServiceError> {
        let store = self.accounts_storage()?;
        let invitation = store
            .invitation(&token_hash(token), now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        Ok(Invited {
            org: self.primary()?.org_by_id(invitation.org)?,
            has_account: store.account_by_email(&invitation.email)?.is_some(),
            email: invitation.email,
            role: invitation.role,
        })
    }

    /// Accepts an invitation as the signed-in account, which must be the one invited.
    pub fn accept_invitation(
        &self,
        token: &str,
        account: &Account,
        now_ms: u64,
    ) -> Result<Membership, ServiceError> {
        let store = self.accounts_storage()?;
        let hash = token_hash(token);
        let invitation = store
            .invitation(&hash, now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        if !invitation.email.eq_ignore_ascii_case(&account.email) {
            return Err(ServiceError::Input(format!(
                "this invitation is for {}: sign in as that address to accept it",
                invitation.email
            )));
        }
        store
            .take_invitation(&hash, now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        store.set_member(invitation.org, account.id, invitation.role)?;
        tracing::info!(
            account = account.id,
            org = invitation.org,
            "invitation accepted"
        );
        self.membership(account, invitation.org)
    }

    /// Accepts an invitation for an address without an account: makes the account
    /// (confirmed: the link reached the address) with `password`, and signs it in.
    pub fn join_by_invitation(
        &self,
        token: &str,
        password: &str,
        from: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<(Session, Membership), ServiceError> {
        let store = self.accounts_storage()?;
        let invitation = store
            .invitation(&token_hash(token), now_ms)?
            .ok_or(ServiceError::LinkExpired)?;
        if self.registration() == Registration::Closed {
            return Err(ServiceError::NotAllowed {
                actor: "anyone".into(),
                what: "make an account here: the operator makes them (sitesync account create)",
            });
        }
        check_password(password, &invitation.email)?;
        store.create_account(&invitation.email, &code_hash(password)?, true, now_ms)?;
        let session = self.log_in(&invitation.email, password, from, now_ms)?;
        let membership = self.accept_invitation(token, &session.account, now_ms)?;
        Ok((session, membership))
    }

    /// The member `id` of an organisation the asking admin manages, with the asker's
    /// role and the member's, when the asker may change it (owners only for owners).
    fn managed_member(
        &self,
        actor: Actor,
        org: OrgId,
        id: AccountId,
        what: &'static str,
    ) -> Result<(Role, Account, Role), ServiceError> {
        let asker = actor.in_org(org, Role::Admin, "manage members")?;
        let (account, role) = self
            .members(actor, org)?
            .into_iter()
            .find(|(a, _)| a.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("there is no member {id}")))?;
        if role == Role::Owner && asker < Role::Owner {
            return Err(ServiceError::NotAllowed {
                actor: format!("a {}", asker.name()),
                what,
            });
        }
        Ok((asker, account, role))
    }

    /// Refuses a change that would leave the organisation without an owner.
    fn keeps_an_owner(&self, org: OrgId, leaving: AccountId) -> Result<(), ServiceError> {
        let owners = self
            .accounts_storage()?
            .members(org)?
            .into_iter()
            .filter(|(a, r)| *r == Role::Owner && a.id != leaving)
            .count();
        match owners {
            0 => Err(ServiceError::Input(
                "an organisation keeps at least one owner: make another member owner first".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Gives member `id` another role.
    pub fn set_role(
        &self,
        actor: Actor,
        org: OrgId,
        id: AccountId,
        role: &str,
    ) -> Result<(), ServiceError> {
        let role = role_named(role)?;
        let (asker, member, had) = self.managed_member(actor, org, id, "change owners")?;
        if role == Role::Owner && asker < Role::Owner {
            return Err(ServiceError::NotAllowed {
                actor: format!("a {}", asker.name()),
                what: "make owners",
            });
        }
        if had == Role::Owner && role != Role::Owner {
            self.keeps_an_owner(org, id)?;
        }
        self.accounts_storage()?.set_member(org, id, role)?;
        tracing::info!(%actor, org, member = id, role = role.name(), "role changed");
        let detail = format!("{}: {} to {}", member.email, had.name(), role.name());
        self.audit(actor, Some(org), AuditAction::RoleChanged, detail)
    }

    /// Takes member `id` out of the organisation.
    pub fn remove_member(
        &self,
        actor: Actor,
        org: OrgId,
        id: AccountId,
    ) -> Result<(), ServiceError> {
        let (_, member, had) = self.managed_member(actor, org, id, "remove owners")?;
        if had == Role::Owner {
            self.keeps_an_owner(org, id)?;
        }
        self.accounts_storage()?.remove_member(org, id)?;
        tracing::info!(%actor, org, member = id, "member removed");
        let detail = format!("{} ({})", member.email, had.name());
        self.audit(actor, Some(org), AuditAction::MemberRemoved, detail)
    }
}
