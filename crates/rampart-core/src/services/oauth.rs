//! Signing in (or linking) with an OpenID Connect or OAuth2 provider of
//! `[[federation.providers]]`: the authorization-code flow with PKCE S256, always.
//!
//! [`start`] makes the flow's secrets (`state`, `nonce`, the PKCE verifier), seals them with
//! the master key into the flow cookie (with the provider, the vetted `rd`, the redirect URI
//! and, for `mode=link`, the signed-in user and session) and answers the provider's
//! authorization URL. [`callback`] opens the cookie, compares `state` in constant time, claims
//! the state once (`federation_replays`: a replayed callback is refused before the code is
//! spent), exchanges the code with the verifier at the token endpoint, and reads who signed
//! in: an OpenID provider's `id_token`, checked by `rampart_domain::federation::oidc`
//! against the provider's keys (discovery document and JWKS cached in [`Directory`], the keys
//! fetched again once when a `kid` is unknown), or an OAuth2 provider's user-info answer
//! through its claim mapping (GitHub's verified primary address from `/user/emails`). Then
//! [`federation::sign_in`] or [`federation::link_to`] — the Telegram rules: the account's
//! second factor applies, `auto_register` decides about unknown identities — with one more
//! rule for an address that already has an account: it is linked only for a signed-in
//! `mode=link`, or for a verified address with `federation.trust_email_for_linking`.
//!
//! Core has no HTTP: the requests to providers go through a [`ProviderHttp`] the server
//! provides (its guarded outbound client: providers' addresses are judged like webhook
//! receivers', `federation.allow_networks` being the escape).

use crate::App;
use crate::authz::Authenticated;
use crate::error::ServiceError;
use crate::events::RequestContext;
use crate::services::factors::AddressAttempt;
use crate::services::federation::{self, event, with_detail};
use crate::services::login::LoginOutcome;
use base64::Engine as _;
use rampart_config::{Endpoints, ProviderKind, ProviderSettings, SEALED_PREFIX, TokenAuth};
use rampart_domain::federation::ExternalIdentity;
use rampart_domain::federation::oidc::{self, IdTokenError, IdTokenRules, Profile};
use rampart_domain::{Action, Actor, Outcome, Resource, SessionId, SessionMode, Severity, UserId};
use rampart_store::LinkedIdentity;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// Why a request to a provider got no answer (a sentence for the log; never shown).
pub type HttpFailure = String;

type Pending<'a> = Pin<Box<dyn Future<Output = Result<HttpAnswer, HttpFailure>> + Send + 'a>>;

/// How core reaches providers: the server's guarded client.
pub trait ProviderHttp: Send + Sync {
    fn get<'a>(&'a self, url: &'a str, headers: Vec<(&'static str, String)>) -> Pending<'a>;
    fn post_form<'a>(&'a self, url: &'a str, headers: Vec<(&'static str, String)>, form: String) -> Pending<'a>;
}

/// A discovery document and key set, as fetched.
#[derive(Debug, Clone)]
struct Discovered {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    keys: oidc::JwkSet,
    fetched_at: OffsetDateTime,
    keys_fetched_at: OffsetDateTime,
}

/// Discovery documents and key sets, per provider, kept for [`DISCOVERY_TTL`].
#[derive(Debug, Default)]
pub struct Directory {
    entries: Mutex<HashMap<String, Discovered>>,
}

/// How long a discovery document and key set are used before being fetched again.
const DISCOVERY_TTL: Duration = Duration::hours(1);
/// An unknown `kid` fetches the key set again at most this often.
const KEYS_REFETCH: Duration = Duration::minutes(1);
/// The associated data of a sealed flow cookie.
const FLOW_AAD: &[u8] = b"rampart/oauth-flow/v1";
/// The associated data of configuration secrets sealed by `rampart seal`.
pub const CONFIG_SECRET_AAD: &[u8] = b"rampart/config-secret/v1";

