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

/// The document with the rules every operation shares ([`conform`]), pretty-printed with a
/// trailing newline (the form served and committed in the repo).
pub fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let rendered = serde_json::to_value(doc).and_then(|mut json| {
        conform(&mut json);
        serde_json::to_string_pretty(&json)
    });
    let mut s = rendered.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Makes the generated document say what the service does in the places where a
/// per-route annotation would have to repeat one rule a hundred times (`../shared/API.md`,
/// "Conventions"):
///
/// - operationIds named for clients (`listApiKeys`, `verifyApiKey`), one per operation;
/// - the credentials of each group of paths as security requirements (a session cookie always
///   with its CSRF header on unsafe methods);
/// - every error answer typed `application/problem+json` with the `Problem` schema, and the
///   errors every operation of a kind can give (401 where credentials are needed; 400, 408,
///   413 and 415 where a body is read; 400 where a query is read; 404 where a path names a
///   resource; 403 (IP rules), 429 (rate limits) and 503 (storage) everywhere);
/// - the sign-in answers as the `oneOf` they are: tokens, a step-up, or a cookie session.
pub fn conform(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        let methods: Vec<String> = item.keys().cloned().collect();
        let shared =
            methods.iter().filter(|m| HTTP_METHODS.contains(&m.as_str())).count() > 1 && path.starts_with("/authz/");
        for method in methods {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let Some(op) = item.get_mut(&method).and_then(Value::as_object_mut) else { continue };
            let old_id = op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut id = operation_name(&method, path).map_or_else(|| camel(&old_id), str::to_string);
            if shared {
                id.push_str(&pascal(&method));
            }
            op.insert("operationId".into(), json!(id));

            let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options");
            if let Some(security) = security_of(path, unsafe_method) {
                op.insert("security".into(), security);
            }
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let has_body = op.contains_key("requestBody");
            let params = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            let has_query = params.iter().any(|p| p["in"] == "query");
            let has_path = params.iter().any(|p| p["in"] == "path") && !path.starts_with("/authz/");

            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            for (status, response) in responses.iter_mut() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                    if path.starts_with("/v1/auth/oauth/") {
                        // A browser (not asking for JSON) is shown the sign-in page with the message.
                        content.insert("text/html".into(), json!({ "schema": { "type": "string" } }));
                    }
                    if path.starts_with("/v1/transit/") {
                        // Vault's `{errors}` as Vault clients expect, beside the layers' problems.
                        content.insert(PROBLEM.into(), problem_content()[PROBLEM].clone());
                    } else if let Some(json) = content.remove("application/json") {
                        content.insert(PROBLEM.into(), json);
                    }
                } else {
                    response.as_object_mut().map(|r| r.insert("content".into(), error_content(path)));
                }
            }
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| json!({ "description": description, "content": error_content(path) }));
            };
            if has_body {
                add("400", "`invalid_json`, `invalid_request` or `validation_failed` (with `errors`)");
                add("408", "`body_timeout`: the body did not arrive in time");
                add("413", "`payload_too_large`");
                add("415", "`unsupported_media_type`");
            }
            if has_query {
                add("400", "`invalid_request` or `validation_failed`: a query parameter");
            }
            if path.starts_with("/v1/transit/") {
                add("400", "Vault's `{errors, code}`: an invalid key name or request");
            }
            if path.starts_with("/authz/") {
                add("400", "`gateway_request_incomplete`: the proxy did not say which request it forwards");
            }
            if has_path {
                add("404", "`not_found`");
            }
            if secured {
                add("401", "`unauthenticated`, `invalid_token` or `token_expired`: no valid credential");
            }
            add("403", "`forbidden`, `ip_blocked`, `csrf_failed`, or another refusal named by `code`");
            add("429", "`rate_limited` or `too_many_attempts`, with `Retry-After`");
            add("503", "`unavailable` or `request_timeout`: try again later");
        }
    }
    // A DELETE body is deprecated (`crate::deprecation::WEBAUTHN_DELETE_BODY`): JSON Schema's
    // `deprecated` beside the `$ref` (OpenAPI 3.1 allows it).
    if let Some(schema) = doc.pointer_mut(&format!(
        "/paths/{}/delete/requestBody/content/application~1json/schema",
        pointer_escape("/v1/me/mfa/webauthn/{id}")
    )) {
        schema["deprecated"] = json!(true);
    }
    // The sign-in answers.
    for path in SIGN_IN_ANSWERS {
        if let Some(ok) = doc.pointer_mut(&format!("/paths/{}/post/responses/200", pointer_escape(path))) {
            ok["description"] =
                json!("Signed in (tokens, or the cookie session when `?session=cookie`), or a step-up to answer");
            ok["content"] = json!({ "application/json": { "schema": { "oneOf": [
                { "$ref": "#/components/schemas/TokenResponse" },
                { "$ref": "#/components/schemas/MfaRequired" },
                { "$ref": "#/components/schemas/CookieSession" },
            ] } } });
        }
    }
    // The provider callback: JSON for a client that asks for it, a page (the step-up) for a
    // browser.
    for method in ["get", "post"] {
        let pointer = format!("/paths/{}/{method}/responses/200", pointer_escape("/v1/auth/oauth/{provider}/callback"));
        if let Some(ok) = doc.pointer_mut(&pointer) {
            ok["content"] = json!({
                "application/json": { "schema": { "oneOf": [
                    { "$ref": "#/components/schemas/TokenResponse" },
                    { "$ref": "#/components/schemas/MfaRequired" },
                    { "$ref": "#/components/schemas/LinkedIdentityView" },
                ] } },
                "text/html": { "schema": { "type": "string" } },
            });
        }
    }
    if let Some(schemes) = doc.pointer_mut("/components/securitySchemes").and_then(Value::as_object_mut) {
        schemes.insert(
            "csrf".into(),
            json!({ "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                    "description": "The session's CSRF token: with the session cookie on every unsafe method" }),
        );
        schemes.insert(
            "vault_token".into(),
            json!({ "type": "apiKey", "in": "header", "name": "X-Vault-Token",
                    "description": "A Rampart API key, as Vault clients send their token" }),
        );
    }
}

const PROBLEM: &str = "application/problem+json";
const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The operations whose 200 is one of three sign-in answers.
const SIGN_IN_ANSWERS: [&str; 4] =
    ["/v1/auth/login", "/v1/auth/login/mfa", "/v1/auth/login/webauthn/finish", "/v1/auth/passkey/finish"];

fn problem_content() -> serde_json::Value {
    serde_json::json!({ PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } })
}

