//! Audit events per second, sustained, on SQLite and PostgreSQL: `cargo bench -p rampart
//! --bench audit_append`. Each run appends events through the store's one write path (the
//! hash chain's head lock included) from 1, 4 and 16 concurrent writers for a fixed time, then
//! verifies the chain. PostgreSQL runs when `RAMPART_TEST_DATABASE_URL` is set (a private
//! schema, dropped afterwards). `BENCH_SECS` sets the time per case (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_domain::{Action, Actor, Outcome, SecurityEvent};
use rampart_testkit::TestDb;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn event(i: u64) -> SecurityEvent {
    SecurityEvent::new(
        uuid::Uuid::now_v7(),
        rampart_domain::Clock::now(&rampart_domain::SystemClock),
        Action::Login,
        Outcome::Failure,
    )
    .actor(Actor::Anonymous)
    .ip(Some("203.0.113.7".parse().unwrap()))
    .user_agent(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"))
    .details(serde_json::json!({ "reason": "bad_password", "i": i }))
}

async fn run(db: &TestDb, writers: usize, secs: u64) -> (f64, Duration) {
    let store = db.store().await;
    store.migrate().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, stop, count, latency_us) = (store.clone(), stop.clone(), count.clone(), latency_us.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    store.append_event(&event(count.load(Ordering::Relaxed))).await.unwrap();
                    latency_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok && report.events_checked >= n, "{report:?}");
    let mean = Duration::from_micros(latency_us.load(Ordering::Relaxed) / n.max(1));
    store.close().await;
    (n as f64 / elapsed, mean)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    println!("| backend | writers | events/s | mean append latency |");
    println!("|---|---|---|---|");
    for writers in [1, 4, 16] {
        let db = TestDb::sqlite();
        let (rate, mean) = run(&db, writers, secs).await;
        println!("| SQLite | {writers} | {rate:.0} | {:.2} ms |", mean.as_secs_f64() * 1000.0);
        if let Some(db) = TestDb::postgres().await {
            let (rate, mean) = run(&db, writers, secs).await;
            println!("| PostgreSQL | {writers} | {rate:.0} | {:.2} ms |", mean.as_secs_f64() * 1000.0);
        }
    }
}
