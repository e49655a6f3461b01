//! The `[cors]` section: which browser origins may call the API from script.

use crate::settings::{checked, secs};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`, exact) allowed to call the API. Empty: none (no CORS
    /// headers are sent, browsers refuse cross-origin calls). No `*`: the API takes credentials.
    pub allowed_origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookies and `Authorization` from script).
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self { allowed_origins: Vec::new(), allow_credentials: true, max_age_secs: 600 }
    }
}

/// `[cors]`, ready to use.
#[derive(Debug, Clone)]
pub struct CorsSettings {
    /// Exact origins (`scheme://host[:port]`) allowed to call the API; empty: none.
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer (`Access-Control-Max-Age`, whole seconds).
    pub max_age: Duration,
}

impl CorsConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for o in &self.allowed_origins {
            if o.contains('*') {
                p.push(format!(
                    "cors.allowed_origins: no wildcards (the API takes credentials); list each origin; got {o:?}"
                ));
            } else if !(o.starts_with("https://") || o.starts_with("http://"))
                || o.ends_with('/')
                || o.matches('/').count() != 2
            {
                p.push(format!("cors.allowed_origins: an origin is scheme://host[:port], no path; got {o:?}"));
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<CorsSettings, Vec<String>> {
        checked(self.problems(), || CorsSettings {
            allowed_origins: self.allowed_origins.clone(),
            allow_credentials: self.allow_credentials,
            max_age: secs(self.max_age_secs),
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use crate::tests::load_err;
    use figment::Jail;

    #[test]
    fn wildcards_and_paths_are_refused() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[cors]\nallowed_origins = [\"*\", \"https://a.example/x\"]\n");
            assert!(msg.contains("no wildcards"), "{msg}");
            assert!(msg.contains("no path"), "{msg}");
            Ok(())
        });
    }
}
