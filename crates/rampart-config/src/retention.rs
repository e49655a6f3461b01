//! The `[retention]` section: how long each class of data is kept, in one place. The hourly
//! purge deletes what is older and records one `retention.purged` event with the counts.
//!
//! Two classes had their setting elsewhere before this section existed and keep it there as
//! well: `api_keys.usage_retention_days` and `audit.retention_days`. The keys here, when set,
//! win over them.

use crate::settings::{checked, days, span};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Ended sessions (signed out, revoked, expired) and their refresh tokens, after they end.
    pub ended_sessions_days: u64,
    /// Spent or expired single-use tokens (reset, verification), second-factor challenges and
    /// WebAuthn ceremonies, after they stop working.
    pub expired_tokens_days: u64,
    /// Expired IP rules, after they expire.
    pub expired_ip_rules_days: u64,
    /// Webhook delivery logs, and deliveries made or given up on.
    pub webhook_deliveries_days: u64,
    /// E-mails sent or given up on (the mail outbox; bodies are dropped at once).
    pub notifications_days: u64,
    /// Bulk exports' records (`POST /v1/admin/exports`), after they are downloaded or expire
    /// (their events stay in the audit log).
    pub exports_days: u64,
    /// API-key usage counts (hourly). Unset: `api_keys.usage_retention_days`.
    pub api_key_usage_days: Option<u64>,
    /// Audit events, cut at a signed checkpoint; 0 keeps them forever. Unset:
    /// `audit.retention_days`.
    pub audit_days: Option<u64>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            ended_sessions_days: 1,
            expired_tokens_days: 1,
            expired_ip_rules_days: 1,
            webhook_deliveries_days: 30,
            notifications_days: 30,
            exports_days: 30,
            api_key_usage_days: None,
            audit_days: None,
        }
    }
}

/// `[retention]`, ready to use (the two older keys are applied by `Settings`).
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub ended_sessions: time::Duration,
    pub expired_tokens: time::Duration,
    pub expired_ip_rules: time::Duration,
    pub webhook_deliveries: time::Duration,
    pub notifications: time::Duration,
    pub exports: time::Duration,
}

impl RetentionConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, v) in [
            ("retention.ended_sessions_days", self.ended_sessions_days),
            ("retention.expired_tokens_days", self.expired_tokens_days),
            ("retention.expired_ip_rules_days", self.expired_ip_rules_days),
            ("retention.webhook_deliveries_days", self.webhook_deliveries_days),
            ("retention.notifications_days", self.notifications_days),
            ("retention.exports_days", self.exports_days),
        ] {
            if !(1..=3650).contains(&v) {
                p.push(format!("{key}: must be between 1 and 3650; got {v}"));
            }
        }
        if let Some(v) = self.api_key_usage_days
            && !(1..=3650).contains(&v)
        {
            p.push(format!("retention.api_key_usage_days: must be between 1 and 3650; got {v}"));
        }
        if let Some(v) = self.audit_days
            && v > 36_500
        {
            p.push(format!("retention.audit_days: must be at most 36500 (0 keeps forever); got {v}"));
        }
        p
    }

    pub fn settings(&self) -> Result<RetentionSettings, Vec<String>> {
        checked(self.problems(), || RetentionSettings {
            ended_sessions: span(days(self.ended_sessions_days)),
            expired_tokens: span(days(self.expired_tokens_days)),
            expired_ip_rules: span(days(self.expired_ip_rules_days)),
            webhook_deliveries: span(days(self.webhook_deliveries_days)),
            notifications: span(days(self.notifications_days)),
            exports: span(days(self.exports_days)),
        })
    }
}
