//! Rampart's wire types: the JSON shapes of the public HTTP contract (`../shared/API.md`).
//!
//! Only these types derive `Serialize` for responses; the server converts domain values into
//! them at the edge, so an internal field can never leak into a response by accident.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 9457 problem document (`application/problem+json`), with Rampart's stable `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:rampart:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A human-readable explanation of this occurrence. Never contains internal details.
    pub detail: String,
    /// A stable, snake_case machine code (`not_found`, `validation_failed`, …).
    pub code: String,
    /// The request's id, as in the `X-Request-Id` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field errors, for `validation_failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `password_expired`: a single-use token (15 minutes) that sets a new password at
    /// `POST /v1/auth/password/reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_token: Option<String>,
}

/// One rule a field of the request broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// `GET /healthz`: the process is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`: every dependency answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// Each dependency checked, with `ok`.
    pub checks: std::collections::BTreeMap<String, String>,
}

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

/// A string the client sends that must never be printed (passwords, tokens): `Debug` shows
/// `[redacted]`. On the wire it is a plain JSON string.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which second factors a user has set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MfaStatus {
    pub totp: bool,
    pub webauthn: bool,
    pub backup_codes_left: u32,
}

/// A user account, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub mfa: MfaStatus,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// `{user}`: the answer of register and `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
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

/// `POST /v1/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: Sensitive,
    pub new_password: Sensitive,
    /// Keep the other sessions (by default a change ends them).
    #[serde(default)]
    pub keep_other_sessions: bool,
}

/// The device a session was opened from, parsed from its user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub browser: Option<String>,
    pub os: Option<String>,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub kind: String,
}

/// One of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_active_at: String,
    /// When it ends if unused (idle timeout, capped by the absolute lifetime).
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub device: DeviceView,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
    pub next_cursor: Option<String>,
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
    pub items: Vec<UsageHour>,
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

/// `{valid: true, …}` or `{valid: false, code}` (`unknown`, `expired`, `revoked`,
/// `insufficient_scope`, `rate_limited`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct VerifyKeyResponse {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<RateLimitState>,
}

/// A user as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminUserEnvelope {
    pub user: AdminUserView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminUserList {
    pub items: Vec<AdminUserView>,
    pub next_cursor: Option<String>,
}

/// `PATCH /v1/admin/users/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// An empty string clears the name.
    #[serde(default)]
    pub name: Option<String>,
    /// Replaces the user's roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Disabling ends every session and API key of the user at once.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A role and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleView>,
}

/// `POST /v1/admin/roles` (with `name`) and `PUT /v1/admin/roles/{name}` (without).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

/// `POST /v1/authz/check`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzCheckRequest {
    /// A user id; absent: the caller (for an API key, its owner within the key's scopes).
    #[serde(default)]
    pub subject_id: Option<String>,
    pub permission: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthzCheckResponse {
    pub allowed: bool,
}

/// `GET /v1/admin/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub events_checked: u64,
    /// Signed checkpoints found valid and matching the chain.
    #[serde(default)]
    pub checkpoints_checked: u64,
    /// The first event that cannot be vouched for: the one whose link does not hold (edited,
    /// or after a deleted, inserted or moved event); after a checkpoint mismatch (the chain
    /// was rewritten), the first event after the last checkpoint that still matched; one past
    /// the last event when events were cut off the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    /// Why it failed: `broken_link`, `head_mismatch`, `bad_checkpoint_signature`,
    /// `checkpoint_mismatch` or `unrecorded_purge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// After a retention purge: the signed checkpoint the remaining chain starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchored_at: Option<i64>,
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `api_key`, `system` or `anonymous`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditResource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

/// One event of the audit log, with its links of the hash chain (hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub seq: i64,
    /// RFC 3339, UTC, microseconds.
    pub ts: String,
    /// Dotted name: `auth.login`, `api_key.created`, …
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub actor: AuditActor,
    pub resource: Option<AuditResource>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// `GET /v1/admin/audit`: a page of events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One row of `GET /v1/admin/audit/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditCount {
    pub action: String,
    pub outcome: String,
    pub count: i64,
}

