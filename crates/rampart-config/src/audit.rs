//! The `[audit]` section: how long the audit log is kept, how often its chain head is signed,
//! how high-volume events are summarised, and the optional SIEM output.

use crate::settings::{checked, days, secs, span};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Events older than this many days are purged (hourly), up to the newest signed checkpoint
    /// older than that, so the rest stays verifiable. 0 keeps events forever.
    pub retention_days: u64,
    /// How often the chain head is signed (a checkpoint), in seconds. Also on shutdown.
    pub checkpoint_interval_secs: u64,
    /// High-volume events (refused logins of a locked client, denied permissions, rate-limit
    /// hits) are written once when a key first trips them in an interval of this many seconds,
    /// then once more at its end with the count of the rest.
    pub aggregate_interval_secs: u64,
    /// Where to also write every event as one Elastic Common Schema JSON line: `none`,
    /// `stdout`, or `file` (then `siem_file`).
    pub siem: SiemOutput,
    /// The file the SIEM output appends to when `siem = "file"` (created 0600).
    pub siem_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiemOutput {
    None,
    Stdout,
    File,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
            checkpoint_interval_secs: 300,
            aggregate_interval_secs: 60,
            siem: SiemOutput::None,
            siem_file: None,
        }
    }
}

/// Where the SIEM output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiemSink {
    Stdout,
    /// Appended to (created 0600).
    File(PathBuf),
}

/// `[audit]`, ready to use.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Events older than this are purged (up to the newest checkpoint older than that);
    /// `None`: kept forever.
    pub retention: Option<time::Duration>,
    /// How often the chain head is signed (1 s to 1 day).
    pub checkpoint_interval: Duration,
    /// The interval high-volume events are summarised over (1 s to 1 hour).
    pub aggregate_interval: Duration,
    /// Where every event is also written as an ECS JSON line; `None`: nowhere.
    pub siem: Option<SiemSink>,
}

impl AuditConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=86_400).contains(&self.checkpoint_interval_secs) {
            problems.push(format!(
                "audit.checkpoint_interval_secs: must be between 1 and 86400; got {}",
                self.checkpoint_interval_secs
            ));
        }
        if !(1..=3600).contains(&self.aggregate_interval_secs) {
            problems.push(format!(
                "audit.aggregate_interval_secs: must be between 1 and 3600; got {}",
                self.aggregate_interval_secs
            ));
        }
        if self.retention_days > 36_500 {
            problems.push(format!(
                "audit.retention_days: must be at most 36500 (0 keeps forever); got {}",
                self.retention_days
            ));
        }
        match (self.siem, &self.siem_file) {
            (SiemOutput::File, None) => problems.push("audit.siem_file: required when audit.siem = \"file\"".into()),
            (SiemOutput::File, Some(p)) if p.as_os_str().is_empty() => {
                problems.push("audit.siem_file: must not be empty".into())
            }
            (SiemOutput::None | SiemOutput::Stdout, Some(_)) => {
                problems.push("audit.siem_file: only read when audit.siem = \"file\"; set that or remove it".into())
            }
            _ => {}
        }
        problems
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<AuditSettings, Vec<String>> {
        checked(self.problems(), || AuditSettings {
            retention: (self.retention_days > 0).then(|| span(days(self.retention_days))),
            checkpoint_interval: secs(self.checkpoint_interval_secs),
            aggregate_interval: secs(self.aggregate_interval_secs),
            siem: match (self.siem, &self.siem_file) {
                (SiemOutput::Stdout, _) => Some(SiemSink::Stdout),
                (SiemOutput::File, Some(path)) => Some(SiemSink::File(path.clone())),
                (SiemOutput::File, None) | (SiemOutput::None, _) => None,
            },
        })
    }
}
