//! Signing in (password, the step-up, the same-origin hop to `rd`, signing out), and the pages
//! before it: registration, e-mail verification, forgotten and expired passwords.

use super::*;
use axum::http::HeaderValue;
use rampart_core::services::oauth::{Callback, Finished};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    rd: Option<String>,
    step_up: Option<String>,
    done: Option<String>,
}

#[derive(Template, Debug)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    c: Chrome<'a>,
    email: String,
    rd: String,
    /// Where a passkey sign-in (in the script) goes: the vetted `rd`.
    next: String,
    registration: bool,
    /// "Sign in with …": one per configured provider.
    providers: Vec<ProviderButton>,
}

/// A provider's sign-in link.
#[derive(Debug)]
pub struct ProviderButton {
    href: String,
    label: String,
}

fn login_form<'a>(state: &'a AppState, email: String, rd: Option<String>, notice: Option<Notice>) -> LoginPage<'a> {
    let rd_param = rd
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!("?rd={}", url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()))
        .unwrap_or_default();
    let providers = rampart_core::services::oauth::providers(state)
        .into_iter()
        .map(|(name, display)| ProviderButton {
            href: format!("/v1/auth/oauth/{name}/start{rd_param}"),
            label: state.ui.catalog.fill("login.with_provider", "provider", &display),
        })
        .collect();
    LoginPage {
        c: Chrome::public(state, "login.title").with(notice),
        email,
        next: redirect::after_sign_in(rd.as_deref(), &state.settings.gateway),
        rd: rd.unwrap_or_default(),
        registration: state.settings.accounts.registration,
        providers,
    }
}

