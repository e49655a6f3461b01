//! Redis for tests: the shared server named by `RAMPART_TEST_REDIS_URL` (required in CI), and
//! [`RedisServer`], a private `redis-server` on a free port that a test may stop and restart
//! (never stop the shared one).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TEST_REDIS_URL_ENV: &str = "RAMPART_TEST_REDIS_URL";

/// The shared test Redis, or `None` (with a note) when unset outside CI.
pub fn redis_url() -> Option<String> {
    match std::env::var(TEST_REDIS_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{TEST_REDIS_URL_ENV} must be set in CI: Redis tests may not be skipped")
        }
        _ => {
            eprintln!("skipping Redis: set {TEST_REDIS_URL_ENV} to run it");
            None
        }
    }
}

/// A key prefix no other test (or engineer) uses.
pub fn unique_prefix() -> String {
    format!("rampart-test:{}:", uuid::Uuid::now_v7().simple())
}

/// A private `redis-server` (no persistence) on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or `None` when `redis-server` is not installed (outside CI).
    pub async fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut s = RedisServer { port, child: None };
        if !s.spawn().await {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server could not be started");
            }
            eprintln!("skipping: redis-server not available");
            return None;
        }
        Some(s)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Kills the server (an outage) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (recovery).
    pub async fn restart(&mut self) {
        self.stop();
        assert!(self.spawn().await, "redis-server restarts");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
