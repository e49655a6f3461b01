//! Domain values as the API shows them (`rampart_wire` types), converted at the edge.

use rampart_domain::device::parse_user_agent;
use rampart_domain::{Session, User};
use rampart_wire::{DeviceView, MfaStatus, SessionView, UserView};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

/// A user with no second factor yet (just registered).
pub fn user_view(u: &User) -> UserView {
    user_view_with(u, &rampart_store::MfaStatus::default())
}

/// A user with their second factors.
pub fn user_view_with(u: &User, mfa: &rampart_store::MfaStatus) -> UserView {
    UserView {
        id: u.id.0.to_string(),
        email: u.email.clone(),
        name: u.name.clone(),
        roles: u.roles.clone(),
        email_verified: u.email_verified,
        mfa: MfaStatus { totp: mfa.totp, webauthn: mfa.webauthn > 0, backup_codes_left: mfa.backup_codes_left },
        created_at: rfc3339(u.created_at),
    }
}

pub fn session_view(s: &Session, current: bool) -> SessionView {
    let device = parse_user_agent(s.user_agent.as_deref());
    let kind = serde_json::to_value(device.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    SessionView {
        id: s.id.to_string(),
        created_at: rfc3339(s.created_at),
        last_active_at: rfc3339(s.last_active_at),
        expires_at: rfc3339(s.expires_at()),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        device: DeviceView { browser: device.browser, os: device.os, kind },
        current,
    }
}
