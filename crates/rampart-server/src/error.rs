//! `ApiError`: every error an HTTP handler can return — the transport's own refusals and every
//! use-case outcome ([`ServiceError`]) — with one exhaustive table of status, stable `code` and
//! title, rendered as RFC 9457 `application/problem+json`.
//!
//! Internal causes (database errors, I/O) are logged with the request id and never reach the
//! client: a 500 says only that something went wrong and which request it was.

use crate::request_id;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::{FieldProblem, ServiceError, ServiceErrorKind};
use rampart_store::StoreError;
use rampart_wire::{FieldError, Problem};

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The transport's refusals, and a use case's outcome. [`ApiErrorKind`] lists the variants.
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(name(ApiErrorKind), derive(strum::EnumIter))]
pub enum ApiError {
    #[error("no route matches this path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request target (path and query) is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request's header section is larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("request took longer than {secs} s")]
    Timeout { secs: u64 },
    #[error("the request body did not arrive within {secs} s (fewer bytes than announced, or too slowly)")]
    BodyTimeout { secs: u64 },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request is not what this endpoint takes: {0}")]
    InvalidRequest(String),
    #[error("expected a request with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("this request needs credentials: a bearer access token or the session cookie")]
    Unauthenticated,
    #[error("cookie-authenticated changes need X-CSRF-Token and a same-origin request")]
    CsrfFailed,
    #[error("this origin may not call the API")]
    CorsRefused,
    #[error("requests from this address are blocked")]
    IpBlocked,
    #[error("admin routes are open only to listed networks")]
    IpNotAllowed,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Service(ServiceError::internal(e))
    }

    /// Status, stable code and title. Exhaustive: a new variant (here or in [`ServiceError`])
    /// does not compile until it has its row.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::NotFound => (S::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            ApiError::PayloadTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            ApiError::UriTooLong { .. } => (S::URI_TOO_LONG, "uri_too_long", "URI too long"),
            ApiError::HeadersTooLarge { .. } => {
                (S::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "Request header fields too large")
            }
            ApiError::Timeout { .. } => (S::SERVICE_UNAVAILABLE, "request_timeout", "Request timed out"),
            ApiError::BodyTimeout { .. } => (S::REQUEST_TIMEOUT, "body_timeout", "Request body timed out"),
            ApiError::InvalidJson(_) => (S::BAD_REQUEST, "invalid_json", "Malformed JSON"),
            ApiError::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request", "Invalid request"),
            ApiError::UnsupportedMediaType => {
                (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            ApiError::NotReady(_) => (S::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            ApiError::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated", "Authentication required"),
            ApiError::CsrfFailed => (S::FORBIDDEN, "csrf_failed", "Forbidden"),
            ApiError::CorsRefused => (S::FORBIDDEN, "cors_refused", "Forbidden"),
            ApiError::IpBlocked => (S::FORBIDDEN, "ip_blocked", "Forbidden"),
            ApiError::IpNotAllowed => (S::FORBIDDEN, "ip_not_allowed", "Forbidden"),
            ApiError::Service(e) => {
                let (status, title) = service_status(e.kind());
                (status, e.code(), title)
            }
        }
    }

    /// What the client is told. Server-side causes stay out of it.
    fn detail(&self) -> String {
        match self {
            ApiError::Service(ServiceError::Internal(_)) => {
                "The server could not complete the request. Quote the request id when reporting it.".into()
            }
            ApiError::Service(ServiceError::Unavailable(_)) => {
                "A dependency of the service did not answer; retry later.".into()
            }
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
                ApiError::Service(ServiceError::Validation(errors)) => errors.iter().map(field_error).collect(),
                _ => Vec::new(),
            },
            change_token: match self {
                ApiError::Service(ServiceError::PasswordExpired { change_token }) => Some(change_token.clone()),
                _ => None,
            },
        }
    }
}

/// A field problem as the wire shows it.
pub fn field_error(p: &FieldProblem) -> FieldError {
    FieldError { field: p.field.clone(), code: p.code.clone(), message: p.message.clone() }
}

