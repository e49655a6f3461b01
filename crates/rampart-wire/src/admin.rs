//! Administration and authorization: users and roles under `/v1/admin`, and `POST /v1/authz/check`.

use crate::UserView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
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
