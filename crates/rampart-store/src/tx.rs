//! Write transactions: [`Tx`], what a [`with_tx!`](crate::with_tx) body works in, and how the
//! body's result ends it.
//!
//! - The body evaluates to a value, which commits; the only other ways out are an error (`?`,
//!   `return Err(…)`), which rolls back, and `return Ok(Finish::Rollback(v))` or
//!   `return Ok(Finish::Commit(v))`, which say what they do. A bare `return Ok(v)` does not
//!   compile (the body's block returns `Result<Finish<T>>`), so no early return can commit by
//!   accident, skipping the event the rest of the body would have written.
//! - The body declares what its writes make stale in the store's caches
//!   ([`Tx::invalidates`]); the declarations apply right after the commit, never on rollback.
//! - The helpers shared by several modules' transactions are plain generic methods here: the
//!   event append ([`Tx::insert_event`], always the last write), the compare-and-swap
//!   ([`Tx::swapped`], [`Tx::swap_and_record`]), session revocation, password change.

use crate::ts::Ts;
use crate::{Result, RevokeSessions, Store, StoreError};
use rampart_domain::audit::AuditKeys;
use rampart_domain::{SecurityEvent, SessionId, UserId};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Type};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// A cache (or one entry of it) a write makes stale; see `cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    /// Session rows changed (revoked or deleted): every cached session is dropped.
    Sessions,
    /// One session's activity times moved: only its entry is dropped.
    Session(SessionId),
    /// A user row, their roles or their second factors changed: every cached account is dropped.
    Accounts,
    /// What a role grants changed (a role created, changed or deleted): answers derived from
    /// permissions (the gateway's decision cache) are dropped.
    Roles,
    /// An API key was revoked, rotated or changed: the verify path's cached keys are dropped.
    ApiKeys,
    /// The token signing keys were rotated: every instance re-reads its key ring.
    SigningKeys,
    /// A transit key was created, rotated, configured or deleted: cached transit keys are dropped.
    Transit,
}

/// What the writes of one transaction made stale, applied when it commits.
#[derive(Debug, Default)]
pub(crate) struct Stale {
    pub(crate) sessions: bool,
    pub(crate) accounts: bool,
    pub(crate) roles: bool,
    pub(crate) api_keys: bool,
    pub(crate) signing_keys: bool,
    pub(crate) transit: bool,
    session_entries: Vec<SessionId>,
}

impl Stale {
    /// Everything (what another instance may have changed while its news were lost).
    pub(crate) fn all() -> Stale {
        Stale {
            sessions: true,
            accounts: true,
            roles: true,
            api_keys: true,
            signing_keys: true,
            transit: true,
            session_entries: Vec::new(),
        }
    }

    /// Whether other instances must hear of it (an entry's activity times need not).
    pub(crate) fn shared(&self) -> bool {
        self.sessions || self.accounts || self.roles || self.api_keys || self.signing_keys || self.transit
    }

    pub(crate) fn apply(self, store: &Store) {
        if self.sessions {
            store.sessions.changed();
        }
        for id in self.session_entries {
            store.sessions.forget(id);
        }
        if self.accounts {
            store.accounts.changed();
        }
        if self.roles {
            store.roles_epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if self.api_keys {
            store.api_keys_epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if self.signing_keys {
            store.signing_epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if self.transit {
            store.transit_epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// How a transaction body ends: with a value, committing or rolling back.
#[derive(Debug)]
pub(crate) enum Finish<T> {
    Commit(T),
    /// Nothing the body wrote stays (it found nothing to do, or refused).
    Rollback(T),
}

/// The open write transaction of a `with_tx!` body. `&mut *tx` is its connection, for queries.
pub(crate) struct Tx<'c, DB: Database> {
    inner: sqlx::Transaction<'c, DB>,
    stale: Stale,
    /// The keys an appended event is linked under.
    audit: Arc<AuditKeys>,
}

impl<'c, DB: Database> Deref for Tx<'c, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.inner
    }
}

impl<'c, DB: Database> DerefMut for Tx<'c, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.inner
    }
}

impl<DB: Database> Tx<'static, DB> {
    /// Begins a transaction with `statement` (SQLite: `BEGIN IMMEDIATE`, which takes the write
    /// lock up front; a deferred `BEGIN` that reads and then writes fails at once with
    /// "database is locked" when another writer got in between, without waiting for the busy
    /// timeout) or the backend's plain `BEGIN`.
    pub(crate) async fn begin(
        pool: &Pool<DB>,
        statement: Option<&'static str>,
        audit: &Arc<AuditKeys>,
    ) -> Result<Self> {
        let inner = match statement {
            Some(s) => pool.begin_with(s).await?,
            None => pool.begin().await?,
        };
        Ok(Tx { inner, stale: Stale::default(), audit: Arc::clone(audit) })
    }
}

