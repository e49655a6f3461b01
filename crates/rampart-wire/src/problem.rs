//! Errors: the RFC 9457 problem document every failure answers with, and its per-field errors.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 9457 problem document (`application/problem+json`), with Rampart's stable `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:rampart:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A human-readable explanation of this occurrence. Never contains internal details.
    pub detail: String,
    /// A stable, snake_case machine code (`not_found`, `validation_failed`, …).
    pub code: String,
    /// The request's id, as in the `X-Request-Id` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field errors, for `validation_failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `password_expired`: a single-use token (15 minutes) that sets a new password at
    /// `POST /v1/auth/password/reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_token: Option<String>,
}

/// One rule a field of the request broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}
