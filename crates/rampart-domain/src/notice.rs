//! Security notices: the e-mails that tell a user something happened to their account (a
//! sign-in from a new device, a changed password, a second factor added or removed, …).
//!
//! Which events are notices, and to whom, is decided here from the event alone ([`notice_for`]),
//! so the store writes a notice's outbox row in the transaction that records its event. Whether
//! a notice is then sent (the user's preferences, the hourly cap, merging, and for a sign-in
//! whether the device is new) is decided when it is sent.

use crate::device::parse_user_agent;
use crate::event::{Action, Actor, Outcome, SecurityEvent};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use uuid::Uuid;

/// What a notice is about. `as_str` is stored in the outbox and names the catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    NewSignIn,
    PasswordChanged,
    PasswordReset,
    FactorAdded,
    FactorRemoved,
    BackupCodesRegenerated,
    BackupCodesLow,
    PasskeyAdded,
    ApiKeyCreated,
    AccountLocked,
    RolesChanged,
    AccountDisabled,
}

/// Who may turn a notice off: critical ones nobody can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Always sent (ASVS 6.3.7: notice after authentication details change).
    Critical,
    /// `new_sign_in` in the user's preferences.
    NewSignIn,
    /// `security_changes` in the user's preferences.
    SecurityChanges,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 12] = [
        NoticeKind::NewSignIn,
        NoticeKind::PasswordChanged,
        NoticeKind::PasswordReset,
        NoticeKind::FactorAdded,
        NoticeKind::FactorRemoved,
        NoticeKind::BackupCodesRegenerated,
        NoticeKind::BackupCodesLow,
        NoticeKind::PasskeyAdded,
        NoticeKind::ApiKeyCreated,
        NoticeKind::AccountLocked,
        NoticeKind::RolesChanged,
        NoticeKind::AccountDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::NewSignIn => "new_sign_in",
            NoticeKind::PasswordChanged => "password_changed",
            NoticeKind::PasswordReset => "password_reset",
            NoticeKind::FactorAdded => "factor_added",
            NoticeKind::FactorRemoved => "factor_removed",
            NoticeKind::BackupCodesRegenerated => "backup_codes_regenerated",
            NoticeKind::BackupCodesLow => "backup_codes_low",
            NoticeKind::PasskeyAdded => "passkey_added",
            NoticeKind::ApiKeyCreated => "api_key_created",
            NoticeKind::AccountLocked => "account_locked",
            NoticeKind::RolesChanged => "roles_changed",
            NoticeKind::AccountDisabled => "account_disabled",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn category(self) -> Category {
        match self {
            NoticeKind::NewSignIn => Category::NewSignIn,
            NoticeKind::FactorAdded
            | NoticeKind::BackupCodesRegenerated
            | NoticeKind::BackupCodesLow
            | NoticeKind::PasskeyAdded
            | NoticeKind::ApiKeyCreated => Category::SecurityChanges,
            NoticeKind::PasswordChanged
            | NoticeKind::PasswordReset
            | NoticeKind::FactorRemoved
            | NoticeKind::AccountLocked
            | NoticeKind::RolesChanged
            | NoticeKind::AccountDisabled => Category::Critical,
        }
    }
}

/// A user's choices for the notices they may turn off. Both default to on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub new_sign_in: bool,
    pub security_changes: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self { new_sign_in: true, security_changes: true }
    }
}

impl Preferences {
    /// Whether a notice of `kind` goes out under these preferences.
    pub fn wants(self, kind: NoticeKind) -> bool {
        match kind.category() {
            Category::Critical => true,
            Category::NewSignIn => self.new_sign_in,
            Category::SecurityChanges => self.security_changes,
        }
    }
}