/// The error bodies of a path: problem documents, and on the transit API also Vault's own
/// `{"errors": [...]}` (what Vault clients parse), for the refusals of the transit handlers.
fn error_content(path: &str) -> serde_json::Value {
    let mut content = problem_content();
    if path.starts_with("/v1/auth/oauth/") {
        content["text/html"] = serde_json::json!({ "schema": { "type": "string" } });
    }
    if path.starts_with("/v1/transit/") {
        content["application/json"] = serde_json::json!({ "schema": {
            "type": "object", "required": ["errors"],
            "properties": { "errors": { "type": "array", "items": { "type": "string" } } },
        } });
    }
    content
}

fn pointer_escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// API.md's "which credential each group takes".
fn security_of(path: &str, unsafe_method: bool) -> Option<serde_json::Value> {
    use serde_json::json;
    let cookie = if unsafe_method { json!({ "cookie": [], "csrf": [] }) } else { json!({ "cookie": [] }) };
    if path == "/v1/me" || path.starts_with("/v1/me/") || path == "/v1/auth/logout" {
        Some(json!([{ "bearer": [] }, cookie]))
    } else if path.starts_with("/v1/admin/")
        || matches!(path, "/v1/authz/check" | "/v1/keys/verify" | "/v1/auth/introspect")
    {
        Some(json!([{ "bearer": [] }, { "api_key": [] }, cookie]))
    } else if path.starts_with("/v1/transit/") {
        Some(json!([{ "api_key": [] }, { "vault_token": [] }]))
    } else {
        None
    }
}

