//! The audit log under `/v1/admin/audit`: events, pages, statistics and chain verification.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    #[serde(default)]
    pub first_bad_seq: Option<i64>,
    /// Why it failed: `broken_link`, `head_mismatch`, `bad_checkpoint_signature`,
    /// `checkpoint_mismatch` or `unrecorded_purge`.
    #[serde(default)]
    pub fault: Option<String>,
    /// After a retention purge: the signed checkpoint the remaining chain starts from.
    #[serde(default)]
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
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
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
