//! Seeds a migrated Rampart database for the cost-growth scenario of `bench/run --only growth`
//! (issue 24): `growth_seed <database-url> <users> <events>`, the master key in
//! `RAMPART_MASTER_KEY` (the one `rampart serve` will use, so the audit chain verifies).
//!
//! - Users `user0000000@example.com` … with ONE shared argon2 hash: the one of the account the
//!   driver created first with `rampart users create` (`bench@example.com`), so every seeded
//!   user signs in with the bench password at the real hashing cost. Bulk multi-row INSERTs
//!   in transactions (a user each through the service would cost an argon2 hash and an audit
//!   append each).
//! - One live session per user with one unused refresh token (random hashes), bulk-inserted.
//! - `events` audit events through the store's own append path ([`Store::append_events`]:
//!   the chain's head lock and the keyed links of `append_event`, a batch per transaction),
//!   then one signed checkpoint: the chain verifies. The mix: sign-ins (10 % failed),
//!   refreshes and revocations by the seeded users, from a pool of addresses, spread over 90
//!   days.
//! - On PostgreSQL, `ANALYZE` at the end, as autovacuum would do shortly after such a load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_domain::audit::AuditKeys;
use rampart_domain::{Action, Actor, MasterKey, Outcome, SecurityEvent};
use rampart_store::{ConnectOptions, Store};
use rand::{Rng, SeedableRng};
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const ROWS: usize = 2000;
const EVENT_BATCH: usize = 20_000;

fn sqlite_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"))
        .unwrap()
}

struct Row {
    id: Uuid,
    session: Uuid,
    email: String,
    created: OffsetDateTime,
    refresh: Vec<u8>,
}

/// Inserts users, their sessions and refresh tokens, `ROWS` per statement; `$ts` turns an
/// `OffsetDateTime` into what the backend stores (the store's own encoding).
macro_rules! seed_users {
    ($pool:expr, $rows:expr, $hash:expr, $now:expr, $ts:expr) => {{
        let ts = $ts;
        for chunk in $rows.chunks(ROWS) {
            let mut tx = $pool.begin().await.unwrap();
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO users (id, email, name, password_hash, email_verified, disabled, created_at, updated_at, \
                 password_changed_at) ",
            );
            q.push_values(chunk, |mut b, r: &Row| {
                b.push_bind(r.id)
                    .push_bind(r.email.clone())
                    .push_bind(format!("Seeded {}", &r.email[..11]))
                    .push_bind($hash.clone())
                    .push_bind(true)
                    .push_bind(false)
                    .push_bind(ts(r.created))
                    .push_bind(ts(r.created))
                    .push_bind(ts(r.created));
            });
            q.build().execute(&mut *tx).await.unwrap();
            let mut q = sqlx::QueryBuilder::new("INSERT INTO user_roles (user_id, role_name) ");
            q.push_values(chunk, |mut b, r: &Row| {
                b.push_bind(r.id).push_bind("user");
            });
            q.build().execute(&mut *tx).await.unwrap();
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO sessions (id, user_id, created_at, last_active_at, idle_expires_at, absolute_expires_at, \
                 ip, user_agent, amr) ",
            );
            q.push_values(chunk, |mut b, r: &Row| {
                b.push_bind(r.session)
                    .push_bind(r.id)
                    .push_bind(ts(r.created))
                    .push_bind(ts($now))
                    .push_bind(ts($now + Duration::days(30)))
                    .push_bind(ts(r.created + Duration::days(90)))
                    .push_bind("198.51.100.7")
                    .push_bind("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
                    .push_bind(sqlx::types::Json(serde_json::json!(["pwd"])));
            });
            q.build().execute(&mut *tx).await.unwrap();
            let mut q = sqlx::QueryBuilder::new("INSERT INTO refresh_tokens (hash, session_id, created_at) ");
            q.push_values(chunk, |mut b, r: &Row| {
                b.push_bind(r.refresh.clone()).push_bind(r.session).push_bind(ts(r.created));
            });
            q.build().execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
    }};
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, users, events] = &args[..] else {
        panic!("usage: growth_seed <database-url> <users> <events> (RAMPART_MASTER_KEY set)")
    };
    let (users, events): (usize, usize) = (users.parse().unwrap(), events.parse().unwrap());
    let key = MasterKey::parse(&std::env::var("RAMPART_MASTER_KEY").expect("RAMPART_MASTER_KEY")).unwrap();
    let store = Store::connect(url, &ConnectOptions::default(), AuditKeys::derive(&key)).await.unwrap();
    store.migrate().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let now = OffsetDateTime::now_utc();
    let start = now - Duration::days(90);

    let t = Instant::now();
    let rows: Vec<Row> = (0..users)
        .map(|i| Row {
            id: Uuid::now_v7(),
            session: Uuid::now_v7(),
            email: format!("user{i:07}@example.com"),
            created: start + Duration::seconds(i as i64),
            refresh: rng.r#gen::<[u8; 32]>().to_vec(),
        })
        .collect();
    let hash_query = "SELECT password_hash FROM users WHERE email = 'bench@example.com'";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let (hash,): (String,) = sqlx::query_as(hash_query).fetch_one(&pool).await.unwrap();
        seed_users!(pool, rows, hash, now, |t: OffsetDateTime| sqlite_ts(t));
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let (hash,): (String,) = sqlx::query_as(hash_query).fetch_one(&pool).await.unwrap();
        seed_users!(pool, rows, hash, now, |t: OffsetDateTime| t);
        pool.close().await;
    }
    eprintln!("seeded {users} users with a session each in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let step = Duration::days(90) / events.max(1) as u32;
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    for i in 0..events {
        let roll = rng.gen_range(0..100);
        let (action, outcome) = match roll {
            0..=59 => (Action::Login, Outcome::Success),
            60..=69 => (Action::Login, Outcome::Failure),
            70..=94 => (Action::TokenRefreshed, Outcome::Success),
            _ => (Action::SessionRevoked, Outcome::Success),
        };
        let user = &rows[rng.gen_range(0..rows.len().max(1)).min(rows.len().saturating_sub(1))];
        let ip = format!("10.{}.{}.{}", rng.gen_range(0..4), rng.gen_range(0..256), rng.gen_range(1..255));
        let mut e = SecurityEvent::new(Uuid::now_v7(), start + step * i as u32, action, outcome)
            .actor(if outcome == Outcome::Failure { Actor::Anonymous } else { Actor::User(user.id) })
            .ip(Some(ip.parse().unwrap()))
            .user_agent(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"));
        if outcome == Outcome::Failure {
            e = e.details(serde_json::json!({ "reason": "bad_password" }));
        }
        batch.push(e);
        if batch.len() == EVENT_BATCH {
            store.append_events(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.append_events(&batch).await.unwrap();
    store.sign_checkpoint(now).await.unwrap();
    eprintln!("appended {events} audit events in {:.1} s", t.elapsed().as_secs_f64());
    store.close().await;
    // PostgreSQL's autovacuum gathers the planner's statistics within a minute or so of a
    // bulk load; a database measured straight after seeding would have none (and plans made
    // without them), which no running deployment has. SQLite gathers none by itself, so it is
    // measured as it is.
    if !url.starts_with("sqlite:") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        pool.close().await;
    }
}
