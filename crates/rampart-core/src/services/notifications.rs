//! E-mail from the durable outbox: messages use cases build whole (reset links, sign-in codes,
//! alerts) and the security notices events give rise to (a sign-in from a new device, a changed
//! password, …), with the user's preferences, an hourly cap and merging.
//!
//! A notice's outbox row is written with its event (the store's `insert_event`); a message is
//! queued by [`queue`], sealed with the master key because it may hold a single-use link. The
//! worker ([`run_worker`]) claims due rows, decides and renders notices, sends, and records the
//! outcome, so a message queued before the process died is sent by the next one.

use super::notices::Catalogue;
use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::mail::{OutgoingMail, recipient_domain, scrub};
use askama::Template;
use rampart_domain::notice::{DeviceMark, NoticeKind, Preferences, is_new_device};
use rampart_domain::{Action, Actor, Outcome, Resource, SecurityEvent, User, UserId};
use rampart_store::{ClaimedMail, MESSAGE_KIND, MailOutcome};
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Waits before the attempts after the first of a message that failed for now (a network
/// problem, a 4xx answer): six attempts in about two and a half hours, then it is given up.
pub const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(7200),
];

/// Messages one worker sends at once.
const BATCH: u32 = 8;

fn aad(id: Uuid) -> Vec<u8> {
    rampart_store::sealed::aad::mail(id)
}

/// `mail` sealed with the master key for the outbox row `id`.
pub(crate) fn seal(state: &App, id: Uuid, mail: &OutgoingMail) -> String {
    let plain = serde_json::to_vec(mail).unwrap_or_default();
    state.master_key.seal(&plain, &aad(id), &mut rand::rngs::OsRng)
}

/// Queues `mail` in the outbox and returns at once: the write runs beside the caller, so a
/// response never waits for (or reveals, by its timing) the message. `user` is the account the
/// message is about (its row goes with the account when the account is erased).
pub fn queue(state: &App, mail: OutgoingMail, user: Option<UserId>) {
    let guard = state.mailer.begin_queueing();
    let state = state.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let id = Uuid::now_v7();
        let sealed = seal(&state, id, &mail);
        if let Err(e) = state.store.queue_mail(id, user.map(|u| u.0), &sealed, state.clock.now()).await {
            tracing::error!(error = %e, to_domain = %recipient_domain(&mail.to), "cannot queue mail; message dropped");
        }
    });
}

/// A user's notice preferences.
pub async fn preferences(state: &App, user: UserId) -> Result<Preferences, ServiceError> {
    Ok(state.store.notification_prefs(user.0).await?)
}

/// A change of preferences: only the fields given.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferencesChange {
    pub new_sign_in: Option<bool>,
    pub security_changes: Option<bool>,
}

/// Changes a user's notice preferences (audited) and returns them as they are now.
pub async fn set_preferences(
    state: &App,
    ctx: &RequestContext,
    user: UserId,
    change: PreferencesChange,
) -> Result<Preferences, ServiceError> {
    let before = state.store.notification_prefs(user.0).await?;
    let after = Preferences {
        new_sign_in: change.new_sign_in.unwrap_or(before.new_sign_in),
        security_changes: change.security_changes.unwrap_or(before.security_changes),
    };
    let ev = ctx
        .event(&state.events, Action::NotificationsUpdated, Outcome::Success)
        .actor(Actor::User(user.0))
        .resource(Resource::new("user", user))
        .details(serde_json::json!({ "before": before, "after": after }));
    state.store.set_notification_prefs(user.0, after, state.clock.now(), &ev).await?;
    state.events.observed(&ev);
    Ok(after)
}

