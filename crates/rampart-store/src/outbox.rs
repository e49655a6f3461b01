//! What the two outboxes (webhook deliveries, mail) share: taking due rows for a while.
//!
//! This is the one query whose text differs by backend: PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so instances claiming at once each take different rows without
//! waiting on one another; SQLite has no such clause and no need of it (one writer at a time).

use crate::ts::Ts;
use crate::{Db, Result, Store};
use time::OffsetDateTime;

impl Store {
    /// Runs `claim(due)`: `due` selects the keys of due rows no live claim holds (`$1` now, `$3`
    /// the limit), `claim` wraps it in the `UPDATE … SET claimed_until = $2 … RETURNING` that
    /// takes them. The outer statement must repeat the inner conditions: on PostgreSQL a row
    /// another claimer changed meanwhile is re-checked against them, not taken twice.
    pub(crate) async fn claim_due<R>(
        &self,
        due: &str,
        claim: impl Fn(&str) -> String,
        now: OffsetDateTime,
        hold_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        Ok(match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_as(&claim(&format!("{due} FOR UPDATE SKIP LOCKED")))
                    .bind(Ts(now))
                    .bind(Ts(hold_until))
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_as(&claim(due))
                    .bind(Ts(now))
                    .bind(Ts(hold_until))
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?
            }
        })
    }
}
