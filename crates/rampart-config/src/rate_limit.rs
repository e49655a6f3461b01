//! The `[rate_limit]` section: which requests are limited, keyed by what, how much, and where
//! the counters live (in memory, or in Redis shared by every instance).

use crate::SecretUrl;
use crate::settings::{checked, millis, secs};
use rampart_domain::ratelimit::Quota;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackend {
    /// Counters in this process (sharded, bounded, idle keys evicted). One instance only.
    #[default]
    Memory,
    /// Counters in Redis (`redis_url`), one atomic script per decision: shared by instances.
    Redis,
}

/// What a rule counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// The client address (resolved through trusted proxies; IPv6 by /64).
    Ip,
    /// The authenticated user (bearer access token or API key owner); the address when anonymous.
    User,
    /// The API key; the address when none is presented or it does not verify.
    ApiKey,
    /// Every holder of a role shares one bucket (the caller's first role named in `roles`… or
    /// any role); the address when anonymous.
    Role,
    /// Per user, with the limit of the user's tier: the first of the user's roles that names a
    /// tier in `tiers`, else the rule's own `limit` (the default tier, e.g. `free`).
    Tier,
}

/// What a rule does when Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Count in this process with the rule's own limit (fail open to the local limiter).
    Local,
    /// Count in this process with a stricter limit (`fallback_limit`, default a quarter of
    /// `limit`, at least 1). The default for credential endpoints: never unlimited.
    Strict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimit {
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// Names the rule in headers (`RateLimit-Policy`), logs, metrics and events.
    pub name: String,
    /// A route template (`/v1/auth/login`, `/v1/admin/users/{id}`), or a prefix ending in `*`
    /// (`/v1/admin/*`, `*` for every route).
    pub path: String,
    /// Routes the rule skips (same syntax as `path`).
    #[serde(default)]
    pub except: Vec<String>,
    /// Methods the rule applies to (`["POST"]`); empty: all.
    #[serde(default)]
    pub methods: Vec<String>,
    pub key: RateLimitKey,
    /// Requests admitted per `window_secs` (bursts up to this many).
    pub limit: u32,
    pub window_secs: u64,
    /// Count and log what would be refused, refuse nothing (for a safe rollout).
    #[serde(default)]
    pub shadow: bool,
    /// A credential endpoint (login, password reset, …): `on_redis_error` defaults to `strict`.
    #[serde(default)]
    pub credential: bool,
    /// Default: `strict` for credential rules, `local` for the rest.
    #[serde(default)]
    pub on_redis_error: Option<OnRedisError>,
    /// The per-process limit under `strict` (default `max(1, limit / 4)`).
    #[serde(default)]
    pub fallback_limit: Option<u32>,
    /// For `key = "tier"`: tier (role) name → its limit.
    #[serde(default)]
    pub tiers: BTreeMap<String, TierLimit>,
}

impl RateLimitRule {
    pub fn on_redis_error(&self) -> OnRedisError {
        self.on_redis_error.unwrap_or(if self.credential { OnRedisError::Strict } else { OnRedisError::Local })
    }

    pub fn fallback_limit(&self) -> u32 {
        self.fallback_limit.unwrap_or((self.limit / 4).max(1))
    }

