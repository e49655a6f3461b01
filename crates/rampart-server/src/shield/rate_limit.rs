//! The rate-limit layer: every configured rule that matches the route and method counts the
//! request under its key (address, user, API key, role, or user with the tier's limit); if
//! one refuses (and is not in shadow mode) the answer is 429 `rate_limited` with
//! `Retry-After`. Limited routes carry `RateLimit-Policy` and `RateLimit`
//! (draft-ietf-httpapi-ratelimit-headers: `"login";q=10;w=60` and `"login";r=9;t=6`).

use super::client_ip::ClientIp;
use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rampart_config::{CompiledRule, OnRedisError, RateLimitKey, RateLimitSettings};
use rampart_core::ServiceError;
use rampart_core::limiter::{Limiter, MemoryLimiter, RedisLimiter, Source, Transition};
use rampart_core::metrics::{Metrics, SeriesCounter};
use rampart_domain::ratelimit::{Decision, Quota};
use rampart_domain::{Action, Actor, Outcome, Severity, ThrottleKey};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

/// The limiter and the compiled rules, built once from `[rate_limit]`.
#[derive(Debug)]
pub struct RateLimits {
    enabled: bool,
    rules: Vec<CompiledRule>,
    /// Per rule (same order), its decision counters by [`OUTCOMES`], fetched on first use.
    series: Vec<[OnceLock<SeriesCounter>; 4]>,
    pub limiter: Limiter,
}

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The outcomes a rule's decisions are counted under (`rampart_rate_limit_decisions`).
const OUTCOMES: [&str; 4] = ["allowed", "limited", "shadow_limited", "fallback"];

impl RateLimits {
    /// The limiter (memory, and Redis when configured) over the rules compiled by the settings.
    pub fn from_settings(c: &RateLimitSettings) -> Result<Self, String> {
        let redis = match &c.redis {
            Some(r) => Some(
                RedisLimiter::new(r.url.expose(), &r.key_prefix, r.timeout)
                    .map_err(|e| format!("rate_limit.redis_url: {e}"))?,
            ),
            None => None,
        };
        let retry = c.redis.as_ref().map_or(Duration::from_secs(1), |r| r.retry);
        let limiter = Limiter::with(MemoryLimiter::new(c.max_keys), redis, retry);
        let series = c.rules.iter().map(|_| Default::default()).collect();
        Ok(Self { enabled: c.enabled, rules: c.rules.clone(), series, limiter })
    }

    /// Counts one decision of rule `i` (its index in `rules`) under `OUTCOMES[outcome]`.
    fn count(&self, metrics: &Metrics, i: usize, outcome: usize) {
        if let (Some(rule), Some(series)) = (self.rules.get(i), self.series.get(i).and_then(|s| s.get(outcome))) {
            series.get_or_init(|| metrics.rate_limit_series(&rule.name, OUTCOMES[outcome])).inc();
        }
    }
}

/// Who the caller is, as far as the limiter needs: worked out once per request and only when a
/// matching rule keys by something other than the address. Credentials that do not verify
/// count as anonymous (keyed by address), so junk credentials cannot mint fresh buckets.
#[derive(Debug, Default)]
struct Identity {
    user: Option<String>,
    roles: Vec<String>,
    api_key: Option<String>,
}

async fn identify(state: &AppState, headers: &axum::http::HeaderMap) -> Identity {
    if let Some(key) = crate::auth::presented_api_key(headers) {
        if let Ok(p) = state.api_keys.authenticate(state, key).await {
            return Identity {
                user: Some(p.key.user_id.to_string()),
                roles: Vec::new(),
                api_key: Some(p.key.id.to_string()),
            };
        }
        return Identity::default();
    }
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if let Some(token) = bearer
        && let Ok(claims) = state.signing.verify(token).await
    {
        return Identity { user: Some(claims.sub), roles: claims.roles, api_key: None };
    }
    Identity::default()
}

