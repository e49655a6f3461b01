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
    Connect(#[source] DbError),
    /// The database did not answer in time or the pool is exhausted: retryable.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbError),
    #[error("migration failed: {0}")]
    Migrate(#[source] DbError),
    #[error("stored data is not what Rampart wrote: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] DbError),
}

impl StoreError {
    /// [`StoreError::Unavailable`] as a pool timeout makes it: for tests of how callers map
    /// store errors.
    pub fn timed_out() -> Self {
        StoreError::Unavailable(DbError(Inner::Sqlx(sqlx::Error::PoolTimedOut)))
    }
}

/// What the database driver reported, opaque: callers see its message and its source chain,
/// never the driver's types.
#[derive(Debug)]
pub struct DbError(Inner);

#[derive(Debug)]
enum Inner {
    Sqlx(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Sqlx(e) => e.fmt(f),
            Inner::Migrate(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Inner::Sqlx(e) => e.source(),
            Inner::Migrate(e) => e.source(),
        }
    }
}

impl StoreError {
    /// A connection failure.
    pub(crate) fn connect(e: sqlx::Error) -> Self {
        StoreError::Connect(DbError(Inner::Sqlx(e)))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(DbError(Inner::Migrate(e)))
    }
}

/// Database error codes that mean "try again" rather than "bug": SQLite busy/locked (after the
/// busy timeout), PostgreSQL serialization failure, deadlock, too many connections, shutdown.
const RETRYABLE_CODES: &[&str] = &["5", "6", "40001", "40P01", "53300", "57P01", "57P03"];

fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| RETRYABLE_CODES.contains(&c.as_ref())))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(DbError(Inner::Sqlx(e)))
            }
            e if is_retryable(&e) => StoreError::Unavailable(DbError(Inner::Sqlx(e))),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Database(DbError(Inner::Sqlx(e))),
        }
    }
}

/// Whether `e` is a unique-constraint violation (any backend).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[derive(Debug)]
    struct FakeDbError(&'static str);

    impl std::fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "database error {}", self.0)
        }
    }

    impl std::error::Error for FakeDbError {}

    impl sqlx::error::DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            "fake"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(FakeDbError(code)))
    }

    #[test]
    fn busy_locked_deadlock_and_overload_are_retryable() {
        for code in ["5", "6", "40001", "40P01", "53300", "57P01"] {
            assert!(matches!(StoreError::from(db(code)), StoreError::Unavailable(_)), "{code}");
        }
        for code in ["19", "23505", "42P01"] {
            assert!(matches!(StoreError::from(db(code)), StoreError::Database(_)), "{code}");
        }
        assert!(matches!(StoreError::from(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(StoreError::timed_out(), StoreError::Unavailable(_)));
    }
}
