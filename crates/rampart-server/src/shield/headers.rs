//! Security headers on every response, and CORS from an allowlist of origins.
//!
//! Headers (`[headers]` tunes each): HSTS when the request came over HTTPS (seen through a
//! trusted proxy's `X-Forwarded-Proto`/`Forwarded: proto=`), `X-Content-Type-Options`,
//! `X-Frame-Options`, `Referrer-Policy`, `Permissions-Policy`, `Cross-Origin-Opener-Policy`, the
//! CSP (or its report-only form) reporting to `/v1/csp-report`, and `Cache-Control: no-store`
//! on responses that carry or answer credentials. A header a handler set itself is kept, and a
//! response with its own CSP (the web pages') gets neither configured CSP form.
//!
//! CORS (`[cors]`): only listed origins get `Access-Control-Allow-Origin` (their own origin,
//! never `*`), with `Vary: Origin`; a preflight from a listed origin is answered here (204),
//! from any other with 403 `cors_refused`.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_config::{CorsSettings, HeadersSettings};
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// Where browsers send CSP violation reports.
pub const CSP_REPORT_PATH: &str = "/v1/csp-report";

/// At most this many fixed headers are sent (`[headers]` has fewer names than this).
const MAX_FIXED: usize = 32;

/// The header values, rendered once at start-up.
#[derive(Debug)]
pub struct SecurityHeaders {
    fixed: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// The headers of `[headers]` as `HeaderValue`s; a value that is not a valid header value
    /// is left out (validation refuses those at load).
    pub fn new(c: &HeadersSettings) -> Self {
        let fixed = c
            .fixed
            .iter()
            .filter_map(|(name, value)| Some((HeaderName::from_static(name), static_value(value)?)))
            .take(MAX_FIXED)
            .collect();
        let hsts = c.hsts.as_deref().and_then(static_value);
        Self { fixed, hsts }
    }
}

/// A configured header value that every response copies for free; `None` when it is not a
/// valid header value.
///
/// A value made by `HeaderValue::from_str` is reference-counted: each response's copy is a
/// call through the value's vtable and an atomic increment, and its drop after sending a
/// decrement (about eight such values on every response). A value over a `'static` string is
/// copied as a pointer. So each distinct configured value is kept for the life of the process,
/// once: a second build with the same settings (a reload, the tests' many instances) reuses it.
fn static_value(value: &str) -> Option<HeaderValue> {
    let checked = HeaderValue::from_str(value).ok()?;
    // `from_static` takes visible ASCII and tabs only; `from_str` also takes other bytes
    // (obs-text), which keep the counted form.
    if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Some(checked);
    }
    static KEPT: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    let kept: &'static str = match kept.get(value) {
        Some(s) => s,
        None => {
            let s: &'static str = Box::leak(value.into());
            kept.insert(s);
            s
        }
    };
    // Visible ASCII (checked above), so `from_static`'s own check passes.
    Some(HeaderValue::from_static(kept))
}

/// Whether the response may carry a credential (a token, a cookie, a key) or answer a
/// request that presented one: such responses must never be cached.
fn sends_credentials(path: &str, req: &HeaderMap) -> bool {
    req.contains_key(header::AUTHORIZATION)
        || req.contains_key(header::COOKIE)
        || req.contains_key("x-api-key")
        || path.starts_with("/v1/auth/")
        || path.starts_with("/v1/me")
}

/// Layer 1: the fixed headers, HSTS over HTTPS, `Cache-Control: no-store` on anything
/// carrying credentials. Read from the request before it goes in ([`Outgoing::of`]), put on
/// whatever answered it ([`Outgoing::finish`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing {
    https: bool,
    credentials_in: bool,
}

impl Outgoing {
    /// `https`: the connection as the trusted proxy described it.
    pub(crate) fn of(https: bool, req: &Request) -> Self {
        Self {
            https: https || req.uri().scheme_str() == Some("https"),
            credentials_in: sends_credentials(req.uri().path(), req.headers()),
        }
    }