/// `GET /v1/admin/audit/stats`: counts by action and outcome for a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditStats {
    pub since: Option<String>,
    pub until: Option<String>,
    pub total: i64,
    pub items: Vec<AuditCount>,
}

/// `POST /v1/me/mfa/totp/setup` and `POST /v1/me/mfa/backup-codes`: re-authentication first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirmation {
    pub password: Sensitive,
}

/// A new TOTP secret, waiting for its first code at `/v1/me/mfa/totp/enable`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 (RFC 4648, unpadded), for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…` with issuer and account.
    pub otpauth_uri: String,
    /// The URI as a QR code, PNG, base64.
    pub qr_png_base64: String,
    /// The same QR code as an SVG document.
    pub qr_svg: String,
}

/// `POST /v1/me/mfa/totp/enable`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: Sensitive,
}

/// `POST /v1/me/mfa/totp/disable`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    pub password: Sensitive,
    pub code: Sensitive,
}

/// Backup codes, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupCodes {
    pub backup_codes: Vec<String>,
}

/// The answer of a right password for an account with a second factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single use, for this login only, valid for 5 minutes: redeem it at `/v1/auth/login/mfa`.
    pub mfa_token: String,
    /// What the account can answer with: `totp`, `backup_code`, `email`.
    pub methods: Vec<String>,
}

/// `POST /v1/auth/login/mfa`: the `mfa_token` with exactly one of `code` (TOTP, or the e-mailed
/// code with `method: "email"`) and `backup_code`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    pub mfa_token: Sensitive,
    #[serde(default)]
    pub code: Option<Sensitive>,
    #[serde(default)]
    pub backup_code: Option<Sensitive>,
    /// `totp` (the default for `code`) or `email`.
    #[serde(default)]
    pub method: Option<String>,
}

/// `POST /v1/auth/login/mfa/email`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaTokenRequest {
    pub mfa_token: Sensitive,
}

/// An IP allow or block rule (`/v1/admin/ip-rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IpRuleView {
    pub id: String,
    /// Normalised CIDR (`192.0.2.0/24`, `2001:db8::/32`; one address is `/32` or `/128`).
    pub network: String,
    /// `allow` or `block`.
    pub action: String,
    /// `all` (every route) or `admin` (admin routes only).
    pub scope: String,
    pub reason: String,
    /// Added by the automatic blocker after repeated failed authentications.
    pub automatic: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IpRuleList {
    pub items: Vec<IpRuleView>,
}

/// `POST /v1/admin/ip-rules`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpRuleRequest {
    pub network: String,
    pub action: String,
    #[serde(default = "default_scope")]
    pub scope: String,
    #[serde(default)]
    pub reason: String,
    /// RFC 3339; absent: the rule does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
}

fn default_scope() -> String {
    "all".into()
}

/// A WebAuthn ceremony started: its id (send it back with the finish) and the options for
/// `navigator.credentials.create()` / `.get()` in their JSON form (binary fields base64url).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebauthnChallenge {
    pub challenge_id: String,
    /// `{publicKey: {...}}`: WebAuthn creation or request options.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /v1/me/mfa/webauthn/register/finish`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnRegisterFinish {
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, JSON form.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A name for the authenticator, 1 to 64 characters ("YubiKey", "Work laptop").
    pub name: String,
}

/// `DELETE /v1/me/mfa/webauthn/{id}`: re-authentication first (ASVS 7.5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnRemove {
    pub password: Sensitive,
}

/// A registered WebAuthn authenticator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebauthnCredentialView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// `GET /v1/me/mfa/webauthn`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebauthnCredentialList {
    pub items: Vec<WebauthnCredentialView>,
}

/// `POST /v1/auth/login/webauthn/start`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnLoginStart {
    pub mfa_token: Sensitive,
}

/// `POST /v1/auth/login/webauthn/finish`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnLoginFinish {
    pub mfa_token: Sensitive,
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, JSON form.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// `POST /v1/auth/passkey/finish`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyFinish {
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, JSON form.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}
