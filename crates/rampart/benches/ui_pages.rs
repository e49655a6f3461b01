//! The web pages' cost, over real HTTP on loopback: `cargo bench -p rampart --bench ui_pages`
//! (use `--release` numbers: `cargo bench` builds optimised). Serves `TestApp` (SQLite), then
//! for `BENCH_SECS` each (default 5) drives `GET /healthz`, `GET /ui/login` and, signed in,
//! `GET /ui/account` and `GET /ui/account/sessions` from `BENCH_CLIENTS` concurrent keep-alive
//! clients (default 16). Prints requests per second and the mean latency of each, and the
//! sign-in page's rate as a share of `/healthz`'s (the target: at least 50 %), as one
//! JSON line at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_testkit::{TestApp, TestDb};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Requests per second and mean latency of `GET path` for `secs` from `clients` clients.
async fn drive(app: &TestApp, path: &str, cookie: Option<&str>, clients: u64, secs: u64) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let busy_us = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, count, busy_us) = (stop.clone(), count.clone(), busy_us.clone());
            let url = app.url(path);
            let cookie = cookie.map(str::to_string);
            let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let mut req = client.get(&url);
                    if let Some(c) = &cookie {
                        req = req.header("cookie", c);
                    }
                    let res = req.send().await.unwrap();
                    assert_eq!(res.status(), 200, "{url}");
                    res.bytes().await.unwrap();
                    busy_us.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
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
    let n = count.load(Ordering::Relaxed).max(1);
    (n as f64 / started.elapsed().as_secs_f64(), Duration::from_micros(busy_us.load(Ordering::Relaxed) / n))
}

fn main() {
    let secs = env_u64("BENCH_SECS", 5);
    let clients = env_u64("BENCH_CLIENTS", 16);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let app = TestApp::spawn_with(TestDb::sqlite(), |c| c.log.level = "warn".into()).await;
        app.create_user("bench@example.com", "correct horse battery staple", &[]).await;
        let res = app
            .client
            .post(app.url("/ui/login"))
            .header("origin", format!("http://{}", app.addr))
            .form(&[("email", "bench@example.com"), ("password", "correct horse battery staple")])
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let mut out = serde_json::Map::new();
        let mut rates = Vec::new();
        for (name, path, cookie) in [
            ("healthz", "/healthz", None),
            ("login", "/ui/login", None),
            ("account", "/ui/account", Some(cookie.as_str())),
            ("sessions", "/ui/account/sessions", Some(cookie.as_str())),
        ] {
            let (rate, mean) = drive(&app, path, cookie, clients, secs).await;
            println!("{name:>9}  {rate:>9.0} req/s  mean {:>7.1} µs", mean.as_secs_f64() * 1e6);
            out.insert(format!("{name}_rps"), serde_json::json!(rate.round()));
            out.insert(format!("{name}_mean_us"), serde_json::json!((mean.as_secs_f64() * 1e6).round()));
            rates.push(rate);
        }
        let share = rates[1] / rates[0];
        println!("sign-in page: {:.0} % of /healthz (target: at least 50 %)", share * 100.0);
        out.insert("login_share_of_healthz".into(), serde_json::json!((share * 100.0).round() / 100.0));
        println!("{}", serde_json::Value::Object(out));
    });
}
