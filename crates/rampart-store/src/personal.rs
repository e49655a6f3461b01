//! Personal data in audit events (migration 0023, `rampart_domain::personal`): each user's data
//! key (`person_keys`), the sealing of an event's personal fields when it is appended, their
//! revealing when events are read, and erasure, which destroys the key.

use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Result, Store, StoredEvent, with_pool, with_tx};
use rampart_domain::personal::{self, PersonKey};
use rampart_domain::{SecurityEvent, UserId};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    /// The keyed tag of an address (hex), as sealed events are searched by: what a record of a
    /// search by address keeps instead of the address.
    pub fn ip_tag(&self, ip: std::net::IpAddr) -> String {
        hex::encode(self.audit.ip_tag(ip))
    }

    /// Opens the sealed personal fields of `events` with their subjects' keys (one read of
    /// `person_keys` for the lot); an erased subject's fields read as erased.
    pub(crate) async fn reveal(&self, mut events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>> {
        let mut subjects: Vec<Uuid> = events
            .iter()
            .filter(|e| e.event.sealed_personal.is_some())
            .filter_map(|e| personal::subject(&e.event))
            .collect();
        if subjects.is_empty() {
            return Ok(events);
        }
        subjects.sort_unstable();
        subjects.dedup();
        let mut keys: HashMap<Uuid, PersonKey> = HashMap::new();
        for chunk in subjects.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT user_id, wrapped FROM person_keys WHERE wrapped IS NOT NULL AND user_id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(Uuid, Vec<u8>)> = with_pool!(self, |pool| {
                let mut q = sqlx::query_as(&sql);
                for u in chunk {
                    q = q.bind(*u);
                }
                q.fetch_all(pool).await
            })?;
            for (user, wrapped) in rows {
                if let Some(k) = self.audit.unwrap_person_key(user, &wrapped) {
                    keys.insert(user, k);
                }
            }
        }
        for e in &mut events {
            let key = personal::subject(&e.event).and_then(|u| keys.get(&u));
            personal::reveal(&mut e.event, key);
        }
        Ok(events)
    }

    /// Asks for `user`'s erasure: the account is disabled and its sessions end now; it is erased
    /// at `erase_after` ([`Store::erase_user`]). False when there is no such user or an erasure
    /// is already scheduled.
    pub async fn schedule_erasure(
        &self,
        user: UserId,
        erase_after: OffsetDateTime,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let swapped = tx
                .swapped(
                    sqlx::query(
                        "UPDATE users SET disabled = TRUE, erase_after = $2, updated_at = $3 \
                         WHERE id = $1 AND erase_after IS NULL",
                    )
                    .bind(user.0)
                    .bind(Ts(erase_after))
                    .bind(Ts(now)),
                )
                .await?;
            if !swapped {
                return Ok(Finish::Rollback(false));
            }
            tx.revoke_sessions(user, crate::RevokeSessions::All, now, "erasure").await?;
            tx.invalidates(Cache::Accounts);
            tx.invalidates(Cache::ApiKeys);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Takes back a scheduled erasure before it is done: the account is enabled again.
    pub async fn restore_user(&self, user: UserId, now: OffsetDateTime, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swap_and_record(
                    sqlx::query(
                        "UPDATE users SET disabled = FALSE, erase_after = NULL, updated_at = $2 \
                         WHERE id = $1 AND erase_after IS NOT NULL AND erase_after > $2",
                    )
                    .bind(user.0)
                    .bind(Ts(now)),
                    event,
                )
                .await?;
            if done {
                tx.invalidates(Cache::Accounts);
                tx.invalidates(Cache::ApiKeys);
            }
            done
        });
        Ok(done)
    }

    /// When `user`'s scheduled erasure is due (`None`: none scheduled).
    pub async fn erasure_due(&self, user: UserId) -> Result<Option<OffsetDateTime>> {
        let row: Option<(Option<OffsetDateTime>,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT erase_after FROM users WHERE id = $1").bind(user.0).fetch_optional(pool).await
        })?;
        Ok(row.and_then(|(t,)| t))
    }

    /// Moves a scheduled erasure to `now` (an administrator's immediate erasure).
    pub async fn erase_now(&self, user: UserId, now: OffsetDateTime) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swapped(
                sqlx::query("UPDATE users SET erase_after = $2 WHERE id = $1 AND erase_after IS NOT NULL")
                    .bind(user.0)
                    .bind(Ts(now)),
            )
            .await?
        });
        Ok(done)
    }

    /// Users whose erasure is due at `now`, oldest first, at most `limit`.
    pub async fn users_due_for_erasure(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<UserId>> {
        let rows: Vec<(Uuid,)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM users WHERE erase_after IS NOT NULL AND erase_after <= $1 ORDER BY erase_after LIMIT $2",
            )
            .bind(Ts(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(u,)| UserId(u)).collect())
    }

    /// Erases a user whose erasure is due at `now`: the account row and everything that hangs
    /// off it go, their person key is destroyed (the row stays as a tombstone), and the address
    /// tags of their events are cleared; their events stay in the chain with their personal
    /// fields unreadable. `event` (`user.deleted`) is recorded. False when the user is gone or
    /// not due (restored meanwhile).
    pub async fn erase_user(&self, user: UserId, now: OffsetDateTime, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let swapped = tx
                .swapped(
                    sqlx::query("DELETE FROM users WHERE id = $1 AND erase_after IS NOT NULL AND erase_after <= $2")
                        .bind(user.0)
                        .bind(Ts(now)),
                )
                .await?;
            if !swapped {
                return Ok(Finish::Rollback(false));
            }
            tx.execute(
                sqlx::query(
                    "INSERT INTO person_keys (user_id, wrapped, created_at, erased_at) VALUES ($1, NULL, $2, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, erased_at = excluded.erased_at",
                )
                .bind(user.0)
                .bind(Ts(now)),
            )
            .await?;
            tx.execute(
                sqlx::query(
                    "UPDATE audit_events SET ip_tag = NULL WHERE ip_tag IS NOT NULL AND (actor_id = $1 \
                     OR (actor_type = 'anonymous' AND resource_type = 'user' AND resource_id = $2))",
                )
                .bind(user.0)
                .bind(user.0.to_string()),
            )
            .await?;
            tx.invalidates(Cache::Sessions);
            tx.invalidates(Cache::Accounts);
            tx.invalidates(Cache::ApiKeys);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }
}
