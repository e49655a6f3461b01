//! The caller's own account under `/v1/me`: the user view, password change and sessions.

use crate::{MfaStatus, Sensitive};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// `GET /v1/me/notifications`: the security e-mails the caller may turn off, and those that
/// always go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationPreferences {
    /// A sign-in from a device or network not seen in the last 90 days.
    pub new_sign_in: bool,
    /// A second factor, passkey or API key added; backup codes regenerated or running low.
    pub security_changes: bool,
    /// The notices that cannot be turned off: `password_changed`, `password_reset`,
    /// `factor_removed`, `account_locked`, `roles_changed`, `account_disabled`.
    pub always_on: Vec<String>,
}

/// `PUT /v1/me/notifications`: only the fields sent change. A critical notice is not a field
/// here, so trying to turn one off is a `400`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferencesUpdate {
    #[serde(default)]
    pub new_sign_in: Option<bool>,
    #[serde(default)]
    pub security_changes: Option<bool>,
}

/// The answer of `DELETE /v1/me` and of an administrator's `DELETE /v1/admin/users/{id}`: the
/// account is disabled now and erased at `erase_after` unless an administrator restores it
/// first (`POST /v1/admin/users/{id}/restore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureScheduled {
    /// Always `scheduled`.
    pub status: String,
    /// RFC 3339, UTC.
    pub erase_after: String,
}
