//! The page handlers: each reads its form or query, calls one use case, and renders a
//! template from a view model (or redirects after a successful post).

use super::redirect::{self, Target};
use super::{Chrome, MaybeViewer, MessagePage, Notice, PageForm, PublicForm, Viewer, html, refusal, see_other};
use crate::AppState;
use crate::routes::auth::{cleared_cookie, session_cookie};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::services::factors::Reauth;
use rampart_core::services::login::{self, Issued, LoginOutcome};
use rampart_core::services::step_up::{Answer, StepUpRequired};
use rampart_core::services::{api_keys, audit, mfa, passwords, registration, sessions};
use rampart_core::{RequestContext, ServiceError};
use rampart_domain::SessionId;
use rampart_domain::device::parse_user_agent;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time as the pages show it: `2025-01-31 14:05 UTC`.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// The machine-readable form of a time, for `<time datetime>`.
fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Whether the request came from htmx (it then wants a fragment, not a page).
fn htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

// ---------------------------------------------------------------------------------------------
// Sign-in

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
}

fn login_form<'a>(state: &'a AppState, email: String, rd: Option<String>, notice: Option<Notice>) -> LoginPage<'a> {
    LoginPage {
        c: Chrome::public(state, "login.title").with(notice),
        email,
        next: redirect::after_sign_in(rd.as_deref(), &state.settings.gateway),
        rd: rd.unwrap_or_default(),
        registration: state.settings.accounts.registration,
    }
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

// ---------------------------------------------------------------------------------------------
// Registration, verification, password reset

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

fn message<'a>(c: Chrome<'a>, heading: &str, body: &str, link: &'static str, link_text: &str) -> MessagePage<'a> {
    let cat = &c.ui.catalog;
    let (heading, body, link_text) =
        (cat.get(heading).to_string(), cat.get(body).to_string(), cat.get(link_text).to_string());
    MessagePage { c, heading, body, link, link_text }
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

// ---------------------------------------------------------------------------------------------
// The account

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// A refused use case on a signed-in page with nothing better to show: the reason.
fn account_error(state: &AppState, auth: &rampart_core::authz::Authenticated, e: &ServiceError) -> Response {
    let c = Chrome::account(state, auth, "error.title", "account").with(Some(refusal(&state.ui, e)));
    html(StatusCode::OK, &message(c, "error.title", "error.try_again", "/ui/account", "nav.account"))
}

#[derive(Template, Debug)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    c: Chrome<'a>,
    name: String,
    email: String,
    verified: bool,
    roles: String,
    created: String,
    totp: bool,
    passkeys: u32,
}

pub async fn account(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let (user, mfa) = match sessions::account(&state, &auth).await {
        Ok(a) => a,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let page = AccountPage {
        c: Chrome::account(&state, &auth, "account.title", "account").done(q.done.as_deref()),
        name: user.name.unwrap_or_default(),
        email: user.email.as_str().to_string(),
        verified: user.email_verified,
        roles: user.roles.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        created: when(user.created_at),
        totp: mfa.totp,
        passkeys: mfa.webauthn,
    };
    html(StatusCode::OK, &page)
}

#[derive(Template, Debug)]
#[template(path = "security.html")]
pub struct SecurityPage<'a> {
    c: Chrome<'a>,
    totp: bool,
    passkeys: u32,
    backup_codes_left: u32,
    password_changed: String,
}

pub async fn security(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let (user, mfa) = match sessions::account(&state, &auth).await {
        Ok(a) => a,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let page = SecurityPage {
        c: Chrome::account(&state, &auth, "security.title", "security").done(q.done.as_deref()),
        totp: mfa.totp,
        passkeys: mfa.webauthn,
        backup_codes_left: mfa.backup_codes_left,
        password_changed: when(user.password_changed_at),
    };
    html(StatusCode::OK, &page)
}

#[derive(Template, Debug)]
#[template(path = "password.html")]
pub struct PasswordPage<'a> {
    c: Chrome<'a>,
}

pub async fn password_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    html(StatusCode::OK, &PasswordPage { c: Chrome::account(&state, &auth, "password.title", "security") })
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
    #[serde(default)]
    keep_other_sessions: Option<String>,
}

