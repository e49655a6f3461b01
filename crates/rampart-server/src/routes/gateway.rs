//! The gateway's three doors, one decision core (`rampart_core::services::gateway`):
//!
//! - `/authz/forward-auth` (Traefik `forwardAuth`, Caddy `forward_auth`): the original request
//!   in `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`;
//! - `/authz/auth-request` (nginx `auth_request`): `X-Original-Method` and `X-Original-URL`
//!   (else the `X-Forwarded-*` set); only 200, 401 and 403 (nginx treats anything else as an
//!   error): a sign-in redirect is a 401 with `Location`, limits are a 403 with
//!   `X-Rampart-Deny-Reason` and `Retry-After`;
//! - `/authz/ext-authz/{*path}` (Envoy's HTTP `ext_authz` with `path_prefix`): the method, the
//!   `Host` and the path after the prefix.
//!
//! And the admin's view of the rules: `POST /v1/admin/gateway/explain`, `GET
//! /v1/admin/gateway/rules` (`gateway:read`).

use crate::AppState;
use crate::auth::{Guard, bearer, cookie, is_api_key, named_api_key};
use crate::error::{ApiError, PROBLEM_JSON};
use crate::limits::ApiJson;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_core::RequestContext;
use rampart_core::services::gateway::{self, Ask, Credentials, PlainIdentity, Verdict};
use rampart_wire::{ExplainRequest, ExplainResponse, GatewayRuleView, GatewayRules, Problem, ShadowedRuleView};
use std::borrow::Cow;

/// The identity assertion the upstream verifies with the JWKS.
pub const ASSERTION_HEADER: &str = "x-rampart-jwt-assertion";
/// Why a request was refused, for proxies that show only a status (nginx).
pub const DENY_REASON_HEADER: &str = "x-rampart-deny-reason";

/// The original request, as the proxy described it: borrowed from the request's headers where
/// they say it as it is (the usual case), owned where it had to be rewritten.
#[derive(Debug, Clone)]
pub(crate) struct Original<'a> {
    pub method: Cow<'a, str>,
    pub proto: Cow<'a, str>,
    pub host: Cow<'a, str>,
    pub uri: Cow<'a, str>,
}

/// `s` in upper case: itself when it already is.
pub(crate) fn upper(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) { Cow::Owned(s.to_ascii_uppercase()) } else { Cow::Borrowed(s) }
}

/// `s` in lower case: itself when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(s.to_ascii_lowercase()) } else { Cow::Borrowed(s) }
}

impl Original<'_> {
    fn url(&self) -> String {
        format!("{}://{}{}", self.proto, self.host, self.uri)
    }
}

static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_RAMPART_RULE: HeaderName = HeaderName::from_static("x-rampart-rule");