/// The HTTP status and title of every use-case outcome: the one table from [`ServiceError`]
/// to HTTP. Exhaustive over [`ServiceErrorKind`].
pub fn service_status(kind: ServiceErrorKind) -> (StatusCode, &'static str) {
    use ServiceErrorKind as K;
    use StatusCode as S;
    match kind {
        K::Validation => (S::BAD_REQUEST, "Validation failed"),
        K::NotFound => (S::NOT_FOUND, "Not found"),
        K::InvalidCredentials => (S::UNAUTHORIZED, "Invalid credentials"),
        K::InvalidToken => (S::UNAUTHORIZED, "Invalid token"),
        K::InvalidRefreshToken => (S::UNAUTHORIZED, "Invalid refresh token"),
        K::RefreshTokenReused => (S::UNAUTHORIZED, "Refresh token reused"),
        K::InvalidAccountToken => (S::BAD_REQUEST, "Invalid or expired token"),
        K::InvalidMfaCode => (S::UNAUTHORIZED, "Invalid second-factor code"),
        K::InvalidMfaToken => (S::UNAUTHORIZED, "Invalid mfa_token"),
        K::InvalidApiKey => (S::UNAUTHORIZED, "Invalid API key"),
        K::InvalidTelegramLogin => (S::UNAUTHORIZED, "Invalid Telegram login"),
        K::FederatedLoginReplayed => (S::UNAUTHORIZED, "Sign-in replayed"),
        K::InvalidIdToken => (S::UNAUTHORIZED, "Invalid identity token"),
        K::OAuthStateInvalid => (S::BAD_REQUEST, "Sign-in flow invalid"),
        K::ProviderDenied => (S::FORBIDDEN, "Provider refused"),
        K::ProviderFailed => (S::BAD_GATEWAY, "Provider failed"),
        K::FederationLinkRequired => (S::CONFLICT, "Link required"),
        K::RateLimited => (S::TOO_MANY_REQUESTS, "Rate limited"),
        K::TooManyAttempts => (S::TOO_MANY_REQUESTS, "Too many attempts"),
        K::PasswordExpired => (S::FORBIDDEN, "Password expired"),
        K::AccountDisabled
        | K::EmailNotVerified
        | K::RegistrationClosed
        | K::MissingPermission
        | K::InsufficientScope
        | K::ExceedsOwnPermissions
        | K::ReauthenticationRequired
        | K::SecondFactorRequired
        | K::MfaEnrollmentRequired
        | K::MethodNotAvailable
        | K::IdentityNotLinked => (S::FORBIDDEN, "Forbidden"),
        K::EmailTaken
        | K::TotpAlreadyEnabled
        | K::TotpNotSetUp
        | K::TotpNotEnabled
        | K::MfaNotEnabled
        | K::CredentialExists
        | K::TooManyKeys
        | K::RoleExists
        | K::RoleBuiltin
        | K::LastAdmin
        | K::ErasureScheduled
        | K::ErasureNotScheduled
        | K::IdentityTaken
        | K::LastSignInMethod
        | K::Conflict => (S::CONFLICT, "Conflict"),
        K::ExportApprovalRequired | K::ExportSelfApproval | K::ExportNotRequester => (S::FORBIDDEN, "Forbidden"),
        K::ExportNotPending | K::ExportPendingApproval => (S::CONFLICT, "Conflict"),
        K::ExportDownloaded | K::ExportExpired => (S::GONE, "Gone"),
        K::Overloaded => (S::SERVICE_UNAVAILABLE, "Overloaded"),
        K::Unavailable => (S::SERVICE_UNAVAILABLE, "Service unavailable"),
        K::Internal => (S::INTERNAL_SERVER_ERROR, "Internal server error"),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Service(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        match &self {
            ApiError::Service(ServiceError::Internal(cause) | ServiceError::Unavailable(cause)) => {
                tracing::error!(code, error = %cause, "request failed");
            }
            _ => tracing::debug!(code, "request rejected"),
        }
        let mut res = problem_response(status, &self.to_problem());
        match &self {
            ApiError::Service(ServiceError::PasswordExpired { .. }) => {
                res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            ApiError::Service(
                ServiceError::TooManyAttempts { retry_after_secs }
                | ServiceError::RateLimited { retry_after_secs }
                | ServiceError::Overloaded { retry_after_secs },
            ) => {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthenticated => {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Service(ServiceError::InvalidToken) => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
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
    use std::collections::HashMap;
    use strum::IntoEnumIterator;

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

    /// One example of every transport variant; `Service` is covered by the kinds below.
    fn transport_example(kind: ApiErrorKind) -> Option<ApiError> {
        Some(match kind {
            ApiErrorKind::NotFound => ApiError::NotFound,
            ApiErrorKind::MethodNotAllowed => ApiError::MethodNotAllowed,
            ApiErrorKind::PayloadTooLarge => ApiError::PayloadTooLarge { limit: 1 },
            ApiErrorKind::UriTooLong => ApiError::UriTooLong { limit: 1 },
            ApiErrorKind::HeadersTooLarge => ApiError::HeadersTooLarge { limit: 1 },
            ApiErrorKind::Timeout => ApiError::Timeout { secs: 1 },
            ApiErrorKind::BodyTimeout => ApiError::BodyTimeout { secs: 1 },
            ApiErrorKind::InvalidJson => ApiError::InvalidJson("x".into()),
            ApiErrorKind::InvalidRequest => ApiError::InvalidRequest("x".into()),
            ApiErrorKind::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            ApiErrorKind::NotReady => ApiError::NotReady("db".into()),
            ApiErrorKind::Unauthenticated => ApiError::Unauthenticated,
            ApiErrorKind::CsrfFailed => ApiError::CsrfFailed,
            ApiErrorKind::CorsRefused => ApiError::CorsRefused,
            ApiErrorKind::IpBlocked => ApiError::IpBlocked,
            ApiErrorKind::IpNotAllowed => ApiError::IpNotAllowed,
            ApiErrorKind::Service => return None,
        })
    }

    /// Iterates every variant of both enums, so a new one cannot be left out: codes are stable
    /// snake case, `type` is the code's URN, statuses are errors, and no two outcomes of
    /// different statuses share a code.
    #[test]
    fn codes_are_stable_snake_case_and_types_match() {
        let mut rows: Vec<(StatusCode, &'static str)> = Vec::new();
        for kind in ApiErrorKind::iter() {
            if let Some(e) = transport_example(kind) {
                let p = e.to_problem();
                assert_eq!(p.type_, format!("urn:rampart:problem:{}", p.code));
                rows.push((e.parts().0, e.parts().1));
            }
        }
        for kind in ServiceErrorKind::iter() {
            rows.push((service_status(kind).0, kind.code()));
        }
        let mut by_code: HashMap<&str, StatusCode> = HashMap::new();
        for (status, code) in rows {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            assert!(status.is_client_error() || status.is_server_error(), "{code}: {status}");
            if let Some(prev) = by_code.insert(code, status) {
                assert_eq!(prev, status, "{code} answers two statuses");
            }
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