pub async fn change_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<PasswordForm>,
) -> Response {
    let outcome = if f.new_password == f.confirm_password {
        let keep = f.keep_other_sessions.is_some();
        passwords::change_password(&state, &ctx, &auth, &f.current_password, &f.new_password, keep)
            .await
            .map_err(|e| refusal(&state.ui, &e))
    } else {
        Err(Notice::error(state.ui.catalog.get("problem.passwords_differ")))
    };
    match outcome {
        Ok(()) => see_other("/ui/account/security?done=password_changed"),
        Err(notice) => {
            let c = Chrome::account(&state, &auth, "password.title", "security").with(Some(notice));
            html(StatusCode::OK, &PasswordPage { c })
        }
    }
}

/// The re-authentication fields every factor change carries.
#[derive(Debug, Deserialize)]
pub struct ReauthForm {
    password: String,
    #[serde(default)]
    code: String,
}

impl ReauthForm {
    fn reauth(&self) -> Reauth<'_> {
        let code = self.code.trim();
        Reauth { password: &self.password, code: (!code.is_empty()).then_some(code) }
    }
}

#[derive(Template, Debug)]
#[template(path = "reauth.html")]
pub struct ReauthPage<'a> {
    c: Chrome<'a>,
    /// Where the form posts.
    action: String,
    intro: &'static str,
    submit: &'static str,
    /// Ask for a current second-factor code too.
    ask_code: bool,
    danger: bool,
}

fn reauth_page<'a>(
    state: &'a AppState,
    auth: &rampart_core::authz::Authenticated,
    which: &'static str,
    notice: Option<Notice>,
) -> ReauthPage<'a> {
    let (title, action, intro, submit, ask_code, danger) = match which {
        "totp" => ("totp.title", "/ui/account/totp", "totp.intro", "totp.start", true, false),
        "disable" => {
            ("totp.disable_title", "/ui/account/totp/disable", "totp.disable_intro", "totp.disable", true, true)
        }
        _ => ("backup.title", "/ui/account/backup-codes", "backup.intro", "backup.generate", true, false),
    };
    ReauthPage {
        c: Chrome::account(state, auth, title, "security").with(notice),
        action: action.to_string(),
        intro,
        submit,
        ask_code,
        danger,
    }
}

/// TOTP set-up, step 1: re-authenticate.
pub async fn totp_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    html(StatusCode::OK, &reauth_page(&state, &auth, "totp", None))
}

#[derive(Template, Debug)]
#[template(path = "totp_setup.html")]
pub struct TotpSetupPage<'a> {
    c: Chrome<'a>,
    secret: String,
    /// The secret in groups of four, easier to type.
    secret_grouped: String,
    qr_png_base64: String,
}

fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// TOTP set-up, step 2: the QR code and the secret, and the confirming code's form.
pub async fn totp_setup(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<ReauthForm>,
) -> Response {
    match mfa::totp_setup(&state, &ctx, &auth, f.reauth()).await {
        Ok(setup) => {
            let page = TotpSetupPage {
                c: Chrome::account(&state, &auth, "totp.title", "security"),
                secret_grouped: grouped(&setup.secret),
                secret: setup.secret,
                qr_png_base64: setup.qr_png_base64,
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => html(StatusCode::OK, &reauth_page(&state, &auth, "totp", Some(refusal(&state.ui, &e)))),
    }
}

#[derive(Debug, Deserialize)]
pub struct TotpEnableForm {
    code: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    qr_png_base64: String,
}

#[derive(Template, Debug)]
#[template(path = "backup_codes.html")]
pub struct BackupCodesPage<'a> {
    c: Chrome<'a>,
    codes: Vec<String>,
    /// The codes as one text, for the copy button and the download.
    all: String,
}

fn codes_page<'a>(
    state: &'a AppState,
    auth: &rampart_core::authz::Authenticated,
    title: &str,
    codes: Vec<String>,
) -> BackupCodesPage<'a> {
    BackupCodesPage {
        c: Chrome::account(state, auth, title, "security")
            .with(Some(Notice::success(state.ui.catalog.get("backup.shown_once")))),
        all: codes.join("\n"),
        codes,
    }
}

