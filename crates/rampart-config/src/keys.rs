//! The configuration's keys, derived from its types, to tell a mistyped environment variable
//! (`RAMPART_DATABASE_URL`) from a configuration key (`RAMPART_DATABASE__URL`).

use crate::{Config, ENV_PREFIX};

/// `RAMPART_` variables that are not configuration keys but are read elsewhere.
const OTHER_ENV: &[&str] = &[
    "RAMPART_MASTER_KEY",
    "RAMPART_MASTER_KEY_FILE",
    "RAMPART_MASTER_KEYS",
    "RAMPART_MASTER_KEYS_FILE",
    "RAMPART_CONFIG",
    "RAMPART_BLESS",
];

/// Every key of the configuration as a dotted path, tables included (`server`,
/// `server.listen`, `mail.smtp`, `mail.smtp.host`, …), sorted. Derived by serializing
/// [`Config::default`], so a key added to a section is listed with nothing else to update.
/// Optional keys unset by default (`database.url`, `mail.smtp.password`) are not serialized, so
/// not listed; their section is.
pub fn config_keys() -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(toml::Value::Table(table)) = toml::Value::try_from(Config::default()) {
        collect("", &table, &mut keys);
    }
    keys
}

fn collect(prefix: &str, table: &toml::Table, keys: &mut Vec<String>) {
    for (name, value) in table {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        keys.push(path.clone());
        if let toml::Value::Table(inner) = value {
            collect(&path, inner, keys);
        }
    }
}

/// The variable `name` (a `RAMPART_` one without `__`) was probably meant as: the key whose
/// path, with `_` for `.`, is its rest (`RAMPART_MAIL_SMTP_HOST` → `RAMPART_MAIL__SMTP__HOST`);
/// else the longest section it starts with, then its rest (`RAMPART_DATABASE_URL` →
/// `RAMPART_DATABASE__URL`).
fn suggestion(name: &str, keys: &[String]) -> Option<String> {
    let rest = name.get(ENV_PREFIX.len()..)?;
    let lower = rest.to_ascii_lowercase();
    if let Some(key) = keys.iter().find(|k| k.contains('.') && k.replace('.', "_") == lower) {
        return Some(format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "__")));
    }
    let section =
        keys.iter().filter(|k| !k.contains('.') && lower.starts_with(&format!("{k}_"))).max_by_key(|k| k.len())?;
    let key = rest.get(section.len() + 1..)?;
    Some(format!("{ENV_PREFIX}{}__{key}", section.to_ascii_uppercase()))
}

/// Names every `RAMPART_` variable that is neither a `RAMPART_<SECTION>__<KEY>` key nor one of
/// the few read elsewhere: a mistyped `RAMPART_DATABASE_URL` must not quietly run on SQLite.
pub(crate) fn unknown_env_vars(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let keys = config_keys();
    names
        .into_iter()
        .filter(|n| n.starts_with(ENV_PREFIX) && !n.contains("__"))
        .filter(|n| !OTHER_ENV.contains(&n.as_str()) && !n.starts_with("RAMPART_TEST_"))
        .map(|n| {
            let hint = suggestion(&n, &keys).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
            format!("environment variable {n}: not a configuration key; keys are {ENV_PREFIX}<SECTION>__<KEY>{hint}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_keys_hold_every_section_and_nested_key() {
        let keys = config_keys();
        let sections: Vec<&str> = keys.iter().map(String::as_str).filter(|k| !k.contains('.')).collect();
        // Written out here to check the derivation, not used by it.
        let mut expected = [
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
            "webhooks",
            "notifications",
            "retention",
            "exports",
            "webauthn",
            "gateway",
            "security",
            "ui",
            "federation",
        ];
        expected.sort_unstable();
        assert_eq!(sections, expected);
        for key in [
            "server.listen",
            "passwords.argon2",
            "passwords.argon2.memory_kib",
            "mail.smtp.host",
            "login.window_secs",
            "federation.auto_register",
            "federation.trust_email_for_linking",
            "federation.allow_networks",
            "federation.timeout_ms",
            "federation.leeway_secs",
            "federation.flow_ttl_secs",
            "federation.telegram",
            "federation.telegram.max_age_secs",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key}: {keys:?}");
        }
    }

    #[test]
    fn suggestions_use_the_key_when_known_else_the_section() {
        let keys = config_keys();
        let hint = |n: &str| suggestion(n, &keys);
        assert_eq!(hint("RAMPART_MAIL_SMTP_HOST").as_deref(), Some("RAMPART_MAIL__SMTP__HOST"));
        assert_eq!(
            hint("RAMPART_API_KEYS_USAGE_RETENTION_DAYS").as_deref(),
            Some("RAMPART_API_KEYS__USAGE_RETENTION_DAYS")
        );
        assert_eq!(hint("RAMPART_DATABASE_URL").as_deref(), Some("RAMPART_DATABASE__URL"));
        assert_eq!(hint("RAMPART_RATE_LIMIT_NOPE").as_deref(), Some("RAMPART_RATE_LIMIT__NOPE"));
        assert_eq!(hint("RAMPART_FOO"), None);
    }
}
