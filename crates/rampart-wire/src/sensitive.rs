//! `Sensitive`: a string from the client (password, token, key) that `Debug` never prints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A string the client sends that must never be printed (passwords, tokens): `Debug` shows
/// `[redacted]`. On the wire it is a plain JSON string.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