/// What the flow cookie holds (sealed: neither readable nor forgeable by the browser).
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    /// Provider name.
    p: String,
    /// `state`.
    s: String,
    /// PKCE verifier.
    v: String,
    /// `nonce`.
    n: String,
    /// The exact redirect URI sent.
    r: String,
    /// The vetted return target.
    rd: Option<String>,
    /// `mode=link`: the user and session that started it.
    u: Option<uuid::Uuid>,
    sid: Option<uuid::Uuid>,
    /// Expiry (Unix seconds).
    e: i64,
}

/// A started flow: send the browser to `location` with the cookie set.
#[derive(Debug, Clone)]
pub struct Started {
    pub location: String,
    /// The sealed flow (the cookie's value).
    pub flow: String,
    pub max_age: Duration,
    /// The provider answers with a cross-site form post (Apple): the cookie must be
    /// `SameSite=None` to come back with it.
    pub form_post: bool,
}

/// The callback's parameters (query, or Apple's form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Apple: the user's name, sent on the first sign-in only (JSON).
    pub user: Option<String>,
    pub iss: Option<String>,
}

/// How a callback ended.
#[derive(Debug)]
pub enum Finished {
    /// Signed in (or the step-up to a second factor).
    SignedIn(LoginOutcome),
    /// `mode=link`: the identity is now linked to the signed-in account.
    Linked(LinkedIdentity),
}

/// A callback's result with where the browser goes next.
#[derive(Debug)]
pub struct Callback {
    pub finished: Finished,
    pub rd: Option<String>,
}

/// The providers configured, for the sign-in page's buttons: (name, display name).
pub fn providers(state: &App) -> Vec<(String, String)> {
    state.settings.federation.providers.iter().map(|p| (p.name.as_str().to_string(), p.display_name.clone())).collect()
}

fn provider<'a>(state: &'a App, name: &str) -> Result<&'a ProviderSettings, ServiceError> {
    state.settings.federation.provider(name).ok_or(ServiceError::NotFound)
}

/// Opens a configured secret: `sealed:v1.…` with the master key, else as written.
fn open_secret(state: &App, value: &str) -> Result<String, ServiceError> {
    match value.strip_prefix(SEALED_PREFIX) {
        Some(sealed) => {
            let bytes = state.master_key.open(sealed, CONFIG_SECRET_AAD).map_err(ServiceError::internal)?;
            String::from_utf8(bytes).map_err(ServiceError::internal)
        }
        None => Ok(value.to_string()),
    }
}

/// Seals a configuration secret for `rampart seal` (`sealed:v1.…`) under the ring's current key.
pub fn seal_secret(ring: &rampart_domain::KeyRing, value: &str) -> String {
    format!("{SEALED_PREFIX}{}", ring.seal(value.as_bytes(), CONFIG_SECRET_AAD, &mut rand::rngs::OsRng))
}

