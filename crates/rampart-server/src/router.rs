//! The router: every route (mounted through `utoipa_axum::routes!`, so a route cannot exist
//! without its OpenAPI entry) and the whole layer stack, in this one place.
//!
//! Layers, outermost first (a request passes them in this order; a response in reverse):
//!
//! 1. security headers — on every response, whatever answered it (`shield::headers`);
//! 2. request id — reads or makes `X-Request-Id`, sets it on the response (`request_id`);
//! 3. request log span — every log line inside the request carries the id (`telemetry`);
//! 4. metrics — counts every answer by method, route template, status (`http_metrics`);
//! 5. panic — a panicking handler answers 500 `internal_error` (`limits::panic_response`);
//! 6. timeout — 503 `request_timeout` after `server.request_timeout_secs` (408 `body_timeout` when the body was still awaited);
//! 7. body limit — 413 `payload_too_large`, then JSON depth and string limits (`limits`);
//! 8. client IP — resolved once through `server.trusted_proxies` (`shield::client_ip`);
//! 9. IP rules — allow and block lists (`shield::ip_filter`);
//! 10. CORS — preflights and allowed origins (`shield::headers::cors`);
//! 11. rate limit — per rule, memory or Redis (`shield::rate_limit`);
//! 12. the route (the web pages add their CSP and read the form's CSRF field: `ui`), or the
//!     404/405 fallbacks.
//!
//! Layers 1–11 are one middleware, [`stack::middleware`], each layer a function in its own
//! module called in this order (one clone of the route's service per request, not eleven).

use crate::state::AppState;
use crate::{limits, openapi, routes, stack, ui};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
#[cfg(test)]
use rampart_config::ServerSettings;
#[cfg(test)]
use rampart_core::metrics::Metrics;
use std::sync::Arc;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::service::healthz))
        .routes(routes!(routes::service::readyz))
        .routes(routes!(routes::service::metrics))
        .routes(routes!(routes::service::openapi_json))
        .routes(routes!(routes::tokens::jwks))
        .routes(routes!(routes::auth::register))
        .routes(routes!(routes::auth::login))
        .routes(routes!(routes::auth::refresh))
        .routes(routes!(routes::auth::logout))
        .routes(routes!(routes::auth::csrf))
        .routes(routes!(routes::auth::forgot_password))
        .routes(routes!(routes::auth::reset_password))
        .routes(routes!(routes::auth::verify_email))
        .routes(routes!(routes::auth::introspect))
        .routes(routes!(routes::me::me, routes::me::delete_me))
        .routes(routes!(routes::me::change_password))
        .routes(routes!(routes::me::list_sessions, routes::me::revoke_all_sessions))
        .routes(routes!(routes::me::revoke_session))
        .routes(routes!(routes::me::notifications, routes::me::set_notifications))
        .routes(routes!(routes::me::export))
        .routes(routes!(routes::me::admin_export))
        .routes(routes!(routes::mfa::totp_setup))
        .routes(routes!(routes::mfa::totp_enable))
        .routes(routes!(routes::mfa::totp_disable))
        .routes(routes!(routes::mfa::backup_codes))
        .routes(routes!(routes::mfa::login_mfa))
        .routes(routes!(routes::mfa::login_mfa_email))
        .routes(routes!(routes::webauthn::register_start))
        .routes(routes!(routes::webauthn::register_finish))
        .routes(routes!(routes::webauthn::list))
        .routes(routes!(routes::webauthn::remove))
        .routes(routes!(routes::webauthn::remove_with_reauth))
        .routes(routes!(routes::webauthn::login_start))
        .routes(routes!(routes::webauthn::login_finish))
        .routes(routes!(routes::webauthn::passkey_start))
        .routes(routes!(routes::webauthn::passkey_finish))
        .routes(routes!(routes::federation::telegram_login))
        .routes(routes!(routes::oauth::start))
        .routes(routes!(routes::oauth::callback, routes::oauth::callback_post))
        .routes(routes!(routes::federation::link_telegram))
        .routes(routes!(routes::federation::list))
        .routes(routes!(routes::federation::unlink))
        .routes(routes!(routes::api_keys::create, routes::api_keys::list, routes::api_keys::revoke_all))
        .routes(routes!(routes::api_keys::revoke))
        .routes(routes!(routes::api_keys::rotate))
        .routes(routes!(routes::api_keys::usage))
        .routes(routes!(routes::api_keys::verify))
        .routes(routes!(routes::admin::list_users))
        .routes(routes!(routes::admin::get_user, routes::admin::update_user, routes::admin::delete_user))
        .routes(routes!(routes::admin::list_roles, routes::admin::create_role))
        .routes(routes!(routes::admin::put_role, routes::admin::delete_role))
        .routes(routes!(routes::admin::authz_check))
        .routes(routes!(routes::audit::list))
        .routes(routes!(routes::audit::stats))
        .routes(routes!(routes::audit::export))
        .routes(routes!(routes::audit::verify))
        .routes(routes!(routes::exports::list_exports, routes::exports::create_export))
        .routes(routes!(routes::exports::get_export))
        .routes(routes!(routes::exports::approve_export))
        .routes(routes!(routes::exports::download_export))
        .routes(routes!(routes::admin::unlock_user))
        .routes(routes!(routes::admin::restore_user))
        .routes(routes!(routes::admin::revoke_user_sessions))
        .routes(routes!(routes::csp::csp_report))
        .routes(routes!(routes::ip_rules::list_ip_rules, routes::ip_rules::create_ip_rule))
        .routes(routes!(routes::ip_rules::delete_ip_rule))
        .routes(routes!(routes::webhooks::list_webhooks, routes::webhooks::create_webhook))
        .routes(routes!(
            routes::webhooks::get_webhook,
            routes::webhooks::update_webhook,
            routes::webhooks::delete_webhook
        ))
        .routes(routes!(routes::webhooks::rotate_webhook_secret))
        .routes(routes!(routes::webhooks::test_webhook))
        .routes(routes!(routes::webhooks::list_webhook_deliveries))
        .routes(routes!(routes::webhooks::redeliver_webhook))
        .routes(routes!(routes::alerts::list_alerts, routes::alerts::create_alert))
        .routes(routes!(routes::alerts::put_alert, routes::alerts::delete_alert))
        .routes(routes!(routes::transit::create_key, routes::transit::read_key, routes::transit::delete_key))
        .routes(routes!(routes::transit::rotate_key))
        .routes(routes!(routes::transit::configure_key))
        .routes(routes!(routes::transit::encrypt))
        .routes(routes!(routes::transit::decrypt))
        .routes(routes!(routes::transit::rewrap))
        .routes(routes!(routes::transit::datakey))
        .routes(routes!(routes::transit::hmac))
        .routes(routes!(routes::transit::sign))
        .routes(routes!(routes::transit::verify))
        .routes(routes!(routes::gateway::forward_auth))
        .routes(routes!(routes::gateway::auth_request))
        .routes(routes!(routes::gateway::ext_authz))
        .routes(routes!(routes::gateway::explain))
        .routes(routes!(routes::gateway::rules))
}