    fn new(name: &str, path: &str, methods: &[&str], limit: u32, window_secs: u64, credential: bool) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            except: Vec::new(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            key: RateLimitKey::Ip,
            limit,
            window_secs,
            shadow: false,
            credential,
            on_redis_error: None,
            fallback_limit: None,
            tiers: BTreeMap::new(),
        }
    }

    /// The rules in force when none are configured: strict per-address limits on the
    /// credential endpoints, a generous one on everything else people call (the
    /// service-to-service endpoints, probes and metrics are left to deployments to limit; the
    /// gateway's doors, which a proxy calls for every request its users make, are limited by
    /// the gateway's own per-rule, per-principal limits).
    pub fn defaults() -> Vec<RateLimitRule> {
        let mut all = Self::new("default", "*", &[], 600, 60, false);
        all.except = ["/v1/keys/verify", "/v1/auth/introspect", "/healthz", "/readyz", "/metrics", "/authz/*"]
            .map(String::from)
            .to_vec();
        vec![
            Self::new("login", "/v1/auth/login", &["POST"], 10, 60, true),
            Self::new("register", "/v1/auth/register", &["POST"], 5, 60, true),
            Self::new("password-reset", "/v1/auth/password/*", &["POST"], 5, 60, true),
            Self::new("refresh", "/v1/auth/refresh", &["POST"], 30, 60, true),
            Self::new("passkey", "/v1/auth/passkey/*", &["POST"], 10, 60, true),
            Self::new("telegram", "/v1/auth/telegram", &["POST"], 10, 60, true),
            // A provider sign-in is two requests here (start, callback).
            Self::new("oauth", "/v1/auth/oauth/*", &["GET", "POST"], 20, 60, true),
            Self::new("csp-report", "/v1/csp-report", &["POST"], 20, 60, false),
            all,
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Off: no rule applies (the login throttle still does).
    pub enabled: bool,
    pub backend: RateLimitBackend,
    /// `redis://…` for `backend = "redis"`.
    pub redis_url: Option<SecretUrl>,
    /// Prefix of every Redis key (instances sharing counters use the same prefix).
    pub key_prefix: String,
    /// How long one Redis decision may take before the rule's `on_redis_error` applies.
    pub redis_timeout_ms: u64,
    /// After a Redis failure, how long to use the local fallback before trying Redis again.
    pub redis_retry_ms: u64,
    /// Most keys the in-memory limiter holds (idle keys are evicted first).
    pub max_keys: usize,
    /// The rules; every matching rule counts, and any one refusing refuses the request.
    /// Unset: [`RateLimitRule::defaults`].
    pub rules: Vec<RateLimitRule>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: RateLimitBackend::Memory,
            redis_url: None,
            key_prefix: "rampart:rl:".into(),
            redis_timeout_ms: 250,
            redis_retry_ms: 1000,
            max_keys: 100_000,
            rules: RateLimitRule::defaults(),
        }
    }
}

/// `[rate_limit]`, ready to use: the rules compiled to quotas.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Off: no rule applies.
    pub enabled: bool,
    /// The shared counters; `None`: in this process only (`backend = "memory"`).
    pub redis: Option<RedisSettings>,
    /// Most keys the in-memory limiter holds.
    pub max_keys: usize,
    pub rules: Vec<CompiledRule>,
}

/// `backend = "redis"`, ready to use.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: SecretUrl,
    pub key_prefix: String,
    /// How long one decision may take before the rule's `on_redis_error` applies.
    pub timeout: Duration,
    /// After a failure, how long the local fallback is used before Redis is tried again.
    pub retry: Duration,
}

/// A rule with its quotas computed and its defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRule {
    pub name: String,
    pub path: String,
    pub except: Vec<String>,
    /// Upper-case method names; empty: all.
    pub methods: Vec<String>,
    pub key: RateLimitKey,
    pub shadow: bool,
    pub credential: bool,
    /// Resolved: `strict` for credential rules unless configured.
    pub on_redis_error: OnRedisError,
    /// `limit` per `window_secs`.
    pub quota: Quota,
    /// The per-process quota when Redis does not answer: `quota` under `local`; under `strict`
    /// `fallback_limit` (default `max(1, limit / 4)`, never above `limit`) per window.
    pub fallback: Quota,
    /// For `key = "tier"`: tier (role) name → its quota over the same window.
    pub tiers: BTreeMap<String, Quota>,
}

impl CompiledRule {
    /// The window the rule counts in.
    pub fn window(&self) -> Duration {
        self.quota.period
    }

    /// Whether the rule applies to `method` (upper case) on the route template `route`.
    pub fn matches(&self, method: &str, route: &str) -> bool {
        let fits = |p: &str| match p.strip_suffix('*') {
            Some(prefix) => route.starts_with(prefix),
            None => p == route,
        };
        fits(&self.path)
            && !self.except.iter().any(|e| fits(e))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }
}

impl RateLimitRule {
    /// The rule with its quotas computed (after validation: limits and window at least 1).
    pub fn compile(&self) -> CompiledRule {
        let window = secs(self.window_secs).max(Duration::from_secs(1));
        let quota = |limit: u32| Quota { limit: limit.max(1), period: window };
        let on_redis_error = self.on_redis_error();
        let fallback = match on_redis_error {
            OnRedisError::Local => self.limit,
            OnRedisError::Strict => self.fallback_limit().min(self.limit),
        };
        CompiledRule {
            name: self.name.clone(),
            path: self.path.clone(),
            except: self.except.clone(),
            methods: self.methods.clone(),
            key: self.key,
            shadow: self.shadow,
            credential: self.credential,
            on_redis_error,
            quota: quota(self.limit),
            fallback: quota(fallback),
            tiers: self.tiers.iter().map(|(k, t)| (k.clone(), quota(t.limit))).collect(),
        }
    }
}