/// TOTP set-up, step 3: a right code turns it on; the backup codes are shown once.
pub async fn totp_enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<TotpEnableForm>,
) -> Response {
    match mfa::totp_enable(&state, &ctx, &auth, f.code.trim()).await {
        Ok(codes) => html(StatusCode::OK, &codes_page(&state, &auth, "totp.enabled_title", codes)),
        Err(e) => {
            // The pending secret is unchanged: show it again with the reason.
            let page = TotpSetupPage {
                c: Chrome::account(&state, &auth, "totp.title", "security").with(Some(refusal(&state.ui, &e))),
                secret_grouped: grouped(&f.secret),
                secret: f.secret,
                qr_png_base64: f.qr_png_base64,
            };
            html(StatusCode::OK, &page)
        }
    }
}

pub async fn totp_disable_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    html(StatusCode::OK, &reauth_page(&state, &auth, "disable", None))
}

pub async fn totp_disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<ReauthForm>,
) -> Response {
    match mfa::totp_disable(&state, &ctx, &auth, f.reauth()).await {
        Ok(()) => see_other("/ui/account/security?done=totp_disabled"),
        Err(e) => html(StatusCode::OK, &reauth_page(&state, &auth, "disable", Some(refusal(&state.ui, &e)))),
    }
}

pub async fn backup_codes_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    html(StatusCode::OK, &reauth_page(&state, &auth, "backup", None))
}

pub async fn backup_codes(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<ReauthForm>,
) -> Response {
    match mfa::regenerate_backup_codes(&state, &ctx, &auth, f.reauth()).await {
        Ok(codes) => html(StatusCode::OK, &codes_page(&state, &auth, "backup.title", codes)),
        Err(e) => html(StatusCode::OK, &reauth_page(&state, &auth, "backup", Some(refusal(&state.ui, &e)))),
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// One session as the page shows it.
#[derive(Debug)]
pub struct SessionRow {
    id: String,
    device: String,
    ip: String,
    created: String,
    last_active: String,
    last_active_iso: String,
    current: bool,
}

#[derive(Template, Debug)]
#[template(path = "sessions.html")]
pub struct SessionsPage<'a> {
    c: Chrome<'a>,
    rows: Vec<SessionRow>,
    others: bool,
}

pub async fn sessions(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let list = match sessions::list(&state, &auth).await {
        Ok(l) => l,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let unknown = state.ui.catalog.get("sessions.unknown_device");
    let rows: Vec<SessionRow> = list
        .iter()
        .map(|s| {
            let d = parse_user_agent(s.user_agent.as_deref());
            let device = match (d.browser, d.os) {
                (Some(b), Some(o)) => format!("{b} · {o}"),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => unknown.to_string(),
            };
            SessionRow {
                id: s.id.to_string(),
                device,
                ip: s.ip.clone().unwrap_or_default(),
                created: when(s.created_at),
                last_active: when(s.last_active_at),
                last_active_iso: iso(s.last_active_at),
                current: s.id == auth.session.id,
            }
        })
        .collect();
    // This device first, then the others as listed (newest first).
    let (mut rows, rest): (Vec<SessionRow>, Vec<SessionRow>) = rows.into_iter().partition(|r| r.current);
    rows.extend(rest);
    let others = rows.len() > 1;
    let page = SessionsPage {
        c: Chrome::account(&state, &auth, "sessions.title", "sessions").done(q.done.as_deref()),
        rows,
        others,
    };
    html(StatusCode::OK, &page)
}

/// Signs one session out. From htmx, the empty answer removes its row.
pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse().map(SessionId) else { return account_error(&state, &auth, &ServiceError::NotFound) };
    match sessions::revoke_own(&state, &ctx, &auth, id).await {
        Ok(()) if id == auth.session.id => see_other("/ui/login?done=signed_out"),
        Ok(()) if htmx(&headers) => StatusCode::OK.into_response(),
        Ok(()) => see_other("/ui/account/sessions?done=session_revoked"),
        Err(e) => account_error(&state, &auth, &e),
    }
}

pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
) -> Response {
    match sessions::revoke_all_own(&state, &ctx, &auth, true).await {
        Ok(_) => see_other("/ui/account/sessions?done=others_revoked"),
        Err(e) => account_error(&state, &auth, &e),
    }
}