async fn fetch_json(http: &dyn ProviderHttp, url: &str, headers: Vec<(&'static str, String)>) -> Result<Value, String> {
    let answer = http.get(url, headers).await?;
    if answer.status != 200 {
        return Err(format!("{url} answered {}", answer.status));
    }
    serde_json::from_str(&answer.body).map_err(|e| format!("{url}: not JSON: {e}"))
}

impl Directory {
    fn cached(&self, name: &str) -> Option<Discovered> {
        self.entries.lock().ok().and_then(|m| m.get(name).cloned())
    }

    fn keep(&self, name: &str, d: Discovered) {
        if let Ok(mut m) = self.entries.lock() {
            m.insert(name.to_string(), d);
        }
    }
}

/// The provider's discovery document and keys (cached).
async fn discovered(
    state: &App,
    http: &dyn ProviderHttp,
    p: &ProviderSettings,
    refetch_keys: bool,
) -> Result<Discovered, String> {
    let Endpoints::Discovery { discovery, issuer, jwks_uri } = &p.endpoints else {
        return Err("not an OpenID provider".into());
    };
    let now = state.clock.now();
    let name = p.name.as_str();
    if let Some(mut d) = state.oauth.cached(name)
        && now - d.fetched_at < DISCOVERY_TTL
    {
        if refetch_keys && now - d.keys_fetched_at >= KEYS_REFETCH {
            let keys = fetch_json(http, &d.jwks_uri, vec![]).await?;
            d.keys = serde_json::from_value(keys).map_err(|e| format!("key set: {e}"))?;
            d.keys_fetched_at = now;
            state.oauth.keep(name, d.clone());
        }
        return Ok(d);
    }
    let url = format!("{discovery}/.well-known/openid-configuration");
    let doc = fetch_json(http, &url, vec![]).await?;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    let doc_issuer = text("issuer").ok_or("discovery: no issuer")?;
    // OpenID Connect Discovery §4.3: the document's issuer is the one configured.
    if doc_issuer != *issuer {
        return Err(format!("discovery: issuer {doc_issuer:?} is not the configured {issuer:?}"));
    }
    let jwks_uri = jwks_uri.clone().or_else(|| text("jwks_uri")).ok_or("discovery: no jwks_uri")?;
    let keys = fetch_json(http, &jwks_uri, vec![]).await?;
    let d = Discovered {
        issuer: doc_issuer,
        authorization_endpoint: text("authorization_endpoint").ok_or("discovery: no authorization_endpoint")?,
        token_endpoint: text("token_endpoint").ok_or("discovery: no token_endpoint")?,
        jwks_uri,
        keys: serde_json::from_value(keys).map_err(|e| format!("key set: {e}"))?,
        fetched_at: now,
        keys_fetched_at: now,
    };
    state.oauth.keep(name, d.clone());
    Ok(d)
}

fn provider_failed(p: &ProviderSettings, why: &str) -> ServiceError {
    // Logged for the operator (URLs and statuses, never secrets); the caller sees a code.
    tracing::warn!(provider = p.name.as_str(), reason = why, "federation: provider request failed");
    ServiceError::ProviderFailed
}

/// The redirect URI of `provider` under `base` (`https://auth.example.com`).
pub fn redirect_uri(base: &str, provider: &str) -> String {
    format!("{}/v1/auth/oauth/{provider}/callback", base.trim_end_matches('/'))
}

/// `GET /v1/auth/oauth/{provider}/start`: the flow's secrets sealed into the cookie, and
/// the provider's authorization URL. `rd` comes vetted by the door; `link` is the signed-in
/// caller for `mode=link`, whose session must be recent (a link is a new way in).
pub async fn start(
    state: &App,
    http: &dyn ProviderHttp,
    provider_name: &str,
    base_url: &str,
    rd: Option<String>,
    link: Option<&Authenticated>,
) -> Result<Started, ServiceError> {
    let p = provider(state, provider_name)?;
    let now = state.clock.now();
    if let Some(auth) = link
        && !auth.session.is_recent(now, state.settings.security.reauth_window)
    {
        return Err(ServiceError::ReauthenticationRequired);
    }
    let authorization_endpoint = match &p.endpoints {
        Endpoints::OAuth2 { authorization_url, .. } => authorization_url.clone(),
        Endpoints::Discovery { .. } => {
            discovered(state, http, p, false).await.map_err(|e| provider_failed(p, &e))?.authorization_endpoint
        }
    };
    let mut rng = rand::rngs::OsRng;
    let flow = Flow {
        p: p.name.as_str().to_string(),
        s: oidc::random_token(&mut rng),
        v: oidc::random_token(&mut rng),
        n: oidc::random_token(&mut rng),
        r: redirect_uri(base_url, p.name.as_str()),
        rd,
        u: link.map(|a| a.user_id.0),
        sid: link.map(|a| a.session.id.0),
        e: (now + state.settings.federation.flow_ttl).unix_timestamp(),
    };
    let mut url = url::Url::parse(&authorization_endpoint).map_err(|e| provider_failed(p, &e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", &flow.r)
            .append_pair("state", &flow.s)
            .append_pair("code_challenge", &oidc::pkce_challenge(&flow.v))
            .append_pair("code_challenge_method", "S256");
        if !p.scopes.is_empty() {
            q.append_pair("scope", &p.scopes.join(" "));
        }
        if matches!(p.endpoints, Endpoints::Discovery { .. }) {
            q.append_pair("nonce", &flow.n);
        }
        if p.form_post {
            q.append_pair("response_mode", "form_post");
        }
    }
    let sealed = serde_json::to_vec(&flow).map_err(ServiceError::internal)?;
    Ok(Started {
        location: url.to_string(),
        flow: state.master_key.seal(&sealed, FLOW_AAD, &mut rng),
        max_age: state.settings.federation.flow_ttl,
        form_post: p.form_post,
    })
}

/// Only the characters of an OAuth2 error code (RFC 6749 §4.1.2.1), at most 64.
fn error_code(e: &str) -> String {
    e.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}

/// `GET|POST /v1/auth/oauth/{provider}/callback`: finishes the flow the cookie holds. Throttled
/// per client address like a sign-in (every refusal counts).
pub async fn callback(
    state: &App,
    ctx: &RequestContext,
    http: &dyn ProviderHttp,
    provider_name: &str,
    cookie: Option<&str>,
    params: &CallbackParams,
    mode: SessionMode,
) -> Result<Callback, ServiceError> {
    let p = provider(state, provider_name)?;
    let attempt = AddressAttempt::count(state, ctx).await?;
    let refuse = |reason: &str, outcome: Outcome, user: Option<uuid::Uuid>| {
        let ev = event(state, ctx, Action::FederatedLogin, outcome, &p.name).severity(Severity::Warning);
        let ev = with_detail(ev, "reason", reason.into());
        match user {
            Some(u) => ev.actor(Actor::User(u)).resource(Resource::new("user", UserId(u))),
            None => ev,
        }
    };
    let result = finish(state, ctx, http, p, cookie, params, mode, &refuse).await;
    match &result {
        Ok(_) => attempt.succeeded(state).await?,
        Err(
            ServiceError::InvalidIdToken(_) | ServiceError::OAuthStateInvalid | ServiceError::FederatedLoginReplayed,
        ) => crate::services::ip_rules::failed_authentication(state, ctx).await,
        Err(_) => {}
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &App,
    ctx: &RequestContext,
    http: &dyn ProviderHttp,
    p: &ProviderSettings,
    cookie: Option<&str>,
    params: &CallbackParams,
    mode: SessionMode,
    refuse: &(dyn Fn(&str, Outcome, Option<uuid::Uuid>) -> rampart_domain::SecurityEvent + Sync),
) -> Result<Callback, ServiceError> {
    let now = state.clock.now();
    // The flow: this browser's cookie, for this provider, in time, with this state.
    let flow: Option<Flow> = cookie
        .and_then(|c| state.master_key.open(c, FLOW_AAD).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|f: &Flow| f.p == p.name.as_str() && f.e >= now.unix_timestamp());
    let Some(flow) = flow else {
        state.events.record(refuse("no_flow", Outcome::Failure, None)).await?;
        return Err(ServiceError::OAuthStateInvalid);
    };
    let state_ok = params.state.as_deref().is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.s.as_bytes())));
    if !state_ok {
        state.events.record(refuse("state_mismatch", Outcome::Denied, flow.u)).await?;
        return Err(ServiceError::OAuthStateInvalid);
    }
    if let Some(error) = &params.error {
        let code = error_code(error);
        let ev = with_detail(refuse("provider_error", Outcome::Failure, flow.u), "error", code.clone().into());
        state.events.record(ev).await?;
        return Err(ServiceError::ProviderDenied(code));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        state.events.record(refuse("no_code", Outcome::Failure, flow.u)).await?;
        return Err(ServiceError::OAuthStateInvalid);
    };
    // One callback per flow: a replay is refused before the code goes anywhere.
    let until = OffsetDateTime::from_unix_timestamp(flow.e).unwrap_or(now) + Duration::minutes(1);
    if !state.store.claim_federation_nonce(p.name.as_str(), &format!("state:{}", flow.s), until, now).await? {
        state.events.record(refuse("replayed", Outcome::Denied, flow.u)).await?;
        return Err(ServiceError::FederatedLoginReplayed);
    }
    let profile = match identify(state, http, p, &flow, code, now).await {
        Ok(profile) => profile,
        Err(Refused::IdToken(e)) => {
            state.events.record(refuse(&format!("id_token_{}", e.reason()), Outcome::Denied, flow.u)).await?;
            return Err(ServiceError::InvalidIdToken(e.reason()));
        }
        Err(Refused::Provider(why)) => {
            let ev = refuse("provider_failed", Outcome::Failure, flow.u);
            state.events.record(ev).await?;
            return Err(provider_failed(p, &why));
        }
    };
    let apple_name = params.user.as_deref().and_then(|u| serde_json::from_str::<Value>(u).ok()).and_then(|v| {
        let n = v.get("name")?;
        let part = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_string);
        match (part("firstName"), part("lastName")) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.or(l),
        }
    });
    let identity = ExternalIdentity {
        provider: p.name.clone(),
        subject: profile.subject,
        username: profile.username,
        display_name: profile.name.or(apple_name),
        email: profile.email,
        email_verified: profile.email_verified,
    };
    let rd = flow.rd.clone();
    // mode=link: the account that started the flow, if its session still lives.
    if let (Some(user), Some(sid)) = (flow.u, flow.sid) {
        let live =
            state.store.get_session(SessionId(sid)).await?.is_some_and(|s| s.user_id.0 == user && s.is_active(now));
        if !live {
            state.events.record(refuse("session_ended", Outcome::Denied, Some(user))).await?;
            return Err(ServiceError::OAuthStateInvalid);
        }
        let linked = federation::link_to(state, ctx, UserId(user), &identity).await?;
        return Ok(Callback { finished: Finished::Linked(linked), rd });
    }
    let outcome = sign_in_or_link_by_email(state, ctx, &identity, mode).await?;
    Ok(Callback { finished: Finished::SignedIn(outcome), rd })
}

