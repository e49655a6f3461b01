//! API keys: creating, listing, rotating and their usage under `/v1/me/api-keys`, and
//! `POST /v1/keys/verify`.

use crate::Sensitive;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A per-key rate limit: at most `requests` per `per_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub requests: u32,
    pub per_seconds: u32,
}

/// `POST /v1/me/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// The password, when the session is older than the re-authentication window
    /// (`security.reauth_window_secs`, default 300): creating a key needs a recent sign-in.
    #[serde(default)]
    pub password: Option<Sensitive>,
}

/// A new key: `key` is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    /// The key itself (`Debug` shows `[redacted]`).
    pub key: Sensitive,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub rate_limit: Option<RateLimitSpec>,
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub rate_limit: Option<RateLimitSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/me/api-keys/{id}/rotate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working (default 0: it stops at once; at most 30 days).
    #[serde(default)]
    pub grace_seconds: Option<u32>,
    /// The password, when the session is older than the re-authentication window.
    #[serde(default)]
    pub password: Option<Sensitive>,
}

/// Requests of one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageHour {
    pub hour: String,
    pub requests: i64,
    /// Requests refused by the key's rate limit.
    pub rejected: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyUsage {
    /// Oldest hour first.
    pub items: Vec<UsageHour>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/keys/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeyRequest {
    pub key: Sensitive,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The rate-limit state of a key after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
}

/// `POST /v1/keys/verify`'s answer: [`ValidKey`] or [`InvalidKey`], told apart by `valid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyKeyResponse {
    Valid(ValidKey),
    Invalid(InvalidKey),
}

/// `{valid: true, …}`: the key is live and holds the scope asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidKey {
    /// Always `true`.
    pub valid: bool,
    pub key_id: String,
    pub owner_id: String,
    /// The key's scopes its owner still holds.
    pub scopes: Vec<String>,
    /// RFC 3339; `null` when the key never expires.
    pub expires_at: Option<String>,
    /// `null` when the key has no rate limit of its own.
    pub ratelimit: Option<RateLimitState>,
}

/// `{valid: false, code}`: `unknown`, `expired`, `revoked`, `insufficient_scope` or
/// `rate_limited`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvalidKey {
    /// Always `false`.
    pub valid: bool,
    pub code: String,
    /// The key's limit state when it is `rate_limited` (or known), else `null`.
    pub ratelimit: Option<RateLimitState>,
}
