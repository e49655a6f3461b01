//! The web pages under `/ui/`: sign-in (with every step-up the account needs), registration,
//! e-mail verification, password reset, and the account's self-service pages.
//!
//! A page handler is a door like a JSON handler: it reads the form or query, calls one use
//! case in `rampart_core::services`, and renders an askama template (`ui/templates/`, checked
//! at compile time) from a view model it builds. Templates hold loops and conditionals only.
//!
//! - Every page answers with the strict CSP [`PAGE_CSP`] (no inline script or style) and
//!   `Cache-Control: no-store`; the static files ([`assets`]) are embedded, hashed and immutable.
//! - Signed-in pages use the browser session cookie; every form carries the session's CSRF
//!   token as the field `csrf`, which [`csrf_field`] hands to the cookie extractor as the
//!   `X-CSRF-Token` header, so pages and the JSON API run the same check (token plus
//!   same-origin). Forms shown before sign-in are checked for a same-origin request.
//! - Every form works without JavaScript; `app.js` adds passkeys and copy buttons, htmx only
//!   shortens some round trips.
//! - Text comes from the language catalogue ([`i18n`]); colours from `[ui]` ([`theme`]).

mod admin;
pub mod assets;
pub mod i18n;
mod pages;
pub(crate) use pages::federated;
pub mod redirect;
pub mod theme;

use crate::AppState;
use crate::auth::{Authenticated, CSRF_HEADER};
use crate::error::ApiError;
use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_config::UiSettings;
use rampart_core::ServiceError;
use serde::de::DeserializeOwned;

/// The Content-Security-Policy of every page.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages' fixed parts, built once at start-up: branding, assets, the catalogue.
#[derive(Debug)]
pub struct Ui {
    pub product_name: String,
    pub assets: assets::Assets,
    pub catalog: i18n::Catalog,
    /// The configuration in effect with its secrets redacted (the console's system page).
    pub config_redacted: String,
}

impl Ui {
    pub fn new(settings: &UiSettings) -> Ui {
        Ui {
            product_name: settings.product_name.clone(),
            assets: assets::Assets::new(settings),
            catalog: i18n::Catalog::english(),
            config_redacted: String::new(),
        }
    }
}

/// The routes of the pages, with their own layers (CSP, the form's CSRF field).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/login", get(pages::login_page).post(pages::login))
        .route("/ui/login/step-up", post(pages::step_up))
        .route("/ui/login/email-code", post(pages::email_code))
        .route("/ui/continue", get(pages::continue_to))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/register", get(pages::register_page).post(pages::register))
        .route("/ui/verify-email", get(pages::verify_page).post(pages::verify))
        .route("/ui/forgot", get(pages::forgot_page).post(pages::forgot))
        .route("/ui/reset", get(pages::reset_page).post(pages::reset))
        .route("/ui/account", get(pages::account))
        .route("/ui/account/security", get(pages::security))
        .route("/ui/account/notifications", post(pages::save_notifications))
        .route("/ui/account/password", get(pages::password_page).post(pages::change_password))
        .route("/ui/account/totp", get(pages::totp_page).post(pages::totp_setup))
        .route("/ui/account/totp/enable", post(pages::totp_enable))
        .route("/ui/account/totp/disable", get(pages::totp_disable_page).post(pages::totp_disable))
        .route("/ui/account/backup-codes", get(pages::backup_codes_page).post(pages::backup_codes))
        .route("/ui/account/passkeys", get(pages::passkeys))
        .route("/ui/account/passkeys/{id}/remove", get(pages::remove_passkey_page_get).post(pages::remove_passkey))
        .route("/ui/account/sessions", get(pages::sessions))
        .route("/ui/account/sessions/others/revoke", post(pages::revoke_other_sessions))
        .route("/ui/account/sessions/{id}/revoke", post(pages::revoke_session))
        .route("/ui/account/keys", get(pages::keys).post(pages::create_key))
        .route("/ui/account/keys/new", get(pages::new_key_page))
        .route("/ui/account/keys/{id}", get(pages::key))
        .route("/ui/account/keys/{id}/rotate", post(pages::rotate_key))
        .route("/ui/account/keys/{id}/revoke", post(pages::revoke_key))
        .route("/ui/account/activity", get(pages::activity))
        .route("/ui/account/delete", get(pages::delete_account_page).post(pages::delete_account))
        .merge(admin::router())
        .route("/ui/assets/{name}", get(asset))
        .route("/favicon.ico", get(favicon))
        .layer(from_fn_with_state(state.clone(), csrf_field))
        .layer(from_fn(page_headers))
}

