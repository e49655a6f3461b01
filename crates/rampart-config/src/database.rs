//! The `[data]` and `[database]` sections: where Rampart keeps its files, and which database
//! it uses (SQLite in the data directory unless a URL is given).

use crate::SecretUrl;
use crate::settings::{checked, millis};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Where Rampart keeps its files: the SQLite database and, when none is supplied,
    /// the generated master key.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("./rampart-data") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://user:pass@host/db`. Unset: SQLite at `<data.dir>/rampart.db`.
    pub url: Option<SecretUrl>,
    pub max_connections: u32,
    /// SQLite: how long a writer waits for a lock before failing.
    pub busy_timeout_ms: u64,
    /// How long a request waits for a free connection.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: None, max_connections: 10, busy_timeout_ms: 5_000, acquire_timeout_ms: 5_000 }
    }
}

/// `[database]`, ready to use.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The URL in effect: the configured one, or `sqlite://<data.dir>/rampart.db`.
    pub url: SecretUrl,
    /// Whether the database is embedded SQLite (rather than a server other instances share).
    pub embedded: bool,
    /// `Some(data.dir)` when the URL is the default SQLite in the data directory: create that
    /// directory (0700) before connecting.
    pub create_dir: Option<PathBuf>,
    pub max_connections: u32,
    pub busy_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_connections == 0 {
            p.push("database.max_connections: must be at least 1".into());
        }
        if let Some(url) = &self.url
            && url.scheme().is_none_or(|s| !matches!(s, "sqlite" | "postgres" | "postgresql"))
        {
            p.push(format!("database.url: must start with sqlite:// or postgres://; got {}", url.redacted()));
        }
        p
    }

    /// Checks the section and converts it; `data_dir` is `data.dir`.
    pub fn settings(&self, data_dir: &Path) -> Result<DatabaseSettings, Vec<String>> {
        checked(self.problems(), || DatabaseSettings {
            url: SecretUrl::new(self.url_in(data_dir)),
            embedded: self.is_embedded(),
            create_dir: self.url.is_none().then(|| data_dir.to_path_buf()),
            max_connections: self.max_connections,
            busy_timeout: millis(self.busy_timeout_ms),
            acquire_timeout: millis(self.acquire_timeout_ms),
        })
    }

    /// The URL in effect: the configured one, or SQLite in `data_dir`.
    pub(crate) fn url_in(&self, data_dir: &Path) -> String {
        match &self.url {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}", data_dir.join("rampart.db").display()),
        }
    }

    pub(crate) fn is_embedded(&self) -> bool {
        self.url.as_ref().is_none_or(|u| u.scheme() == Some("sqlite"))
    }
}
