//! Rate limiting by GCRA (the generic cell rate algorithm): pure arithmetic over one stored
//! number per key, the *theoretical arrival time* (TAT).
//!
//! A quota of `limit` requests per `period` admits one request every `T = period / limit` on
//! average, with bursts of up to `limit` requests. For a request at `now`, with stored TAT
//! (or `now` when none or in the past): the new TAT would be `tat + T`; the request is admitted
//! when `new_tat - period <= now`, and then `new_tat` is stored. That is exact (no window edges
//! where two windows' worth get through), needs one timestamp per key, and the same few lines
//! run as the Redis script, so both backends decide alike.
//!
//! Times are whole microseconds since the Unix epoch (`i64`): exact in Lua's doubles too.

use std::time::Duration;

/// A limit: `limit` requests per `period`, in bursts of up to `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    /// `limit` per `period`; `None` when either is zero.
    pub fn new(limit: u32, period: Duration) -> Option<Quota> {
        (limit > 0 && !period.is_zero()).then_some(Quota { limit, period })
    }

    /// The period in microseconds (at least 1).
    pub fn period_us(&self) -> i64 {
        i64::try_from(self.period.as_micros()).unwrap_or(i64::MAX / 4).max(1)
    }

    /// `T`: the interval one request "costs", in microseconds (at least 1).
    pub fn emission_us(&self) -> i64 {
        (self.period_us() / i64::from(self.limit)).max(1)
    }
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests that could still be made at once after this one.
    pub remaining: u32,
    /// When denied: how long until a request would be admitted. Zero when allowed.
    pub retry_after: Duration,
    /// How long until the full quota is available again.
    pub reset_after: Duration,
}

impl Decision {
    /// `Retry-After` in whole seconds, rounded up (at least 1 when denied).
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(u64::from(!self.allowed))
    }

    /// The `t` of the `RateLimit` field: whole seconds until the quota is full again, rounded up.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn us(d: i64) -> Duration {
    Duration::from_micros(u64::try_from(d).unwrap_or(0))
}

/// One GCRA step. `tat` is the stored TAT for the key (if any), `now` the current time; returns
/// the decision and, when admitted, the TAT to store (a denied request changes nothing).
pub fn gcra(tat: Option<i64>, now: i64, quota: Quota) -> (Decision, Option<i64>) {
    let period = quota.period_us();
    let t = quota.emission_us();
    let tat = tat.map_or(now, |v| v.max(now));
    let new_tat = tat.saturating_add(t);
    let allow_at = new_tat.saturating_sub(period);
    if now < allow_at {
        let d = Decision {
            allowed: false,
            limit: quota.limit,
            remaining: 0,
            retry_after: us(allow_at - now),
            reset_after: us(tat - now),
        };
        return (d, None);
    }
    let remaining = u32::try_from((period - (new_tat - now)) / t).unwrap_or(0).min(quota.limit);
    let d = Decision {
        allowed: true,
        limit: quota.limit,
        remaining,
        retry_after: Duration::ZERO,
        reset_after: us(new_tat - now),
    };
    (d, Some(new_tat))
}

/// The Redis twin of [`gcra`], run atomically by `EVALSHA` (one round trip per decision).
/// `KEYS[1]` = the key; `ARGV` = now (µs), period (µs), emission interval (µs), limit.
/// Returns `{allowed (0/1), remaining, retry_after_us, reset_after_us}`. The key expires when
/// its TAT is reached: an expired key and an absent one mean the same thing.
pub const GCRA_LUA: &str = r#"
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + t
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
local remaining = math.floor((period - (new_tat - now)) / t)
if remaining > limit then remaining = limit end
return {1, remaining, 0, new_tat - now}
"#;

