//! The `[sessions]` and `[login]` sections: how long sessions live, the session cookie, and
//! how failed logins are throttled.

use crate::settings::{checked, days, millis, secs, span};
use rampart_domain::{SessionPolicy, ThrottlePolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SameSite {
    #[default]
    Lax,
    Strict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// A session unused for this many days ends (sliding: every use extends it).
    pub idle_timeout_days: u64,
    /// A session ends this many days after login, however active.
    pub absolute_timeout_days: u64,
    /// `SameSite` of the `__Host-rampart_session` cookie (cookie mode).
    pub cookie_same_site: SameSite,
    /// Origins (`https://app.example.com`) besides Rampart's own whose cookie-authenticated
    /// requests are accepted (with the CSRF token).
    pub trusted_origins: Vec<String>,
    /// How long a session looked up by a bearer token is served from memory (0: never), so a
    /// request needs no database read for it. Revocations through this instance take effect at
    /// once; revocations through another instance sharing the database within this time.
    pub cache_ttl_ms: u64,
    /// A parent domain (`example.com`) the session cookie is shared with, so the gateway's
    /// sign-in on `auth.example.com` also counts on `app.example.com`. Switches the cookie from
    /// `__Host-rampart_session` (which forbids a `Domain`) to `__Secure-rampart_session` with
    /// `Domain=<this>`. Unset (default): the cookie stays on Rampart's own host.
    pub cookie_domain: Option<String>,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            idle_timeout_days: 30,
            absolute_timeout_days: 90,
            cookie_same_site: SameSite::Lax,
            trusted_origins: Vec::new(),
            cache_ttl_ms: 1000,
            cookie_domain: None,
        }
    }
}

/// `[sessions]`, ready to use.
#[derive(Debug, Clone)]
pub struct SessionsSettings {
    /// Idle and absolute lifetimes (idle never longer than absolute).
    pub policy: SessionPolicy,
    pub cookie_same_site: SameSite,
    pub trusted_origins: Vec<String>,
    /// How long a session read by a bearer token is served from memory (zero: never).
    pub cache_ttl: Duration,
    /// The parent domain the session cookie is shared with (lower case, no leading dot).
    pub cookie_domain: Option<String>,
}

/// The session cookie on Rampart's own host: `__Host-` makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so no subdomain can set or overwrite it.
pub const HOST_SESSION_COOKIE: &str = "__Host-rampart_session";
/// The session cookie shared with a parent domain (`sessions.cookie_domain`): `__Secure-`, the
/// strictest prefix that allows a `Domain`.
pub const SHARED_SESSION_COOKIE: &str = "__Secure-rampart_session";

impl SessionsSettings {
    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.cookie_domain.is_some() { SHARED_SESSION_COOKIE } else { HOST_SESSION_COOKIE }
    }

    /// The cookie's attributes besides its value and lifetime: `; Domain=…` when shared.
    pub fn cookie_scope(&self) -> String {
        self.cookie_domain.as_ref().map_or_else(String::new, |d| format!("; Domain={d}"))
    }
}

impl SessionsConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let (idle, absolute) = (self.idle_timeout_days, self.absolute_timeout_days);
        if idle == 0 {
            p.push("sessions.idle_timeout_days: must be at least 1".into());
        }
        if absolute == 0 {
            p.push("sessions.absolute_timeout_days: must be at least 1".into());
        }
        if idle > absolute {
            p.push(format!(
                "sessions.idle_timeout_days: must be at most sessions.absolute_timeout_days ({absolute}); got {idle}"
            ));
        }
        if let Some(d) = &self.cookie_domain {
            let d = d.trim_start_matches('.');
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if !d.contains('.') || !d.split('.').all(label_ok) {
                p.push(format!(
                    "sessions.cookie_domain: a registrable domain such as example.com (no scheme, port or path; \
                     at least two labels); got {:?}",
                    self.cookie_domain.as_deref().unwrap_or_default()
                ));
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<SessionsSettings, Vec<String>> {
        checked(self.problems(), || SessionsSettings {
            policy: SessionPolicy {
                idle: span(days(self.idle_timeout_days)),
                absolute: span(days(self.absolute_timeout_days)),
            },
            cookie_same_site: self.cookie_same_site,
            trusted_origins: self.trusted_origins.clone(),
            cache_ttl: millis(self.cache_ttl_ms),
            cookie_domain: self.cookie_domain.as_ref().map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed password attempts for one identifier (e-mail, existing or not) within
    /// `window_secs` before it is locked.
    pub max_failures: u32,
    /// The window failures are counted in, in seconds.
    pub window_secs: u64,
    /// How long a locked identifier stays locked, in seconds.
    pub lockout_secs: u64,
    /// Failed attempts from one IP address within the window before the address is locked
    /// (higher than `max_failures`: many users may share one address). 0 turns the per-address
    /// throttle off: do that when Rampart sits behind a proxy, until the proxy is configured as
    /// trusted, or every client shares the proxy's address.
    pub ip_max_failures: u32,
    /// After the second failure, the next attempt must wait this long, doubling with each
    /// further failure until the lockout (0 disables the delays).
    pub delay_base_ms: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self { max_failures: 5, window_secs: 900, lockout_secs: 900, ip_max_failures: 100, delay_base_ms: 1000 }
    }
}

/// `[login]`, ready to use.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// The throttle per login identifier (e-mail address, existing or not).
    pub identifier: ThrottlePolicy,
    /// The throttle per client address: the identifier's window and lockout with
    /// `ip_max_failures` and no delays. `None` when `ip_max_failures = 0` (off).
    pub address: Option<ThrottlePolicy>,
    /// How long a throttle counter matters after its last change: the longer of the window
    /// and the lockout (older counters can be purged).
    pub counter_lifetime: time::Duration,
}

impl LoginConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, value) in [
            ("login.max_failures", u64::from(self.max_failures)),
            ("login.window_secs", self.window_secs),
            ("login.lockout_secs", self.lockout_secs),
        ] {
            if value == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<LoginSettings, Vec<String>> {
        checked(self.problems(), || {
            let identifier = ThrottlePolicy {
                max_failures: self.max_failures,
                window: span(secs(self.window_secs)),
                lockout: span(secs(self.lockout_secs)),
                delay_base: span(millis(self.delay_base_ms)),
            };
            // Many people may share an address: no delays, a higher threshold.
            let address = (self.ip_max_failures > 0).then_some(ThrottlePolicy {
                max_failures: self.ip_max_failures,
                delay_base: time::Duration::ZERO,
                ..identifier
            });
            LoginSettings { identifier, address, counter_lifetime: identifier.window.max(identifier.lockout) }
        })
    }
}