fn header_str<K: header::AsHeaderName>(h: &HeaderMap, name: K) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` (Traefik, Caddy; nginx as a fallback).
fn from_forwarded(h: &HeaderMap) -> Option<Original<'_>> {
    Some(Original {
        method: upper(header_str(h, &X_FORWARDED_METHOD)?),
        proto: lower(header_str(h, &X_FORWARDED_PROTO).unwrap_or("https")),
        host: Cow::Borrowed(header_str(h, &X_FORWARDED_HOST).or_else(|| header_str(h, header::HOST))?),
        uri: Cow::Borrowed(header_str(h, &X_FORWARDED_URI)?),
    })
}

/// `X-Original-Method` and `X-Original-URL` (nginx), else the `X-Forwarded-*` set.
fn from_original(h: &HeaderMap) -> Option<Original<'_>> {
    let (Some(method), Some(url)) = (header_str(h, &X_ORIGINAL_METHOD), header_str(h, &X_ORIGINAL_URL)) else {
        return from_forwarded(h);
    };
    let (proto, host, uri) = match plain_url(url) {
        Some((scheme, host, target)) => (Cow::Borrowed(scheme), Cow::Borrowed(host), Cow::Borrowed(target)),
        None => {
            let (scheme, host, target) = parsed_url(url)?;
            (Cow::Owned(scheme), Cow::Owned(host), Cow::Owned(target))
        }
    };
    Some(Original { method: upper(method), proto, host, uri })
}

/// A URL's scheme, `host[:port]` and path-and-query as the WHATWG URL parser gives them.
fn parsed_url(url: &str) -> Option<(String, String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str()?),
        None => parsed.host_str()?.to_string(),
    };
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    Some((parsed.scheme().to_string(), host, target))
}

/// [`parsed_url`] without the parser, for a URL spelled the way the parser would spell it
/// back (what nginx sends for an ordinary request): `http` or `https`, a lower-case name or
/// a dotted-quad address, a port without a leading zero, a path and query of URL code points
/// with no dot segment, no `'`, `#` or `\`. Anything else is `None`, and goes to the parser;
/// a test holds the two to the same answers.
fn plain_url(url: &str) -> Option<(&'static str, &str, &str)> {
    let (scheme, default_port, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", "443", rest)
    } else {
        ("http", "80", url.strip_prefix("http://")?)
    };
    let (authority, target) = rest.split_at(rest.find('/')?);
    let (name, port) = match authority.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (authority, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    // A name ending in a number is an IPv4 address to the parser, which rewrites every other
    // spelling of one (`127.1`, `0x7f.0.0.1`, `010.0.0.1`): only the dotted quad it writes
    // itself passes here.
    let numeric_end = name.rsplit('.').next().is_some_and(|l| l.starts_with(|c: char| c.is_ascii_digit()));
    if !name_ok || (numeric_end && !is_dotted_quad(name)) {
        return None;
    }
    let host = match port {
        None => authority,
        Some(p) if p == default_port => name,
        Some(p) if is_port(p) => authority,
        Some(_) => return None,
    };
    let url_code_point = |b: u8| {
        matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'('
            | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' | b'/' | b'?' | b'%')
    };
    let (path, _) = target.split_once('?').unwrap_or((target, ""));
    let dot_segment = path.contains("/.") || path.contains("%2e") || path.contains("%2E");
    (target.bytes().all(url_code_point) && !dot_segment).then_some((scheme, host, target))
}

/// Four decimal numbers of 0–255 without leading zeros, as the URL parser writes an address.
fn is_dotted_quad(name: &str) -> bool {
    name.split('.').count() == 4 && name.split('.').all(|part| canonical_decimal(part, 255))
}

/// A port as the URL parser writes one: 0–65535 in decimal, no leading zero.
fn is_port(p: &str) -> bool {
    canonical_decimal(p, 65_535)
}

/// `s` is a number up to `max` written in decimal as a number prints (no sign, no leading
/// zero).
fn canonical_decimal(s: &str, max: u32) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 5
        && b.iter().all(u8::is_ascii_digit)
        && (b[0] != b'0' || b.len() == 1)
        && b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= max
}

pub(crate) fn credentials<'a>(h: &'a HeaderMap, cookie_name: &str) -> Credentials<'a> {
    // `presented_api_key`, with `Authorization` read once for both the key and the token.
    let authorization = bearer(h);
    let api_key = named_api_key(h).or_else(|| authorization.filter(|t| is_api_key(t)));
    // A key sent as `Authorization: Bearer rk_…` is the key, not a token as well.
    let bearer = if api_key.is_some() { None } else { authorization };
    let session_cookie = cookie(h, cookie_name);
    Credentials { api_key, bearer, session_cookie }
}

/// A browser loading a page: it accepts HTML and did not say it is a script.
pub(crate) fn browser_page_load(h: &HeaderMap) -> bool {
    header_str(h, header::ACCEPT).is_some_and(|a| a.contains("text/html")) && !h.contains_key(&X_REQUESTED_WITH)
}

fn preflight(method: &str, h: &HeaderMap) -> bool {
    method == "OPTIONS" && h.contains_key(header::ORIGIN) && h.contains_key("access-control-request-method")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    ForwardAuth,
    AuthRequest,
    ExtAuthz,
    /// The built-in proxy's own listener (`gateway_proxy`).
    BuiltIn,
}

/// What the decision core is asked about `original`, with the credentials of `h`.
pub(crate) fn ask_for<'a>(state: &AppState, original: &'a Original<'_>, h: &'a HeaderMap) -> Ask<'a> {
    Ask {
        method: &original.method,
        host: &original.host,
        uri: &original.uri,
        browser_page_load: browser_page_load(h),
        preflight: preflight(&original.method, h),
        credentials: credentials(h, state.settings.sessions.cookie_name()),
    }
}

