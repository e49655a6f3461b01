//! Passwords: the policy a new password must meet, and argon2id hashing.
//!
//! Hashing is CPU-bound and deliberately slow; callers on an async runtime run
//! [`PasswordHasher::hash`] and [`PasswordHasher::verify`] on a blocking pool, never inline.

use crate::secret::Secret;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// NIST SP 800-63B asks that at least 64 characters be allowed; longer is fine, but an
/// unbounded input is a denial-of-service lever, so the cap is generous and never truncates.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// argon2id cost parameters. Defaults are OWASP's minimum recommendation
/// (m = 19 MiB, t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

impl Argon2Params {
    /// OWASP's floor; configuration may raise but not lower it.
    pub const OWASP_MIN: Argon2Params = Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    pub fn is_at_least_owasp(&self) -> bool {
        self.memory_kib >= Self::OWASP_MIN.memory_kib
            && self.iterations >= Self::OWASP_MIN.iterations
            && self.parallelism >= Self::OWASP_MIN.parallelism
    }
}

/// Optional composition rules (NIST SP 800-63B advises against them; off by default, for teams
/// whose compliance rules demand them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositionRules {
    pub lowercase: bool,
    pub uppercase: bool,
    pub digit: bool,
    pub symbol: bool,
}

/// What a new password must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8 }
    }
}

/// A rule a candidate password broke, with its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordViolation {
    #[error("password is shorter than {0} characters")]
    TooShort(usize),
    #[error("password is longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl PasswordViolation {
    pub fn code(&self) -> &'static str {
        match self {
            PasswordViolation::TooShort(_) => "password_too_short",
            PasswordViolation::TooLong => "password_too_long",
        }
    }
}

/// A password that met the policy. Never printed, zeroed on drop.
#[derive(Debug, Clone)]
pub struct Password(Secret<String>);

impl Password {
    /// Checks a candidate against the policy; returns every broken rule, not just the first.
    /// Length counts Unicode scalar values, as NIST SP 800-63B asks; nothing is truncated.
    pub fn parse(candidate: String, policy: &PasswordPolicy) -> Result<Self, Vec<PasswordViolation>> {
        let candidate = Secret::new(candidate);
        let chars = candidate.expose().chars().count();
        let mut violations = Vec::new();
        if chars < policy.min_length {
            violations.push(PasswordViolation::TooShort(policy.min_length));
        }
        if chars > MAX_PASSWORD_CHARS {
            violations.push(PasswordViolation::TooLong);
        }
        if violations.is_empty() { Ok(Password(candidate)) } else { Err(violations) }
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// argon2id hashing and verification at the configured cost.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
}

impl PasswordHasher {
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let p = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Self { params, argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, p) })
    }

    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh 128-bit salt.
    pub fn hash(&self, password: &Password, rng: &mut (impl RngCore + CryptoRng)) -> Result<String, HashError> {
        let salt = SaltString::generate(rng);
        self.argon2
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Hash(e.to_string()))
    }

    /// Constant-time verification against a stored PHC string, with the parameters the
    /// string records. A malformed stored hash verifies as `false`.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self.argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Whether a stored hash was made with other parameters (or another algorithm) than the
    /// configured ones, and should be recomputed at the next successful login.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return true };
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.memory_kib
                    || p.t_cost() != self.params.iterations
                    || p.p_cost() != self.params.parallelism
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn policy_counts_characters_and_reports_every_rule() {
        let policy = PasswordPolicy { min_length: 8 };
        assert_eq!(Password::parse("short".into(), &policy).unwrap_err(), vec![PasswordViolation::TooShort(8)]);
        // 8 multi-byte characters are 8 characters, not 24 bytes.
        assert!(Password::parse("日本語日本語日本".into(), &policy).is_ok());
        assert!(Password::parse("日本語日本".into(), &policy).is_err());
        assert!(Password::parse("x".repeat(MAX_PASSWORD_CHARS), &policy).is_ok());
        let err = Password::parse("x".repeat(MAX_PASSWORD_CHARS + 1), &policy).unwrap_err();
        assert_eq!(err, vec![PasswordViolation::TooLong]);
        assert_eq!(err[0].code(), "password_too_long");
    }

    #[test]
    fn long_passwords_are_not_truncated() {
        let h = cheap();
        let policy = PasswordPolicy::default();
        let a = "a".repeat(100);
        let mut b = a.clone();
        b.push('b');
        let hash = h.hash(&Password::parse(a.clone(), &policy).unwrap(), &mut OsRng).unwrap();
        assert!(h.verify(&a, &hash));
        assert!(!h.verify(&b, &hash), "a longer password sharing a prefix must not verify");
    }

    #[test]
    fn hash_verify_and_salt() {
        let h = cheap();
        let pw = Password::parse("correct horse battery".into(), &PasswordPolicy::default()).unwrap();
        let h1 = h.hash(&pw, &mut OsRng).unwrap();
        let h2 = h.hash(&pw, &mut OsRng).unwrap();
        assert!(h1.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(h1, h2, "each hash has its own salt");
        assert!(h.verify("correct horse battery", &h1));
        assert!(!h.verify("correct horse batterY", &h1));
        assert!(!h.verify("anything", "not-a-phc-string"));
    }

    #[test]
    fn default_params_are_owasp_and_rehash_detects_changes() {
        assert!(Argon2Params::default().is_at_least_owasp());
        assert!(!Argon2Params { memory_kib: 4096, iterations: 2, parallelism: 1 }.is_at_least_owasp());
        let h = cheap();
        let pw = Password::parse("correct horse battery".into(), &PasswordPolicy::default()).unwrap();
        let phc = h.hash(&pw, &mut OsRng).unwrap();
        assert!(!h.needs_rehash(&phc));
        let stronger = PasswordHasher::new(Argon2Params { memory_kib: 2048, iterations: 1, parallelism: 1 }).unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(stronger.verify("correct horse battery", &phc), "old hashes still verify with their own params");
        let argon2i = "$argon2i$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        assert!(h.needs_rehash(argon2i));
    }
}
