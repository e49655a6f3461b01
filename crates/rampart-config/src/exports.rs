//! The `[exports]` section: the controls on bulk exports (`POST /v1/admin/exports`, and the
//! direct exports `GET /v1/admin/audit/export` and `GET /v1/admin/users/{id}/export`): how
//! many rows an export may hold before a second administrator must approve it, how long a
//! ready export may be downloaded (once), and how many exports one administrator may start.

use crate::settings::{checked, hours, secs, span};
use rampart_domain::ratelimit::Quota;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportsConfig {
    /// An export of more rows waits for a second administrator's approval (not the
    /// requester's); a direct export of more rows is refused (`export_approval_required`).
    pub approval_threshold_rows: u64,
    /// How long an export waits for approval, and how long an approved (or ready) one may be
    /// downloaded, once.
    pub download_ttl_hours: u64,
    /// Exports (requested or direct) one administrator may start per
    /// `rate_limit_window_secs`; over it, 429 with `Retry-After`.
    pub rate_limit_requests: u32,
    pub rate_limit_window_secs: u64,
}

impl Default for ExportsConfig {
    fn default() -> Self {
        Self {
            approval_threshold_rows: 1000,
            download_ttl_hours: 24,
            rate_limit_requests: 10,
            rate_limit_window_secs: 3600,
        }
    }
}

/// `[exports]`, ready to use.
#[derive(Debug, Clone)]
pub struct ExportsSettings {
    pub approval_threshold_rows: u64,
    pub download_ttl: time::Duration,
    /// Per administrator (the user behind a session or an API key).
    pub rate_limit: Quota,
}

impl ExportsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=1_000_000_000).contains(&self.approval_threshold_rows) {
            p.push(format!(
                "exports.approval_threshold_rows: must be between 1 and 1000000000; got {}",
                self.approval_threshold_rows
            ));
        }
        if !(1..=720).contains(&self.download_ttl_hours) {
            p.push(format!("exports.download_ttl_hours: must be between 1 and 720; got {}", self.download_ttl_hours));
        }
        if !(1..=10_000).contains(&self.rate_limit_requests) {
            p.push(format!(
                "exports.rate_limit_requests: must be between 1 and 10000; got {}",
                self.rate_limit_requests
            ));
        }
        if !(1..=604_800).contains(&self.rate_limit_window_secs) {
            p.push(format!(
                "exports.rate_limit_window_secs: must be between 1 and 604800; got {}",
                self.rate_limit_window_secs
            ));
        }
        p
    }

    pub fn settings(&self) -> Result<ExportsSettings, Vec<String>> {
        let problems = self.problems();
        let quota = Quota::new(self.rate_limit_requests, secs(self.rate_limit_window_secs));
        checked(problems, || ExportsSettings {
            approval_threshold_rows: self.approval_threshold_rows,
            download_ttl: span(hours(self.download_ttl_hours)),
            // Both parts are checked positive above.
            rate_limit: quota.unwrap_or(Quota { limit: 1, period: std::time::Duration::from_secs(3600) }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_strict_and_out_of_range_values_name_their_key() {
        let s = ExportsConfig::default().settings().unwrap();
        assert_eq!(s.approval_threshold_rows, 1000);
        assert_eq!(s.download_ttl, time::Duration::hours(24));
        assert_eq!(s.rate_limit.limit, 10);
        assert_eq!(s.rate_limit.period, std::time::Duration::from_secs(3600));
        let bad = ExportsConfig {
            approval_threshold_rows: 0,
            download_ttl_hours: 0,
            rate_limit_requests: 0,
            rate_limit_window_secs: 0,
        };
        let p = bad.settings().unwrap_err();
        for key in [
            "exports.approval_threshold_rows",
            "exports.download_ttl_hours",
            "exports.rate_limit_requests",
            "exports.rate_limit_window_secs",
        ] {
            assert!(p.iter().any(|l| l.starts_with(key)), "{key}: {p:?}");
        }
    }
}
