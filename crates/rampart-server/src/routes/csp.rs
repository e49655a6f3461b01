//! The CSP report endpoint: browsers post violations of the `Content-Security-Policy` here
//! (`report-uri`); each report becomes a `csp.violation` security event.

use crate::AppState;
use crate::error::{ApiError, PROBLEM_JSON};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use rampart_core::RequestContext;
use rampart_domain::{Action, Actor, Outcome, Severity};
use rampart_wire::Problem;

/// Largest report accepted; real ones are a few hundred bytes.
const MAX_REPORT_BYTES: usize = 16 * 1024;
/// Longest value kept from a report field.
const MAX_FIELD_CHARS: usize = 512;

/// Receives a CSP violation report (`application/csp-report`, or the Reporting API's
/// `application/reports+json`) and records it as a security event.
#[utoipa::path(post, path = "/v1/csp-report", tag = "service",
    request_body(content = serde_json::Value, content_type = "application/csp-report"),
    responses(
        (status = 204, description = "Report recorded"),
        (status = 400, description = "Not a JSON report", body = Problem, content_type = PROBLEM_JSON),
        (status = 413, description = "Report too large", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn csp_report(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_REPORT_BYTES });
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    // `{"csp-report": {...}}` (report-uri) or `[{"type": "csp-violation", "body": {...}}]` (Reporting API).
    let report = value
        .get("csp-report")
        .or_else(|| value.as_array().and_then(|a| a.first()).and_then(|r| r.get("body")))
        .filter(|r| r.is_object())
        .ok_or_else(|| ApiError::InvalidRequest("expected {\"csp-report\": {...}} or a Reporting API list".into()))?;
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| report.get(*n).and_then(|v| v.as_str()))
            .map(|s| s.chars().take(MAX_FIELD_CHARS).collect::<String>())
    };
    let details = serde_json::json!({
        "document_uri": field(&["document-uri", "documentURL"]),
        "blocked_uri": field(&["blocked-uri", "blockedURL"]),
        "violated_directive": field(&["violated-directive", "effectiveDirective", "effective-directive"]),
        "disposition": field(&["disposition"]),
    });
    state.metrics.observe_csp_report();
    let event = ctx
        .event(&state.events, Action::CspViolation, Outcome::Denied)
        .actor(Actor::Anonymous)
        .severity(Severity::Warning)
        .details(details);
    state.events.record(event).await?;
    Ok(StatusCode::NO_CONTENT)
}
