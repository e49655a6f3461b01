//! Security events: the one typed record every feature emits when something
//! security-relevant happens (a login, a key change, a configuration load, …).
//!
//! An event is built here (pure: id and time are passed in) and persisted by the storage
//! layer into `audit_events`, in the same transaction as the state change it records.
//! The audit feature chains and signs these rows; the fields below are the ones it hashes.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;

/// What happened. Each variant has a stable dotted name (`user.created`), the `action` of the
/// audit API. Adding a feature means adding its actions here, so the list stays complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The service loaded its configuration at start-up (details: a hash of it, secrets excluded).
    ConfigLoaded,
    /// No master key was supplied, so one was generated into the data directory.
    MasterKeyGenerated,
    /// `rampart master-key rotate` ran: every sealed value re-sealed under the current master
    /// key (details: the ring's key ids, values re-sealed and still under older keys, per column).
    MasterKeyRotated,
    /// Database migrations were applied.
    MigrationsApplied,
    /// A user account was created (details say through which path: CLI, API, admin).
    UserCreated,
    /// The first access-token signing key was generated.
    SigningKeyCreated,
    /// A new access-token signing key replaced the current one (by CLI or schedule).
    SigningKeyRotated,
    /// A login attempt (outcome says whether it succeeded; details give the reason of a failure).
    Login,
    /// Too many failed attempts: an identifier or address was locked.
    LoginLocked,
    /// An administrator lifted a lockout.
    LoginUnlocked,
    /// A session ended by its own logout.
    Logout,
    /// A refresh token was exchanged for new tokens.
    TokenRefreshed,
    /// A rotated refresh token was presented again: its session was revoked.
    RefreshTokenReused,
    /// Sessions were revoked (one, all of a user, or all but the current).
    SessionRevoked,
    /// A user changed their password.
    PasswordChanged,
    /// A password-reset e-mail was requested.
    PasswordResetRequested,
    /// A password was reset with an e-mailed or expired-password token.
    PasswordReset,
    /// A verification e-mail was sent.
    EmailVerificationSent,
    /// An e-mail address was verified.
    EmailVerified,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An API key was replaced by a new one (the old works until its grace ends).
    ApiKeyRotated,
    /// A request lacked the permission or scope it needed.
    AuthorizationDenied,
    /// A custom role was created or its permissions changed.
    RoleChanged,
    /// A custom role was deleted.
    RoleDeleted,
    /// An administrator changed a user's name, roles or disabled flag.
    UserUpdated,
    /// A user and their data were erased.
    UserDeleted,
    /// A user's erasure was asked for (by themselves or an administrator): the account is
    /// disabled now and erased when the grace ends (details: `erase_after`).
    UserErasureScheduled,
    /// An administrator restored an account scheduled for erasure, within the grace.
    UserRestored,
    /// The audit hash chain was verified (details: the verdict).
    AuditVerified,
    /// The audit log was queried (`GET /v1/admin/audit`, stats; details: the filter).
    AuditRead,
    /// The audit log was exported (details: format and range).
    AuditExported,
    /// Events older than the retention period were purged up to a signed checkpoint (details:
    /// the checkpoint the remaining chain starts from, and how many events went).
    AuditPurged,
    /// An administrator read a user's record (data access on a sensitive endpoint).
    UserRead,
    /// A right password for an account with a second factor: an `mfa_token` was handed out.
    MfaChallenged,
    /// A TOTP secret was generated, waiting for its first code.
    MfaTotpSetup,
    /// TOTP was enabled (with a fresh set of backup codes).
    MfaTotpEnabled,
    /// TOTP was disabled (its backup codes with it).
    MfaTotpDisabled,
    /// A TOTP code was accepted as a second factor.
    MfaTotpUsed,
    /// A new set of backup codes replaced the old one.
    MfaBackupCodesRegenerated,
    /// A backup code was used (details: how many are left).
    MfaBackupCodeUsed,
    /// A second factor was refused (wrong or replayed code, unknown token).
    MfaFailed,
    /// A one-time login code was e-mailed (the fallback factor).
    MfaEmailCodeSent,
    /// A rate-limit rule refused (or, in shadow mode, would have refused) requests of one key;
    /// one event per rule and key per interval, with the count (details).
    RateLimited,
    /// The shared rate-limit store (Redis) stopped answering: rules use their local fallback.
    RateLimitDegraded,
    /// The shared rate-limit store answers again.
    RateLimitRecovered,
    /// This instance stopped hearing other instances' changes (the invalidation bus's
    /// connection dropped): until it is back, their changes reach its caches within the TTL.
    InvalidationBusDown,
    /// The invalidation bus listens again (every cache was read afresh).
    InvalidationBusRestored,
    /// A browser reported a Content-Security-Policy violation.
    CspViolation,
    /// An IP allow or block rule was added (by an operator, or automatically: details say).
    IpRuleCreated,
    /// An IP rule was removed.
    IpRuleDeleted,
    /// Every IP rule was removed at once (`rampart ip-rules clear`, the break-glass).
    IpRulesCleared,
    /// Requests from an address were refused by an IP rule; one event per address and rule per
    /// interval, with the count.
    IpBlocked,
    /// A WebAuthn authenticator (security key, passkey) was registered.
    MfaWebauthnAdded,
    /// A WebAuthn authenticator was removed.
    MfaWebauthnRemoved,
    /// A WebAuthn authenticator answered a step-up or a passwordless (passkey) login.
    MfaWebauthnUsed,
    /// An administrator removed every second factor of a user.
    MfaReset,
    /// The gateway refused a request (unauthenticated, forbidden, rate limited); one event per
    /// address, rule and outcome per interval, with the count.
    GatewayDenied,
    /// The gateway's rules were (re)loaded (details: how many, shadowed rules, the source).
    GatewayRulesLoaded,
    /// A gateway rules file could not be loaded; the rules in force stay.
    GatewayRulesRejected,
    /// The built-in proxy's circuit breaker ejected an upstream (details: why, for how long).
    GatewayUpstreamEjected,
    /// An ejected upstream answered its probes and takes traffic again.
    GatewayUpstreamRestored,
    /// A webhook endpoint was added (details: its URL and event filters).
    WebhookCreated,
    /// A webhook endpoint was changed (URL, filters, description or enabled).
    WebhookUpdated,
    /// A webhook endpoint was removed, with its pending deliveries.
    WebhookDeleted,
    /// A webhook endpoint's signing secret was replaced (details: the overlap in seconds).
    WebhookSecretRotated,
    /// A test delivery was queued for one endpoint (it goes to that endpoint only).
    WebhookTest,
    /// An administrator queued a delivery again.
    WebhookRedelivered,
    /// An endpoint that kept failing for `webhooks.disable_after_days` was disabled.
    WebhookDisabled,
    /// A user changed which security notices they get.
    NotificationsUpdated,
    /// An alert rule's threshold was reached (outside its cooldown).
    AlertFired,
    /// An administrator added an alert rule.
    AlertRuleCreated,
    /// An administrator changed an alert rule.
    AlertRuleUpdated,
    /// An administrator removed an alert rule.
    AlertRuleDeleted,
    /// Everything held about a user was exported (by the user, or by an administrator).
    UserDataExported,
    /// A transit key was created.
    TransitKeyCreated,
    /// A transit key got a new version.
    TransitKeyRotated,
    /// A transit key's settings changed (`min_decryption_version`, `deletion_allowed`).
    TransitKeyConfigured,
    /// A transit key was deleted, with every version: what it encrypted is unreadable now.
    TransitKeyDeleted,
    /// The hourly purge ran (details: rows deleted per data class, and the retention of each).
    RetentionPurged,
    /// An administrator asked for a bulk export (details: kind, format, filter, rows, status).
    ExportRequested,
    /// A second administrator approved a bulk export over the threshold.
    ExportApproved,
    /// A bulk export was downloaded (once; details: kind, format, filter, rows).
    ExportDownloaded,
    /// A sign-in with an external identity (details: `provider`; refusals: `reason`).
    FederatedLogin,
    /// An external identity was linked to an account (details: `provider`).
    IdentityLinked,
    /// An external identity was unlinked from an account (details: `provider`).
    IdentityUnlinked,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::ConfigLoaded,
        Action::MasterKeyGenerated,
        Action::MasterKeyRotated,
        Action::MigrationsApplied,
        Action::UserCreated,
        Action::SigningKeyCreated,
        Action::SigningKeyRotated,
        Action::Login,
        Action::LoginLocked,
        Action::LoginUnlocked,
        Action::Logout,
        Action::TokenRefreshed,
        Action::RefreshTokenReused,
        Action::SessionRevoked,
        Action::PasswordChanged,
        Action::PasswordResetRequested,
        Action::PasswordReset,
        Action::EmailVerificationSent,
        Action::EmailVerified,
        Action::ApiKeyCreated,
        Action::ApiKeyRevoked,
        Action::ApiKeyRotated,
        Action::AuthorizationDenied,
        Action::RoleChanged,
        Action::RoleDeleted,
        Action::UserUpdated,
        Action::UserDeleted,
        Action::UserErasureScheduled,
        Action::UserRestored,
        Action::AuditVerified,
        Action::AuditRead,
        Action::AuditExported,
        Action::AuditPurged,
        Action::UserRead,
        Action::MfaChallenged,
        Action::MfaTotpSetup,
        Action::MfaTotpEnabled,
        Action::MfaTotpDisabled,
        Action::MfaTotpUsed,
        Action::MfaBackupCodesRegenerated,
        Action::MfaBackupCodeUsed,
        Action::MfaFailed,
        Action::MfaEmailCodeSent,
        Action::RateLimited,
        Action::RateLimitDegraded,
        Action::RateLimitRecovered,
        Action::InvalidationBusDown,
        Action::InvalidationBusRestored,
        Action::CspViolation,
        Action::IpRuleCreated,
        Action::IpRuleDeleted,
        Action::IpRulesCleared,
        Action::IpBlocked,
        Action::MfaWebauthnAdded,
        Action::MfaWebauthnRemoved,
        Action::MfaWebauthnUsed,
        Action::MfaReset,
        Action::GatewayDenied,
        Action::GatewayRulesLoaded,
        Action::GatewayRulesRejected,
        Action::GatewayUpstreamEjected,
        Action::GatewayUpstreamRestored,
        Action::WebhookCreated,
        Action::WebhookUpdated,
        Action::WebhookDeleted,
        Action::WebhookSecretRotated,
        Action::WebhookTest,
        Action::WebhookRedelivered,
        Action::WebhookDisabled,
        Action::NotificationsUpdated,
        Action::AlertFired,
        Action::AlertRuleCreated,
        Action::AlertRuleUpdated,
        Action::AlertRuleDeleted,
        Action::UserDataExported,
        Action::TransitKeyCreated,
        Action::TransitKeyRotated,
        Action::TransitKeyConfigured,
        Action::TransitKeyDeleted,
        Action::RetentionPurged,
        Action::ExportRequested,
        Action::ExportApproved,
        Action::ExportDownloaded,
        Action::FederatedLogin,
        Action::IdentityLinked,
        Action::IdentityUnlinked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ConfigLoaded => "system.config.loaded",
            Action::MasterKeyGenerated => "system.master_key.generated",
            Action::MasterKeyRotated => "system.master_key.rotated",
            Action::MigrationsApplied => "system.migrations.applied",
            Action::UserCreated => "user.created",
            Action::SigningKeyCreated => "token.signing_key.created",
            Action::SigningKeyRotated => "token.signing_key.rotated",
            Action::Login => "auth.login",
            Action::LoginLocked => "auth.lockout",
            Action::LoginUnlocked => "auth.unlock",
            Action::Logout => "auth.logout",
            Action::TokenRefreshed => "auth.refresh",
            Action::RefreshTokenReused => "auth.refresh.reused",
            Action::SessionRevoked => "session.revoked",
            Action::PasswordChanged => "password.changed",
            Action::PasswordResetRequested => "password.reset.requested",
            Action::PasswordReset => "password.reset",
            Action::EmailVerificationSent => "email.verification.sent",
            Action::EmailVerified => "email.verified",
            Action::ApiKeyCreated => "api_key.created",
            Action::ApiKeyRevoked => "api_key.revoked",
            Action::ApiKeyRotated => "api_key.rotated",
            Action::AuthorizationDenied => "authz.denied",
            Action::RoleChanged => "role.changed",
            Action::RoleDeleted => "role.deleted",
            Action::UserUpdated => "user.updated",
            Action::UserDeleted => "user.deleted",
            Action::UserErasureScheduled => "user.erasure_scheduled",
            Action::UserRestored => "user.restored",
            Action::AuditVerified => "audit.verified",
            Action::AuditRead => "audit.read",
            Action::AuditExported => "audit.exported",
            Action::AuditPurged => "audit.purged",
            Action::UserRead => "user.read",
            Action::MfaChallenged => "auth.mfa.required",
            Action::MfaTotpSetup => "mfa.totp.setup",
            Action::MfaTotpEnabled => "mfa.totp.enabled",
            Action::MfaTotpDisabled => "mfa.totp.disabled",
            Action::MfaTotpUsed => "mfa.totp.used",
            Action::MfaBackupCodesRegenerated => "mfa.backup_codes.regenerated",
            Action::MfaBackupCodeUsed => "mfa.backup_code.used",
            Action::MfaFailed => "mfa.failed",
            Action::MfaEmailCodeSent => "mfa.email.sent",
            Action::RateLimited => "ratelimit.exceeded",
            Action::RateLimitDegraded => "ratelimit.backend.degraded",
            Action::RateLimitRecovered => "ratelimit.backend.recovered",
            Action::InvalidationBusDown => "cluster.bus.down",
            Action::InvalidationBusRestored => "cluster.bus.restored",
            Action::CspViolation => "csp.violation",
            Action::IpRuleCreated => "ip_rule.created",
            Action::IpRuleDeleted => "ip_rule.deleted",
            Action::IpRulesCleared => "ip_rules.cleared",
            Action::IpBlocked => "ip.blocked",
            Action::MfaWebauthnAdded => "mfa.webauthn.added",
            Action::MfaWebauthnRemoved => "mfa.webauthn.removed",
            Action::MfaWebauthnUsed => "mfa.webauthn.used",
            Action::MfaReset => "mfa.reset",
            Action::GatewayDenied => "gateway.denied",
            Action::GatewayRulesLoaded => "gateway.rules.loaded",
            Action::GatewayRulesRejected => "gateway.rules.rejected",
            Action::GatewayUpstreamEjected => "gateway.upstream.ejected",
            Action::GatewayUpstreamRestored => "gateway.upstream.restored",
            Action::WebhookCreated => "webhook.created",
            Action::WebhookUpdated => "webhook.updated",
            Action::WebhookDeleted => "webhook.deleted",
            Action::WebhookSecretRotated => "webhook.secret.rotated",
            Action::WebhookTest => "webhook.test",
            Action::WebhookRedelivered => "webhook.redelivered",
            Action::WebhookDisabled => "webhook.disabled",
            Action::NotificationsUpdated => "user.notifications.updated",
            Action::AlertFired => "alert.fired",
            Action::AlertRuleCreated => "alert.rule.created",
            Action::AlertRuleUpdated => "alert.rule.updated",
            Action::AlertRuleDeleted => "alert.rule.deleted",
            Action::UserDataExported => "user.exported",
            Action::TransitKeyCreated => "transit.key.created",
            Action::TransitKeyRotated => "transit.key.rotated",
            Action::TransitKeyConfigured => "transit.key.configured",
            Action::TransitKeyDeleted => "transit.key.deleted",
            Action::RetentionPurged => "retention.purged",
            Action::ExportRequested => "export.requested",
            Action::ExportApproved => "export.approved",
            Action::ExportDownloaded => "export.downloaded",
            Action::FederatedLogin => "auth.federated",
            Action::IdentityLinked => "user.identity.linked",
            Action::IdentityUnlinked => "user.identity.unlinked",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    /// Every outcome (the audit table's CHECK allows exactly these).
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical].into_iter().find(|v| v.as_str() == s)
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
    System,
    Anonymous,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
        }
    }

    pub fn id(&self) -> Option<Uuid> {
        match self {
            Actor::User(id) | Actor::ApiKey(id) => Some(*id),
            Actor::System | Actor::Anonymous => None,
        }
    }

    pub fn from_parts(kind: &str, id: Option<Uuid>) -> Option<Actor> {
        match (kind, id) {
            ("user", Some(id)) => Some(Actor::User(id)),
            ("api_key", Some(id)) => Some(Actor::ApiKey(id)),
            ("system", None) => Some(Actor::System),
            ("anonymous", None) => Some(Actor::Anonymous),
            _ => None,
        }
    }
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: String,
    pub id: Option<String>,
}

