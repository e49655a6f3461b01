//! The `[federation]` section: signing in with an identity another service vouches for.
//! Today the Telegram Login Widget (`[federation.telegram]`); OpenID Connect and OAuth2
//! providers (`[[federation.providers]]`) will sit beside it.

use crate::mail::SecretString;
use crate::settings::{checked, secs, span};
use serde::{Deserialize, Serialize};

/// The shortest and longest `federation.telegram.max_age_secs`: a minute, a week.
const MIN_MAX_AGE_SECS: u64 = 60;
const MAX_MAX_AGE_SECS: u64 = 7 * 86_400;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// An unknown external identity creates an account when on; off, it is refused (403
    /// `federation_registration_closed`) and only identities linked by signed-in users sign in.
    pub auto_register: bool,
    pub telegram: TelegramConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// The bot's token from @BotFather (`123456:ABC…`): the widget's data is signed with its
    /// SHA-256. A secret: never logged, shown as `[redacted]`. Unset: Telegram sign-in is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<SecretString>,
    /// How old, in seconds, the widget's `auth_date` may be (60 to 604800).
    pub max_age_secs: u64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self { bot_token: None, max_age_secs: 86_400 }
    }
}

/// `[federation]`, ready to use.
#[derive(Debug, Clone)]
pub struct FederationSettings {
    pub auto_register: bool,
    /// `None`: no bot token, Telegram sign-in is off.
    pub telegram: Option<TelegramSettings>,
}

/// `[federation.telegram]` with a bot token set.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub bot_token: SecretString,
    pub max_age: time::Duration,
}

impl FederationConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let t = &self.telegram;
        if !(MIN_MAX_AGE_SECS..=MAX_MAX_AGE_SECS).contains(&t.max_age_secs) {
            p.push(format!(
                "federation.telegram.max_age_secs: must be between {MIN_MAX_AGE_SECS} and {MAX_MAX_AGE_SECS}; got {}",
                t.max_age_secs
            ));
        }
        if let Some(token) = &t.bot_token {
            // `<bot id>:<secret>`, as @BotFather hands it out; the value itself is never echoed.
            let ok = token
                .expose()
                .split_once(':')
                .is_some_and(|(id, rest)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && rest.len() >= 20);
            if !ok {
                p.push("federation.telegram.bot_token: must be the token @BotFather gave (<bot id>:<secret>)".into());
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<FederationSettings, Vec<String>> {
        checked(self.problems(), || FederationSettings {
            auto_register: self.auto_register,
            telegram: self
                .telegram
                .bot_token
                .clone()
                .map(|bot_token| TelegramSettings { bot_token, max_age: span(secs(self.telegram.max_age_secs)) }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    const TOKEN: &str = "123456:AAH-s3cr3t-bot-token-value-xyz";

    #[test]
    fn telegram_is_off_without_a_token_and_on_with_one() {
        Jail::expect_with(|jail| {
            let s = Config::load(None).unwrap().settings().unwrap();
            assert!(!s.federation.auto_register);
            assert!(s.federation.telegram.is_none());

            jail.create_file(
                "rampart.toml",
                &format!("[federation]\nauto_register = true\n[federation.telegram]\nbot_token = \"{TOKEN}\"\n"),
            )?;
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert!(s.federation.auto_register);
            let t = s.federation.telegram.unwrap();
            assert_eq!(t.bot_token.expose(), TOKEN);
            assert_eq!(t.max_age, time::Duration::days(1));
            Ok(())
        });
    }

    #[test]
    fn the_bot_token_never_prints() {
        Jail::expect_with(|jail| {
            jail.set_env("RAMPART_FEDERATION__TELEGRAM__BOT_TOKEN", TOKEN);
            let c = Config::load(None).unwrap();
            for out in [format!("{c:?}"), c.to_redacted_toml(), format!("{:?}", c.settings().unwrap())] {
                assert!(!out.contains("s3cr3t"), "{out}");
            }
            assert!(c.to_redacted_toml().contains("bot_token = \"[redacted]\""));
            Ok(())
        });
    }

    #[test]
    fn bounds_and_token_shape_are_refused_by_name() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[federation.telegram]\nmax_age_secs = 59\n");
            assert!(e.contains("federation.telegram.max_age_secs: must be between 60 and 604800; got 59"), "{e}");
            let e = load_err(jail, "[federation.telegram]\nmax_age_secs = 604801\n");
            assert!(e.contains("federation.telegram.max_age_secs"), "{e}");
            let e = load_err(jail, "[federation.telegram]\nbot_token = \"not-a-token-s3cr3t\"\n");
            assert!(e.contains("federation.telegram.bot_token"), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
            let e = load_err(jail, "[federation]\nauto_registre = true\n");
            assert!(e.contains("auto_registre"), "{e}");
            Ok(())
        });
    }
}