/// The bucket key of `rule` for this request, and the quota in force for it. The address
/// part (`ip:…`, see [`ThrottleKey::push_address_key`]; `unknown` without an address) is
/// written straight into the key: one `String` per rule and request, no formatting machinery.
fn key_for(rule: &CompiledRule, ip: Option<IpAddr>, id: &Identity) -> (String, Quota) {
    let name = &rule.name;
    let keyed = |kind: &str, parts: &[&str]| {
        let mut key =
            String::with_capacity(name.len() + kind.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
        key.push_str(name);
        key.push(':');
        key.push_str(kind);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    };
    let by_ip = || {
        let mut key = String::with_capacity(name.len() + 48);
        key.push_str(name);
        key.push_str(":ip:");
        match ip {
            Some(ip) => ThrottleKey::push_address_key(&mut key, ip),
            None => key.push_str("unknown"),
        }
        (key, rule.quota)
    };
    match rule.key {
        RateLimitKey::Ip => by_ip(),
        RateLimitKey::User => id.user.as_ref().map_or_else(by_ip, |u| (keyed("user", &[u]), rule.quota)),
        RateLimitKey::ApiKey => id.api_key.as_ref().map_or_else(by_ip, |k| (keyed("key", &[k]), rule.quota)),
        RateLimitKey::Role => match (&id.user, id.roles.first()) {
            (Some(_), Some(role)) => (keyed("role", &[role]), rule.quota),
            (Some(u), None) => (keyed("user", &[u]), rule.quota),
            _ => by_ip(),
        },
        RateLimitKey::Tier => match &id.user {
            Some(u) => {
                let tier = id.roles.iter().find_map(|r| rule.tiers.get(r).map(|q| (r.as_str(), *q)));
                let (tier, q) = tier.unwrap_or(("default", rule.quota));
                (keyed("tier", &[tier, u]), q)
            }
            None => by_ip(),
        },
    }
}

fn now_us(state: &AppState) -> i64 {
    let t = state.clock.now();
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX / 4)
}

/// Appends one rule's item of a RateLimit header list (`"name";a=1;b=2`), separated from the
/// previous one by `, `.
fn push_item(out: &mut String, name: &str, (a, x): (&str, u64), (b, y): (&str, u64)) {
    let mut digits = itoa::Buffer::new();
    if !out.is_empty() {
        out.push_str(", ");
    }
    out.push('"');
    out.push_str(name);
    out.push_str("\";");
    out.push_str(a);
    out.push('=');
    out.push_str(digits.format(x));
    out.push(';');
    out.push_str(b);
    out.push('=');
    out.push_str(digits.format(y));
}

/// The `RateLimit-Policy` and `RateLimit` values of the rules in force, for the answer
/// whichever it is ([`RateHeaders::finish`]).
#[derive(Debug, Default)]
pub(crate) struct RateHeaders(Option<(HeaderValue, HeaderValue)>);

impl RateHeaders {
    /// The `RateLimit-Policy` and `RateLimit` headers onto the answer.
    pub(crate) fn finish(self, res: &mut Response) {
        if let Some((policy, current)) = self.0 {
            let h = res.headers_mut();
            h.insert(RATELIMIT_POLICY, policy);
            h.insert(RATELIMIT, current);
        }
    }
}

/// The rate limits' verdict on a request: the refusal (429) when a rule in force refuses it,
/// and the headers of the rules in force.
type Limited = (Option<Response>, RateHeaders);

/// Layer 11: decides the request under every rule that matches it. See the module docs.
pub(crate) fn limit<'a>(state: &'a AppState, req: &'a Request) -> impl Future<Output = Limited> + Send + 'a {
    // The parts it reads, not the request (whose body is not `Sync`: a reference to it held
    // across the limiter's awaits would make the future not `Send`).
    decide(state, req.method().as_str(), req.uri().path(), req.extensions(), req.headers())
}