/// The OpenAPI document of every route, generated from the code.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    // axum's catch-all segment (`{*path}`) is an ordinary path parameter to OpenAPI.
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths.into_iter().map(|(k, v)| (k.replace("{*", "{"), v)).collect();
    doc
}

/// The full router with every layer, ready to serve: [`router`] inside axum's default body
/// limit for extractors, set to `server.body_limit_bytes` (the stack's own limit is layer 7).
pub fn service(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    use tower::Layer as _;
    // Around the whole router, not `Router::layer`: that wraps every route on its own, and each
    // wrapper costs a clone of the boxed route and a boxed future on every request.
    DefaultBodyLimit::max(state.settings.server.body_limit_bytes).layer(router(state))
}

/// Every route with the stack around it (see [`service`] for what serves).
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    // The web pages are not API routes: they are mounted beside them, outside the OpenAPI
    // document, with their own CSP (`ui::router`).
    let routes = routes.merge(ui::router(&state));
    let stack = Arc::new(stack::Stack::new(state.clone()));
    with_fallbacks(routes).layer(from_fn_with_state(stack, stack::middleware)).with_state(state)
}

fn with_fallbacks<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.fallback(limits::not_found).method_not_allowed_fallback(limits::method_not_allowed)
}

/// Layers 2–7 and the fallbacks around test-only routes: exactly the production stack, generic
/// over the router state so unit tests can use it.
#[cfg(test)]
pub(crate) fn with_core_layers<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    server: &ServerSettings,
    metrics: Arc<Metrics>,
) -> Router<S> {
    let core = Arc::new(stack::Core::new(server, metrics, crate::telemetry::Redaction::default()));
    with_fallbacks(routes)
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .layer(from_fn_with_state(core, stack::core_middleware))
}