/// An identity signs in: its linked account; else an account with its address, linked only
/// on a verified address with `trust_email_for_linking`; else a new account (`auto_register`).
async fn sign_in_or_link_by_email(
    state: &App,
    ctx: &RequestContext,
    identity: &ExternalIdentity,
    mode: SessionMode,
) -> Result<LoginOutcome, ServiceError> {
    let known = state.store.identity_by_subject(identity.provider.as_str(), &identity.subject).await?.is_some();
    if !known && let Some(email) = identity.email.as_deref() {
        let existing = match rampart_domain::EmailLookup::parse(email) {
            Ok(e) => state.store.find_user_by_email(e).await?,
            Err(_) => None,
        };
        if let Some(user) = existing {
            if !(identity.email_verified && state.settings.federation.trust_email_for_linking) {
                let ev = event(state, ctx, Action::FederatedLogin, Outcome::Denied, &identity.provider)
                    .actor(Actor::User(user.id.0))
                    .resource(Resource::new("user", user.id));
                let reason = if identity.email_verified { "link_required" } else { "email_unverified" };
                state.events.record(with_detail(ev, "reason", reason.into())).await?;
                return Err(ServiceError::FederationLinkRequired);
            }
            if user.disabled {
                return Err(ServiceError::AccountDisabled);
            }
            federation::link_by_verified_email(state, ctx, user.id, identity).await?;
        }
    }
    federation::sign_in(state, ctx, identity, mode).await
}

