//! The `[mfa]` section: second factors (TOTP, backup codes, e-mailed codes) and the policy that
//! requires one for some roles.

use crate::settings::{checked, secs, span};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// The issuer authenticator apps show next to the account (TOTP `otpauth://` URI).
    pub issuer: String,
    /// Roles whose members must have a second factor. Such a user without one gets a session
    /// that can only enrol a factor (every other endpoint answers 403 `mfa_enrollment_required`).
    pub required_for_roles: Vec<String>,
    /// How long the `mfa_token` of a step-up login works, in seconds.
    pub challenge_ttl_secs: u64,
    /// Wrong second-factor codes one `mfa_token` takes before it stops working (every one also
    /// counts toward the login throttle and lockout).
    pub challenge_max_failures: u32,
    /// End the user's other sessions when a factor is added or removed.
    pub revoke_other_sessions_on_change: bool,
    /// Offer a one-time code by e-mail as a fallback during a step-up login, for accounts that
    /// have a factor (it never counts as a factor of its own, so it cannot enrol anyone).
    pub email_fallback: bool,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            issuer: "Rampart".into(),
            required_for_roles: Vec::new(),
            challenge_ttl_secs: 300,
            challenge_max_failures: 5,
            revoke_other_sessions_on_change: true,
            email_fallback: false,
        }
    }
}

/// `[mfa]`, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    pub issuer: String,
    pub required_for_roles: Vec<String>,
    /// How long the `mfa_token` of a step-up login works (30 s to 15 minutes).
    pub challenge_ttl: time::Duration,
    pub challenge_max_failures: u32,
    pub revoke_other_sessions_on_change: bool,
    pub email_fallback: bool,
}

impl MfaSettings {
    /// Whether a user with `roles` must have a second factor.
    pub fn required_for<R: AsRef<str>>(&self, roles: &[R]) -> bool {
        roles.iter().any(|r| self.required_for_roles.iter().any(|x| x == r.as_ref()))
    }
}

impl MfaConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.issuer.trim().is_empty() || self.issuer.contains(':') {
            problems.push(format!("mfa.issuer: must be non-empty and without ':'; got {:?}", self.issuer));
        }
        if !(30..=900).contains(&self.challenge_ttl_secs) {
            problems
                .push(format!("mfa.challenge_ttl_secs: must be between 30 and 900; got {}", self.challenge_ttl_secs));
        }
        if !(1..=20).contains(&self.challenge_max_failures) {
            problems.push(format!(
                "mfa.challenge_max_failures: must be between 1 and 20; got {}",
                self.challenge_max_failures
            ));
        }
        if self.required_for_roles.iter().any(|r| r.trim().is_empty()) {
            problems.push("mfa.required_for_roles: role names must not be empty".into());
        }
        problems
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<MfaSettings, Vec<String>> {
        checked(self.problems(), || MfaSettings {
            issuer: self.issuer.clone(),
            required_for_roles: self.required_for_roles.clone(),
            challenge_ttl: span(secs(self.challenge_ttl_secs)),
            challenge_max_failures: self.challenge_max_failures,
            revoke_other_sessions_on_change: self.revoke_other_sessions_on_change,
            email_fallback: self.email_fallback,
        })
    }

    /// Whether a user with `roles` must have a second factor.
    pub fn required_for<R: AsRef<str>>(&self, roles: &[R]) -> bool {
        roles.iter().any(|r| self.required_for_roles.iter().any(|x| x == r.as_ref()))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use super::*;
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    #[test]
    fn defaults_and_a_policy_load() {
        Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).unwrap().mfa, MfaConfig::default());
            jail.create_file("rampart.toml", "[mfa]\nrequired_for_roles = [\"admin\"]\nissuer = \"Acme\"\n")?;
            let c = Config::load(Some(Path::new("rampart.toml"))).unwrap();
            assert!(c.mfa.required_for(&["user", "admin"]));
            assert!(!c.mfa.required_for(&["user"]));
            assert_eq!(c.mfa.issuer, "Acme");
            Ok(())
        });
    }

    #[test]
    fn broken_keys_are_named() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[mfa]\nchallenge_ttl_secs = 5\nissuer = \"a:b\"\n");
            assert!(e.contains("mfa.challenge_ttl_secs"), "{e}");
            assert!(e.contains("mfa.issuer"), "{e}");
            let e = load_err(jail, "[mfa]\nrequire_for = [\"admin\"]\n");
            assert!(e.contains("require_for"), "{e}");
            Ok(())
        });
    }
}
