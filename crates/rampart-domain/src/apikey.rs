//! API keys: `rk_` + 40 random alphanumerics (≈238 bits) + a 6-character CRC-32 checksum.
//!
//! The checksum lets a typo or a truncated key be refused without a lookup, and the fixed
//! shape lets secret scanners recognise leaked keys. Storage keeps only the SHA-256 of the key
//! ([`crate::TokenHash`]) and a short display prefix.

use crate::opaque::TokenHash;
use crate::permission;
use crate::secret::Secret;
use rand::distributions::{Alphanumeric, DistString};
use rand::{CryptoRng, RngCore};

pub const PREFIX: &str = "rk_";
const RANDOM_CHARS: usize = 40;
const CHECKSUM_CHARS: usize = 6;
/// The whole key's length.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;
/// Characters of a key shown in lists (`rk_` + 8), enough to tell keys apart, not to guess one.
pub const DISPLAY_LEN: usize = PREFIX.len() + 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Slice-by-16 tables: a key is checked on every request that presents one.
const CRC32: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

fn checksum(random: &str) -> String {
    checksum_bytes(random).iter().map(|&b| b as char).collect()
}

/// [`checksum`]'s characters, without a `String` (checked on every presented key).
fn checksum_bytes(random: &str) -> [u8; CHECKSUM_CHARS] {
    let mut n = CRC32.checksum(random.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A newly generated key: shown to its owner once.
#[derive(Debug, Clone)]
pub struct ApiKey(Secret<String>);

impl ApiKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> ApiKey {
        let random = Alphanumeric.sample_string(rng, RANDOM_CHARS);
        let sum = checksum(&random);
        ApiKey(Secret::new(format!("{PREFIX}{random}{sum}")))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }

    pub fn display_prefix(&self) -> String {
        self.expose()[..DISPLAY_LEN].to_string()
    }
}

/// Why a presented key was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("not an API key (expected rk_ followed by 46 letters and digits)")]
    Shape,
    #[error("API key checksum does not match (a typo or a truncated key)")]
    Checksum,
}

/// Checks the shape and checksum of a presented key; on success returns its hash for lookup.
pub fn check_format(presented: &str) -> Result<TokenHash, KeyFormatError> {
    let body = presented.strip_prefix(PREFIX).ok_or(KeyFormatError::Shape)?;
    // Every byte looked at (no early stop), which the compiler does many at a time.
    if body.len() != RANDOM_CHARS + CHECKSUM_CHARS || !body.bytes().fold(true, |ok, b| ok & b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Shape);
    }
    let (random, sum) = body.split_at(RANDOM_CHARS);
    // The checksum is public (computed from the key itself): no constant-time compare needed.
    if checksum_bytes(random) != sum.as_bytes() {
        return Err(KeyFormatError::Checksum);
    }
    Ok(TokenHash::of(presented))
}

/// Whether a scope is well formed: `resource:action`, `resource:*`, `resource:action:object`
/// (one named thing: `transit:encrypt:orders`), `resource:action:*` or `*`; lowercase letters,
/// digits, `_`, `-` and `.`.
pub fn is_valid_scope(scope: &str) -> bool {
    let part = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    };
    let parts: Vec<&str> = scope.split(':').collect();
    match parts.as_slice() {
        ["*"] => true,
        [r, a] => part(r) && (*a == "*" || part(a)),
        [r, a, o] => part(r) && part(a) && (*o == "*" || part(o)),
        _ => false,
    }
}

/// Whether `granted` (an owner's permissions) covers a scope a key asks for: a concrete scope
/// must be allowed; a wildcard scope needs the same or a wider wildcard.
pub fn covers<S: AsRef<str>>(granted: &[S], scope: &str) -> bool {
    if scope == "*" {
        return granted.iter().any(|g| g.as_ref() == "*");
    }
    if let Some(stem) = scope.strip_suffix('*') {
        // The same wildcard, or a wider one (`transit:*` covers `transit:encrypt:*`).
        return granted.iter().any(|g| {
            let g = g.as_ref();
            g == "*"
                || g == scope
                || g.strip_suffix('*').is_some_and(|wide| wide.ends_with(':') && stem.starts_with(wide))
        });
    }
    permission::allows(granted, scope)
}

