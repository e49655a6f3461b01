//! Alert rules: "this many matching events within this window", with a cooldown so that one
//! incident is one alert, and the channels an alert goes to.
//!
//! [`Window`] counts matches as events stream by (pure: times come from the events). Whether a
//! rule may fire again (its cooldown) is decided by the store's conditional update, so several
//! instances watching the same log fire once.

use crate::event::{Outcome, Severity};
use crate::webhook::EventFilter;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest window a rule may count over (the evaluator keeps at most this much in memory).
pub const MAX_WINDOW_SECS: u32 = 86_400;

/// Where an alert goes, besides the `alert.fired` audit event every alert writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// An e-mail to this address.
    Email(String),
    /// A delivery to this webhook endpoint (signed per Standard Webhooks, or a Slack-compatible
    /// body when the endpoint's format is `slack`).
    Webhook(Uuid),
}

/// Which events a rule counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// An exact action (`auth.login`) or a prefix (`auth.*`).
    pub action: EventFilter,
    pub outcome: Option<Outcome>,
    /// Events of at least this severity.
    pub severity: Option<Severity>,
}

impl Match {
    pub fn matches(&self, action: &str, outcome: Outcome, severity: Severity) -> bool {
        self.action.matches(action)
            && self.outcome.is_none_or(|o| o == outcome)
            && self.severity.is_none_or(|least| severity >= least)
    }
}

/// The times of a rule's recent matches, each with its weight (an aggregated summary event
/// stands for the occurrences it summarises).
#[derive(Debug, Clone, Default)]
pub struct Window {
    times: VecDeque<(OffsetDateTime, u64)>,
    total: u64,
}

impl Window {
    /// Counts `weight` matches at `at` and returns how many fell within `window` up to it.
    pub fn push(&mut self, at: OffsetDateTime, weight: u64, window: time::Duration) -> u64 {
        self.times.push_back((at, weight));
        self.total += weight;
        while let Some((t, w)) = self.times.front().copied() {
            if t > at - window {
                break;
            }
            self.total -= w;
            self.times.pop_front();
        }
        self.total
    }

    /// Forgets the matches so far (after the rule fired: the next alert needs a new burst).
    pub fn clear(&mut self) {
        self.times.clear();
        self.total = 0;
    }
}

/// How many occurrences an event stands for: an aggregated summary's count (`details.aggregated
/// .count`, the occurrences after the first), else one.
pub fn weight(details: &serde_json::Value) -> u64 {
    details.get("aggregated").and_then(|a| a.get("count")).and_then(serde_json::Value::as_u64).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_counts_only_what_is_inside_it() {
        let mut w = Window::default();
        let t0 = datetime!(2026-12-06 12:00:00 UTC);
        let five = time::Duration::minutes(5);
        assert_eq!(w.push(t0, 1, five), 1);
        assert_eq!(w.push(t0 + time::Duration::minutes(2), 1, five), 2);
        assert_eq!(w.push(t0 + time::Duration::minutes(4), 10, five), 12);
        // t0 falls out at exactly five minutes.
        assert_eq!(w.push(t0 + time::Duration::minutes(5), 1, five), 12);
        assert_eq!(w.push(t0 + time::Duration::minutes(20), 1, five), 1);
        w.clear();
        assert_eq!(w.push(t0 + time::Duration::minutes(21), 1, five), 1);
    }

    #[test]
    fn a_summary_weighs_what_it_summarises() {
        assert_eq!(weight(&serde_json::json!({"aggregated": {"count": 41}})), 41);
        assert_eq!(weight(&serde_json::json!({"rule": "api"})), 1);
        assert_eq!(weight(&serde_json::Value::Null), 1);
    }

    #[test]
    fn matching_by_action_prefix_outcome_and_least_severity() {
        let m =
            Match { action: EventFilter::parse("auth.*").unwrap(), outcome: Some(Outcome::Failure), severity: None };
        assert!(m.matches("auth.login", Outcome::Failure, Severity::Info));
        assert!(!m.matches("auth.login", Outcome::Success, Severity::Info));
        assert!(!m.matches("role.changed", Outcome::Failure, Severity::Info));
        let critical = Match {
            action: EventFilter::parse("role.changed").unwrap(),
            outcome: None,
            severity: Some(Severity::Critical),
        };
        assert!(critical.matches("role.changed", Outcome::Success, Severity::Critical));
        assert!(!critical.matches("role.changed", Outcome::Success, Severity::Warning));
    }

    #[test]
    fn channels_read_as_documented() {
        let c: Vec<Channel> =
            serde_json::from_str(r#"[{"email":"ops@example.com"},{"webhook":"0192a000-0000-7000-8000-000000000001"}]"#)
                .unwrap();
        assert_eq!(c[0], Channel::Email("ops@example.com".into()));
        assert!(matches!(c[1], Channel::Webhook(_)));
        assert!(serde_json::from_str::<Channel>(r#"{"sms":"+1"}"#).is_err());
    }
}
