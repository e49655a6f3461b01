//! Rampart's configuration: a TOML file (`--config`) overlaid by `RAMPART_<SECTION>__<KEY>`
//! environment variables, deserialized with unknown keys rejected, then validated.
//!
//! Every field has a secure default, so an empty configuration is a working one (SQLite under
//! `./rampart-data`, listening on `127.0.0.1:8080`). Secret values (database URLs with
//! passwords, later SMTP passwords and OAuth secrets) are typed so that `Debug` and
//! `rampart config check` show `[redacted]`.

mod audit;
mod cors;
mod headers;
mod ip_rules;
mod mail;
mod mfa;
mod rate_limit;
mod url;
mod webauthn;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rampart_domain::password::{Argon2Params, CompositionRules};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use audit::*;
pub use cors::*;
pub use headers::*;
pub use ip_rules::*;
pub use mail::*;
pub use mfa::MfaConfig;
pub use rate_limit::*;
pub use url::SecretUrl;
pub use webauthn::WebAuthnConfig;

/// The prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "RAMPART_";

/// `RAMPART_` variables that are not configuration keys but are read elsewhere.
const OTHER_ENV: &[&str] = &["RAMPART_MASTER_KEY", "RAMPART_MASTER_KEY_FILE", "RAMPART_CONFIG", "RAMPART_BLESS"];
/// Sections of the configuration, for suggestions.
const SECTIONS: &[&str] = &[
    "server",
    "data",
    "database",
    "log",
    "passwords",
    "tokens",
    "accounts",
    "sessions",
    "login",
    "api_keys",
    "mail",
    "audit",
    "mfa",
    "rate_limit",
    "headers",
    "cors",
    "ip_rules",
    "webauthn",
];

/// Names every `RAMPART_` variable that is neither a `RAMPART_<SECTION>__<KEY>` key nor one of
/// the few read elsewhere: a mistyped `RAMPART_DATABASE_URL` must not quietly run on SQLite.
fn unknown_env_vars(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| n.starts_with(ENV_PREFIX) && !n.contains("__"))
        .filter(|n| !OTHER_ENV.contains(&n.as_str()) && !n.starts_with("RAMPART_TEST_"))
        .map(|n| {
            let rest = n[ENV_PREFIX.len()..].to_ascii_lowercase();
            let hint = SECTIONS
                .iter()
                .find(|s| rest.starts_with(&format!("{s}_")))
                .map(|s| {
                    format!(
                        " (did you mean {ENV_PREFIX}{}__{}?)",
                        s.to_uppercase(),
                        &n[ENV_PREFIX.len() + s.len() + 1..]
                    )
                })
                .unwrap_or_default();
            format!("environment variable {n}: not a configuration key; keys are {ENV_PREFIX}<SECTION>__<KEY>{hint}")
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub passwords: PasswordsConfig,
    pub tokens: TokensConfig,
    pub accounts: AccountsConfig,
    pub sessions: SessionsConfig,
    pub login: LoginConfig,
    pub api_keys: ApiKeysConfig,
    pub mail: MailConfig,
    pub audit: AuditConfig,
    pub mfa: MfaConfig,
    pub rate_limit: RateLimitConfig,
    pub headers: HeadersConfig,
    pub cors: CorsConfig,
    pub ip_rules: IpRulesConfig,
    pub webauthn: WebAuthnConfig,
}

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
    /// The link in the verification e-mail; `{token}` is replaced by the token. Point it at the
    /// page of your application that posts the token to `/v1/auth/verify-email`.
    pub verify_email_url: String,
    /// The link in the password-reset e-mail; `{token}` is replaced by the token.
    pub reset_password_url: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            registration: true,
            verify_email: false,
            verification_ttl_hours: 24,
            reset_ttl_minutes: 30,
            verify_email_url: "http://127.0.0.1:8080/verify-email?token={token}".into(),
            reset_password_url: "http://127.0.0.1:8080/reset-password?token={token}".into(),
        }
    }
}

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
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            idle_timeout_days: 30,
            absolute_timeout_days: 90,
            cookie_same_site: SameSite::Lax,
            trusted_origins: Vec::new(),
            cache_ttl_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// How long hourly usage counts are kept, in days.
    pub usage_retention_days: u64,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self { usage_retention_days: 90 }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TokenAlgorithm {
    /// Ed25519 (RFC 8037): small, fast, deterministic signatures.
    #[default]
    EdDSA,
    /// ECDSA on P-256 with SHA-256, for verifiers without Ed25519 support.
    ES256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// The `iss` of access tokens (usually Rampart's public URL).
    pub issuer: String,
    /// The `aud` of access tokens (the API they are for).
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    pub algorithm: TokenAlgorithm,
    /// Rotate the signing key when it is this many days old (checked every 30 s). 0: only by hand
    /// (`rampart keys rotate-signing`).
    pub rotate_after_days: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: "rampart".into(),
            audience: "rampart".into(),
            access_ttl_secs: 600,
            leeway_secs: 30,
            algorithm: TokenAlgorithm::EdDSA,
            rotate_after_days: 90,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413 `payload_too_large`.
    pub body_limit_bytes: usize,
    /// A request still running after this many seconds gets 503 `request_timeout`.
    pub request_timeout_secs: u64,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub shutdown_grace_secs: u64,
    /// JSON bodies nested deeper than this are refused (400 `validation_failed`, `too_deep`).
    pub json_max_depth: usize,
    /// JSON strings (keys or values) longer than this many bytes are refused (`too_long`).
    pub json_max_string_bytes: usize,
    /// Proxies (CIDRs) whose `X-Forwarded-For`/`Forwarded` are believed, hop by hop from the
    /// right. None by default: the client is the TCP peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            json_max_depth: 32,
            json_max_string_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

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
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Auto, level: "info".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordsConfig {
    /// Shortest password accepted (NIST SP 800-63B: 8; 15 when the password is the only factor).
    pub min_length: usize,
    pub argon2: Argon2Params,
    /// How many passwords are hashed at once, at most (each takes `argon2.memory_kib` of
    /// memory and a core). Default: the number of cores.
    pub max_concurrent_hashes: Option<usize>,
    /// Niceness of the password-hashing threads (0–19; 0: as the rest of the process). Higher
    /// lets other requests go first while logins storm.
    pub hashing_nice: i32,
    /// Refuse passwords from the list of the most common ones shipped with Rampart.
    pub reject_common: bool,
    /// Refuse passwords that contain the local part of the account's e-mail address.
    pub reject_email_local_part: bool,
    /// Refuse the last N passwords of the account on change and reset (0: off).
    pub history: usize,
    /// After this many days a password must be changed before the next login (0: never).
    pub max_age_days: u64,
    /// Optional composition rules; all off by default, as NIST SP 800-63B advises.
    pub composition: CompositionRules,
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            argon2: Argon2Params::default(),
            max_concurrent_hashes: None,
            hashing_nice: 10,
            reject_common: true,
            reject_email_local_part: true,
            history: 5,
            max_age_days: 0,
            composition: CompositionRules::default(),
        }
    }
}

