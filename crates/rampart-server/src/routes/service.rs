//! Service routes: liveness, readiness, metrics and the OpenAPI document.

use crate::AppState;
use crate::error::{ApiError, PROBLEM_JSON};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use rampart_core::RequestContext;
use rampart_wire::{Health, Problem, Ready};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long readiness waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process is running", body = Health)))]
pub async fn healthz() -> ([(axum::http::HeaderName, axum::http::HeaderValue); 1], &'static str) {
    // A constant answer: written once here, not serialized per probe.
    ([(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"))], HEALTHY)
}

/// The body of every `/healthz` answer: a [`Health`] of status `ok`.
const HEALTHY: &str = r#"{"status":"ok"}"#;

/// Readiness: 200 when storage answers, 503 otherwise. With Redis configured, `checks.redis`
/// says `ok` or `degraded` (rate limits counting locally); it does not fail readiness.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Every dependency answered", body = Ready),
        (status = 503, description = "A dependency did not answer", body = Problem, content_type = PROBLEM_JSON),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            let mut checks = BTreeMap::from([("database".to_string(), "ok".to_string())]);
            // Redis holds only rate-limit counters, and rules fall back to local limits while it
            // fails: reported, but not a reason to take the instance out of rotation.
            if state.settings.rate_limit.redis.is_some() {
                let redis = if state.shield.rate_limits.limiter.is_degraded() { "degraded" } else { "ok" };
                checks.insert("redis".to_string(), redis.to_string());
            }
            Ok(Json(Ready { status: "ready".into(), checks }))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database did not answer");
            Err(ApiError::NotReady("database: unavailable".into()))
        }
        Err(_) => Err(ApiError::NotReady("database: no answer within 2 s".into())),
    }
}

/// Prometheus metrics (OpenMetrics text format), for clients in `server.metrics_allow`
/// (loopback by default); anyone else gets 404.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Metrics: OpenMetrics when `Accept` names `application/openmetrics-text` (Prometheus does), else the Prometheus text format 0.0.4",
        content((String = "application/openmetrics-text; version=1.0.0; charset=utf-8"), (String = "text/plain; version=0.0.4; charset=utf-8"))),
        (status = 404, description = "The client is not in `server.metrics_allow`", body = Problem, content_type = PROBLEM_JSON)))]
pub async fn metrics(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let allowed = ctx.ip.is_some_and(|ip| state.settings.server.metrics_allow.iter().any(|n| n.contains(&ip)));
    if !allowed {
        return Err(ApiError::NotFound);
    }
    // OpenMetrics to whoever asks for it (Prometheus does, first); the classic text format to
    // everyone else (curl, simple parsers, older scrapers).
    let wants_openmetrics =
        headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let kind = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            kind.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
    let body = state.metrics.render();
    Ok(if wants_openmetrics {
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            rampart_core::metrics::to_prometheus_text(&body),
        )
    })
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    let json = state.openapi_json.get_or_init(|| crate::openapi::render(&crate::router::openapi_doc()).into());
    ([(header::CONTENT_TYPE, "application/json")], json.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_liveness_answer_is_a_health_document() {
        let health: Health = serde_json::from_str(HEALTHY).unwrap();
        assert_eq!(health.status, "ok");
        assert_eq!(serde_json::to_string(&Health { status: "ok".into() }).unwrap(), HEALTHY);
    }
}
