//! The account and its security: profile, password, the authenticator app, backup codes,
//! passkeys.

use super::*;

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
    new_sign_in: bool,
    security_changes: bool,
}

pub async fn security(State(state): State<AppState>, Viewer(auth): Viewer, Query(q): Query<DoneQuery>) -> Response {
    let (user, mfa) = match sessions::account(&state, &auth).await {
        Ok(a) => a,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let prefs = match notifications::preferences(&state, auth.user_id).await {
        Ok(p) => p,
        Err(e) => return account_error(&state, &auth, &e),
    };
    let page = SecurityPage {
        c: Chrome::account(&state, &auth, "security.title", "security").done(q.done.as_deref()),
        totp: mfa.totp,
        passkeys: mfa.webauthn,
        backup_codes_left: mfa.backup_codes_left,
        password_changed: when(user.password_changed_at),
        new_sign_in: prefs.new_sign_in,
        security_changes: prefs.security_changes,
    };
    html(StatusCode::OK, &page)
}

/// The e-mail notices form: a box present is on, absent is off.
#[derive(Debug, Deserialize)]
pub struct NotificationsForm {
    #[serde(default)]
    new_sign_in: Option<String>,
    #[serde(default)]
    security_changes: Option<String>,
}

pub async fn save_notifications(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<NotificationsForm>,
) -> Response {
    let change = notifications::PreferencesChange {
        new_sign_in: Some(f.new_sign_in.is_some()),
        security_changes: Some(f.security_changes.is_some()),
    };
    match notifications::set_preferences(&state, &ctx, auth.user_id, change).await {
        Ok(_) => see_other("/ui/account/security?done=notifications_saved"),
        Err(e) => account_error(&state, &auth, &e),
    }
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
    /// A sentence after the intro (empty: none).
    note: String,
    /// The way back: the account page (`true`) or the security page.
    from_account: bool,
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
        "erase" => ("erase.title", "/ui/account/delete", "erase.intro", "erase.submit", true, true),
        _ => ("backup.title", "/ui/account/backup-codes", "backup.intro", "backup.generate", true, false),
    };
    let note = match which {
        "erase" => state.ui.catalog.fill(
            "erase.grace",
            "days",
            &state.settings.accounts.erasure_grace.whole_days().to_string(),
        ),
        _ => String::new(),
    };
    let from_account = which == "erase";
    ReauthPage {
        c: Chrome::account(state, auth, title, if from_account { "account" } else { "security" }).with(notice),
        action: action.to_string(),
        intro,
        submit,
        ask_code,
        danger,
        note,
        from_account,
    }
}

/// Deleting the account, step 1: what happens, and re-authentication.
pub async fn delete_account_page(State(state): State<AppState>, Viewer(auth): Viewer) -> Response {
    html(StatusCode::OK, &reauth_page(&state, &auth, "erase", None))
}

/// Deleting the account: scheduled (the session is over); the page says until when an
/// administrator can still restore it.
pub async fn delete_account(
    State(state): State<AppState>,
    ctx: RequestContext,
    Viewer(auth): Viewer,
    PageForm(f): PageForm<ReauthForm>,
) -> Response {
    let erasure = match rampart_core::services::privacy::request_own_erasure(&state, &ctx, &auth, f.reauth()).await {
        Ok(e) => e,
        Err(e) => return html(StatusCode::OK, &reauth_page(&state, &auth, "erase", Some(refusal(&state.ui, &e)))),
    };
    let c = &state.ui.catalog;
    let page = crate::ui::MessagePage {
        c: Chrome::public(&state, "erase.done_title"),
        heading: c.get("erase.done_title").to_string(),
        body: c.fill("erase.done", "date", &when(erasure.erase_after)),
        link: "/ui/login",
        link_text: c.get("nav.sign_in").to_string(),
    };
    let mut res = html(StatusCode::OK, &page);
    if let Ok(v) = cleared_cookie(&state) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
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
        note: String::new(),
        from_account: false,
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
    match rampart_core::services::webauthn::remove(&state, &ctx, &auth, &id, Some(f.reauth())).await {
        Ok(()) => see_other("/ui/account/passkeys?done=passkey_removed"),
        Err(e) => html(StatusCode::OK, &remove_passkey_page(&state, &auth, &id, Some(refusal(&state.ui, &e)))),
    }
}
