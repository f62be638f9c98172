//! The account's page: its sessions, and changing its password.

use super::*;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    email: String,
    note: Option<&'static str>,
    error: Option<String>,
    min_password: usize,
    sessions: Vec<(String, String, bool)>,
}

pub(super) async fn account_page(
    portal: &Portal,
    who: SignedIn,
    headers: &HeaderMap,
    (note, error): (Option<&'static str>, Option<String>),
) -> Response {
    let t = text(headers);
    let token = who.token.clone();
    match blocking(portal, move |site| site.sessions(&token, now_ms())).await {
        Ok(sessions) => {
            let sessions = sessions
                .into_iter()
                .map(|s| {
                    (
                        local_time(s.started_at, "UTC"),
                        local_time(s.seen_at, "UTC"),
                        s.current,
                    )
                })
                .collect();
            let status = shown_with(&error);
            page(
                status,
                &AccountPage {
                    t,
                    nav: who.nav(None),
                    email: who.account.email.clone(),
                    note,
                    error,
                    min_password: MIN_PASSWORD,
                    sessions,
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn account(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
) -> Response {
    account_page(&portal, who, &headers, (None, None)).await
}

pub(super) async fn end_others(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
) -> Response {
    let token = who.token.clone();
    if let Err(error) = blocking(&portal, move |site| {
        site.log_out_elsewhere(&token, now_ms())
    })
    .await
    {
        return failure(text(&headers), &error);
    }
    account_page(&portal, who, &headers, (Some("ended_others"), None)).await
}

#[derive(Deserialize)]
pub(super) struct PasswordChange {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn change_password(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
    Form(form): Form<PasswordChange>,
) -> Response {
    let token = who.token.clone();
    let changed = blocking(&portal, move |site| {
        site.change_password(&token, &form.current, &form.password, now_ms())
    })
    .await;
    match changed {
        Ok(()) => account_page(&portal, who, &headers, (Some("password_changed"), None)).await,
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            account_page(
                &portal,
                who,
                &headers,
                (None, Some(say(text(&headers), &error))),
            )
            .await
        }
        Err(error) => failure(text(&headers), &error),
    }
}