/// Sends what the outbox holds until `stop` resolves: every `notifications.poll_ms`, or at once
/// when this instance queued a message, it claims what is due and handles it.
pub async fn run_worker(state: App, stop: impl Future<Output = ()>) {
    let poll = state.settings.notifications.poll;
    let work = async {
        loop {
            let now = state.clock.now();
            match state.store.claim_mail(now, now + state.settings.notifications.claim, BATCH).await {
                Ok(claimed) => {
                    let full = claimed.len() == BATCH as usize;
                    // One person's rows in order, people side by side: a notice's merge and hourly
                    // cap read what was sent before it, so two of one person's rows decided at
                    // once would both pass.
                    let mut people: Vec<Vec<ClaimedMail>> = Vec::new();
                    for m in claimed {
                        match people.iter_mut().find(|rows| m.user_id.is_some() && rows[0].user_id == m.user_id) {
                            Some(rows) => rows.push(m),
                            None => people.push(vec![m]),
                        }
                    }
                    let sends = people.into_iter().map(|rows| {
                        let state = state.clone();
                        async move {
                            for m in rows {
                                let outcome = handle(&state, &m).await;
                                if let Err(e) = state.store.finish_mail(m.id, m.attempts + 1, &outcome).await {
                                    tracing::warn!(error = %e, "mail outcome not recorded; the message goes again when its claim runs out");
                                }
                            }
                        }
                    });
                    futures::future::join_all(sends).await;
                    if full {
                        continue; // more may be due
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim mail"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = state.mailer.queued() => {}
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = stop => {}
    }
}

/// Decides, builds and sends one claimed row.
async fn handle(state: &App, m: &ClaimedMail) -> MailOutcome {
    let mail = if m.kind == MESSAGE_KIND {
        let Some(sealed) = &m.sealed else { return MailOutcome::Failed("nothing to send".into()) };
        match state.master_key.open(sealed, &aad(m.id)).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(mail) => mail,
            None => return MailOutcome::Failed("the message cannot be opened with this master key".into()),
        }
    } else {
        match notice(state, m).await {
            Ok(Ok(mail)) => mail,
            Ok(Err(skipped)) => return MailOutcome::Skipped(skipped.into()),
            Err(e) => return retry_or_fail(state, m, e.to_string()),
        }
    };
    // An account created from an external identity may have a placeholder address under
    // `.invalid` (RFC 2606): nothing is ever sent there.
    if !rampart_domain::email::is_deliverable(&mail.to) {
        return MailOutcome::Skipped("the address is not deliverable (.invalid)".into());
    }
    match state.mailer.send(&mail).await {
        Ok(()) => MailOutcome::Sent(state.clock.now()),
        Err(e) => {
            let why = scrub(&e.to_string(), &mail.to);
            if e.is_transient() {
                retry_or_fail(state, m, why)
            } else {
                tracing::error!(to_domain = %recipient_domain(&mail.to), error = %why, "mail refused; message dropped");
                MailOutcome::Failed(why)
            }
        }
    }
}

fn retry_or_fail(state: &App, m: &ClaimedMail, why: String) -> MailOutcome {
    match RETRY_DELAYS.get(m.attempts as usize) {
        Some(delay) => {
            tracing::warn!(attempt = m.attempts + 1, error = %why, retry_in_secs = delay.as_secs(), "mail not sent");
            MailOutcome::RetryAt(state.clock.now() + *delay, why)
        }
        None => {
            tracing::error!(attempts = m.attempts + 1, error = %why, "mail not sent; given up");
            MailOutcome::Failed(why)
        }
    }
}

/// The notice of row `m`, or why it is not sent.
async fn notice(state: &App, m: &ClaimedMail) -> Result<Result<OutgoingMail, &'static str>, ServiceError> {
    let settings = &state.settings.notifications;
    if !settings.enabled {
        return Ok(Err("notifications are off"));
    }
    let (Some(kind), Some(user_id), Some(event_id)) = (NoticeKind::parse(&m.kind), m.user_id, m.event_id) else {
        return Ok(Err("not a notice"));
    };
    let Some(user) = state.store.get_user(UserId(user_id)).await? else { return Ok(Err("no such user")) };
    let Some(stored) = state.store.event_by_id(event_id).await? else { return Ok(Err("the event was purged")) };
    let event = stored.event;
    if kind == NoticeKind::NewSignIn {
        // Kept whatever the user's choice, so turning the notice back on knows their devices.
        let mark = DeviceMark::of(event.ip, event.user_agent.as_deref()).key();
        let since = event.ts - settings.new_device_window;
        let (seen_recently, had_any) = state.store.see_device(user_id, &mark, event.ts, since).await?;
        if !is_new_device(seen_recently, had_any) {
            return Ok(Err("a device seen before"));
        }
    }
    if !state.store.notification_prefs(user_id).await?.wants(kind) {
        return Ok(Err("turned off by the user"));
    }
    let now = state.clock.now();
    let (last_hour, same_kind) = state
        .store
        .notices_sent_since(user_id, kind.as_str(), now - time::Duration::HOUR, now - settings.merge_window)
        .await?;
    if same_kind > 0 {
        return Ok(Err("merged with the same notice sent a moment ago"));
    }
    if last_hour >= i64::from(settings.max_per_hour) {
        return Ok(Err("over the hourly cap"));
    }
    render(state, kind, &event, &user).map(Ok)
}

/// What a notice says, in both its forms.
struct Notice<'a> {
    c: &'a Catalogue,
    subject: &'a str,
    headline: &'a str,
    when: &'a str,
    from_where: &'a str,
    device: &'a str,
    link: Option<&'a str>,
    product: &'a str,
}

#[derive(Template)]
#[template(path = "notice.txt")]
struct NoticeText<'a> {
    n: &'a Notice<'a>,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticeHtml<'a> {
    n: &'a Notice<'a>,
}

/// The security page of the self-service pages, when the reset link shows where they are.
fn security_page(state: &App) -> Option<String> {
    let reset = url::Url::parse(&state.settings.accounts.reset_password_url).ok()?;
    reset.path().starts_with("/ui/").then(|| format!("{}/ui/account/security", reset.origin().ascii_serialization()))
}

/// Builds the e-mail of a notice: when, from where, which device, what to do if it was not you.
pub fn render(state: &App, kind: NoticeKind, event: &SecurityEvent, user: &User) -> Result<OutgoingMail, ServiceError> {
    let c = Catalogue::of(&state.settings.notifications.language);
    let (subject, headline) = c.texts(kind);
    let when = event
        .ts
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default();
    let from_where = event.ip.map_or_else(|| c.unknown.to_string(), |ip| ip.to_string());
    let d = rampart_domain::device::parse_user_agent(event.user_agent.as_deref());
    let device = match (d.browser, d.os) {
        (Some(b), Some(os)) => format!("{b}, {os}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => c.unknown.to_string(),
    };
    let link = security_page(state);
    let product = state.settings.ui.product_name.as_str();
    let n = Notice {
        c,
        subject,
        headline,
        when: &when,
        from_where: &from_where,
        device: &device,
        link: link.as_deref(),
        product,
    };
    let text = NoticeText { n: &n }.render().map_err(ServiceError::internal)?;
    let html = NoticeHtml { n: &n }.render().map_err(ServiceError::internal)?;
    Ok(OutgoingMail { to: user.email.to_string(), subject: subject.to_string(), text, html: Some(html) })
}
