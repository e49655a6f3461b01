//! The master key and sealing of secrets at rest (AES-256-GCM under HKDF-derived keys).
//!
//! Nothing uses the master key directly: each purpose ("seal", "audit-checkpoint", …) gets its
//! own key through HKDF-SHA256, so a key for one purpose reveals nothing about another.
//! A sealed value records the id of the key that sealed it (`v1.<key_id>.<base64>`), so the
//! master key can be rotated: a [`KeyRing`] holds the current key and older ones, seals under
//! the current key and opens with whichever key a value names.

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
    #[error("sealed value was made with master key {0}, which is not in the key ring")]
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

/// The id a sealed value names (`v1.<key_id>.…`), without opening it; `None` when malformed.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(SEAL_VERSION), Some(kid), Some(_)) if !kid.is_empty() => Some(kid),
        _ => None,
    }
}

/// The master keys in use: the current one, which seals, and older ones, which only open
/// what they sealed until `rampart master-key rotate` has re-sealed it under the current key.
/// `Debug` shows key ids only; the keys are zeroed on drop.
#[derive(Clone)]
pub struct KeyRing {
    /// First = current. Never empty, no id twice.
    keys: Vec<(String, MasterKey)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("the master key ring is empty")]
    Empty,
    /// The same key given twice (named by its id, never by its value).
    #[error("master key {0} appears twice in the key ring")]
    Duplicate(String),
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyRing(current={}, older=[{}], [redacted])",
            self.key_id(),
            self.older_ids().collect::<Vec<_>>().join(", ")
        )
    }
}

impl From<MasterKey> for KeyRing {
    fn from(key: MasterKey) -> Self {
        KeyRing { keys: vec![(key.key_id(), key)] }
    }
}

impl KeyRing {
    /// A ring of `keys`, the first the current one.
    pub fn new(keys: Vec<MasterKey>) -> Result<KeyRing, RingError> {
        let mut ring: Vec<(String, MasterKey)> = Vec::with_capacity(keys.len());
        for key in keys {
            let id = key.key_id();
            if ring.iter().any(|(other, _)| *other == id) {
                return Err(RingError::Duplicate(id));
            }
            ring.push((id, key));
        }
        if ring.is_empty() {
            return Err(RingError::Empty);
        }
        Ok(KeyRing { keys: ring })
    }

    // Indexing [0] cannot fail: `new` refuses an empty ring and nothing removes keys.
    /// The current key: it seals, and it derives keys for purposes seen for the first time.
    pub fn current(&self) -> &MasterKey {
        &self.keys[0].1
    }

    /// The current key's id.
    pub fn key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Every key id in the ring, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// The ids of the older keys (all but the current one).
    pub fn older_ids(&self) -> impl Iterator<Item = &str> {
        self.ids().skip(1)
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.find(key_id).is_some()
    }

    /// The key with this id. Every entry is compared (in constant time), so how long the
    /// look-up takes says nothing about which key matched.
    fn find(&self, key_id: &str) -> Option<&MasterKey> {
        let mut found = None;
        for (id, key) in &self.keys {
            if bool::from(id.as_bytes().ct_eq(key_id.as_bytes())) {
                found = Some(key);
            }
        }
        found
    }

