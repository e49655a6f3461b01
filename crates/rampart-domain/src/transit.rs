//! Transit encryption: named keys with versions that encrypt, decrypt, sign and MAC for
//! applications, in the shapes of Vault's transit engine (ciphertexts `vault:v<N>:<base64>`), so
//! its clients work unchanged.
//!
//! Pure: key material and nonces come in as arguments. A version's material is 32 random bytes:
//! the AES-256-GCM or ChaCha20-Poly1305 key, the Ed25519 seed, or the HMAC key. A key created
//! `derived` encrypts under a key derived from its material and the caller's `context` (HKDF-
//! SHA256), so one named key serves many tenants without one's ciphertext opening for another.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

/// Nonce length of both AEADs (96 bits).
pub const NONCE_LEN: usize = 12;
/// Bytes of a version's key material.
pub const MATERIAL_LEN: usize = 32;

/// A key's type, by Vault's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Aes256Gcm96,
    Chacha20Poly1305,
    Ed25519,
    Hmac,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [KeyType::Aes256Gcm96, KeyType::Chacha20Poly1305, KeyType::Ed25519, KeyType::Hmac];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::Chacha20Poly1305 => "chacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
            KeyType::Hmac => "hmac",
        }
    }

    pub fn parse(s: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn encrypts(self) -> bool {
        matches!(self, KeyType::Aes256Gcm96 | KeyType::Chacha20Poly1305)
    }

    pub fn signs(self) -> bool {
        self == KeyType::Ed25519
    }
}

/// Why an operation failed; `code` is stable, the message is Vault's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitError {
    #[error("invalid ciphertext: no prefix")]
    BadCiphertext,
    #[error("ciphertext or signature version is disallowed by policy (too old)")]
    VersionTooOld,
    #[error("invalid key version")]
    NoSuchVersion,
    #[error("cipher: message authentication failed")]
    Authentication,
    #[error(
        "missing 'context' for key derivation: the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
    )]
    ContextMissing,
    #[error("context provided but the key was not created as a derived key")]
    ContextUnexpected,
    #[error("failed to base64-decode {0}")]
    Base64(&'static str),
    #[error("key type {0} does not support this operation")]
    Unsupported(&'static str),
}

impl TransitError {
    pub fn code(&self) -> &'static str {
        match self {
            TransitError::BadCiphertext => "invalid_ciphertext",
            TransitError::VersionTooOld => "version_too_old",
            TransitError::NoSuchVersion => "invalid_key_version",
            TransitError::Authentication => "decryption_failed",
            TransitError::ContextMissing => "context_missing",
            TransitError::ContextUnexpected => "context_unexpected",
            TransitError::Base64(_) => "invalid_base64",
            TransitError::Unsupported(_) => "unsupported_operation",
        }
    }
}

/// Standard base64 of `field`.
pub fn decode_b64(text: &str, field: &'static str) -> Result<Vec<u8>, TransitError> {
    STANDARD.decode(text.trim()).map_err(|_| TransitError::Base64(field))
}

/// `vault:v<version>:<base64 body>`.
pub fn armor(version: u32, body: &[u8]) -> String {
    format!("vault:v{version}:{}", STANDARD.encode(body))
}

/// The version and body of `vault:v<N>:<base64>`.
pub fn unarmor(text: &str) -> Result<(u32, Vec<u8>), TransitError> {
    let rest = text.strip_prefix("vault:v").ok_or(TransitError::BadCiphertext)?;
    let (version, body) = rest.split_once(':').ok_or(TransitError::BadCiphertext)?;
    let version: u32 = version.parse().map_err(|_| TransitError::BadCiphertext)?;
    if version == 0 {
        return Err(TransitError::BadCiphertext);
    }
    Ok((version, STANDARD.decode(body).map_err(|_| TransitError::BadCiphertext)?))
}

#[allow(clippy::unreachable)] // HKDF-SHA256 refuses only outputs over 255 × 32 bytes; these are 32.
fn hkdf(material: &[u8], info: &[u8]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"rampart transit"), material);
    let mut out = [0u8; 32];
    if hk.expand(info, &mut out).is_err() {
        unreachable!("HKDF output length is constant and valid");
    }
    out
}

