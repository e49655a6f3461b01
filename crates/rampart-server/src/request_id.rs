//! `X-Request-Id`: kept when the client sent a well-formed one, otherwise a new UUIDv7;
//! echoed on every response, recorded on the request's log span, and readable anywhere in
//! the request's task through [`current`].

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id accepted; longer ones are replaced, not truncated.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client id is kept if it is 1–128 characters of `A-Z a-z 0-9 - _ . : /` — enough for
/// UUIDs, ULIDs and tracing ids, and nothing that could forge log lines or headers.
pub fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

pub(crate) fn resolve(req: &Request) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// Outermost middleware: decides the id, scopes it over the rest of the request, and
/// stamps it on the response whatever produced that response.
pub(crate) async fn middleware(mut req: Request, next: Next) -> Response {
    let id = resolve(&req);
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let mut res = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids() {
        for ok in ["abc", "0190f3e4-7c1a-7b2e-9c3d-1234567890ab", "01J9Z3K5:req/7.1_x", &"a".repeat(128)] {
            assert!(is_well_formed(ok), "{ok}");
        }
        for bad in ["", "has space", "new\nline", "quote\"", "<script>", &"a".repeat(129), "ünïcode"] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
