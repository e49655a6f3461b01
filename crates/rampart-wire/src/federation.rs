//! Federation: the Telegram Login Widget's payload, and the external identities linked to an
//! account.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/auth/telegram` and `POST /v1/me/identities/telegram`: the fields the Telegram
/// Login Widget hands the page (its `onauth` callback's object, or its redirect's query), as
/// they came. Every field sent is part of the signature, so a field Rampart does not know is
/// refused rather than dropped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramLoginRequest {
    /// The Telegram user id.
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    /// Unix time of the authorization.
    pub auth_date: i64,
    /// Hex HMAC-SHA-256 of the other fields (missing: `invalid_telegram_login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// An external identity linked to the account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkedIdentityView {
    pub id: String,
    /// `telegram`.
    pub provider: String,
    /// The provider's stable id of the user (Telegram: the numeric user id).
    pub subject: String,
    pub username: Option<String>,
    pub created_at: String,
    /// The last sign-in through it.
    pub last_used_at: Option<String>,
}

/// `GET /v1/me/identities`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkedIdentityList {
    pub items: Vec<LinkedIdentityView>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}
