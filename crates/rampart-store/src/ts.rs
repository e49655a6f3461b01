//! `Ts`: how times are bound into queries, so they compare as times on both backends.
//!
//! PostgreSQL stores `timestamptz` (microseconds). SQLite has no time type: sqlx would write
//! RFC 3339 text with a variable-length fraction, under which `…00.15Z` sorts before
//! `…00.1Z`. `Ts` writes SQLite times as fixed-width UTC text with six fraction digits
//! (`2026-11-23T12:00:00.150000Z`), which sorts as it should and still decodes as RFC 3339.
//! Both backends thus keep microseconds; the clock hands out no finer times.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteTypeInfo};
use sqlx::{Encode, Type};
use time::OffsetDateTime;
use time::macros::format_description;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub OffsetDateTime);

impl Ts {
    pub(crate) fn sqlite_text(self) -> Result<String, time::error::Format> {
        let t = self.0.to_offset(time::UtcOffset::UTC);
        t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"))
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.sqlite_text()?, buf)
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_text_is_fixed_width_utc_and_sorts_as_time() {
        let a = Ts(time::macros::datetime!(2026-11-23 12:00:00.1 UTC)).sqlite_text().unwrap();
        let b = Ts(time::macros::datetime!(2026-11-23 12:00:00.15 UTC)).sqlite_text().unwrap();
        let c = Ts(time::macros::datetime!(2026-11-23 14:00:00 +2)).sqlite_text().unwrap();
        assert_eq!(a, "2026-11-23T12:00:00.100000Z");
        assert_eq!(c, "2026-11-23T12:00:00.000000Z", "converted to UTC");
        assert!(c < a && a < b);
        let parsed = OffsetDateTime::parse(&b, &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(parsed, time::macros::datetime!(2026-11-23 12:00:00.15 UTC));
    }
}
