//! The `[tokens]` section: what access tokens say, how long they live, how they are signed.

use crate::settings::{checked, days, secs, span};
use rampart_domain::tokens::{Expectation, SigningAlg};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TokenAlgorithm {
    /// Ed25519 (RFC 8037): small, fast, deterministic signatures.
    #[default]
    EdDSA,
    /// ECDSA on P-256 with SHA-256, for verifiers without Ed25519 support.
    ES256,
}

impl TokenAlgorithm {
    /// The signing algorithm it names.
    pub fn signing_alg(self) -> SigningAlg {
        match self {
            TokenAlgorithm::EdDSA => SigningAlg::EdDSA,
            TokenAlgorithm::ES256 => SigningAlg::ES256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// The `iss` of access tokens (usually Rampart's public URL).
    pub issuer: String,
    /// The `aud` of access tokens (the API they are for).
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    pub algorithm: TokenAlgorithm,
    /// Rotate the signing key when it is this many days old (checked every 30 s). 0: only by hand
    /// (`rampart keys rotate-signing`).
    pub rotate_after_days: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: "rampart".into(),
            audience: "rampart".into(),
            access_ttl_secs: 600,
            leeway_secs: 30,
            algorithm: TokenAlgorithm::EdDSA,
            rotate_after_days: 90,
        }
    }
}

/// `[tokens]`, ready to use.
#[derive(Debug, Clone)]
pub struct TokensSettings {
    pub issuer: String,
    pub audience: String,
    /// Access-token lifetime (1 minute to 1 day).
    pub access_ttl: time::Duration,
    /// Clock skew tolerated for `exp` and `nbf` (at most 5 minutes).
    pub leeway: time::Duration,
    pub algorithm: SigningAlg,
    /// Rotate the signing key at this age; `None`: only by hand.
    pub rotate_after: Option<time::Duration>,
    /// How long a retired signing key stays in the ring: `access_ttl + leeway`, so every token it
    /// signed still verifies.
    pub key_window: time::Duration,
    /// What every token must say (issuer, audience, leeway), for verification.
    pub expectation: Expectation,
}

impl TokensConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(60..=86_400).contains(&self.access_ttl_secs) {
            p.push(format!("tokens.access_ttl_secs: must be between 60 and 86400; got {}", self.access_ttl_secs));
        }
        if self.leeway_secs > 300 {
            p.push(format!("tokens.leeway_secs: must be at most 300; got {}", self.leeway_secs));
        }
        for (key, value) in [("tokens.issuer", &self.issuer), ("tokens.audience", &self.audience)] {
            if value.trim().is_empty() {
                p.push(format!("{key}: must not be empty"));
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<TokensSettings, Vec<String>> {
        checked(self.problems(), || {
            let access_ttl = span(secs(self.access_ttl_secs));
            let leeway = span(secs(self.leeway_secs));
            TokensSettings {
                issuer: self.issuer.clone(),
                audience: self.audience.clone(),
                access_ttl,
                leeway,
                algorithm: self.algorithm.signing_alg(),
                rotate_after: (self.rotate_after_days > 0).then(|| span(days(self.rotate_after_days))),
                key_window: access_ttl + leeway,
                expectation: Expectation {
                    issuer: self.issuer.clone(),
                    audience: self.audience.clone(),
                    leeway_secs: leeway.whole_seconds(),
                },
            }
        })
    }
}