/// The encryption key of a version: its material, or for a derived key the key derived for
/// `context`.
fn encryption_key(material: &[u8], derived: bool, context: Option<&[u8]>) -> Result<[u8; 32], TransitError> {
    match (derived, context) {
        (true, Some(ctx)) if !ctx.is_empty() => Ok(hkdf(material, &[b"derive:".as_slice(), ctx].concat())),
        (true, _) => Err(TransitError::ContextMissing),
        (false, Some(ctx)) if !ctx.is_empty() => Err(TransitError::ContextUnexpected),
        (false, _) => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&material[..32]);
            Ok(k)
        }
    }
}

/// Encrypts `plaintext`: the body is `nonce ‖ ciphertext ‖ tag`, as Vault's.
#[allow(clippy::unreachable)]
pub fn encrypt(
    kind: KeyType,
    material: &[u8],
    derived: bool,
    context: Option<&[u8]>,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, TransitError> {
    let key = encryption_key(material, derived, context)?;
    let payload = Payload { msg: plaintext, aad: b"" };
    let ct = match kind {
        KeyType::Aes256Gcm96 => aes_gcm::Aes256Gcm::new((&key).into()).encrypt((&nonce).into(), payload),
        KeyType::Chacha20Poly1305 => {
            chacha20poly1305::ChaCha20Poly1305::new((&key).into()).encrypt((&nonce).into(), payload)
        }
        other => return Err(TransitError::Unsupported(other.as_str())),
    };
    let Ok(ct) = ct else { unreachable!("AEAD encryption only fails for inputs over 64 GiB") };
    Ok([nonce.as_slice(), &ct].concat())
}

/// Decrypts a body made by [`encrypt`] with the same version and context.
pub fn decrypt(
    kind: KeyType,
    material: &[u8],
    derived: bool,
    context: Option<&[u8]>,
    body: &[u8],
) -> Result<Vec<u8>, TransitError> {
    let key = encryption_key(material, derived, context)?;
    if body.len() < NONCE_LEN + 16 {
        return Err(TransitError::Authentication);
    }
    let (nonce, ct) = body.split_at(NONCE_LEN);
    let payload = Payload { msg: ct, aad: b"" };
    match kind {
        KeyType::Aes256Gcm96 => aes_gcm::Aes256Gcm::new((&key).into()).decrypt(nonce.into(), payload),
        KeyType::Chacha20Poly1305 => {
            chacha20poly1305::ChaCha20Poly1305::new((&key).into()).decrypt(nonce.into(), payload)
        }
        other => return Err(TransitError::Unsupported(other.as_str())),
    }
    .map_err(|_| TransitError::Authentication)
}

/// HMAC of `input` under the version's HMAC key (`sha2-256` or `sha2-512`).
pub fn hmac(kind: KeyType, material: &[u8], algorithm: &str, input: &[u8]) -> Result<Vec<u8>, TransitError> {
    // An HMAC key's material is its key; another key's is derived from its material.
    let key: Vec<u8> = if kind == KeyType::Hmac { material.to_vec() } else { hkdf(material, b"hmac").to_vec() };
    match algorithm {
        "sha2-256" => {
            let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
                return Err(TransitError::Unsupported("hmac"));
            };
            mac.update(input);
            Ok(mac.finalize().into_bytes().to_vec())
        }
        "sha2-512" => {
            let Ok(mut mac) = <Hmac<Sha512> as Mac>::new_from_slice(&key) else {
                return Err(TransitError::Unsupported("hmac"));
            };
            mac.update(input);
            Ok(mac.finalize().into_bytes().to_vec())
        }
        _ => Err(TransitError::Unsupported("this hash algorithm")),
    }
}

fn signing_key(material: &[u8]) -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&material[..32]);
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// An Ed25519 signature of `input`.
pub fn sign(kind: KeyType, material: &[u8], input: &[u8]) -> Result<Vec<u8>, TransitError> {
    if !kind.signs() {
        return Err(TransitError::Unsupported(kind.as_str()));
    }
    use ed25519_dalek::Signer as _;
    Ok(signing_key(material).sign(input).to_bytes().to_vec())
}

