//! The `[log]` section: the log format and the `tracing` filter.

use crate::settings::checked;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, pretty when it is.
    #[default]
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, or `info,rampart_server=debug`.
    pub level: String,
    /// More name patterns whose header and query values are redacted in logs, besides the
    /// built-in list (case-insensitive substrings of the name, e.g. `"ssn"`).
    pub redact: Vec<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Auto, level: "info".into(), redact: Vec::new() }
    }
}

impl LogConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.level.trim().is_empty() {
            p.push("log.level: must not be empty".into());
        }
        if self.redact.iter().any(|r| r.trim().is_empty()) {
            p.push("log.redact: patterns must not be empty".into());
        }
        p
    }

    /// Checks the section; it is used as it is.
    pub fn settings(&self) -> Result<LogConfig, Vec<String>> {
        checked(self.problems(), || self.clone())
    }
}
