//! The `[mail]` section: how Rampart sends password-reset and verification e-mails, and
//! `SecretString`, a configured secret (such as the SMTP password) that never prints.

use crate::settings::{checked, secs};
use lettre::message::Mailbox;
use rampart_domain::secret::{REDACTED, Secret};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret configuration string (a password, an API secret). `Debug`, `Display` and
/// `Serialize` (so `rampart config check`) show `[redacted]`; read it with [`SecretString::expose`].
///
/// Deserializes from a string. The environment overlay parses values, so a secret that looks like
/// a number, boolean, array or table must be quoted there: `RAMPART_MAIL__SMTP__PASSWORD='"0123"'`.
/// A value that arrives as anything but a string is refused (without being echoed).
#[derive(Clone)]
pub struct SecretString(Secret<String>);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Secret::new(value.into()))
    }

    /// The secret itself. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

const NOT_TEXT: &str = "a secret must be a string; in an environment variable, put a value that looks like a \
number or boolean in double quotes (RAMPART_MAIL__SMTP__PASSWORD='\"0123\"')";

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = SecretString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretString, E> {
                Ok(SecretString::new(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SecretString, E> {
                Ok(SecretString::new(v))
            }
            // Numbers and booleans come from the environment overlay, which parses values: the
            // text is already lost (`0123` is 123), so refuse, without echoing the value.
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretString, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretString, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretString, E> {
                Err(E::custom(NOT_TEXT))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretString, E> {
                Err(E::custom(NOT_TEXT))
            }
        }
        d.deserialize_any(SecretVisitor)
    }
}

/// How mail leaves Rampart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write each message as an `.eml` file into `mail.dir` (development, tests, or a system
    /// that picks the files up). Nothing is sent.
    #[default]
    File,
    /// Submit to the SMTP server of `mail.smtp`.
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `file` (default: write `.eml` files into `dir`) or `smtp`.
    pub transport: MailTransport,
    /// The `From` of every message: `Name <address>` or a bare address.
    pub from: String,
    /// The file transport's directory (created 0700 if missing). Unset: `<data.dir>/mail`.
    pub dir: Option<PathBuf>,
    /// The SMTP server, when `transport = "smtp"`.
    pub smtp: SmtpConfig,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Rampart <no-reply@localhost>".into(),
            dir: None,
            smtp: SmtpConfig::default(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text throughout: only for a relay on the same host or a trusted network.
    /// Credentials are refused with it (they would cross the network in clear).
    None,
    /// Connect in plain text, then require `STARTTLS` (fails if the server does not offer it).
    /// Usually port 587.
    #[default]
    StartTls,
    /// TLS from the first byte (implicit TLS, "SMTPS"). Usually port 465.
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The SMTP server's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The SMTP server's port: 587 for `starttls`, 465 for `tls`, often 25 for `none`.
    pub port: u16,
    /// `starttls` (default), `tls` (implicit TLS), or `none` (plain text; local relays only).
    /// Server certificates are checked against the bundled Mozilla root certificates.
    pub tls: SmtpTls,
    /// The user to authenticate as (AUTH PLAIN or LOGIN). Unset: no authentication.
    /// Requires `tls` other than `none`: Rampart refuses to send credentials in clear text
    /// (lettre itself would send them over a plain connection if the server offered AUTH).
    pub username: Option<String>,
    /// The password for `username` (shown as `[redacted]`; set it with
    /// `RAMPART_MAIL__SMTP__PASSWORD` rather than in the file).
    pub password: Option<SecretString>,
    /// Network timeout of each SMTP command, in seconds (1 to 300).
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }
}

/// `[mail]`, ready to use.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The `From` of every message, parsed.
    pub from: Mailbox,
    pub delivery: MailDelivery,
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum MailDelivery {
    /// Written as `.eml` files into this directory (`mail.dir`, or `<data.dir>/mail`).
    File(PathBuf),
    /// Submitted to an SMTP server.
    Smtp(SmtpSettings),
}

