//! Accounts and tokens under `/v1/auth`: register, login (bearer or cookie session), refresh,
//! password reset, e-mail verification, introspection, and the JWKS that verifies access tokens.

use crate::Sensitive;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public signing key: OKP/Ed25519 (RFC 8037) or EC/P-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// `OKP` or `EC`.
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The RFC 7638 thumbprint of the key; access tokens name it in their header.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// `POST /v1/auth/register`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: Sensitive,
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/auth/register` with e-mail verification on: the same answer whether or not the
/// address was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// `accepted`.
    pub status: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: Sensitive,
}

/// Tokens for a new or refreshed session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (`typ: at+jwt`) verifiable with `/.well-known/jwks.json`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it at `/v1/auth/refresh`. Single use: each exchange returns a new one.
    pub refresh_token: String,
    pub session_id: String,
}

/// Cookie-mode login: the session lives in the `__Host-rampart_session` cookie; unsafe
/// requests must echo `csrf_token` in `X-CSRF-Token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CookieSession {
    pub session_id: String,
    pub csrf_token: String,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: Sensitive,
}

/// `POST /v1/auth/password/forgot`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

/// `POST /v1/auth/password/reset`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: Sensitive,
    pub new_password: Sensitive,
}

/// `POST /v1/auth/verify-email`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub token: Sensitive,
}

/// RFC 7662 token introspection answer. Inactive tokens answer `{"active": false}` only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_with_secrets_never_debug_print_them() {
        let req: LoginRequest =
            serde_json::from_str(r#"{"email":"a@example.com","password":"hunter2 is my password"}"#).unwrap();
        assert_eq!(req.password.0, "hunter2 is my password");
        let printed = format!("{req:?}");
        assert!(!printed.contains("hunter2") && printed.contains("[redacted]"), "{printed}");
        let reset: ResetPasswordRequest =
            serde_json::from_str(r#"{"token":"pr_abc","new_password":"s3cret!"}"#).unwrap();
        assert!(!format!("{reset:?}").contains("pr_abc") && !format!("{reset:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        assert!(serde_json::from_str::<LoginRequest>(r#"{"email":"a","password":"b","admin":true}"#).is_err());
        assert!(serde_json::from_str::<RefreshRequest>(r#"{"refresh_token":"x","extra":1}"#).is_err());
    }
}
