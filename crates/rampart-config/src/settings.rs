//! Runtime settings: the file's shape ([`Config`]) turned, once, into what the server uses.
//!
//! Durations are [`std::time::Duration`] where they time something in the process (timeouts,
//! intervals, cache lifetimes) and [`time::Duration`] where they are added to a timestamp
//! (session, token and lock lifetimes); the domain's policies ([`PasswordPolicy`],
//! [`SessionPolicy`], [`ThrottlePolicy`](rampart_domain::ThrottlePolicy),
//! [`Quota`](rampart_domain::ratelimit::Quota), …) are built, the mail sender parsed, the
//! security headers rendered. Each section converts itself next to its definition
//! (`XConfig::settings`), running its own checks first; [`Settings::from_config`] runs them all
//! and reports every broken rule, each naming its key.
//!
//! # Durations: one rule
//!
//! Every configured duration is capped at [`MAX_DURATION`] (100 years) when converted. A larger
//! value means "practically forever" and is accepted (as it always was), but cannot overflow a
//! `Duration`, an `i64` of seconds, or a timestamp plus it. Validation bounds many keys far
//! below that; the cap is for the unbounded ones (e.g. `sessions.absolute_timeout_days`).
//!
//! [`PasswordPolicy`]: rampart_domain::PasswordPolicy
//! [`SessionPolicy`]: rampart_domain::SessionPolicy

use crate::{
    AccountsSettings, ApiKeysSettings, AuditSettings, Config, ConfigError, CorsSettings, DataConfig, DatabaseSettings,
    ExportsSettings, FederationSettings, GatewaySettings, HeadersSettings, IpRulesSettings, LogConfig, LoginSettings,
    MailSettings, MfaSettings, NotificationsSettings, PasswordsSettings, RateLimitSettings, RetentionSettings,
    SecuritySettings, ServerSettings, SessionsSettings, TokensSettings, UiSettings, WebAuthnConfig, WebhooksSettings,
};
use std::time::Duration;

/// The longest any configured duration becomes: 100 years (see the module docs).
pub const MAX_DURATION: Duration = Duration::from_secs(MAX_SECS);
const MAX_SECS: u64 = 100 * 365 * 86_400;
// 3_153_600_000 fits an i64.
const MAX_SPAN: time::Duration = time::Duration::seconds(MAX_SECS as i64);

/// `n` seconds, capped at [`MAX_DURATION`].
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n.min(MAX_SECS))
}

/// `n` milliseconds, capped at [`MAX_DURATION`].
pub(crate) fn millis(n: u64) -> Duration {
    Duration::from_millis(n.min(MAX_SECS * 1000))
}

/// `n` minutes, capped at [`MAX_DURATION`].
pub(crate) fn minutes(n: u64) -> Duration {
    secs(n.saturating_mul(60))
}

/// `n` hours, capped at [`MAX_DURATION`].
pub(crate) fn hours(n: u64) -> Duration {
    secs(n.saturating_mul(3600))
}

/// `n` days, capped at [`MAX_DURATION`].
pub(crate) fn days(n: u64) -> Duration {
    secs(n.saturating_mul(86_400))
}

/// The same span as a [`time::Duration`]; exact, as every setting is capped at [`MAX_DURATION`].
pub(crate) fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d.min(MAX_DURATION)).unwrap_or(MAX_SPAN)
}

/// A section's checks, then its settings when none failed.
pub(crate) fn checked<T>(problems: Vec<String>, build: impl FnOnce() -> T) -> Result<T, Vec<String>> {
    if problems.is_empty() { Ok(build()) } else { Err(problems) }
}

/// Keeps the settings of a section, or its problems.
fn keep<T>(section: Result<T, Vec<String>>, problems: &mut Vec<String>) -> Option<T> {
    section.map_err(|p| problems.extend(p)).ok()
}

/// Rampart's configuration, ready to use: built once at load by [`Settings::from_config`]
/// (or [`Config::settings`]). One field per section of the file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub data: DataConfig,
    pub database: DatabaseSettings,
    pub log: LogConfig,
    pub passwords: PasswordsSettings,
    pub tokens: TokensSettings,
    pub accounts: AccountsSettings,
    pub sessions: SessionsSettings,
    pub login: LoginSettings,
    pub api_keys: ApiKeysSettings,
    pub mail: MailSettings,
    pub audit: AuditSettings,
    pub mfa: MfaSettings,
    pub rate_limit: RateLimitSettings,
    pub headers: HeadersSettings,
    pub cors: CorsSettings,
    pub ip_rules: IpRulesSettings,
    pub webhooks: WebhooksSettings,
    pub notifications: NotificationsSettings,
    pub retention: RetentionSettings,
    pub exports: ExportsSettings,
    pub webauthn: WebAuthnConfig,
    pub gateway: GatewaySettings,
    pub security: SecuritySettings,
    pub ui: UiSettings,
    pub federation: FederationSettings,
}