/// The notice `e` gives rise to, and the user it goes to: `None` for the events that are not
/// notices (most of them).
pub fn notice_for(e: &SecurityEvent) -> Option<(NoticeKind, Uuid)> {
    let actor_user = match e.actor {
        Actor::User(id) => Some(id),
        _ => None,
    };
    let resource_user =
        e.resource.as_ref().filter(|r| r.kind == "user").and_then(|r| r.id.as_deref()).and_then(|id| id.parse().ok());
    if e.outcome != Outcome::Success && e.action != Action::LoginLocked {
        return None;
    }
    let kind = match e.action {
        Action::Login => return actor_user.map(|u| (NoticeKind::NewSignIn, u)),
        Action::PasswordChanged => NoticeKind::PasswordChanged,
        Action::PasswordReset => NoticeKind::PasswordReset,
        Action::MfaTotpEnabled => NoticeKind::FactorAdded,
        Action::MfaTotpDisabled | Action::MfaWebauthnRemoved | Action::MfaReset => NoticeKind::FactorRemoved,
        Action::MfaBackupCodesRegenerated => NoticeKind::BackupCodesRegenerated,
        Action::MfaBackupCodeUsed => {
            let left = e.details.get("backup_codes_left").and_then(serde_json::Value::as_u64)?;
            if left > 2 {
                return None;
            }
            NoticeKind::BackupCodesLow
        }
        Action::MfaWebauthnAdded => NoticeKind::PasskeyAdded,
        Action::ApiKeyCreated => return actor_user.map(|u| (NoticeKind::ApiKeyCreated, u)),
        Action::LoginLocked => NoticeKind::AccountLocked,
        Action::UserUpdated => {
            if e.details.get("disabled").and_then(serde_json::Value::as_bool) == Some(true) {
                NoticeKind::AccountDisabled
            } else {
                let roles = e.details.get("roles").filter(|r| !r.is_null())?;
                let before = e.details.get("roles_before");
                if Some(roles) == before {
                    return None;
                }
                NoticeKind::RolesChanged
            }
        }
        _ => return None,
    };
    resource_user.or(actor_user).map(|u| (kind, u))
}

/// The network a sign-in came from, for "not seen before": the /24 of an IPv4 address, the /48
/// of an IPv6 one (a provider gives a household a /48 to /64; mobile clients move inside it).
pub fn network_of(ip: IpAddr) -> ipnet::IpNet {
    let prefix = if ip.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(ip, prefix).map(|n| n.trunc()).unwrap_or_else(|_| ip.into())
}

/// What makes a sign-in's device "the same" as an earlier one: the browser family (without its
/// version, which changes every month), the operating system, and the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceMark {
    pub browser: Option<String>,
    pub os: Option<String>,
    pub network: Option<ipnet::IpNet>,
}

impl DeviceMark {
    pub fn of(ip: Option<IpAddr>, user_agent: Option<&str>) -> DeviceMark {
        let device = parse_user_agent(user_agent);
        let family = device.browser.map(|b| b.split(' ').next().unwrap_or_default().to_string());
        DeviceMark { browser: family, os: device.os, network: ip.map(network_of) }
    }
}

impl DeviceMark {
    /// The mark as stored (`known_devices.mark`): `browser|os|network`, `-` for an unknown part.
    pub fn key(&self) -> String {
        let part = |p: Option<String>| p.unwrap_or_else(|| "-".into());
        format!(
            "{}|{}|{}",
            part(self.browser.clone()),
            part(self.os.clone()),
            part(self.network.map(|n| n.to_string()))
        )
    }
}