// ---------------------------------------------------------------------------------------------
// API keys

#[derive(Debug)]
pub struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
    /// For a replaced key: until when it still works.
    replaced_until: String,
}

/// Until when a replaced key still works (its grace ends as its expiry); empty otherwise.
fn replaced_until(k: &rampart_store::StoredApiKey) -> String {
    k.rotated_to.and(k.revoked_at.or(k.expires_at)).map(when).unwrap_or_default()
}

#[derive(Template, Debug)]
#[template(path = "keys.html")]
pub struct KeysPage<'a> {
    c: Chrome<'a>,
    rows: Vec<KeyRow>,
}

pub async fn keys(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let list = match api_keys::list_own(&state, &auth).await {
        Ok(l) => l,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let now = state.clock.now();
    let never = state.ui.catalog.get("keys.never");
    let rows = list
        .into_iter()
        .filter(|k| k.revoked_at.is_none_or(|t| t > now) && k.expires_at.is_none_or(|t| t > now))
        .map(|k| KeyRow {
            replaced_until: replaced_until(&k),
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.join(" "),
            created: when(k.created_at),
            expires: k.expires_at.map_or_else(|| never.to_string(), when),
            last_used: k.last_used_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    html(
        StatusCode::OK,
        &KeysPage { c: Chrome::account(&state, &auth, "keys.title", "keys").done(q.done.as_deref()), rows },
    )
}

#[derive(Template, Debug)]
#[template(path = "key_new.html")]
pub struct NewKeyPage<'a> {
    c: Chrome<'a>,
    name: String,
    scopes: String,
    expires_in_days: String,
}

pub async fn new_key_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    let c = Chrome::account(&state, &auth, "keys.new_title", "keys");
    html(StatusCode::OK, &NewKeyPage { c, name: String::new(), scopes: String::new(), expires_in_days: "90".into() })
}

#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    password: String,
}

#[derive(Template, Debug)]
#[template(path = "key_created.html")]
pub struct KeyCreatedPage<'a> {
    c: Chrome<'a>,
    name: String,
    key: String,
    expires: String,
}

/// Creates a key; its secret is shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<NewKeyForm>,
) -> Response {
    let days = f.expires_in_days.trim();
    let expires_in_days = match days.parse::<u32>() {
        Ok(d) => Some(d),
        Err(_) if days.is_empty() => None,
        Err(_) => Some(0), // refused by the use case as out of range, with its message
    };
    let new = api_keys::NewKey {
        name: f.name.clone(),
        scopes: f
            .scopes
            .split([' ', ',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect(),
        expires_in_days,
        rate_limit: None,
    };
    let password = Some(f.password.as_str()).filter(|p| !p.is_empty());
    match api_keys::create_own(&state, &ctx, &auth, password, new).await {
        Ok((stored, secret)) => {
            let c = Chrome::account(&state, &auth, "keys.created_title", "keys")
                .with(Some(Notice::success(state.ui.catalog.get("keys.shown_once"))));
            let never = state.ui.catalog.get("keys.never");
            let page = KeyCreatedPage {
                c,
                name: stored.name,
                key: secret.expose().to_string(),
                expires: stored.expires_at.map_or_else(|| never.to_string(), when),
            };
            html(StatusCode::CREATED, &page)
        }
        Err(e) => {
            let c = Chrome::account(&state, &auth, "keys.new_title", "keys").with(Some(refusal(&state.ui, &e)));
            html(StatusCode::OK, &NewKeyPage { c, name: f.name, scopes: f.scopes, expires_in_days: f.expires_in_days })
        }
    }
}

/// Revokes one key. From htmx, the empty answer removes its row.
pub async fn revoke_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else { return account_error(&state, &auth, &ServiceError::NotFound) };
    let actor = rampart_domain::Actor::User(auth.user_id.0);
    match api_keys::revoke(&state, auth.user_id, id, actor, Some(&ctx)).await {
        Ok(true) if htmx(&headers) => StatusCode::OK.into_response(),
        Ok(true) => see_other("/ui/account/keys?done=key_revoked"),
        Ok(false) => account_error(&state, &auth, &ServiceError::NotFound),
        Err(e) => account_error(&state, &auth, &e),
    }
}

// ---------------------------------------------------------------------------------------------
// Activity

#[derive(Debug)]
pub struct EventRow {
    when: String,
    when_iso: String,
    what: String,
    /// `success`, `failure` or `denied` (a CSS class).
    outcome: &'static str,
    outcome_text: String,
    ip: String,
    device: String,
}

#[derive(Template, Debug)]
#[template(path = "activity.html")]
pub struct ActivityPage<'a> {
    c: Chrome<'a>,
    rows: Vec<EventRow>,
}

