//! Personal data: the export of everything held about a person (GDPR art. 15 and 20), for the
//! person (`GET /v1/me/export`) and for an administrator (`GET /v1/admin/users/{id}/export`).
//!
//! The export is one JSON document: the profile, sessions and their devices, second factors'
//! metadata, API keys' metadata and usage, notification preferences, the e-mails sent, the
//! linked external identities (Telegram), and the audit events about the person (those they
//! did, and those done to their account). Secrets
//! never appear: no password hash, no TOTP secret, no passkey material, no key secret, no
//! e-mail body. The export is recorded before its first byte is sent; the audit events stream
//! a page at a time, so a long history costs constant memory.

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use bytes::Bytes;
use futures::Stream;
use rampart_domain::audit::AuditFilter;
use rampart_domain::{Action, Actor, Outcome, Resource, Severity, UserId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The document's `format`.
pub const FORMAT: &str = "rampart.personal-data.v1";
/// Audit events read per page.
const PAGE: u32 = 500;
/// API-key usage included: the last 90 days, hourly.
const USAGE_DAYS: i64 = 90;

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Records the export, then returns the document as a stream of bytes.
pub async fn export(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    user_id: UserId,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ServiceError> {
    let store = &state.store;
    let user = store.get_user(user_id).await?.ok_or(ServiceError::NotFound)?;
    let now = state.clock.now();
    let by_self = actor == Actor::User(user_id.0);
    let ev = state
        .events
        .event_for(ctx, Action::UserDataExported, Outcome::Success)
        .actor(actor)
        .severity(if by_self { Severity::Info } else { Severity::Warning })
        .resource(Resource::new("user", user_id))
        // An export of one person's document: its filter is the person, its row the document.
        .details(json!({ "format": FORMAT, "filter": { "user_id": user_id.0 }, "rows": 1 }));
    state.events.record(ev).await?;

    let sessions: Vec<Value> = store
        .list_sessions(user_id, now)
        .await?
        .iter()
        .map(|s| {
            json!({
                "id": s.id.0,
                "created_at": ts(s.created_at),
                "last_active_at": ts(s.last_active_at),
                "expires_at": ts(s.idle_expires_at.min(s.absolute_expires_at)),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "device": rampart_domain::device::parse_user_agent(s.user_agent.as_deref()),
                "amr": s.amr,
            })
        })
        .collect();
    let mfa = store.mfa_status(user_id).await?;
    let passkeys: Vec<Value> = store
        .webauthn_credentials(user_id)
        .await?
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "created_at": ts(c.created_at), "last_used_at": c.last_used_at.map(ts)}))
        .collect();
    let mut keys = Vec::new();
    for k in store.list_api_keys(user_id).await? {
        let usage: Vec<Value> = store
            .api_key_usage(k.id, now - time::Duration::days(USAGE_DAYS), now)
            .await?
            .into_iter()
            .map(|(hour, requests, rejected)| json!({"hour": ts(hour), "requests": requests, "rejected": rejected}))
            .collect();
        keys.push(json!({
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "scopes": k.scopes,
            "created_at": ts(k.created_at),
            "expires_at": k.expires_at.map(ts),
            "last_used_at": k.last_used_at.map(ts),
            "revoked_at": k.revoked_at.map(ts),
            "usage": usage,
        }));
    }
    let mail: Vec<Value> = store
        .mail_about(user_id.0)
        .await?
        .into_iter()
        .map(
            |m| json!({"kind": m.kind, "state": m.state, "created_at": ts(m.created_at), "sent_at": m.sent_at.map(ts)}),
        )
        .collect();
    let devices: Vec<Value> = store
        .known_devices(user_id.0)
        .await?
        .into_iter()
        .map(|(mark, last_seen)| json!({"device": mark, "last_sign_in": ts(last_seen)}))
        .collect();
    let identities: Vec<Value> = store
        .list_identities(user_id)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "provider": i.provider,
                "subject": i.subject,
                "username": i.username,
                "display_name": i.display_name,
                "created_at": ts(i.created_at),
                "last_used_at": i.last_used_at.map(ts),
            })
        })
        .collect();
    let head = json!({
        "format": FORMAT,
        "exported_at": ts(now),
        "profile": {
            "id": user.id.0,
            "email": user.email.as_str(),
            "name": user.name,
            "roles": user.roles.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "email_verified": user.email_verified,
            "password_changed_at": ts(user.password_changed_at),
            "disabled": user.disabled,
            "created_at": ts(user.created_at),
        },
        "sessions": sessions,
        "known_devices": devices,
        "second_factors": {
            "totp": mfa.totp,
            "backup_codes_left": mfa.backup_codes_left,
            "passkeys": passkeys,
        },
        "api_keys": keys,
        "notification_preferences": store.notification_prefs(user_id.0).await?,
        "emails": mail,
        "linked_identities": identities,
    });
    // The head without its closing brace, then the events, then the close.
    let mut open = serde_json::to_vec(&head).map_err(ServiceError::internal)?;
    open.pop();
    open.extend_from_slice(b",\"audit_events\":[");
    let by_actor = AuditFilter { actor_id: Some(user_id.0), ..AuditFilter::default() };
    let about = AuditFilter {
        resource_type: Some("user".into()),
        resource_id: Some(user_id.0.to_string()),
        ..AuditFilter::default()
    };
    let store = store.clone();
    let subject = user_id.0;
    // (pass: 0 their own events, 1 those done to their account; the seq after which to read;
    // whether an event was written already, for the commas).
    let events = futures::stream::try_unfold(Some((0u8, i64::MIN, false)), move |at| {
        let (store, by_actor, about) = (store.clone(), by_actor.clone(), about.clone());
        async move {
            let Some((pass, after, mut wrote)) = at else { return Ok(None) };
            let filter = if pass == 0 { &by_actor } else { &about };
            let page = store.export_page(filter, after, PAGE).await.map_err(std::io::Error::other)?;
            let mut buf = Vec::with_capacity(page.len() * 512);
            for e in &page {
                // Done to them by themselves: already in the first pass.
                if pass == 1 && e.event.actor == Actor::User(subject) {
                    continue;
                }
                if wrote {
                    buf.push(b',');
                }
                serde_json::to_writer(&mut buf, &e.chained().to_json()).map_err(std::io::Error::other)?;
                wrote = true;
            }
            let next = match (page.len() == PAGE as usize, pass) {
                (true, _) => Some((pass, page.last().map_or(after, |e| e.seq), wrote)),
                (false, 0) => Some((1, i64::MIN, wrote)),
                (false, _) => None,
            };
            Ok(Some((Bytes::from(buf), next)))
        }
    });
    let open = futures::stream::once(async move { Ok(Bytes::from(open)) });
    let close = futures::stream::once(async { Ok(Bytes::from_static(b"]}")) });
    Ok(futures::StreamExt::chain(futures::StreamExt::chain(open, events), close))
}

