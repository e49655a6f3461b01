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