async fn decide(state: &AppState, method: &str, path: &str, extensions: &Extensions, headers: &HeaderMap) -> Limited {
    let limits = &state.shield.rate_limits;
    if !limits.enabled {
        return (None, RateHeaders::default());
    }
    let route = extensions.get::<MatchedPath>().map_or(path, |p| p.as_str());
    // The matching rules, by index (no list is collected: matching is a few string compares).
    let matching = || limits.rules.iter().enumerate().filter(|(_, r)| r.matches(method, route));
    if matching().next().is_none() {
        return (None, RateHeaders::default());
    }
    let ip = extensions
        .get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
    let identity = if matching().any(|(_, r)| r.key != RateLimitKey::Ip) {
        // Boxed: the lookup's future (API keys, the store) is large and rarely needed, and an
        // inline one would be moved with every request's future.
        Box::pin(identify(state, headers)).await
    } else {
        Identity::default()
    };
    let now = now_us(state);
    // The RateLimit-Policy and RateLimit values of the rules in force, written as they decide.
    let (mut policy, mut current) = (String::with_capacity(64), String::with_capacity(64));
    let mut refused: Option<Decision> = None;
    for (i, rule) in matching() {
        let (key, quota) = key_for(rule, ip, &identity);
        let fallback = if rule.on_redis_error == OnRedisError::Strict {
            Quota { limit: rule.fallback.limit.min(quota.limit), ..quota }
        } else {
            quota
        };
        let (d, source, transition) = match limits.limiter.memory_only() {
            // In process only: decided on the spot, no future to allocate.
            Some(memory) => (memory.decide(&key, quota, now), Source::Memory, None),
            None => Box::pin(limits.limiter.check(&key, quota, fallback, now)).await,
        };
        if let Some(t) = transition {
            backend_transition(state, t);
        }
        if source == Source::Fallback {
            limits.count(&state.metrics, i, 3);
        }
        let shadow = rule.shadow;
        limits.count(
            &state.metrics,
            i,
            match (d.allowed, shadow) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            },
        );
        if !d.allowed {
            tracing::info!(
                target: "rampart::ratelimit",
                rule = %rule.name,
                shadow,
                retry_after_ms = d.retry_after.as_millis() as u64,
                "rate limit {}",
                if shadow { "would refuse (shadow mode)" } else { "refused" }
            );
            record_limited(state, ip, rule, &key, shadow);
            if !shadow {
                refused = Some(match refused {
                    Some(prev) if prev.retry_after >= d.retry_after => prev,
                    _ => d,
                });
            }
        }
        if !shadow {
            let shown = if source == Source::Fallback { fallback } else { quota };
            push_item(&mut policy, &rule.name, ("q", u64::from(shown.limit)), ("w", shown.period.as_secs()));
            push_item(&mut current, &rule.name, ("r", u64::from(d.remaining)), ("t", d.reset_secs()));
        }
    }
    let refused = refused
        .map(|d| ApiError::from(ServiceError::RateLimited { retry_after_secs: d.retry_after_secs() }).into_response());
    let headers = if policy.is_empty() {
        None
    } else {
        HeaderValue::try_from(policy).ok().zip(HeaderValue::try_from(current).ok())
    };
    (refused, RateHeaders(headers))
}

fn record_limited(state: &AppState, ip: Option<IpAddr>, rule: &CompiledRule, key: &str, shadow: bool) {
    let event = state
        .events
        .event(Action::RateLimited, if shadow { Outcome::Failure } else { Outcome::Denied })
        .actor(Actor::Anonymous)
        .severity(Severity::Warning)
        .ip(ip)
        .request_id(crate::request_id::current().as_deref())
        .details(serde_json::json!({
            "rule": rule.name,
            "key": key,
            "shadow": shadow,
            "limit": rule.quota.limit,
            "window_secs": rule.window().as_secs(),
        }));
    // One event when a key is first refused in an aggregation interval, one summary with the
    // count at its end (`SecurityEvents::record_aggregated`); off the response path.
    let events = state.events.clone();
    let agg_key = format!("{}|{key}", rule.name);
    tokio::spawn(async move {
        if let Err(e) = events.record_aggregated(&agg_key, event).await {
            tracing::warn!(error = %e, "cannot record rate-limit event");
        }
    });
}

