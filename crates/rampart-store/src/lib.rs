//! Rampart's storage: the only crate that speaks SQL.
//!
//! One [`Store`] serves both backends. Every query is written once, with `$1` placeholders
//! that SQLite and PostgreSQL both read, and [`with_pool!`]/[`with_tx!`] expand it into one
//! arm per backend at compile time; dialect differences live only in the two migration folders
//! (`migrations/sqlite`, `migrations/postgres`), never in `if postgres { … }` branches.
//!
//! Invariant: a method that changes state takes the [`SecurityEvent`] recording that change
//! and writes both in one transaction, so an acknowledged change always has its event.

/// A bound query parameter of a filter (the SQL text only ever holds placeholders).
pub(crate) enum Param {
    Uuid(uuid::Uuid),
    Text(String),
    Ts(time::OffsetDateTime),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// Binds filter parameters onto a query, in order (a macro: the query's type differs per backend).
macro_rules! bind_params {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                $crate::Param::Uuid(u) => q.bind(*u),
                $crate::Param::Text(t) => q.bind(t.clone()),
                $crate::Param::Ts(t) => q.bind($crate::ts::Ts(*t)),
                $crate::Param::Int(i) => q.bind(*i),
                $crate::Param::Bool(b) => q.bind(*b),
                $crate::Param::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

mod account_tokens;
mod alerts;
mod api_keys;
mod audit;
mod bus;
mod cache;
mod console;
mod error;
mod exports;
mod identities;
mod ip_rules;
mod leader;
mod mfa;
mod notifications;
mod outbox;
mod personal;
pub mod sealed;
mod sessions;
mod signing_keys;
mod throttle;
mod transit;
mod ts;
mod tx;
mod users;
mod webauthn;
mod webhooks;

pub use account_tokens::{AccountToken, TokenPurpose};
pub use alerts::{AlertSends, EventHead, StoredAlertRule};
pub use api_keys::{StoredApiKey, UsageCount};
pub use audit::{ChainReport, PurgeReport, StoredEvent};
pub use bus::BusState;
pub use console::{ConsoleUser, KeyOwnerRow, KeySearch, RoleAdoption, UserSearch};
pub use error::{DbError, StoreError};
pub use exports::StoredExport;
pub use identities::{LinkOutcome, LinkedIdentity, NewFederatedUser, UnlinkOutcome};
pub use leader::Leadership;
pub use mfa::{MfaChallenge, MfaStatus, StoredTotp};
pub use notifications::{ClaimedMail, MESSAGE_KIND, MailCounts, MailOutcome, MailRecord};
pub use sealed::{RowKey, SEALED_COLUMNS, SealedColumn, SealedCount, SealedRow, StoredRootKey};
pub use sessions::{RefreshOutcome, RevokeSessions};
pub use signing_keys::StoredSigningKey;
pub use throttle::AttemptDecision;
pub use transit::{StoredTransitKey, TransitVersion};
pub use users::Role;
pub use webauthn::{NewWebauthn, StoredWebauthn, WebauthnCeremony, WebauthnChallenge};
pub use webhooks::{AttemptOutcome, ClaimedMessage, StoredWebhook, WebhookAttempt, WebhookChange};

use cache::EpochCache;
use rampart_domain::audit::AuditKeys;
use rampart_domain::{SecurityEvent, Session, SessionId, User, UserId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
    pub acquire_timeout: Duration,
    /// How long a session or an account read by id on a hot path is served from memory (zero:
    /// never). Writes through this store take effect at once; other processes' within this time.
    pub session_cache_ttl: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            session_cache_ttl: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool. The body is compiled once per
/// backend, so it must be valid SQL for both (use `$n` placeholders).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside a write transaction (`$tx`, a [`tx::Tx`]) and evaluates to its value
/// (an error leaves the enclosing function, as `?` does). The body is compiled once per
/// backend, like [`with_pool!`]'s.
///
/// The body's value commits. `?` and `return Err(…)` roll back; any other early exit must
/// say which it does, `return Ok(Finish::Rollback(v))` or `return Ok(Finish::Commit(v))` (a
/// bare `return Ok(v)` does not compile). The caches the body declared stale
/// (`tx.invalidates(…)`) are marked so right after the commit, never after a rollback. On
/// SQLite the transaction starts with `BEGIN IMMEDIATE` (see [`tx::Tx::begin`]).
macro_rules! with_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &$crate::Store = &$store;
        match &store.db {
            $crate::Db::Sqlite(pool) => {
                #[allow(unused_mut)]
                let mut $tx = $crate::tx::Tx::begin(pool, Some("BEGIN IMMEDIATE"), &store.audit).await?;
                let result: $crate::Result<$crate::tx::Finish<_>> =
                    async { Ok($crate::tx::Finish::Commit($body)) }.await;
                $tx.finish(store, result).await?
            }
            $crate::Db::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = $crate::tx::Tx::begin(pool, None, &store.audit).await?;
                let result: $crate::Result<$crate::tx::Finish<_>> =
                    async { Ok($crate::tx::Finish::Commit($body)) }.await;
                $tx.finish(store, result).await?
            }
        }
    }};
}
pub(crate) use {with_pool, with_tx};

/// Makes the database and its WAL/SHM files readable by the owner only (they hold password
/// hashes and the audit log), and warns when their directory is open to others.
fn restrict_sqlite_files(db: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if db.as_os_str().is_empty() || db.as_os_str() == ":memory:" {
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists()
            && let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict database file permissions");
        }
    }
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the database directory is open to group or others; chmod 700 it");
        }
    }
}

