//! Rampart's test kit: the real server on port 0 against a fresh database, with an HTTP client.
//!
//! ```ignore
//! let app = TestApp::spawn().await;          // SQLite, or PostgreSQL when configured
//! let res = app.get("/healthz").await;
//! let alice = app.create_and_login("alice@example.com", "correct horse battery", &[]).await;
//! let (status, me) = app.me(&alice.access_token).await;
//! let (status, body) = app.post_bearer("/v1/me/password", &alice.access_token, &json!({ … })).await;
//! ```
//!
//! The request helpers answer `(status, body)`, the body parsed as JSON (`Value::Null` when it
//! is not JSON). They build the request at once, so their arguments may be temporaries and the
//! futures may be kept (`join_all`, closures). `get`, `post`, `authed` and `client` give the raw
//! response, or a request to finish by hand, when a test needs headers.
//!
//! Databases: every [`TestDb`] is new and private to one test. SQLite lives in a temporary
//! directory; PostgreSQL gets its own schema (through `search_path`) in the database named by
//! `RAMPART_TEST_DATABASE_URL`, dropped when the test ends. With `CI` set, a PostgreSQL test
//! whose URL is missing fails instead of skipping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod oidc;
pub mod proxies;
pub mod redis;
pub mod smtp;

use rampart_config::{Config, SecretUrl};
use rampart_core::master_key::KeyOrigin;
use rampart_core::services::users::{CreateUser, create_user};
use rampart_domain::{Action, Actor, MasterKey, Outcome, Secret, SecurityEvent, SystemClock, User};
use rampart_server::{AppState, Application};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The PostgreSQL server tests may use (a database in it, where each test makes a schema).
pub const TEST_DATABASE_URL_ENV: &str = "RAMPART_TEST_DATABASE_URL";

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL's URL for tests, or `None` (with a note) when unset outside CI.
/// In CI (`CI` set) a missing URL is a failure: PostgreSQL tests must not silently skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{TEST_DATABASE_URL_ENV} must be set in CI: PostgreSQL tests may not be skipped")
        }
        _ => {
            eprintln!("skipping PostgreSQL: set {TEST_DATABASE_URL_ENV} to run it");
            None
        }
    }
}

