//! IP allow and block rules.

use crate::ts::Ts;
use crate::{Result, Store, StoreError, with_pool, with_tx};
use rampart_domain::SecurityEvent;
use rampart_domain::iprule::{IpAction, IpRule, IpScope, parse_cidr};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    network: String,
    action: String,
    scope: String,
    reason: String,
    automatic: bool,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
}

impl TryFrom<Row> for IpRule {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<IpRule> {
        let bad = |what: &str| StoreError::Corrupt(format!("ip_rules {}: bad {what}", r.id));
        Ok(IpRule {
            network: parse_cidr(&r.network).ok_or_else(|| bad("network"))?,
            action: IpAction::parse(&r.action).ok_or_else(|| bad("action"))?,
            scope: IpScope::parse(&r.scope).ok_or_else(|| bad("scope"))?,
            id: r.id,
            reason: r.reason,
            automatic: r.automatic,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

const COLUMNS: &str = "id, network, action, scope, reason, automatic, created_at, expires_at";

impl Store {
    /// Every rule, expired ones included (the caller filters by time), oldest first.
    pub async fn list_ip_rules(&self) -> Result<Vec<IpRule>> {
        let sql = format!("SELECT {COLUMNS} FROM ip_rules ORDER BY created_at, id");
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(IpRule::try_from).collect()
    }

    /// Stores a rule with its event.
    pub async fn create_ip_rule(&self, rule: &IpRule, event: &SecurityEvent) -> Result<()> {
        with_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO ip_rules (id, network, action, scope, reason, automatic, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(rule.id)
            .bind(rule.network.to_string())
            .bind(rule.action.as_str())
            .bind(rule.scope.as_str())
            .bind(&rule.reason)
            .bind(rule.automatic)
            .bind(Ts(rule.created_at))
            .bind(rule.expires_at.map(Ts))
            .execute(&mut *tx)
            .await?;
            tx.insert_event(event).await?;
        });
        Ok(())
    }

    /// Deletes one rule with its event; false when there is no such rule.
    pub async fn delete_ip_rule(&self, id: Uuid, event: &SecurityEvent) -> Result<bool> {
        let done = with_tx!(self, |tx| {
            tx.swap_and_record(sqlx::query("DELETE FROM ip_rules WHERE id = $1").bind(id), event).await?
        });
        Ok(done)
    }

    /// Deletes every rule (the break-glass for an operator locked out), with its event;
    /// returns how many there were.
    pub async fn clear_ip_rules(&self, event: &SecurityEvent) -> Result<u64> {
        let n = with_tx!(self, |tx| {
            let n = sqlx::query("DELETE FROM ip_rules").execute(&mut *tx).await?.rows_affected();
            tx.insert_event(event).await?;
            n
        });
        Ok(n)
    }

    /// Deletes rules that expired before `before`.
    pub async fn purge_ip_rules(&self, before: OffsetDateTime) -> Result<u64> {
        let n = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM ip_rules WHERE expires_at IS NOT NULL AND expires_at < $1"
        )
        .bind(Ts(before))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
