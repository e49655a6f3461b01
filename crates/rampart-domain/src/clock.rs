//! The clock, passed in so that every time-dependent rule can be tested with a frozen time.

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// A source of the current time, in UTC with microsecond precision: what both storage
/// backends keep, so a time read back equals the time written.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// `t` cut to whole microseconds.
pub fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t)
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(to_micros(at)))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = to_micros(*t + by);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_microsecond_precision() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
        let t = time::macros::datetime!(2026-01-01 00:00:00.123456789 UTC);
        assert_eq!(FixedClock::new(t).now(), time::macros::datetime!(2026-01-01 00:00:00.123456 UTC));
    }

    #[test]
    fn fixed_clock_moves_only_when_advanced() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let c = FixedClock::new(start);
        assert_eq!(c.now(), start);
        c.advance(Duration::seconds(30));
        assert_eq!(c.now(), start + Duration::seconds(30));
    }
}
