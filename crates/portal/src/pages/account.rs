//! The account's page: its sessions, its password, its address (changed by a link
//! mailed to the new one) and the language of its pages.

use super::*;
use crate::text::languages;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: &'a Text,
    nav: Option<Nav>,
    email: String,
    shown: Shown,
    min_password: usize,
    sessions: Vec<(String, String, bool)>,
    /// The languages to choose from (tag, name in itself), and the one chosen.
    languages: Vec<(&'static str, &'static str)>,
    language: String,
}

/// The account page's forms that can be refused.
enum Refused {
    Password,
    Email,
}

/// What the account's page says after a form: a note, or why a form was refused
/// (shown beside that form).
#[derive(Default)]
pub(super) struct Shown {
    note: Option<&'static str>,
    password_error: Option<String>,
    email_error: Option<String>,
}

impl Shown {
    fn note(note: &'static str) -> Shown {
        Shown {
            note: Some(note),
            ..Shown::default()
        }
    }

    /// Why `form` was refused.
    fn refused(form: Refused, words: String) -> Shown {
        let why = Some(words);
        match form {
            Refused::Password => Shown {
                password_error: why,
                ..Shown::default()
            },
            Refused::Email => Shown {
                email_error: why,
                ..Shown::default()
            },
        }
    }

    fn status(&self) -> StatusCode {
        match (&self.password_error, &self.email_error) {
            (None, None) => StatusCode::OK,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

pub(super) async fn account_page(portal: &Portal, who: SignedIn, shown: Shown) -> Response {
    let t = who.t;
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
            page(
                shown.status(),
                &AccountPage {
                    t,
                    nav: who.nav(None),
                    email: who.account.email.clone(),
                    shown,
                    min_password: MIN_PASSWORD,
                    sessions,
                    languages: languages(),
                    language: who.account.language.clone().unwrap_or_default(),
                },
            )
        }
        Err(error) => failure(t, &error),
    }
}

pub(super) async fn account(State(portal): State<Portal>, who: SignedIn) -> Response {
    account_page(&portal, who, Shown::default()).await
}

pub(super) async fn end_others(State(portal): State<Portal>, who: SignedIn) -> Response {
    let token = who.token.clone();
    if let Err(error) = blocking(&portal, move |site| {
        site.log_out_elsewhere(&token, now_ms())
    })
    .await
    {
        return failure(who.t, &error);
    }
    account_page(&portal, who, Shown::note("ended_others")).await
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
    Form(form): Form<PasswordChange>,
) -> Response {
    let token = who.token.clone();
    let changed = blocking(&portal, move |site| {
        site.change_password(&token, &form.current, &form.password, now_ms())
    })
    .await;
    match changed {
        Ok(()) => account_page(&portal, who, Shown::note("password_changed")).await,
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            let shown = Shown::refused(Refused::Password, say(who.t, &error));
            account_page(&portal, who, shown).await
        }
        Err(error) => failure(who.t, &error),
    }
}

#[derive(Deserialize)]
pub(super) struct EmailChange {
    #[serde(default)]
    email: String,
    #[serde(default)]
    current: String,
}

/// Asks for a change of address: the same answer whether or not the new address has
/// an account (the mail says the rest).
pub(super) async fn ask_email_change(
    State(portal): State<Portal>,
    who: SignedIn,
    Form(form): Form<EmailChange>,
) -> Response {
    let token = who.token.clone();
    let asked = blocking(&portal, move |site| {
        site.ask_email_change(&token, (&form.email, &form.current), now_ms())
    })
    .await;
    match asked {
        Ok(()) => account_page(&portal, who, Shown::note("email_change_sent")).await,
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            let shown = Shown::refused(Refused::Email, say(who.t, &error));
            account_page(&portal, who, shown).await
        }
        Err(error) => failure(who.t, &error),
    }
}

#[derive(Deserialize)]
pub(super) struct LanguageChoice {
    #[serde(default)]
    language: String,
}

/// Sets the language of the account's pages: one the portal has words for, or
/// automatic (the browser's).
pub(super) async fn set_language(
    State(portal): State<Portal>,
    who: SignedIn,
    headers: HeaderMap,
    Form(form): Form<LanguageChoice>,
) -> Response {
    let chosen = match form.language.as_str() {
        "" | "auto" => None,
        tag => match languages().into_iter().find(|(known, _)| *known == tag) {
            Some((known, _)) => Some(known),
            None => {
                let words = who.t.s("err_language_invalid").to_string();
                return message(who.t, StatusCode::BAD_REQUEST, "language", words, None);
            }
        },
    };
    let token = who.token.clone();
    let set = blocking(&portal, move |site| {
        site.set_language(&token, chosen, now_ms())
    })
    .await;
    match set {
        Ok(account) => {
            let who = SignedIn {
                t: text_for(account.language.as_deref(), &headers),
                account,
                ..who
            };
            account_page(&portal, who, Shown::note("language_set")).await
        }
        Err(error) => failure(who.t, &error),
    }
}

/// The page of a link mailed to a new address: a button makes the change (a GET
/// changes nothing).
pub(super) async fn email_form(headers: HeaderMap, Path(token): Path<String>) -> Response {
    let (heading, button) = ("email_change_title", "email_change_button");
    let action = format!("/email/{token}");
    let form = FormPage::link_button(text(&headers), heading, &action, button);
    page(StatusCode::OK, &form)
}

/// Follows a link mailed to a new address: the account moves to it, its other sessions
/// end (the follower's own stays, when it is the account's).
pub(super) async fn change_email(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let signed = maybe_signed_in(&portal, &headers).await;
    let t = signed.as_ref().map_or_else(|| text(&headers), |who| who.t);
    let keep = signed.map(|who| who.token);
    let changed = blocking(&portal, move |site| {
        site.change_email(&token, keep.as_deref(), Some(peer.ip()), now_ms())
    })
    .await;
    let heading = "email_change_title";
    match changed {
        Ok(_) => {
            let words = t.s("email_changed").to_string();
            message(t, StatusCode::OK, heading, words, Some(("go_home", "/")))
        }
        Err(error) if error.kind() == ErrorKind::Taken => {
            let words = t.s("email_taken").to_string();
            message(
                t,
                StatusCode::CONFLICT,
                heading,
                words,
                Some(("go_home", "/")),
            )
        }
        Err(error) => members::link_failure(t, heading, &error),
    }
}