/// How many events the activity page shows.
const ACTIVITY_LIMIT: u32 = 50;

pub async fn activity(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    let events = match audit::my_activity(&state, &auth, ACTIVITY_LIMIT).await {
        Ok(e) => e,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let cat = &state.ui.catalog;
    let rows = events
        .into_iter()
        .map(|s| {
            let e = s.event;
            let action = e.action.as_str();
            let key = format!("event.{action}");
            let d = parse_user_agent(e.user_agent.as_deref());
            EventRow {
                when: when(e.ts),
                when_iso: iso(e.ts),
                what: if cat.has(&key) { cat.get(&key).to_string() } else { action.to_string() },
                outcome: e.outcome.as_str(),
                outcome_text: cat.get(&format!("outcome.{}", e.outcome.as_str())).to_string(),
                ip: e.ip.map(|i| i.to_string()).unwrap_or_default(),
                device: d.browser.unwrap_or_default(),
            }
        })
        .collect();
    html(StatusCode::OK, &ActivityPage { c: Chrome::account(&state, &auth, "activity.title", "activity"), rows })
}

// ---------------------------------------------------------------------------------------------
// Passkeys

#[derive(Debug)]
pub struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template, Debug)]
#[template(path = "passkeys.html")]
pub struct PasskeysPage<'a> {
    c: Chrome<'a>,
    rows: Vec<PasskeyRow>,
}

/// The account's passkeys; adding one is the script's (WebAuthn needs JavaScript).
pub async fn passkeys(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let list = match rampart_core::services::webauthn::list(&state, &auth).await {
        Ok(l) => l,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let never = state.ui.catalog.get("keys.never");
    let rows = list
        .into_iter()
        .map(|a| PasskeyRow {
            id: a.id.to_string(),
            name: a.name,
            created: when(a.created_at),
            last_used: a.last_used_at.map_or_else(|| never.to_string(), when),
        })
        .collect();
    let c = Chrome::account(&state, &auth, "passkeys.title", "security").done(q.done.as_deref());
    html(StatusCode::OK, &PasskeysPage { c, rows })
}

fn remove_passkey_page<'a>(
    state: &'a AppState,
    auth: &rampart_core::authz::Authenticated,
    id: &str,
    notice: Option<Notice>,
) -> ReauthPage<'a> {
    ReauthPage {
        c: Chrome::account(state, auth, "passkeys.remove_title", "security").with(notice),
        action: format!("/ui/account/passkeys/{id}/remove"),
        intro: "passkeys.remove_intro",
        submit: "passkeys.remove",
        ask_code: true,
        danger: true,
    }
}

pub async fn remove_passkey_page_get(
    State(state): State<AppState>,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
) -> Response {
    html(StatusCode::OK, &remove_passkey_page(&state, &auth, &id.to_string(), None))
}

pub async fn remove_passkey(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
    PageForm(f): PageForm<ReauthForm>,
) -> Response {
    let id = id.to_string();
    match rampart_core::services::webauthn::remove(&state, &ctx, &auth, &id, f.reauth()).await {
        Ok(()) => see_other("/ui/account/passkeys?done=passkey_removed"),
        Err(e) => html(StatusCode::OK, &remove_passkey_page(&state, &auth, &id, Some(refusal(&state.ui, &e)))),
    }
}

// ---------------------------------------------------------------------------------------------
// One API key: its use per hour, rotation

/// One bar of the usage chart, in the chart's coordinates (a 480 × 120 view box).
#[derive(Debug)]
pub struct Bar {
    x: u32,
    y: u32,
    height: u32,
    /// The refused part, drawn on top of the bar.
    rejected_y: u32,
    rejected_height: u32,
    label: String,
}