/// The id of a user, for the admin's route (`NotFound` for anything else).
pub fn user_id(text: &str) -> Result<UserId, ServiceError> {
    text.parse::<Uuid>().map(UserId).map_err(|_| ServiceError::NotFound)
}

/// An erasure asked for: the account is disabled from now and erased at `erase_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    pub erase_after: OffsetDateTime,
}

/// The caller asks for their own erasure (`DELETE /v1/me`), proving it is them with the password
/// (and a current second factor where re-authentication asks for one).
pub async fn request_own_erasure(
    state: &App,
    ctx: &RequestContext,
    auth: &crate::authz::Authenticated,
    reauth: crate::services::factors::Reauth<'_>,
) -> Result<Erasure, ServiceError> {
    let user = crate::services::factors::reauthenticate(state, ctx, auth, reauth).await?;
    schedule_erasure(state, ctx, Actor::User(user.id.0), &user).await
}

/// Schedules `user`'s erasure after `accounts.erasure_grace_days`: disabled at once, sessions
/// ended, API keys refused; an administrator may restore the account until then.
pub(crate) async fn schedule_erasure(
    state: &App,
    ctx: &RequestContext,
    actor: Actor,
    user: &rampart_domain::User,
) -> Result<Erasure, ServiceError> {
    let now = state.clock.now();
    let erase_after = now + state.settings.accounts.erasure_grace;
    let ev = ctx
        .event(&state.events, Action::UserErasureScheduled, Outcome::Success)
        .severity(Severity::Warning)
        .actor(actor)
        .resource(Resource::new("user", user.id))
        .details(json!({ "erase_after": ts(erase_after) }));
    if !state.store.schedule_erasure(user.id, erase_after, now, &ev).await? {
        return Err(match state.store.get_user(user.id).await? {
            Some(_) => ServiceError::ErasureScheduled,
            None => ServiceError::NotFound,
        });
    }
    state.events.observed(&ev);
    state.api_keys.evict_user(user.id);
    Ok(Erasure { erase_after })
}

/// Erases `user` now if their erasure is due (the maintenance run, or an administrator's
/// immediate erasure): recorded as `user.deleted`. False when not due (or gone).
pub(crate) async fn erase(
    state: &App,
    ctx: Option<&RequestContext>,
    actor: Actor,
    user: UserId,
) -> Result<bool, rampart_store::StoreError> {
    let ev = match ctx {
        Some(ctx) => ctx.event(&state.events, Action::UserDeleted, Outcome::Success),
        None => state.events.event(Action::UserDeleted, Outcome::Success),
    }
    .severity(Severity::Warning)
    .actor(actor)
    .resource(Resource::new("user", user))
    .details(json!({ "personal_data": "erased" }));
    let done = state.store.erase_user(user, state.clock.now(), &ev).await?;
    if done {
        state.events.observed(&ev);
        state.api_keys.evict_user(user);
    }
    Ok(done)
}

/// Takes back a scheduled erasure (an administrator, within the grace): the account is enabled.
pub(crate) async fn restore(state: &App, ctx: &RequestContext, actor: Actor, user: UserId) -> Result<(), ServiceError> {
    let ev = ctx
        .event(&state.events, Action::UserRestored, Outcome::Success)
        .severity(Severity::Warning)
        .actor(actor)
        .resource(Resource::new("user", user));
    if !state.store.restore_user(user, state.clock.now(), &ev).await? {
        return Err(ServiceError::ErasureNotScheduled);
    }
    state.events.observed(&ev);
    state.api_keys.evict_user(user);
    Ok(())
}

/// Erases every account whose grace has ended (the maintenance run); how many.
pub async fn erase_due(state: &App) -> Result<u64, rampart_store::StoreError> {
    let mut erased = 0;
    loop {
        let due = state.store.users_due_for_erasure(state.clock.now(), 100).await?;
        if due.is_empty() {
            return Ok(erased);
        }
        let mut progressed = false;
        for user in due {
            if erase(state, None, Actor::System, user).await? {
                erased += 1;
                progressed = true;
            }
        }
        if !progressed {
            return Ok(erased);
        }
    }
}