impl<'c, DB: Database> Tx<'c, DB> {
    /// Declares that this transaction's writes make `cache` stale (applied if it commits).
    pub(crate) fn invalidates(&mut self, cache: Cache) {
        match cache {
            Cache::Sessions => self.stale.sessions = true,
            Cache::Session(id) => self.stale.session_entries.push(id),
            Cache::Accounts => self.stale.accounts = true,
            Cache::Roles => self.stale.roles = true,
            Cache::ApiKeys => self.stale.api_keys = true,
            Cache::SigningKeys => self.stale.signing_keys = true,
            Cache::Transit => self.stale.transit = true,
        }
    }

    /// Ends the transaction as the body's `result` says: commits, then marks the declared
    /// caches stale; or rolls back at once (dropping it would only queue the rollback until the
    /// connection is next used, leaving its locks held meanwhile).
    pub(crate) async fn finish<T>(self, store: &Store, result: Result<Finish<T>>) -> Result<T> {
        let (rollback, out) = match result {
            Ok(Finish::Commit(v)) => {
                self.inner.commit().await?;
                let shared = self.stale.shared().then(|| crate::bus::Message::of(&self.stale));
                self.stale.apply(store);
                if let Some(m) = shared {
                    store.publish(m).await;
                }
                return Ok(v);
            }
            Ok(Finish::Rollback(v)) => (self.inner.rollback().await, Ok(v)),
            Err(e) => (self.inner.rollback().await, Err(e)),
        };
        if let Err(e) = rollback {
            tracing::warn!(error = %e, "rollback failed; the connection will be discarded");
        }
        out
    }
}

