//! Request limits and the JSON extractor: body size, processing time, panics, and the
//! problem answers for unknown routes and methods.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;
use rampart_core::FieldProblem;
use rampart_core::ServiceError;

use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// The body limits in force, for extractors: the byte limit (named in their errors) and the
/// JSON shape limits. One extension, not two: each is an allocation and an insert per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit {
    pub bytes: usize,
    pub json: JsonLimits,
}

/// The longest request target (path and query) answered: 8 KiB, as most servers and proxies.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header section answered (names, values and their separators): 32 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 `uri_too_long` and 431 `headers_too_large` as problem documents with the request id,
/// for what hyper lets through (its own limits, far higher, answer with an empty body before
/// any layer runs; so do a malformed request line and a NUL in a header).
fn head_limits(req: &Request) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong { limit: MAX_URI_BYTES });
    }
    let headers: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    (headers > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge { limit: MAX_HEADER_BYTES })
}

/// Refuses a declared `Content-Length` over `limit` before reading anything, reads a declared
/// body within it whole, and caps streamed (chunked) bodies at `limit` while they are read
/// (layer 7 of `crate::stack`, with the JSON limits for [`ApiJson`]).
/// `Err`: the refusal, which answers instead.
pub(crate) async fn body_limit(limit: usize, json: JsonLimits, req: Request) -> Result<Request, Response> {
    if let Some(refused) = head_limits(&req) {
        return Err(refused.into_response());
    }
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit }.into_response());
    }
    let mut req = match declared {
        // A body of a declared size within the limit is read whole before anything answers:
        // an answer sent with the body still unread (a refusal by an extractor) makes the
        // server close the connection, and a client that reuses it meanwhile sees "connection
        // closed" instead of the answer (Python's requests did, on a refused transit call).
        // Reading is under the request timeout: a body that never comes is a 408.
        Some(n) if n > 0 => {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(body, limit).await {
                Ok(bytes) => Request::from_parts(parts, Body::from(bytes)),
                Err(e) => {
                    return Err(
                        ApiError::InvalidRequest(format!("the request body could not be read: {e}")).into_response()
                    );
                }
            }
        }
        // No body at all (most GETs): nothing to cap, no wrapper to allocate.
        _ if http_body::Body::is_end_stream(req.body()) => req,
        _ => req.map(|body| Body::new(Limited::new(body, limit))),
    };
    req.extensions_mut().insert(BodyLimit { bytes: limit, json });
    Ok(req)
}

/// Layer 6 cancels a request still running after `server.request_timeout_secs`. When the
/// handler was still waiting for the request's body (a client that announced more bytes than it
/// sends, or sends them too slowly) the fault is the client's: 408 `body_timeout`, and the
/// connection closes (its unread bytes cannot be skipped). Otherwise the service was too slow:
/// 503 `request_timeout`.
///
/// Before the request goes in: its body watched (a request without one, most GETs, is not
/// wrapped: nothing to wait for, no allocation).
pub(crate) fn watch_body(req: Request) -> (Request, Option<Arc<BodyWatch>>) {
    if http_body::Body::is_end_stream(req.body()) {
        return (req, None);
    }
    let watch = Arc::new(BodyWatch::default());
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(Watched { inner: body, watch: Arc::clone(&watch) });
    (Request::from_parts(parts, body), Some(watch))
}

/// The answer of a request that ran out of time (layer 6), given the watch on its body.
pub(crate) fn timed_out(timeout: Duration, watch: Option<&BodyWatch>) -> Response {
    if watch.is_some_and(BodyWatch::waiting) {
        let mut res = ApiError::BodyTimeout { secs: timeout.as_secs() }.into_response();
        res.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        return res;
    }
    ApiError::Timeout { secs: timeout.as_secs() }.into_response()
}

/// Whether a request's body has been asked for and has not ended yet ([`watch_body`]).
#[derive(Debug, Default)]
pub(crate) struct BodyWatch {
    started: std::sync::atomic::AtomicBool,
    ended: std::sync::atomic::AtomicBool,
}

impl BodyWatch {
    fn waiting(&self) -> bool {
        use std::sync::atomic::Ordering::Acquire;
        self.started.load(Acquire) && !self.ended.load(Acquire)
    }
}

/// The request body, telling [`BodyWatch`] when it is first read and when it ends.
struct Watched {
    inner: axum::body::Body,
    watch: Arc<BodyWatch>,
}

