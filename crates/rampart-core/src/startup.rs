//! Opening what the application runs on: the data directory, the database and its
//! migrations. One path for `serve`, the CLI commands and the test kit.

use rampart_config::Settings;
use rampart_domain::{Action, Actor, Clock, KeyRing, Outcome, SecurityEvent};
use rampart_store::{ConnectOptions, MigrationReport, Store, StoreError};
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("access-token signing keys: {0}")]
    Signing(String),
    #[error("master keys: {0}")]
    MasterKeys(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
}

/// Applies pending migrations and, when any ran, records `system.migrations.applied` (details:
/// which, how many in all, `via`). The one path for `serve`, the CLI commands and
/// `rampart migrate`; returns the event so a caller with metrics can log and count it.
pub async fn migrate(
    store: &Store,
    clock: &dyn Clock,
    via: &'static str,
) -> Result<(MigrationReport, Option<SecurityEvent>), StoreError> {
    let report = store.migrate().await?;
    let event = record_migrations(store, &report, clock, via).await?;
    Ok((report, event))
}

/// Records `system.migrations.applied` for `report` when any migration ran.
async fn record_migrations(
    store: &Store,
    report: &MigrationReport,
    clock: &dyn Clock,
    via: &'static str,
) -> Result<Option<SecurityEvent>, StoreError> {
    if report.applied.is_empty() {
        return Ok(None);
    }
    let event = SecurityEvent::new(uuid::Uuid::now_v7(), clock.now(), Action::MigrationsApplied, Outcome::Success)
        .actor(Actor::System)
        .details(serde_json::json!({ "applied": report.applied, "total": report.total, "via": via }));
    store.append_event(&event).await?;
    Ok(Some(event))
}

/// The store, migrated, with its audit chain under the kept root keys, and those keys.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    pub root_keys: crate::root_keys::RootKeys,
    pub report: MigrationReport,
    /// `system.migrations.applied`, when any ran.
    pub migrated: Option<SecurityEvent>,
}

/// Connects, migrates, reads the root keys (storing any missing, see `root_keys`) and
/// refuses a ring that lacks a key some stored value is sealed under. The store is opened
/// under the current key's derivation only to migrate (the chain's origin, sealed by
/// migration 10, precedes the root keys of migration 21 and equals their first values); the
/// migrations' own event is linked under the kept keys.
pub async fn open_store(
    settings: &Settings,
    ring: &KeyRing,
    clock: &dyn Clock,
    via: &'static str,
) -> Result<Opened, StartupError> {
    let provisional = connect_store(settings, ring.current()).await?;
    let report = provisional.migrate().await?;
    let root_keys = crate::root_keys::load(&provisional, ring, clock.now()).await.map_err(|e| match e {
        crate::root_keys::RootKeyError::Store(e) => StartupError::Store(e),
        e => StartupError::MasterKeys(e.to_string()),
    })?;
    let store = provisional.with_audit_keys(root_keys.audit.clone());
    crate::root_keys::check_every_value_opens(&store, ring).await.map_err(StartupError::MasterKeys)?;
    let migrated = record_migrations(&store, &report, clock, via).await?;
    Ok(Opened { store, root_keys, report, migrated })
}

/// Connects to the configured database (creating the data directory for the default SQLite),
/// with the audit chain's keys derived from the master key.
pub async fn connect_store(settings: &Settings, master_key: &rampart_domain::MasterKey) -> Result<Store, StartupError> {
    let db = &settings.database;
    if let Some(dir) = &db.create_dir {
        create_private_dir(dir).map_err(|source| StartupError::DataDir { path: dir.clone(), source })?;
    }
    let opts = ConnectOptions {
        max_connections: db.max_connections,
        busy_timeout: db.busy_timeout,
        acquire_timeout: db.acquire_timeout,
        session_cache_ttl: settings.sessions.cache_ttl,
    };
    Ok(Store::connect(db.url.expose(), &opts, rampart_domain::audit::AuditKeys::derive(master_key)).await?)
}

/// Creates `dir` (and parents) readable by the owner only: it holds the database with password
/// hashes and possibly the master key. An existing directory is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
