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
    ),
    components(schemas(rampart_wire::Problem, rampart_wire::FieldError)),
)]
pub(crate) struct ApiDoc;

/// The document, pretty-printed with a trailing newline (the form committed in the repo).
pub fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let mut s = doc.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
