//! Every value sealed with the master key, in one registry ([`SEALED_COLUMNS`]), and the
//! associated data each is bound to ([`aad`]): the use cases seal and open with these, and
//! `rampart master-key rotate` re-seals every column of the registry in one loop. A new sealed
//! column is one entry here (its table, key columns, column and AAD) and nothing else.
//!
//! Also the root keys (migration 0021): keys once derived from the master key on every start,
//! kept sealed so that they outlive the master key they were derived from.

use crate::ts::Ts;
use crate::{Result, Store, with_pool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The associated data of each sealed column: a value copied to another row or column does
/// not open. Changing one makes every stored value of its column unreadable.
pub mod aad {
    use uuid::Uuid;

    /// `mfa_totp.secret` (set-up and enabled TOTP secrets alike).
    pub fn totp(user: Uuid) -> Vec<u8> {
        format!("mfa_totp:{user}").into_bytes()
    }

    /// `signing_keys.private_sealed`.
    pub fn signing_key(kid: &str) -> Vec<u8> {
        format!("signing_key:{kid}").into_bytes()
    }

    /// `webhook_endpoints.secret` and `.previous_secret` (a rotation moves the value across).
    pub fn webhook_secret(id: Uuid) -> Vec<u8> {
        [b"rampart webhook secret ".as_slice(), id.as_bytes()].concat()
    }

    /// `mail_outbox.sealed`.
    pub fn mail(id: Uuid) -> Vec<u8> {
        [b"rampart:mail:".as_slice(), id.as_bytes()].concat()
    }

    /// `transit_key_versions.material`.
    pub fn transit(name: &str, version: i32) -> Vec<u8> {
        format!("rampart transit {name}:{version}").into_bytes()
    }

    /// `root_keys.sealed`.
    pub fn root_key(purpose: &str) -> Vec<u8> {
        format!("rampart root key {purpose}").into_bytes()
    }
}

/// The key of one row of a sealed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    Uuid(Uuid),
    Text(String),
    /// A text and an integer (a transit key's name and version).
    TextInt(String, i32),
}

impl std::fmt::Display for RowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowKey::Uuid(u) => u.fmt(f),
            RowKey::Text(t) => t.fmt(f),
            RowKey::TextInt(t, i) => write!(f, "{t}/{i}"),
        }
    }
}

/// The shape of a table's key: its column names.
#[derive(Debug, Clone, Copy)]
enum KeyShape {
    Uuid(&'static str),
    Text(&'static str),
    TextInt(&'static str, &'static str),
}

impl KeyShape {
    fn columns(self) -> String {
        match self {
            KeyShape::Uuid(c) | KeyShape::Text(c) => c.to_string(),
            KeyShape::TextInt(a, b) => format!("{a}, {b}"),
        }
    }
}

/// One sealed column.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    key: KeyShape,
    /// A column beside the value naming the master key that sealed it, kept in step.
    key_id_column: Option<&'static str>,
    aad: fn(&RowKey) -> Vec<u8>,
}

impl SealedColumn {
    /// `table.column`, as progress and errors name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }

    /// The associated data the value of row `key` is bound to.
    pub fn aad(&self, key: &RowKey) -> Vec<u8> {
        (self.aad)(key)
    }
}

// A row key of the wrong shape cannot come from the registry's own reads; its AAD is empty,
// which opens nothing (the rotation then fails loudly on that row).
fn by_uuid(f: fn(Uuid) -> Vec<u8>) -> impl Fn(&RowKey) -> Vec<u8> {
    move |k| if let RowKey::Uuid(u) = k { f(*u) } else { Vec::new() }
}

/// Every sealed column. The order is the rotation's (root keys first).
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "root_keys",
        column: "sealed",
        key: KeyShape::Text("purpose"),
        key_id_column: None,
        aad: |k| if let RowKey::Text(p) = k { aad::root_key(p) } else { Vec::new() },
    },
    SealedColumn {
        table: "signing_keys",
        column: "private_sealed",
        key: KeyShape::Text("kid"),
        key_id_column: None,
        aad: |k| if let RowKey::Text(kid) = k { aad::signing_key(kid) } else { Vec::new() },
    },
    SealedColumn {
        table: "mfa_totp",
        column: "secret",
        key: KeyShape::Uuid("user_id"),
        key_id_column: Some("key_id"),
        aad: |k| by_uuid(aad::totp)(k),
    },
    SealedColumn {
        table: "webhook_endpoints",
        column: "secret",
        key: KeyShape::Uuid("id"),
        key_id_column: None,
        aad: |k| by_uuid(aad::webhook_secret)(k),
    },
    SealedColumn {
        table: "webhook_endpoints",
        column: "previous_secret",
        key: KeyShape::Uuid("id"),
        key_id_column: None,
        aad: |k| by_uuid(aad::webhook_secret)(k),
    },
    SealedColumn {
        table: "transit_key_versions",
        column: "material",
        key: KeyShape::TextInt("name", "version"),
        key_id_column: None,
        aad: |k| if let RowKey::TextInt(n, v) = k { aad::transit(n, *v) } else { Vec::new() },
    },
    SealedColumn {
        table: "mail_outbox",
        column: "sealed",
        key: KeyShape::Uuid("id"),
        key_id_column: None,
        aad: |k| by_uuid(aad::mail)(k),
    },
];

