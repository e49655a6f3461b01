//! Alert rules under `/v1/admin/alerts`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which events a rule counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertMatch {
    /// An action (`auth.login`) or a category (`auth.*`).
    pub action: String,
    /// `success`, `failure` or `denied` (`null`: any).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Events of at least this severity: `info`, `warning`, `critical` (`null`: any).
    #[serde(default)]
    pub severity: Option<String>,
}

/// How many matches within how long fire the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertThreshold {
    /// 1 to 100000.
    pub count: u32,
    /// 1 to 86400.
    pub window_secs: u32,
}

/// Where an alert goes: `{"email": "ops@example.com"}` or `{"webhook": "<endpoint id>"}` (signed
/// per Standard Webhooks, or a Slack-compatible body when the endpoint's format is `slack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertChannel {
    Email(String),
    Webhook(String),
}

/// `POST /v1/admin/alerts`, `PUT /v1/admin/alerts/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleRequest {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: AlertMatch,
    pub threshold: AlertThreshold,
    /// Besides the `alert.fired` audit event every alert writes (webhooks subscribed to
    /// `alert.*` get it too). At most 10.
    #[serde(default)]
    pub channels: Vec<AlertChannel>,
    /// After firing, the rule stays quiet this long (0 to 604800), so one incident is one alert.
    pub cooldown_secs: u32,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertRuleView {
    pub id: String,
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: AlertMatch,
    pub threshold: AlertThreshold,
    pub channels: Vec<AlertChannel>,
    pub cooldown_secs: u32,
    pub enabled: bool,
    /// Shipped with Rampart: can be changed or disabled, not removed.
    pub builtin: bool,
    pub last_fired_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertRuleList {
    pub items: Vec<AlertRuleView>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}
