//! Rampart's configuration: a TOML file (`--config`) overlaid by `RAMPART_<SECTION>__<KEY>`
//! environment variables, deserialized with unknown keys rejected, then validated.
//!
//! [`Config`] is the file's shape. [`Settings`] is what the server runs with, built from it once
//! ([`Settings::from_config`], [`Settings::load`]): durations as `Duration`s, the domain's
//! policies and the rate-limit quotas built. Each section checks and converts itself in its own
//! module, every message starting with the key it is about.
//!
//! Every field has a secure default, so an empty configuration is a working one (SQLite under
//! `./rampart-data`, listening on `127.0.0.1:8080`). Secret values (database URLs with
//! passwords, later SMTP passwords and OAuth secrets) are typed so that `Debug` and
//! `rampart config check` show `[redacted]`.

mod accounts;
mod audit;
mod cors;
mod database;
mod exports;
mod federation;
mod gateway;
mod headers;
mod ip_rules;
mod keys;
mod log;
mod mail;
mod mfa;
mod notifications;
mod passwords;
mod rate_limit;
mod retention;
mod security;
mod server;
mod sessions;
mod settings;
mod tokens;
mod ui;
mod url;
mod webauthn;
mod webhooks;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use accounts::*;
pub use audit::*;
pub use cors::*;
pub use database::*;
pub use exports::*;
pub use federation::{
    AppleSecret, ClaimsConfig, Endpoints, FederationConfig, FederationSettings, ProviderConfig, ProviderKind,
    ProviderSettings, SEALED_PREFIX, TelegramConfig, TelegramSettings, TokenAuth,
};
pub use gateway::*;
pub use headers::*;
pub use ip_rules::*;
pub use keys::config_keys;
pub use log::*;
pub use mail::*;
pub use mfa::{MfaConfig, MfaSettings};
pub use notifications::*;
pub use passwords::*;
pub use rate_limit::*;
pub use retention::*;
pub use security::{SecurityConfig, SecuritySettings};
pub use server::*;
pub use sessions::*;
pub use settings::{MAX_DURATION, Settings};
pub use tokens::*;
pub use ui::{UiConfig, UiLogo, UiSettings};
pub use url::SecretUrl;
pub use webauthn::WebAuthnConfig;
pub use webhooks::*;

/// The prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "RAMPART_";

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
    pub webhooks: WebhooksConfig,
    pub notifications: NotificationsConfig,
    pub retention: RetentionConfig,
    pub exports: ExportsConfig,
    pub webauthn: WebAuthnConfig,
    pub gateway: GatewayConfig,
    pub security: SecurityConfig,
    pub ui: UiConfig,
    pub federation: FederationConfig,
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
    /// Only variables with a `__` are configuration: `RAMPART_MASTER_KEY(S)` and the test
    /// variables are read elsewhere.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = Self::extract(path)?;
        config.validate()?;
        Ok(config)
    }

    /// The file and environment overlay, deserialized but not validated.
    pub(crate) fn extract(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            // Check it ourselves: figment treats a missing file as empty, we treat it as an error.
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            figment = figment.merge(Toml::file(path));
        }
        let unknown = keys::unknown_env_vars(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        if !unknown.is_empty() {
            return Err(ConfigError::Invalid(unknown.join("\n")));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).filter(|k| k.as_str().contains("__")).split("__"));
        figment.extract().map_err(|e| ConfigError::Invalid(describe(e)))
    }

    /// Rules serde cannot express, checked section by section (each section's `problems`):
    /// every broken rule is reported, each naming its key. The same checks run when the
    /// configuration is turned into [`Settings`]; this only discards the result.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Settings::from_config(self).map(|_| ())
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database.url_in(&self.data.dir)
    }

    /// Whether the database is embedded SQLite (rather than a server other instances share).
    pub fn is_embedded_database(&self) -> bool {
        self.database.is_embedded()
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
    use crate::keys::unknown_env_vars;
    use figment::Jail;
    use rampart_domain::password::Argon2Params;

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
            "RAMPART_MASTER_KEYS",
            "RAMPART_MASTER_KEYS_FILE",
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
    fn settings_load_from_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("rampart.toml", "[login]\nwindow_secs = 60\n")?;
            jail.set_env("RAMPART_SERVER__REQUEST_TIMEOUT_SECS", "7");
            let (c, s) = Settings::load(Some(Path::new("rampart.toml"))).unwrap();
            assert_eq!(c.server.request_timeout_secs, 7);
            assert_eq!(s.server.request_timeout, std::time::Duration::from_secs(7));
            assert_eq!(s.login.identifier.window, time::Duration::minutes(1));
            jail.set_env("RAMPART_PASSWORDS__HASHING_NICE", "25");
            let msg = Settings::load(None).unwrap_err().to_string();
            assert!(msg.contains("passwords.hashing_nice: must be between 0 and 19; got 25"), "{msg}");
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
    fn password_strength_is_3_by_default_0_to_4_and_knows_the_product_names() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[passwords]\nmin_strength = 5\n");
            assert!(msg.contains("passwords.min_strength: must be between 0 (off) and 4; got 5"), "{msg}");
            Ok(())
        });
        let s = Config::default().settings().unwrap();
        assert_eq!(s.passwords.policy.min_strength, 3);
        assert_eq!(s.passwords.policy.dictionary, vec!["rampart".to_string()]);
        let mut c = Config::default();
        c.passwords.min_strength = 0;
        c.mfa.issuer = "Acme Vault".into();
        c.webauthn.rp_name = "ACME VAULT".into();
        let s = c.settings().unwrap();
        assert_eq!(s.passwords.policy.min_strength, 0);
        assert_eq!(s.passwords.policy.dictionary, vec!["rampart".to_string(), "acme vault".to_string()]);
        c.passwords.min_strength = 4;
        assert!(c.settings().is_ok());
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
