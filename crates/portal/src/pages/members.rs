//! An organisation's members: the list, invitations, roles, removal, and joining by an
//! invitation's link.

use super::*;

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    id: u64,
    org: String,
    members: Vec<(u64, String, &'static str)>,
    invitations: Vec<Pending>,
    roles: [&'static str; 4],
    note: Option<&'static str>,
    error: Option<String>,
}

/// A pending invitation as the members page lists it.
struct Pending {
    id: String,
    email: String,
    role: &'static str,
    invited_by: String,
    /// When its link stops working, in the organisation's time zone.
    until: String,
}

pub(super) async fn members_page(
    portal: &Portal,
    t: &Text,
    who: SignedIn,
    org: u64,
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let account = who.account.clone();
    let found = blocking(portal, move |site| {
        let member = site.membership(&account, org)?;
        let members = site.members(member.actor(None), org)?;
        let invitations = site.invitations(member.actor(None), org, now_ms())?;
        Ok((member, members, invitations))
    });
    match found.await {
        Ok((member, members, invitations)) => {
            let zone = &member.org.time_zone;
            let invitations = invitations
                .into_iter()
                .map(|i| Pending {
                    until: local_time(i.expires_at, zone),
                    id: i.id,
                    email: i.email,
                    role: i.role.name(),
                    invited_by: i.invited_by,
                })
                .collect();
            let status = shown_with(&error);
            page(
                status,
                &MembersPage {
                    t,
                    nav: who.nav(Some(member.org.id)),
                    id: member.org.id,
                    org: member.org.name,
                    members: members
                        .into_iter()
                        .map(|(a, r)| (a.id, a.email, r.name()))
                        .collect(),
                    invitations,
                    roles: MemberRole::ALL.map(MemberRole::name),
                    note,
                    error,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn members(
    State(portal): State<Portal>,
    who: SignedIn,
    Path(org): Path<u64>,
) -> Response {
    members_page(&portal, who.t, who, org, (None, None)).await
}

#[derive(Deserialize)]
pub(super) struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Makes a change of members as the signed-in account, from `peer`: the page again
/// with `note`, or with why it was refused (a role the asker may not touch is refused
/// outright).
pub(super) async fn change_members(
    portal: &Portal,
    (who, peer): (SignedIn, SocketAddr),
    (org, note): (u64, &'static str),
    change: impl FnOnce(&Site, Actor) -> Result<(), ServiceError> + Send + 'static,
) -> Response {
    let t = who.t;
    let asking = who.account.clone();
    match blocking(portal, move |site| {
        change(site, acting(site, &asking, org, peer)?)
    })
    .await
    {
        Ok(()) => members_page(portal, t, who, org, (Some(note), None)).await,
        Err(error) if matches!(error.kind(), ErrorKind::Forbidden | ErrorKind::NotFound) => {
            failure(t, &error)
        }
        Err(error) => members_page(portal, t, who, org, (None, Some(say(t, &error)))).await,
    }
}

pub(super) async fn invite(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path(org): Path<u64>,
    Form(form): Form<MemberForm>,
) -> Response {
    change_members(
        &portal,
        (who, peer),
        (org, "invited_note"),
        move |site, actor| site.invite(actor, org, (&form.email, &form.role), now_ms()),
    )
    .await
}

pub(super) async fn set_role(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path((org, member)): Path<(u64, u64)>,
    Form(form): Form<MemberForm>,
) -> Response {
    change_members(
        &portal,
        (who, peer),
        (org, "member_changed"),
        move |site, actor| site.set_role(actor, org, member, &form.role),
    )
    .await
}

pub(super) async fn remove_member(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path((org, member)): Path<(u64, u64)>,
) -> Response {
    change_members(
        &portal,
        (who, peer),
        (org, "member_changed"),
        move |site, actor| site.remove_member(actor, org, member),
    )
    .await
}

pub(super) async fn withdraw_invitation(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: SignedIn,
    Path((org, id)): Path<(u64, String)>,
) -> Response {
    change_members(
        &portal,
        (who, peer),
        (org, "invitation_withdrawn_note"),
        move |site, actor| site.withdraw_invitation(actor, org, &id, now_ms()),
    )
    .await
}

/// A link that no longer works (used, withdrawn or expired) says so; other failures
/// as any page's.
pub(super) fn link_failure(t: &Text, heading: &'static str, error: &ServiceError) -> Response {
    match error {
        ServiceError::LinkExpired => message(
            t,
            StatusCode::NOT_FOUND,
            heading,
            t.s("link_gone").into(),
            Some(("go_home", "/")),
        ),
        error => failure(t, error),
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    token: String,
    org: String,
    role: &'static str,
    email: String,
    signed_in: bool,
    has_account: bool,
    min_password: usize,
    error: Option<String>,
}

pub(super) async fn invitation_page(
    portal: &Portal,
    headers: &HeaderMap,
    token: String,
    error: Option<String>,
) -> Response {
    let signed = maybe_signed_in(portal, headers).await;
    let t = signed.as_ref().map_or_else(|| text(headers), |who| who.t);
    let asked = token.clone();
    match blocking(portal, move |site| site.invitation(&asked, now_ms())).await {
        Ok(invited) => {
            let status = shown_with(&error);
            page(
                status,
                &InvitePage {
                    t,
                    nav: signed.as_ref().and_then(|who| who.nav(None)),
                    token,
                    org: invited.org.name,
                    role: invited.role.name(),
                    email: invited.email,
                    signed_in: signed.is_some(),
                    has_account: invited.has_account,
                    min_password: MIN_PASSWORD,
                    error,
                },
            )
        }
        Err(error) => link_failure(t, "join_title", &error),
    }
}

pub(super) async fn invitation(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    invitation_page(&portal, &headers, token, None).await
}

#[derive(Deserialize)]
pub(super) struct NewPassword {
    #[serde(default)]
    password: String,
}

pub(super) async fn accept(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> Response {
    let signed = maybe_signed_in(&portal, &headers).await;
    let t = signed.as_ref().map_or_else(|| text(&headers), |who| who.t);
    let asked = token.clone();
    let joined = blocking(&portal, move |site| match signed {
        Some(who) => Ok((
            None,
            site.accept_invitation(&asked, &who.account, now_ms())?,
        )),
        None => {
            let (session, member) =
                site.join_by_invitation(&asked, &form.password, Some(peer.ip()), now_ms())?;
            Ok((Some(session.token), member))
        }
    })
    .await;
    match joined {
        Ok((session, member)) => {
            let to = Redirect::to(&format!("/orgs/{}", member.org.id));
            match session {
                Some(token) => {
                    ([(header::SET_COOKIE, portal.cookie(Some(&token)))], to).into_response()
                }
                None => to.into_response(),
            }
        }
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            invitation_page(&portal, &headers, token, Some(say(t, &error))).await
        }
        Err(error) => link_failure(t, "join_title", &error),
    }
}