/// Whether a key may do `needed`: its own scopes allow it *and* its owner's current
/// permissions do (a key never holds more than its owner).
pub fn key_allows<A: AsRef<str>, B: AsRef<str>>(key_scopes: &[A], owner_permissions: &[B], needed: &str) -> bool {
    permission::allows(key_scopes, needed) && permission::allows(owner_permissions, needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn keys_have_the_documented_shape_and_verify_their_checksum() {
        let key = ApiKey::generate(&mut OsRng);
        let s = key.expose();
        assert_eq!(s.len(), KEY_LEN);
        assert!(s.starts_with("rk_") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(check_format(s), Ok(key.hash()));
        assert_eq!(key.display_prefix(), &s[..11]);
        assert_ne!(ApiKey::generate(&mut OsRng).expose(), s);
        assert!(!format!("{key:?}").contains(&s[3..]), "debug output redacts the key");
    }

    #[test]
    fn typos_and_junk_are_refused_without_a_lookup() {
        let key = ApiKey::generate(&mut OsRng);
        let s = key.expose().to_string();
        // Change one character of the random part: the checksum catches it.
        let mut typo = s.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(check_format(std::str::from_utf8(&typo).unwrap()), Err(KeyFormatError::Checksum));
        assert_eq!(check_format(&s[..s.len() - 1]), Err(KeyFormatError::Shape));
        assert_eq!(check_format(&s.replace("rk_", "rt_")), Err(KeyFormatError::Shape));
        assert_eq!(check_format(""), Err(KeyFormatError::Shape));
        assert_eq!(check_format(&format!("{s}x")), Err(KeyFormatError::Shape));
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // CRC-32/ISO-HDLC("123456789") = 0xCBF43926 (the catalogue's check value) = 3421780262.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
        let mut n: u64 = 3_421_780_262;
        let mut expected = Vec::new();
        for _ in 0..6 {
            expected.push(BASE62[(n % 62) as usize]);
            n /= 62;
        }
        expected.reverse();
        assert_eq!(checksum("123456789"), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn scopes_and_the_owner_ceiling() {
        for ok in ["*", "users:read", "users:*", "keys:verify", "anime.catalog:read-all", "transit:encrypt:orders"] {
            assert!(is_valid_scope(ok), "{ok}");
        }
        for bad in ["", "users", "Users:read", ":read", "users:", "a:b:c:d", "a:*:c", "users:re ad"] {
            assert!(!is_valid_scope(bad), "{bad}");
        }
        let owner = ["users:read", "audit:*"];
        assert!(covers(&owner, "users:read"));
        assert!(covers(&owner, "audit:read"));
        assert!(covers(&owner, "audit:*"));
        assert!(!covers(&owner, "users:*"), "a concrete grant does not cover a wildcard");
        assert!(!covers(&owner, "*"));
        assert!(covers(&["*"], "*"));
        assert!(key_allows(&["users:*"], &owner, "users:read"));
        assert!(!key_allows(&["users:*"], &owner, "users:write"), "the owner lacks it");
        assert!(!key_allows(&["users:read"], &["*"], "users:write"), "the key lacks it");
        // Scopes naming one thing (a transit key): wider wildcards cover narrower ones.
        let transit = ["transit:*"];
        assert!(covers(&transit, "transit:encrypt:*") && covers(&transit, "transit:encrypt:orders"));
        assert!(covers(&["transit:encrypt:*"], "transit:encrypt:orders"));
        assert!(!covers(&["transit:encrypt:*"], "transit:*"), "a narrower wildcard does not cover a wider one");
        assert!(!covers(&["transit:encrypt:orders"], "transit:encrypt:*"));
        assert!(!covers(&["transit:encrypt:orders"], "transit:decrypt:orders"));
    }
}