/// The backend `TestApp::spawn` uses: PostgreSQL when `RAMPART_TEST_DATABASE_URL` is set.
pub fn default_backend() -> Backend {
    match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// A fresh, private database; removed on drop.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] TempDir),
    Schema {
        admin_url: String,
        schema: String,
    },
    /// Another handle on a database some other `TestDb` owns (and removes).
    Borrowed,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("rampart.db").display());
        TestDb { url, backend: Backend::Sqlite, cleanup: Cleanup::Dir(dir) }
    }

    /// A new schema in the test PostgreSQL database, or `None` when none is configured.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_url()?;
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {TEST_DATABASE_URL_ENV}: {e}"));
        // pg_trgm once per database, in `public`, as an operator would install it: were a test's
        // migration to create it in its own schema, dropping that schema at the end would drop
        // the extension, and with it the user-search index of every other test's schema.
        sqlx::Executor::execute(
            &mut conn,
            "DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('rampart: pg_trgm')); \
             CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public; END $$",
        )
        .await
        .expect("create extension pg_trgm");
        sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str()).await.expect("create schema");
        let _ = sqlx::Connection::close(conn).await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        // Every connection names the schema as its application, so the cleanup can end any
        // left behind (a transaction cut off by the end of the test holds its locks until then).
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
        Some(TestDb { url, backend: Backend::Postgres, cleanup: Cleanup::Schema { admin_url, schema } })
    }

    /// The default backend's database (see [`default_backend`]).
    pub async fn fresh() -> TestDb {
        match default_backend() {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().await.expect("postgres configured"),
        }
    }

    /// Another handle on this database, for a second server on it (several instances on one
    /// database); the database is removed when `self` is dropped, so keep `self` the longest.
    pub fn shared(&self) -> TestDb {
        TestDb { url: self.url.clone(), backend: self.backend, cleanup: Cleanup::Borrowed }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs SQL directly against this database, for tests that damage it on purpose (the
    /// audit-chain tampering tests). Nothing else should speak SQL outside the store.
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&self.url).await.expect("connect");
                sqlx::Executor::execute(&mut conn, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Backend::Postgres => {
                let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&self.url).await.expect("connect");
                sqlx::Executor::execute(&mut conn, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// Every row of every table, as text (one line per row, prefixed by the table's name), for
    /// tests that prove something is stored nowhere. SQLite quotes each value (`quote()`: text
    /// as written, blobs as hex); PostgreSQL casts each row to text.
    pub async fn dump(&self) -> String {
        let mut out = String::new();
        match self.backend {
            Backend::Sqlite => {
                let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&self.url).await.expect("connect");
                let tables: Vec<(String,)> =
                    sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                        .fetch_all(&mut conn)
                        .await
                        .expect("tables");
                for (table,) in tables {
                    let cols: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info($1)")
                        .bind(&table)
                        .fetch_all(&mut conn)
                        .await
                        .expect("columns");
                    if cols.is_empty() {
                        continue;
                    }
                    let row = cols.iter().map(|(c,)| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                    let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT {row} FROM \"{table}\""))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{table}: {e}"));
                    for (r,) in rows {
                        out.push_str(&format!("{table}: {r}\n"));
                    }
                }
            }
            Backend::Postgres => {
                let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&self.url).await.expect("connect");
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                )
                .fetch_all(&mut conn)
                .await
                .expect("tables");
                for (table,) in tables {
                    let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{table}: {e}"));
                    for (r,) in rows {
                        out.push_str(&format!("{table}: {r}\n"));
                    }
                }
            }
        }
        out
    }

    /// A raw connection pool to this database, for tests that inspect or damage it directly
    /// (its audit chain keys derive from [`test_master_key`], like a [`TestApp`]'s).
    pub async fn store(&self) -> rampart_store::Store {
        let keys = rampart_domain::audit::AuditKeys::derive(&test_master_key());
        rampart_store::Store::connect(&self.url, &Default::default(), keys).await.expect("connect")
    }
}

