//! The `[notifications]` section: the security e-mails Rampart sends to users (a sign-in from a
//! new device, a changed password, a second factor added or removed, …) and how it paces them.

use crate::settings::{checked, millis, secs, span};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The languages a catalogue of notices ships in.
pub const NOTICE_LANGUAGES: [&str; 2] = ["en", "de"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// `false`: no security notices at all (the e-mails with links and codes still go).
    pub enabled: bool,
    /// The language of the notices (`en`, `de`).
    pub language: String,
    /// Notices sent to one user in an hour, at most; more are skipped (critical ones too, so a
    /// flood of lockouts cannot flood an inbox; each is still in the audit log).
    pub max_per_hour: u32,
    /// A notice of the same kind to the same user within this many seconds of one sent is merged
    /// into it (not sent again).
    pub merge_window_secs: u64,
    /// A sign-in is from a new device when no sign-in of the user in this many days had the same
    /// browser family, operating system and network (/24, IPv6 /48).
    pub new_device_days: u32,
    /// How often the mail worker looks for due messages (it is also woken when this instance
    /// queues one).
    pub poll_ms: u64,
    /// How long a worker holds the messages it claimed; one that dies leaves them to be claimed
    /// again after this.
    pub claim_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            language: "en".into(),
            max_per_hour: 10,
            merge_window_secs: 600,
            new_device_days: 90,
            poll_ms: 1000,
            claim_secs: 120,
        }
    }
}

/// `[notifications]`, ready to use.
#[derive(Debug, Clone)]
pub struct NotificationsSettings {
    pub enabled: bool,
    pub language: String,
    pub max_per_hour: u32,
    pub merge_window: time::Duration,
    pub new_device_window: time::Duration,
    pub poll: Duration,
    pub claim: time::Duration,
}

impl NotificationsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !NOTICE_LANGUAGES.contains(&self.language.as_str()) {
            p.push(format!(
                "notifications.language: {:?} has no catalogue; one of {}",
                self.language,
                NOTICE_LANGUAGES.join(", ")
            ));
        }
        for (key, v) in [
            ("notifications.max_per_hour", u64::from(self.max_per_hour)),
            ("notifications.new_device_days", u64::from(self.new_device_days)),
            ("notifications.poll_ms", self.poll_ms),
            ("notifications.claim_secs", self.claim_secs),
        ] {
            if v == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        if self.merge_window_secs > 86_400 {
            p.push("notifications.merge_window_secs: at most 86400 (a day)".into());
        }
        p
    }

    pub fn settings(&self) -> Result<NotificationsSettings, Vec<String>> {
        checked(self.problems(), || NotificationsSettings {
            enabled: self.enabled,
            language: self.language.clone(),
            max_per_hour: self.max_per_hour,
            merge_window: span(secs(self.merge_window_secs)),
            new_device_window: span(secs(u64::from(self.new_device_days) * 86_400)),
            poll: millis(self.poll_ms),
            claim: span(secs(self.claim_secs)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let s = NotificationsConfig::default().settings().unwrap();
        assert_eq!(s.max_per_hour, 10);
        assert_eq!(s.new_device_window.whole_days(), 90);
        let bad = NotificationsConfig { language: "xx".into(), max_per_hour: 0, ..Default::default() };
        let p = bad.problems();
        assert!(p.iter().any(|m| m.starts_with("notifications.language")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("notifications.max_per_hour")), "{p:?}");
    }
}