enum Refused {
    IdToken(IdTokenError),
    Provider(String),
}

impl From<String> for Refused {
    fn from(s: String) -> Self {
        Refused::Provider(s)
    }
}

impl From<&str> for Refused {
    fn from(s: &str) -> Self {
        Refused::Provider(s.to_string())
    }
}

/// The client's secret for the token endpoint: configured (opened if sealed), or Apple's JWT.
fn client_secret(state: &App, p: &ProviderSettings, now: OffsetDateTime) -> Result<Option<String>, String> {
    if let Some(apple) = &p.apple {
        let pem = open_secret(state, apple.private_key.expose()).map_err(|e| e.to_string())?;
        let jwt = oidc::apple_client_secret(&apple.team_id, &apple.key_id, &p.client_id, &pem, now)
            .map_err(|e| e.to_string())?;
        return Ok(Some(jwt));
    }
    match &p.client_secret {
        Some(s) => open_secret(state, s.expose()).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// Exchanges the code, then reads the profile: the checked `id_token`, or the user-info answer.
async fn identify(
    state: &App,
    http: &dyn ProviderHttp,
    p: &ProviderSettings,
    flow: &Flow,
    code: &str,
    now: OffsetDateTime,
) -> Result<Profile, Refused> {
    let doc = match &p.endpoints {
        Endpoints::Discovery { .. } => Some(discovered(state, http, p, false).await?),
        Endpoints::OAuth2 { .. } => None,
    };
    let token_url = match (&p.endpoints, &doc) {
        (Endpoints::OAuth2 { token_url, .. }, _) => token_url.clone(),
        (_, Some(d)) => d.token_endpoint.clone(),
        (_, None) => return Err(Refused::Provider("no token endpoint".into())),
    };
    let secret = client_secret(state, p, now)?;
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", flow.r.as_str()),
        ("code_verifier", flow.v.as_str()),
    ];
    let mut headers = vec![
        ("accept", "application/json".to_string()),
        ("content-type", "application/x-www-form-urlencoded".to_string()),
    ];
    match (p.token_auth, &secret) {
        (TokenAuth::ClientSecretBasic, Some(s)) => {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&p.client_id), enc(s)));
            headers.push(("authorization", format!("Basic {basic}")));
        }
        (_, secret) => {
            pairs.push(("client_id", p.client_id.as_str()));
            if let Some(s) = secret {
                pairs.push(("client_secret", s.as_str()));
            }
        }
    }
    let answer = http.post_form(&token_url, headers, form(&pairs)).await?;
    if answer.status != 200 {
        let error = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(error_code))
            .unwrap_or_default();
        return Err(Refused::Provider(format!("token endpoint answered {} {error}", answer.status)));
    }
    let tokens: Value = serde_json::from_str(&answer.body).map_err(|e| format!("token answer: {e}"))?;
    // GitHub answers errors with 200 and an `error` field.
    if let Some(error) = tokens.get("error").and_then(Value::as_str) {
        return Err(Refused::Provider(format!("token endpoint: {}", error_code(error))));
    }
    if let Some(d) = doc {
        let id_token = tokens.get("id_token").and_then(Value::as_str).ok_or("no id_token in the token answer")?;
        let rules = IdTokenRules {
            issuer: &d.issuer,
            client_id: &p.client_id,
            nonce: &flow.n,
            algorithms: &p.algorithms,
            leeway: state.settings.federation.leeway,
        };
        let claims = match oidc::verify_id_token(id_token, &d.keys, &rules, now) {
            Err(e) if e.key_set_may_be_stale() => {
                // The provider may have rotated its keys: fetch them once more.
                let fresh = discovered(state, http, p, true).await?;
                oidc::verify_id_token(id_token, &fresh.keys, &rules, now)
            }
            other => other,
        }
        .map_err(Refused::IdToken)?;
        return oidc::profile(&Value::Object(claims), &p.claims).ok_or(Refused::IdToken(IdTokenError::MissingClaim));
    }
    let access = tokens.get("access_token").and_then(Value::as_str).ok_or("no access_token in the token answer")?;
    let Endpoints::OAuth2 { userinfo_url, .. } = &p.endpoints else {
        return Err(Refused::Provider("no user-info endpoint".into()));
    };
    let auth = vec![
        ("authorization", format!("Bearer {access}")),
        ("accept", "application/json".to_string()),
        // GitHub's API refuses requests without one.
        ("user-agent", "rampart".to_string()),
    ];
    let info = fetch_json(http, userinfo_url, auth.clone()).await?;
    let mut profile = oidc::profile(&info, &p.claims).ok_or("user info without the subject claim")?;
    if let Some(emails_url) = &p.github_emails {
        let emails = fetch_json(http, emails_url, auth).await?;
        match oidc::github_primary_email(&emails) {
            Some((email, verified)) => {
                profile.email = Some(email);
                profile.email_verified = verified;
            }
            None => profile.email_verified = false,
        }
    }
    if p.kind == ProviderKind::Oauth2 && p.claims.email_verified.is_none() {
        profile.email_verified = false;
    }
    Ok(profile)
}
