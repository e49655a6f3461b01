//! The circuit breaker of one upstream, as a pure state machine with the clock passed in:
//! Envoy's outlier detection (consecutive failures, a failure ratio over a sliding window,
//! ejection time growing with each ejection and capped, decaying while healthy) plus half-open
//! probing before the upstream takes full traffic again.
//!
//! The breaker does no I/O and reads no clock: every method takes `now`. [`crate::Upstream`]
//! holds one behind a mutex and feeds it the outcome of each forwarded request.
//!
//! ```text
//!            consecutive failures ≥ N, or failure ratio ≥ R over the window (≥ M requests)
//!   Closed ─────────────────────────────────────────────────────────────────────► Open
//!     ▲                                                                  ejection │ elapses
//!     │  every probe succeeded                  a probe failed (ejected again)    ▼
//!     └───────────────────────────── HalfOpen ─────────────────────────────► Open
//! ```

use std::time::{Duration, Instant};

/// How the breaker decides, with Envoy's outlier-detection defaults where Envoy has one.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Eject after this many failures in a row (a 5xx answer, a connection failure, a timeout).
    /// `0` turns the check off. Default 5 (Envoy's `consecutive_5xx`).
    pub consecutive_failures: u32,
    /// Eject when failures make up at least this share of the requests in the sliding window
    /// (0 < ratio ≤ 1), once the window holds at least `min_requests`. Default 0.5.
    pub failure_ratio: f64,
    /// The fewest requests in the window before the ratio is judged. `0` turns the ratio check
    /// off. Default 20.
    pub min_requests: u32,
    /// The sliding window's length; also the interval after which a healthy upstream's ejection
    /// count drops by one (Envoy's `interval`). Default 10 s.
    pub window: Duration,
    /// The first ejection's length; the n-th lasts `n × base_ejection`. Default 30 s (Envoy's
    /// `base_ejection_time`).
    pub base_ejection: Duration,
    /// The cap on an ejection's length. Default 300 s (Envoy's `max_ejection_time`).
    pub max_ejection: Duration,
    /// How many requests are let through after an ejection; all must succeed to close, any
    /// failure opens again. At least 1. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_ratio: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            half_open_probes: 1,
        }
    }
}

impl BreakerSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            Some("breaker.failure_ratio must be in (0, 1]")
        } else if self.window < Duration::from_millis(10) {
            Some("breaker.window must be at least 10 ms")
        } else if self.base_ejection.is_zero() {
            Some("breaker.base_ejection must be positive")
        } else if self.max_ejection < self.base_ejection {
            Some("breaker.max_ejection must be at least breaker.base_ejection")
        } else if self.half_open_probes == 0 {
            Some("breaker.half_open_probes must be at least 1")
        } else {
            None
        }
    }
}

/// The breaker's state, as exposed for metrics and status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Requests flow; outcomes are counted.
    Closed,
    /// The upstream is ejected: requests are refused at once with `Retry-After`.
    Open,
    /// The ejection is over: a few probe requests decide whether to close or open again.
    HalfOpen,
}

impl BreakerState {
    /// A stable lowercase name (`closed`, `open`, `half_open`) for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// A number for a gauge: 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// Why the breaker opened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpenReason {
    /// `failures` failures in a row.
    ConsecutiveFailures {
        /// How many in a row.
        failures: u32,
    },
    /// `failures` of `requests` in the window failed.
    FailureRatio {
        /// Failed requests in the window.
        failures: u32,
        /// All requests in the window.
        requests: u32,
    },
    /// A half-open probe failed.
    ProbeFailed,
}

/// A change of state, reported to the upstream's observer.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why it opened (for transitions to [`BreakerState::Open`]).
    pub reason: Option<OpenReason>,
    /// How many ejections count towards the next ejection's length, after this transition.
    pub ejections: u32,
    /// How long this ejection lasts (for transitions to [`BreakerState::Open`]).
    pub ejected_for: Option<Duration>,
}

/// What the breaker says about a request that wants to go upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send it; report its outcome (or its cancellation) with this ticket.
    Admit(Ticket),
    /// Refuse it; the client may retry after this long.
    Reject {
        /// Until the ejection ends (at least 1 s), or 1 s while the probes are out.
        retry_after: Duration,
    },
}