    /// Whether `sealed` was sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed_key_id(sealed) == Some(self.key_id())
    }

    /// Seals under the current key (see [`MasterKey::seal`]).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> String {
        self.current().seal(plaintext, aad, rng)
    }

    /// Opens with the key `sealed` names; [`SealError::UnknownKey`] (naming that id) when the
    /// ring does not hold it.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let kid = sealed_key_id(sealed).ok_or(SealError::Malformed)?;
        self.find(kid).ok_or_else(|| SealError::UnknownKey(kid.to_string()))?.open(sealed, aad)
    }

    /// Opens `sealed` with the ring and seals it again under the current key, bound to the
    /// same `aad`; `None` when it is sealed under the current key already.
    pub fn reseal(
        &self,
        sealed: &str,
        aad: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Option<String>, SealError> {
        if self.is_current(sealed) {
            return Ok(None);
        }
        let plain = zeroize::Zeroizing::new(self.open(sealed, aad)?);
        Ok(Some(self.seal(&plain, aad, rng)))
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

    fn ring(bytes: &[u8]) -> KeyRing {
        KeyRing::new(bytes.iter().map(|b| key(*b)).collect()).unwrap()
    }

    #[test]
    fn a_ring_seals_with_its_current_key_and_opens_with_any_of_its_keys() {
        let old = ring(&[1]);
        let sealed_old = old.seal(b"secret", b"row:1", &mut OsRng);
        let rotated = ring(&[2, 1]);
        assert_eq!(rotated.key_id(), key(2).key_id());
        assert_eq!(rotated.older_ids().collect::<Vec<_>>(), [key(1).key_id()]);
        let sealed_new = rotated.seal(b"secret", b"row:1", &mut OsRng);
        assert_eq!(sealed_key_id(&sealed_new), Some(key(2).key_id().as_str()));
        assert_eq!(rotated.open(&sealed_old, b"row:1").unwrap(), b"secret");
        assert_eq!(rotated.open(&sealed_new, b"row:1").unwrap(), b"secret");
        assert!(rotated.is_current(&sealed_new) && !rotated.is_current(&sealed_old));
        // Re-sealing moves a value to the current key, bound to the same row; a current one stays.
        let moved = rotated.reseal(&sealed_old, b"row:1", &mut OsRng).unwrap().unwrap();
        assert!(rotated.is_current(&moved));
        assert_eq!(ring(&[2]).open(&moved, b"row:1").unwrap(), b"secret");
        assert_eq!(rotated.reseal(&moved, b"row:1", &mut OsRng).unwrap(), None);
        assert_eq!(rotated.reseal(&sealed_old, b"row:2", &mut OsRng), Err(SealError::Tampered));
    }

    #[test]
    fn a_ring_without_the_sealing_key_refuses_naming_the_missing_id() {
        let sealed = ring(&[1]).seal(b"secret", b"row:1", &mut OsRng);
        let err = ring(&[3, 2]).open(&sealed, b"row:1").unwrap_err();
        assert_eq!(err, SealError::UnknownKey(key(1).key_id()));
        assert!(err.to_string().contains(&key(1).key_id()), "{err}");
        assert!(ring(&[3, 2]).reseal(&sealed, b"row:1", &mut OsRng).is_err());
        // A key id that differs from a ring key's in the last character is unknown too.
        let mut kid = key(1).key_id();
        kid.pop();
        kid.push('x');
        let forged = sealed.replacen(&key(1).key_id(), &kid, 1);
        assert_eq!(ring(&[1]).open(&forged, b"row:1"), Err(SealError::UnknownKey(kid)));
    }

    #[test]
    fn a_ring_refuses_tampering_and_malformed_values() {
        let r = ring(&[2, 1]);
        let sealed = key(1).seal(b"secret", b"row:1", &mut OsRng);
        let mut chars: Vec<char> = sealed.chars().collect();
        let last = chars.len() - 3;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        assert_eq!(r.open(&chars.into_iter().collect::<String>(), b"row:1"), Err(SealError::Tampered));
        assert_eq!(r.open("v1..AAAA", b""), Err(SealError::Malformed));
        assert_eq!(r.open("not sealed", b""), Err(SealError::Malformed));
        assert_eq!(sealed_key_id("v2.abc.def"), None);
    }

    #[test]
    fn a_ring_refuses_duplicates_and_emptiness_and_never_shows_a_key() {
        let err = KeyRing::new(vec![key(1), key(2), key(1)]).unwrap_err();
        assert_eq!(err, RingError::Duplicate(key(1).key_id()));
        assert!(!err.to_string().contains(&key(1).encode()));
        assert_eq!(KeyRing::new(Vec::new()).unwrap_err(), RingError::Empty);
        let r = ring(&[0xab, 0xcd]);
        let d = format!("{r:?}");
        assert!(d.contains(&key(0xab).key_id()) && d.contains(&key(0xcd).key_id()), "{d}");
        for k in [key(0xab), key(0xcd)] {
            assert!(!d.contains(&k.encode()) && !d.contains(&hex::encode(k.0)), "{d}");
        }
        assert!(!d.to_lowercase().contains("abababab") && !d.to_lowercase().contains("cdcdcdcd"), "{d}");
        let single: KeyRing = key(4).into();
        assert_eq!(single.ids().collect::<Vec<_>>(), [key(4).key_id()]);
    }
}
