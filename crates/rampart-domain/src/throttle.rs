//! Login throttling: growing delays, then a lockout, per identifier and per client address.
//!
//! Every password attempt is counted *before* the password is checked (and un-counted when it
//! was right), so a burst of concurrent guesses cannot all slip in while the counter still
//! reads low. The rules here are pure; storage applies them atomically.

use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// What a throttle counter counts: a client address (IPv6 per /64, since a client usually
/// holds a whole /64) or a login identifier (a keyed hash of the submitted e-mail, so the
/// table holds no addresses). Stored as `ip:…` and `id:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Address(String),
    Identifier(String),
}

impl ThrottleKey {
    /// The key of a client address.
    pub fn address(ip: IpAddr) -> Self {
        ThrottleKey::Address(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        })
    }

    /// Appends the stored form of [`ThrottleKey::address`] (`ip:…`) to `out`, for keys built on
    /// every request (the rate limiter's): the same text, without a `String` per part.
    pub fn push_address_key(out: &mut String, ip: IpAddr) {
        let v4 = match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        out.push_str("ip:");
        match v4 {
            Some(v4) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(digits.format(octet));
                }
            }
            None => {
                if let ThrottleKey::Address(a) = ThrottleKey::address(ip) {
                    out.push_str(&a);
                }
            }
        }
    }

    /// The key of a login identifier, from its keyed hash (hex).
    pub fn identifier(keyed_hash_hex: String) -> Self {
        ThrottleKey::Identifier(keyed_hash_hex)
    }

    /// `ip` or `identifier`, as events name the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ThrottleKey::Address(_) => "ip",
            ThrottleKey::Identifier(_) => "identifier",
        }
    }

    /// The stored form.
    pub fn storage_key(&self) -> String {
        match self {
            ThrottleKey::Address(a) => format!("ip:{a}"),
            ThrottleKey::Identifier(h) => format!("id:{h}"),
        }
    }
}

impl std::fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.storage_key())
    }
}

/// The limits for one kind of key (an e-mail address, or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures within `window` that lock the key.
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    /// From the second failure on, the next attempt waits `delay_base × 2^(failures − 2)`
    /// (capped at the lockout). Zero: no delays.
    pub delay_base: Duration,
}

/// What is recorded for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub failures: u32,
    pub window_started_at: OffsetDateTime,
    pub last_failure_at: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
}

/// Whether an attempt may go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Too soon after the last failure; retry after the duration.
    Wait(Duration),
    /// Locked; retry after the duration.
    Locked(Duration),
}

impl Verdict {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Verdict::Allow => None,
            Verdict::Wait(d) | Verdict::Locked(d) => Some(*d),
        }
    }
}

impl ThrottlePolicy {
    fn window_over(&self, a: &Attempts, now: OffsetDateTime) -> bool {
        now >= a.window_started_at + self.window && a.locked_until.is_none_or(|until| until <= now)
    }

