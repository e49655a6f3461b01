//! Bulk exports under `/v1/admin/exports`: requested with a filter, approved by a second
//! administrator when over the threshold, downloaded once.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/admin/exports`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// `users` (needs `users:export_list`) or `audit` (needs `audit:export`).
    pub kind: String,
    /// `users`: `{q}` (part of the e-mail address or name, as `GET /v1/admin/users`). `audit`:
    /// the filters of `GET /v1/admin/audit` (`actor_id`, `action`, `resource_type`,
    /// `resource_id`, `outcome`, `severity`, `ip`, `since`, `until`). Absent: everything.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// An export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportView {
    pub id: String,
    /// `users` or `audit`.
    pub kind: String,
    /// `jsonl` or `csv`.
    pub format: String,
    /// `pending_approval` (over `exports.approval_threshold_rows`: waits for a second
    /// administrator), `ready` (its requester may download it, once), `downloaded`, or
    /// `expired` (not approved or downloaded within `exports.download_ttl_hours`).
    pub status: String,
    /// The rows counted, and the rows the download holds.
    pub rows: u64,
    /// The filter, as applied.
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
    /// When the rows were counted: audit events up to then, accounts created by then.
    pub as_of: String,
    /// The requesting administrator's user id.
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub downloaded_at: Option<String>,
    pub created_at: String,
    /// Until when it may be approved (while pending) or downloaded (once ready).
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportList {
    /// Newest first, at most 200.
    pub items: Vec<ExportView>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}