/// The page CSP on every `/ui/` answer (the security-headers layer keeps a CSP set here), and
/// `no-store` on every page (assets set their own long cache).
async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A form's `csrf` field becomes the `X-CSRF-Token` header the cookie extractor checks.
async fn csrf_field(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != Method::POST || !form || req.headers().contains_key(CSRF_HEADER) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        let limit = state.settings.server.body_limit_bytes;
        return ApiError::PayloadTooLarge { limit }.into_response();
    };
    if let Some((_, token)) = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf")
        && let Ok(v) = HeaderValue::from_str(&token)
    {
        parts.headers.insert(CSRF_HEADER, v);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

async fn asset(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.ui.assets.get(&name) {
        Some(a) => asset_response(a.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn favicon(State(state): State<AppState>) -> Response {
    asset_response(state.ui.assets.icon())
}

fn asset_response(a: assets::Asset) -> Response {
    let mut res = a.bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    res
}

/// A message on a page: an outcome, a refusal, or a hint.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// `error`, `success` or `info` (a CSS class).
    pub kind: &'static str,
    pub text: String,
    pub details: Vec<String>,
}

impl Notice {
    pub fn success(text: impl Into<String>) -> Notice {
        Notice { kind: "success", text: text.into(), details: Vec::new() }
    }
    pub fn info(text: impl Into<String>) -> Notice {
        Notice { kind: "info", text: text.into(), details: Vec::new() }
    }
    pub fn error(text: impl Into<String>) -> Notice {
        Notice { kind: "error", text: text.into(), details: Vec::new() }
    }
}

/// What every page shows around its content.
#[derive(Debug)]
pub struct Chrome<'a> {
    pub ui: &'a Ui,
    pub title: String,
    /// The session's CSRF token; empty before sign-in.
    pub csrf: String,
    /// Which section of the account the page belongs to; empty before sign-in.
    pub nav: &'static str,
    pub notice: Option<Notice>,
    /// The console's sections the viewer may open (empty outside the console).
    pub admin_nav: Vec<admin::Tab>,
}

impl<'a> Chrome<'a> {
    /// A page shown before sign-in.
    pub fn public(state: &'a AppState, title: &str) -> Chrome<'a> {
        Chrome {
            ui: &state.ui,
            title: state.ui.catalog.get(title).to_string(),
            csrf: String::new(),
            nav: "",
            notice: None,
            admin_nav: Vec::new(),
        }
    }

    /// A page of the signed-in account.
    pub fn account(state: &'a AppState, auth: &Authenticated, title: &str, nav: &'static str) -> Chrome<'a> {
        Chrome {
            ui: &state.ui,
            title: state.ui.catalog.get(title).to_string(),
            csrf: state.auth.csrf_token(auth.session.id),
            nav,
            notice: None,
            admin_nav: Vec::new(),
        }
    }

    pub fn with(mut self, notice: Option<Notice>) -> Chrome<'a> {
        self.notice = notice;
        self
    }

    /// The catalogue's text for `key`.
    pub fn t(&self, key: &'a str) -> &'a str {
        self.ui.catalog.get(key)
    }

    pub fn signed_in(&self) -> bool {
        !self.nav.is_empty()
    }

    /// A page of the administrator's console.
    pub fn in_console(&self) -> bool {
        !self.admin_nav.is_empty()
    }

    /// `current` when `item` is the page's section (for `aria-current`).
    pub fn current(&self, item: &str) -> &'static str {
        if self.nav == item { "page" } else { "false" }
    }

    /// An outcome named in a redirect's `done=` query, if the catalogue knows it.
    pub fn done(mut self, done: Option<&str>) -> Chrome<'a> {
        if let Some(key) = done.map(|d| format!("done.{d}")).filter(|k| self.ui.catalog.has(k)) {
            self.notice = Some(Notice::success(self.ui.catalog.get(&key).to_string()));
        }
        self
    }
}

