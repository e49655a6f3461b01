//! The `[accounts]` and `[api_keys]` sections: registration, e-mail verification and password
//! reset links; how long API key usage is kept.

use crate::SecurityConfig;
use crate::settings::{checked, days, hours, minutes, secs, span};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Whether `POST /v1/auth/register` is open. Off: accounts come from the CLI or the admin API.
    pub registration: bool,
    /// Send a verification e-mail at registration and refuse login until the address is
    /// verified. Registration then answers 202 for new and taken addresses alike.
    pub verify_email: bool,
    /// How long an e-mail verification link works, in hours.
    pub verification_ttl_hours: u64,
    /// How long a password-reset link works, in minutes.
    pub reset_ttl_minutes: u64,
    /// The link in the verification e-mail; `{token}` is replaced by the token. The default is
    /// Rampart's own page (`/ui/verify-email`; set the host you serve it on), or point it at a
    /// page of your application that posts the token to `/v1/auth/verify-email`.
    pub verify_email_url: String,
    /// The link in the password-reset e-mail; `{token}` is replaced by the token. The default is
    /// Rampart's own page (`/ui/reset`).
    pub reset_password_url: String,
    /// How long an account whose erasure was asked for (`DELETE /v1/me`, or an administrator's
    /// `DELETE /v1/admin/users/{id}`) stays disabled, restorable by an administrator, before it
    /// is erased, in days. 0: erased by the next maintenance run.
    pub erasure_grace_days: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            registration: true,
            verify_email: false,
            verification_ttl_hours: 24,
            reset_ttl_minutes: 30,
            verify_email_url: "http://127.0.0.1:8080/ui/verify-email?token={token}".into(),
            reset_password_url: "http://127.0.0.1:8080/ui/reset?token={token}".into(),
            erasure_grace_days: 30,
        }
    }
}

/// `[accounts]`, ready to use.
#[derive(Debug, Clone)]
pub struct AccountsSettings {
    pub registration: bool,
    pub verify_email: bool,
    /// How long a verification link works (1 hour to 30 days, whole hours).
    pub verification_ttl: time::Duration,
    /// How long a password-reset link works (5 minutes to 1 day, whole minutes).
    pub reset_ttl: time::Duration,
    /// Contains `{token}`; see [`AccountsSettings::verify_email_link`].
    pub verify_email_url: String,
    /// Contains `{token}`; see [`AccountsSettings::reset_password_link`].
    pub reset_password_url: String,
    /// How long an erasure waits (0 to 365 days).
    pub erasure_grace: time::Duration,
}

impl AccountsSettings {
    /// The link of the verification e-mail for `token`.
    pub fn verify_email_link(&self, token: &str) -> String {
        self.verify_email_url.replace("{token}", token)
    }

    /// The link of the password-reset e-mail for `token`.
    pub fn reset_password_link(&self, token: &str) -> String {
        self.reset_password_url.replace("{token}", token)
    }
}

impl AccountsConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, url) in [
            ("accounts.verify_email_url", &self.verify_email_url),
            ("accounts.reset_password_url", &self.reset_password_url),
        ] {
            if !url.contains("{token}") {
                p.push(format!("{key}: must contain {{token}}; got {url:?}"));
            }
        }
        if !(1..=24 * 30).contains(&self.verification_ttl_hours) {
            p.push(format!(
                "accounts.verification_ttl_hours: must be between 1 and 720; got {}",
                self.verification_ttl_hours
            ));
        }
        if !(5..=24 * 60).contains(&self.reset_ttl_minutes) {
            p.push(format!("accounts.reset_ttl_minutes: must be between 5 and 1440; got {}", self.reset_ttl_minutes));
        }
        if self.erasure_grace_days > 365 {
            p.push(format!("accounts.erasure_grace_days: must be between 0 and 365; got {}", self.erasure_grace_days));
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<AccountsSettings, Vec<String>> {
        checked(self.problems(), || AccountsSettings {
            registration: self.registration,
            verify_email: self.verify_email,
            verification_ttl: span(hours(self.verification_ttl_hours)),
            reset_ttl: span(minutes(self.reset_ttl_minutes)),
            verify_email_url: self.verify_email_url.clone(),
            reset_password_url: self.reset_password_url.clone(),
            erasure_grace: span(days(self.erasure_grace_days)),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// How long hourly usage counts are kept, in days.
    pub usage_retention_days: u64,
    /// A completed password reset revokes every API key of the user (the reset e-mail says so):
    /// a key minted with a stolen session must not outlive the owner taking the account back.
    pub revoke_on_password_reset: bool,
    /// The longest a new key may live, in days; a key asked for without an expiry gets this
    /// one. Unset: keys may live until revoked.
    pub max_lifetime_days: Option<u32>,
    /// Creating or rotating a key needs a recent authentication: a session at most this many
    /// seconds old, or the password in the request. Unset: `security.reauth_window_secs` (the
    /// window every recent-sign-in check uses); this older key, when set, applies to API keys
    /// only.
    pub reauth_window_secs: Option<u64>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            usage_retention_days: 90,
            revoke_on_password_reset: true,
            max_lifetime_days: None,
            reauth_window_secs: None,
        }
    }
}

/// `[api_keys]`, ready to use.
#[derive(Debug, Clone)]
pub struct ApiKeysSettings {
    /// How long hourly usage counts are kept (1 to 3650 days).
    pub usage_retention: time::Duration,
    pub revoke_on_password_reset: bool,
    /// Days a new key may live at most; `None`: no limit.
    pub max_lifetime_days: Option<u32>,
    /// How recent the caller's authentication must be to create or rotate a key
    /// (`api_keys.reauth_window_secs`, else `security.reauth_window_secs`).
    pub reauth_window: time::Duration,
}

impl ApiKeysConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_lifetime_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            p.push("api_keys.max_lifetime_days: must be between 1 and 3650".into());
        }
        if !(1..=3650).contains(&self.usage_retention_days) {
            p.push(format!(
                "api_keys.usage_retention_days: must be between 1 and 3650; got {}",
                self.usage_retention_days
            ));
        }
        p
    }

    /// Checks the section and converts it; the re-authentication window falls back to
    /// `security`'s.
    pub fn settings(&self, security: &SecurityConfig) -> Result<ApiKeysSettings, Vec<String>> {
        checked(self.problems(), || ApiKeysSettings {
            usage_retention: span(days(self.usage_retention_days)),
            revoke_on_password_reset: self.revoke_on_password_reset,
            max_lifetime_days: self.max_lifetime_days,
            reauth_window: span(secs(self.reauth_window_secs.unwrap_or(security.reauth_window_secs))),
        })
    }
}