    /// The delay owed after `failures` failures.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures < 2 || self.delay_base.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1i32 << (failures - 2).min(20);
        (self.delay_base * factor).min(self.lockout)
    }

    /// May an attempt go ahead at `now`, given what is recorded?
    pub fn check(&self, recorded: Option<&Attempts>, now: OffsetDateTime) -> Verdict {
        let Some(a) = recorded else { return Verdict::Allow };
        if let Some(until) = a.locked_until
            && until > now
        {
            return Verdict::Locked(until - now);
        }
        if self.window_over(a, now) {
            return Verdict::Allow;
        }
        // No delay owed: allowed, even when a concurrent attempt recorded a failure a moment
        // after this one read its clock (`last_failure_at > now` is no reason to wait).
        let delay = self.delay_after(a.failures);
        if delay.is_zero() {
            return Verdict::Allow;
        }
        let ready_at = a.last_failure_at + delay;
        if ready_at > now { Verdict::Wait(ready_at - now) } else { Verdict::Allow }
    }

    /// Counts an attempt (provisionally a failure). Returns the new record and whether this
    /// attempt reached the lockout.
    pub fn count(&self, recorded: Option<Attempts>, now: OffsetDateTime) -> (Attempts, bool) {
        let fresh = Attempts { failures: 0, window_started_at: now, last_failure_at: now, locked_until: None };
        let mut a = match recorded {
            Some(a) if !self.window_over(&a, now) => a,
            _ => fresh,
        };
        a.failures = a.failures.saturating_add(1);
        a.last_failure_at = now;
        let locks = a.failures >= self.max_failures && a.locked_until.is_none_or(|until| until <= now);
        if locks {
            a.locked_until = Some(now + self.lockout);
        }
        (a, locks)
    }

    /// Takes back a counted attempt that turned out to be right (for keys that are not
    /// cleared on success, such as a shared client address). A lock is lifted only when this
    /// attempt set it (`locked_by_this`): a lock set by other, failed attempts stays.
    pub fn uncount(&self, mut a: Attempts, locked_by_this: bool) -> Attempts {
        a.failures = a.failures.saturating_sub(1);
        if locked_by_this && a.failures < self.max_failures {
            a.locked_until = None;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_pushed_address_key_is_the_stored_form() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "127.0.0.1",
            "255.255.255.255",
            "10.200.3.99",
            "::ffff:192.0.2.7",
            "2001:db8:aa:bb:1:2:3:4",
            "::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = String::from("rule:ip:");
            ThrottleKey::push_address_key(&mut out, ip);
            assert_eq!(out, format!("rule:ip:{}", ThrottleKey::address(ip).storage_key()), "{ip}");
        }
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 5,
            window: Duration::minutes(15),
            lockout: Duration::minutes(15),
            delay_base: Duration::seconds(1),
        }
    }

    #[test]
    fn delays_grow_then_the_key_locks() {
        let p = policy();
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut rec: Option<Attempts> = None;
        let mut now = t0;
        let mut waits = Vec::new();
        for n in 1..=5 {
            // Wait exactly as long as asked before each attempt.
            if let Verdict::Wait(d) = p.check(rec.as_ref(), now) {
                waits.push(d.whole_seconds());
                assert_eq!(
                    p.check(rec.as_ref(), now + d - Duration::milliseconds(1)),
                    Verdict::Wait(Duration::milliseconds(1))
                );
                now += d;
            }
            assert_eq!(p.check(rec.as_ref(), now), Verdict::Allow, "attempt {n}");
            let (a, locked) = p.count(rec, now);
            assert_eq!(locked, n == 5);
            rec = Some(a);
        }
        assert_eq!(waits, vec![1, 2, 4], "no wait before the 1st and 2nd attempt, then 1, 2, 4 s");
        assert_eq!(p.check(rec.as_ref(), now), Verdict::Locked(Duration::minutes(15)));
        assert_eq!(p.check(rec.as_ref(), now + Duration::minutes(14)), Verdict::Locked(Duration::minutes(1)));
        // After the lockout the count starts over.
        let later = now + Duration::minutes(15);
        assert_eq!(p.check(rec.as_ref(), later), Verdict::Allow);
        let (a, locked) = p.count(rec, later);
        assert_eq!((a.failures, locked), (1, false));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let p = policy();
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let (a, _) = p.count(None, t0);
        let (a, _) = p.count(Some(a), t0 + Duration::seconds(10));
        assert_eq!(a.failures, 2);
        let (a, _) = p.count(Some(a), t0 + Duration::minutes(16));
        assert_eq!(a.failures, 1);
        assert_eq!(a.window_started_at, t0 + Duration::minutes(16));
    }

    #[test]
    fn uncount_takes_back_a_right_attempt_and_its_lock() {
        let p = ThrottlePolicy { delay_base: Duration::ZERO, ..policy() };
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let mut rec = None;
        for _ in 0..5 {
            rec = Some(p.count(rec, t0).0);
        }
        let a = rec.unwrap();
        assert!(a.locked_until.is_some());
        let kept = p.uncount(a, false);
        assert_eq!(kept.failures, 4);
        assert!(kept.locked_until.is_some(), "a lock set by other attempts stays");
        let a = p.uncount(a, true);
        assert_eq!((a.failures, a.locked_until), (4, None));
        assert_eq!(p.check(Some(&a), t0), Verdict::Allow);
    }

    #[test]
    fn without_delays_only_the_lockout_applies() {
        let p = ThrottlePolicy { delay_base: Duration::ZERO, ..policy() };
        assert_eq!(p.delay_after(4), Duration::ZERO);
        assert_eq!(policy().delay_after(30), Duration::minutes(15), "delays are capped at the lockout");
    }

    #[test]
    fn throttle_keys_name_addresses_per_64_and_identifiers() {
        assert_eq!(ThrottleKey::address("192.0.2.7".parse().unwrap()).storage_key(), "ip:192.0.2.7");
        assert_eq!(ThrottleKey::address("2001:db8:1:2:3:4:5:6".parse().unwrap()).storage_key(), "ip:2001:db8:1:2::/64");
        assert_eq!(ThrottleKey::address("::ffff:192.0.2.7".parse().unwrap()).storage_key(), "ip:192.0.2.7");
        assert_eq!(ThrottleKey::identifier("ab".into()).storage_key(), "id:ab");
        assert_eq!(ThrottleKey::identifier("ab".into()).kind(), "identifier");
    }

    #[test]
    fn a_concurrent_failure_recorded_after_this_clock_reading_owes_no_wait() {
        let p = ThrottlePolicy { delay_base: Duration::ZERO, ..policy() };
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let later = Attempts {
            failures: 3,
            window_started_at: now,
            last_failure_at: now + Duration::milliseconds(3),
            locked_until: None,
        };
        assert_eq!(p.check(Some(&later), now), Verdict::Allow);
    }
}