/// 503 `unavailable`: Rampart cannot decide (never a 401 for its own failure).
pub(crate) fn unavailable() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Cannot decide",
        "Rampart cannot decide about this request right now; try again",
    )
}

async fn answer(
    state: &AppState,
    ctx: &RequestContext,
    door: Door,
    original: Option<Original<'_>>,
    h: &HeaderMap,
) -> Response {
    let Some(original) = original else {
        return problem(
            StatusCode::BAD_REQUEST,
            "gateway_request_incomplete",
            "Incomplete forwarded request",
            "the proxy did not say which request it forwards (X-Forwarded-Method/-Host/-Uri, or X-Original-Method/-URL)",
        );
    };
    let ask = ask_for(state, &original, h);
    let verdict = match gateway::decide(state, &state.shield.rate_limits.limiter, ctx, &ask).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "gateway cannot decide");
            state.metrics.observe_gateway("error", "unavailable");
            return unavailable();
        }
    };
    render(state, door, &original, verdict)
}

pub(crate) fn render(state: &AppState, door: Door, original: &Original<'_>, verdict: Verdict) -> Response {
    let nginx = door == Door::AuthRequest;
    match verdict {
        Verdict::Allow { rule, assertion, identity } => {
            let mut res = StatusCode::OK.into_response();
            let h = res.headers_mut();
            h.extend(identity_headers(assertion, identity.as_ref()));
            set(h, X_RAMPART_RULE.clone(), &rule);
            res
        }
        Verdict::SignIn { redirect: true, step_up, .. } => {
            let location = gateway::sign_in_location(state, &original.url(), step_up);
            let status = if nginx {
                StatusCode::UNAUTHORIZED
            } else if matches!(&*original.method, "GET" | "HEAD") {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            let mut res = status.into_response();
            set(res.headers_mut(), "location", &location);
            res
        }
        Verdict::SignIn { redirect: false, step_up, .. } => {
            let (code, title, detail, challenge) = if step_up {
                (
                    "step_up_required",
                    "Fresh authentication required",
                    "this route needs a second factor or a more recent sign-in",
                    "Bearer realm=\"rampart\", error=\"insufficient_user_authentication\"",
                )
            } else {
                (
                    "unauthenticated",
                    "Authentication required",
                    "sign in, or send a bearer token or an API key",
                    "Bearer realm=\"rampart\"",
                )
            };
            let mut res = problem(StatusCode::UNAUTHORIZED, code, title, detail);
            set(res.headers_mut(), "www-authenticate", challenge);
            res
        }
        Verdict::Forbidden { code, .. } => {
            let mut res = problem(StatusCode::FORBIDDEN, code, "Forbidden", "the gateway's rules refuse this request");
            set(res.headers_mut(), DENY_REASON_HEADER, code);
            res
        }
        Verdict::RateLimited { retry_after_secs, .. } => {
            let status = if nginx { StatusCode::FORBIDDEN } else { StatusCode::TOO_MANY_REQUESTS };
            let mut res =
                problem(status, "rate_limited", "Too many requests", "over this route's rate limit; retry later");
            set(res.headers_mut(), "retry-after", &retry_after_secs.to_string());
            set(res.headers_mut(), DENY_REASON_HEADER, "rate_limited");
            res
        }
    }
}

/// The headers an allowed request goes on with: the assertion, and the plain identity headers
/// when the rule asks for them (the doors answer with them; the built-in proxy adds them).
/// The assertion's bytes are shared, not copied (they are checked to be a header value).
pub(crate) fn identity_headers(assertion: Bytes, identity: Option<&PlainIdentity>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(if identity.is_some() { 4 } else { 1 });
    if let Some(v) = assertion_value(assertion) {
        out.push((HeaderName::from_static(ASSERTION_HEADER), v));
    }
    let mut add = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    if let Some(id) = identity {
        add("remote-user", &id.user);
        if let Some(email) = &id.email {
            add("remote-email", email);
        }
        add("remote-groups", &id.groups.join(","));
    }
    out
}

/// The assertion as a header value, checked once per token rather than on every request
/// (the check reads each of a token's 600-odd bytes).
///
/// The decision core hands out clones of the token it keeps, so a token seen again comes at
/// the same address. Each worker thread keeps the last token with its checked value; holding
/// the token keeps its bytes alive and unchanged (`Bytes` are immutable), so the same address
/// and length are the same token.
fn assertion_value(assertion: Bytes) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(Bytes, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((token, value)) = last.as_ref()
            && token.as_ptr() == assertion.as_ptr()
            && token.len() == assertion.len()
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_maybe_shared(assertion.clone()).ok()?;
        *last = Some((assertion, value.clone()));
        Some(value)
    })
}

