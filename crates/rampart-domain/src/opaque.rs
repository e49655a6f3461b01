//! Opaque secrets handed to clients (refresh tokens, session cookies, e-mailed links) and the
//! hashes that are stored in their place.
//!
//! Each token is a type prefix plus 256 bits from a CSPRNG in unpadded base64url. That much
//! entropy makes a slow hash pointless, so storage keeps SHA-256 of the token and looks it up
//! by that hash: a leaked table holds nothing that can be presented.

use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// Bytes of randomness in every opaque token.
pub const TOKEN_BYTES: usize = 32;

/// What an opaque token is for; its prefix says so to a human or a secret scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Refresh,
    SessionCookie,
    VerifyEmail,
    ResetPassword,
    /// The `mfa_token` of a step-up login.
    MfaLogin,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Refresh => "rt_",
            TokenKind::SessionCookie => "rs_",
            TokenKind::VerifyEmail => "ev_",
            TokenKind::ResetPassword => "pr_",
            TokenKind::MfaLogin => "mt_",
        }
    }
}

/// The stored form of a token: SHA-256 of its full text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to tell hashes apart in a debug print.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

impl TokenHash {
    /// The hash of whatever a client presented (well-formed or not).
    pub fn of(presented: &str) -> TokenHash {
        TokenHash(Sha256::digest(presented.as_bytes()).into())
    }
}

/// A freshly issued token: shown to the client once, then only its hash is kept.
#[derive(Debug, Clone)]
pub struct OpaqueToken(Secret<String>);

impl OpaqueToken {
    pub fn generate(kind: TokenKind, rng: &mut (impl RngCore + CryptoRng)) -> OpaqueToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill_bytes(&mut bytes);
        let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
        OpaqueToken(Secret::new(token))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

/// Whether `presented` has the shape of a token of `kind`, checked before any lookup so junk
/// costs nothing.
pub fn looks_like(kind: TokenKind, presented: &str) -> bool {
    presented.strip_prefix(kind.prefix()).is_some_and(|rest| {
        rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn tokens_carry_256_bits_and_their_kind() {
        let a = OpaqueToken::generate(TokenKind::Refresh, &mut OsRng);
        let b = OpaqueToken::generate(TokenKind::Refresh, &mut OsRng);
        assert!(a.expose().starts_with("rt_"));
        assert_eq!(a.expose().len(), 3 + 43, "32 bytes in unpadded base64url");
        assert_ne!(a.expose(), b.expose());
        assert!(looks_like(TokenKind::Refresh, a.expose()));
        assert!(!looks_like(TokenKind::ResetPassword, a.expose()));
        assert!(!looks_like(TokenKind::Refresh, "rt_short"));
        assert!(!format!("{a:?}").contains(&a.expose()[3..]), "debug output redacts the token");
    }

    #[test]
    fn hash_is_sha256_of_the_full_text() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex::encode(TokenHash::of("abc").0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = OpaqueToken::generate(TokenKind::VerifyEmail, &mut OsRng);
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
    }
}
