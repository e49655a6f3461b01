//! The OpenAPI 3.1 document, generated from the routes' `#[utoipa::path]` annotations.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart",
        description = "One self-hosted service for the whole web-backend security roadmap. \
                       Errors are RFC 9457 problem documents with a stable `code`; every response \
                       carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "service", description = "Health, readiness, metrics and this document"),
        (name = "tokens", description = "Access tokens and the keys that sign them"),
        (name = "accounts", description = "Registration, login, sessions, password reset"),
        (name = "me", description = "The caller's own account and sessions"),
        (name = "mfa", description = "Second factors: TOTP, backup codes"),
        (name = "api-keys", description = "API keys: the caller's own, and verification for backends"),
        (name = "admin", description = "Administration (permission-guarded)"),
        (name = "audit", description = "The audit log: query, statistics, export, verification"),
        (name = "alerts", description = "Threshold alert rules over the audit log"),
        (name = "transit", description = "Encryption as a service, Vault-compatible (X-Vault-Token: a Rampart API key)"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(rampart_wire::Problem, rampart_wire::FieldError, rampart_wire::MfaRequired)),
)]
pub(crate) struct ApiDoc;

/// The two ways a user request authenticates: a bearer access token, or the browser session
/// cookie (whose unsafe requests also need `X-CSRF-Token`).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

/// The document, pretty-printed with a trailing newline (the form committed in the repo).
pub fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let mut s = doc.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
