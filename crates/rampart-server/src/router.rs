//! The router: every route and the whole layer stack, in this one place.
//!
//! The API routes are one list (`api_routes!`) of handlers annotated with `#[utoipa::path]`.
//! It gives two things: the served route table, each handler mounted at the path and methods
//! of its annotation (no OpenAPI path item is built to serve), and the OpenAPI document, built
//! through `utoipa_axum::routes!` from the same list only when it is asked for
//! ([`openapi_doc`]; `GET /openapi.json` renders it once, on its first request). So a route
//! cannot exist without its OpenAPI entry, and start-up does not run the schema code of every
//! wire type (a test compares the served table with the document).
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
//! Layers 1–11 are one function, [`stack::run`], each layer a function in its own module
//! called in this order. Every API handler and the 404/405 fallbacks are mounted with it
//! around them ([`stack::Stacked`]: the stack runs inside the handler's own future); the web
//! pages' router has it as a middleware ([`stack::middleware`]).

use crate::state::AppState;
use crate::{limits, openapi, routes, stack, ui};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler as _;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::MethodRouter;
#[cfg(test)]
use rampart_config::ServerSettings;
#[cfg(test)]
use rampart_core::metrics::Metrics;
use std::convert::Infallible;
use std::future::Future;
#[cfg(test)]
use std::sync::Arc;
use utoipa::OpenApi as _;
use utoipa::openapi::HttpMethod;
use utoipa_axum::PathItemExt as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One API handler: the path and methods of its `#[utoipa::path]` annotation, and how to mount
/// it there.
struct Route {
    path: String,
    methods: Vec<HttpMethod>,
    mount: fn(Router<AppState>, &str, &[HttpMethod]) -> Router<AppState>,
}

/// Expands the list of API handlers (each `[...]` a group sharing a path) into [`table`], the
/// routes served, and [`documented`], the same routes with their OpenAPI path items.
macro_rules! api_routes {
    ($( [$($handler:path),+ $(,)?] ),+ $(,)?) => {
        /// Every API route as served: path and methods read from the handler's annotation,
        /// which builds no path item (no schema code runs). `routes!(@path [..] of h)` is how
        /// `utoipa_axum::routes!` itself reaches `h`'s `__path_h` type.
        fn table() -> Vec<Route> {
            vec![$($(Route {
                path: utoipa_axum::paste! { routes!(@path [path()] of $handler) },
                methods: utoipa_axum::paste! { routes!(@path [methods()] of $handler) },
                mount: |router, path, methods| {
                    let on = methods
                        .iter()
                        .fold(MethodRouter::new(), |on, m| on.on(m.to_method_filter(), stack::Stacked($handler)));
                    router.route(path, on)
                },
            }),+),+]
        }

        /// The same routes with their OpenAPI path items and schemas: only for [`openapi_doc`].
        fn documented() -> OpenApiRouter<AppState> {
            OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())$(.routes(routes!($($handler),+)))+
        }
    };
}

