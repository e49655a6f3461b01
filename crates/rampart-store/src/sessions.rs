//! Sessions and their refresh tokens.
//!
//! Refresh rotation is a compare-and-swap on the presented token's `used_at`: of any number of
//! concurrent exchanges of one token exactly one sees it unused. Every other presentation of a
//! used token is reuse (RFC 9700 §4.14.2): the whole session is revoked, in the same
//! transaction as the critical event that says so.

use crate::ts::Ts;
use crate::tx::Cache;
use crate::{Result, Store, with_pool, with_tx};
use rampart_domain::{SecurityEvent, Session, SessionId, SessionPolicy, TokenHash, UserId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which of a user's sessions a change revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeSessions {
    None,
    All,
    AllExcept(SessionId),
}

/// What became of a refresh-token exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used, and the new one belongs to this session.
    Rotated(Session),
    /// The token had been used before: its session is now revoked.
    Reused(Session),
    /// The token is current but its session is revoked or expired.
    Inactive(Session),
    /// No such token.
    Unknown,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created_at: OffsetDateTime,
    last_active_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    ip: Option<String>,
    user_agent: Option<String>,
    amr: Json<Vec<rampart_domain::mfa::Amr>>,
    revoked_at: Option<OffsetDateTime>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session {
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            created_at: r.created_at,
            last_active_at: r.last_active_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            ip: r.ip,
            user_agent: r.user_agent,
            amr: r.amr.0,
            revoked_at: r.revoked_at,
        }
    }
}

const SESSION_COLUMNS: &str = "id, user_id, created_at, last_active_at, idle_expires_at, absolute_expires_at, \
     ip, user_agent, amr, revoked_at";

impl Store {
    /// Stores a new session with its first refresh token and/or cookie hash, clears the login
    /// throttle of `clear_throttle` (the identifier that just proved its password), and records
    /// `event`, in one transaction.
    pub async fn create_session(
        &self,
        s: &Session,
        refresh: Option<TokenHash>,
        cookie: Option<TokenHash>,
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, last_active_at, idle_expires_at, absolute_expires_at, \
                 ip, user_agent, amr, cookie_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(s.id.0)
            .bind(s.user_id.0)
            .bind(Ts(s.created_at))
            .bind(Ts(s.last_active_at))
            .bind(Ts(s.idle_expires_at))
            .bind(Ts(s.absolute_expires_at))
            .bind(s.ip.as_deref())
            .bind(s.user_agent.as_deref())
            .bind(Json(&s.amr))
            .bind(cookie.as_ref().map(|h| h.0.to_vec()))
            .execute(&mut *tx)
            .await?;
            if let Some(h) = refresh {
                sqlx::query("INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(h.0.to_vec())
                    .bind(s.id.0)
                    .bind(Ts(s.created_at))
                    .execute(&mut *tx)
                    .await?;
            }
            // The user list's "last sign-in" (the console's filters and column). Not part of the
            // cached account (`Store::account`), so no cache is made stale by it.
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                .bind(Ts(s.created_at))
                .bind(s.user_id.0)
                .execute(&mut *tx)
                .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// The session with this id: from memory while the session cache can answer (see
    /// `cache`), else from the database.
    pub async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        if let Some(s) = self.sessions.get(id) {
            return Ok(Some(s));
        }
        let epoch = self.sessions.epoch();
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let row: Option<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await)?;
        let session = row.map(Session::from);
        if let Some(s) = &session {
            self.sessions.put(s.id, s, epoch);
        }
        Ok(session)
    }

