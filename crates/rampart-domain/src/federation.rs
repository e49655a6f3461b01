//! Federation: identities another service vouches for. The providers an account may be linked
//! to ([`Provider`]), and the Telegram Login Widget's check, exactly as Telegram specifies it
//! (<https://core.telegram.org/widgets/login#checking-authorization>): the data-check-string is
//! every received field but `hash`, as `key=value`, sorted by key, joined by `\n`; the secret is
//! SHA-256 of the bot token; the data is Telegram's iff hex(HMAC-SHA-256(secret, data)) is
//! `hash`. The clock is passed in.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// How far in the future a widget's `auth_date` may be (Telegram's clock against ours).
pub const MAX_CLOCK_SKEW: Duration = Duration::seconds(60);

pub mod oidc;

/// An identity provider an account can be linked to: `telegram` (the Login Widget), or an
/// OpenID Connect / OAuth2 provider named by configuration (`[[federation.providers]] name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provider(String);

impl Provider {
    /// The Login Widget's provider name.
    pub const TELEGRAM: &'static str = "telegram";

    pub fn telegram() -> Provider {
        Provider(Self::TELEGRAM.to_string())
    }

    /// The stored and shown name (`user_identities.provider`, event details, URLs).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_telegram(&self) -> bool {
        self.0 == Self::TELEGRAM
    }

    /// A provider name: 1 to 32 of `a-z`, `0-9`, `-`, `_`, starting with a letter.
    pub fn parse(s: &str) -> Option<Provider> {
        let ok = (1..=32).contains(&s.len())
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        ok.then(|| Provider(s.to_string()))
    }
}

/// What a provider asserts about the person signing in: the provider's stable id for them,
/// and display data (personal data, kept with the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub provider: Provider,
    /// The provider's stable user id (Telegram's numeric user id, as text).
    pub subject: String,
    pub username: Option<String>,
    /// First and last name as the provider gives them.
    pub display_name: Option<String>,
    /// The e-mail address the provider gave, if any.
    pub email: Option<String>,
    /// Whether the provider says it verified `email` (never assumed).
    pub email_verified: bool,
}

/// A checked Telegram Login Widget payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramLogin {
    pub identity: ExternalIdentity,
    pub auth_date: OffsetDateTime,
    /// The payload's `hash` (lower-case hex): the key its replay is refused by.
    pub hash: String,
}

/// Why a widget payload is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    #[error("the payload has no hash")]
    MissingHash,
    #[error("the payload lacks id or auth_date, or they are not numbers")]
    Malformed,
    #[error("the signature does not match the bot token")]
    BadSignature,
    #[error("auth_date is older than allowed")]
    Stale,
    #[error("auth_date is in the future")]
    FromTheFuture,
}

impl TelegramError {
    /// The reason recorded in events.
    pub fn reason(self) -> &'static str {
        match self {
            TelegramError::MissingHash => "missing_hash",
            TelegramError::Malformed => "malformed",
            TelegramError::BadSignature => "bad_signature",
            TelegramError::Stale => "stale",
            TelegramError::FromTheFuture => "from_the_future",
        }
    }
}