/// A handle to the database. Cheap to clone (it is a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Sessions by id (see `cache`): made stale by the writes that end sessions.
    sessions: Arc<EpochCache<SessionId, Session>>,
    /// Accounts with their second-factor summary, by id: made stale by the writes to users,
    /// their roles and their second factors.
    accounts: Arc<EpochCache<UserId, (User, MfaStatus)>>,
    /// The audit chain's keys: every append is linked under them, verification checks with them.
    audit: Arc<AuditKeys>,
    /// Moves after every committed change to what a role grants (`Cache::Roles`).
    roles_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Moves after every committed change to an API key (`Cache::ApiKeys`).
    api_keys_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Moves after every signing-key rotation (`Cache::SigningKeys`), here or heard of.
    signing_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Moves after every committed change to a transit key (`Cache::Transit`), here or heard of.
    transit_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// PostgreSQL: the channel other instances hear this one's changes on (`bus`).
    bus: Option<Arc<bus::Bus>>,
}

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<i64>,
    pub total: usize,
}

/// The migration that introduced the keyed audit chain and its origin.
const KEYED_AUDIT_CHAIN_MIGRATION: i64 = 10;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `sqlite://…` (created if missing; WAL, foreign keys, busy timeout) or
    /// `postgres://…`. Does not run migrations. Events are linked into the audit chain under
    /// `audit` (derived from the master key).
    pub async fn connect(url: &str, opts: &ConnectOptions, audit: AuditKeys) -> Result<Store> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
        let mut bus = None;
        let db = match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(StoreError::connect)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(opts.busy_timeout);
                let file = options.get_filename().to_path_buf();
                let pool = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::connect)?;
                restrict_sqlite_files(&file);
                Db::Sqlite(pool)
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url).map_err(StoreError::connect)?;
                let pool = PgPoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::connect)?;
                let (schema,): (String,) =
                    sqlx::query_as("SELECT current_schema()").fetch_one(&pool).await.map_err(StoreError::connect)?;
                bus = Some(Arc::new(bus::Bus::new(&schema)));
                Db::Postgres(pool)
            }
            other => return Err(StoreError::UnsupportedUrl(other.to_string())),
        };
        Ok(Store {
            db,
            sessions: Arc::new(EpochCache::new(opts.session_cache_ttl)),
            accounts: Arc::new(EpochCache::new(opts.session_cache_ttl)),
            audit: Arc::new(audit),
            roles_epoch: Arc::default(),
            api_keys_epoch: Arc::default(),
            signing_epoch: Arc::default(),
            transit_epoch: Arc::default(),
            bus,
        })
    }

    /// A number that moves after every change committed through this store that can change
    /// who a credential is or what it may do: sessions ended, users, their roles or factors
    /// changed, roles redefined. A cache of answers derived from those (the gateway's
    /// decisions) keeps an answer only while this has not moved.
    pub fn authz_epoch(&self) -> u64 {
        self.auth_epochs()
    }

    /// A number that moves after every change committed through this store (or heard from
    /// another instance) that can change what an API key may do: the key revoked, rotated or
    /// changed, its owner's account or roles changed, roles redefined. The API-key verify
    /// cache keeps an entry only while this has not moved.
    pub fn api_keys_epoch(&self) -> u64 {
        self.accounts
            .epoch()
            .wrapping_add(self.roles_epoch.load(std::sync::atomic::Ordering::Acquire))
            .wrapping_add(self.api_keys_epoch.load(std::sync::atomic::Ordering::Acquire))
    }

    /// A number that moves after every rotation of the token signing keys, made here or (the
    /// invalidation bus) on another instance: the key ring is re-read when it moved.
    /// A number that moves after every committed change to a transit key (created, rotated,
    /// configured, deleted), here or on another instance: the transit key cache keeps a key only
    /// while this has not moved.
    pub fn transit_epoch(&self) -> u64 {
        self.transit_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn signing_epoch(&self) -> u64 {
        self.signing_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn auth_epochs(&self) -> u64 {
        self.sessions
            .epoch()
            .wrapping_add(self.accounts.epoch())
            .wrapping_add(self.roles_epoch.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations of this backend; says which ran.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let before = self.applied_migrations().await?;
        match &self.db {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        let after = self.applied_migrations().await?;
        let applied: Vec<i64> = after.iter().copied().filter(|v| !before.contains(v)).collect();
        // The keyed chain's origin is sealed by the run that introduced it, and by no other: an
        // unkeyed or unlinked event found later is a fault, never something to link.
        if applied.contains(&KEYED_AUDIT_CHAIN_MIGRATION) {
            let legacy = self.seal_chain_origin().await?;
            if legacy > 0 {
                tracing::info!(
                    events = legacy,
                    "sealed the audit chain's origin after the events linked before it was keyed"
                );
            }
        }
        Ok(MigrationReport { applied, total: after.len() })
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>> {
        // Before the first run the bookkeeping table does not exist yet: nothing applied.
        let rows: Result<Vec<(i64,)>, sqlx::Error> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version").fetch_all(pool).await
        });
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(|(v,)| v).collect()),
            Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Answers when the database does: a `SELECT 1` round trip.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Records a security event that belongs to no state change of its own.
    pub async fn append_event(&self, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Records `events` in order, in one transaction, linked exactly as
    /// [`Store::append_event`] links each: a bulk load (an import, the growth benchmark's
    /// seeding). Holds the chain's head lock for the whole batch.
    pub async fn append_events(&self, events: &[SecurityEvent]) -> Result<()> {
        with_tx!(self, |tx| {
            tx.insert_events(events).await?;
        });
        Ok(())
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}