impl RateLimitConfig {
    /// Checks the section and compiles the rules.
    pub fn settings(&self) -> Result<RateLimitSettings, Vec<String>> {
        checked(self.problems(), || RateLimitSettings {
            enabled: self.enabled,
            redis: match (self.backend, &self.redis_url) {
                (RateLimitBackend::Redis, Some(url)) => Some(RedisSettings {
                    url: url.clone(),
                    key_prefix: self.key_prefix.clone(),
                    timeout: millis(self.redis_timeout_ms),
                    retry: millis(self.redis_retry_ms),
                }),
                _ => None,
            },
            max_keys: self.max_keys,
            rules: self.rules.iter().map(RateLimitRule::compile).collect(),
        })
    }

    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.backend == RateLimitBackend::Redis {
            match &self.redis_url {
                None => p.push("rate_limit.redis_url: required with backend = \"redis\"".into()),
                Some(u) if !matches!(u.scheme(), Some("redis" | "rediss" | "unix")) => {
                    p.push(format!("rate_limit.redis_url: must start with redis:// or rediss://; got {}", u.redacted()))
                }
                Some(_) => {}
            }
        }
        if self.max_keys == 0 {
            p.push("rate_limit.max_keys: must be at least 1".into());
        }
        if self.redis_timeout_ms == 0 {
            p.push("rate_limit.redis_timeout_ms: must be at least 1".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("rate_limit.rules[{i}]");
            if r.name.trim().is_empty() || !r.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                p.push(format!("{at}.name: letters, digits, '-', '_' and '.' only; got {:?}", r.name));
            }
            if !names.insert(r.name.clone()) {
                p.push(format!("{at}.name: {:?} is used by another rule", r.name));
            }
            for path in std::iter::once(&r.path).chain(&r.except) {
                if !path.starts_with('/') && path != "*" {
                    p.push(format!("{at}.path: must start with '/' or be '*'; got {path:?}"));
                }
            }
            if r.limit == 0 {
                p.push(format!("{at}.limit: must be at least 1"));
            }
            if r.window_secs == 0 {
                p.push(format!("{at}.window_secs: must be at least 1"));
            }
            if r.fallback_limit == Some(0) {
                p.push(format!("{at}.fallback_limit: must be at least 1 (a credential limit is never unlimited)"));
            }
            for m in &r.methods {
                if http_method(m).is_none() {
                    p.push(format!("{at}.methods: unknown method {m:?}"));
                }
            }
            if r.key != RateLimitKey::Tier && !r.tiers.is_empty() {
                p.push(format!("{at}.tiers: only for key = \"tier\""));
            }
            for (tier, t) in &r.tiers {
                if t.limit == 0 {
                    p.push(format!("{at}.tiers.{tier}.limit: must be at least 1"));
                }
            }
        }
        p
    }
}

fn http_method(m: &str) -> Option<&str> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].into_iter().find(|k| *k == m)
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use crate::tests::load_err;
    use figment::Jail;

    #[test]
    fn rules_are_validated_by_key() {
        Jail::expect_with(|jail| {
            let msg = load_err(
                jail,
                "[rate_limit]\nbackend = \"redis\"\n[[rate_limit.rules]]\nname = \"a b\"\npath = \"v1\"\nkey = \"ip\"\nlimit = 0\nwindow_secs = 1\nmethods = [\"FETCH\"]\nfallback_limit = 0\n",
            );
            for key in [
                "rate_limit.redis_url",
                "rate_limit.rules[0].name",
                "rate_limit.rules[0].path",
                "rate_limit.rules[0].limit",
                "rate_limit.rules[0].methods",
                "rate_limit.rules[0].fallback_limit",
            ] {
                assert!(msg.contains(key), "{key}: {msg}");
            }
            let msg = load_err(
                jail,
                "[[rate_limit.rules]]\nname = \"a\"\npath = \"*\"\nkey = \"country\"\nlimit = 1\nwindow_secs = 1\n",
            );
            assert!(msg.contains("country"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn credential_rules_fall_back_strictly_by_default() {
        let rules = super::RateLimitRule::defaults();
        let login = rules.iter().find(|r| r.name == "login").unwrap();
        assert_eq!(login.on_redis_error(), super::OnRedisError::Strict);
        assert!(login.fallback_limit() >= 1);
        let all = rules.iter().find(|r| r.name == "default").unwrap();
        assert_eq!(all.on_redis_error(), super::OnRedisError::Local);
        assert!(login.limit < all.limit, "credential endpoints are stricter");
    }
}
