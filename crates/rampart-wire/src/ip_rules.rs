//! IP allow and block rules under `/v1/admin/ip-rules`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
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