/// [`GCRA_LUA`] over several decisions in one call: `KEYS[i]` is the i-th bucket and
/// `ARGV[4i-3..4i]` its `now`, `period`, `emission` and `limit`; the reply is the four numbers
/// of each decision in order, as one string of decimal integers separated by spaces (read by
/// [`batch_reply`]): a RESP array of 4n integers costs the client's parser about a thousand
/// instructions per integer, one bulk string a fraction of that. Decisions run one after another
/// inside Redis (a script is atomic), so a call of n decisions decides exactly as n calls of
/// [`GCRA_LUA`] in that order, including several on one key.
pub const GCRA_BATCH_LUA: &str = r#"
local out = {}
for i = 1, #KEYS do
  local b = 4 * (i - 1)
  local now = tonumber(ARGV[b + 1])
  local period = tonumber(ARGV[b + 2])
  local t = tonumber(ARGV[b + 3])
  local limit = tonumber(ARGV[b + 4])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + t
  local allow_at = new_tat - period
  if now < allow_at then
    out[i] = string.format('0 0 %d %d', allow_at - now, tat - now)
  else
    redis.call('SET', KEYS[i], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
    local remaining = math.floor((period - (new_tat - now)) / t)
    if remaining > limit then remaining = limit end
    out[i] = string.format('1 %d 0 %d', remaining, new_tat - now)
  end
end
return table.concat(out, ' ')
"#;

/// The numbers of a [`GCRA_BATCH_LUA`] reply for `decisions` decisions (four each), or `None`
/// when it is not exactly that many decimal integers separated by single spaces.
pub fn batch_reply(reply: &[u8], decisions: usize) -> Option<Vec<i64>> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut numbers = Vec::with_capacity(4 * decisions);
    for n in text.split(' ') {
        numbers.push(n.parse::<i64>().ok()?);
    }
    (numbers.len() == 4 * decisions).then_some(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn q(limit: u32, secs: u64) -> Quota {
        Quota::new(limit, Duration::from_secs(secs)).unwrap()
    }

    /// Runs requests at the given times (seconds) against one key; returns which were admitted.
    fn run(quota: Quota, times: &[f64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|s| {
                let (d, new) = gcra(tat, (s * S as f64) as i64, quota);
                if new.is_some() {
                    tat = new;
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_of_limit_then_one_per_interval() {
        // 5 per 10 s: five at once, the sixth refused; one more every 2 s.
        let quota = q(5, 10);
        assert_eq!(run(quota, &[0.0; 6]), [true, true, true, true, true, false]);
        assert_eq!(
            run(quota, &[0.0, 0.0, 0.0, 0.0, 0.0, 1.9, 2.0, 2.1]),
            [true, true, true, true, true, false, true, false]
        );
    }

    #[test]
    fn no_double_burst_at_a_window_edge() {
        // A fixed window admits 5 at 9.9 s and 5 more at 10.1 s; GCRA does not.
        let quota = q(5, 10);
        let admitted = run(quota, &[9.9, 9.9, 9.9, 9.9, 9.9, 10.1, 10.1, 10.1]).iter().filter(|a| **a).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn remaining_retry_after_and_reset() {
        let quota = q(3, 30); // T = 10 s
        let (d, tat) = gcra(None, 0, quota);
        assert_eq!((d.allowed, d.remaining, d.reset_secs()), (true, 2, 10));
        let (d, tat) = gcra(tat, 0, quota);
        assert_eq!((d.remaining, d.reset_secs()), (1, 20));
        let (d, tat) = gcra(tat, 0, quota);
        assert_eq!((d.remaining, d.reset_secs()), (0, 30));
        let (d, none) = gcra(tat, S / 2, quota);
        assert!(!d.allowed && none.is_none());
        assert_eq!(d.retry_after, Duration::from_micros(9_500_000));
        assert_eq!(d.retry_after_secs(), 10);
        // After the full period the quota is whole again.
        let (d, _) = gcra(tat, 30 * S, quota);
        assert_eq!((d.allowed, d.remaining), (true, 2));
    }

    #[test]
    fn a_denied_request_does_not_consume() {
        let quota = q(1, 10);
        let (_, tat) = gcra(None, 0, quota);
        for i in 1..100 {
            let (d, new) = gcra(tat, i * 1000, quota);
            assert!(!d.allowed && new.is_none());
        }
        assert!(gcra(tat, 10 * S, quota).0.allowed);
    }

    #[test]
    fn zero_quotas_are_refused() {
        assert!(Quota::new(0, Duration::from_secs(1)).is_none());
        assert!(Quota::new(1, Duration::ZERO).is_none());
    }

    #[test]
    fn a_batch_reply_is_exactly_four_integers_per_decision() {
        assert_eq!(batch_reply(b"1 9 0 6000000 0 0 250 1000", 2), Some(vec![1, 9, 0, 6_000_000, 0, 0, 250, 1000]));
        assert_eq!(batch_reply(b"-1 0 0 3", 1), Some(vec![-1, 0, 0, 3]));
        for bad in
            [&b""[..], b"1 9 0", b"1 9 0 6 1", b"1  9 0 6", b"1 9 0 6 ", b"1 9 0 6.5", b"1 9 0 1.7e15", b"a b c d"]
        {
            assert_eq!(batch_reply(bad, 1), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(batch_reply(b"1 9 0 6", 2), None, "a decision missing");
    }
}
