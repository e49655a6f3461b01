//! Storage errors: a few the callers act on, the rest opaque.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error("role {0:?} does not exist")]
    UnknownRole(String),
    /// A concurrent change won; nothing was written. Re-read and retry if it still applies.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database URL scheme {0:?} (use sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// The database did not answer in time or the pool is exhausted: retryable.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not what Rampart wrote: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Unavailable(e),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Database(e),
        }
    }
}

/// Whether `e` is a unique-constraint violation (any backend).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
