//! Second factors: which a user has, TOTP set-up, backup codes, and the second step of a login
//! (`/v1/auth/login/mfa`).

use crate::Sensitive;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which second factors a user has set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MfaStatus {
    pub totp: bool,
    pub webauthn: bool,
    pub backup_codes_left: u32,
}

/// Re-authentication before a second factor changes (ASVS 7.5.1): `POST /v1/me/mfa/totp/setup`,
/// `/totp/disable`, `/backup-codes`, `/webauthn/register/start` and
/// `DELETE /v1/me/mfa/webauthn/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorReauth {
    /// The account's password: always needed.
    pub password: Sensitive,
    /// A current second factor: a code of the authenticator app, or an unused backup code (then
    /// spent). Needed once the account has a second factor, unless this session was opened with
    /// two factors within the re-authentication window (`security.reauth_window_secs`, default
    /// 300 s); without it such a request answers 403 `second_factor_required`.
    #[serde(default)]
    pub code: Option<Sensitive>,
}

/// A new TOTP secret, waiting for its first code at `/v1/me/mfa/totp/enable`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 (RFC 4648, unpadded), for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…` with issuer and account.
    pub otpauth_uri: String,
    /// The URI as a QR code, PNG, base64.
    pub qr_png_base64: String,
    /// The same QR code as an SVG document.
    pub qr_svg: String,
}

/// `POST /v1/me/mfa/totp/enable`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: Sensitive,
}

/// Backup codes, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupCodes {
    pub backup_codes: Vec<String>,
}

/// The answer of a right password for an account with a second factor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// Single use, for this login only, valid for 5 minutes: redeem it at `/v1/auth/login/mfa`.
    pub mfa_token: String,
    /// What the account can answer with: `totp`, `backup_code`, `email`.
    pub methods: Vec<String>,
}

/// `POST /v1/auth/login/mfa`: the `mfa_token` with exactly one of `code` (TOTP, or the e-mailed
/// code with `method: "email"`) and `backup_code`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    pub mfa_token: Sensitive,
    #[serde(default)]
    pub code: Option<Sensitive>,
    #[serde(default)]
    pub backup_code: Option<Sensitive>,
    /// `totp` (the default for `code`) or `email`.
    #[serde(default)]
    pub method: Option<String>,
}

/// `POST /v1/auth/login/mfa/email`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaTokenRequest {
    pub mfa_token: Sensitive,
}
