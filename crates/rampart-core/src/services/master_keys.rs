//! Master-key rotation: re-sealing every sealed value (the store's registry,
//! `rampart_store::SEALED_COLUMNS`) under the ring's current key, in batches, while the service
//! runs; and the ring's status (which keys hold how many values).
//!
//! Each value is opened with the ring and written back sealed under the current key with a
//! compare-and-swap on the value read: a value the service changed meanwhile is read again
//! (and re-sealed if it still needs it), never overwritten. A run that stops half-way leaves
//! values under the current and the older keys, all of which the ring opens; the next run
//! carries on. Each run is one `system.master_key.rotated` event with the counts.

use crate::{App, ServiceError};
use rampart_domain::{Action, Actor, Outcome, Resource, Severity};
use rampart_store::{RowKey, SEALED_COLUMNS, SealedColumn, SealedCount};
use serde_json::json;

/// How often a row the service keeps changing is read again before the run leaves it (a
/// later run takes it).
const ATTEMPTS: usize = 3;

/// Where a run is, after each batch (for the operator's progress lines).
#[derive(Debug, Clone)]
pub struct Progress {
    /// `table.column`.
    pub column: String,
    /// Values of this column re-sealed so far (or found re-sealed by the service meanwhile).
    pub done: u64,
    /// Values of this column under older keys when the run reached it.
    pub total: u64,
}

/// What one column's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnReport {
    pub column: String,
    /// Re-sealed by this run.
    pub resealed: u64,
    /// Changed by the service meanwhile (and so sealed under the current key, or deleted).
    pub changed_meanwhile: u64,
}

/// What a run did, and what is left.
#[derive(Debug, Clone)]
pub struct RotationReport {
    /// The current key's id.
    pub key_id: String,
    pub columns: Vec<ColumnReport>,
    /// Values still sealed under an older key, by column and key id (empty: the older keys
    /// may be removed from the ring).
    pub older: Vec<SealedCount>,
}

impl RotationReport {
    pub fn resealed(&self) -> u64 {
        self.columns.iter().map(|c| c.resealed).sum()
    }

    pub fn remaining(&self) -> i64 {
        self.older.iter().map(|c| c.count).sum()
    }
}

/// The ring's key ids (current first) and how many values each key seals, per column.
#[derive(Debug, Clone)]
pub struct MasterKeyStatus {
    pub ring: Vec<String>,
    pub counts: Vec<SealedCount>,
}

pub async fn status(state: &App) -> Result<MasterKeyStatus, ServiceError> {
    let ring = state.master_key.ids().map(str::to_string).collect();
    Ok(MasterKeyStatus { ring, counts: state.store.sealed_counts().await? })
}

/// Re-seals, `batch` values at a time, every value not sealed under the current key;
/// `progress` is called after each batch. A value the ring cannot open stops the run with an
/// error naming its column and row (nothing is written for it); the values re-sealed before
/// stay re-sealed, and the failed run is recorded too.
pub async fn rotate(
    state: &App,
    batch: usize,
    via: &'static str,
    mut progress: impl FnMut(&Progress),
) -> Result<RotationReport, ServiceError> {
    let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let key_id = state.master_key.key_id().to_string();
    let before = state.store.sealed_counts().await?;
    let mut columns = Vec::with_capacity(SEALED_COLUMNS.len());
    let mut failure = None;
    for col in SEALED_COLUMNS {
        let total: i64 = before.iter().filter(|c| c.column == col.name() && c.key_id != key_id).map(|c| c.count).sum();
        let mut report = ColumnReport { column: col.name(), resealed: 0, changed_meanwhile: 0 };
        if total > 0 {
            let total = u64::try_from(total).unwrap_or_default();
            if let Err(e) = rotate_column(state, col, batch, total, &mut report, &mut progress).await {
                columns.push(report);
                failure = Some(e);
                break;
            }
        }
        columns.push(report);
    }
    let after = state.store.sealed_counts().await?;
    let older: Vec<SealedCount> = after.into_iter().filter(|c| c.key_id != key_id).collect();
    let report = RotationReport { key_id, columns, older };
    record(state, &report, failure.as_ref(), via).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn rotate_column(
    state: &App,
    col: &SealedColumn,
    batch: i64,
    total: u64,
    report: &mut ColumnReport,
    progress: &mut impl FnMut(&Progress),
) -> Result<(), ServiceError> {
    let ring = &state.master_key;
    let mut after: Option<RowKey> = None;
    loop {
        let rows = state.store.sealed_not_under(col, ring.key_id(), after.as_ref(), batch).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.key.clone());
        for row in &rows {
            let mut value = row.sealed.clone();
            for _ in 0..ATTEMPTS {
                if ring.is_current(&value) {
                    report.changed_meanwhile += 1;
                    break;
                }
                let aad = col.aad(&row.key);
                let resealed = match ring.reseal(&value, &aad, &mut rand::rngs::OsRng) {
                    Ok(Some(v)) => v,
                    Ok(None) => continue,
                    Err(e) => {
                        return Err(ServiceError::Internal(
                            format!("{} row {}: {e}; nothing was written for it", col.name(), row.key).into(),
                        ));
                    }
                };
                if state.store.reseal(col, &row.key, &value, &resealed, ring.key_id()).await? {
                    report.resealed += 1;
                    break;
                }
                match state.store.sealed_value(col, &row.key).await? {
                    Some(now) => value = now,
                    None => {
                        report.changed_meanwhile += 1;
                        break;
                    }
                }
            }
        }
        progress(&Progress {
            column: col.name(),
            done: (report.resealed + report.changed_meanwhile).min(total),
            total,
        });
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < batch {
            break;
        }
    }
    Ok(())
}

async fn record(
    state: &App,
    report: &RotationReport,
    failure: Option<&ServiceError>,
    via: &'static str,
) -> Result<(), ServiceError> {
    let columns: Vec<_> = report
        .columns
        .iter()
        .map(|c| json!({ "column": c.column, "resealed": c.resealed, "changed_meanwhile": c.changed_meanwhile }))
        .collect();
    let older: Vec<_> =
        report.older.iter().map(|c| json!({ "column": c.column, "key_id": c.key_id, "count": c.count })).collect();
    let outcome = if failure.is_some() { Outcome::Failure } else { Outcome::Success };
    let event = state
        .events
        .event(Action::MasterKeyRotated, outcome)
        .actor(Actor::System)
        .severity(if failure.is_some() { Severity::Warning } else { Severity::Info })
        .resource(Resource::new("master_key", &report.key_id))
        .details(json!({
            "key_id": report.key_id,
            "ring": state.master_key.ids().collect::<Vec<_>>(),
            "resealed": report.resealed(),
            "remaining_under_older_keys": report.remaining(),
            "columns": columns,
            "older": older,
            "via": via,
        }));
    state.events.record(event).await?;
    Ok(())
}
