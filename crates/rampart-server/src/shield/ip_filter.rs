//! The IP-rule layer: refuses requests from blocked addresses (403 `ip_blocked`) and, on admin
//! routes, from addresses outside the admin allowlist when there is one (403
//! `ip_not_allowed`). Rules come from memory (`services::ip_rules`, reloaded every second);
//! the address is the resolved client address, so a forwarded header cannot dodge a block.

use super::client_ip::ClientIp;
use crate::AppState;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use rampart_domain::iprule::{IpVerdict, verdict};
use rampart_domain::{Action, Actor, Outcome, Resource, Severity};

/// Whether a route is an admin route (what `admin`-scope rules and the allowlist cover): the
/// JSON API's `/v1/admin/*` and the console's pages, `/ui/admin/*`.
pub fn is_admin_route(path: &str) -> bool {
    path.starts_with("/v1/admin/") || path == "/v1/admin" || path.starts_with("/ui/admin/") || path == "/ui/admin"
}

/// Layer 9 (and the built-in proxy's second layer): the refusal when a rule refuses the
/// request's client address, else `None` (the request goes on).
pub(crate) fn check(state: &AppState, req: &Request) -> Option<Response> {
    let ip = req.extensions().get::<ClientIp>()?.0;
    let rules = state.ip_rules.current();
    if rules.is_empty() {
        return None;
    }
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| req.uri().path(), |p| p.as_str());
    let admin = is_admin_route(route);
    let v = verdict(&rules, ip, admin, state.clock.now());
    let (error, what) = match &v {
        IpVerdict::Allowed => return None,
        IpVerdict::Blocked(id) => (ApiError::IpBlocked, format!("blocked:{id}")),
        IpVerdict::NotAllowlisted => (ApiError::IpNotAllowed, "admin_allowlist".to_string()),
    };
    state.metrics.observe_ip_block(if admin { "admin" } else { "all" });
    {
        let mut ev = state
            .events
            .event(Action::IpBlocked, Outcome::Denied)
            .actor(Actor::Anonymous)
            .severity(Severity::Warning)
            .ip(Some(ip))
            .request_id(crate::request_id::current().as_deref())
            .details(serde_json::json!({ "route": route, "verdict": what }));
        if let IpVerdict::Blocked(id) = v {
            ev = ev.resource(Resource::new("ip_rule", id));
        }
        // Aggregated per address and verdict (`SecurityEvents::record_aggregated`).
        let events = state.events.clone();
        let key = format!("{ip}|{what}");
        tokio::spawn(async move {
            if let Err(e) = events.record_aggregated(&key, ev).await {
                tracing::warn!(error = %e, "cannot record IP block event");
            }
        });
    }
    let mut res = error.into_response();
    if route.starts_with("/authz/") {
        // The gateway's doors: nginx shows only the status, so say why in a header too.
        let reason = if matches!(v, IpVerdict::Blocked(_)) { "ip_blocked" } else { "ip_not_allowed" };
        res.headers_mut().insert("x-rampart-deny-reason", axum::http::HeaderValue::from_static(reason));
    }
    Some(res)
}