fn set(h: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let p = Problem {
        type_: format!("urn:rampart:problem:{code}"),
        title: title.into(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.into(),
        request_id: crate::request_id::current(),
        errors: Vec::new(),
        change_token: None,
    };
    crate::error::problem_response(status, &p)
}

/// Asks about the request Traefik or Caddy is about to forward.
#[utoipa::path(method(get, head, post, put, patch, delete, options), path = "/authz/forward-auth", tag = "gateway",
    responses(
        (status = 200, description = "Allowed: forward with `X-Rampart-Jwt-Assertion`"),
        (status = 302, description = "A browser must sign in (`Location`: the sign-in page with `rd=`); 303 for other methods"),
        (status = 401, description = "unauthenticated or step_up_required", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "forbidden", body = Problem, content_type = PROBLEM_JSON),
        (status = 429, description = "rate_limited (`Retry-After`)", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "unavailable: Rampart cannot decide", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn forward_auth(State(state): State<AppState>, ctx: RequestContext, req: Request) -> Response {
    let headers = req.headers();
    answer(&state, &ctx, Door::ForwardAuth, from_forwarded(headers), headers).await
}

/// Asks about the request nginx is about to forward (`auth_request`).
#[utoipa::path(method(get, head, post, put, patch, delete, options), path = "/authz/auth-request", tag = "gateway",
    responses(
        (status = 200, description = "Allowed: forward with `X-Rampart-Jwt-Assertion`"),
        (status = 401, description = "Sign in: `Location` names the sign-in page for browsers", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "forbidden, ip_blocked or rate_limited (`X-Rampart-Deny-Reason`, `Retry-After`)", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "unavailable: Rampart cannot decide (nginx answers 500)", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn auth_request(State(state): State<AppState>, ctx: RequestContext, req: Request) -> Response {
    let headers = req.headers();
    answer(&state, &ctx, Door::AuthRequest, from_original(headers), headers).await
}

/// Asks about the request Envoy is about to forward (`ext_authz` HTTP service).
#[utoipa::path(method(get, head, post, put, patch, delete, options), path = "/authz/ext-authz/{*path}", tag = "gateway",
    params(("path" = String, Path, description = "The original path, after the configured prefix")),
    responses(
        (status = 200, description = "Allowed: forward with `X-Rampart-Jwt-Assertion`"),
        (status = 302, description = "A browser must sign in"),
        (status = 401, description = "unauthenticated or step_up_required", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "forbidden", body = Problem, content_type = PROBLEM_JSON),
        (status = 429, description = "rate_limited", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "unavailable", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn ext_authz(
    State(state): State<AppState>,
    ctx: RequestContext,
    method: Method,
    uri: Uri,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers();
    let uri = match uri.query() {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    };
    let original = header_str(headers, header::HOST).map(|host| Original {
        method: upper(method.as_str()),
        proto: lower(header_str(headers, &X_FORWARDED_PROTO).unwrap_or("https")),
        host: Cow::Borrowed(host),
        uri: Cow::Owned(uri),
    });
    answer(&state, &ctx, Door::ExtAuthz, original, headers).await
}

/// Which rule decides a request, and why (with credentials: what their holder would get).
#[utoipa::path(post, path = "/v1/admin/gateway/explain", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    request_body = ExplainRequest,
    responses(
        (status = 200, description = "The rule and the reasons", body = ExplainResponse),
        (status = 400, description = "validation_failed: the URL or method", body = Problem, content_type = PROBLEM_JSON),
        (status = 403, description = "Lacks gateway:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn explain(
    State(state): State<AppState>,
    ctx: RequestContext,
    _guard: Guard<crate::auth::GatewayRead>,
    ApiJson(req): ApiJson<ExplainRequest>,
) -> Result<axum::Json<ExplainResponse>, ApiError> {
    let invalid = |field: &str, code: &str, msg: &str| {
        ApiError::from(rampart_core::ServiceError::Validation(vec![rampart_core::FieldProblem::new(field, code, msg)]))
    };
    let method = req.method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("method", "invalid_method", "an HTTP method such as GET"));
    }
    let url = url::Url::parse(&req.url).map_err(|_| invalid("url", "invalid_url", "an absolute http(s) URL"))?;
    let Some(host) = url.host_str() else { return Err(invalid("url", "invalid_url", "an absolute http(s) URL")) };
    let uri = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &req.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    let ask = Ask {
        method: &method,
        host,
        uri: &uri,
        browser_page_load: browser_page_load(&headers),
        preflight: preflight(&method, &headers),
        credentials: credentials(&headers, state.settings.sessions.cookie_name()),
    };
    let ex = gateway::explain(&state, &ctx, &ask).await?;
    Ok(axum::Json(ExplainResponse {
        rule: ex.rule,
        policy: ex.policy.to_string(),
        decision: ex.decision.to_string(),
        reasons: ex.reasons,
    }))
}

/// The gateway rules in force, with the rules that can never match.
#[utoipa::path(get, path = "/v1/admin/gateway/rules", tag = "admin", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The rules", body = GatewayRules),
        (status = 403, description = "Lacks gateway:read", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn rules(State(state): State<AppState>, _guard: Guard<crate::auth::GatewayRead>) -> axum::Json<GatewayRules> {
    let set = state.gateway.rules();
    axum::Json(GatewayRules {
        default_policy: set.default_policy().as_str().to_string(),
        rules: set
            .rules()
            .iter()
            .map(|r| GatewayRuleView {
                id: r.id().to_string(),
                hosts: r.hosts().iter().map(|h| h.to_string()).collect(),
                paths: r.paths().iter().map(|p| p.as_str().to_string()).collect(),
                methods: r.methods().to_vec(),
                policy: r.policy.as_str().to_string(),
            })
            .collect(),
        shadowed: set.shadowed().iter().map(|s| ShadowedRuleView { rule: s.rule.clone(), by: s.by.clone() }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_assertion_value_is_the_token_given_never_one_kept_from_before() {
        let first = Bytes::from_static(b"aaa.bbb.ccc");
        assert_eq!(assertion_value(first.clone()).unwrap(), "aaa.bbb.ccc");
        // The same token again (a clone: same address): the kept value.
        assert_eq!(assertion_value(first.clone()).unwrap(), "aaa.bbb.ccc");
        // A token of other bytes, and one of the same bytes at another address.
        assert_eq!(assertion_value(Bytes::from("xxx.yyy.zzz".to_string())).unwrap(), "xxx.yyy.zzz");
        assert_eq!(assertion_value(Bytes::from("aaa.bbb.ccc".to_string())).unwrap(), "aaa.bbb.ccc");
        // A prefix of the kept token starts at its address: its own length is what is used.
        assert_eq!(assertion_value(first.slice(..3)).unwrap(), "aaa");
        // Bytes that cannot be a header value give none, and do not replace the kept one.
        assert!(assertion_value(Bytes::from_static(b"bad\nvalue")).is_none());
        assert_eq!(identity_headers(first.clone(), None)[0].1, "aaa.bbb.ccc");
    }

    #[test]
    fn the_original_request_is_read_from_each_proxys_headers() {
        let traefik = headers(&[
            ("x-forwarded-method", "post"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/v1/orders?x=1"),
        ]);
        let o = from_forwarded(&traefik).unwrap();
        assert_eq!((&*o.method, o.url().as_str()), ("POST", "https://app.example.com/v1/orders?x=1"));
        let nginx = headers(&[("x-original-method", "GET"), ("x-original-url", "http://app.example.com:8080/a/b?c=d")]);
        let o = from_original(&nginx).unwrap();
        assert_eq!((&*o.host, &*o.uri, &*o.proto), ("app.example.com:8080", "/a/b?c=d", "http"));
        assert!(from_forwarded(&headers(&[("x-forwarded-method", "GET")])).is_none(), "no URI: no decision");
        assert!(from_original(&headers(&[("x-original-method", "GET"), ("x-original-url", "not a url")])).is_none());
    }

    #[test]
    fn credentials_take_a_key_before_a_token_and_never_both() {
        let c = |pairs: &[(&'static str, &str)]| {
            let h = headers(pairs);
            let c = credentials(&h, "sid");
            (c.api_key.map(str::to_string), c.bearer.map(str::to_string), c.session_cookie.map(str::to_string))
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(c(&[("authorization", "Bearer eyJ.a.b")]), (None, s("eyJ.a.b"), None));
        assert_eq!(c(&[("authorization", "Bearer rk_k")]), (s("rk_k"), None, None), "a key in Authorization");
        assert_eq!(c(&[("authorization", "Bearer eyJ.a.b"), ("x-api-key", "rk_h")]), (s("rk_h"), None, None));
        assert_eq!(c(&[("cookie", "a=1; sid=s3ss")]), (None, None, s("s3ss")));
    }

    #[test]
    fn method_and_scheme_are_borrowed_unless_they_need_a_case_change() {
        assert!(matches!(upper("GET"), Cow::Borrowed("GET")));
        assert_eq!(upper("pOst"), "POST");
        assert!(matches!(lower("https"), Cow::Borrowed("https")));
        assert_eq!(lower("HTTPS"), "https");
    }

    #[test]
    fn plainly_spelled_urls_split_as_the_url_parser_splits_them() {
        let schemes = ["http://", "https://", "HTTP://", "ftp://", "http:/", ""];
        let hosts = [
            "app.example.com",
            "127.0.0.1",
            "a-b.c",
            "x",
            "APP.example.com",
            "127.1",
            "0x7f.0.0.1",
            "010.0.0.1",
            "1.2.3.04",
            "256.1.1.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.999999",
            "9.example.com",
            "example.123",
            "b\u{fc}cher.de",
            "xn--bcher-kva.de",
            "[::1]",
            "a..b",
            "a.b.",
            ".a",
            "a_b.c",
            "user@host",
            "h%41.com",
            "",
        ];
        let ports =
            ["", ":80", ":443", ":8080", ":080", ":", ":65535", ":65536", ":99999", ":123456", ":0", ":00", ":x"];
        let targets = [
            "/",
            "/a/b?x=1",
            "/a/b/",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/.hidden",
            "/a/%2e%2e/b",
            "/a/%2E/b",
            "/a%2Fb",
            "/a b",
            "/a?q='x'",
            "/a'b",
            "/a?",
            "/a??b",
            "/\u{e9}",
            "/a#f",
            "/a\\b",
            "/a;b=1",
            "//x",
            "/a%zz",
            "/a\"b",
            "/a<b>",
            "/{x}",
            "/a|b",
            "/~u/p@h",
            "",
            "?x",
            "/a?x=%20&y=a+b",
        ];
        let mut fast = 0;
        for scheme in schemes {
            for host in hosts {
                for port in ports {
                    for target in targets {
                        let url = format!("{scheme}{host}{port}{target}");
                        let Some((s, h, t)) = plain_url(&url) else { continue };
                        fast += 1;
                        let parsed = parsed_url(&url);
                        assert_eq!(Some((s.to_string(), h.to_string(), t.to_string())), parsed, "{url}");
                    }
                }
            }
        }
        assert!(fast > 300, "the plain path was taken {fast} times");
        assert_eq!(plain_url("http://app.example.com:8080/gw?a=1"), Some(("http", "app.example.com:8080", "/gw?a=1")));
        assert_eq!(plain_url("https://app.example.com:443/"), Some(("https", "app.example.com", "/")));
    }

    #[test]
    fn browser_page_loads_and_preflights_are_told_apart() {
        assert!(browser_page_load(&headers(&[("accept", "text/html,application/xhtml+xml")])));
        assert!(!browser_page_load(&headers(&[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")])));
        assert!(!browser_page_load(&headers(&[("accept", "application/json")])));
        let h = headers(&[("origin", "https://a.example"), ("access-control-request-method", "POST")]);
        assert!(preflight("OPTIONS", &h) && !preflight("GET", &h));
    }
}
