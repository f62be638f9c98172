//! Signing up, confirming an address, signing in and out, and resetting a password.

use super::*;

#[derive(Clone, Deserialize)]
pub(super) struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) fn register_page(t: &Text) -> FormPage<'_> {
    let mut form = FormPage::new(t, "register_title", "/register", "create_account");
    form.password_autocomplete = "new-password";
    form.links = vec![("have_account", "/login")];
    form
}

pub(super) async fn register_form(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let t = text(&headers);
    match portal.site.registration() {
        Registration::Open => page(StatusCode::OK, &register_page(t)),
        _ => message(
            t,
            StatusCode::FORBIDDEN,
            "register_title",
            t.s("registration_closed").into(),
            Some(("sign_in", "/login")),
        ),
    }
}

pub(super) async fn register(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let email = form.email.clone();
    match blocking(&portal, move |site| {
        site.register(&form.email, &form.password, now_ms())
    })
    .await
    {
        Ok(()) => message(
            t,
            StatusCode::OK,
            "check_mail_title",
            t.s("check_mail").into(),
            None,
        ),
        Err(error) if error.kind() == ErrorKind::Forbidden => failure(t, &error),
        Err(error) => {
            let mut again = register_page(t);
            again.email = email;
            again.error = Some(say(t, &error));
            page(StatusCode::BAD_REQUEST, &again)
        }
    }
}

pub(super) async fn confirm_form(headers: HeaderMap, Path(token): Path<String>) -> Response {
    let action = format!("/confirm/{token}");
    let form = FormPage::link_button(text(&headers), "confirm_title", &action, "confirm_button");
    page(StatusCode::OK, &form)
}

pub(super) async fn confirm(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let t = text(&headers);
    match blocking(&portal, move |site| site.confirm_address(&token, now_ms())).await {
        Ok(_) => message(
            t,
            StatusCode::OK,
            "confirm_title",
            t.s("confirmed").into(),
            Some(("sign_in", "/login")),
        ),
        Err(error) => failure(t, &error),
    }
}

pub(super) fn login_page(t: &Text) -> FormPage<'_> {
    let mut form = FormPage::new(t, "sign_in_title", "/login", "sign_in");
    form.links = vec![("no_account", "/register"), ("forgot", "/reset")];
    form
}

pub(super) async fn login_form(headers: HeaderMap) -> Response {
    page(StatusCode::OK, &login_page(text(&headers)))
}

pub(super) async fn login(
    State(portal): State<Portal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let now = Instant::now();
    let subjects = [
        Subject::Address(peer.ip()),
        Subject::Account(form.email.trim().to_lowercase()),
    ];
    let mut again = login_page(t);
    again.email = form.email.clone();
    if let Some(wait) = subjects
        .iter()
        .find_map(|s| portal.attempts.refused(s, now))
    {
        tracing::warn!(%peer, "sign-in refused: too many failed attempts");
        again.error = Some(t.s("too_many").to_string());
        let retry = [(header::RETRY_AFTER, wait.to_string())];
        return (retry, page(StatusCode::TOO_MANY_REQUESTS, &again)).into_response();
    }
    let asked = form.clone();
    match blocking(&portal, move |site| {
        site.log_in(&asked.email, &asked.password, Some(peer.ip()), now_ms())
    })
    .await
    {
        Ok(session) => (
            [(header::SET_COOKIE, portal.cookie(Some(&session.token)))],
            Redirect::to("/"),
        )
            .into_response(),
        Err(error) => {
            if matches!(error, ServiceError::WrongLogin) {
                tracing::warn!(%peer, "failed sign-in");
                portal.attempts.failed(&subjects, now);
            }
            again.error = Some(say(t, &error));
            let (status, _) = error.kind().http();
            page(
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
                &again,
            )
        }
    }
}

pub(super) async fn logout(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Some(token) = portal.session_token(&headers) {
        let _ = blocking(&portal, move |site| site.log_out(&token)).await;
    }
    (
        [(header::SET_COOKIE, portal.cookie(None))],
        Redirect::to("/login"),
    )
        .into_response()
}

pub(super) async fn reset_form(headers: HeaderMap) -> Response {
    let t = text(&headers);
    let mut form = FormPage::new(t, "reset_title", "/reset", "send_reset");
    form.password_label = None;
    page(StatusCode::OK, &form)
}

pub(super) async fn ask_reset(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    // The same answer whether or not the address has an account.
    let _ = blocking(&portal, move |site| site.ask_reset(&form.email, now_ms())).await;
    message(
        t,
        StatusCode::OK,
        "check_mail_title",
        t.s("check_mail").into(),
        None,
    )
}

pub(super) fn new_password_page<'a>(t: &'a Text, token: &str) -> FormPage<'a> {
    let mut form = FormPage::new(
        t,
        "set_password_title",
        &format!("/reset/{token}"),
        "set_password",
    );
    form.ask_email = false;
    form.password_label = Some("new_password");
    form.password_autocomplete = "new-password";
    form
}

pub(super) async fn new_password_form(headers: HeaderMap, Path(token): Path<String>) -> Response {
    page(StatusCode::OK, &new_password_page(text(&headers), &token))
}

pub(super) async fn set_password(
    State(portal): State<Portal>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<Credentials>,
) -> Response {
    let t = text(&headers);
    let asked = token.clone();
    match blocking(&portal, move |site| {
        site.reset_password(&asked, &form.password, now_ms())
    })
    .await
    {
        Ok(_) => (
            [(header::SET_COOKIE, portal.cookie(None))],
            message(
                t,
                StatusCode::OK,
                "set_password_title",
                t.s("password_set").into(),
                Some(("sign_in", "/login")),
            ),
        )
            .into_response(),
        Err(error) if error.kind() == ErrorKind::InvalidInput => {
            let mut again = new_password_page(t, &token);
            again.error = Some(say(t, &error));
            page(StatusCode::BAD_REQUEST, &again)
        }
        Err(error) => failure(t, &error),
    }
}