impl http_body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::sync::atomic::Ordering::Release;
        self.watch.started.store(true, Release);
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.watch.ended.store(true, Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Layer 5: a panic in a handler becomes a 500 problem (the panic message is logged, not
/// sent).
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(std::io::Error::other(msg.to_string())).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Limits on the shape of JSON bodies, checked before deserializing.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimits {
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Longest string (key or value), in bytes as sent (escapes included).
    pub max_string_bytes: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self { max_depth: 32, max_string_bytes: 16 * 1024 }
    }
}

/// One pass over the bytes, before any parsing: nesting depth and string lengths, with the
/// dotted path of the field at fault (`profile.name`; array positions are not counted). Syntax
/// is left to the parser.
pub fn check_shape(bytes: &[u8], limits: JsonLimits) -> Result<(), FieldProblem> {
    // Most bodies can break no rule here: no more brackets than the levels allowed (each level
    // opens one), no longer than the longest string allowed, and not one control character or
    // escape anywhere (so none inside a string). They need no walk.
    // Counted over every byte without stopping early, so the compiler can take many bytes at
    // once (the bodies that need the walk are rare; this pass is paid by all of them).
    let (brackets, odd) = bytes.iter().fold((0usize, false), |(brackets, odd), &b| {
        (brackets + usize::from(b == b'{' || b == b'['), odd | (b < 0x20) | (b == 0x7f) | (b == b'\\'))
    });
    if !odd && brackets <= limits.max_depth && bytes.len() <= limits.max_string_bytes {
        return Ok(());
    }
    let mut keys: Vec<String> = Vec::new(); // the key at each object depth
    let mut depth = 0usize;
    let mut i = 0;
    let path = |keys: &[String], extra: Option<&str>| {
        let mut parts: Vec<&str> = keys.iter().map(String::as_str).filter(|k| !k.is_empty()).collect();
        parts.extend(extra);
        if parts.is_empty() { "$".to_string() } else { parts.join(".") }
    };
    let mut last_string: Option<String> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(FieldProblem {
                        field: path(&keys, None),
                        code: "too_deep".into(),
                        message: format!("nested deeper than {} levels", limits.max_depth),
                    });
                }
                keys.push(String::new());
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                keys.pop();
            }
            b':' => {
                if let (Some(k), Some(top)) = (last_string.take(), keys.last_mut()) {
                    *top = k;
                }
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let len = j.min(bytes.len()) - start;
                let raw = &bytes[start..j.min(bytes.len())];
                let text = String::from_utf8_lossy(raw).into_owned();
                let field = || {
                    if bytes[j.min(bytes.len())..].iter().find(|b| !b.is_ascii_whitespace() && **b != b'"')
                        == Some(&b':')
                    {
                        path(&keys, Some("(key)"))
                    } else {
                        path(&keys, None)
                    }
                };
                if len > limits.max_string_bytes {
                    return Err(FieldProblem {
                        field: field(),
                        code: "too_long".into(),
                        message: format!("longer than {} bytes", limits.max_string_bytes),
                    });
                }
                if has_control_character(raw) {
                    return Err(FieldProblem::new(&field(), "control_character", CONTROL_MESSAGE));
                }
                last_string = Some(text);
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What a text input with a control character is told.
pub const CONTROL_MESSAGE: &str = "control characters (U+0000 to U+001F, U+007F) are not accepted";

/// Whether the raw bytes of a JSON string (between its quotes, escapes not yet decoded) hold a
/// control character, raw (DEL is valid JSON) or escaped (`\n`, `\u0000`, …).
fn has_control_character(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\\' => {
                match raw.get(i + 1) {
                    Some(b'n' | b't' | b'r' | b'b' | b'f') => return true,
                    Some(b'u') => {
                        let hex = raw.get(i + 2..i + 6).and_then(|h| std::str::from_utf8(h).ok());
                        if hex.and_then(|h| u32::from_str_radix(h, 16).ok()).is_some_and(is_control) {
                            return true;
                        }
                    }
                    _ => {}
                }
                i += 2;
            }
            b => {
                if is_control(u32::from(b)) {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}

fn is_control(c: u32) -> bool {
    c < 0x20 || c == 0x7f
}

/// A serde data error (`path: message`, from axum's rejection text) as a field error.
fn data_error(text: &str) -> FieldProblem {
    let text = text.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(text);
    let (path, msg) = text.split_once(": ").unwrap_or((".", text));
    let msg = plain_types(msg.split(" at line ").next().unwrap_or(msg));
    let quoted = msg.split('`').nth(1).map(str::to_string);
    let parent = if path == "." { String::new() } else { path.to_string() };
    let join = |name: &str| {
        if parent.is_empty() || parent.ends_with(name) { name.to_string() } else { format!("{parent}.{name}") }
    };
    let (field, code) = if msg.starts_with("unknown field") {
        (join(quoted.as_deref().unwrap_or("")), "unknown_field")
    } else if msg.starts_with("missing field") {
        (join(quoted.as_deref().unwrap_or("")), "required")
    } else if msg.starts_with("invalid type") {
        (path.trim_start_matches('.').to_string(), "invalid_type")
    } else {
        (path.trim_start_matches('.').to_string(), "invalid")
    };
    FieldProblem { field: if field.is_empty() { "$".into() } else { field }, code: code.into(), message: msg }
}

/// serde's "expected u32" names a Rust type; a client is told what to send instead.
fn plain_types(msg: &str) -> String {
    const TYPES: &[(&str, &str)] = &[
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected i32", "expected a whole number from -2147483648 to 2147483647"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ];
    let mut out = msg.to_string();
    for (rust, plain) in TYPES {
        // Whole words only: "expected u32" but not "expected u320".
        if let Some(at) = out.find(rust) {
            let end = at + rust.len();
            if out[end..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric()) {
                out.replace_range(at..end, plain);
            }
        }
    }
    out
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `Json<T>` whose rejections are problem documents: 400 `invalid_json` for syntax; 400
/// `validation_failed` naming each field and its code for a body too deep (`too_deep`), a string
/// too long (`too_long`), an unknown field (`unknown_field`), a missing one (`required`) or a
/// wrong type (`invalid_type`); 413 past the body limit; 415 without a JSON content type. A
/// rejected body reaches no handler, so nothing of it is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (limit, shape) =
            req.extensions().get::<BodyLimit>().map_or((0, JsonLimits::default()), |l| (l.bytes, l.json));
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::InvalidRequest(e.body_text())
            }
        })?;
        check_shape(&bytes, shape).map_err(|e| ApiError::from(ServiceError::Validation(vec![e])))?;
        // A body that reads is read directly; one that does not is read again through axum's
        // extractor, which tracks where it failed (serde_path_to_error) for the error's field.
        // Both accept exactly the same documents; the tracking costs on every body otherwise.
        if let Ok(v) = serde_json::from_slice::<T>(&bytes) {
            return Ok(ApiJson(v));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ServiceError::Validation(vec![data_error(&e.body_text())]).into())
            }
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::InvalidJson(e.body_text())),
            Err(other) => Err(ApiError::InvalidRequest(other.body_text())),
        }
    }
}