/// `[mail.smtp]`, ready to use.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// `None`: no authentication. Never with `tls = "none"` (refused by validation).
    pub credentials: Option<SmtpCredentials>,
    /// Network timeout of each SMTP command (1 s to 5 minutes).
    pub timeout: Duration,
}

/// The SMTP user and password (empty when only the user is configured).
#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: SecretString,
}

impl MailConfig {
    /// What is wrong with this section, one line per problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            problems
                .push(format!("mail.from: must be an e-mail address or `Name <address>` ({e}); got {:?}", self.from));
        }
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            problems.push("mail.dir: must not be empty (leave it unset for <data.dir>/mail)".into());
        }
        let s = &self.smtp;
        if self.transport == MailTransport::Smtp {
            if s.host.trim().is_empty() {
                problems.push("mail.smtp.host: must not be empty with transport = \"smtp\"".into());
            }
            if s.port == 0 {
                problems.push("mail.smtp.port: must not be 0".into());
            }
        }
        if s.password.is_some() && s.username.is_none() {
            problems.push("mail.smtp.password: set without mail.smtp.username".into());
        }
        if s.username.as_ref().is_some_and(|u| u.is_empty()) {
            problems.push("mail.smtp.username: must not be empty (leave it unset for no authentication)".into());
        }
        if s.username.is_some() && s.tls == SmtpTls::None {
            problems.push(
                "mail.smtp.username: credentials need tls = \"starttls\" or \"tls\"; with tls = \"none\" they would be sent in clear text"
                    .into(),
            );
        }
        if !(1..=300).contains(&s.timeout_secs) {
            problems.push(format!("mail.smtp.timeout_secs: must be between 1 and 300; got {}", s.timeout_secs));
        }
        problems
    }

    /// Checks the section and converts it; `data_dir` is `data.dir` (the default mail directory
    /// is `<data.dir>/mail`).
    pub fn settings(&self, data_dir: &Path) -> Result<MailSettings, Vec<String>> {
        let problems = self.problems();
        // A `from` that does not parse is among the problems.
        let Ok(from) = self.from.parse::<Mailbox>() else { return Err(problems) };
        checked(problems, || {
            let s = &self.smtp;
            let delivery = match self.transport {
                MailTransport::File => MailDelivery::File(self.dir.clone().unwrap_or_else(|| data_dir.join("mail"))),
                MailTransport::Smtp => MailDelivery::Smtp(SmtpSettings {
                    host: s.host.clone(),
                    port: s.port,
                    tls: s.tls,
                    credentials: s.username.as_ref().map(|username| SmtpCredentials {
                        username: username.clone(),
                        password: s.password.clone().unwrap_or_else(|| SecretString::new("")),
                    }),
                    timeout: secs(s.timeout_secs),
                }),
            };
            MailSettings { from, delivery }
        })
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
    fn defaults_are_the_file_transport_and_valid() {
        let c = MailConfig::default();
        assert_eq!(c.transport, MailTransport::File);
        assert_eq!(c.smtp.tls, SmtpTls::StartTls);
        assert_eq!(c.smtp.port, 587);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn smtp_section_loads_from_file_and_env_with_the_password_redacted() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "rampart.toml",
                "[mail]\ntransport = \"smtp\"\nfrom = \"Example <auth@example.com>\"\n\
                 [mail.smtp]\nhost = \"smtp.example.com\"\nport = 465\ntls = \"tls\"\nusername = \"rampart\"\n",
            )?;
            jail.set_env("RAMPART_MAIL__SMTP__PASSWORD", "sm7p-s3cret");
            let c = Config::load(Some(Path::new("rampart.toml"))).unwrap();
            assert_eq!(c.mail.transport, MailTransport::Smtp);
            assert_eq!(c.mail.smtp.tls, SmtpTls::Tls);
            assert_eq!(c.mail.smtp.port, 465);
            assert_eq!(c.mail.smtp.password.as_ref().map(SecretString::expose), Some("sm7p-s3cret"));
            let rendered = c.to_redacted_toml();
            assert!(rendered.contains("password = \"[redacted]\""), "{rendered}");
            assert!(rendered.contains("tls = \"tls\""), "{rendered}");
            assert!(rendered.contains("transport = \"smtp\""), "{rendered}");
            for out in [rendered, format!("{c:?}")] {
                assert!(!out.contains("sm7p-s3cret"), "{out}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_password_that_looks_like_a_number_must_be_quoted_in_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("RAMPART_MAIL__SMTP__USERNAME", "rampart");
            // The overlay parses this as the number 123456789: refused, and not echoed.
            jail.set_env("RAMPART_MAIL__SMTP__PASSWORD", "0123456789");
            let msg = Config::load(None).unwrap_err().to_string();
            assert!(msg.contains("mail.smtp.password") && msg.contains("double quotes"), "{msg}");
            assert!(!msg.contains("123456789"), "{msg}");
            jail.set_env("RAMPART_MAIL__SMTP__PASSWORD", "\"0123456789\"");
            let c = Config::load(None).unwrap();
            assert_eq!(c.mail.smtp.password.as_ref().map(SecretString::expose), Some("0123456789"));
            Ok(())
        });
    }

    #[test]
    fn tls_modes_are_lowercase_names() {
        for (name, want) in [("none", SmtpTls::None), ("starttls", SmtpTls::StartTls), ("tls", SmtpTls::Tls)] {
            let c: SmtpConfig = toml::from_str(&format!("tls = \"{name}\"")).unwrap();
            assert_eq!(c.tls, want);
            assert!(toml::to_string(&c).unwrap().contains(&format!("tls = \"{name}\"")));
        }
        assert!(toml::from_str::<SmtpConfig>("tls = \"StartTls\"").is_err());
    }

    #[test]
    fn a_bad_from_is_rejected_by_name() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[mail]\nfrom = \"not an address\"\n");
            assert!(msg.contains("mail.from"), "{msg}");
            let msg = load_err(jail, "[mail]\nfrom = \"Rampart <no-reply@>\"\n");
            assert!(msg.contains("mail.from"), "{msg}");
            Ok(())
        });
        for ok in ["no-reply@example.com", "Rampart <no-reply@example.com>", "\"Rampart, Inc.\" <a@b.example>"] {
            let c = MailConfig { from: ok.into(), ..MailConfig::default() };
            assert!(c.problems().is_empty(), "{ok}: {:?}", c.problems());
        }
    }

    #[test]
    fn smtp_rules_name_each_broken_key() {
        Jail::expect_with(|jail| {
            let msg = load_err(
                jail,
                "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \" \"\ntimeout_secs = 0\npassword = \"x\"\n",
            );
            assert!(msg.contains("mail.smtp.host"), "{msg}");
            assert!(msg.contains("mail.smtp.timeout_secs"), "{msg}");
            assert!(msg.contains("mail.smtp.password: set without mail.smtp.username"), "{msg}");
            assert!(!msg.contains("x\""), "the password must not be echoed: {msg}");
            let msg = load_err(jail, "[mail.smtp]\ntimeout_secs = 301\n");
            assert!(msg.contains("mail.smtp.timeout_secs"), "{msg}");
            let msg = load_err(jail, "[mail]\nsmtp = { hots = \"x\" }\n");
            assert!(msg.contains("hots"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn credentials_over_plain_text_are_refused() {
        let mut c = MailConfig { transport: MailTransport::Smtp, ..MailConfig::default() };
        c.smtp.tls = SmtpTls::None;
        c.smtp.username = Some("rampart".into());
        c.smtp.password = Some(SecretString::new("pw"));
        let problems = c.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("mail.smtp.username:") && problems[0].contains("clear text"), "{problems:?}");
        c.smtp.tls = SmtpTls::StartTls;
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        // Without credentials, plain text is allowed (a local relay).
        c.smtp.tls = SmtpTls::None;
        c.smtp.username = None;
        c.smtp.password = None;
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn secret_string_never_prints() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        #[derive(Serialize)]
        struct Wrapper {
            password: SecretString,
        }
        assert_eq!(toml::to_string(&Wrapper { password: s.clone() }).unwrap(), "password = \"[redacted]\"\n");
        assert_eq!(s.expose(), "hunter2");
    }
}
