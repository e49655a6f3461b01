//! The invalidation bus: several instances on one PostgreSQL database behave as one.
//!
//! Every committed write that makes a cache stale (see `cache` and `tx`: sessions ended,
//! accounts, roles and factors changed, roles redefined, API keys revoked or rotated, the
//! token signing key rotated) moves this instance's epochs at once and is then published with
//! `pg_notify` on a channel named for the database schema. Every instance listens on that channel (`LISTEN`, on a connection
//! of its own) and moves the same epochs when another instance's news arrive, so a revocation
//! made on one instance is refused on all of them about one round trip later.
//!
//! The caches keep their TTL as the backstop: a notice lost because the listening connection
//! dropped is covered by moving every epoch when the connection comes back (everything is read
//! again once), and while it is down each change is seen within the TTL, as without a bus.
//! On SQLite there is one process per database file and nothing to publish.

use crate::tx::Stale;
use crate::{Db, Store};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The notice channel of one deployment (one schema of one database).
#[derive(Debug)]
pub(crate) struct Bus {
    channel: String,
    /// This instance, so it skips its own notices (applied before they were sent).
    instance: String,
    /// Whether the listening connection is up (`false`: changes elsewhere are seen within the
    /// caches' TTL only).
    listening: AtomicBool,
    /// Notices applied from other instances.
    received: AtomicU64,
    /// Times the listening connection was lost.
    drops: AtomicU64,
}

impl Bus {
    pub(crate) fn new(schema: &str) -> Bus {
        // A channel name is at most 63 bytes.
        let schema: String = schema.chars().take(48).collect();
        Bus {
            channel: format!("rampart_invalidate:{schema}"),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            listening: AtomicBool::new(false),
            received: AtomicU64::new(0),
            drops: AtomicU64::new(0),
        }
    }
}

/// What one commit made stale, as sent to the other instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message(String);

impl Message {
    pub(crate) fn of(stale: &Stale) -> Message {
        let mut flags = String::with_capacity(4);
        for (on, c) in [
            (stale.sessions, 's'),
            (stale.accounts, 'a'),
            (stale.roles, 'r'),
            (stale.api_keys, 'k'),
            (stale.signing_keys, 'g'),
            (stale.transit, 't'),
        ] {
            if on {
                flags.push(c);
            }
        }
        Message(flags)
    }
}

/// Reads a notice's payload (`<instance> <flags>`): `None` for this instance's own notices
/// or a payload that is not ours.
fn parse(payload: &str, me: &str) -> Option<Stale> {
    let (instance, flags) = payload.split_once(' ')?;
    if instance == me {
        return None;
    }
    let mut stale = Stale::default();
    for c in flags.chars() {
        match c {
            's' => stale.sessions = true,
            'a' => stale.accounts = true,
            'r' => stale.roles = true,
            'k' => stale.api_keys = true,
            'g' => stale.signing_keys = true,
            't' => stale.transit = true,
            _ => return None,
        }
    }
    Some(stale)
}

/// The state of this instance's bus, for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// SQLite: one process, nothing to hear.
    None,
    /// Listening for other instances' changes.
    Listening,
    /// The listening connection is down: changes elsewhere are seen within the caches' TTL.
    Down,
}

impl Store {
    /// Tells the other instances what a commit made stale (after it committed). A failure is
    /// logged: the others then see the change within their caches' TTL.
    pub(crate) async fn publish(&self, m: Message) {
        let (Some(bus), Db::Postgres(pool)) = (&self.bus, &self.db) else { return };
        let payload = format!("{} {}", bus.instance, m.0);
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(&bus.channel).bind(&payload).execute(pool).await {
            tracing::warn!(error = %e, "invalidation bus: publishing failed; other instances see the change within their caches' TTL");
        }
    }

    /// The bus's state now.
    pub fn bus_state(&self) -> BusState {
        match &self.bus {
            None => BusState::None,
            Some(b) if b.listening.load(Ordering::Acquire) => BusState::Listening,
            Some(_) => BusState::Down,
        }
    }

    /// How many notices from other instances were applied (tests, metrics).
    pub fn bus_received(&self) -> u64 {
        self.bus.as_ref().map_or(0, |b| b.received.load(Ordering::Acquire))
    }

    /// How many times the listening connection was lost since start.
    pub fn bus_drops(&self) -> u64 {
        self.bus.as_ref().map_or(0, |b| b.drops.load(Ordering::Acquire))
    }

    /// Listens for other instances' changes and applies them, reconnecting after a failure,
    /// until the task is dropped. Returns at once on SQLite.
    pub async fn follow_invalidations(&self) {
        let (Some(bus), Db::Postgres(pool)) = (&self.bus, &self.db) else { return };
        loop {
            match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut listener) => match listener.listen(&bus.channel).await {
                    Ok(()) => {
                        bus.listening.store(true, Ordering::Release);
                        // Whatever was published while nobody listened is unknown: read all again.
                        Stale::all().apply(self);
                        tracing::info!(channel = %bus.channel, "invalidation bus: listening");
                        // Until the connection drops (`Ok(None)`) or fails. Notices sent until
                        // this listens again are lost: everything is read again then.
                        let lost = loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => {
                                    if let Some(stale) = parse(n.payload(), &bus.instance) {
                                        stale.apply(self);
                                        bus.received.fetch_add(1, Ordering::AcqRel);
                                    }
                                }
                                Ok(None) => break None,
                                Err(e) => break Some(e),
                            }
                        };
                        bus.listening.store(false, Ordering::Release);
                        bus.drops.fetch_add(1, Ordering::AcqRel);
                        match lost {
                            None => tracing::warn!("invalidation bus: connection lost; reconnecting"),
                            Some(e) => tracing::warn!(error = %e, "invalidation bus: receiving failed; reconnecting"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "invalidation bus: LISTEN failed; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, "invalidation bus: cannot connect; retrying"),
            }
            bus.listening.store(false, Ordering::Release);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_carries_what_went_stale_and_an_instance_skips_its_own() {
        let mut stale = Stale::default();
        stale.sessions = true;
        stale.api_keys = true;
        let m = Message::of(&stale);
        assert_eq!(m.0, "sk");
        let mut transit = Stale::default();
        transit.transit = true;
        assert!(parse(&format!("other {}", Message::of(&transit).0), "me").expect("heard").transit);
        let got = parse(&format!("other {}", m.0), "me").expect("another instance's notice");
        assert!(got.sessions && got.api_keys && !got.accounts && !got.roles);
        assert!(parse(&format!("me {}", m.0), "me").is_none(), "its own");
        assert!(parse("other sx", "me").is_none(), "not ours");
        assert!(parse("garbage", "me").is_none());
    }
}
