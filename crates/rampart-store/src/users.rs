//! Users and roles.

use crate::error::is_unique_violation;
use crate::ts::Ts;
use crate::tx::{Cache, Finish};
use crate::{Param, Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::{Email, EmailLookup, NewUser, RoleName, SecurityEvent, User, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A role and the permissions (`resource:action`, `*` wildcards) it grants.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Role {
    pub name: String,
    pub description: String,
    #[sqlx(json)]
    pub permissions: Vec<String>,
    pub builtin: bool,
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: Uuid,
    email: String,
    name: Option<String>,
    email_verified: bool,
    disabled: bool,
    created_at: OffsetDateTime,
    password_changed_at: OffsetDateTime,
}

impl UserRow {
    pub(crate) fn with_roles(self, roles: Vec<String>) -> User {
        User {
            id: UserId(self.id),
            email: Email::from_stored(self.email),
            name: self.name,
            roles: roles.into_iter().map(RoleName::from_stored).collect(),
            email_verified: self.email_verified,
            disabled: self.disabled,
            created_at: self.created_at,
            password_changed_at: self.password_changed_at,
        }
    }
}

/// The row of an address: `$1` its normal form, `$2` its older stored form (or `$1` again);
/// the normal form wins when both exist.
const BY_EMAIL: &str = "WHERE email IN ($1, $2) ORDER BY CASE WHEN email = $1 THEN 0 ELSE 1 END LIMIT 1";

fn lookup_forms(email: &EmailLookup) -> (&str, &str) {
    let normal = email.normal().as_str();
    (normal, email.legacy().map_or(normal, |l| l.as_str()))
}

const USER_COLUMNS: &str = "id, email, name, email_verified, disabled, created_at, COALESCE(password_changed_at, created_at) AS password_changed_at";

impl Store {
    /// Creates the user with their roles, and records `event`, in one transaction.
    /// Fails with [`StoreError::EmailTaken`] or [`StoreError::UnknownRole`], leaving nothing behind.
    pub async fn create_user(&self, user: &NewUser, event: &SecurityEvent) -> Result<User> {
        let roles: Vec<String> = user.roles.iter().map(|r| r.as_str().to_string()).collect();
        with_tx!(self, |tx| {
            for role in &roles {
                let found: Option<(String,)> = sqlx::query_as("SELECT name FROM roles WHERE name = $1")
                    .bind(role)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(StoreError::UnknownRole(role.clone()));
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO users (id, email, name, password_hash, created_at, updated_at, password_changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $5)",
            )
            .bind(user.id.0)
            .bind(user.email.as_str())
            .bind(user.name.as_deref())
            .bind(user.password_hash.as_str())
            .bind(Ts(user.created_at))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::EmailTaken),
                other => other?,
            };
            for role in &roles {
                sqlx::query("INSERT INTO user_roles (user_id, role_name) VALUES ($1, $2)")
                    .bind(user.id.0)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.insert_event(event).await?;
        });
        let mut roles: Vec<RoleName> = roles.into_iter().map(RoleName::from_stored).collect();
        roles.sort();
        roles.dedup();
        Ok(User {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            roles,
            email_verified: false,
            disabled: false,
            created_at: user.created_at,
            password_changed_at: user.created_at,
        })
    }

    /// The account and its second-factor summary, as `GET /v1/me` shows them: from memory while
    /// the account cache can answer (see `cache`), else from the database.
    pub async fn account(&self, id: UserId) -> Result<Option<(User, crate::MfaStatus)>> {
        if let Some(found) = self.accounts.get(id) {
            return Ok(Some(found));
        }
        let epoch = self.accounts.epoch();
        let Some(user) = self.get_user(id).await? else { return Ok(None) };
        let found = (user, self.mfa_status(id).await?);
        self.accounts.put(id, &found, epoch);
        Ok(Some(found))
    }

    pub async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(&sql).bind(id.0).fetch_optional(pool).await)?;
        self.attach_roles(row).await
    }

    /// The account with this address: its normal form, else (for an account stored before
    /// addresses were normalised) the form it was stored in then. One round trip either way.
    pub async fn find_user_by_email(&self, email: impl Into<EmailLookup>) -> Result<Option<User>> {
        let email = email.into();
        let (normal, legacy) = lookup_forms(&email);
        let sql = format!("SELECT {USER_COLUMNS} FROM users {BY_EMAIL}");
        let row: Option<UserRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(normal).bind(legacy).fetch_optional(pool).await)?;
        self.attach_roles(row).await
    }

    /// For the login path: the id and password hash of the account with this address (as
    /// [`Store::find_user_by_email`] finds it), in one round trip (the same work as for an
    /// unknown address, which finds nothing).
    pub async fn login_candidate(&self, email: &EmailLookup) -> Result<Option<(UserId, Option<String>)>> {
        let (normal, legacy) = lookup_forms(email);
        let sql = format!("SELECT id, password_hash FROM users {BY_EMAIL}");
        let row: Option<(Uuid, Option<String>)> =
            with_pool!(self, |pool| { sqlx::query_as(&sql).bind(normal).bind(legacy).fetch_optional(pool).await })?;
        Ok(row.map(|(id, hash)| (UserId(id), hash)))
    }

    /// The stored password hash (PHC string) of a user, for the login path only.
    pub async fn password_hash(&self, id: UserId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1").bind(id.0).fetch_optional(pool).await
        })?;
        Ok(row.and_then(|(h,)| h))
    }

    /// The current password hash and up to `n - 1` previous ones, newest first: what a new
    /// password must differ from under a history rule of `n`.
    pub async fn recent_password_hashes(&self, id: UserId, n: usize) -> Result<Vec<String>> {
        let mut hashes: Vec<String> = self.password_hash(id).await?.into_iter().collect();
        if n > 1 {
            let older: Vec<(String,)> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
                )
                .bind(id.0)
                .bind(i64::try_from(n - 1).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
            })?;
            hashes.extend(older.into_iter().map(|(h,)| h));
        }
        Ok(hashes)
    }

    /// Replaces a hash made with old parameters by one made with the current ones, if the
    /// password has not changed meanwhile (the old hash is the expected value).
    pub async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swapped(
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                    .bind(new)
                    .bind(id.0)
                    .bind(old),
            )
            .await?
        });
        Ok(done)
    }

    /// Sets a new password (the old hash goes to the history), revokes sessions as asked, and
    /// records `event`, in one transaction. Returns how many sessions were revoked.
    pub async fn set_password(
        &self,
        id: UserId,
        new_hash: &str,
        now: OffsetDateTime,
        revoke: crate::RevokeSessions,
        event: &SecurityEvent,
    ) -> Result<u64> {
        let revoked = with_tx!(self, |tx| {
            if !tx.set_password(id, new_hash, now).await? {
                return Err(StoreError::Conflict("user does not exist".into()));
            }
            tx.void_password_tokens(id, now).await?;
            let revoked = tx.revoke_sessions(id, revoke, now, "password_changed").await?;
            tx.insert_event(event).await?;
            revoked
        });
        Ok(revoked)
    }

    pub async fn count_users(&self) -> Result<i64> {
        let (n,): (i64,) = with_pool!(self, |pool| sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
        Ok(n)
    }

    async fn attach_roles(&self, row: Option<UserRow>) -> Result<Option<User>> {
        let Some(row) = row else { return Ok(None) };
        let roles: Vec<(String,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT role_name FROM user_roles WHERE user_id = $1 ORDER BY role_name")
                .bind(row.id)
                .fetch_all(pool)
                .await
        })?;
        Ok(Some(row.with_roles(roles.into_iter().map(|(r,)| r).collect())))
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        let roles: Vec<Role> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT name, description, permissions, builtin FROM roles ORDER BY name")
                .fetch_all(pool)
                .await
        })?;
        Ok(roles)
    }
}

