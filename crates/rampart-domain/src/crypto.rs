//! The master key and sealing of secrets at rest (AES-256-GCM under HKDF-derived keys).
//!
//! Nothing uses the master key directly: each purpose ("seal", "audit-checkpoint", …) gets its
//! own key through HKDF-SHA256, so a key for one purpose reveals nothing about another.
//! A sealed value records the id of the key that sealed it (`v1.<key_id>.<base64>`), so the
//! master key can be rotated later while old values stay readable.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const SEAL_VERSION: &str = "v1";

/// The 256-bit master key. `Debug` never shows it; it is zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "master key must be 32 bytes, encoded as base64 (44 characters) or hex (64 characters); got {0} bytes after decoding"
    )]
    WrongLength(usize),
    #[error("master key is neither valid base64 nor hex")]
    Encoding,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value was made with key {0}, which is not the current master key")]
    UnknownKey(String),
    #[error("sealed value failed authentication (tampered, or wrong associated data)")]
    Tampered,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={}, [redacted])", self.key_id())
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; KEY_LEN];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    /// Accepts 64 hex characters or base64 (standard or URL-safe, padded or not) of 32 bytes.
    /// Surrounding whitespace (a trailing newline in a key file) is ignored.
    pub fn parse(encoded: &str) -> Result<Self, KeyError> {
        let s = encoded.trim();
        let mut bytes = if s.len() == 2 * KEY_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| KeyError::Encoding)?
        } else {
            [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(s).ok())
                .ok_or(KeyError::Encoding)?
        };
        let result =
            <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map(Self).map_err(|_| KeyError::WrongLength(bytes.len()));
        bytes.zeroize();
        result
    }

    /// Standard padded base64, the form written to a generated key file.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A 256-bit key for one purpose, derived with HKDF-SHA256.
    #[allow(clippy::unreachable)] // HKDF-SHA256 refuses only outputs over 255 × 32 bytes; this one is 32.
    pub fn derive(&self, purpose: &str) -> [u8; KEY_LEN] {
        let hk = Hkdf::<Sha256>::new(Some(b"rampart/v1"), &self.0);
        let mut out = [0u8; KEY_LEN];
        if hk.expand(purpose.as_bytes(), &mut out).is_err() {
            unreachable!("HKDF output length is constant and valid");
        }
        out
    }

    /// A short public identifier of this key (16 hex characters), safe to store and log.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.derive("key-id"));
        hex::encode(&digest[..8])
    }

    /// Encrypts `plaintext` bound to `aad` (say, the user id and the field name), so a
    /// sealed value copied to another row or field does not open.
    // AES-GCM refuses only a plaintext or `aad` over 64 GiB; what Rampart seals (TOTP secrets, signing
    // keys, associated data naming a row) is a few dozen bytes.
    #[allow(clippy::unreachable)]
    pub fn seal(&self, plaintext: &[u8], aad: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> String {
        let mut key = self.derive("seal");
        let cipher = Aes256Gcm::new((&key).into());
        key.zeroize();
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let Ok(ct) = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad }) else {
            unreachable!("AES-GCM encryption only fails for inputs over 64 GiB");
        };
        let mut body = Vec::with_capacity(NONCE_LEN + ct.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ct);
        format!("{SEAL_VERSION}.{}.{}", self.key_id(), URL_SAFE_NO_PAD.encode(body))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(SEAL_VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        if !bool::from(kid.as_bytes().ct_eq(self.key_id().as_bytes())) {
            return Err(SealError::UnknownKey(kid.to_string()));
        }
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Malformed)?;
        if body.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let mut key = self.derive("seal");
        let cipher = Aes256Gcm::new((&key).into());
        key.zeroize();
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| SealError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn parses_hex_and_every_base64_flavour() {
        let k = key(0xfb);
        let hex = hex::encode([0xfb; KEY_LEN]);
        assert_eq!(MasterKey::parse(&hex).unwrap().key_id(), k.key_id());
        for enc in [STANDARD.encode([0xfb; 32]), URL_SAFE_NO_PAD.encode([0xfb; 32]), format!("{}\n", k.encode())] {
            assert_eq!(MasterKey::parse(&enc).unwrap().key_id(), k.key_id(), "{enc}");
        }
        assert_eq!(MasterKey::parse(&STANDARD.encode([1u8; 16])).unwrap_err(), KeyError::WrongLength(16));
        assert_eq!(MasterKey::parse("!!not a key!!").unwrap_err(), KeyError::Encoding);
    }

    #[test]
    fn debug_does_not_show_key_material() {
        let k = key(0xab);
        let d = format!("{k:?}");
        assert!(d.contains("[redacted]"));
        assert!(!d.contains(&k.encode()));
        assert!(!d.to_lowercase().contains("abababab"));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        assert_ne!(key(1).derive("seal"), key(1).derive("audit"));
        assert_ne!(key(1).derive("seal"), key(2).derive("seal"));
        assert_eq!(key(1).derive("seal"), key(1).derive("seal"));
        assert_eq!(key(1).key_id().len(), 16);
    }

    #[test]
    fn seal_round_trips_and_uses_fresh_nonces() {
        let k = key(7);
        let a = k.seal(b"totp secret", b"user:1:totp", &mut OsRng);
        let b = k.seal(b"totp secret", b"user:1:totp", &mut OsRng);
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("v1.{}.", k.key_id())));
        assert_eq!(k.open(&a, b"user:1:totp").unwrap(), b"totp secret");
    }

    #[test]
    fn open_refuses_tampering_wrong_aad_and_wrong_key() {
        let k = key(7);
        let sealed = k.seal(b"totp secret", b"user:1:totp", &mut OsRng);
        assert_eq!(k.open(&sealed, b"user:2:totp"), Err(SealError::Tampered));
        let mut chars: Vec<char> = sealed.chars().collect();
        let last = chars.len() - 5;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(k.open(&tampered, b"user:1:totp"), Err(SealError::Tampered));
        assert!(matches!(key(8).open(&sealed, b"user:1:totp"), Err(SealError::UnknownKey(_))));
        assert_eq!(k.open("v2.x.y", b""), Err(SealError::Malformed));
        assert_eq!(k.open(&format!("v1.{}.AAAA", k.key_id()), b""), Err(SealError::Malformed));
    }
}