impl Settings {
    /// Loads the configuration as [`Config::load`] does and converts it: the configuration (for
    /// `rampart config check` and its digest) and its settings, checked once.
    pub fn load(path: Option<&std::path::Path>) -> Result<(Config, Settings), ConfigError> {
        let config = Config::extract(path)?;
        let settings = Settings::from_config(&config)?;
        Ok((config, settings))
    }

    /// Checks every section and converts it. The error lists every broken rule, one per line,
    /// each starting with its key (`passwords.hashing_nice: …`).
    pub fn from_config(c: &Config) -> Result<Settings, ConfigError> {
        let mut p = Vec::new();
        let server = keep(c.server.settings(), &mut p);
        let database = keep(c.database.settings(&c.data.dir), &mut p);
        let log = keep(c.log.settings(), &mut p);
        let passwords = keep(c.passwords.settings(&[&c.mfa.issuer, &c.webauthn.rp_name]), &mut p);
        let tokens = keep(c.tokens.settings(), &mut p);
        let accounts = keep(c.accounts.settings(), &mut p);
        let sessions = keep(c.sessions.settings(), &mut p);
        let login = keep(c.login.settings(), &mut p);
        // `[retention]` wins over the two older keys of its classes when it names them.
        let api_keys = keep(c.api_keys.settings(&c.security), &mut p).map(|mut k| {
            if let Some(d) = c.retention.api_key_usage_days.filter(|d| (1..=3650).contains(d)) {
                k.usage_retention = span(days(d));
            }
            k
        });
        let mail = keep(c.mail.settings(&c.data.dir), &mut p);
        let audit = keep(c.audit.settings(), &mut p).map(|mut a| {
            if let Some(d) = c.retention.audit_days.filter(|d| *d <= 36_500) {
                a.retention = (d > 0).then(|| span(days(d)));
            }
            a
        });
        let mfa = keep(c.mfa.settings(), &mut p);
        let rate_limit = keep(c.rate_limit.settings(), &mut p);
        let headers = keep(c.headers.settings(), &mut p);
        let cors = keep(c.cors.settings(), &mut p);
        let ip_rules = keep(c.ip_rules.settings(), &mut p);
        let webhooks = keep(c.webhooks.settings(), &mut p);
        let notifications = keep(c.notifications.settings(), &mut p);
        let retention = keep(c.retention.settings(), &mut p);
        let exports = keep(c.exports.settings(), &mut p);
        let webauthn = keep(c.webauthn.settings(), &mut p);
        let gateway = keep(c.gateway.settings(), &mut p);
        let security = keep(c.security.settings(), &mut p);
        let ui = keep(c.ui.settings(), &mut p);
        let federation = keep(c.federation.settings(), &mut p);
        match (
            server,
            database,
            log,
            passwords,
            tokens,
            accounts,
            sessions,
            login,
            api_keys,
            mail,
            audit,
            mfa,
            rate_limit,
            headers,
            cors,
            ip_rules,
            webhooks,
            notifications,
            retention,
            exports,
            webauthn,
            gateway,
            security,
            ui,
            federation,
        ) {
            (
                Some(server),
                Some(database),
                Some(log),
                Some(passwords),
                Some(tokens),
                Some(accounts),
                Some(sessions),
                Some(login),
                Some(api_keys),
                Some(mail),
                Some(audit),
                Some(mfa),
                Some(rate_limit),
                Some(headers),
                Some(cors),
                Some(ip_rules),
                Some(webhooks),
                Some(notifications),
                Some(retention),
                Some(exports),
                Some(webauthn),
                Some(gateway),
                Some(security),
                Some(ui),
                Some(federation),
            ) if p.is_empty() => Ok(Settings {
                server,
                data: c.data.clone(),
                database,
                log,
                passwords,
                tokens,
                accounts,
                sessions,
                login,
                api_keys,
                mail,
                audit,
                mfa,
                rate_limit,
                headers,
                cors,
                ip_rules,
                webhooks,
                notifications,
                retention,
                exports,
                webauthn,
                gateway,
                security,
                ui,
                federation,
            }),
            _ => Err(ConfigError::Invalid(p.join("\n"))),
        }
    }
}

impl Config {
    /// The runtime settings of this configuration: see [`Settings::from_config`].
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::from_config(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MailDelivery, OnRedisError, RateLimitRule, SiemOutput, SiemSink};
    use rampart_domain::ThrottlePolicy;
    use std::path::PathBuf;