/// Hours the chart shows.
const CHART_HOURS: i64 = 24;
const CHART_HEIGHT: u32 = 100;

/// The last [`CHART_HOURS`] hours as bars, scaled to the busiest hour.
fn bars(now: OffsetDateTime, hours: &[api_keys::UsageHour], requests: &str) -> (Vec<Bar>, i64) {
    let start = now.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0));
    let start = start.unwrap_or(now) - time::Duration::hours(CHART_HOURS - 1);
    let count = |i: i64| {
        let hour = start + time::Duration::hours(i);
        hours.iter().find(|(h, _, _)| *h == hour).map_or((hour, 0, 0), |(h, r, x)| (*h, *r, *x))
    };
    let slots: Vec<_> = (0..CHART_HOURS).map(count).collect();
    let max = slots.iter().map(|(_, r, x)| r + x).max().unwrap_or(0);
    let scale = |n: i64| if max == 0 { 0 } else { (n * i64::from(CHART_HEIGHT) / max) as u32 };
    let bars = slots
        .iter()
        .enumerate()
        .map(|(i, (hour, r, x))| {
            let (total, refused) = (scale(r + x), scale(*x));
            Bar {
                x: i as u32 * 20 + 2,
                y: 110 - total,
                height: total,
                rejected_y: 110 - total,
                rejected_height: refused,
                label: format!("{:02}:00 UTC: {} {requests}", hour.hour(), r + x),
            }
        })
        .collect();
    (bars, max)
}

#[derive(Template, Debug)]
#[template(path = "key.html")]
pub struct KeyPage<'a> {
    c: Chrome<'a>,
    row: KeyRow,
    bars: Vec<Bar>,
    /// Hour labels under the chart: (x, text).
    ticks: Vec<(u32, String)>,
    busiest: i64,
    total: i64,
}

pub async fn key(
    State(state): State<AppState>,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let now = state.clock.now();
    let since = now - time::Duration::hours(CHART_HOURS + 1);
    let (k, hours) = match api_keys::usage_own(&state, &auth, id, since, now + time::Duration::seconds(1)).await {
        Ok(u) => u,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let cat = &state.ui.catalog;
    let never = cat.get("keys.never");
    let (bars, busiest) = bars(now, &hours, cat.get("keys.requests"));
    let ticks = (0..CHART_HOURS)
        .step_by(6)
        .map(|i| {
            let hour = now - time::Duration::hours(CHART_HOURS - 1 - i);
            (i as u32 * 20 + 2, format!("{:02}:00", hour.hour()))
        })
        .collect();
    let row = KeyRow {
        replaced_until: replaced_until(&k),
        id: k.id.to_string(),
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes.join(" "),
        created: when(k.created_at),
        expires: k.expires_at.map_or_else(|| never.to_string(), when),
        last_used: k.last_used_at.map_or_else(|| never.to_string(), when),
    };
    let total = hours.iter().map(|(_, r, x)| r + x).sum();
    let c = Chrome::account(&state, &auth, "keys.detail_title", "keys").done(q.done.as_deref());
    html(StatusCode::OK, &KeyPage { c, row, bars, ticks, busiest, total })
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_seconds: u32,
    #[serde(default)]
    password: String,
}

/// Replaces a key: the new one shown once, the old one working for the grace chosen.
pub async fn rotate_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    Path(id): Path<uuid::Uuid>,
    PageForm(f): PageForm<RotateForm>,
) -> Response {
    let password = Some(f.password.as_str()).filter(|p| !p.is_empty());
    match api_keys::rotate_own(&state, &ctx, &auth, password, id, f.grace_seconds).await {
        Ok((stored, secret)) => {
            let c = Chrome::account(&state, &auth, "keys.created_title", "keys")
                .with(Some(Notice::success(state.ui.catalog.get("keys.rotated"))));
            let never = state.ui.catalog.get("keys.never");
            let page = KeyCreatedPage {
                c,
                name: stored.name,
                key: secret.expose().to_string(),
                expires: stored.expires_at.map_or_else(|| never.to_string(), when),
            };
            html(StatusCode::CREATED, &page)
        }
        Err(e) => account_error(&state, &auth, &e),
    }
}