api_routes! {
    [routes::service::healthz],
    [routes::service::readyz],
    [routes::service::metrics],
    [routes::service::openapi_json],
    [routes::tokens::jwks],
    [routes::auth::register],
    [routes::auth::login],
    [routes::auth::refresh],
    [routes::auth::logout],
    [routes::auth::csrf],
    [routes::auth::forgot_password],
    [routes::auth::reset_password],
    [routes::auth::verify_email],
    [routes::auth::introspect],
    [routes::me::me, routes::me::delete_me],
    [routes::me::change_password],
    [routes::me::list_sessions, routes::me::revoke_all_sessions],
    [routes::me::revoke_session],
    [routes::me::notifications, routes::me::set_notifications],
    [routes::me::export],
    [routes::me::admin_export],
    [routes::mfa::totp_setup],
    [routes::mfa::totp_enable],
    [routes::mfa::totp_disable],
    [routes::mfa::backup_codes],
    [routes::mfa::login_mfa],
    [routes::mfa::login_mfa_email],
    [routes::webauthn::register_start],
    [routes::webauthn::register_finish],
    [routes::webauthn::list],
    [routes::webauthn::remove],
    [routes::webauthn::remove_with_reauth],
    [routes::webauthn::login_start],
    [routes::webauthn::login_finish],
    [routes::webauthn::passkey_start],
    [routes::webauthn::passkey_finish],
    [routes::federation::telegram_login],
    [routes::oauth::start],
    [routes::oauth::callback, routes::oauth::callback_post],
    [routes::federation::link_telegram],
    [routes::federation::list],
    [routes::federation::unlink],
    [routes::api_keys::create, routes::api_keys::list, routes::api_keys::revoke_all],
    [routes::api_keys::revoke],
    [routes::api_keys::rotate],
    [routes::api_keys::usage],
    [routes::api_keys::verify],
    [routes::admin::list_users],
    [routes::admin::get_user, routes::admin::update_user, routes::admin::delete_user],
    [routes::admin::list_roles, routes::admin::create_role],
    [routes::admin::put_role, routes::admin::delete_role],
    [routes::admin::authz_check],
    [routes::audit::list],
    [routes::audit::stats],
    [routes::audit::export],
    [routes::audit::verify],
    [routes::exports::list_exports, routes::exports::create_export],
    [routes::exports::get_export],
    [routes::exports::approve_export],
    [routes::exports::download_export],
    [routes::admin::unlock_user],
    [routes::admin::restore_user],
    [routes::admin::revoke_user_sessions],
    [routes::csp::csp_report],
    [routes::ip_rules::list_ip_rules, routes::ip_rules::create_ip_rule],
    [routes::ip_rules::delete_ip_rule],
    [routes::webhooks::list_webhooks, routes::webhooks::create_webhook],
    [routes::webhooks::get_webhook, routes::webhooks::update_webhook, routes::webhooks::delete_webhook],
    [routes::webhooks::rotate_webhook_secret],
    [routes::webhooks::test_webhook],
    [routes::webhooks::list_webhook_deliveries],
    [routes::webhooks::redeliver_webhook],
    [routes::alerts::list_alerts, routes::alerts::create_alert],
    [routes::alerts::put_alert, routes::alerts::delete_alert],
    [routes::transit::create_key, routes::transit::read_key, routes::transit::delete_key],
    [routes::transit::rotate_key],
    [routes::transit::configure_key],
    [routes::transit::encrypt],
    [routes::transit::decrypt],
    [routes::transit::rewrap],
    [routes::transit::datakey],
    [routes::transit::hmac],
    [routes::transit::sign],
    [routes::transit::verify],
    [routes::gateway::forward_auth],
    [routes::gateway::auth_request],
    [routes::gateway::ext_authz],
    [routes::gateway::explain],
    [routes::gateway::rules],
}

/// The OpenAPI document of every route, generated from the code.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
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
    let limit = state.settings.server.body_limit_bytes;
    DefaultBodyLimit::max(limit).layer(HotRoutes { router: router(state.clone()), state })
}

/// A handler of [`HOT`] with the stack around it, called directly.
type HotHandler = fn(axum::extract::Request, AppState) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

/// The routes other services call on every request of their own (health checks, a backend
/// asking who its caller is, a proxy asking for a decision), by exact method and path:
/// answered without the router's matching and per-route machinery (a path lookup, the matched
/// template and URL parameters put into the request, a boxed route cloned and its future
/// mapped), about a tenth of such a request's cost. Each is a static path of [`table`], mounted
/// there too with the same handler and stack: every other method (HEAD, a 405) and every other
/// path goes to the router. Where the router would have put the matched template (metrics,
/// logs), [`hot_template`] names it.
const HOT: [(Method, &str, HotHandler); 5] = [
    (Method::GET, "/healthz", |req, state| stack::Stacked(routes::service::healthz).call(req, state)),
    (Method::GET, "/v1/me", |req, state| stack::Stacked(routes::me::me).call(req, state)),
    (Method::POST, "/v1/keys/verify", |req, state| stack::Stacked(routes::api_keys::verify).call(req, state)),
    (Method::GET, "/authz/forward-auth", |req, state| stack::Stacked(routes::gateway::forward_auth).call(req, state)),
    (Method::GET, "/authz/auth-request", |req, state| stack::Stacked(routes::gateway::auth_request).call(req, state)),
];