/// The master key every [`TestApp`] and [`TestDb::store`] uses: a store a test opens beside a
/// server links and verifies the audit chain under the same keys.
pub fn test_master_key() -> MasterKey {
    MasterKey::from_bytes(*b"rampart test master key, tests!!")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Schema { admin_url, schema } = &self.cleanup {
            let (admin_url, schema) = (admin_url.clone(), schema.clone());
            // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await {
                        // A connection of the test's own runtime, cut off mid-transaction when the
                        // test returned (its tasks cannot run while this drop blocks), would hold
                        // its locks and make the schema drop wait forever.
                        let _ = sqlx::Executor::execute(
                            &mut conn,
                            format!(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                 WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
                            )
                            .as_str(),
                        )
                        .await;
                        let _ = sqlx::Executor::execute(
                            &mut conn,
                            format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str(),
                        )
                        .await;
                        let _ = sqlx::Connection::close(conn).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A configuration for tests: port 0 on loopback, data in `dir`, database `db`.
pub fn test_config(dir: &std::path::Path, db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.data.dir = dir.to_path_buf();
    config.database.url = Some(SecretUrl::new(db.url()));
    config.database.max_connections = 5;
    // Tests fire bursts from one address (concurrency tests, many logins); the rate limiter is
    // on only in the tests about it (`c.rate_limit.enabled = true`, see `it/shield.rs`).
    config.rate_limit.enabled = false;
    config
}

/// The status and the JSON body of a response (`Value::Null` when the body is not JSON).
pub async fn read_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("response body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends `req` when awaited: (status, JSON body). It owns everything it needs, so the helpers
/// built on it may be called with temporaries and awaited later (`join_all`, closures).
async fn exchange(req: reqwest::RequestBuilder) -> (u16, Value) {
    read_json(req.send().await.expect("request sent")).await
}

/// The claims of an access token (its payload, decoded without verifying anything).
pub fn claims(access_token: &str) -> Value {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("a JWT has a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&json).expect("JSON claims")
}

/// A successful one-step login (bearer mode): its tokens, and the whole answer.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    /// The token response as sent.
    pub body: Value,
}

/// A login that asks for a second factor.
#[derive(Debug, Clone)]
pub struct MfaRequired {
    pub mfa_token: String,
    /// The factors offered, as sent (`["totp", "backup_code"]`…).
    pub methods: Value,
    /// The answer as sent.
    pub body: Value,
}

/// How long the waits of the test kit wait before they fail the test.
const WAIT: Duration = Duration::from_secs(10);

/// The real server, serving on a loopback port for one test.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
    /// The gateway's built-in proxy, when `[gateway] listen` is set.
    pub gateway_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

impl TestApp {
    /// On the default backend with the default configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestDb::fresh().await, |_| {}).await
    }

    /// On `db`, after `configure` adjusts the test configuration.
    pub async fn spawn_with(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with_clock(db, Arc::new(SystemClock), configure).await
    }

    /// Like [`TestApp::spawn_with`], with a clock the test controls (e.g. a
    /// `rampart_domain::clock::FixedClock` it advances).
    pub async fn spawn_with_clock(
        db: TestDb,
        clock: Arc<dyn rampart_domain::Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        Self::try_spawn_with_keys(db, test_master_key().into(), clock, configure).await.expect("application starts")
    }

    /// Like [`TestApp::spawn_with`], under the master key ring `keys` (the current key first);
    /// the start-up's error when it fails (a ring lacking a key some value is sealed under).
    pub async fn try_spawn_with_keys(
        db: TestDb,
        keys: rampart_domain::KeyRing,
        clock: Arc<dyn rampart_domain::Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestApp, rampart_core::startup::StartupError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path(), &db);
        configure(&mut config);
        config.validate().expect("test config is valid");
        let app = Application::build(config, keys, KeyOrigin::Environment, clock).await?;
        let addr = app.local_addr();
        let gateway_addr = app.gateway_addr();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Ok(TestApp { addr, client, state, db, gateway_addr, shutdown: Some(tx), server: Some(server), _dir: dir })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    /// An unauthenticated POST with a JSON body: (status, JSON body).
    pub fn post_json(&self, path: &str, body: &Value) -> impl Future<Output = (u16, Value)> + use<> {
        exchange(self.post(path, body))
    }

    /// A POST with a JSON body, ready to send (the body is serialized at once, so the value
    /// may be a temporary).
    pub fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).json(body)
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn authed(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(token)
    }

    /// `method path` with `Authorization: Bearer <token>` and, when given, a JSON body:
    /// (status, JSON body).
    pub fn send_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> impl Future<Output = (u16, Value)> + use<> {
        let mut req = self.authed(method, path, token);
        if let Some(body) = body {
            req = req.json(body);
        }
        exchange(req)
    }

    /// `GET path` with a bearer token: (status, JSON body).
    pub fn get_bearer(&self, path: &str, token: &str) -> impl Future<Output = (u16, Value)> + use<> {
        self.send_bearer(reqwest::Method::GET, path, token, None)
    }

    /// `POST path` with a bearer token and a JSON body: (status, JSON body).
    pub fn post_bearer(&self, path: &str, token: &str, body: &Value) -> impl Future<Output = (u16, Value)> + use<> {
        self.send_bearer(reqwest::Method::POST, path, token, Some(body))
    }

    /// `GET /v1/me` with a bearer token: (status, JSON body).
    pub fn me(&self, token: &str) -> impl Future<Output = (u16, Value)> + use<> {
        self.get_bearer("/v1/me", token)
    }

    /// Logs in (bearer mode) with one step; panics unless that answers 200 with tokens.
    pub async fn login(&self, email: &str, password: &str) -> LoggedIn {
        let (status, body) =
            self.post_json("/v1/auth/login", &serde_json::json!({ "email": email, "password": password })).await;
        assert_eq!(status, 200, "login failed: {body}");
        let field = |name: &str| {
            body[name].as_str().unwrap_or_else(|| panic!("login answered without {name}: {body}")).to_string()
        };
        LoggedIn {
            access_token: field("access_token"),
            refresh_token: field("refresh_token"),
            session_id: field("session_id"),
            body: body.clone(),
        }
    }

    /// Creates a user (as [`TestApp::create_user`]) and logs in as them.
    pub async fn create_and_login(&self, email: &str, password: &str, roles: &[&str]) -> LoggedIn {
        self.create_user(email, password, roles).await;
        self.login(email, password).await
    }

    /// Logs in with the password of an account that has a second factor; panics unless the
    /// answer is 200 asking for the second factor, with no session yet.
    pub async fn mfa_token(&self, email: &str, password: &str) -> MfaRequired {
        let (status, body) =
            self.post_json("/v1/auth/login", &serde_json::json!({ "email": email, "password": password })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["mfa_required"], true, "{body}");
        assert!(body.get("access_token").is_none(), "no session before the second factor: {body}");
        let mfa_token = body["mfa_token"].as_str().unwrap_or_else(|| panic!("no mfa_token: {body}")).to_string();
        MfaRequired { mfa_token, methods: body["methods"].clone(), body }
    }

    /// The actions of the newest 500 security events, newest first.
    pub async fn actions(&self) -> Vec<String> {
        self.events().await.into_iter().map(|e| e.action.as_str().to_string()).collect()
    }

    /// Whether one of the newest 500 security events is `action` with `outcome`.
    pub async fn has_event(&self, action: Action, outcome: Outcome) -> bool {
        self.events().await.iter().any(|e| e.action == action && e.outcome == outcome)
    }

    /// The newest 500 security events, newest first.
    pub async fn events(&self) -> Vec<SecurityEvent> {
        self.state.store.recent_events(500).await.expect("recent events").into_iter().map(|e| e.event).collect()
    }

    /// Waits until at least `n` of the newest 500 security events match `matches` (for events
    /// recorded off the request path); returns them, newest first. Panics after 10 seconds.
    pub async fn wait_for_events(&self, n: usize, matches: impl Fn(&SecurityEvent) -> bool) -> Vec<SecurityEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found: Vec<SecurityEvent> = self.events().await.into_iter().filter(|e| matches(e)).collect();
            if found.len() >= n {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} matching events within {WAIT:?}, not {n}", found.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The newest `action` event, waiting for it as [`TestApp::wait_for_events`] does.
    pub async fn wait_for_event(&self, action: Action) -> SecurityEvent {
        self.wait_for_events(1, |e| e.action == action).await.remove(0)
    }

    /// Waits until the server's mail outbox holds nothing pending: every message queued so far
    /// (and every security notice of the events so far) has reached its transport (the SMTP
    /// sink has it), was skipped, or was given up on. After a request that sends mail, the sink
    /// then holds everything that request sent. Panics after 30 s.
    pub async fn mail_idle(&self) {
        let drained = async {
            self.state.mailer.idle().await;
            while self.state.store.mail_counts().await.expect("mail counts").pending > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), drained).await.expect("the mail outbox drains within 30 s");
    }

    /// Creates a user through the same service as the CLI.
    pub async fn create_user(&self, email: &str, password: &str, roles: &[&str]) -> User {
        let input = CreateUser {
            email: email.into(),
            password: Secret::new(password.into()),
            name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        create_user(&self.state, input, Actor::System, "test").await.expect("user created")
    }

    /// Signals shutdown and waits for the server to finish its in-flight requests.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Signals shutdown without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.abort();
        }
    }
}

/// Runs `body` once per available backend: SQLite always, PostgreSQL when configured.
/// The contract suite is written with this so both backends answer the same tests.
#[macro_export]
macro_rules! for_each_backend {
    (|$db:ident| $body:block) => {{
        {
            let $db = $crate::TestDb::sqlite();
            $body
        }
        if let Some($db) = $crate::TestDb::postgres().await {
            $body
        }
    }};
}