/// Whether a sign-in is from a new device, given whether its device was seen recently and
/// whether the user had any device recorded. A first sign-in ever is not new: there is nothing
/// to compare it with, and the user has just created the account.
pub fn is_new_device(seen_recently: bool, had_any: bool) -> bool {
    had_any && !seen_recently
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Resource, Severity};
    use time::OffsetDateTime;

    fn event(action: Action, outcome: Outcome) -> SecurityEvent {
        SecurityEvent::new(Uuid::nil(), OffsetDateTime::UNIX_EPOCH, action, outcome)
    }

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const CHROME_WIN_NEXT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

    #[test]
    fn a_successful_sign_in_is_a_candidate_for_its_user_and_a_failed_one_is_not() {
        let user = Uuid::from_u128(7);
        let ok = event(Action::Login, Outcome::Success).actor(Actor::User(user));
        assert_eq!(notice_for(&ok), Some((NoticeKind::NewSignIn, user)));
        let failed = event(Action::Login, Outcome::Failure).actor(Actor::User(user));
        assert_eq!(notice_for(&failed), None);
        assert_eq!(notice_for(&event(Action::Login, Outcome::Success)), None, "nobody to tell");
    }

    #[test]
    fn the_notice_goes_to_the_user_acted_on_not_the_administrator() {
        let (admin, user) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let disabled = event(Action::UserUpdated, Outcome::Success)
            .actor(Actor::User(admin))
            .resource(Resource::new("user", user))
            .details(serde_json::json!({"disabled": true, "roles": null, "roles_before": ["a"]}));
        assert_eq!(notice_for(&disabled), Some((NoticeKind::AccountDisabled, user)));
        let roles = event(Action::UserUpdated, Outcome::Success)
            .actor(Actor::User(admin))
            .resource(Resource::new("user", user))
            .details(serde_json::json!({"disabled": null, "roles": ["b"], "roles_before": ["a"]}));
        assert_eq!(notice_for(&roles), Some((NoticeKind::RolesChanged, user)));
        let same = event(Action::UserUpdated, Outcome::Success)
            .actor(Actor::User(admin))
            .resource(Resource::new("user", user))
            .details(serde_json::json!({"disabled": null, "roles": ["a"], "roles_before": ["a"]}));
        assert_eq!(notice_for(&same), None, "a rename is not a security notice");
        let locked = event(Action::LoginLocked, Outcome::Denied)
            .severity(Severity::Warning)
            .resource(Resource::new("user", user));
        assert_eq!(notice_for(&locked), Some((NoticeKind::AccountLocked, user)));
        assert_eq!(notice_for(&event(Action::LoginLocked, Outcome::Denied)), None, "an address lock has no owner");
    }

    #[test]
    fn backup_codes_are_news_when_two_or_fewer_are_left() {
        let user = Uuid::from_u128(3);
        let used = |left: u64| {
            event(Action::MfaBackupCodeUsed, Outcome::Success)
                .actor(Actor::User(user))
                .resource(Resource::new("user", user))
                .details(serde_json::json!({"backup_codes_left": left}))
        };
        assert_eq!(notice_for(&used(3)), None);
        assert_eq!(notice_for(&used(2)), Some((NoticeKind::BackupCodesLow, user)));
        assert_eq!(notice_for(&used(0)), Some((NoticeKind::BackupCodesLow, user)));
    }

    #[test]
    fn critical_notices_cannot_be_turned_off() {
        let none = Preferences { new_sign_in: false, security_changes: false };
        for kind in NoticeKind::ALL {
            assert_eq!(none.wants(kind), kind.category() == Category::Critical, "{kind:?}");
            assert!(Preferences::default().wants(kind));
            assert_eq!(NoticeKind::parse(kind.as_str()), Some(kind));
        }
        assert!(none.wants(NoticeKind::PasswordChanged) && none.wants(NoticeKind::FactorRemoved));
        assert!(!none.wants(NoticeKind::NewSignIn) && !none.wants(NoticeKind::ApiKeyCreated));
    }

    #[test]
    fn a_device_is_marked_by_browser_family_system_and_network_not_by_version_or_host() {
        let home: IpAddr = "203.0.113.7".parse().unwrap();
        let seen = DeviceMark::of(Some(home), Some(CHROME_WIN)).key();
        assert_eq!(seen, "Chrome|Windows 10|203.0.113.0/24");
        // A browser update and another address in the same /24: the same device.
        assert_eq!(DeviceMark::of(Some("203.0.113.200".parse().unwrap()), Some(CHROME_WIN_NEXT)).key(), seen);
        // Another network, or another browser: another device.
        assert_ne!(DeviceMark::of(Some("198.51.100.7".parse().unwrap()), Some(CHROME_WIN)).key(), seen);
        assert_ne!(DeviceMark::of(Some(home), Some(FIREFOX_LINUX)).key(), seen);
        // IPv6: the /48.
        let v6 = DeviceMark::of(Some("2001:db8:1:2::1".parse().unwrap()), Some(FIREFOX_LINUX)).key();
        assert_eq!(DeviceMark::of(Some("2001:db8:1:ffff::9".parse().unwrap()), Some(FIREFOX_LINUX)).key(), v6);
        assert_ne!(DeviceMark::of(Some("2001:db8:2::1".parse().unwrap()), Some(FIREFOX_LINUX)).key(), v6);
        assert_eq!(DeviceMark::of(None, None).key(), "-|-|-");
        // New: seen before by the user, but not this device lately. A first device is not new.
        assert!(is_new_device(false, true));
        assert!(!is_new_device(true, true));
        assert!(!is_new_device(false, false));
    }
}