/// Why configuration could not be loaded. The message names the file, key and problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration:\n{0}")]
    Invalid(String),
}

impl Config {
    /// Loads the file (if given) and the `RAMPART_<SECTION>__<KEY>` environment overlay.
    /// Only variables with a `__` are configuration: `RAMPART_MASTER_KEY` and the test
    /// variables are read elsewhere.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            // Check it ourselves: figment treats a missing file as empty, we treat it as an error.
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            figment = figment.merge(Toml::file(path));
        }
        let unknown = unknown_env_vars(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        if !unknown.is_empty() {
            return Err(ConfigError::Invalid(unknown.join("\n")));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).filter(|k| k.as_str().contains("__")).split("__"));
        let config: Config = figment.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Rules serde cannot express. Every broken rule is reported, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let p = &self.passwords;
        if !(0..=19).contains(&p.hashing_nice) {
            problems.push(format!("passwords.hashing_nice: 0 to 19; got {}", p.hashing_nice));
        }
        if !p.argon2.is_at_least_owasp() {
            let min = Argon2Params::OWASP_MIN;
            problems.push(format!(
                "passwords.argon2: memory_kib >= {}, iterations >= {}, parallelism >= {} required (OWASP minimum); got {:?}",
                min.memory_kib, min.iterations, min.parallelism, p.argon2
            ));
        }
        if p.min_length < 8 {
            problems.push(format!("passwords.min_length: must be at least 8 (NIST SP 800-63B); got {}", p.min_length));
        }
        if p.min_length > 64 {
            problems.push(format!("passwords.min_length: must be at most 64; got {}", p.min_length));
        }
        if p.max_concurrent_hashes == Some(0) {
            problems.push("passwords.max_concurrent_hashes: must be at least 1".into());
        }
        if self.server.body_limit_bytes == 0 {
            problems.push("server.body_limit_bytes: must be at least 1".into());
        }
        if !(1..=256).contains(&self.server.json_max_depth) {
            problems
                .push(format!("server.json_max_depth: must be between 1 and 256; got {}", self.server.json_max_depth));
        }
        if self.server.json_max_string_bytes == 0 {
            problems.push("server.json_max_string_bytes: must be at least 1".into());
        }
        if self.server.request_timeout_secs == 0 {
            problems.push("server.request_timeout_secs: must be at least 1".into());
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".into());
        }
        if let Some(url) = &self.database.url
            && url.scheme().is_none_or(|s| !matches!(s, "sqlite" | "postgres" | "postgresql"))
        {
            problems.push(format!("database.url: must start with sqlite:// or postgres://; got {}", url.redacted()));
        }
        let t = &self.tokens;
        if !(60..=86_400).contains(&t.access_ttl_secs) {
            problems.push(format!("tokens.access_ttl_secs: must be between 60 and 86400; got {}", t.access_ttl_secs));
        }
        if t.leeway_secs > 300 {
            problems.push(format!("tokens.leeway_secs: must be at most 300; got {}", t.leeway_secs));
        }
        if t.issuer.trim().is_empty() || t.audience.trim().is_empty() {
            problems.push("tokens.issuer and tokens.audience: must not be empty".into());
        }
        if p.history > 24 {
            problems.push(format!("passwords.history: must be at most 24; got {}", p.history));
        }
        let a = &self.accounts;
        for (key, url) in
            [("accounts.verify_email_url", &a.verify_email_url), ("accounts.reset_password_url", &a.reset_password_url)]
        {
            if !url.contains("{token}") {
                problems.push(format!("{key}: must contain {{token}}; got {url:?}"));
            }
        }
        if !(1..=24 * 30).contains(&a.verification_ttl_hours) {
            problems.push(format!(
                "accounts.verification_ttl_hours: must be between 1 and 720; got {}",
                a.verification_ttl_hours
            ));
        }
        if !(5..=24 * 60).contains(&a.reset_ttl_minutes) {
            problems
                .push(format!("accounts.reset_ttl_minutes: must be between 5 and 1440; got {}", a.reset_ttl_minutes));
        }
        let s = &self.sessions;
        if s.idle_timeout_days == 0 || s.absolute_timeout_days == 0 || s.idle_timeout_days > s.absolute_timeout_days {
            problems.push(format!(
                "sessions: need 1 <= idle_timeout_days <= absolute_timeout_days; got {} and {}",
                s.idle_timeout_days, s.absolute_timeout_days
            ));
        }
        let l = &self.login;
        if l.max_failures == 0 || l.window_secs == 0 || l.lockout_secs == 0 {
            problems.push("login: max_failures, window_secs and lockout_secs must be at least 1".into());
        }
        if !(1..=3650).contains(&self.api_keys.usage_retention_days) {
            problems.push(format!(
                "api_keys.usage_retention_days: must be between 1 and 3650; got {}",
                self.api_keys.usage_retention_days
            ));
        }
        if self.log.level.trim().is_empty() {
            problems.push("log.level: must not be empty".into());
        }
        problems.extend(self.mail.problems());
        problems.extend(self.audit.problems());
        problems.extend(self.mfa.problems());
        problems.extend(self.rate_limit.problems());
        problems.extend(self.headers.problems());
        problems.extend(self.cors.problems());
        problems.extend(self.ip_rules.problems());
        problems.extend(self.webauthn.problems());
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems.join("\n"))) }
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}", self.data.dir.join("rampart.db").display()),
        }
    }

    /// Whether the database is embedded SQLite (rather than a server other instances share).
    pub fn is_embedded_database(&self) -> bool {
        self.database.url.as_ref().is_none_or(|u| u.scheme() == Some("sqlite"))
    }

    /// The effective configuration as TOML, secrets shown as `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// One line per problem: `key: what is wrong (source)`.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e.metadata.as_ref().and_then(|m| m.source.as_ref()).map(|s| format!(" (in {s})"));
            let name = e.metadata.as_ref().map(|m| m.name.to_string());
            let origin = source.or_else(|| name.map(|n| format!(" (from {n})"))).unwrap_or_default();
            if key.is_empty() { format!("{}{origin}", e.kind) } else { format!("{key}: {}{origin}", e.kind) }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use super::*;
    use figment::Jail;

    /// Writes `toml` as the config file and returns the error loading it gives (shared with the
    /// section modules' tests).
    pub(crate) fn load_err(jail: &Jail, toml: &str) -> String {
        jail.create_file("rampart.toml", toml).unwrap();
        Config::load(Some(Path::new("rampart.toml"))).unwrap_err().to_string()
    }

    #[test]
    fn empty_config_is_the_secure_default() {
        Jail::expect_with(|_jail| {
            let c = Config::load(None).unwrap();
            assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(c.database_url(), "sqlite://./rampart-data/rampart.db");
            assert_eq!(c.passwords.argon2, Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 });
            Ok(())
        });
    }

    #[test]
    fn file_then_env_overlay() {
        Jail::expect_with(|jail| {
            jail.create_file("rampart.toml", "[server]\nlisten = \"0.0.0.0:9000\"\nbody_limit_bytes = 10\n")?;
            jail.set_env("RAMPART_SERVER__LISTEN", "127.0.0.1:9001");
            jail.set_env("RAMPART_DATABASE__URL", "postgres://rampart:pw@db/rampart");
            jail.set_env("RAMPART_PASSWORDS__ARGON2__MEMORY_KIB", "65536");
            // Not configuration: no `__`, so not read (and not rejected) here.
            jail.set_env("RAMPART_MASTER_KEY", "whatever");
            jail.set_env("RAMPART_TEST_DATABASE_URL", "postgres://x");
            let c = Config::load(Some(Path::new("rampart.toml"))).unwrap();
            assert_eq!(c.server.listen.to_string(), "127.0.0.1:9001");
            assert_eq!(c.server.body_limit_bytes, 10);
            assert_eq!(c.passwords.argon2.memory_kib, 65536);
            assert_eq!(c.database_url(), "postgres://rampart:pw@db/rampart");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
            assert!(msg.contains("lisen"), "{msg}");
            assert!(msg.contains("rampart.toml"), "{msg}");
            let msg = load_err(jail, "[servr]\nlisten = \"127.0.0.1:1\"\n");
            assert!(msg.contains("servr"), "{msg}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("RAMPART_SERVER__LISTN", "127.0.0.1:1");
            let msg = Config::load(None).unwrap_err().to_string();
            assert!(msg.contains("listn"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn stray_rampart_variables_are_rejected_with_a_suggestion() {
        let names = [
            "RAMPART_DATABASE_URL",
            "RAMPART_MASTER_KEY",
            "RAMPART_TEST_DATABASE_URL",
            "RAMPART_SERVER__LISTEN",
            "PATH",
            "RAMPART_FOO",
        ];
        let errs = unknown_env_vars(names.iter().map(|s| s.to_string()));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].contains("RAMPART_DATABASE_URL") && errs[0].contains("did you mean RAMPART_DATABASE__URL?"),
            "{}",
            errs[0]
        );
        assert!(errs[1].contains("RAMPART_FOO") && !errs[1].contains("did you mean"), "{}", errs[1]);
        Jail::expect_with(|jail| {
            jail.set_env("RAMPART_DATABASE_URL", "postgres://x");
            let msg = Config::load(None).unwrap_err().to_string();
            assert!(msg.contains("RAMPART_DATABASE__URL"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn malformed_files_and_values_are_reported() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[server\nlisten=");
            assert!(msg.contains("rampart.toml") || msg.to_lowercase().contains("toml"), "{msg}");
            let msg = load_err(jail, "[server]\nlisten = \"not an address\"\n");
            assert!(msg.contains("server.listen"), "{msg}");
            let missing = Config::load(Some(Path::new("nope.toml"))).unwrap_err().to_string();
            assert!(missing.contains("nope.toml"), "{missing}");
            Ok(())
        });
    }

    #[test]
    fn validation_names_each_broken_rule() {
        Jail::expect_with(|jail| {
            let msg = load_err(
                jail,
                "[passwords]\nmin_length = 4\n[passwords.argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n[database]\nurl = \"mysql://x\"\n",
            );
            assert!(msg.contains("passwords.argon2"), "{msg}");
            assert!(msg.contains("passwords.min_length"), "{msg}");
            assert!(msg.contains("database.url"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_rendered_config() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "RAMPART_DATABASE__URL",
                "postgres://rampart:s3cr3t-pw@db:5432/rampart?sslpassword=other-secret",
            );
            let c = Config::load(None).unwrap();
            for out in [format!("{c:?}"), c.to_redacted_toml()] {
                assert!(!out.contains("s3cr3t-pw"), "{out}");
                assert!(!out.contains("other-secret"), "{out}");
                assert!(out.contains("[redacted]"), "{out}");
            }
            assert!(c.to_redacted_toml().contains("postgres://rampart:[redacted]@db:5432/rampart"));
            Ok(())
        });
    }
}
