//! Several instances on one PostgreSQL database (issue 21): a session ended on one instance is
//! refused on another at once (the invalidation bus), not when that one's cache expires; an
//! API key revoked through one store is dropped from another's cache; the singleton jobs (here
//! the audit checkpoints, signed every second) run on one instance at a time, not once per
//! instance; when the leading instance stops another takes over; writes from all of them leave
//! one audit chain that verifies.

use rampart_testkit::{TestApp, TestDb};
use serde_json::json;
use std::time::Duration;

fn config(c: &mut rampart_config::Config) {
    c.audit.checkpoint_interval_secs = 1;
    c.login.delay_base_ms = 0;
    // Every instance shares the per-address counter (one database): off, so the failed
    // sign-ins that make events here are never refused.
    c.login.ip_max_failures = 0;
    // Each instance also counts failures per address for its automatic blocks (50 by default),
    // and a block one instance makes reaches all of them through the database: off too. About
    // 60 sign-ins per instance over both phases crossed it on a fast run (403 from then on).
    c.ip_rules.auto_block_failures = 0;
}

/// Failed sign-ins (each one an audit event) for `secs` seconds, spread over the instances at
/// `bases` (`http://host:port`).
async fn write_events(bases: &[String], secs: u64) {
    let client = reqwest::Client::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut i = 0;
    while tokio::time::Instant::now() < until {
        let body = json!({ "email": format!("nobody{i}@example.com"), "password": "wrong" });
        let res = client.post(format!("{}/v1/auth/login", bases[i % bases.len()])).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 401);
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The address of a test server, for [`write_events`] and [`refused_after`].
fn base(app: &TestApp) -> String {
    app.url("")
}

/// Asks `GET {base}/v1/me` with `token` until it answers 401; how long that took. Fails after
/// 10 s with `what` (who still accepts the token).
async fn refused_after(base: &str, token: &str, what: &str) -> Duration {
    let client = reqwest::Client::new();
    let asked = std::time::Instant::now();
    loop {
        let res = client.get(format!("{base}/v1/me")).bearer_auth(token).send().await.unwrap();
        if res.status() == 401 {
            return asked.elapsed();
        }
        assert!(asked.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn three_instances_sign_one_checkpoint_per_interval_and_another_takes_over_from_a_stopped_leader() {
    let Some(db) = TestDb::postgres().await else { return };
    // The first instance signs at start and so leads the checkpoints.
    let a = TestApp::spawn_with(db.shared(), config).await;
    let b = TestApp::spawn_with(db.shared(), config).await;
    let c = TestApp::spawn_with(db.shared(), config).await;
    let store = db.store().await;

    let secs = 6;
    write_events(&[base(&a), base(&b), base(&c)], secs).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "one chain from three writers: {report:?}");
    let signed = report.checkpoints_checked;
    // One signer: about one checkpoint a second (plus the start); three signers would sign
    // about three a second, each on the chain's newest link at its own moment.
    assert!((2..=secs + 2).contains(&signed), "{signed} checkpoints in {secs} s from three instances");

    // The leader stops: within a period or two another instance leads and signs.
    a.stop().await.unwrap();
    write_events(&[base(&b), base(&c)], 4).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    let after = report.checkpoints_checked - signed;
    assert!((1..=6).contains(&after), "{after} checkpoints in 4 s after the leader stopped");
}

/// Waits until `store` listens for other instances' changes.
async fn listening(store: &rampart_store::Store) {
    for _ in 0..200 {
        if store.bus_state() == rampart_store::BusState::Listening {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the invalidation bus never listened: {:?}", store.bus_state());
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_on_another_long_before_its_cache_would_expire() {
    let Some(db) = TestDb::postgres().await else { return };
    // A minute of session cache: only the bus can make the other instance refuse sooner.
    let long_cache = |c: &mut rampart_config::Config| {
        c.sessions.cache_ttl_ms = 60_000;
        c.login.delay_base_ms = 0;
    };
    let a = TestApp::spawn_with(db.shared(), long_cache).await;
    let b = TestApp::spawn_with(db.shared(), long_cache).await;
    listening(&a.state.store).await;
    listening(&b.state.store).await;
    a.create_user("walker@example.com", "correct horse battery staple", &[]).await;

    let mut waits = Vec::new();
    for _ in 0..10 {
        let session = a.login("walker@example.com", "correct horse battery staple").await;
        let token = session.access_token;
        // Served by A, then from A's cache.
        assert_eq!(a.me(&token).await.0, 200);
        assert_eq!(a.me(&token).await.0, 200);
        let res = b.authed(reqwest::Method::POST, "/v1/auth/logout", &token).send().await.unwrap();
        assert_eq!(res.status(), 204, "signed out on B");
        waits.push(refused_after(&base(&a), &token, "A still accepts a session B ended").await);
    }
    waits.sort();
    eprintln!(
        "refused on A after B ended the session: median {:?}, worst {:?}",
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );
    assert!(a.state.store.bus_received() >= 10, "A heard B's notices");
}

#[tokio::test]
async fn an_api_key_revoked_through_one_store_leaves_the_other_stores_key_cache_at_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let app = TestApp::spawn_with(db.shared(), |_| {}).await;
    let other = db.store().await;
    let follower = other.clone();
    let listener = tokio::spawn(async move { follower.follow_invalidations().await });
    listening(&other).await;
    let user = app.create_user("keys@example.com", "correct horse battery staple", &[]).await;
    let login = app.login("keys@example.com", "correct horse battery staple").await;
    let (s, created) =
        app.post_bearer("/v1/me/api-keys", &login.access_token, &json!({ "name": "ci", "scopes": [] })).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // The notices of the writes so far (the account, the sign-in) have arrived by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = other.api_keys_epoch();
    let res = app
        .authed(reqwest::Method::DELETE, &format!("/v1/me/api-keys/{id}"), &login.access_token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let ended = std::time::Instant::now();
    while other.api_keys_epoch() == before {
        assert!(ended.elapsed() < Duration::from_secs(10), "the other store never heard of the revocation");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(user);
    listener.abort();
}

#[tokio::test]
async fn three_instances_admit_exactly_the_global_limit_and_lock_an_account_after_five_failures_in_all() {
    use rampart_config::{RateLimitBackend, RateLimitKey, RateLimitRule, SecretUrl};
    let Some(db) = TestDb::postgres().await else { return };
    let Some(url) = rampart_testkit::redis::redis_url() else { return };
    let prefix = rampart_testkit::redis::unique_prefix();
    let rule: RateLimitRule = serde_json::from_value(json!({
        "name": "global", "path": "/healthz", "methods": ["GET"], "key": RateLimitKey::Ip, "limit": 100,
        "window_secs": 60,
    }))
    .unwrap();
    let configure = |c: &mut rampart_config::Config| {
        c.rate_limit.enabled = true;
        c.rate_limit.backend = RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(SecretUrl::new(&url));
        c.rate_limit.key_prefix = prefix.clone();
        c.rate_limit.rules = vec![rule.clone()];
        c.login.delay_base_ms = 0;
        c.login.ip_max_failures = 0;
    };
    let apps = [
        TestApp::spawn_with(db.shared(), configure).await,
        TestApp::spawn_with(db.shared(), configure).await,
        TestApp::spawn_with(db.shared(), configure).await,
    ];
    // 150 requests at once, spread over the three (all from one address, so the per-address
    // rule is the whole traffic's limit): exactly 100 pass.
    let mut tasks = Vec::new();
    for i in 0..150 {
        let (client, url) = (apps[i % 3].client.clone(), apps[i % 3].url("/healthz"));
        tasks.push(tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() }));
    }
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(admitted, 100, "one global limit across three instances");

    // Five wrong passwords, one or two on each instance: the account is locked on all three.
    apps[0].create_user("spread@example.com", "correct horse battery staple", &[]).await;
    for i in 0..5 {
        let (s, _) = apps[i % 3]
            .post_json("/v1/auth/login", &json!({ "email": "spread@example.com", "password": "wrong" }))
            .await;
        assert_eq!(s, 401);
    }
    for app in &apps {
        let (s, body) = app
            .post_json(
                "/v1/auth/login",
                &json!({ "email": "spread@example.com", "password": "correct horse battery staple" }),
            )
            .await;
        assert_eq!(s, 429, "locked on every instance: {body}");
    }
}

#[tokio::test]
async fn a_signing_key_rotated_on_one_instance_is_in_the_others_jwks_within_a_second() {
    let Some(db) = TestDb::postgres().await else { return };
    let a = TestApp::spawn_with(db.shared(), |_| {}).await;
    let b = TestApp::spawn_with(db.shared(), |_| {}).await;
    listening(&b.state.store).await;
    let kid = a.state.signing.rotate("test").await.unwrap();
    let rotated = std::time::Instant::now();
    loop {
        let jwks: serde_json::Value = b.get("/.well-known/jwks.json").await.json().await.unwrap();
        if jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid.as_str()) {
            break;
        }
        // The ring's own refresh is every 30 s: only the bus explains a sooner arrival.
        assert!(rotated.elapsed() < Duration::from_secs(5), "B's JWKS lacks the key A rotated to");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("the new key was in B's JWKS after {:?}", rotated.elapsed());
}

/// `rampart serve` as a child process on `db` (a real process, so it can be killed with
/// SIGKILL); its address once it logged that it is ready.
fn serve_process(db: &TestDb, dir: &std::path::Path) -> (std::process::Child, String) {
    serve_process_with(db, dir, &[])
}

/// [`serve_process`] with more environment variables (configuration).
pub(crate) fn serve_process_with(
    db: &TestDb,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let key = hex::encode(*b"rampart test master key, tests!!"); // the test kit's master key
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RAMPART_LOG__FORMAT", "json")
        .env("RAMPART_SERVER__LISTEN", "127.0.0.1:0")
        .env("RAMPART_DATABASE__URL", db.url())
        .env("RAMPART_MASTER_KEY", key)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("ready on http://").nth(1).map(|r| r.split('"').next().unwrap().to_string())
            {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the child server became ready");
    (child, addr)
}

#[tokio::test]
async fn killing_one_instance_mid_load_loses_nothing_acknowledged_and_the_other_keeps_serving() {
    let Some(db) = TestDb::postgres().await else { return };
    let b = TestApp::spawn_with(db.shared(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve_process(&db, dir.path());
    let urls = [format!("http://{addr}/v1/auth/register"), b.url("/v1/auth/register")];
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let refused_by_b = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    // The load runs until told to stop (1.8 s after the kill), not for a fixed time: on a busy
    // machine the child may take a while to acknowledge its first registration.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (client, url) = (b.client.clone(), urls[t % 2].clone());
        let (acknowledged, refused_by_b, stop) = (acknowledged.clone(), refused_by_b.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let email = format!("load{t}-{i}@example.com");
                let body = json!({ "email": email, "password": "correct horse battery staple" });
                match client.post(&url).json(&body).send().await {
                    Ok(res) if res.status() == 201 => acknowledged.lock().unwrap().push(email),
                    Ok(res) if t % 2 == 1 => {
                        eprintln!("B answered {}", res.status());
                        refused_by_b.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) if t % 2 == 1 => {
                        refused_by_b.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    // The killed instance: connections refused or cut. Not acknowledged.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    // Kill the child once it has acknowledged registrations (at least 1.2 s into the load).
    let by_child = |a: &[String]| {
        a.iter().filter(|e| ["load0-", "load2-", "load4-", "load6-"].iter().any(|p| e.starts_with(p))).count()
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..300 {
        if by_child(&acknowledged.lock().unwrap()) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap(); // SIGKILL, mid-load
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(refused_by_b.load(std::sync::atomic::Ordering::Relaxed), 0, "B kept serving");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(by_child(&acknowledged) > 0, "the killed instance took some");
    let store = db.store().await;
    for email in &acknowledged {
        let lookup = rampart_domain::EmailLookup::parse(email).unwrap();
        assert!(store.find_user_by_email(lookup).await.unwrap().is_some(), "{email} was acknowledged and lost");
    }
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    eprintln!("{} registrations acknowledged across the kill; all present; the chain verifies", acknowledged.len());
}

#[tokio::test]
async fn a_lost_bus_connection_is_an_event_and_a_metric_and_it_comes_back_and_carries_changes_again() {
    let Some(db) = TestDb::postgres().await else { return };
    let long_cache = |c: &mut rampart_config::Config| c.sessions.cache_ttl_ms = 60_000;
    let a = TestApp::spawn_with(db.shared(), long_cache).await;
    let b = TestApp::spawn_with(db.shared(), long_cache).await;
    listening(&a.state.store).await;
    listening(&b.state.store).await;
    // Cut A's listening connection from the server side (its schema names its connections).
    let app_name = db.url().split("application_name=").nth(1).unwrap().to_string();
    let admin = rampart_testkit::postgres_url().unwrap();
    let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&admin).await.unwrap();
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&app_name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(cut.len(), 2, "both instances' listeners found");
    let down = a.wait_for_event(rampart_domain::Action::InvalidationBusDown).await;
    assert_eq!(down.actor, rampart_domain::Actor::System);
    a.wait_for_event(rampart_domain::Action::InvalidationBusRestored).await;
    listening(&a.state.store).await;
    assert!(a.state.store.bus_drops() >= 1);
    let metrics = a.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rampart_invalidation_bus_down 0"), "back up: {metrics}");

    // And it carries changes again.
    a.create_user("back@example.com", "correct horse battery staple", &[]).await;
    let token = a.login("back@example.com", "correct horse battery staple").await.access_token;
    assert_eq!(a.me(&token).await.0, 200);
    let res = b.authed(reqwest::Method::POST, "/v1/auth/logout", &token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    refused_after(&base(&a), &token, "A accepts a session B ended, after the bus came back").await;
}

#[tokio::test]
async fn with_redis_stopped_three_instances_keep_serving_on_local_limits_and_the_bus_still_carries_revocations() {
    use rampart_config::{RateLimitBackend, RateLimitKey, RateLimitRule, SecretUrl};
    let Some(db) = TestDb::postgres().await else { return };
    let Some(mut redis) = rampart_testkit::redis::RedisServer::start().await else { return };
    let url = redis.url();
    let prefix = rampart_testkit::redis::unique_prefix();
    let rule: RateLimitRule = serde_json::from_value(json!({
        "name": "health", "path": "/healthz", "methods": ["GET"], "key": RateLimitKey::Ip, "limit": 30,
        "window_secs": 60, "on_redis_error": "strict", "fallback_limit": 4,
    }))
    .unwrap();
    let configure = |c: &mut rampart_config::Config| {
        c.rate_limit.enabled = true;
        c.rate_limit.backend = RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(SecretUrl::new(&url));
        c.rate_limit.key_prefix = prefix.clone();
        c.rate_limit.redis_retry_ms = 50;
        c.rate_limit.redis_timeout_ms = 500;
        c.rate_limit.rules = vec![rule.clone()];
        c.sessions.cache_ttl_ms = 60_000;
    };
    let apps = [
        TestApp::spawn_with(db.shared(), configure).await,
        TestApp::spawn_with(db.shared(), configure).await,
        TestApp::spawn_with(db.shared(), configure).await,
    ];
    for app in &apps {
        listening(&app.state.store).await;
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    redis.stop();
    // Each instance falls back to the rule's local limit (4 per instance), never to unlimited.
    for app in &apps {
        let statuses: Vec<u16> = futures::future::join_all((0..8).map(|_| app.get("/healthz")))
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        assert!((1..=4).contains(&admitted), "local fallback limit per instance: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    }
    // The bus is PostgreSQL's: a revocation still reaches every instance at once.
    apps[0].create_user("outage@example.com", "correct horse battery staple", &[]).await;
    let token = apps[0].login("outage@example.com", "correct horse battery staple").await.access_token;
    assert_eq!(apps[1].me(&token).await.0, 200);
    let res = apps[2].authed(reqwest::Method::POST, "/v1/auth/logout", &token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    refused_after(&base(&apps[1]), &token, "the revocation did not reach B during the Redis outage").await;
    // Redis back: every instance counts in Redis again.
    redis.restart().await;
    for app in &apps {
        let mut recovered = false;
        for _ in 0..200 {
            app.get("/healthz").await;
            let m = app.get("/metrics").await.text().await.unwrap();
            if m.contains("rampart_rate_limit_degraded 0") {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(recovered, "an instance did not go back to Redis");
    }
}

/// Kills the child processes when the test ends, however it ends.
pub(crate) struct Processes(pub(crate) Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn three_rampart_serve_processes_share_revocations_at_once_and_sign_one_checkpoint_chain() {
    let Some(db) = TestDb::postgres().await else { return };
    let env = [
        ("RAMPART_AUDIT__CHECKPOINT_INTERVAL_SECS", "1"),
        ("RAMPART_SESSIONS__CACHE_TTL_MS", "60000"),
        ("RAMPART_LOGIN__DELAY_BASE_MS", "0"),
        ("RAMPART_LOGIN__IP_MAX_FAILURES", "0"),
        // The built-in per-address rules would refuse this many sign-ins from one address.
        ("RAMPART_RATE_LIMIT__ENABLED", "false"),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Processes(Vec::new());
    let mut bases = Vec::new();
    for d in &dirs {
        let (child, addr) = serve_process_with(&db, d.path(), &env);
        children.0.push(child);
        bases.push(format!("http://{addr}"));
    }
    let client = reqwest::Client::new();
    let pw = "correct horse battery staple";
    let res = client
        .post(format!("{}/v1/auth/register", bases[0]))
        .json(&json!({ "email": "three@example.com", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Give every listener time to be up (they start with the server).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut waits = Vec::new();
    for i in 0..20 {
        let (a, b) = (&bases[i % 3], &bases[(i + 1) % 3]);
        let res = client
            .post(format!("{a}/v1/auth/login"))
            .json(&json!({ "email": "three@example.com", "password": pw }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let token = res.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
        let me = |base: &str| client.get(format!("{base}/v1/me")).bearer_auth(&token).send();
        assert_eq!(me(a).await.unwrap().status(), 200);
        assert_eq!(me(a).await.unwrap().status(), 200, "now from A's cache");
        let res = client.post(format!("{b}/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 204);
        waits.push(refused_after(a, &token, &format!("{a} still accepts a session {b} ended")).await);
    }
    waits.sort();
    eprintln!(
        "three processes: a sign-out on one refused on another after p50 {:?}, p95 {:?}, max {:?} (20 tries)",
        waits[10], waits[18], waits[19]
    );

    // Failed sign-ins on all three for 4 s: one chain, about one checkpoint a second.
    let store = db.store().await;
    let before = store.verify_audit_chain().await.unwrap().checkpoints_checked;
    write_events(&bases, 4).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    let signed = report.checkpoints_checked - before;
    assert!((1..=6).contains(&signed), "{signed} checkpoints in 4 s from three processes");
}