/// How a refusal of a use case reads on a page: the catalogue's sentence for its code, and
/// per-field problems (the password estimator's hint included) as details.
pub fn refusal(ui: &Ui, e: &ServiceError) -> Notice {
    let c = &ui.catalog;
    match e {
        ServiceError::Validation(problems) => Notice {
            kind: "error",
            text: c.get("error.validation_failed").to_string(),
            details: problems
                .iter()
                .map(|p| {
                    let key = format!("problem.{}", p.code);
                    match (c.has(&key), p.code.as_str()) {
                        // The estimator's hint is in the message.
                        (true, "password_weak" | "password_too_short" | "password_reused") => {
                            format!("{} ({})", c.get(&key), p.message)
                        }
                        (true, _) => c.get(&key).to_string(),
                        (false, _) => p.message.clone(),
                    }
                })
                .collect(),
        },
        ServiceError::TooManyAttempts { retry_after_secs } | ServiceError::RateLimited { retry_after_secs } => {
            Notice::error(c.fill("error.too_many_attempts", "seconds", &retry_after_secs.to_string()))
        }
        ServiceError::Overloaded { retry_after_secs } => {
            Notice::error(c.fill("error.overloaded", "seconds", &retry_after_secs.to_string()))
        }
        ServiceError::Internal(_) | ServiceError::Unavailable(_) => {
            tracing::warn!(error = %e, "a page's use case failed");
            Notice::error(c.get("error.internal_error").to_string())
        }
        e => {
            let key = format!("error.{}", e.code());
            Notice::error(if c.has(&key) { c.get(&key).to_string() } else { e.to_string() })
        }
    }
}

/// A rendered page.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `303 See Other` to `location` (after a form post: the browser then GETs it).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// A page that only says something went wrong (a refused request, not a refused use case).
#[derive(Template, Debug)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub c: Chrome<'a>,
    pub heading: String,
    pub body: String,
    pub link: &'static str,
    pub link_text: String,
}

fn problem_page(state: &AppState, status: StatusCode, key: &'static str) -> Response {
    let c = &state.ui.catalog;
    let page = MessagePage {
        c: Chrome::public(state, "error.title"),
        heading: c.get("error.title").to_string(),
        body: c.get(key).to_string(),
        link: "/ui/account",
        link_text: c.get("nav.account").to_string(),
    };
    html(status, &page)
}

/// The signed-in viewer of an account page. Without a live session, a GET is sent to the
/// sign-in page (returning here afterwards); a post with a bad CSRF token is refused.
#[derive(Debug)]
pub struct Viewer(pub Authenticated);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Authenticated::from_request_parts(parts, state).await {
            Ok(auth) => Ok(Viewer(auth)),
            Err(ApiError::CsrfFailed) => Err(problem_page(state, StatusCode::FORBIDDEN, "error.csrf")),
            Err(ApiError::Service(ServiceError::MfaEnrollmentRequired)) => {
                Err(see_other("/ui/account/security?done=enrol_first"))
            }
            Err(ApiError::Service(e @ (ServiceError::Unavailable(_) | ServiceError::Internal(_)))) => {
                tracing::warn!(error = %e, "cannot check a page's session");
                Err(problem_page(state, StatusCode::SERVICE_UNAVAILABLE, "error.internal_error"))
            }
            Err(_) => {
                let back = if parts.method == Method::GET {
                    parts.uri.path_and_query().map_or("/ui/account", |p| p.as_str())
                } else {
                    "/ui/account"
                };
                let rd: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
                Err(see_other(&format!("/ui/login?rd={rd}")))
            }
        }
    }
}

/// The viewer when a live session came with the request (no CSRF check: GET only).
#[derive(Debug)]
pub struct MaybeViewer(pub Option<Authenticated>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if crate::auth::cookie(&parts.headers, state.settings.sessions.cookie_name()).is_none() {
            return Ok(MaybeViewer(None));
        }
        Ok(MaybeViewer(Authenticated::from_request_parts(parts, state).await.ok()))
    }
}

/// A form posted before sign-in: accepted only from this origin (the session-less CSRF check:
/// `Sec-Fetch-Site: same-origin`, or an `Origin` of this host or a trusted origin).
#[derive(Debug)]
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PublicForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !crate::auth::same_origin(req.headers(), &state.settings.sessions.trusted_origins) {
            return Err(problem_page(state, StatusCode::FORBIDDEN, "error.csrf"));
        }
        let PageForm(form) = PageForm::<T>::from_request(req, state).await?;
        Ok(PublicForm(form))
    }
}

/// A form body, with a page for a malformed one.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(form)) => Ok(PageForm(form)),
            Err(_) => Err(problem_page(state, StatusCode::BAD_REQUEST, "error.bad_form")),
        }
    }
}