    /// The security headers onto the answer.
    pub(crate) fn finish(self, h: &SecurityHeaders, res: &mut Response) {
        let Self { https, credentials_in } = self;
        let no_store = credentials_in || res.headers().contains_key(header::SET_COOKIE);
        let out = res.headers_mut();
        // One pass over the answer's own headers (a handful) says which fixed ones it set
        // itself, instead of a hash lookup per fixed header. A response that brought its own
        // CSP (the web pages') keeps it alone: a second policy, even report-only, would also
        // apply to it.
        let is_csp =
            |n: &HeaderName| n == header::CONTENT_SECURITY_POLICY || n == header::CONTENT_SECURITY_POLICY_REPORT_ONLY;
        let mut own_csp = false;
        let mut set_by_handler = [false; MAX_FIXED];
        for name in out.keys() {
            own_csp |= is_csp(name);
            if let Some(i) = h.fixed.iter().position(|(n, _)| n == name) {
                set_by_handler[i] = true;
            }
        }
        out.reserve(h.fixed.len() + 2);
        for ((name, value), set) in h.fixed.iter().zip(set_by_handler) {
            let kept = set || (own_csp && is_csp(name));
            if !kept {
                out.insert(name.clone(), value.clone());
            }
        }
        if https && let Some(v) = &h.hsts {
            out.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
        if no_store {
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

/// The CORS policy, rendered once.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<String>,
    credentials: bool,
    max_age: HeaderValue,
}

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &[&str] = &["authorization", "content-type", "x-api-key", "x-csrf-token", "x-request-id"];
const EXPOSED_HEADERS: &str = "ratelimit, ratelimit-policy, retry-after, x-request-id";

impl Cors {
    pub fn new(c: &CorsSettings) -> Self {
        Self {
            origins: c.allowed_origins.clone(),
            credentials: c.allow_credentials,
            max_age: HeaderValue::from(c.max_age.as_secs()),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// What CORS adds to an answer that was not a preflight: the request's `Origin`, if it had one,
/// and whether the policy allows it.
#[derive(Debug)]
pub(crate) struct CorsReply(Option<(String, bool)>);

/// Layer 10's verdict on a request.
#[derive(Debug)]
pub(crate) enum CorsStep {
    /// A preflight, answered here.
    Answered(Response),
    /// Any other request goes on; [`CorsReply::finish`] marks its answer.
    Continue(CorsReply),
}

/// Layer 10: answers a preflight, lets any other request go on.
pub(crate) fn cors(c: &Cors, req: &Request) -> CorsStep {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return CorsStep::Continue(CorsReply(None)) };
    let origin = origin.to_str().unwrap_or_default().to_string();
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = c.allows(&origin);
    if !preflight {
        return CorsStep::Continue(CorsReply(Some((origin, allowed))));
    }
    if !allowed {
        return CorsStep::Answered(ApiError::CorsRefused.into_response());
    }
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| ALLOWED_HEADERS.contains(&h.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
    if let Ok(v) = HeaderValue::from_str(&requested) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, c.max_age.clone());
    allow(h, &origin, c.credentials);
    CorsStep::Answered(res)
}

impl CorsReply {
    /// The answer's CORS headers: the origin allowed, or `Vary: Origin` when it is not.
    pub(crate) fn finish(self, c: &Cors, res: &mut Response) {
        let Some((origin, allowed)) = self.0 else { return };
        let h = res.headers_mut();
        if allowed {
            allow(h, &origin, c.credentials);
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        } else {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn allow(h: &mut HeaderMap, origin: &str, credentials: bool) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[test]
    fn configured_values_are_kept_once_and_invalid_ones_refused() {
        let a = static_value("max-age=63072000; includeSubDomains").unwrap();
        let again = static_value(&String::from("max-age=63072000; includeSubDomains")).unwrap();
        assert_eq!(a, again);
        assert_eq!(a.as_bytes().as_ptr(), again.as_bytes().as_ptr(), "one kept copy per distinct value");
        assert!(static_value("bad\nvalue").is_none());
        // Bytes past ASCII are valid (obs-text) but not `from_static`'s: kept as they were.
        assert_eq!(static_value("caf\u{e9}").unwrap().as_bytes(), "caf\u{e9}".as_bytes());
    }

    fn configured(report_only: bool) -> SecurityHeaders {
        let c = rampart_config::HeadersConfig { csp_report_only: report_only, ..Default::default() };
        SecurityHeaders::new(&c.settings().unwrap())
    }

    async fn answer(h: &SecurityHeaders, own: &[(&'static str, &'static str)]) -> HeaderMap {
        let req = Request::builder().uri("/healthz").body(Body::empty()).unwrap();
        let outgoing = Outgoing::of(false, &req);
        let mut res = Response::new(Body::empty());
        for (name, value) in own {
            res.headers_mut().insert(*name, HeaderValue::from_static(value));
        }
        outgoing.finish(h, &mut res);
        res.headers().clone()
    }

    #[tokio::test]
    async fn every_fixed_header_is_added_unless_the_handler_set_its_own() {
        let h = configured(false);
        let plain = answer(&h, &[("content-type", "application/json")]).await;
        for (name, value) in &h.fixed {
            assert_eq!(plain.get(name), Some(value), "{name}");
        }
        assert_eq!(plain["content-type"], "application/json");
        assert!(plain.get(header::CACHE_CONTROL).is_none() && plain.get(header::STRICT_TRANSPORT_SECURITY).is_none());

        let own = answer(&h, &[("x-frame-options", "SAMEORIGIN"), ("referrer-policy", "same-origin")]).await;
        assert_eq!(own["x-frame-options"], "SAMEORIGIN");
        assert_eq!(own["referrer-policy"], "same-origin");
        assert_eq!(own.get_all("x-frame-options").iter().count(), 1);
        assert_eq!(own["x-content-type-options"], "nosniff");
        assert!(own["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    }

    #[tokio::test]
    async fn a_page_with_its_own_policy_gets_neither_configured_csp_form() {
        for report_only in [false, true] {
            let h = configured(report_only);
            let page = answer(&h, &[("content-security-policy", "default-src 'self'")]).await;
            assert_eq!(page.get_all("content-security-policy").iter().collect::<Vec<_>>(), ["default-src 'self'"]);
            assert!(page.get("content-security-policy-report-only").is_none(), "report_only = {report_only}");
            assert_eq!(page["x-content-type-options"], "nosniff");

            let reporting = answer(&h, &[("content-security-policy-report-only", "default-src 'self'")]).await;
            assert!(reporting.get("content-security-policy").is_none(), "report_only = {report_only}");
            assert_eq!(reporting["content-security-policy-report-only"], "default-src 'self'");
        }
    }
}
