//! WebAuthn: registering authenticators, the WebAuthn second factor at login, and passkey login.

use crate::Sensitive;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
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