    fn invalid(c: &Config) -> String {
        Settings::from_config(c).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn the_default_configuration_converts_to_ready_made_values() {
        let s = Settings::from_config(&Config::default()).unwrap();
        assert_eq!(s.server.request_timeout, Duration::from_secs(30));
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(s.database.busy_timeout, Duration::from_millis(5_000));
        assert_eq!(s.database.acquire_timeout, Duration::from_millis(5_000));
        assert_eq!(s.database.url.expose(), "sqlite://./rampart-data/rampart.db");
        assert!(s.database.embedded);
        assert_eq!(s.database.create_dir, Some(PathBuf::from("./rampart-data")));
        assert_eq!(s.sessions.cache_ttl, Duration::from_millis(1000));
        assert_eq!(s.sessions.policy.idle, time::Duration::days(30));
        assert_eq!(s.sessions.policy.absolute, time::Duration::days(90));
        assert_eq!(
            s.login.identifier,
            ThrottlePolicy {
                max_failures: 5,
                window: time::Duration::seconds(900),
                lockout: time::Duration::seconds(900),
                delay_base: time::Duration::milliseconds(1000),
            }
        );
        let address = s.login.address.unwrap();
        assert_eq!((address.max_failures, address.delay_base), (100, time::Duration::ZERO));
        assert_eq!((address.window, address.lockout), (s.login.identifier.window, s.login.identifier.lockout));
        assert_eq!(s.login.counter_lifetime, time::Duration::seconds(900));
        assert_eq!(s.passwords.policy.min_length, 8);
        assert!(s.passwords.policy.reject_common && s.passwords.policy.reject_email_local_part);
        assert!(s.passwords.hashing_threads >= 1);
        assert_eq!(s.passwords.max_age, None);
        assert_eq!(s.tokens.access_ttl, time::Duration::minutes(10));
        assert_eq!(s.tokens.key_window, time::Duration::seconds(630));
        assert_eq!(s.tokens.expectation.leeway_secs, 30);
        assert_eq!(s.tokens.rotate_after, Some(time::Duration::days(90)));
        assert_eq!(s.accounts.verification_ttl, time::Duration::hours(24));
        assert_eq!(s.accounts.reset_ttl, time::Duration::minutes(30));
        assert_eq!(s.accounts.reset_password_link("t0k"), "http://127.0.0.1:8080/ui/reset?token=t0k");
        assert_eq!(s.api_keys.usage_retention, time::Duration::days(90));
        assert_eq!(s.audit.retention, Some(time::Duration::days(365)));
        assert_eq!(s.audit.checkpoint_interval, Duration::from_secs(300));
        assert_eq!(s.audit.aggregate_interval, Duration::from_secs(60));
        assert_eq!(s.audit.siem, None);
        assert_eq!(s.mfa.challenge_ttl, time::Duration::minutes(5));
        assert_eq!(s.cors.max_age, Duration::from_secs(600));
        let block = s.ip_rules.auto_block.unwrap();
        assert_eq!((block.failures.limit, block.failures.period), (50, Duration::from_secs(600)));
        assert_eq!(block.duration, time::Duration::hours(1));
        assert!(matches!(&s.mail.delivery, MailDelivery::File(d) if d == &PathBuf::from("./rampart-data/mail")));
        assert_eq!(s.mail.from.email.to_string(), "no-reply@localhost");
        assert!(s.rate_limit.redis.is_none());
        assert_eq!(s.rate_limit.rules.len(), RateLimitRule::defaults().len());
        assert_eq!(s.headers.hsts.as_deref(), Some("max-age=31536000; includeSubDomains"));
        let csp = s.headers.fixed.iter().find(|(n, _)| *n == "content-security-policy").unwrap();
        assert!(csp.1.ends_with("form-action 'self'; report-uri /v1/csp-report"), "{}", csp.1);
    }

    #[test]
    fn zero_means_off_where_documented() {
        let mut c = Config::default();
        c.login.ip_max_failures = 0;
        c.login.delay_base_ms = 0;
        c.tokens.rotate_after_days = 0;
        c.audit.retention_days = 0;
        c.ip_rules.auto_block_failures = 0;
        c.ip_rules.auto_block_secs = 0; // not read when auto-blocking is off
        c.headers.hsts_max_age_secs = 0;
        c.headers.frame_options = String::new();
        c.passwords.max_age_days = 7;
        c.audit.siem = SiemOutput::File;
        c.audit.siem_file = Some("/var/log/rampart.ecs".into());
        let s = c.settings().unwrap();
        assert_eq!(s.login.address, None);
        assert_eq!(s.login.identifier.delay_base, time::Duration::ZERO);
        assert_eq!(s.tokens.rotate_after, None);
        assert_eq!(s.audit.retention, None);
        assert!(s.ip_rules.auto_block.is_none());
        assert_eq!(s.headers.hsts, None);
        assert!(s.headers.fixed.iter().all(|(n, _)| *n != "x-frame-options"));
        assert_eq!(s.passwords.max_age, Some(time::Duration::days(7)));
        assert_eq!(s.audit.siem, Some(SiemSink::File("/var/log/rampart.ecs".into())));
    }

    #[test]
    fn huge_durations_are_capped_not_overflowed() {
        let mut c = Config::default();
        c.sessions.idle_timeout_days = u64::MAX;
        c.sessions.absolute_timeout_days = u64::MAX;
        c.login.window_secs = u64::MAX;
        c.login.lockout_secs = u64::MAX / 2;
        c.login.delay_base_ms = u64::MAX;
        c.passwords.max_age_days = u64::MAX;
        c.tokens.rotate_after_days = u64::MAX;
        c.server.shutdown_grace_secs = u64::MAX;
        c.database.busy_timeout_ms = u64::MAX;
        c.ip_rules.auto_block_secs = u64::MAX;
        let s = c.settings().unwrap();
        let max = span(MAX_DURATION);
        assert_eq!(max, time::Duration::days(36_500));
        assert_eq!(s.sessions.policy.idle, max);
        assert_eq!(s.sessions.policy.absolute, max);
        assert_eq!(s.login.identifier.window, max);
        assert_eq!(s.login.identifier.lockout, max);
        assert_eq!(s.login.identifier.delay_base, max);
        assert_eq!(s.login.counter_lifetime, max);
        assert_eq!(s.passwords.max_age, Some(max));
        assert_eq!(s.tokens.rotate_after, Some(max));
        assert_eq!(s.server.shutdown_grace, MAX_DURATION);
        assert_eq!(s.database.busy_timeout, MAX_DURATION);
        assert_eq!(s.ip_rules.auto_block.unwrap().duration, max);
        // A timestamp plus the cap is still a timestamp.
        let now = time::OffsetDateTime::now_utc();
        assert!(now.checked_add(s.sessions.policy.absolute).is_some());
        assert_eq!(millis(u64::MAX), MAX_DURATION);
        assert_eq!(days(u64::MAX / 2), MAX_DURATION);
    }

    #[test]
    fn every_message_names_its_key() {
        let mut c = Config::default();
        c.passwords.hashing_nice = 25;
        c.sessions.idle_timeout_days = 91;
        c.login.lockout_secs = 0;
        c.tokens.audience = " ".into();
        c.ip_rules.auto_block_window_secs = 0;
        c.audit.aggregate_interval_secs = 0;
        let msg = invalid(&c);
        for line in [
            "passwords.hashing_nice: must be between 0 and 19; got 25",
            "sessions.idle_timeout_days: must be at most sessions.absolute_timeout_days (90); got 91",
            "login.lockout_secs: must be at least 1",
            "tokens.audience: must not be empty",
            "ip_rules.auto_block_window_secs: must be at least 1",
            "audit.aggregate_interval_secs: must be between 1 and 3600; got 0",
        ] {
            assert!(msg.contains(line), "{line}: {msg}");
        }
        let lines: Vec<&str> = msg.lines().skip(1).collect();
        assert_eq!(lines.len(), 6, "{msg}");
        let keys = crate::config_keys();
        for line in lines {
            let key = line.split(':').next().unwrap();
            assert!(keys.iter().any(|k| k == key), "{key} is not a key: {msg}");
        }
        assert_eq!(c.validate().unwrap_err().to_string(), msg, "validate runs the same checks");
    }

    #[test]
    fn rate_limit_rules_are_compiled() {
        let mut c = Config::default();
        c.rate_limit.backend = crate::RateLimitBackend::Redis;
        c.rate_limit.redis_url = Some(crate::SecretUrl::new("redis://:pw@h:6379/0"));
        let s = c.settings().unwrap();
        let redis = s.rate_limit.redis.unwrap();
        assert_eq!((redis.timeout, redis.retry), (Duration::from_millis(250), Duration::from_secs(1)));
        let login = s.rate_limit.rules.iter().find(|r| r.name == "login").unwrap();
        assert_eq!(login.on_redis_error, OnRedisError::Strict);
        assert_eq!((login.quota.limit, login.window()), (10, Duration::from_secs(60)));
        assert_eq!(login.fallback.limit, 2, "a quarter of the limit");
        assert!(login.matches("POST", "/v1/auth/login") && !login.matches("GET", "/v1/auth/login"));
        let all = s.rate_limit.rules.iter().find(|r| r.name == "default").unwrap();
        assert_eq!(all.fallback, all.quota, "local fallback keeps the limit");
        assert!(all.matches("GET", "/v1/me") && !all.matches("GET", "/healthz"));
    }
}
