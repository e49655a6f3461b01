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

thread_local! {
    // Each thread's own UUIDv7 counter. `Uuid::now_v7` shares one process-wide behind a mutex,
    // which every request of every worker thread then took: a lock whose cache line moved
    // between cores on each request. Request ids need to be unique, not ordered across
    // threads; each id still carries 74 bits that are random or randomly seeded.
    static V7_CONTEXT: uuid::ContextV7 = const { uuid::ContextV7::new() };
}

/// A new UUIDv7 from this thread's counter.
fn new_id() -> uuid::Uuid {
    V7_CONTEXT.with(|ctx| uuid::Uuid::new_v7(uuid::Timestamp::now(ctx)))
}

/// The client's id when well formed, otherwise a new UUIDv7 (its random part from the
/// thread's CSPRNG, uuid's `fast-rng`: no system call per request).
pub(crate) fn resolve(req: &Request) -> HeaderValue {
    req.headers().get(&X_REQUEST_ID).filter(|v| v.to_str().is_ok_and(is_well_formed)).cloned().unwrap_or_else(|| {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = new_id();
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
    fn new_ids_are_version_7_distinct_and_ordered_on_a_thread() {
        let before = uuid::Uuid::now_v7();
        let ids: Vec<uuid::Uuid> = (0..10_000).map(|_| new_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one thread's ids increase");
        let millis = |id: &uuid::Uuid| {
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            u128::from(secs) * 1000 + u128::from(nanos / 1_000_000)
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert!((millis(&before)..=now).contains(&millis(&ids[0])), "the time part is the current time");
        let other: Vec<uuid::Uuid> = std::thread::spawn(|| (0..10_000).map(|_| new_id()).collect()).join().unwrap();
        let all: std::collections::HashSet<_> = ids.iter().chain(&other).collect();
        assert_eq!(all.len(), 20_000, "no id repeats, within a thread or across two");
    }

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