/// One stored value to re-seal.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub key: RowKey,
    pub sealed: String,
}

/// How many values of one column are sealed under one master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCount {
    /// `table.column`.
    pub column: String,
    pub key_id: String,
    pub count: i64,
}

/// A root key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRootKey {
    pub purpose: String,
    pub sealed: String,
    pub origin_key_id: String,
}

/// Reads a row key of `shape` from the first columns of `row`, then the sealed value.
macro_rules! decode_sealed_row {
    ($shape:expr, $row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        match $shape {
            KeyShape::Uuid(_) => (RowKey::Uuid(row.try_get(0)?), row.try_get::<String, _>(1)?),
            KeyShape::Text(_) => (RowKey::Text(row.try_get(0)?), row.try_get::<String, _>(1)?),
            KeyShape::TextInt(_, _) => {
                (RowKey::TextInt(row.try_get(0)?, row.try_get(1)?), row.try_get::<String, _>(2)?)
            }
        }
    }};
}

/// Binds a row key's values, in key-column order.
macro_rules! bind_key {
    ($q:expr, $key:expr) => {{
        let q = $q;
        match $key {
            RowKey::Uuid(u) => q.bind(*u),
            RowKey::Text(t) => q.bind(t.clone()),
            RowKey::TextInt(t, i) => q.bind(t.clone()).bind(*i),
        }
    }};
}

/// `k = $n AND …` over the key's columns, numbered from `first`.
fn key_equals(shape: KeyShape, first: usize) -> String {
    match shape {
        KeyShape::Uuid(c) | KeyShape::Text(c) => format!("{c} = ${first}"),
        KeyShape::TextInt(a, b) => format!("{a} = ${first} AND {b} = ${}", first + 1),
    }
}

fn key_arity(shape: KeyShape) -> usize {
    match shape {
        KeyShape::Uuid(_) | KeyShape::Text(_) => 1,
        KeyShape::TextInt(_, _) => 2,
    }
}

/// `(k…) > ($n…)`, numbered from `first`.
fn key_after(shape: KeyShape, first: usize) -> String {
    match shape {
        KeyShape::Uuid(c) | KeyShape::Text(c) => format!("{c} > ${first}"),
        KeyShape::TextInt(a, b) => format!("({a}, {b}) > (${first}, ${})", first + 1),
    }
}

/// The `LIKE` pattern of values sealed under `key_id` (an id is hex: no wildcard in it).
fn sealed_under(key_id: &str) -> String {
    format!("v1.{key_id}.%")
}