/// Names a client library would give the operations whose handler's name says too little.
fn operation_name(method: &str, path: &str) -> Option<&'static str> {
    Some(match (method, path) {
        ("get", "/.well-known/jwks.json") => "getJwks",
        ("get", "/authz/auth-request") => "authRequest",
        ("get", "/authz/forward-auth") => "forwardAuth",
        ("get", "/authz/ext-authz/{path}") => "extAuthz",
        ("get", "/healthz") => "getHealth",
        ("get", "/readyz") => "getReadiness",
        ("get", "/metrics") => "getMetrics",
        ("get", "/openapi.json") => "getOpenApiDocument",
        ("get", "/v1/admin/audit/stats") => "getAuditStats",
        ("post", "/v1/admin/gateway/explain") => "explainGatewayDecision",
        ("get", "/v1/admin/gateway/rules") => "listGatewayRules",
        ("get", "/v1/admin/ip-rules") => "listIpRules",
        ("post", "/v1/admin/ip-rules") => "createIpRule",
        ("delete", "/v1/admin/ip-rules/{id}") => "deleteIpRule",
        ("get", "/v1/admin/roles") => "listRoles",
        ("post", "/v1/admin/roles") => "createRole",
        ("put", "/v1/admin/roles/{name}") => "putRole",
        ("delete", "/v1/admin/roles/{name}") => "deleteRole",
        ("get", "/v1/admin/users") => "listUsers",
        ("get", "/v1/admin/users/{id}") => "getUser",
        ("delete", "/v1/admin/users/{id}") => "deleteUser",
        ("patch", "/v1/admin/users/{id}") => "updateUser",
        ("delete", "/v1/admin/users/{id}/sessions") => "revokeUserSessions",
        ("post", "/v1/admin/users/{id}/unlock") => "unlockUser",
        ("get", "/v1/auth/csrf") => "getCsrfToken",
        ("post", "/v1/auth/introspect") => "introspectToken",
        ("post", "/v1/auth/login") => "login",
        ("post", "/v1/auth/login/mfa") => "loginMfa",
        ("post", "/v1/auth/login/mfa/email") => "sendLoginEmailCode",
        ("post", "/v1/auth/login/webauthn/start") => "startWebauthnLogin",
        ("post", "/v1/auth/login/webauthn/finish") => "finishWebauthnLogin",
        ("post", "/v1/auth/logout") => "logout",
        ("post", "/v1/auth/passkey/start") => "startPasskeyLogin",
        ("post", "/v1/auth/passkey/finish") => "finishPasskeyLogin",
        ("post", "/v1/auth/password/forgot") => "forgotPassword",
        ("post", "/v1/auth/password/reset") => "resetPassword",
        ("post", "/v1/auth/refresh") => "refreshTokens",
        ("post", "/v1/auth/register") => "register",
        ("post", "/v1/auth/telegram") => "loginWithTelegram",
        ("get", "/v1/auth/oauth/{provider}/start") => "startOAuthSignIn",
        ("get", "/v1/auth/oauth/{provider}/callback") => "finishOAuthSignIn",
        ("post", "/v1/auth/oauth/{provider}/callback") => "finishOAuthSignInFormPost",
        ("post", "/v1/auth/verify-email") => "verifyEmail",
        ("post", "/v1/authz/check") => "checkPermission",
        ("post", "/v1/csp-report") => "reportCspViolation",
        ("get", "/v1/me") => "getMe",
        ("post", "/v1/me/api-keys") => "createApiKey",
        ("delete", "/v1/me/api-keys") => "revokeAllApiKeys",
        ("delete", "/v1/me/api-keys/{id}") => "revokeApiKey",
        ("post", "/v1/me/api-keys/{id}/rotate") => "rotateApiKey",
        ("get", "/v1/me/api-keys/{id}/usage") => "getApiKeyUsage",
        ("get", "/v1/me/identities") => "listIdentities",
        ("post", "/v1/me/identities/telegram") => "linkTelegram",
        ("delete", "/v1/me/identities/{id}") => "unlinkIdentity",
        ("post", "/v1/me/mfa/backup-codes") => "regenerateBackupCodes",
        ("post", "/v1/me/mfa/totp/disable") => "disableTotp",
        ("post", "/v1/me/mfa/totp/enable") => "enableTotp",
        ("post", "/v1/me/mfa/totp/setup") => "setupTotp",
        ("post", "/v1/me/mfa/webauthn/register/start") => "startPasskeyRegistration",
        ("post", "/v1/me/mfa/webauthn/register/finish") => "finishPasskeyRegistration",
        ("get", "/v1/me/notifications") => "getNotificationPreferences",
        ("put", "/v1/me/notifications") => "setNotificationPreferences",
        ("post", "/v1/me/password") => "changePassword",
        ("get", "/v1/me/sessions") => "listSessions",
        ("delete", "/v1/me/sessions") => "revokeAllSessions",
        ("delete", "/v1/me/sessions/{id}") => "revokeSession",
        _ => return None,
    })
}

/// `snake_case` → `lowerCamelCase` (already camel names pass through).
fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn pascal(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_camel_case() {
        assert_eq!(camel("list_ip_rules"), "listIpRules");
        assert_eq!(camel("listApiKeys"), "listApiKeys");
        assert_eq!(pascal("get"), "Get");
    }
}