/// At most this many candidates of a user search are taken from the trigram index; a query
/// matching more is common enough that the id-ordered walk finds a page of it soon.
const SEARCH_CANDIDATES: usize = 1000;

impl Store {
    /// The SQL of "the user row `alias` has `q` in its e-mail or its name" (case-insensitive),
    /// its values bound through `p`.
    ///
    /// The candidates come first from `user_search (user_id, text)`, the e-mail and the
    /// lower-case name under a trigram index on both backends (migration 0016), so a rare
    /// query reads its few rows rather than the whole table. Up to [`SEARCH_CANDIDATES`] of
    /// them become an id list; a query matching more is left to the id-ordered walk, which
    /// meets a page of matches soon (the index would hand over every one of them first).
    /// The index is asked without an escape character (SQLite's FTS5 answers `LIKE` from its
    /// index only in the two-argument form), so `%`, `_` and `\` of `q` become `_` there: a
    /// superset. The exact `LIKE … ESCAPE` on the row then decides, as the full scan did.
    /// Addresses are stored in their normal form (lower case).
    pub(crate) async fn user_matches(
        &self,
        alias: &str,
        q: &str,
        p: &mut impl FnMut(Param) -> String,
    ) -> Result<String> {
        let q = q.to_lowercase();
        let pattern = format!("%{}%", q.replace(['%', '_', '\\'], "_"));
        let limit = SEARCH_CANDIDATES as i64 + 1;
        let candidates: Vec<(Uuid,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT user_id FROM user_search WHERE text LIKE $1 LIMIT $2")
                .bind(&pattern)
                .bind(limit)
                .persistent(false)
                .fetch_all(pool)
                .await
        })?;
        let exact = p(Param::Text(format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))));
        let exact = format!("({alias}.email LIKE {exact} ESCAPE '\\' OR lower({alias}.name) LIKE {exact} ESCAPE '\\')");
        if candidates.len() > SEARCH_CANDIDATES {
            return Ok(exact);
        }
        if candidates.is_empty() {
            return Ok("1 = 0".into());
        }
        let ids: Vec<String> = candidates.into_iter().map(|(id,)| p(Param::Uuid(id))).collect();
        Ok(format!("{alias}.id IN ({}) AND {exact}", ids.join(", ")))
    }
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The id to continue after, when there may be more.
    pub next: Option<UserId>,
}

