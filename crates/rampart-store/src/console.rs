//! What the administrator's console reads and changes beyond the other modules: the user
//! search with its filters (keyset pages in id order), the dashboard's counts (live sessions,
//! second-factor adoption by role), a user's second factors reset at once, and API keys
//! across users.

use crate::api_keys::KEY_COLUMNS;
use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::users::UserRow;
use crate::{Param, Result, Store, StoredApiKey, with_pool, with_tx};
use rampart_domain::{SecurityEvent, User, UserId};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The user list's filters; each one set narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSearch {
    /// Part of the e-mail address or the name (case-insensitive).
    pub q: Option<String>,
    /// Holds this role.
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// Has a second factor (an enabled authenticator app or a passkey), or has none.
    pub mfa: Option<bool>,
    /// Last signed in at or after this time.
    pub signed_in_after: Option<OffsetDateTime>,
    /// Last signed in before this time, or never.
    pub signed_in_before: Option<OffsetDateTime>,
    /// Locked out of signing in now (a lockout that fell on the account), or not.
    pub locked: Option<bool>,
}

/// A user as the console lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub user: User,
    pub last_login_at: Option<OffsetDateTime>,
    /// An enabled authenticator app or a passkey.
    pub has_mfa: bool,
    /// Until when a sign-in lockout keeps the account out (`None`: not locked out now).
    pub locked_until: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct ConsoleRow {
    #[sqlx(flatten)]
    user: UserRow,
    last_login_at: Option<OffsetDateTime>,
    has_mfa: bool,
    locked_until: Option<OffsetDateTime>,
}

impl ConsoleRow {
    fn into_user(self, roles: Vec<String>) -> ConsoleUser {
        ConsoleUser {
            user: self.user.with_roles(roles),
            last_login_at: self.last_login_at,
            has_mfa: self.has_mfa,
            locked_until: self.locked_until,
        }
    }
}

/// How many users hold a role, and how many of them have a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAdoption {
    pub role: String,
    pub users: i64,
    pub with_factor: i64,
}

/// An API key with its owner's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwnerRow {
    pub key: StoredApiKey,
    pub owner_email: String,
}

/// The SQL of "has a second factor" for the user row `u`.
const HAS_MFA: &str = "(EXISTS (SELECT 1 FROM mfa_totp t WHERE t.user_id = u.id AND t.enabled_at IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id))";

/// The SQL of "locked out until" for the user row `u` at the time bound to `now` (a lockout
/// row names the account it fell on: `login_throttle.user_id`, migration 0015).
fn locked_until(now: &str) -> String {
    format!("(SELECT MAX(l.locked_until) FROM login_throttle l WHERE l.user_id = u.id AND l.locked_until > {now})")
}

