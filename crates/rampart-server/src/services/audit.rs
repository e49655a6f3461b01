//! The audit log's tamper evidence: verifying the hash chain (HTTP and CLI share this).

use crate::AppState;
use crate::error::ApiError;
use rampart_domain::{Action, Actor, Outcome, Severity};
use rampart_store::ChainReport;

/// Verifies the whole chain and records the verdict as `audit.verified` (a broken chain is a
/// critical event).
pub async fn verify(
    state: &AppState,
    actor: Actor,
    ctx: Option<&crate::events::RequestContext>,
) -> Result<ChainReport, ApiError> {
    let report = state.store.verify_audit_chain().await?;
    let outcome = if report.ok { Outcome::Success } else { Outcome::Failure };
    let ev = state
        .events
        .event_for(ctx, Action::AuditVerified, outcome)
        .actor(actor)
        .severity(if report.ok { Severity::Info } else { Severity::Critical })
        .details(serde_json::json!({ "events_checked": report.events_checked, "first_bad_seq": report.first_bad_seq }));
    state.events.record(ev).await?;
    Ok(report)
}
