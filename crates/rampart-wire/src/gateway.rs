//! The gateway's admin views: `POST /v1/admin/gateway/explain`, `GET /v1/admin/gateway/rules`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /v1/admin/gateway/explain`: a request as a proxy would ask about it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The absolute URL the client asked for (`https://app.example.com/v1/orders?x=1`).
    pub url: String,
    /// Request headers that matter to the decision (`Authorization`, `Cookie`, `X-Api-Key`,
    /// `Accept`): with a credential, the decision is the one its holder would get.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Which rule decides the request and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExplainResponse {
    /// The rule's id (`default` for the default policy, `refused` for a refused path).
    pub rule: String,
    /// `public`, `authenticated` or `deny`.
    pub policy: String,
    /// `allow`, `unauthenticated`, `step_up` or `forbidden`, for the credential given (none:
    /// anonymous). Rate limits are not counted.
    pub decision: String,
    /// Why: each earlier rule that did not match and what did not, then the match.
    pub reasons: Vec<String>,
}

/// One rule in force, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayRuleView {
    pub id: String,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    pub policy: String,
}

/// A rule that can never match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShadowedRuleView {
    pub rule: String,
    /// The earlier rule that takes all its requests.
    pub by: String,
}

/// `GET /v1/admin/gateway/rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayRules {
    pub default_policy: String,
    pub rules: Vec<GatewayRuleView>,
    pub shadowed: Vec<ShadowedRuleView>,
}