/// `%q%` for LIKE, with LIKE's own characters escaped (`ESCAPE '\'`).
fn contains_pattern(q: &str) -> String {
    format!("%{}%", q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

impl Store {
    /// Users matching `search` at `now`, in id order (UUIDv7: creation order) after `after`,
    /// at most `limit`, and whether there are more. One query for the page and one for its
    /// roles.
    pub async fn search_users(
        &self,
        search: &UserSearch,
        after: Option<UserId>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<(Vec<ConsoleUser>, bool)> {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut p = |v: Param| {
            params.push(v);
            format!("${}", params.len())
        };
        let locked = locked_until(&p(Param::Ts(now)));
        if let Some(q) = search.q.as_deref().filter(|q| !q.trim().is_empty()) {
            clauses.push(self.user_matches("u", q.trim(), &mut p).await?);
        }
        if let Some(role) = &search.role {
            let n = p(Param::Text(role.clone()));
            clauses.push(format!("u.id IN (SELECT r.user_id FROM user_roles r WHERE r.role_name = {n})"));
        }
        if let Some(d) = search.disabled {
            clauses.push(format!("u.disabled = {}", p(Param::Bool(d))));
        }
        match search.mfa {
            Some(true) => clauses.push(HAS_MFA.to_string()),
            Some(false) => clauses.push(format!("NOT {HAS_MFA}")),
            None => {}
        }
        if let Some(t) = search.signed_in_after {
            clauses.push(format!("u.last_login_at >= {}", p(Param::Ts(t))));
        }
        if let Some(t) = search.signed_in_before {
            clauses.push(format!("(u.last_login_at IS NULL OR u.last_login_at < {})", p(Param::Ts(t))));
        }
        match search.locked {
            Some(true) => clauses.push(format!("{locked} IS NOT NULL")),
            Some(false) => clauses.push(format!("{locked} IS NULL")),
            None => {}
        }
        if let Some(a) = after {
            clauses.push(format!("u.id > {}", p(Param::Uuid(a.0))));
        }
        let limit_param = p(Param::Int(i64::from(limit) + 1));
        let filter = if clauses.is_empty() { "1 = 1".to_string() } else { clauses.join(" AND ") };
        let sql = format!(
            "SELECT u.id, u.email, u.name, u.email_verified, u.disabled, u.created_at, \
             COALESCE(u.password_changed_at, u.created_at) AS password_changed_at, u.last_login_at, \
             {HAS_MFA} AS has_mfa, {locked} AS locked_until FROM users u WHERE {filter} ORDER BY u.id \
             LIMIT {limit_param}"
        );
        // Not a prepared statement kept for reuse: its text varies with the candidates found.
        let rows: Vec<ConsoleRow> = with_pool!(self, |pool| {
            bind_params!(sqlx::query_as(&sql), &params).persistent(false).fetch_all(pool).await
        })?;
        let more = rows.len() > limit as usize;
        let rows: Vec<ConsoleRow> = rows.into_iter().take(limit as usize).collect();
        let mut roles = self.roles_of(&rows.iter().map(|r| r.user.id).collect::<Vec<_>>()).await?;
        let users = rows
            .into_iter()
            .map(|r| {
                let held = roles.remove(&r.user.id).unwrap_or_default();
                r.into_user(held)
            })
            .collect();
        Ok((users, more))
    }

    /// The roles of several users at once, each list sorted.
    async fn roles_of(&self, users: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>> {
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        if users.is_empty() {
            return Ok(out);
        }
        let params: Vec<Param> = users.iter().map(|u| Param::Uuid(*u)).collect();
        let list = (1..=users.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT user_id, role_name FROM user_roles WHERE user_id IN ({list}) ORDER BY role_name");
        let rows: Vec<(Uuid, String)> =
            with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        for (user, role) in rows {
            out.entry(user).or_default().push(role);
        }
        Ok(out)
    }

    /// One user as the console shows them at `now` (`None`: no such user).
    pub async fn console_user(&self, id: UserId, now: OffsetDateTime) -> Result<Option<ConsoleUser>> {
        let sql = format!(
            "SELECT u.id, u.email, u.name, u.email_verified, u.disabled, u.created_at, \
             COALESCE(u.password_changed_at, u.created_at) AS password_changed_at, u.last_login_at, \
             {HAS_MFA} AS has_mfa, {} AS locked_until FROM users u WHERE u.id = $1",
            locked_until("$2")
        );
        let row: Option<ConsoleRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id.0).bind(Ts(now)).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let roles = self.roles_of(&[id.0]).await?.remove(&id.0).unwrap_or_default();
        Ok(Some(row.into_user(roles)))
    }

    /// Sessions neither revoked nor expired at `now`, across all users.
    pub async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<i64> {
        let (n,): (i64,) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND idle_expires_at > $1 \
                 AND absolute_expires_at > $1",
            )
            .bind(Ts(now))
            .fetch_one(pool)
            .await
        })?;
        Ok(n)
    }

    /// For every role: its enabled holders, and how many of them have a second factor.
    pub async fn mfa_adoption_by_role(&self) -> Result<Vec<RoleAdoption>> {
        let sql = format!(
            "SELECT r.role_name, COUNT(*), COALESCE(SUM(CASE WHEN {HAS_MFA} THEN 1 ELSE 0 END), 0) \
             FROM user_roles r JOIN users u ON u.id = r.user_id WHERE NOT u.disabled \
             GROUP BY r.role_name ORDER BY r.role_name"
        );
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(role, users, with_factor)| RoleAdoption { role, users, with_factor }).collect())
    }

    /// Removes every second factor of `user` (authenticator app, backup codes, passkeys) and
    /// ends all their sessions, with `event`. `false` when they had none.
    pub async fn reset_factors(&self, user: UserId, now: OffsetDateTime, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let totp = tx.execute(sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1").bind(user.0)).await?;
            let codes = tx.execute(sqlx::query("DELETE FROM mfa_backup_codes WHERE user_id = $1").bind(user.0)).await?;
            let keys =
                tx.execute(sqlx::query("DELETE FROM webauthn_credentials WHERE user_id = $1").bind(user.0)).await?;
            if totp + codes + keys == 0 {
                return Ok(Finish::Rollback(false));
            }
            tx.revoke_sessions(user, crate::RevokeSessions::All, now, "mfa_reset").await?;
            tx.invalidates(Cache::Accounts);
            tx.insert_event(event).await?;
            true
        });
        Ok(done)
    }

    /// Live API keys of every user matching `search`, newest first (keyset pages by id,
    /// descending, before `before`), with their owner's address.
    pub async fn list_all_api_keys(
        &self,
        search: &KeySearch,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<(Vec<KeyOwnerRow>, bool)> {
        let mut clauses = vec!["k.revoked_at IS NULL".to_string()];
        let mut params: Vec<Param> = Vec::new();
        let mut p = |v: Param| {
            params.push(v);
            format!("${}", params.len())
        };
        if let Some(o) = search.owner.as_deref().filter(|o| !o.trim().is_empty()) {
            clauses.push(format!("u.email LIKE {} ESCAPE '\\'", p(Param::Text(contains_pattern(o.trim())))));
        }
        if let Some(scope) = search.scope.as_deref().filter(|s| !s.trim().is_empty()) {
            // The scopes are a JSON array of strings: a scope appears quoted in its text.
            let quoted = format!("\"{}\"", scope.trim());
            clauses
                .push(format!("CAST(k.scopes AS TEXT) LIKE {} ESCAPE '\\'", p(Param::Text(contains_pattern(&quoted)))));
        }
        if let Some(t) = search.expires_before {
            clauses.push(format!("(k.expires_at IS NOT NULL AND k.expires_at < {})", p(Param::Ts(t))));
        }
        if let Some(t) = search.unused_since {
            clauses.push(format!("(k.last_used_at IS NULL OR k.last_used_at < {})", p(Param::Ts(t))));
        }
        if let Some(b) = before {
            clauses.push(format!("k.id < {}", p(Param::Uuid(b))));
        }
        let limit_param = p(Param::Int(i64::from(limit) + 1));
        let cols = KEY_COLUMNS.split(',').map(|c| format!("k.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols}, u.email FROM api_keys k JOIN users u ON u.id = k.user_id WHERE {} \
             ORDER BY k.id DESC LIMIT {limit_param}",
            clauses.join(" AND "),
        );
        let rows: Vec<KeyWithOwner> =
            with_pool!(self, |pool| bind_params!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        let more = rows.len() > limit as usize;
        Ok((
            rows.into_iter().take(limit as usize).map(|r| KeyOwnerRow { key: r.key, owner_email: r.email }).collect(),
            more,
        ))
    }
}

/// The filters of the API keys across users; each one set narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySearch {
    /// Part of the owner's address.
    pub owner: Option<String>,
    /// Holds this scope exactly.
    pub scope: Option<String>,
    /// Expires before this time.
    pub expires_before: Option<OffsetDateTime>,
    /// Not used since this time (or never).
    pub unused_since: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct KeyWithOwner {
    #[sqlx(flatten)]
    key: StoredApiKey,
    email: String,
}
