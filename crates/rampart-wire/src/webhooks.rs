//! Signed webhooks under `/v1/admin/webhooks` (Standard Webhooks deliveries).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The events it takes: `*`, a category (`auth.*`) or action names (`auth.login`).
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Since when its deliveries have been failing without a success (`null`: they are not).
    pub failing_since: Option<String>,
    /// Why Rampart disabled it (`null` unless it did).
    pub disabled_reason: Option<String>,
    /// `standard` (Standard Webhooks) or `slack` (a Slack-compatible `{"text"}` body, for
    /// alert channels).
    pub format: String,
}

/// `201` of `POST /v1/admin/webhooks`: the endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: give it to the receiver's Standard Webhooks library. Not shown again.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/admin/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// `http` or `https`; internal addresses are refused unless `webhooks.allow_networks`
    /// lists them.
    pub url: String,
    /// One to 50 filters: `*`, `auth.*`, `auth.login`, …
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `standard` (default) or `slack`.
    #[serde(default)]
    pub format: Option<String>,
}

/// `PATCH /v1/admin/webhooks/{id}`: the fields to change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` enables it again (and ends its failure streak).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `standard` or `slack`.
    #[serde(default)]
    pub format: Option<String>,
}

/// `POST /v1/admin/webhooks/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the old secret keeps signing beside the new one (0 to 604800; default 86400).
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotateSecretResponse {
    /// The new `whsec_…` secret, shown this once.
    pub secret: String,
}

/// `202` of a test or a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookQueued {
    /// The event whose delivery was queued (its `webhook-id` is `msg_` and this id without dashes).
    pub event_id: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttemptView {
    pub id: String,
    pub event_id: String,
    /// 1 for the first try.
    pub attempt: i32,
    pub at: String,
    /// `delivered` (a 2xx answer) or `failed`.
    pub status: String,
    /// The receiver's status code (`null`: no answer).
    pub http_status: Option<i32>,
    pub latency_ms: i64,
    /// Why it failed (`http_500`, `timeout: …`, `refused: …`), `null` when delivered.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most `webhooks.response_bytes`).
    pub response: Option<String>,
    /// When it goes again (`null`: it does not).
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttemptList {
    pub items: Vec<WebhookAttemptView>,
    pub next_cursor: Option<String>,
}