fn backend_transition(state: &AppState, t: Transition) {
    let (action, severity, outcome) = match t {
        Transition::Degraded => (Action::RateLimitDegraded, Severity::Critical, Outcome::Failure),
        Transition::Recovered => (Action::RateLimitRecovered, Severity::Info, Outcome::Success),
    };
    state.metrics.set_rate_limit_degraded(t == Transition::Degraded);
    if t == Transition::Recovered {
        tracing::info!("rate limiter: Redis answers again; shared counting resumed");
    }
    let event = state
        .events
        .event(action, outcome)
        .actor(Actor::System)
        .severity(severity)
        .resource(rampart_domain::Resource::new("rate_limit_backend", "redis"));
    let events = state.events.clone();
    tokio::spawn(async move {
        if let Err(e) = events.record(event).await {
            tracing::warn!(error = %e, "cannot record rate-limit backend event");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    fn rules(toml_rules: serde_json::Value) -> RateLimits {
        let c = rampart_config::RateLimitConfig {
            rules: serde_json::from_value(toml_rules).unwrap(),
            ..Default::default()
        };
        let rules = c.rules.iter().map(|r| r.compile()).collect();
        RateLimits::from_settings(&RateLimitSettings { enabled: true, redis: None, max_keys: 1000, rules }).unwrap()
    }

    #[test]
    fn ratelimit_header_items_are_quoted_and_listed_with_commas() {
        let mut s = String::new();
        push_item(&mut s, "login", ("q", 10), ("w", 60));
        assert_eq!(s, "\"login\";q=10;w=60");
        push_item(&mut s, "api", ("r", 0), ("t", 18_446_744_073_709_551_615));
        assert_eq!(s, "\"login\";q=10;w=60, \"api\";r=0;t=18446744073709551615");
    }

    #[test]
    fn rules_match_route_templates_prefixes_and_methods() {
        let r = rules(serde_json::json!([
            { "name": "a", "path": "/v1/auth/login", "methods": ["POST"], "key": "ip", "limit": 1, "window_secs": 1 },
            { "name": "b", "path": "/v1/admin/*", "key": "user", "limit": 1, "window_secs": 1 },
            { "name": "c", "path": "*", "except": ["/healthz", "/v1/keys/*"], "key": "ip", "limit": 1, "window_secs": 1 },
        ]));
        let names = |m: Method, p: &str| -> Vec<String> {
            r.rules.iter().filter(|x| x.matches(m.as_str(), p)).map(|x| x.name.clone()).collect()
        };
        assert_eq!(names(Method::POST, "/v1/auth/login"), ["a", "c"]);
        assert_eq!(names(Method::GET, "/v1/auth/login"), ["c"]);
        assert_eq!(names(Method::DELETE, "/v1/admin/users/{id}"), ["b", "c"]);
        assert_eq!(names(Method::GET, "/v1/me"), ["c"]);
        assert!(names(Method::GET, "/healthz").is_empty());
        assert!(names(Method::POST, "/v1/keys/verify").is_empty());
    }

    #[test]
    fn keys_by_user_role_key_and_tier_fall_back_to_the_address() {
        let r = rules(serde_json::json!([
            { "name": "t", "path": "*", "key": "tier", "limit": 10, "window_secs": 60,
              "tiers": { "premium": { "limit": 100 } } },
            { "name": "r", "path": "*", "key": "role", "limit": 10, "window_secs": 60 },
            { "name": "k", "path": "*", "key": "api_key", "limit": 10, "window_secs": 60 },
        ]));
        let (tier, role, key) = (&r.rules[0], &r.rules[1], &r.rules[2]);
        let anon = Identity::default();
        let free = Identity { user: Some("u1".into()), roles: vec!["user".into()], api_key: None };
        let premium = Identity { user: Some("u2".into()), roles: vec!["user".into(), "premium".into()], api_key: None };
        let keyed = Identity { user: Some("u3".into()), roles: vec![], api_key: Some("k1".into()) };
        let ip: Option<IpAddr> = Some("1.2.3.4".parse().unwrap());
        assert_eq!(key_for(tier, ip, &anon), ("t:ip:ip:1.2.3.4".into(), tier.quota));
        assert_eq!(key_for(tier, Some("::ffff:10.0.0.1".parse().unwrap()), &anon).0, "t:ip:ip:10.0.0.1");
        assert_eq!(key_for(tier, Some("2001:db8:1:2:3::4".parse().unwrap()), &anon).0, "t:ip:ip:2001:db8:1:2::/64");
        assert_eq!(key_for(tier, None, &anon).0, "t:ip:unknown");
        assert_eq!(key_for(tier, ip, &free).0, "t:tier:default:u1");
        assert_eq!(key_for(tier, ip, &free).1.limit, 10);
        assert_eq!(key_for(tier, ip, &premium).0, "t:tier:premium:u2");
        assert_eq!(key_for(tier, ip, &premium).1.limit, 100);
        assert_eq!(key_for(role, ip, &free).0, "r:role:user");
        assert_eq!(key_for(key, ip, &keyed).0, "k:key:k1");
        assert_eq!(key_for(key, ip, &free).0, "k:ip:ip:1.2.3.4");
    }
}