/// An optional JSON body (`Option<ApiJson<T>>`): a request with neither a body nor a content
/// type is `None`; anything else is read as [`ApiJson`] reads it, refusals included.
impl<S, T> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers();
        let empty = !headers.contains_key(axum::http::header::CONTENT_TYPE)
            && headers
                .get(axum::http::header::CONTENT_LENGTH)
                .is_none_or(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()) == Some(0))
            && !headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        if empty {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

/// `axum::extract::Query` whose rejections (an unknown parameter, a malformed value) are
/// problem documents (400 `invalid_request`) like every other error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(query) = parts.uri.query() {
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                if key.chars().chain(value.chars()).any(|c| is_control(u32::from(c))) {
                    return Err(ServiceError::field(&key, "control_character", CONTROL_MESSAGE).into());
                }
            }
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::InvalidRequest(rejection.body_text())),
        }
    }
}

/// `axum::extract::Form` whose rejections (a wrong media type, a missing or malformed field)
/// are problem documents like every other error: 415 `unsupported_media_type` when the body is
/// not `application/x-www-form-urlencoded`, else 400 `invalid_request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiForm<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::FormRejection;
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(v)) => Ok(ApiForm(v)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(rejection) => Err(ApiError::InvalidRequest(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_what_to_send_not_a_rust_type() {
        let p = data_error("grace_seconds: invalid type: floating point `13837.0`, expected u32 at line 1 column 25");
        assert_eq!((p.field.as_str(), p.code.as_str()), ("grace_seconds", "invalid_type"));
        assert_eq!(p.message, "invalid type: floating point `13837.0`, expected a whole number from 0 to 4294967295");
        let p = data_error("enabled: invalid type: string \"yes\", expected a boolean at line 1 column 9");
        assert!(p.message.ends_with("expected true or false"), "{}", p.message);
        assert_eq!(plain_types("expected u320"), "expected u320");
    }

    #[test]
    fn control_characters_are_found_raw_and_escaped() {
        let l = JsonLimits { max_depth: 8, max_string_bytes: 100 };
        for body in
            [r#"{"q":"a\u0000b"}"#, r#"{"q":"a\nb"}"#, r#"{"q":"\u001F"}"#, "{\"q\":\"a\u{7f}b\"}", r#"{"q":"\u007f"}"#]
        {
            let e = check_shape(body.as_bytes(), l).unwrap_err();
            assert_eq!((e.field.as_str(), e.code.as_str()), ("q", "control_character"), "{body}");
        }
        for body in [r#"{"q":"a\"b\\c\u00e9\/"}"#, r#"{"q":"ünïcödé"}"#, r#"{"a\u0020b":1}"#] {
            assert!(check_shape(body.as_bytes(), l).is_ok(), "{body}");
        }
    }

    #[test]
    fn the_shortcut_for_plain_bodies_never_passes_what_the_walk_refuses() {
        let l = JsonLimits { max_depth: 2, max_string_bytes: 40 };
        for (body, code) in [
            (r#"{"a":[[1]]}"#, "too_deep"),
            (r#"{"a":"x","b":"0123456789012345678901234567890123456789x"}"#, "too_long"),
            ("{\"a\":\"x\ty\"}", "control_character"),
            (r#"{"a":"x\u0001"}"#, "control_character"),
            ("{\"a\":\"x\u{7f}\"}", "control_character"),
        ] {
            assert_eq!(check_shape(body.as_bytes(), l).unwrap_err().code, code, "{body}");
        }
        for body in [r#"{"a":[1],"b":"ok"}"#, r#"{"ünï":"cödé"}"#, "{\"a\":\n [1]}"] {
            assert!(check_shape(body.as_bytes(), l).is_ok(), "{body}");
        }
    }

    #[test]
    fn depth_and_string_length_name_the_field() {
        let l = JsonLimits { max_depth: 3, max_string_bytes: 5 };
        assert!(check_shape(br#"{"a":{"b":["xyz"]}}"#, l).is_ok());
        let e = check_shape(br#"{"a":{"b":[[1]]}}"#, l).unwrap_err();
        assert_eq!((e.field.as_str(), e.code.as_str()), ("a.b", "too_deep"));
        let e = check_shape(br#"{"a":"ok","name":"toolong"}"#, l).unwrap_err();
        assert_eq!((e.field.as_str(), e.code.as_str()), ("name", "too_long"));
        let e = check_shape(br#"{"averylongkey":1}"#, l).unwrap_err();
        assert_eq!((e.field.as_str(), e.code.as_str()), ("(key)", "too_long"));
        // Escaped quotes do not end a string early.
        let e = check_shape(br#"{"s":"a\"b\"c\"d"}"#, l).unwrap_err();
        assert_eq!(e.field, "s");
        assert!(check_shape(&b"[".repeat(3), l).is_ok());
        assert!(check_shape(&b"[".repeat(4), l).is_err());
    }

    #[test]
    fn serde_errors_become_field_errors() {
        let p = "Failed to deserialize the JSON body into the target type: ";
        let e =
            data_error(&format!("{p}admin: unknown field `admin`, expected `email` or `password` at line 1 column 9"));
        assert_eq!((e.field.as_str(), e.code.as_str()), ("admin", "unknown_field"));
        let e = data_error(&format!("{p}.: missing field `password` at line 1 column 17"));
        assert_eq!((e.field.as_str(), e.code.as_str()), ("password", "required"));
        let e = data_error(&format!("{p}b[0]: missing field `y` at line 1 column 23"));
        assert_eq!((e.field.as_str(), e.code.as_str()), ("b[0].y", "required"));
        let e = data_error(&format!("{p}email: invalid type: integer `5`, expected a string at line 1 column 10"));
        assert_eq!((e.field.as_str(), e.code.as_str()), ("email", "invalid_type"));
    }
}
