//! Rampart's test kit: the real server on port 0 against a fresh database, with an HTTP client.
//!
//! ```ignore
//! let app = TestApp::spawn().await;          // SQLite, or PostgreSQL when configured
//! let res = app.get("/healthz").await;
//! ```
//!
//! Databases: every [`TestDb`] is new and private to one test. SQLite lives in a temporary
//! directory; PostgreSQL gets its own schema (through `search_path`) in the database named by
//! `RAMPART_TEST_DATABASE_URL`, dropped when the test ends. With `CI` set, a PostgreSQL test
//! whose URL is missing fails instead of skipping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod redis;
pub mod smtp;

use rampart_config::{Config, SecretUrl};
use rampart_core::master_key::KeyOrigin;
use rampart_core::services::users::{CreateUser, create_user};
use rampart_domain::{Actor, MasterKey, Secret, SystemClock, User};
use rampart_server::{AppState, Application};
use std::net::SocketAddr;
use std::sync::Arc;
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
    Schema { admin_url: String, schema: String },
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
        sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str()).await.expect("create schema");
        let _ = sqlx::Connection::close(conn).await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
        Some(TestDb { url, backend: Backend::Postgres, cleanup: Cleanup::Schema { admin_url, schema } })
    }

    /// The default backend's database (see [`default_backend`]).
    pub async fn fresh() -> TestDb {
        match default_backend() {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().await.expect("postgres configured"),
        }
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

    /// A raw connection pool to this database, for tests that inspect or damage it directly.
    pub async fn store(&self) -> rampart_store::Store {
        rampart_store::Store::connect(&self.url, &Default::default()).await.expect("connect")
    }
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

/// The real server, serving on a loopback port for one test.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
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
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path(), &db);
        configure(&mut config);
        config.validate().expect("test config is valid");
        let key = MasterKey::generate(&mut rand::rngs::OsRng);
        let app = Application::build(config, key, KeyOrigin::Environment, clock).await.expect("application starts");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp { addr, client, state, db, shutdown: Some(tx), server: Some(server), _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
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

    /// Logs in and returns the token response (panics unless 200).
    pub async fn login(&self, email: &str, password: &str) -> serde_json::Value {
        let res = self.post_json("/v1/auth/login", &serde_json::json!({ "email": email, "password": password })).await;
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("json body");
        assert_eq!(status, 200, "login failed: {body}");
        body
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
