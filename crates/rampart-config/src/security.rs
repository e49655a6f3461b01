//! The `[security]` section: rules that span several areas. Today, how recent a sign-in must
//! be to stand in for re-authentication (adding or removing a second factor, creating an API
//! key).

use crate::settings::{checked, secs, span};
use serde::{Deserialize, Serialize};

/// The longest `security.reauth_window_secs` may be: a day.
const MAX_REAUTH_WINDOW_SECS: u64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// How recent, in seconds, a sign-in must be to count as re-authentication: a session
    /// opened with two factors at most this long ago changes a second factor without a current
    /// code (the password is always asked), and a session this fresh creates or rotates an API
    /// key without the password (unless `api_keys.reauth_window_secs` says otherwise). 0: no
    /// session is ever recent enough.
    pub reauth_window_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { reauth_window_secs: 300 }
    }
}

/// `[security]`, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// How recent a sign-in counts as re-authentication (0 to 1 day).
    pub reauth_window: time::Duration,
}

impl SecurityConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.reauth_window_secs > MAX_REAUTH_WINDOW_SECS {
            problems.push(format!(
                "security.reauth_window_secs: must be at most {MAX_REAUTH_WINDOW_SECS}; got {}",
                self.reauth_window_secs
            ));
        }
        problems
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<SecuritySettings, Vec<String>> {
        checked(self.problems(), || SecuritySettings { reauth_window: span(secs(self.reauth_window_secs)) })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    #[test]
    fn the_window_defaults_to_five_minutes_and_api_keys_follow_it_unless_set() {
        Jail::expect_with(|jail| {
            let s = Config::load(None).unwrap().settings().unwrap();
            assert_eq!(s.security.reauth_window, time::Duration::minutes(5));
            assert_eq!(s.api_keys.reauth_window, time::Duration::minutes(5));

            jail.create_file("rampart.toml", "[security]\nreauth_window_secs = 120\n")?;
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert_eq!(s.security.reauth_window, time::Duration::minutes(2));
            assert_eq!(s.api_keys.reauth_window, time::Duration::minutes(2), "API keys fall back to it");

            // The older, narrower key still works, for API keys only.
            jail.create_file(
                "rampart.toml",
                "[security]\nreauth_window_secs = 120\n[api_keys]\nreauth_window_secs = 60\n",
            )?;
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert_eq!(s.security.reauth_window, time::Duration::minutes(2));
            assert_eq!(s.api_keys.reauth_window, time::Duration::minutes(1));
            jail.set_env("RAMPART_SECURITY__REAUTH_WINDOW_SECS", "0");
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert_eq!(s.security.reauth_window, time::Duration::ZERO, "0: never recent enough");
            Ok(())
        });
    }

    #[test]
    fn a_window_over_a_day_is_refused_by_name() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[security]\nreauth_window_secs = 86401\n");
            assert!(e.contains("security.reauth_window_secs: must be at most 86400; got 86401"), "{e}");
            let e = load_err(jail, "[security]\nreauth_window = 5\n");
            assert!(e.contains("reauth_window"), "{e}");
            Ok(())
        });
    }
}