/// Every received field but `hash`, as `key=value`, sorted by key, joined by `\n`.
pub fn data_check_string(fields: &BTreeMap<String, String>) -> String {
    fields.iter().filter(|(k, _)| k.as_str() != "hash").map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// hex(HMAC-SHA-256(SHA-256(bot_token), data_check_string)).
pub fn telegram_signature(bot_token: &str, fields: &BTreeMap<String, String>) -> String {
    let secret = Sha256::digest(bot_token.as_bytes());
    #[allow(clippy::expect_used)] // HMAC takes a key of any length
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("any key length");
    mac.update(data_check_string(fields).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a widget payload (every field it carried, as text): the signature first (in constant
/// time), then `auth_date` within `max_age` of `now` and not more than [`MAX_CLOCK_SKEW`] ahead.
pub fn verify_telegram_login(
    fields: &BTreeMap<String, String>,
    bot_token: &str,
    max_age: Duration,
    now: OffsetDateTime,
) -> Result<TelegramLogin, TelegramError> {
    let hash = fields.get("hash").filter(|h| !h.is_empty()).ok_or(TelegramError::MissingHash)?.to_ascii_lowercase();
    let expected = telegram_signature(bot_token, fields);
    if !bool::from(expected.as_bytes().ct_eq(hash.as_bytes())) {
        return Err(TelegramError::BadSignature);
    }
    let id =
        fields.get("id").and_then(|v| v.parse::<i64>().ok()).filter(|id| *id > 0).ok_or(TelegramError::Malformed)?;
    let auth_date = fields
        .get("auth_date")
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(TelegramError::Malformed)?;
    if auth_date > now + MAX_CLOCK_SKEW {
        return Err(TelegramError::FromTheFuture);
    }
    if now - auth_date > max_age {
        return Err(TelegramError::Stale);
    }
    let text = |k: &str| fields.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let display_name = match (text("first_name"), text("last_name")) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    Ok(TelegramLogin {
        identity: ExternalIdentity {
            provider: Provider::telegram(),
            subject: id.to_string(),
            username: text("username"),
            display_name,
            email: None,
            email_verified: false,
        },
        auth_date,
        hash,
    })
}

/// The e-mail address of an account created from a Telegram identity (Telegram gives none):
/// under `.invalid`, reserved by RFC 2606 and never deliverable, so no mail is ever sent to it
/// ([`crate::email::is_deliverable`]).
pub fn telegram_placeholder_email(subject: &str) -> String {
    format!("tg{subject}@telegram.invalid")
}

/// The address of an account created from a provider's identity that came without one
/// (`<provider>-<subject>@<provider>.invalid`, never deliverable); the subject is reduced to
/// the characters an address may hold.
pub fn placeholder_email(provider: &str, subject: &str) -> String {
    let local: String =
        subject.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(40).collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() {
        hex::encode(Sha256::digest(subject.as_bytes()))[..16].to_string()
    } else {
        local.to_string()
    };
    let domain = provider.replace('_', "-");
    format!("{provider}-{local}@{domain}.invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "123456:AAH-test-bot-token-0123456789";

    /// An independent signer (ring's HMAC and digest, not the code under test).
    fn sign(bot_token: &str, fields: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut sorted: Vec<_> = fields.to_vec();
        sorted.sort();
        let data = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
        let secret = ring::digest::digest(&ring::digest::SHA256, bot_token.as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_ref());
        let tag = ring::hmac::sign(&key, data.as_bytes());
        let mut map: BTreeMap<String, String> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("hash".into(), hex::encode(tag.as_ref()));
        map
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn payload(auth_date: i64) -> BTreeMap<String, String> {
        sign(
            BOT,
            &[
                ("id", "424242"),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("username", "ada"),
                ("photo_url", "https://t.me/i/userpic/320/ada.jpg"),
                ("auth_date", &auth_date.to_string()),
            ],
        )
    }

    #[test]
    fn the_data_check_string_is_sorted_lines_without_the_hash() {
        let mut m = BTreeMap::new();
        for (k, v) in [("username", "u"), ("id", "1"), ("hash", "h"), ("auth_date", "2")] {
            m.insert(k.to_string(), v.to_string());
        }
        assert_eq!(data_check_string(&m), "auth_date=2\nid=1\nusername=u");
    }

    #[test]
    fn a_payload_signed_independently_is_accepted() {
        let t = now().unix_timestamp() - 30;
        let login = verify_telegram_login(&payload(t), BOT, Duration::days(1), now()).unwrap();
        assert_eq!(login.identity.provider, Provider::telegram());
        assert_eq!(login.identity.subject, "424242");
        assert_eq!(login.identity.username.as_deref(), Some("ada"));
        assert_eq!(login.identity.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(login.auth_date.unix_timestamp(), t);
        // Only the fields Telegram sent are signed: a payload with only the required ones works.
        let minimal = sign(BOT, &[("id", "7"), ("auth_date", &t.to_string())]);
        assert_eq!(verify_telegram_login(&minimal, BOT, Duration::days(1), now()).unwrap().identity.subject, "7");
        // Upper-case hex is the same signature.
        let mut upper = payload(t);
        let h = upper["hash"].to_ascii_uppercase();
        upper.insert("hash".into(), h);
        assert!(verify_telegram_login(&upper, BOT, Duration::days(1), now()).is_ok());
    }

    #[test]
    fn tampering_a_wrong_token_and_a_missing_hash_are_refused() {
        let t = now().unix_timestamp();
        let day = Duration::days(1);
        for (field, value) in [("id", "424243"), ("username", "eve"), ("auth_date", "1800000001"), ("first_name", "")] {
            let mut p = payload(t);
            p.insert(field.into(), value.into());
            assert_eq!(verify_telegram_login(&p, BOT, day, now()), Err(TelegramError::BadSignature), "{field}");
        }
        let mut added = payload(t);
        added.insert("extra".into(), "1".into());
        assert_eq!(verify_telegram_login(&added, BOT, day, now()), Err(TelegramError::BadSignature));
        let mut dropped = payload(t);
        dropped.remove("photo_url");
        assert_eq!(verify_telegram_login(&dropped, BOT, day, now()), Err(TelegramError::BadSignature));
        let other = "654321:AAH-another-bot-token-987654321";
        assert_eq!(verify_telegram_login(&payload(t), other, day, now()), Err(TelegramError::BadSignature));
        let mut no_hash = payload(t);
        no_hash.remove("hash");
        assert_eq!(verify_telegram_login(&no_hash, BOT, day, now()), Err(TelegramError::MissingHash));
        no_hash.insert("hash".into(), String::new());
        assert_eq!(verify_telegram_login(&no_hash, BOT, day, now()), Err(TelegramError::MissingHash));
        // The bot token itself is not the key: HMAC keyed with the raw token is refused.
        let mut raw = payload(t);
        let mut mac = Hmac::<Sha256>::new_from_slice(BOT.as_bytes()).unwrap();
        mac.update(data_check_string(&raw).as_bytes());
        raw.insert("hash".into(), hex::encode(mac.finalize().into_bytes()));
        assert_eq!(verify_telegram_login(&raw, BOT, day, now()), Err(TelegramError::BadSignature));
    }

    #[test]
    fn auth_date_must_be_within_max_age_and_not_ahead() {
        let now_s = now().unix_timestamp();
        let hour = Duration::hours(1);
        assert!(verify_telegram_login(&payload(now_s - 3600), BOT, hour, now()).is_ok(), "exactly max_age");
        assert_eq!(verify_telegram_login(&payload(now_s - 3601), BOT, hour, now()), Err(TelegramError::Stale));
        assert!(verify_telegram_login(&payload(now_s + 60), BOT, hour, now()).is_ok(), "within the skew");
        assert_eq!(verify_telegram_login(&payload(now_s + 61), BOT, hour, now()), Err(TelegramError::FromTheFuture));
        let bad = sign(BOT, &[("id", "1"), ("auth_date", "yesterday")]);
        assert_eq!(verify_telegram_login(&bad, BOT, hour, now()), Err(TelegramError::Malformed));
        let no_id = sign(BOT, &[("auth_date", &now_s.to_string())]);
        assert_eq!(verify_telegram_login(&no_id, BOT, hour, now()), Err(TelegramError::Malformed));
    }

    #[test]
    fn providers_round_trip_and_the_placeholder_is_undeliverable() {
        assert_eq!(Provider::parse(Provider::telegram().as_str()), Some(Provider::telegram()));
        assert_eq!(Provider::parse("google").unwrap().as_str(), "google");
        for bad in ["", "Google", "1st", "a b", "a/b", &"x".repeat(33)] {
            assert_eq!(Provider::parse(bad), None, "{bad}");
        }
        let email = telegram_placeholder_email("424242");
        assert_eq!(email, "tg424242@telegram.invalid");
        assert!(crate::Email::parse(&email).is_ok());
        assert!(!crate::email::is_deliverable(&email));
        assert!(crate::email::is_deliverable("ada@example.com"));
    }
}
