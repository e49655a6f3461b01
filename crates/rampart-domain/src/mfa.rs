//! Second factors: which kinds there are, what they add to a session's `amr`, and backup codes.
//!
//! Backup codes are 80 random bits each (16 characters of a 32-letter alphabet), so a fast
//! *keyed* hash is enough to store them (ASVS 6.5.2): HMAC-SHA256 under a key derived from the
//! master key. A leaked table alone cannot be brute-forced (the key is not in it), and even with
//! the key 2^80 guesses per code are out of reach; a slow hash would only cost the server.

use hmac::{Hmac, Mac};
use rand::{CryptoRng, Rng};
use sha2::Sha256;

/// How many backup codes a set holds.
pub const BACKUP_CODE_COUNT: usize = 10;
/// Characters in a backup code (without separators); 5 bits each.
pub const BACKUP_CODE_LEN: usize = 16;
/// Crockford's base32 in lowercase: digits and letters without i, l, o, u (read back as 1, 1,
/// 0 when typed, see [`normalize_backup_code`]).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A kind of second factor. A new one (SMS, say) is a new variant here, its own store table and
/// a branch in the server's factor check: the step-up login, throttling and events are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    Totp,
    BackupCode,
    WebAuthn,
    Email,
}

impl Factor {
    /// The name in APIs, events and the login's `methods` list.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::BackupCode => "backup_code",
            Factor::WebAuthn => "webauthn",
            Factor::Email => "email",
        }
    }

    /// Authentication method references (RFC 8176) a session gets for this factor, besides
    /// `pwd` and `mfa`.
    pub fn amr(self) -> Amr {
        match self {
            Factor::Totp | Factor::BackupCode | Factor::Email => Amr::Otp,
            Factor::WebAuthn => Amr::Hwk,
        }
    }
}

/// An authentication method reference (RFC 8176): how a session's user authenticated, as the
/// session stores it and the access token's `amr` claim shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// A password.
    Pwd,
    /// A one-time code (TOTP, backup code, e-mailed code).
    Otp,
    /// A hardware-bound key (WebAuthn).
    Hwk,
    /// The authenticator verified its user (PIN, biometrics).
    User,
    /// More than one factor.
    Mfa,
    /// An external identity provider vouched for the user (Telegram, OpenID Connect): the
    /// value identity providers such as Microsoft Entra use, RFC 8176 having none.
    Fed,
}

impl Amr {
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Otp => "otp",
            Amr::Hwk => "hwk",
            Amr::User => "user",
            Amr::Mfa => "mfa",
            Amr::Fed => "fed",
        }
    }
}

impl Amr {
    /// The stored form back (`None` for a value this version does not know).
    pub fn parse(s: &str) -> Option<Amr> {
        [Amr::Pwd, Amr::Otp, Amr::Hwk, Amr::User, Amr::Mfa, Amr::Fed].into_iter().find(|a| a.as_str() == s)
    }
}

impl PartialEq<&str> for Amr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The `amr` of a session opened with a password and then `factor`.
pub fn amr_with(factor: Factor) -> Vec<Amr> {
    amr_after(Amr::Pwd, factor)
}

/// The `amr` of a session opened with `first` (a password, an external identity) and then
/// `factor`.
pub fn amr_after(first: Amr, factor: Factor) -> Vec<Amr> {
    vec![first, factor.amr(), Amr::Mfa]
}

/// A fresh backup code, `xxxx-xxxx-xxxx-xxxx`.
pub fn generate_backup_code(rng: &mut (impl Rng + CryptoRng)) -> String {
    let mut out = String::with_capacity(BACKUP_CODE_LEN + 3);
    for i in 0..BACKUP_CODE_LEN {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 32 symbols: an unbiased draw.
        out.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    out
}

/// A presented code in canonical form (lowercase, separators and spaces dropped), or `None`
/// when it cannot be a backup code (so junk costs no lookup).
pub fn normalize_backup_code(presented: &str) -> Option<String> {
    let s: String = presented
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    (s.len() == BACKUP_CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// The stored form of a normalized backup code: HMAC-SHA256 under `key`, bound to the user
/// (a code's hash means nothing in another account's rows).
pub fn backup_code_hash(key: &[u8; 32], user: uuid::Uuid, normalized: &str) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32], // unreachable: HMAC takes any key length
    };
    mac.update(user.as_bytes());
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A fresh six-digit code for the e-mail fallback, uniform over 000000..=999999.
pub fn generate_email_code(rng: &mut (impl Rng + CryptoRng)) -> String {
    format!("{:06}", rng.gen_range(0..1_000_000u32))
}

/// The stored form of an e-mailed code: HMAC-SHA256 under `key`, bound to its challenge (the
/// hash of the `mfa_token`), so a code is worth nothing for another login.
pub fn email_code_hash(key: &[u8; 32], challenge: &[u8; 32], code: &str) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32], // unreachable: HMAC takes any key length
    };
    mac.update(challenge);
    mac.update(code.trim().as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn alphabet_has_32_distinct_symbols() {
        let mut a = ALPHABET.to_vec();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn backup_codes_are_80_bits_formatted_and_normalize() {
        let a = generate_backup_code(&mut OsRng);
        let b = generate_backup_code(&mut OsRng);
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.matches('-').count(), 3);
        let n = normalize_backup_code(&a).unwrap();
        assert_eq!(n.len(), BACKUP_CODE_LEN);
        assert_eq!(normalize_backup_code(&a.to_uppercase().replace('-', " ")), Some(n.clone()));
        assert_eq!(normalize_backup_code("abcd-efgh"), None, "too short");
        assert_eq!(normalize_backup_code("uuuu-0000-0000-0000"), None, "not in the alphabet");
        assert_eq!(normalize_backup_code("OIL0-0000-0000-0000").as_deref(), Some("0110000000000000"), "look-alikes");
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_the_user() {
        let u1 = uuid::Uuid::now_v7();
        let u2 = uuid::Uuid::now_v7();
        let code = "abcdefghjkmnpqrs";
        assert_eq!(backup_code_hash(&[1; 32], u1, code), backup_code_hash(&[1; 32], u1, code));
        assert_ne!(backup_code_hash(&[1; 32], u1, code), backup_code_hash(&[2; 32], u1, code));
        assert_ne!(backup_code_hash(&[1; 32], u1, code), backup_code_hash(&[1; 32], u2, code));
    }

    #[test]
    fn email_codes_are_six_digits_and_bound_to_their_challenge() {
        let c = generate_email_code(&mut OsRng);
        assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(email_code_hash(&[1; 32], &[2; 32], " 123456 "), email_code_hash(&[1; 32], &[2; 32], "123456"));
        assert_ne!(email_code_hash(&[1; 32], &[2; 32], "123456"), email_code_hash(&[1; 32], &[3; 32], "123456"));
    }

    #[test]
    fn amr_names_the_factor() {
        assert_eq!(amr_with(Factor::Totp), ["pwd", "otp", "mfa"]);
        assert_eq!(amr_with(Factor::WebAuthn), ["pwd", "hwk", "mfa"]);
        assert_eq!(amr_after(Amr::Fed, Factor::BackupCode), ["fed", "otp", "mfa"]);
        for a in [Amr::Pwd, Amr::Otp, Amr::Hwk, Amr::User, Amr::Mfa, Amr::Fed] {
            assert_eq!(Amr::parse(a.as_str()), Some(a));
        }
        assert_eq!(Amr::parse("sms"), None);
        assert_eq!(Factor::BackupCode.as_str(), "backup_code");
    }
}
