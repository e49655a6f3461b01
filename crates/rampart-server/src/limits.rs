//! Request limits and the JSON extractor: body size, processing time, panics, and the
//! problem answers for unknown routes and methods.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The body limit in force, for extractors to name in their errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// Refuses a declared `Content-Length` over `limit` before reading anything, and caps
/// streamed (chunked) bodies at `limit` while they are read.
pub(crate) async fn body_limit(limit: usize, req: Request, next: Next) -> Response {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    let mut req = req.map(|body| Body::new(Limited::new(body, limit)));
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

/// Cancels a request still running after `timeout` and answers 503 `request_timeout`.
pub(crate) async fn timeout(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout { secs: timeout.as_secs() }.into_response(),
    }
}

/// A panic in a handler becomes a 500 problem (the panic message is logged, not sent).
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(msg.to_string().into()).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `Json<T>` whose rejections are problem documents: 400 `invalid_json` for syntax,
/// 400 `invalid_request` for a wrong shape or an unknown field, 413 past the body limit,
/// 415 without a JSON content type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::InvalidRequest(e.body_text()),
                JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
                JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
                JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge { limit }
                }
                other => ApiError::InvalidRequest(other.body_text()),
            }),
        }
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
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::InvalidRequest(rejection.body_text())),
        }
    }
}
