//! Server-side sessions: one per login, with a sliding idle timeout and an absolute lifetime.
//!
//! A session is what a refresh token, a session cookie and the `sid` claim of an access token
//! belong to; revoking it ends all of them.

use crate::user::UserId;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A session's public id (UUIDv7). Not a secret: it appears in session lists and the `sid`
/// claim. The secrets are the refresh token and the cookie, stored only as hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub Uuid);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Unused for this long, a session ends; each use extends it.
    pub idle: Duration,
    /// However active, a session ends this long after login.
    pub absolute: Duration,
}

/// Activity is recorded at most this often, so a burst of requests is one write, not many.
pub const TOUCH_INTERVAL: Duration = Duration::seconds(60);

impl SessionPolicy {
    /// The idle and absolute expiry of a session starting `now`.
    pub fn start(&self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let absolute = now + self.absolute;
        ((now + self.idle).min(absolute), absolute)
    }

    /// The new idle expiry after activity at `now` (never past the absolute expiry).
    pub fn extend(&self, session: &Session, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.idle).min(session.absolute_expires_at)
    }

    /// Whether activity at `now` should be written (the last write is older than
    /// [`TOUCH_INTERVAL`]).
    pub fn should_touch(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.last_active_at >= TOUCH_INTERVAL
    }
}

/// How a session is held: bearer tokens (an access token and a rotating refresh token) or a
/// browser cookie (with a CSRF token). Chosen at login (`?session=token|cookie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    #[default]
    Token,
    Cookie,
}

impl SessionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionMode::Token => "token",
            SessionMode::Cookie => "cookie",
        }
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_active_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How the user authenticated (`pwd`, later `otp`, `hwk`…), as in the `amr` claim.
    pub amr: Vec<crate::mfa::Amr>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Session {
    /// When the session ends if nothing else happens.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    /// Not revoked and not expired at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at()
    }

    /// Opened at most `window` before `now` (a refresh does not make a session recent: it keeps
    /// its `created_at`).
    pub fn is_recent(&self, now: OffsetDateTime, window: Duration) -> bool {
        now - self.created_at <= window
    }

    /// Opened with more than one factor (its `amr` says `mfa`: a password and a code or a
    /// key, or a passkey that verified its user) at most `window` before `now`: such a sign-in
    /// stands in for presenting a second factor again.
    pub fn is_recent_multi_factor(&self, now: OffsetDateTime, window: Duration) -> bool {
        self.amr.contains(&crate::mfa::Amr::Mfa) && self.is_recent(now, window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn policy() -> SessionPolicy {
        SessionPolicy { idle: Duration::days(30), absolute: Duration::days(90) }
    }

    fn session(now: OffsetDateTime) -> Session {
        let (idle, absolute) = policy().start(now);
        Session {
            id: SessionId(Uuid::nil()),
            user_id: UserId(Uuid::nil()),
            created_at: now,
            last_active_at: now,
            idle_expires_at: idle,
            absolute_expires_at: absolute,
            ip: None,
            user_agent: None,
            amr: vec![crate::mfa::Amr::Pwd],
            revoked_at: None,
        }
    }

    #[test]
    fn idle_timeout_slides_but_never_past_the_absolute_limit() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut s = session(t0);
        assert_eq!(s.expires_at(), t0 + Duration::days(30));
        assert!(s.is_active(t0 + Duration::days(29)));
        assert!(!s.is_active(t0 + Duration::days(30)), "idle for 30 days: ended");
        // Active every 20 days: alive until the absolute limit, not one second longer.
        for day in [20, 40, 60, 80] {
            let now = t0 + Duration::days(day);
            assert!(s.is_active(now), "day {day}");
            s.idle_expires_at = policy().extend(&s, now);
            s.last_active_at = now;
        }
        assert_eq!(s.expires_at(), t0 + Duration::days(90));
        assert!(s.is_active(t0 + Duration::days(90) - Duration::seconds(1)));
        assert!(!s.is_active(t0 + Duration::days(90)));
    }

    #[test]
    fn revoked_sessions_are_inactive_and_touches_are_rate_limited() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut s = session(t0);
        assert!(!policy().should_touch(&s, t0 + Duration::seconds(59)));
        assert!(policy().should_touch(&s, t0 + Duration::seconds(60)));
        s.revoked_at = Some(t0);
        assert!(!s.is_active(t0));
    }

    #[test]
    fn only_a_recent_multi_factor_sign_in_stands_in_for_a_second_factor() {
        use crate::mfa::{Amr, Factor, amr_with};
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let window = Duration::minutes(5);
        let mut s = session(t0);
        assert!(s.is_recent(t0 + window, window));
        assert!(!s.is_recent(t0 + window + Duration::seconds(1), window));
        assert!(!s.is_recent_multi_factor(t0, window), "a password alone");
        s.amr = amr_with(Factor::Totp);
        assert!(s.is_recent_multi_factor(t0 + window, window));
        assert!(!s.is_recent_multi_factor(t0 + window + Duration::seconds(1), window), "too old");
        s.amr = vec![Amr::Hwk, Amr::User, Amr::Mfa];
        assert!(s.is_recent_multi_factor(t0, window), "a passkey that verified its user");
        assert!(!s.is_recent_multi_factor(t0 + Duration::seconds(1), Duration::ZERO), "a zero window: never");
        // Activity (a refresh, a touch) does not make an old sign-in recent.
        s.last_active_at = t0 + Duration::hours(1);
        assert!(!s.is_recent_multi_factor(t0 + Duration::hours(1), window));
    }
}