/// Whether `signature` is the version's Ed25519 signature of `input`.
pub fn verify(kind: KeyType, material: &[u8], input: &[u8], signature: &[u8]) -> Result<bool, TransitError> {
    if !kind.signs() {
        return Err(TransitError::Unsupported(kind.as_str()));
    }
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else { return Ok(false) };
    Ok(signing_key(material).verifying_key().verify_strict(input, &sig).is_ok())
}

/// The public key of an Ed25519 version, base64 (as Vault's key read shows it).
pub fn public_key(kind: KeyType, material: &[u8]) -> Option<String> {
    kind.signs().then(|| STANDARD.encode(signing_key(material).verifying_key().to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 32] = [7; 32];
    const N: [u8; 12] = [1; 12];

    #[test]
    fn ciphertexts_round_trip_for_both_aeads_and_refuse_tampering() {
        for kind in [KeyType::Aes256Gcm96, KeyType::Chacha20Poly1305] {
            let body = encrypt(kind, &M, false, None, N, b"the secret").unwrap();
            assert_eq!(&body[..12], &N);
            let text = armor(3, &body);
            assert!(text.starts_with("vault:v3:"));
            let (v, back) = unarmor(&text).unwrap();
            assert_eq!(v, 3);
            assert_eq!(decrypt(kind, &M, false, None, &back).unwrap(), b"the secret");
            let mut bad = back.clone();
            bad[14] ^= 1;
            assert_eq!(decrypt(kind, &M, false, None, &bad), Err(TransitError::Authentication));
            assert_eq!(decrypt(kind, &[8; 32], false, None, &back), Err(TransitError::Authentication));
        }
    }

    #[test]
    fn aes_gcm_agrees_with_the_nist_vector() {
        // NIST SP 800-38D / McGrew-Viega test case 16 key and IV, no AAD, shortened plaintext.
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").unwrap();
        let iv: [u8; 12] = hex::decode("cafebabefacedbaddecaf888").unwrap().try_into().unwrap();
        let pt = hex::decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let body = encrypt(KeyType::Aes256Gcm96, &key, false, None, iv, &pt).unwrap();
        let ct = hex::encode(&body[12..12 + pt.len()]);
        assert_eq!(
            ct,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        );
    }

    #[test]
    fn a_derived_key_needs_its_context_and_another_context_does_not_open() {
        let body = encrypt(KeyType::Aes256Gcm96, &M, true, Some(b"tenant-a"), N, b"x").unwrap();
        assert_eq!(decrypt(KeyType::Aes256Gcm96, &M, true, Some(b"tenant-a"), &body).unwrap(), b"x");
        assert_eq!(
            decrypt(KeyType::Aes256Gcm96, &M, true, Some(b"tenant-b"), &body),
            Err(TransitError::Authentication)
        );
        assert_eq!(encrypt(KeyType::Aes256Gcm96, &M, true, None, N, b"x"), Err(TransitError::ContextMissing));
        assert_eq!(encrypt(KeyType::Aes256Gcm96, &M, false, Some(b"c"), N, b"x"), Err(TransitError::ContextUnexpected));
    }

    #[test]
    fn malformed_ciphertexts_are_refused() {
        for bad in ["", "vault:", "vault:v:abc", "vault:v0:AAAA", "vault:vx:AAAA", "vault:v1:***", "v1:AAAA"] {
            assert_eq!(unarmor(bad), Err(TransitError::BadCiphertext), "{bad}");
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_and_signatures_verify() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac(KeyType::Hmac, b"Jefe", "sha2-256", b"what do ya want for nothing?").unwrap();
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let sig = sign(KeyType::Ed25519, &M, b"message").unwrap();
        assert!(verify(KeyType::Ed25519, &M, b"message", &sig).unwrap());
        assert!(!verify(KeyType::Ed25519, &M, b"massage", &sig).unwrap());
        assert!(!verify(KeyType::Ed25519, &M, b"message", &sig[..10]).unwrap());
        assert!(sign(KeyType::Aes256Gcm96, &M, b"m").is_err());
        assert!(public_key(KeyType::Ed25519, &M).is_some() && public_key(KeyType::Hmac, &M).is_none());
    }
}
