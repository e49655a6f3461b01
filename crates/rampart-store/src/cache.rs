//! Records read by id, kept in memory for a short time, so that the hot paths (a bearer token's
//! session, the caller's own account on `GET /v1/me`) need no database round trip while a
//! cache can answer.
//!
//! Correctness rests on one counter per cache, the epoch:
//! - a reader notes the epoch *before* it queries, and stores what it read under that epoch;
//! - every write of this store that can change what the cache holds declares so inside its
//!   transaction (`tx.invalidates(Cache::…)`, see `tx`), and the epoch moves right *after* that
//!   transaction commits, never after a rollback (for sessions: revocations of every kind, also
//!   those of password and second-factor changes and of disabling a user, erasing a user,
//!   refresh-token reuse; for accounts: writes to a user row, their roles or their second
//!   factors);
//! - an entry answers only while its epoch is the current one and it is younger than the TTL.
//!
//! So a read that overlapped a change is never served after that change returns, and a change
//! made through this process is seen at once. A change made by another process sharing the
//! database (several instances on PostgreSQL) moves the same epochs when its notice arrives
//! (`bus`: about a millisecond on loopback), and within the TTL when the bus is down.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// More entries than this and stale ones are swept; if none are, nothing new is cached.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub(crate) struct EpochCache<K, V> {
    ttl: Duration,
    epoch: AtomicU64,
    // Keyed by ids the server made (sessions, users): foldhash's keyed hash, not SipHash,
    // which cost as much as the rest of the lookup.
    entries: RwLock<HashMap<K, Entry<V>, foldhash::fast::RandomState>>,
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    epoch: u64,
    fetched: Instant,
}

impl<K: Eq + Hash + Copy, V: Clone> EpochCache<K, V> {
    /// A zero `ttl` caches nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, epoch: AtomicU64::new(0), entries: RwLock::new(HashMap::default()) }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The epoch a reader notes before it queries.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn fresh(&self, e: &Entry<V>, epoch: u64) -> bool {
        e.epoch == epoch && e.fetched.elapsed() < self.ttl
    }

    pub(crate) fn get(&self, key: K) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(&key)?;
        self.fresh(e, self.epoch()).then(|| e.value.clone())
    }

    /// Stores what a reader that began at `epoch` read (dropped if the epoch moved since).
    pub(crate) fn put(&self, key: K, value: &V, epoch: u64) {
        if !self.enabled() || epoch != self.epoch() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let now = self.epoch();
            entries.retain(|_, e| self.fresh(e, now));
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, Entry { value: value.clone(), epoch, fetched: Instant::now() });
    }

    pub(crate) fn forget(&self, key: K) {
        if self.enabled() {
            self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
    }

    /// After a committed write that may have changed cached records: nothing read before it
    /// answers. O(1): stale entries are replaced or swept later.
    pub(crate) fn changed(&self) {
        if self.enabled() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_domain::{Session, SessionId, UserId};
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn session() -> Session {
        let now = OffsetDateTime::now_utc();
        Session {
            id: SessionId(Uuid::now_v7()),
            user_id: UserId(Uuid::now_v7()),
            created_at: now,
            last_active_at: now,
            idle_expires_at: now,
            absolute_expires_at: now,
            ip: None,
            user_agent: None,
            amr: vec![rampart_domain::mfa::Amr::Pwd],
            revoked_at: None,
        }
    }

    #[test]
    fn answers_until_a_change_or_the_ttl() {
        let c = EpochCache::<SessionId, Session>::new(Duration::from_secs(60));
        let s = session();
        assert!(c.get(s.id).is_none());
        c.put(s.id, &s, c.epoch());
        assert_eq!(c.get(s.id).unwrap().id, s.id);
        c.changed();
        assert!(c.get(s.id).is_none(), "a change invalidates everything read before it");

        let short = EpochCache::<SessionId, Session>::new(Duration::from_millis(1));
        short.put(s.id, &s, short.epoch());
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(s.id).is_none(), "older than the TTL");
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_stored() {
        let c = EpochCache::<SessionId, Session>::new(Duration::from_secs(60));
        let s = session();
        let before = c.epoch();
        c.changed(); // a revocation commits while the read is in flight
        c.put(s.id, &s, before);
        assert!(c.get(s.id).is_none());
    }

    #[test]
    fn forget_drops_one_and_zero_ttl_caches_nothing() {
        let c = EpochCache::<SessionId, Session>::new(Duration::from_secs(60));
        let (a, b) = (session(), session());
        c.put(a.id, &a, c.epoch());
        c.put(b.id, &b, c.epoch());
        c.forget(a.id);
        assert!(c.get(a.id).is_none());
        assert!(c.get(b.id).is_some());
        let off = EpochCache::<SessionId, Session>::new(Duration::ZERO);
        off.put(a.id, &a, off.epoch());
        assert!(off.get(a.id).is_none());
    }
}