fn hot(method: &Method, path: &str) -> Option<&'static (Method, &'static str, HotHandler)> {
    HOT.iter().find(|(m, p, _)| m == method && *p == path)
}

/// The template of a request [`HotRoutes`] answers (its path: each is static), which has no
/// `MatchedPath` since the router never saw it.
pub(crate) fn hot_template(method: &Method, path: &str) -> Option<&'static str> {
    hot(method, path).map(|(_, template, _)| *template)
}

/// The router, with [`HOT`] answered first.
#[derive(Clone)]
struct HotRoutes {
    router: Router,
    state: AppState,
}

type HotFuture = futures::future::Map<
    std::pin::Pin<Box<dyn Future<Output = Response> + Send>>,
    fn(Response) -> Result<Response, Infallible>,
>;

impl tower::Service<axum::extract::Request> for HotRoutes {
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::Either<HotFuture, axum::routing::future::RouteFuture<Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        tower::Service::<axum::extract::Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        use futures::FutureExt as _;
        match hot(req.method(), req.uri().path()) {
            Some((_, _, handler)) => futures::future::Either::Left(
                handler(req, self.state.clone()).map(Ok as fn(Response) -> Result<Response, Infallible>),
            ),
            None => futures::future::Either::Right(self.router.call(req)),
        }
    }
}

/// Every route with the stack around it (see [`service`] for what serves).
pub fn router(state: AppState) -> Router {
    // Each API handler and fallback is mounted with the stack around it (`stack::Stacked`).
    // The web pages are not API routes: they are mounted beside them, outside the OpenAPI
    // document, with their own CSP (`ui::router`), and the stack as a middleware around them.
    let pages = ui::router(&state)
        .method_not_allowed_fallback(limits::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), stack::middleware));
    served_routes()
        .merge(pages)
        .fallback(stack::Stacked(limits::not_found))
        .method_not_allowed_fallback(stack::Stacked(limits::method_not_allowed))
        .with_state(state)
}

/// The API routes as served: every entry of [`table`] mounted, and nothing else.
fn served_routes() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, route| (route.mount)(router, &route.path, &route.methods))
}

#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The API's own path prefixes; the web pages (`/ui`) are mounted beside them by `ui::router`.
    const API_PREFIXES: [&str; 7] =
        ["/v1/", "/authz/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/.well-known/"];

    /// (method, path) of every route served, in the document's spelling (`{*path}` is `{path}`).
    fn served() -> BTreeSet<(String, String)> {
        let mut served = BTreeSet::new();
        for route in table() {
            for method in &route.methods {
                let method = serde_json::to_value(method).unwrap().as_str().unwrap().to_string();
                let fresh = served.insert((method.clone(), route.path.replace("{*", "{")));
                assert!(fresh, "{method} {} is mounted twice", route.path);
            }
        }
        served
    }

    /// (method, path) of every operation in the OpenAPI document.
    fn documented_operations() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(openapi_doc()).unwrap();
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                    ops.insert((method.clone(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_operation_served() {
        let served = served();
        let documented = documented_operations();
        assert!(served.len() > 80, "{} routes", served.len());
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(undocumented.is_empty(), "served without an OpenAPI entry: {undocumented:?}");
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
        for (method, path) in &served {
            assert!(API_PREFIXES.iter().any(|p| path.starts_with(p)), "{method} {path} is outside the API's paths");
        }
    }

    #[test]
    fn every_hot_route_is_a_static_route_of_the_table() {
        let served = served();
        for (method, path, _) in &HOT {
            let method = method.as_str().to_ascii_lowercase();
            assert!(served.contains(&(method.clone(), path.to_string())), "{method} {path} is not served by the table");
            assert!(!path.contains('{'), "{path}: a hot route has no parameters (its path is its template)");
        }
        assert_eq!(hot_template(&Method::GET, "/healthz"), Some("/healthz"));
        assert_eq!(hot_template(&Method::HEAD, "/healthz"), None, "other methods go to the router");
        assert_eq!(hot_template(&Method::GET, "/healthz/"), None, "and other paths");
    }

    #[test]
    fn the_served_table_mounts_without_conflicts() {
        // axum panics on a path mounted twice with the same method, or on a malformed path.
        let _ = served_routes();
    }
}