/// A provider's callback in a browser: the session cookie and on to `rd`, the step-up page
/// for an account with a second factor, the account's security page after a link, or the
/// sign-in page with the reason. Served under `/v1/auth/oauth/`, so the pages' CSP is set here.
pub fn federated(state: &AppState, result: Result<Callback, ServiceError>) -> Response {
    let mut res = match result {
        Ok(Callback { finished: Finished::SignedIn(LoginOutcome::Session(issued)), rd }) => {
            let mut res = signed_in(state, issued, rd.as_deref());
            if res.status() == StatusCode::SEE_OTHER {
                *res.status_mut() = StatusCode::FOUND;
            }
            res
        }
        Ok(Callback { finished: Finished::SignedIn(LoginOutcome::StepUp(required)), rd }) => {
            html(StatusCode::OK, &step_up_page(state, required, rd, None, None))
        }
        Ok(Callback { finished: Finished::Linked(_), rd }) => {
            let to = rd.unwrap_or_else(|| "/ui/account/security".to_string());
            let mut res = see_other(&redirect::after_sign_in(Some(&to), &state.settings.gateway));
            *res.status_mut() = StatusCode::FOUND;
            res
        }
        Err(e) => {
            let status = match e {
                ServiceError::TooManyAttempts { .. } | ServiceError::RateLimited { .. } => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                _ => StatusCode::BAD_REQUEST,
            };
            html(status, &login_form(state, String::new(), None, Some(refusal(&state.ui, &e))))
        }
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(crate::ui::PAGE_CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `/ui` itself: the account, or the sign-in page on the way to it.
pub async fn home() -> Response {
    see_other("/ui/account")
}

/// The sign-in page. A browser already signed in goes on to `rd` (unless a fresh sign-in is
/// asked for with `step_up`).
pub async fn login_page(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(q): Query<LoginQuery>,
) -> Response {
    if viewer.is_some() && q.step_up.is_none() {
        return see_other(&redirect::after_sign_in(q.rd.as_deref(), &state.settings.gateway));
    }
    let page = login_form(&state, String::new(), q.rd, None);
    let page = LoginPage { c: page.c.done(q.done.as_deref()), ..page };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    rd: Option<String>,
}

/// Where a new session goes: its cookie set, then on to `rd`.
fn signed_in(state: &AppState, issued: Issued, rd: Option<&str>) -> Response {
    let Issued::Cookie { value, max_age, .. } = issued else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut res = see_other(&redirect::after_sign_in(rd, &state.settings.gateway));
    match session_cookie(state, &value, max_age) {
        Ok(cookie) => {
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => e.into_response(),
    }
}

/// A refusal that ends the sign-in attempt: the expired password's change form, or the
/// sign-in page with the reason.
fn sign_in_refused(state: &AppState, e: &ServiceError, email: String, rd: Option<String>) -> Response {
    if let ServiceError::PasswordExpired { change_token } = e {
        let c = Chrome::public(state, "reset.title").with(Some(Notice::info(state.ui.catalog.get("reset.expired"))));
        return html(StatusCode::OK, &ResetPage { c, token: change_token.clone() });
    }
    let status = match e {
        ServiceError::TooManyAttempts { .. } | ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    html(status, &login_form(state, email, rd, Some(refusal(&state.ui, e))))
}

/// Password sign-in: a session, or the step-up the account needs.
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<LoginForm>,
) -> Response {
    match login::login(&state, &ctx, &f.email, &f.password, rampart_domain::SessionMode::Cookie).await {
        Ok(LoginOutcome::Session(issued)) => signed_in(&state, issued, f.rd.as_deref()),
        Ok(LoginOutcome::StepUp(required)) => html(StatusCode::OK, &step_up_page(&state, required, f.rd, None, None)),
        Err(e) => sign_in_refused(&state, &e, f.email, f.rd),
    }
}

#[derive(Template, Debug)]
#[template(path = "step_up.html")]
pub struct StepUpPage<'a> {
    c: Chrome<'a>,
    mfa_token: String,
    rd: String,
    /// The offered methods, carried through the forms (`totp,backup_code,…`).
    methods: String,
    /// Where the passkey step (in the script) goes: the vetted `rd`.
    next: String,
    webauthn: bool,
    totp: bool,
    backup_code: bool,
    email: bool,
    /// The e-mailed code was sent: its form comes first.
    email_sent: bool,
}

fn step_up_page<'a>(
    state: &'a AppState,
    required: StepUpRequired,
    rd: Option<String>,
    notice: Option<Notice>,
    email_sent: Option<bool>,
) -> StepUpPage<'a> {
    let has = |m: &str| required.methods.iter().any(|x| x == m);
    StepUpPage {
        c: Chrome::public(state, "step_up.title").with(notice),
        next: redirect::after_sign_in(rd.as_deref(), &state.settings.gateway),
        webauthn: has("webauthn"),
        totp: has("totp"),
        backup_code: has("backup_code"),
        email: has("email"),
        email_sent: email_sent.unwrap_or(false),
        methods: required.methods.join(","),
        mfa_token: required.mfa_token,
        rd: rd.unwrap_or_default(),
    }
}

#[derive(Debug, Deserialize)]
pub struct StepUpForm {
    mfa_token: String,
    method: String,
    code: String,
    /// The methods the page offered, to show them again after a wrong code.
    #[serde(default)]
    methods: String,
    #[serde(default)]
    rd: Option<String>,
}

/// The second step: a TOTP code, a backup code or the e-mailed code.
pub async fn step_up(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<StepUpForm>,
) -> Response {
    let code = f.code.trim();
    let answer = match f.method.as_str() {
        "backup_code" => Answer::BackupCode(code),
        "email" => Answer::Email(code),
        _ => Answer::Totp(code),
    };
    match login::complete_step_up(&state, &ctx, &f.mfa_token, answer).await {
        Ok(issued) => signed_in(&state, issued, f.rd.as_deref()),
        Err(e @ ServiceError::InvalidMfaCode) => {
            let required =
                StepUpRequired { mfa_token: f.mfa_token, methods: f.methods.split(',').map(str::to_string).collect() };
            let email_sent = f.method == "email";
            html(StatusCode::OK, &step_up_page(&state, required, f.rd, Some(refusal(&state.ui, &e)), Some(email_sent)))
        }
        Err(e) => sign_in_refused(&state, &e, String::new(), f.rd),
    }
}

#[derive(Debug, Deserialize)]
pub struct EmailCodeForm {
    mfa_token: String,
    #[serde(default)]
    methods: String,
    #[serde(default)]
    rd: Option<String>,
}

/// Sends the e-mailed sign-in code, then shows its form.
pub async fn email_code(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<EmailCodeForm>,
) -> Response {
    let notice = match mfa::send_email_code(&state, &ctx, &f.mfa_token).await {
        Ok(()) => Notice::info(state.ui.catalog.get("step_up.email_sent")),
        Err(e @ ServiceError::InvalidMfaToken) => return sign_in_refused(&state, &e, String::new(), f.rd),
        Err(e) => refusal(&state.ui, &e),
    };
    let required =
        StepUpRequired { mfa_token: f.mfa_token, methods: f.methods.split(',').map(str::to_string).collect() };
    html(StatusCode::OK, &step_up_page(&state, required, f.rd, Some(notice), Some(true)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContinueQuery {
    rd: Option<String>,
}

/// The same-origin hop to an allowed external `rd` (a form post may not redirect to another
/// origin under `form-action 'self'`). Vetted again: nothing else passes.
pub async fn continue_to(State(state): State<AppState>, Query(q): Query<ContinueQuery>) -> Response {
    match redirect::vet(q.rd.as_deref(), &state.settings.gateway) {
        Some(Target::External(url)) => see_other(&url),
        Some(Target::Local(path)) => see_other(&path),
        None => see_other(redirect::DEFAULT_TARGET),
    }
}

/// Signs out this browser.
pub async fn logout(State(state): State<AppState>, ctx: RequestContext, Viewer(auth): Viewer) -> Response {
    if let Err(e) = sessions::logout(&state, &ctx, &auth).await {
        return account_error(&state, &auth, &e);
    }
    let mut res = see_other("/ui/login?done=signed_out");
    match cleared_cookie(&state) {
        Ok(v) => {
            res.headers_mut().insert(header::SET_COOKIE, v);
            res
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Template, Debug)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    c: Chrome<'a>,
    email: String,
    name: String,
    open: bool,
}

pub async fn register_page(State(state): State<AppState>) -> Response {
    let open = state.settings.accounts.registration;
    let notice = (!open).then(|| Notice::info(state.ui.catalog.get("error.registration_closed")));
    let c = Chrome::public(&state, "register.title").with(notice);
    html(StatusCode::OK, &RegisterPage { c, email: String::new(), name: String::new(), open })
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    email: String,
    #[serde(default)]
    name: String,
    password: String,
}

pub async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<RegisterForm>,
) -> Response {
    let name = Some(f.name.trim().to_string()).filter(|n| !n.is_empty());
    match registration::register(&state, &ctx, f.email.clone(), f.password, name).await {
        Ok(_) if state.settings.accounts.verify_email => {
            let c = Chrome::public(&state, "register.check_title");
            html(StatusCode::OK, &message(c, "register.check_title", "register.check_body", "/ui/login", "login.title"))
        }
        Ok(_) => see_other("/ui/login?done=registered"),
        Err(e) => {
            let c = Chrome::public(&state, "register.title").with(Some(refusal(&state.ui, &e)));
            html(
                StatusCode::OK,
                &RegisterPage { c, email: f.email, name: f.name, open: state.settings.accounts.registration },
            )
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

#[derive(Template, Debug)]
#[template(path = "verify.html")]
pub struct VerifyPage<'a> {
    c: Chrome<'a>,
    token: String,
}

/// The link from the verification e-mail: a button that confirms (a GET changes nothing, as
/// mail scanners follow links).
pub async fn verify_page(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    html(StatusCode::OK, &VerifyPage { c: Chrome::public(&state, "verify.title"), token: q.token })
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    token: String,
}

pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<TokenForm>,
) -> Response {
    match registration::verify_email(&state, &ctx, &f.token).await {
        Ok(()) => see_other("/ui/login?done=email_verified"),
        Err(e) => {
            let c = Chrome::public(&state, "verify.title").with(Some(refusal(&state.ui, &e)));
            html(StatusCode::OK, &message(c, "verify.failed_title", "verify.failed_body", "/ui/login", "login.title"))
        }
    }
}

#[derive(Template, Debug)]
#[template(path = "forgot.html")]
pub struct ForgotPage<'a> {
    c: Chrome<'a>,
}

pub async fn forgot_page(State(state): State<AppState>) -> Response {
    html(StatusCode::OK, &ForgotPage { c: Chrome::public(&state, "forgot.title") })
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// Sends a reset link if the account exists; the answer is the same either way.
pub async fn forgot(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<ForgotForm>,
) -> Response {
    passwords::forgot_password(&state, &ctx, &f.email);
    let c = Chrome::public(&state, "forgot.sent_title");
    html(StatusCode::OK, &message(c, "forgot.sent_title", "forgot.sent_body", "/ui/login", "login.title"))
}

#[derive(Template, Debug)]
#[template(path = "reset.html")]
pub struct ResetPage<'a> {
    c: Chrome<'a>,
    token: String,
}

pub async fn reset_page(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    html(StatusCode::OK, &ResetPage { c: Chrome::public(&state, "reset.title"), token: q.token })
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    token: String,
    new_password: String,
    confirm_password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    PublicForm(f): PublicForm<ResetForm>,
) -> Response {
    let outcome = if f.new_password == f.confirm_password {
        passwords::reset_password(&state, &ctx, &f.token, &f.new_password).await.map_err(|e| refusal(&state.ui, &e))
    } else {
        Err(Notice::error(state.ui.catalog.get("problem.passwords_differ")))
    };
    match outcome {
        Ok(()) => see_other("/ui/login?done=password_reset"),
        Err(notice) => {
            let c = Chrome::public(&state, "reset.title").with(Some(notice));
            html(StatusCode::OK, &ResetPage { c, token: f.token })
        }
    }
}
