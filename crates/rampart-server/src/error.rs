//! `ApiError`: every error an HTTP handler can return, with an exhaustive table of status,
//! stable `code` and title, rendered as RFC 9457 `application/problem+json`.
//!
//! Internal causes (database errors, I/O) are logged with the request id and never reach the
//! client: a 500 says only that something went wrong and which request it was.

use crate::request_id;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_store::StoreError;
use rampart_wire::{FieldError, Problem};

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route matches this path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request took longer than {secs} s")]
    Timeout { secs: u64 },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body does not match the expected shape: {0}")]
    InvalidRequest(String),
    #[error("expected a request with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("this request needs credentials: a bearer access token or the session cookie")]
    Unauthenticated,
    #[error("the access token or session is invalid, expired or revoked")]
    InvalidToken,
    #[error("wrong e-mail address or password")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired, or its session has ended")]
    InvalidRefreshToken,
    #[error("this refresh token was used before; its session has been revoked")]
    RefreshTokenReused,
    #[error("the token is invalid, expired or used")]
    InvalidAccountToken,
    #[error("the second-factor code is wrong, expired or was used before")]
    InvalidMfaCode,
    #[error("the mfa_token is unknown, expired or used; log in again")]
    InvalidMfaToken,
    #[error("the API key is unknown, expired or revoked")]
    InvalidApiKey,
    #[error("rate limit reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("the password has expired; set a new one with the change_token at /v1/auth/password/reset")]
    PasswordExpired { change_token: String },
    #[error("service temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// Status, stable code and title. Exhaustive: a new variant does not compile until it has
    /// its row here.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::NotFound => (S::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            ApiError::PayloadTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            ApiError::Timeout { .. } => (S::SERVICE_UNAVAILABLE, "request_timeout", "Request timed out"),
            ApiError::InvalidJson(_) => (S::BAD_REQUEST, "invalid_json", "Malformed JSON"),
            ApiError::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request", "Invalid request"),
            ApiError::UnsupportedMediaType => {
                (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            ApiError::Validation(_) => (S::BAD_REQUEST, "validation_failed", "Validation failed"),
            ApiError::Conflict { code, .. } => (S::CONFLICT, code, "Conflict"),
            ApiError::NotReady(_) => (S::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            ApiError::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated", "Authentication required"),
            ApiError::InvalidToken => (S::UNAUTHORIZED, "invalid_token", "Invalid token"),
            ApiError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials", "Invalid credentials"),
            ApiError::InvalidRefreshToken => (S::UNAUTHORIZED, "invalid_refresh_token", "Invalid refresh token"),
            ApiError::RefreshTokenReused => (S::UNAUTHORIZED, "refresh_token_reused", "Refresh token reused"),
            ApiError::InvalidAccountToken => (S::BAD_REQUEST, "invalid_or_expired_token", "Invalid or expired token"),
            ApiError::TooManyAttempts { .. } => (S::TOO_MANY_REQUESTS, "too_many_attempts", "Too many attempts"),
            ApiError::InvalidMfaCode => (S::UNAUTHORIZED, "invalid_mfa_code", "Invalid second-factor code"),
            ApiError::InvalidMfaToken => (S::UNAUTHORIZED, "invalid_mfa_token", "Invalid mfa_token"),
            ApiError::InvalidApiKey => (S::UNAUTHORIZED, "invalid_api_key", "Invalid API key"),
            ApiError::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited", "Rate limited"),
            ApiError::Forbidden { code, .. } => (S::FORBIDDEN, code, "Forbidden"),
            ApiError::PasswordExpired { .. } => (S::FORBIDDEN, "password_expired", "Password expired"),
            ApiError::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error"),
        }
    }

    /// What the client is told. Server-side causes stay out of it.
    fn detail(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "The server could not complete the request. Quote the request id when reporting it.".into()
            }
            ApiError::Unavailable(_) => "A dependency of the service did not answer; retry later.".into(),
            other => other.to_string(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        Problem {
            type_: format!("urn:rampart:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.detail(),
            code: code.into(),
            request_id: request_id::current(),
            errors: match self {
                ApiError::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            change_token: match self {
                ApiError::PasswordExpired { change_token } => Some(change_token.clone()),
                _ => None,
            },
        }
    }
}

/// Every storage error has a row; none falls through to a catch-all.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailTaken => {
                ApiError::Conflict { code: "email_taken", detail: "An account with this e-mail address exists.".into() }
            }
            StoreError::UnknownRole(role) => ApiError::Validation(vec![FieldError {
                field: "roles".into(),
                code: "unknown_role".into(),
                message: format!("role {role:?} does not exist"),
            }]),
            StoreError::Conflict(detail) => ApiError::Conflict { code: "conflict", detail },
            e @ (StoreError::Unavailable(_) | StoreError::Connect(_)) => ApiError::Unavailable(Box::new(e)),
            e @ (StoreError::UnsupportedUrl(_)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_)) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(code, error = %cause, "request failed");
            }
            _ => tracing::debug!(code, "request rejected"),
        }
        let mut res = problem_response(status, &self.to_problem());
        match &self {
            ApiError::PasswordExpired { .. } => {
                res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            ApiError::TooManyAttempts { retry_after_secs } | ApiError::RateLimited { retry_after_secs } => {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthenticated | ApiError::InvalidToken => {
                let challenge =
                    if matches!(self, ApiError::InvalidToken) { "Bearer error=\"invalid_token\"" } else { "Bearer" };
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            _ => {}
        }
        res
    }
}

pub(crate) fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{\"code\":\"internal_error\"}".to_vec());
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if matches!(status, StatusCode::SERVICE_UNAVAILABLE) {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_say_nothing_internal() {
        let e =
            ApiError::internal(std::io::Error::other("connection to 10.0.0.5 refused: password authentication failed"));
        let p = e.to_problem();
        assert_eq!(p.status, 500);
        assert_eq!(p.code, "internal_error");
        assert!(!p.detail.contains("10.0.0.5") && !p.detail.contains("password"));
        let store: ApiError = StoreError::Corrupt("users.email column bad".into()).into();
        assert!(!store.to_problem().detail.contains("users.email"));
    }

    #[test]
    fn codes_are_stable_snake_case_and_types_match() {
        let all = [
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::Timeout { secs: 1 },
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidRequest("x".into()),
            ApiError::UnsupportedMediaType,
            ApiError::Validation(vec![]),
            ApiError::Conflict { code: "email_taken", detail: "x".into() },
            ApiError::NotReady("db".into()),
            ApiError::Unauthenticated,
            ApiError::InvalidToken,
            ApiError::InvalidCredentials,
            ApiError::InvalidRefreshToken,
            ApiError::RefreshTokenReused,
            ApiError::InvalidAccountToken,
            ApiError::TooManyAttempts { retry_after_secs: 3 },
            ApiError::InvalidApiKey,
            ApiError::RateLimited { retry_after_secs: 3 },
            ApiError::Forbidden { code: "csrf_failed", detail: "x".into() },
            ApiError::PasswordExpired { change_token: "pr_x".into() },
            ApiError::Unavailable(Box::new(std::io::Error::other("x"))),
            ApiError::Internal(Box::new(std::io::Error::other("x"))),
        ];
        for e in all {
            let p = e.to_problem();
            assert!(p.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", p.code);
            assert_eq!(p.type_, format!("urn:rampart:problem:{}", p.code));
            assert!(p.status >= 400);
        }
    }

    #[test]
    fn store_errors_map_to_client_meaningful_answers() {
        assert_eq!(ApiError::from(StoreError::EmailTaken).parts().0, StatusCode::CONFLICT);
        assert_eq!(ApiError::from(StoreError::EmailTaken).parts().1, "email_taken");
        assert_eq!(ApiError::from(StoreError::UnknownRole("x".into())).parts().1, "validation_failed");
        assert_eq!(ApiError::from(StoreError::timed_out()).parts().0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