impl Store {
    /// Up to `limit` values of `col` not sealed under `current_key_id`, in key order after
    /// `after` (a keyset page: a run walks each column once however many rows it re-seals).
    pub async fn sealed_not_under(
        &self,
        col: &SealedColumn,
        current_key_id: &str,
        after: Option<&RowKey>,
        limit: i64,
    ) -> Result<Vec<SealedRow>> {
        let keys = col.key.columns();
        let (table, column) = (col.table, col.column);
        let after_sql = after.map(|_| format!(" AND {}", key_after(col.key, 2))).unwrap_or_default();
        let limit_at = 2 + after.map_or(0, |_| key_arity(col.key));
        let sql = format!(
            "SELECT {keys}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE $1{after_sql} \
             ORDER BY {keys} LIMIT ${limit_at}"
        );
        let pattern = sealed_under(current_key_id);
        let rows = with_pool!(self, |pool| {
            let mut q = sqlx::query(&sql).bind(&pattern);
            if let Some(key) = after {
                q = bind_key!(q, key);
            }
            match q.bind(limit).fetch_all(pool).await {
                Ok(rows) => rows
                    .iter()
                    .map(|row| -> Result<SealedRow, sqlx::Error> {
                        let (key, sealed) = decode_sealed_row!(col.key, row);
                        Ok(SealedRow { key, sealed })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>(),
                Err(e) => Err(e),
            }
        })?;
        Ok(rows)
    }

    /// The value of `col` in row `key` now (`None`: no row, or no value).
    pub async fn sealed_value(&self, col: &SealedColumn, key: &RowKey) -> Result<Option<String>> {
        let sql = format!("SELECT {} FROM {} WHERE {}", col.column, col.table, key_equals(col.key, 1));
        let value: Option<(Option<String>,)> =
            with_pool!(self, |pool| bind_key!(sqlx::query_as(&sql), key).fetch_optional(pool).await)?;
        Ok(value.and_then(|(v,)| v))
    }

    /// Replaces `old` with `new` (sealed under `new_key_id`) in row `key`, only if the row still
    /// holds `old`: a value the service changed meanwhile is never overwritten. Whether it did.
    pub async fn reseal(
        &self,
        col: &SealedColumn,
        key: &RowKey,
        old: &str,
        new: &str,
        new_key_id: &str,
    ) -> Result<bool> {
        let also = col.key_id_column.map(|c| format!(", {c} = $3")).unwrap_or_default();
        let sql = format!(
            "UPDATE {} SET {} = $1{also} WHERE {} = $2 AND {}",
            col.table,
            col.column,
            col.column,
            key_equals(col.key, 4)
        );
        let done = with_pool!(self, |pool| bind_key!(sqlx::query(&sql).bind(new).bind(old).bind(new_key_id), key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// How many values of each sealed column are sealed under each master key id.
    pub async fn sealed_counts(&self) -> Result<Vec<SealedCount>> {
        let mut out = Vec::new();
        for col in SEALED_COLUMNS {
            // `v1.` then the 16-character key id.
            let sql = format!(
                "SELECT substr({c}, 4, 16), count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY substr({c}, 4, 16) \
                 ORDER BY 1",
                c = col.column,
                t = col.table
            );
            let rows: Vec<(String, i64)> = with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
            out.extend(rows.into_iter().map(|(key_id, count)| SealedCount { column: col.name(), key_id, count }));
        }
        Ok(out)
    }

    /// The root key of `purpose`; when there is none yet, `sealed` (derived from the master key
    /// `origin_key_id`) is stored first. Two instances starting together agree: the first insert
    /// wins and both read it back.
    ///
    /// No event: nothing changes in meaning (the value is the one every start derived before
    /// migration 0021), and the audit chain's own keys are among the root keys.
    pub async fn root_key_or_insert(
        &self,
        purpose: &str,
        sealed: &str,
        origin_key_id: &str,
        now: OffsetDateTime,
    ) -> Result<StoredRootKey> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO root_keys (purpose, sealed, origin_key_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (purpose) DO NOTHING"
        )
        .bind(purpose)
        .bind(sealed)
        .bind(origin_key_id)
        .bind(Ts(now))
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT purpose, sealed, origin_key_id FROM root_keys WHERE purpose = $1"
        )
        .bind(purpose)
        .fetch_one(pool)
        .await)?)
    }

    /// A copy of this store whose audit chain is linked and verified under `keys` (start-up
    /// reads the kept keys after migrating, with a store opened under provisional ones).
    pub fn with_audit_keys(&self, keys: rampart_domain::audit::AuditKeys) -> Store {
        Store { audit: std::sync::Arc::new(keys), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_each_column_once_and_binds_each_row() {
        let mut names: Vec<String> = SEALED_COLUMNS.iter().map(SealedColumn::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SEALED_COLUMNS.len());
        let id = Uuid::now_v7();
        for col in SEALED_COLUMNS {
            let key = match col.key {
                KeyShape::Uuid(_) => RowKey::Uuid(id),
                KeyShape::Text(_) => RowKey::Text("k".into()),
                KeyShape::TextInt(_, _) => RowKey::TextInt("k".into(), 1),
            };
            assert!(!col.aad(&key).is_empty(), "{}", col.name());
        }
        assert_eq!(key_after(KeyShape::TextInt("name", "version"), 2), "(name, version) > ($2, $3)");
        assert_eq!(key_equals(KeyShape::Uuid("id"), 4), "id = $4");
    }
}
