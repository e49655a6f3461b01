//! The gateway's rules in effect (the default policy, every rule in order, the rules another
//! one shadows) and "explain this request": which rule a request falls under, why the earlier
//! ones did not match, and what the gateway would decide with the credentials given. Needs
//! `gateway:read`, as `/v1/admin/gateway/*` does; explaining counts no limit and records nothing.

use super::{Admin, error_page};
use crate::AppState;
use crate::auth::GatewayRead;
use crate::routes::gateway::{browser_page_load, credentials};
use crate::ui::{Chrome, html, refusal};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use rampart_core::services::gateway::{self, Ask};
use rampart_core::{FieldProblem, RequestContext, ServiceError};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExplainQuery {
    method: String,
    url: String,
    /// An `Authorization` header value (a bearer token or an API key), optional.
    authorization: String,
    /// Ask as a browser loading a page (`Accept: text/html`).
    page: String,
}

#[derive(Debug)]
pub struct RuleRow {
    id: String,
    hosts: String,
    paths: String,
    methods: String,
    policy: String,
}

#[derive(Debug)]
pub struct Answer {
    rule: String,
    policy: String,
    decision: String,
    reasons: Vec<String>,
}

#[derive(Template, Debug)]
#[template(path = "admin/gateway.html")]
pub struct GatewayPage<'a> {
    c: Chrome<'a>,
    default_policy: String,
    rules: Vec<RuleRow>,
    shadowed: Vec<(String, String)>,
    q: ExplainQuery,
    answer: Option<Answer>,
}

fn invalid(field: &str, code: &str, message: &str) -> ServiceError {
    ServiceError::Validation(vec![FieldProblem::new(field, code, message)])
}

async fn explain(state: &AppState, ctx: &RequestContext, q: &ExplainQuery) -> Result<Answer, ServiceError> {
    let method = q.method.trim().to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("method", "invalid_method", "an HTTP method such as GET"));
    }
    let url = url::Url::parse(q.url.trim()).map_err(|_| invalid("url", "invalid_url", "an absolute http(s) URL"))?;
    let Some(host) = url.host_str() else { return Err(invalid("url", "invalid_url", "an absolute http(s) URL")) };
    let uri = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(q.authorization.trim())
        && !q.authorization.trim().is_empty()
    {
        headers.insert(header::AUTHORIZATION, v);
    }
    if q.page == "yes" {
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
    }
    let ask = Ask {
        method: &method,
        host,
        uri: &uri,
        browser_page_load: browser_page_load(&headers),
        preflight: false,
        credentials: credentials(&headers, state.settings.sessions.cookie_name()),
    };
    let ex = gateway::explain(state, ctx, &ask).await?;
    Ok(Answer { rule: ex.rule, policy: ex.policy.to_string(), decision: ex.decision.to_string(), reasons: ex.reasons })
}

pub async fn page(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: Admin<GatewayRead>,
    Query(q): Query<ExplainQuery>,
) -> Response {
    let set = state.gateway.rules();
    let mut c = admin.chrome(&state, "admin.gateway_title", "gateway");
    let answer = if q.url.trim().is_empty() {
        None
    } else {
        match explain(&state, &ctx, &q).await {
            Ok(a) => Some(a),
            Err(e @ ServiceError::Validation(_)) => {
                c.notice = Some(refusal(&state.ui, &e));
                None
            }
            Err(e) => return error_page(&state, &admin.auth, &e),
        }
    };
    let page = GatewayPage {
        c,
        default_policy: set.default_policy().as_str().to_string(),
        rules: set
            .rules()
            .iter()
            .map(|r| RuleRow {
                id: r.id().to_string(),
                hosts: r.hosts().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(" "),
                paths: r.paths().iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>().join(" "),
                methods: r.methods().join(" "),
                policy: r.policy.as_str().to_string(),
            })
            .collect(),
        shadowed: set.shadowed().iter().map(|s| (s.rule.clone(), s.by.clone())).collect(),
        q,
        answer,
    };
    html(StatusCode::OK, &page)
}