/// A request let through, to be reported back exactly once. Outcomes of requests admitted
/// before the breaker last changed state are ignored: only outcomes of the current phase count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
    probe: bool,
}

impl Ticket {
    /// Whether this request is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// How a request went, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer below 500.
    Success,
    /// A 5xx answer, a connection failure or a timeout.
    Failure,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { issued: u32, succeeded: u32 },
}

/// Number of buckets the sliding window is cut into.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket-length period since the breaker's origin this bucket counts.
    period: u64,
    requests: u32,
    failures: u32,
}

/// Request and failure counts over the last `window`, in [`BUCKETS`] buckets.
#[derive(Debug, Clone)]
struct Window {
    bucket_len: Duration,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    fn new(window: Duration) -> Self {
        // At least 1 ms per bucket (settings ask for a window of at least 10 ms).
        let bucket_len = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Self { bucket_len, buckets: [Bucket::default(); BUCKETS] }
    }

    fn period(&self, origin: Instant, now: Instant) -> u64 {
        let since = now.saturating_duration_since(origin).as_nanos();
        u64::try_from(since / self.bucket_len.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    fn add(&mut self, origin: Instant, now: Instant, failed: bool) {
        let period = self.period(origin, now);
        let bucket = &mut self.buckets[(period % BUCKETS as u64) as usize];
        if bucket.period != period || bucket.requests == 0 {
            *bucket = Bucket { period, requests: 0, failures: 0 };
        }
        bucket.requests = bucket.requests.saturating_add(1);
        if failed {
            bucket.failures = bucket.failures.saturating_add(1);
        }
    }

    /// `(requests, failures)` over the buckets still inside the window.
    fn totals(&self, origin: Instant, now: Instant) -> (u32, u32) {
        let period = self.period(origin, now);
        let oldest = period.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.requests > 0 && b.period >= oldest && b.period <= period)
            .fold((0u32, 0u32), |(r, f), b| (r.saturating_add(b.requests), f.saturating_add(b.failures)))
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

/// One upstream's circuit breaker. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    origin: Instant,
    phase: Phase,
    /// Bumped on every state change; tickets of older epochs are ignored.
    epoch: u64,
    consecutive: u32,
    window: Window,
    /// The ejection multiplier: ejections not yet decayed.
    ejections: u32,
    /// Since when the closed breaker has been earning decay of `ejections`.
    decay_from: Instant,
}

impl Breaker {
    /// A closed breaker. `now` is the origin of its sliding window.
    pub fn new(settings: BreakerSettings, now: Instant) -> Self {
        let window = Window::new(settings.window);
        Self {
            settings,
            origin: now,
            phase: Phase::Closed,
            epoch: 0,
            consecutive: 0,
            window,
            ejections: 0,
            decay_from: now,
        }
    }

    /// The settings this breaker runs with.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The state at `now`: an open breaker whose ejection has elapsed reads as half-open
    /// (the transition itself is made, and reported, by the next [`Breaker::admit`]).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// The ejection multiplier as of `now` (decay applied).
    pub fn ejections(&self, now: Instant) -> u32 {
        let mut copy = self.clone();
        copy.decay(now);
        copy.ejections
    }

    /// Whether a request may go upstream now, and the transition this caused (open → half-open
    /// when the ejection has elapsed).
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<Transition>) {
        match self.phase {
            Phase::Closed => (self.ticket(false), None),
            Phase::Open { until } if now < until => {
                let retry_after = ceil_secs(until.saturating_duration_since(now));
                (Admission::Reject { retry_after }, None)
            }
            Phase::Open { .. } => {
                self.epoch += 1;
                self.phase = Phase::HalfOpen { issued: 1, succeeded: 0 };
                let t = self.transition(BreakerState::Open, BreakerState::HalfOpen, None, None);
                (self.ticket(true), Some(t))
            }
            Phase::HalfOpen { ref mut issued, .. } => {
                if *issued < self.settings.half_open_probes {
                    *issued += 1;
                    (self.ticket(true), None)
                } else {
                    (Admission::Reject { retry_after: Duration::from_secs(1) }, None)
                }
            }
        }
    }

    /// Counts the outcome of an admitted request; returns the transition it caused, if any.
    pub fn record(&mut self, now: Instant, ticket: &Ticket, outcome: Outcome) -> Option<Transition> {
        if ticket.epoch != self.epoch {
            return None;
        }
        match self.phase {
            Phase::Closed => {
                self.decay(now);
                let failed = outcome == Outcome::Failure;
                self.window.add(self.origin, now, failed);
                if !failed {
                    self.consecutive = 0;
                    return None;
                }
                self.consecutive = self.consecutive.saturating_add(1);
                let s = &self.settings;
                if s.consecutive_failures > 0 && self.consecutive >= s.consecutive_failures {
                    let reason = OpenReason::ConsecutiveFailures { failures: self.consecutive };
                    return Some(self.open(now, BreakerState::Closed, reason));
                }
                let (requests, failures) = self.window.totals(self.origin, now);
                if s.min_requests > 0
                    && requests >= s.min_requests
                    && f64::from(failures) >= s.failure_ratio * f64::from(requests)
                {
                    let reason = OpenReason::FailureRatio { failures, requests };
                    return Some(self.open(now, BreakerState::Closed, reason));
                }
                None
            }
            Phase::HalfOpen { ref mut succeeded, .. } if ticket.probe => match outcome {
                Outcome::Failure => Some(self.open(now, BreakerState::HalfOpen, OpenReason::ProbeFailed)),
                Outcome::Success => {
                    *succeeded += 1;
                    if *succeeded < self.settings.half_open_probes {
                        return None;
                    }
                    self.epoch += 1;
                    self.phase = Phase::Closed;
                    self.consecutive = 0;
                    self.window.clear();
                    self.decay_from = now;
                    Some(self.transition(BreakerState::HalfOpen, BreakerState::Closed, None, None))
                }
            },
            Phase::HalfOpen { .. } | Phase::Open { .. } => None,
        }
    }

    /// An admitted request ended without an outcome (the client went away, or the request never
    /// left): a probe's slot is given back so another request can probe.
    pub fn cancel(&mut self, ticket: &Ticket) {
        if ticket.epoch != self.epoch || !ticket.probe {
            return;
        }
        if let Phase::HalfOpen { ref mut issued, .. } = self.phase {
            *issued = issued.saturating_sub(1);
        }
    }

    fn ticket(&self, probe: bool) -> Admission {
        Admission::Admit(Ticket { epoch: self.epoch, probe })
    }

    fn open(&mut self, now: Instant, from: BreakerState, reason: OpenReason) -> Transition {
        self.ejections = self.ejections.saturating_add(1);
        let ejected_for = self.settings.base_ejection.saturating_mul(self.ejections).min(self.settings.max_ejection);
        self.epoch += 1;
        self.phase = Phase::Open { until: now + ejected_for };
        self.consecutive = 0;
        self.window.clear();
        self.transition(from, BreakerState::Open, Some(reason), Some(ejected_for))
    }

    /// Envoy's decay: each full `window` spent closed takes one off the ejection multiplier.
    fn decay(&mut self, now: Instant) {
        if self.phase != Phase::Closed || self.ejections == 0 {
            self.decay_from = now.max(self.decay_from);
            return;
        }
        let interval = self.settings.window.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(self.decay_from).as_nanos();
        let intervals = u32::try_from(elapsed / interval).unwrap_or(u32::MAX);
        if intervals > 0 {
            self.ejections = self.ejections.saturating_sub(intervals);
            // Keep the part of an interval already earned.
            self.decay_from = self.settings.window.checked_mul(intervals).map_or(now, |d| self.decay_from + d);
        }
    }

    fn transition(
        &self,
        from: BreakerState,
        to: BreakerState,
        reason: Option<OpenReason>,
        ejected_for: Option<Duration>,
    ) -> Transition {
        Transition { from, to, reason, ejections: self.ejections, ejected_for }
    }
}

/// Rounds up to whole seconds, at least one (the unit of `Retry-After`).
fn ceil_secs(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            failure_ratio: 0.5,
            min_requests: 10,
            window: 10 * SEC,
            base_ejection: 30 * SEC,
            max_ejection: 100 * SEC,
            half_open_probes: 2,
        }
    }

    fn admit(b: &mut Breaker, now: Instant) -> Ticket {
        match b.admit(now).0 {
            Admission::Admit(t) => t,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    fn rejected(b: &mut Breaker, now: Instant) -> Duration {
        match b.admit(now).0 {
            Admission::Reject { retry_after } => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Admits and records one request, returning the transition.
    fn hit(b: &mut Breaker, now: Instant, outcome: Outcome) -> Option<Transition> {
        let t = admit(b, now);
        b.record(now, &t, outcome)
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_run() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        assert_eq!(hit(&mut b, t0, Outcome::Failure), None);
        assert_eq!(hit(&mut b, t0, Outcome::Failure), None);
        assert_eq!(hit(&mut b, t0, Outcome::Success), None);
        assert_eq!(hit(&mut b, t0, Outcome::Failure), None);
        assert_eq!(hit(&mut b, t0, Outcome::Failure), None);
        let t = hit(&mut b, t0, Outcome::Failure).unwrap();
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(t.reason, Some(OpenReason::ConsecutiveFailures { failures: 3 }));
        assert_eq!(t.ejected_for, Some(30 * SEC));
        assert_eq!(t.ejections, 1);
        assert_eq!(b.state(t0), BreakerState::Open);
    }

    #[test]
    fn open_refuses_with_seconds_until_half_open() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for _ in 0..3 {
            hit(&mut b, t0, Outcome::Failure);
        }
        assert_eq!(rejected(&mut b, t0), 30 * SEC);
        assert_eq!(rejected(&mut b, t0 + 10 * SEC + 300 * MS), 20 * SEC, "rounded up");
        assert_eq!(rejected(&mut b, t0 + 30 * SEC - MS), SEC, "never 0");
        assert_eq!(b.state(t0 + 30 * SEC), BreakerState::HalfOpen);
    }

    #[test]
    fn opens_on_failure_ratio_over_the_window_only_with_enough_requests() {
        let t0 = Instant::now();
        let mut s = settings();
        s.consecutive_failures = 0; // ratio only
        let mut b = Breaker::new(s, t0);
        // 9 requests, 5 failures: ratio over 0.5 but below min_requests.
        for i in 0..9 {
            let outcome = if i % 2 == 0 { Outcome::Failure } else { Outcome::Success };
            assert_eq!(hit(&mut b, t0 + i * 100 * MS, outcome), None);
        }
        // The 10th (a success) brings 5/10: at the threshold, but a success never opens.
        assert_eq!(hit(&mut b, t0 + SEC, Outcome::Success), None);
        // 11th a failure: 6/11 ≥ 0.5.
        let t = hit(&mut b, t0 + SEC, Outcome::Failure).unwrap();
        assert_eq!(t.reason, Some(OpenReason::FailureRatio { failures: 6, requests: 11 }));
    }

    #[test]
    fn old_outcomes_slide_out_of_the_window() {
        let t0 = Instant::now();
        let mut s = settings();
        s.consecutive_failures = 0;
        let mut b = Breaker::new(s, t0);
        // 8 failures long ago (the consecutive check is off).
        for _ in 0..8 {
            hit(&mut b, t0, Outcome::Failure);
        }
        // 11 s later they are out of the 10 s window: 2 failures in 10 fresh requests is fine.
        let later = t0 + 11 * SEC;
        for _ in 0..8 {
            assert_eq!(hit(&mut b, later, Outcome::Success), None);
        }
        assert_eq!(hit(&mut b, later, Outcome::Failure), None);
        assert_eq!(hit(&mut b, later, Outcome::Failure), None);
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_the_probes_through_and_closes_when_all_succeed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for _ in 0..3 {
            hit(&mut b, t0, Outcome::Failure);
        }
        let t1 = t0 + 30 * SEC;
        let (adm, tr) = b.admit(t1);
        let Admission::Admit(p1) = adm else { panic!("probe refused") };
        assert!(p1.is_probe());
        let tr = tr.unwrap();
        assert_eq!((tr.from, tr.to), (BreakerState::Open, BreakerState::HalfOpen));
        let p2 = admit(&mut b, t1);
        assert_eq!(rejected(&mut b, t1), SEC, "only two probes at a time");
        assert_eq!(b.record(t1, &p1, Outcome::Success), None);
        let tr = b.record(t1, &p2, Outcome::Success).unwrap();
        assert_eq!((tr.from, tr.to), (BreakerState::HalfOpen, BreakerState::Closed));
        assert_eq!(b.state(t1), BreakerState::Closed);
        assert!(!admit(&mut b, t1).is_probe());
    }

    #[test]
    fn a_failed_probe_reopens_for_longer_each_time_up_to_the_cap() {
        let t0 = Instant::now();
        let mut s = settings();
        s.half_open_probes = 1;
        let mut b = Breaker::new(s, t0);
        for _ in 0..3 {
            hit(&mut b, t0, Outcome::Failure);
        }
        let mut now = t0;
        let mut lengths = vec![];
        for _ in 0..4 {
            now += 300 * SEC; // past any ejection
            let probe = admit(&mut b, now);
            let t = b.record(now, &probe, Outcome::Failure).unwrap();
            assert_eq!(t.reason, Some(OpenReason::ProbeFailed));
            assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
            lengths.push(t.ejected_for.unwrap());
        }
        // 2nd, 3rd, 4th (capped at 100 s), 5th ejections.
        assert_eq!(lengths, vec![60 * SEC, 90 * SEC, 100 * SEC, 100 * SEC]);
    }

    #[test]
    fn the_ejection_count_decays_one_per_healthy_window() {
        let t0 = Instant::now();
        let mut s = settings();
        s.half_open_probes = 1;
        let mut b = Breaker::new(s, t0);
        let open = |b: &mut Breaker, now: Instant| {
            for _ in 0..2 {
                hit(b, now, Outcome::Failure);
            }
            hit(b, now, Outcome::Failure).unwrap()
        };
        let close = |b: &mut Breaker, now: Instant| {
            let p = admit(b, now);
            b.record(now, &p, Outcome::Success).unwrap()
        };
        assert_eq!(open(&mut b, t0).ejected_for, Some(30 * SEC));
        let t1 = t0 + 30 * SEC;
        close(&mut b, t1);
        // Failing again right away: the second ejection is twice as long.
        assert_eq!(open(&mut b, t1).ejected_for, Some(60 * SEC));
        let t2 = t1 + 60 * SEC;
        close(&mut b, t2);
        assert_eq!(b.ejections(t2), 2);
        // One healthy window later the multiplier is 1, two later 0.
        assert_eq!(b.ejections(t2 + 10 * SEC), 1);
        assert_eq!(b.ejections(t2 + 25 * SEC), 0);
        hit(&mut b, t2 + 25 * SEC, Outcome::Success);
        assert_eq!(open(&mut b, t2 + 25 * SEC).ejected_for, Some(30 * SEC));
    }

    #[test]
    fn outcomes_from_an_earlier_phase_are_ignored() {
        let t0 = Instant::now();
        let mut s = settings();
        s.half_open_probes = 1;
        let mut b = Breaker::new(s, t0);
        let slow = admit(&mut b, t0); // admitted while closed, answers late
        for _ in 0..3 {
            hit(&mut b, t0, Outcome::Failure);
        }
        // While open, the late answer changes nothing.
        assert_eq!(b.record(t0 + SEC, &slow, Outcome::Failure), None);
        let t1 = t0 + 30 * SEC;
        let probe = admit(&mut b, t1);
        // While half-open, it is not a probe result either.
        assert_eq!(b.record(t1, &slow, Outcome::Success), None);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert!(b.record(t1, &probe, Outcome::Success).is_some());
    }

    #[test]
    fn a_cancelled_probe_frees_its_slot() {
        let t0 = Instant::now();
        let mut s = settings();
        s.half_open_probes = 1;
        let mut b = Breaker::new(s, t0);
        for _ in 0..3 {
            hit(&mut b, t0, Outcome::Failure);
        }
        let t1 = t0 + 30 * SEC;
        let probe = admit(&mut b, t1);
        rejected(&mut b, t1);
        b.cancel(&probe);
        let again = admit(&mut b, t1);
        assert!(again.is_probe());
    }

    #[test]
    fn settings_problems_are_named() {
        assert_eq!(BreakerSettings::default().problem(), None);
        let bad = |f: fn(&mut BreakerSettings)| {
            let mut s = BreakerSettings::default();
            f(&mut s);
            s.problem().unwrap()
        };
        assert!(bad(|s| s.failure_ratio = 0.0).contains("failure_ratio"));
        assert!(bad(|s| s.failure_ratio = 1.5).contains("failure_ratio"));
        assert!(bad(|s| s.half_open_probes = 0).contains("half_open_probes"));
        assert!(bad(|s| s.max_ejection = Duration::from_secs(1)).contains("max_ejection"));
        assert!(bad(|s| s.window = Duration::ZERO).contains("window"));
    }
}