/// `rows_affected` of either backend's query result.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The shared helpers, for every backend whose types encode as these queries need (both do).
impl<'c, DB> Tx<'c, DB>
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Ts: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<serde_json::Value>: Encode<'q, DB> + Type<DB>,
    for<'r> (Vec<u8>, Vec<u8>): sqlx::FromRow<'r, DB::Row>,
    for<'r> (Option<Vec<u8>>,): sqlx::FromRow<'r, DB::Row>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
{
    /// Runs a statement, returning how many rows it changed.
    pub(crate) async fn execute<'q, A>(&mut self, q: Query<'q, DB, A>) -> Result<u64>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        Ok(q.execute(&mut **self).await?.rows_affected())
    }

    /// The compare-and-swap: runs `guarded`, an `UPDATE` or `DELETE` whose `WHERE` states what
    /// the row must still be, and says whether it changed exactly that one row. When it did not,
    /// the expected state was gone (a concurrent change won, or there was no such row) and
    /// nothing was written.
    pub(crate) async fn swapped<'q, A>(&mut self, guarded: Query<'q, DB, A>) -> Result<bool>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        Ok(self.execute(guarded).await? == 1)
    }

    /// [`Tx::swapped`], recording `event` (as the last write) when the swap happened.
    pub(crate) async fn swap_and_record<'q, A>(
        &mut self,
        guarded: Query<'q, DB, A>,
        event: &SecurityEvent,
    ) -> Result<bool>
    where
        A: IntoArguments<'q, DB> + 'q,
    {
        let swapped = self.swapped(guarded).await?;
        if swapped {
            self.insert_event(event).await?;
        }
        Ok(swapped)
    }

    /// Appends one event to the hash chain: locks the chain head (the row lock serializes
    /// appenders across instances on PostgreSQL; SQLite write transactions are serial
    /// already), links the event to it and to the newest checkpoint (an HMAC under the audit
    /// chain key), inserts it and moves the head, then queues its webhook deliveries. Every store
    /// method calls this last in its transaction, so the head lock is always the last lock
    /// taken and appenders cannot deadlock.
    pub(crate) async fn insert_event(&mut self, e: &SecurityEvent) -> Result<()> {
        let (stored, ip_tag) = self.personal_form(e).await?;
        let e: &SecurityEvent = &stored;
        let (prev, checkpoint_mac): (Vec<u8>, Vec<u8>) =
            sqlx::query_as("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash, checkpoint_mac")
                .fetch_one(&mut **self)
                .await?;
        let corrupt = || StoreError::Corrupt("audit chain head is not 32 bytes".into());
        let prev: [u8; 32] = prev.try_into().map_err(|_| corrupt())?;
        let checkpoint_mac: [u8; 32] = checkpoint_mac.try_into().map_err(|_| corrupt())?;
        let hash = self.audit.link(&prev, &checkpoint_mac, e);
        sqlx::query(
            "INSERT INTO audit_events (id, ts, action, outcome, severity, actor_type, actor_id, \
             resource_type, resource_id, ip, user_agent, request_id, details, prev_hash, hash, personal, ip_tag) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(e.id)
        .bind(Ts(e.ts))
        .bind(e.action.as_str().to_string())
        .bind(e.outcome.as_str().to_string())
        .bind(e.severity.as_str().to_string())
        .bind(e.actor.kind().to_string())
        .bind(e.actor.id())
        .bind(e.resource.as_ref().map(|r| r.kind.clone()))
        .bind(e.resource.as_ref().and_then(|r| r.id.clone()))
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.clone())
        .bind(e.request_id.clone())
        .bind(Json(e.details.clone()))
        .bind(prev.to_vec())
        .bind(hash.to_vec())
        .bind(e.sealed_personal.clone())
        .bind(ip_tag)
        .execute(&mut **self)
        .await?;
        self.execute(sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(hash.to_vec())).await?;
        // The event's webhook deliveries, in the same transaction (the outbox, migration 0018):
        // a row for every enabled endpoint with a filter taking this action. A test event goes
        // to the one endpoint tested, which its own use case queues.
        if e.action != rampart_domain::Action::WebhookTest {
            self.execute(
                sqlx::query(crate::webhooks::FAN_OUT).bind(e.id).bind(Ts(e.ts)).bind(e.action.as_str().to_string()),
            )
            .await?;
        }
        // The security notice the event gives rise to, if any, in the same transaction (the mail
        // outbox, migration 0019). One per event at most, so the row takes the event's id.
        if let Some((kind, user)) = rampart_domain::notice::notice_for(e) {
            self.execute(
                sqlx::query(crate::notifications::NOTICE)
                    .bind(e.id)
                    .bind(kind.as_str().to_string())
                    .bind(e.id)
                    .bind(Ts(e.ts))
                    .bind(user),
            )
            .await?;
        }
        Ok(())
    }

    /// Appends `events` to the hash chain in order, as [`Tx::insert_event`] would one by one
    /// (same head lock, same links), but with one head read and write and multi-row inserts:
    /// for bulk loads (imports, the growth benchmark's seeding), not for the request path; they
    /// queue no webhook deliveries.
    pub(crate) async fn insert_events(&mut self, events: &[SecurityEvent]) -> Result<()> {
        /// Rows per INSERT: 17 parameters each stays under both backends' parameter limits.
        const ROWS: usize = 1000;
        let mut stored = Vec::with_capacity(events.len());
        for e in events {
            stored.push(self.personal_form(e).await?);
        }
        let (prev, checkpoint_mac): (Vec<u8>, Vec<u8>) =
            sqlx::query_as("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash, checkpoint_mac")
                .fetch_one(&mut **self)
                .await?;
        let corrupt = || StoreError::Corrupt("audit chain head is not 32 bytes".into());
        let mut prev: [u8; 32] = prev.try_into().map_err(|_| corrupt())?;
        let checkpoint_mac: [u8; 32] = checkpoint_mac.try_into().map_err(|_| corrupt())?;
        for chunk in stored.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO audit_events (id, ts, action, outcome, severity, actor_type, actor_id, \
                 resource_type, resource_id, ip, user_agent, request_id, details, prev_hash, hash, personal, ip_tag) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 17;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(&(1..=17).map(|k| format!("${}", b + k)).collect::<Vec<_>>().join(", "));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for (e, ip_tag) in chunk {
                let hash = self.audit.link(&prev, &checkpoint_mac, e);
                q = q
                    .bind(e.id)
                    .bind(Ts(e.ts))
                    .bind(e.action.as_str().to_string())
                    .bind(e.outcome.as_str().to_string())
                    .bind(e.severity.as_str().to_string())
                    .bind(e.actor.kind().to_string())
                    .bind(e.actor.id())
                    .bind(e.resource.as_ref().map(|r| r.kind.clone()))
                    .bind(e.resource.as_ref().and_then(|r| r.id.clone()))
                    .bind(e.ip.map(|ip| ip.to_string()))
                    .bind(e.user_agent.clone())
                    .bind(e.request_id.clone())
                    .bind(Json(e.details.clone()))
                    .bind(prev.to_vec())
                    .bind(hash.to_vec())
                    .bind(e.sealed_personal.clone())
                    .bind(ip_tag.clone());
                prev = hash;
            }
            self.execute(q).await?;
        }
        self.execute(sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(prev.to_vec())).await?;
        Ok(())
    }

    /// The form an event is stored in: a user actor's personal fields sealed under their person
    /// key (created on their first such event), or dropped when that user has been erased; with
    /// the address tag that keeps a sealed event findable by address.
    /// Borrowed when nothing is sealed (most events): no copy on the append path.
    async fn personal_form<'e>(
        &mut self,
        e: &'e SecurityEvent,
    ) -> Result<(std::borrow::Cow<'e, SecurityEvent>, Option<Vec<u8>>)> {
        use rampart_domain::personal;
        use std::borrow::Cow;
        let Some(user) = personal::subject(e).filter(|_| personal::has_personal_fields(e)) else {
            return Ok((Cow::Borrowed(e), None));
        };
        let mut stored = e.clone();
        match self.person_key(user, e.ts).await? {
            Some(key) => {
                let tag = e.ip.map(|ip| self.audit.ip_tag(ip).to_vec());
                personal::seal(&mut stored, &key, &mut rand::rngs::OsRng);
                Ok((Cow::Owned(stored), tag))
            }
            None => {
                personal::drop_personal(&mut stored);
                Ok((Cow::Owned(stored), None))
            }
        }
    }

    /// `user`'s person key from the table, created if they have none; `None` once erased.
    ///
    /// Read in the appending transaction every time, never from a cache: an instance that kept
    /// a key would go on sealing (and tagging) under it after another instance erased the
    /// person. On PostgreSQL the read takes a share lock on the key's row, so an erasure either
    /// committed before (the key is gone: the fields are dropped) or waits for this append to
    /// commit and then clears its address tag with the others'; SQLite's writers are serial.
    async fn person_key(
        &mut self,
        user: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<rampart_domain::personal::PersonKey>> {
        let read = |row: Option<(Option<Vec<u8>>,)>, audit: &AuditKeys| -> Result<Option<Option<_>>> {
            match row {
                None => Ok(None),
                Some((None,)) => Ok(Some(None)),
                Some((Some(w),)) => audit
                    .unwrap_person_key(user, &w)
                    .map(|k| Some(Some(k)))
                    .ok_or_else(|| StoreError::Corrupt(format!("person key of {user} does not open"))),
            }
        };
        let select = if DB::NAME == "PostgreSQL" {
            "SELECT wrapped FROM person_keys WHERE user_id = $1 FOR SHARE"
        } else {
            "SELECT wrapped FROM person_keys WHERE user_id = $1"
        };
        let row = sqlx::query_as(select).bind(user).fetch_optional(&mut **self).await?;
        if let Some(found) = read(row, &self.audit)? {
            return Ok(found);
        }
        let key = rampart_domain::personal::new_key(&mut rand::rngs::OsRng);
        let wrapped = self.audit.wrap_person_key(user, &key, &mut rand::rngs::OsRng);
        let inserted = self
            .execute(
                sqlx::query(
                    "INSERT INTO person_keys (user_id, wrapped, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user)
                .bind(Some(wrapped))
                .bind(Ts(now)),
            )
            .await?;
        if inserted == 1 {
            return Ok(Some(key));
        }
        // Another writer's key won the race: use theirs.
        let row = sqlx::query_as(select).bind(user).fetch_optional(&mut **self).await?;
        Ok(read(row, &self.audit)?.flatten())
    }

    /// Revokes a user's sessions as `which` says; returns how many (and, if any, declares the
    /// session cache stale).
    pub(crate) async fn revoke_sessions(
        &mut self,
        user: UserId,
        which: RevokeSessions,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<u64> {
        let base = "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL";
        let sql = match which {
            RevokeSessions::None => return Ok(0),
            RevokeSessions::All => base.to_string(),
            RevokeSessions::AllExcept(_) => format!("{base} AND id <> $4"),
        };
        let mut q = sqlx::query(&sql).bind(Ts(now)).bind(reason.to_string()).bind(user.0);
        if let RevokeSessions::AllExcept(keep) = which {
            q = q.bind(keep.0);
        }
        let n = self.execute(q).await?;
        if n > 0 {
            self.invalidates(Cache::Sessions);
        }
        Ok(n)
    }

    /// Sets a user's password, moving the old hash to the history (which keeps at most 24).
    /// `false` when there is no such user.
    pub(crate) async fn set_password(&mut self, user: UserId, hash: &str, now: OffsetDateTime) -> Result<bool> {
        self.execute(
            sqlx::query(
                "INSERT INTO password_history (user_id, password_hash, created_at) \
                 SELECT id, password_hash, $2 FROM users WHERE id = $1 AND password_hash IS NOT NULL",
            )
            .bind(user.0)
            .bind(Ts(now)),
        )
        .await?;
        self.execute(
            sqlx::query(
                "DELETE FROM password_history WHERE user_id = $1 AND created_at NOT IN \
                 (SELECT created_at FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT 24)",
            )
            .bind(user.0),
        )
        .await?;
        let found = self
            .swapped(
                sqlx::query(
                    "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
                )
                .bind(hash.to_string())
                .bind(Ts(now))
                .bind(user.0),
            )
            .await?;
        if found {
            self.invalidates(Cache::Accounts);
        }
        Ok(found)
    }

    /// Voids a user's unused password tokens (reset and expired-password): a password set any
    /// other way must not leave an older reset link working.
    pub(crate) async fn void_password_tokens(&mut self, user: UserId, now: OffsetDateTime) -> Result<u64> {
        self.execute(
            sqlx::query(
                "UPDATE account_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL \
                 AND purpose IN ('reset_password', 'expired_password')",
            )
            .bind(Ts(now))
            .bind(user.0),
        )
        .await
    }
}