    /// The session a browser cookie (by its hash) belongs to.
    pub async fn session_by_cookie(&self, hash: TokenHash) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE cookie_hash = $1");
        let row: Option<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(hash.0.to_vec()).fetch_optional(pool).await)?;
        Ok(row.map(Session::from))
    }

    /// Records activity: moves `last_active_at` and the idle expiry (only of a live session).
    pub async fn touch_session(
        &self,
        id: SessionId,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET last_active_at = $1, idle_expires_at = $2 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(Ts(now))
            .bind(Ts(idle_expires_at))
            .bind(id.0)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.sessions.forget(id);
        Ok(())
    }

    /// A user's live sessions at `now`, newest first.
    pub async fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND idle_expires_at > $2 AND absolute_expires_at > $2 ORDER BY created_at DESC"
        );
        let rows: Vec<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(user.0).bind(Ts(now)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    /// Revokes one session of `user` (another user's id matches nothing), recording `event`
    /// when something was revoked. Returns whether it was.
    pub async fn revoke_session(
        &self,
        user: UserId,
        id: SessionId,
        now: OffsetDateTime,
        reason: &str,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx
                .swap_and_record(
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
                         WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL",
                    )
                    .bind(Ts(now))
                    .bind(reason)
                    .bind(id.0)
                    .bind(user.0),
                    event,
                )
                .await?;
            if done {
                tx.invalidates(Cache::Sessions);
            }
            done
        });
        Ok(done)
    }

    /// Revokes sessions of `user` as `which` says, with `event`; returns how many.
    pub async fn revoke_sessions(
        &self,
        user: UserId,
        which: RevokeSessions,
        now: OffsetDateTime,
        reason: &str,
        event: &SecurityEvent,
    ) -> Result<u64> {
        let n = with_tx!(self, |tx| {
            let n = tx.revoke_sessions(user, which, now, reason).await?;
            tx.insert_event(event).await?;
            n
        });
        Ok(n)
    }

    /// Exchanges the refresh token hashed `presented` for `next`: see [`RefreshOutcome`].
    /// `event` builds the event of a rotation or a reuse, which is written in the same
    /// transaction and returned for logging.
    pub async fn refresh_session(
        &self,
        presented: TokenHash,
        next: TokenHash,
        now: OffsetDateTime,
        policy: SessionPolicy,
        event: impl Fn(&RefreshOutcome) -> Option<SecurityEvent>,
    ) -> Result<(RefreshOutcome, Option<SecurityEvent>)> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let out = with_tx!(self, |tx| {
            let found: Option<(Uuid,)> = sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE hash = $1")
                .bind(presented.0.to_vec())
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match found {
                None => RefreshOutcome::Unknown,
                Some((session_id,)) => {
                    // The compare-and-swap: only one exchange finds the token unused.
                    let won = tx
                        .swapped(
                            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL")
                                .bind(Ts(now))
                                .bind(presented.0.to_vec()),
                        )
                        .await?;
                    let row: SessionRow = sqlx::query_as(&sql).bind(session_id).fetch_one(&mut *tx).await?;
                    let mut session = Session::from(row);
                    if !won {
                        if session.revoked_at.is_none() {
                            sqlx::query(
                                "UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_token_reused' \
                                 WHERE id = $2 AND revoked_at IS NULL",
                            )
                            .bind(Ts(now))
                            .bind(session_id)
                            .execute(&mut *tx)
                            .await?;
                            session.revoked_at = Some(now);
                            tx.invalidates(Cache::Sessions);
                        }
                        RefreshOutcome::Reused(session)
                    } else {
                        // Liveness is checked by the write itself, which also locks the session
                        // row: a revocation committed meanwhile (or a disabled owner) wins. The
                        // owner is looked up by key (EXISTS): as `user_id IN (SELECT …)`, SQLite
                        // built the list of every enabled user for each refresh (issue 24's
                        // growth run: 1.4 ms at 1k users, 40 ms at 100k).
                        let idle = policy.extend(&session, now);
                        let live = tx
                            .swapped(
                                sqlx::query(
                                    "UPDATE sessions SET last_active_at = $1, idle_expires_at = $2 WHERE id = $3 \
                                     AND revoked_at IS NULL AND idle_expires_at > $1 AND absolute_expires_at > $1 \
                                     AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND NOT u.disabled)",
                                )
                                .bind(Ts(now))
                                .bind(Ts(idle))
                                .bind(session_id),
                            )
                            .await?;
                        if live {
                            sqlx::query(
                                "INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)",
                            )
                            .bind(next.0.to_vec())
                            .bind(session_id)
                            .bind(Ts(now))
                            .execute(&mut *tx)
                            .await?;
                            session.idle_expires_at = idle;
                            session.last_active_at = now;
                            tx.invalidates(Cache::Session(session.id)); // its idle expiry moved
                            RefreshOutcome::Rotated(session)
                        } else {
                            // The token is spent all the same, and the refusal is recorded.
                            RefreshOutcome::Inactive(session)
                        }
                    }
                }
            };
            let ev = event(&outcome);
            if let Some(ev) = &ev {
                tx.insert_event(ev).await?;
            }
            (outcome, ev)
        });
        Ok(out)
    }
}

impl Store {
    /// Deletes what can no longer be used: refresh tokens of sessions that ended more than
    /// `keep` ago (with those sessions), and account tokens expired more than `keep` ago.
    pub async fn purge_ended(&self, now: OffsetDateTime, keep: time::Duration) -> Result<u64> {
        let before = Ts(now - keep);
        let n = with_tx!(self, |tx| {
            let sessions = sqlx::query(
                "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
                 OR idle_expires_at < $1 OR absolute_expires_at < $1",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let tokens = sqlx::query("DELETE FROM account_tokens WHERE expires_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sessions + tokens
        });
        Ok(n)
    }

    /// The session of a refresh token that is still unused (for introspection).
    pub async fn refresh_token_session(&self, hash: TokenHash) -> Result<Option<Session>> {
        let sql = format!(
            "SELECT {} FROM sessions s JOIN refresh_tokens r ON r.session_id = s.id \
             WHERE r.hash = $1 AND r.used_at IS NULL",
            SESSION_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ")
        );
        let row: Option<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(hash.0.to_vec()).fetch_optional(pool).await)?;
        Ok(row.map(Session::from))
    }
}