impl Store {
    /// Users whose e-mail or name contains `q` (case-insensitive), ordered by id (UUIDv7:
    /// creation order), after `after`, at most `limit`.
    pub async fn list_users(&self, q: Option<&str>, after: Option<UserId>, limit: u32) -> Result<UserPage> {
        self.list_users_as_of(q, None, after, limit).await
    }

    /// [`Store::list_users`] among the users created at or before `as_of` (when given): the
    /// pages of a users export, whose set was fixed when it was counted.
    pub async fn list_users_as_of(
        &self,
        q: Option<&str>,
        as_of: Option<OffsetDateTime>,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<UserPage> {
        let mut params: Vec<Param> = Vec::new();
        let mut p = |v: Param| {
            params.push(v);
            format!("${}", params.len())
        };
        let mut clauses = Vec::new();
        if let Some(q) = q {
            clauses.push(self.user_matches("users", q, &mut p).await?);
        }
        if let Some(t) = as_of {
            clauses.push(format!("created_at <= {}", p(Param::Ts(t))));
        }
        if let Some(a) = after {
            clauses.push(format!("id > {}", p(Param::Uuid(a.0))));
        }
        let limit_param = p(Param::Int(i64::from(limit) + 1));
        let filter = if clauses.is_empty() { "1 = 1".to_string() } else { clauses.join(" AND ") };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT {limit_param}");
        // Not a prepared statement kept for reuse: its text varies with the candidates found.
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            bind_params!(sqlx::query_as(&sql), &params).persistent(false).fetch_all(pool).await
        })?;
        let more = rows.len() > limit as usize;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows.into_iter().take(limit as usize) {
            if let Some(u) = self.attach_roles(Some(row)).await? {
                users.push(u);
            }
        }
        let next = if more { users.last().map(|u| u.id) } else { None };
        Ok(UserPage { users, next })
    }

    /// How many users [`Store::list_users_as_of`] would page through.
    pub async fn count_users_as_of(&self, q: Option<&str>, as_of: OffsetDateTime) -> Result<i64> {
        let mut params: Vec<Param> = Vec::new();
        let mut p = |v: Param| {
            params.push(v);
            format!("${}", params.len())
        };
        let mut clauses = Vec::new();
        if let Some(q) = q {
            clauses.push(self.user_matches("users", q, &mut p).await?);
        }
        clauses.push(format!("created_at <= {}", p(Param::Ts(as_of))));
        let sql = format!("SELECT COUNT(*) FROM users WHERE {}", clauses.join(" AND "));
        let (n,): (i64,) = with_pool!(self, |pool| {
            bind_params!(sqlx::query_as(&sql), &params).persistent(false).fetch_one(pool).await
        })?;
        Ok(n)
    }

    /// Changes a user's name, roles and/or disabled flag, with `event`, in one transaction.
    /// Disabling revokes every session and API key of the user at once.
    pub async fn update_user(
        &self,
        id: UserId,
        name: Option<Option<&str>>,
        roles: Option<&[String]>,
        disabled: Option<bool>,
        now: OffsetDateTime,
        event: &SecurityEvent,
    ) -> Result<bool> {
        let found = with_tx!(self, |tx| {
            let found = tx
                .swapped(sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2").bind(Ts(now)).bind(id.0))
                .await?;
            if !found {
                return Ok(Finish::Rollback(false));
            }
            tx.invalidates(Cache::Accounts);
            if let Some(name) = name {
                sqlx::query("UPDATE users SET name = $1 WHERE id = $2").bind(name).bind(id.0).execute(&mut *tx).await?;
            }
            if let Some(roles) = roles {
                for role in roles {
                    let found: Option<(String,)> = sqlx::query_as("SELECT name FROM roles WHERE name = $1")
                        .bind(role)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        return Err(StoreError::UnknownRole(role.clone()));
                    }
                }
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(id.0).execute(&mut *tx).await?;
                for role in roles {
                    sqlx::query("INSERT INTO user_roles (user_id, role_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(id.0)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some(disabled) = disabled {
                sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                if disabled {
                    tx.revoke_sessions(id, crate::RevokeSessions::All, now, "user_disabled").await?;
                    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(Ts(now))
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.insert_event(event).await?;
            true
        });
        Ok(found)
    }

    /// Erases a user and everything that hangs off them (sessions, tokens, keys, history);
    /// `event` stays in the audit log.
    pub async fn delete_user(&self, id: UserId, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let done = tx.swap_and_record(sqlx::query("DELETE FROM users WHERE id = $1").bind(id.0), event).await?;
            if done {
                // Their sessions went with them.
                tx.invalidates(Cache::Sessions);
                tx.invalidates(Cache::Accounts);
            }
            done
        });
        Ok(done)
    }

    /// Creates or replaces a custom role; built-in roles cannot be replaced (Conflict).
    pub async fn put_role(
        &self,
        name: &str,
        description: &str,
        permissions: &[String],
        event: &SecurityEvent,
    ) -> Result<()> {
        with_tx!(self, |tx| {
            let builtin: Option<(bool,)> =
                sqlx::query_as("SELECT builtin FROM roles WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
            if builtin.is_some_and(|(b,)| b) {
                return Err(StoreError::Conflict(format!("{name} is a built-in role")));
            }
            sqlx::query(
                "INSERT INTO roles (name, description, permissions, builtin) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET description = excluded.description, permissions = excluded.permissions",
            )
            .bind(name)
            .bind(description)
            .bind(sqlx::types::Json(permissions))
            .bind(false)
            .execute(&mut *tx)
            .await?;
            tx.invalidates(Cache::Roles);
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Deletes a custom role (its grants go with it). Built-in roles: Conflict. Unknown: false.
    pub async fn delete_role(&self, name: &str, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            let builtin: Option<(bool,)> =
                sqlx::query_as("SELECT builtin FROM roles WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
            match builtin {
                None => false,
                Some((true,)) => return Err(StoreError::Conflict(format!("{name} is a built-in role"))),
                Some((false,)) => {
                    sqlx::query("DELETE FROM roles WHERE name = $1").bind(name).execute(&mut *tx).await?;
                    tx.invalidates(Cache::Accounts); // its grants went with it
                    tx.invalidates(Cache::Roles);
                    tx.insert_event(event).await?;
                    true
                }
            }
        });
        Ok(done)
    }

    /// How many enabled users hold a role granting `*` (administrators), to keep at least one.
    pub async fn count_admins(&self) -> Result<i64> {
        let roles = self.list_roles().await?;
        let admin_roles: Vec<String> =
            roles.into_iter().filter(|r| r.permissions.iter().any(|p| p == "*")).map(|r| r.name).collect();
        let mut ids = std::collections::HashSet::new();
        for role in admin_roles {
            let rows: Vec<(Uuid,)> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT ur.user_id FROM user_roles ur JOIN users u ON u.id = ur.user_id \
                     WHERE ur.role_name = $1 AND NOT u.disabled",
                )
                .bind(&role)
                .fetch_all(pool)
                .await
            })?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(i64::try_from(ids.len()).unwrap_or(i64::MAX))
    }

    /// Users holding a role (to evict their cached keys after the role changes).
    pub async fn users_with_role(&self, role: &str) -> Result<Vec<UserId>> {
        let rows: Vec<(Uuid,)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT user_id FROM user_roles WHERE role_name = $1").bind(role).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
    }
}
