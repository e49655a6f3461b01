//! Rampart's wire types: the JSON shapes of the public HTTP contract (`../shared/API.md`).
//!
//! Only these types derive `Serialize` for responses; the server converts domain values into
//! them at the edge, so an internal field can never leak into a response by accident.
//!
//! The types live in one module per API area and are all re-exported here: a type's path is
//! always `rampart_wire::Name`.

mod admin;
mod alerts;
mod api_keys;
mod audit;
mod auth;
mod exports;
mod federation;
mod gateway;
mod ip_rules;
mod me;
mod mfa;
mod problem;
mod sensitive;
mod service;
mod webauthn;
mod webhooks;

pub use admin::{
    AdminUserEnvelope, AdminUserList, AdminUserView, AuthzCheckRequest, AuthzCheckResponse, RoleList, RoleRequest,
    RoleView, UpdateUserRequest,
};
pub use alerts::{AlertChannel, AlertMatch, AlertRuleList, AlertRuleRequest, AlertRuleView, AlertThreshold};
pub use api_keys::{
    ApiKeyList, ApiKeyUsage, ApiKeyView, CreateApiKeyRequest, CreatedApiKey, InvalidKey, RateLimitSpec, RateLimitState,
    RotateApiKeyRequest, UsageHour, ValidKey, VerifyKeyRequest, VerifyKeyResponse,
};
pub use audit::{AuditActor, AuditCount, AuditEvent, AuditPage, AuditResource, AuditStats, AuditVerification};
pub use auth::{
    Accepted, CookieSession, ForgotPasswordRequest, Introspection, Jwk, Jwks, LoginRequest, RefreshRequest,
    RegisterRequest, ResetPasswordRequest, TokenResponse, VerifyEmailRequest,
};
pub use exports::{ExportList, ExportRequest, ExportView};
pub use federation::{LinkedIdentityList, LinkedIdentityView, TelegramLoginRequest};
pub use gateway::{ExplainRequest, ExplainResponse, GatewayRuleView, GatewayRules, ShadowedRuleView};
pub use ip_rules::{IpRuleList, IpRuleRequest, IpRuleView};
pub use me::{
    ChangePasswordRequest, DeviceView, ErasureScheduled, NotificationPreferences, NotificationPreferencesUpdate,
    SessionList, SessionView, UserEnvelope, UserView,
};
pub use mfa::{
    BackupCodes, FactorReauth, MfaLoginRequest, MfaRequired, MfaStatus, MfaTokenRequest, TotpCode, TotpSetup,
};
pub use problem::{FieldError, Problem};
pub use sensitive::Sensitive;
pub use service::{Health, Ready};
pub use webauthn::{
    PasskeyFinish, WebauthnChallenge, WebauthnCredentialList, WebauthnCredentialView, WebauthnLoginFinish,
    WebauthnLoginStart, WebauthnRegisterFinish,
};
pub use webhooks::{
    RotateSecretRequest, RotateSecretResponse, WebhookAttemptList, WebhookAttemptView, WebhookCreated, WebhookList,
    WebhookPatch, WebhookQueued, WebhookRequest, WebhookView,
};
