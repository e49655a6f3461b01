//! `X-Request-Id`: kept when the client sent a well-formed one, otherwise a new UUIDv7;
//! echoed on every response, recorded on the request's log span, and readable anywhere in
//! the request's task through [`current`].

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id accepted; longer ones are replaced, not truncated.
const MAX_LEN: usize = 128;

tokio::task_local! {
    // The header value itself: cloning it is a reference count, not a copy.
    static REQUEST_ID: HeaderValue;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_str().ok().map(str::to_string)).ok().flatten()
}

/// A client id is kept if it is 1–128 characters of `A-Z a-z 0-9 - _ . : /` — enough for
/// UUIDs, ULIDs and tracing ids, and nothing that could forge log lines or headers.
pub fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// The client's id when well formed, otherwise a new UUIDv7 (its random part from the
/// thread's CSPRNG, uuid's `fast-rng`: no system call per request).
pub(crate) fn resolve(req: &Request) -> HeaderValue {
    req.headers().get(&X_REQUEST_ID).filter(|v| v.to_str().is_ok_and(is_well_formed)).cloned().unwrap_or_else(|| {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::now_v7();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).unwrap_or(HeaderValue::from_static("-"))
    })
}

/// Layer 2 of `crate::stack`: decides the id and puts it into the request (the id is
/// returned for [`scope`] and [`stamp`]).
pub(crate) fn assign(req: &mut Request) -> HeaderValue {
    let id = resolve(req);
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    id
}

/// Runs `fut` with `id` readable through [`current`].
pub(crate) fn scope<F: std::future::Future>(id: HeaderValue, fut: F) -> impl std::future::Future<Output = F::Output> {
    REQUEST_ID.scope(id, fut)
}

/// Puts the id on the response, whatever produced it.
pub(crate) fn stamp(res: &mut Response, id: HeaderValue) {
    res.headers_mut().insert(X_REQUEST_ID.clone(), id);
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