impl Resource {
    pub fn new(kind: &str, id: impl ToString) -> Self {
        Self { kind: kind.to_string(), id: Some(id.to_string()) }
    }

    pub fn kind_only(kind: &str) -> Self {
        Self { kind: kind.to_string(), id: None }
    }
}

/// One security event, ready to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub id: Uuid,
    pub ts: OffsetDateTime,
    pub action: Action,
    pub outcome: Outcome,
    pub severity: Severity,
    pub actor: Actor,
    pub resource: Option<Resource>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Structured extra facts. Never a secret: callers put ids and reasons here, not values.
    pub details: serde_json::Value,
    /// The personal fields sealed under the subject's key, as stored ([`crate::personal`]); when
    /// set, the chain links this instead of `ip`, `user_agent` and the personal detail keys.
    pub sealed_personal: Option<String>,
}

/// Longest user agent kept in an event; longer ones are cut (a client controls this header).
pub const MAX_USER_AGENT: usize = 512;

impl SecurityEvent {
    /// A new event with severity `info`, anonymous actor and no context; refine with the
    /// builder methods. `id` should be a UUIDv7 so ids sort by time.
    pub fn new(id: Uuid, ts: OffsetDateTime, action: Action, outcome: Outcome) -> Self {
        Self {
            id,
            ts,
            action,
            outcome,
            severity: Severity::Info,
            actor: Actor::Anonymous,
            resource: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::Value::Object(Default::default()),
            sealed_personal: None,
        }
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    pub fn resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    pub fn user_agent(mut self, ua: Option<&str>) -> Self {
        self.user_agent = ua.map(|s| s.chars().take(MAX_USER_AGENT).collect());
        self
    }

    pub fn request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_string);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// `v` with every object's keys in sorted order, whatever map type serde_json was built with
/// (a feature elsewhere in a build could switch it to insertion order).
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let ordered: std::collections::BTreeMap<&String, serde_json::Value> =
                m.iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The hash of the chain before its first event.
pub const CHAIN_GENESIS: [u8; 32] = [0; 32];

impl SecurityEvent {
    /// The event's canonical encoding for the audit hash chain: JSON with a fixed field order,
    /// the time as fixed-width UTC with microseconds, and `details` with sorted keys (what a
    /// `serde_json::Value` map is), so an event read back from either backend encodes to the
    /// same bytes it was written with.
    pub fn canonical(&self) -> Vec<u8> {
        use serde_json::Value;
        let ts = self
            .ts
            .to_offset(time::UtcOffset::UTC)
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
            ))
            .unwrap_or_default();
        // What both forms begin with: the version tag, then who did what to what, and when.
        let head = |tag: &str| -> Vec<Value> {
            vec![
                tag.into(),
                self.id.to_string().into(),
                ts.clone().into(),
                self.action.as_str().into(),
                self.outcome.as_str().into(),
                self.severity.as_str().into(),
                self.actor.kind().into(),
                self.actor.id().map(|id| id.to_string()).into(),
                self.resource.as_ref().map(|r| r.kind.clone()).into(),
                self.resource.as_ref().and_then(|r| r.id.clone()).into(),
            ]
        };
        let v = match &self.sealed_personal {
            // The stored form of an event with sealed personal fields: those fields appear only
            // sealed, so erasing the key that opens them leaves the link intact.
            Some(sealed) => {
                let mut details = sorted(&self.details);
                if let Some(m) = details.as_object_mut() {
                    m.retain(|k, _| !crate::personal::PERSONAL_DETAILS.contains(&k.as_str()));
                }
                let mut v = head("rampart.audit.v2");
                v.extend([self.request_id.clone().into(), details, sealed.clone().into()]);
                v
            }
            None => {
                let mut v = head("rampart.audit.v1");
                v.extend([
                    self.ip.map(|ip| ip.to_string()).into(),
                    self.user_agent.clone().into(),
                    self.request_id.clone().into(),
                    sorted(&self.details),
                ]);
                v
            }
        };
        serde_json::to_vec(&Value::Array(v)).unwrap_or_default()
    }

    /// The unkeyed link of events written before the keyed chain existed (migration 0010):
    /// SHA-256 of the previous link and this event's canonical encoding. Verification still
    /// checks those events this way, up to the chain's sealed origin; every later link is an
    /// HMAC ([`crate::audit::AuditKeys::link`]).
    pub fn legacy_chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.canonical());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hashes_depend_on_every_field_and_the_previous_link() {
        let t = time::macros::datetime!(2026-11-23 12:00:00.123456 UTC);
        let e = SecurityEvent::new(Uuid::nil(), t, Action::Login, Outcome::Failure)
            .ip(Some("192.0.2.1".parse().unwrap()))
            .details(serde_json::json!({"b": 1, "a": [true, null]}));
        let h = e.legacy_chain_hash(&CHAIN_GENESIS);
        assert_eq!(h, e.clone().legacy_chain_hash(&CHAIN_GENESIS), "deterministic");
        assert_ne!(h, e.legacy_chain_hash(&[1; 32]), "bound to the previous link");
        let mut other = e.clone();
        other.details = serde_json::json!({"b": 2, "a": [true, null]});
        assert_ne!(other.legacy_chain_hash(&CHAIN_GENESIS), h);
        let mut other = e.clone();
        other.outcome = Outcome::Success;
        assert_ne!(other.legacy_chain_hash(&CHAIN_GENESIS), h);
        // Key order of details does not matter (maps are sorted), time zones neither.
        let mut same = e.clone();
        same.details = serde_json::from_str(r#"{"a":[true,null],"b":1}"#).unwrap();
        same.ts = time::macros::datetime!(2026-11-23 14:00:00.123456 +2);
        assert_eq!(same.legacy_chain_hash(&CHAIN_GENESIS), h);
        let text = String::from_utf8(e.canonical()).unwrap();
        assert!(text.starts_with(r#"["rampart.audit.v1","00000000-0000-0000-0000-000000000000","2026-11-23T12:00:00.123456Z","auth.login","failure""#), "{text}");
    }
    /// The exact bytes the chain links, both forms: a change here would break the verification
    /// of every stored event.
    #[test]
    fn canonical_bytes_are_pinned() {
        let t = time::macros::datetime!(2026-11-23 12:00:00.123456 UTC);
        let e = SecurityEvent::new(Uuid::nil(), t, Action::Login, Outcome::Failure)
            .actor(Actor::User(Uuid::nil()))
            .resource(Resource::new("user", "u1"))
            .ip(Some("192.0.2.1".parse().unwrap()))
            .user_agent(Some("UA"))
            .request_id(Some("r1"))
            .details(serde_json::json!({"b": 1, "name": "n"}));
        assert_eq!(String::from_utf8(e.canonical()).unwrap(), PINNED_V1);
        let mut sealed = e.clone();
        sealed.sealed_personal = Some("p1.x".into());
        assert_eq!(String::from_utf8(sealed.canonical()).unwrap(), PINNED_V2);
    }
    const PINNED_V1: &str = r#"["rampart.audit.v1","00000000-0000-0000-0000-000000000000","2026-11-23T12:00:00.123456Z","auth.login","failure","info","user","00000000-0000-0000-0000-000000000000","user","u1","192.0.2.1","UA","r1",{"b":1,"name":"n"}]"#;
    const PINNED_V2: &str = r#"["rampart.audit.v2","00000000-0000-0000-0000-000000000000","2026-11-23T12:00:00.123456Z","auth.login","failure","info","user","00000000-0000-0000-0000-000000000000","user","u1","r1",{"b":1},"p1.x"]"#;
    use std::collections::HashSet;

    #[test]
    fn action_names_are_unique_dotted_and_round_trip() {
        let mut seen = HashSet::new();
        for a in Action::ALL {
            let s = a.as_str();
            assert!(seen.insert(s), "duplicate action name {s}");
            assert!(s.contains('.') && s.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{s}");
            assert_eq!(Action::parse(s), Some(*a));
        }
        assert_eq!(Action::parse("nope"), None);
    }

    #[test]
    fn actor_round_trips_through_parts() {
        let id = Uuid::now_v7();
        for a in [Actor::User(id), Actor::ApiKey(id), Actor::System, Actor::Anonymous] {
            assert_eq!(Actor::from_parts(a.kind(), a.id()), Some(a.clone()));
        }
        assert_eq!(Actor::from_parts("user", None), None);
        assert_eq!(Actor::from_parts("system", Some(id)), None);
    }

    #[test]
    fn builder_sets_context_and_caps_user_agent() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let ev = SecurityEvent::new(Uuid::nil(), now, Action::UserCreated, Outcome::Success)
            .severity(Severity::Warning)
            .actor(Actor::System)
            .resource(Resource::new("user", "42"))
            .user_agent(Some(&"x".repeat(2000)))
            .request_id(Some("req-1"));
        assert_eq!(ev.severity, Severity::Warning);
        assert_eq!(ev.user_agent.as_deref().map(str::len), Some(MAX_USER_AGENT));
        assert_eq!(ev.resource, Some(Resource { kind: "user".into(), id: Some("42".into()) }));
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        for o in [Outcome::Success, Outcome::Failure, Outcome::Denied] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}
