//! One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238), the secrets behind them, and the
//! `otpauth://` URI that authenticator apps read from a QR code.
//!
//! Pure: the time comes in as a Unix timestamp, randomness as a CSPRNG. Replay protection is
//! the storage's job (the step a code was accepted at is remembered, and only a later step is
//! accepted next, by a compare-and-swap); [`Totp::verify`] says which step a code matched.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

/// Bytes in a generated secret: 160 bits, the size RFC 4226 recommends and SHA-1's output.
pub const SECRET_BYTES: usize = 20;

/// The HMAC hash of the one-time-password function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name in an `otpauth://` URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// HOTP (RFC 4226 §5.3): dynamic truncation of HMAC(key, counter), `digits` decimal digits,
/// zero-padded.
pub fn hotp(algorithm: Algorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let msg = counter.to_be_bytes();
    let h = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, &msg),
        Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, &msg),
        Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, &msg),
    };
    let Some(last) = h.last() else { return String::new() };
    let offset = usize::from(last & 0x0f);
    let bin =
        h.get(offset..offset + 4).map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])).unwrap_or_default();
    let modulus = 10u64.pow(digits);
    format!("{:0width$}", u64::from(bin) % modulus, width = digits as usize)
}

/// A TOTP configuration: hash, digits, time step, and how many steps either side of the
/// current one are accepted (for clock drift and typing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub step_secs: u64,
    pub skew_steps: u64,
}

impl Default for Totp {
    /// What every authenticator app supports: SHA-1, 6 digits, 30 s, one step either side.
    fn default() -> Self {
        Totp { algorithm: Algorithm::Sha1, digits: 6, step_secs: 30, skew_steps: 1 }
    }
}

impl Totp {
    /// The time step of a Unix time (RFC 6238 `T`, with `T0 = 0`). Times before 1970 are step 0.
    pub fn step(&self, unix: i64) -> u64 {
        u64::try_from(unix).unwrap_or(0) / self.step_secs.max(1)
    }

    /// The code for a time step.
    pub fn code_at_step(&self, key: &[u8], step: u64) -> String {
        hotp(self.algorithm, key, step, self.digits)
    }

    /// The code at a Unix time.
    pub fn code(&self, key: &[u8], unix: i64) -> String {
        self.code_at_step(key, self.step(unix))
    }

    /// The latest step in the window around `unix` whose code is `code`, if any. Every
    /// candidate is computed and compared in constant time, so the answer's timing says
    /// nothing about which step (if any) matched. Whitespace in `code` is ignored.
    pub fn verify(&self, key: &[u8], code: &str, unix: i64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = self.step(unix);
        let mut found = None;
        for step in now.saturating_sub(self.skew_steps)..=now.saturating_add(self.skew_steps) {
            let expected = self.code_at_step(key, step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://totp/` URI of Google Authenticator's key-URI format, with issuer and
    /// account (`Issuer:account` label plus the `issuer` parameter, both percent-encoded).
    pub fn otpauth_uri(&self, secret: &TotpSecret, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", percent(issuer), percent(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            secret.base32(),
            percent(issuer),
            self.algorithm.as_str(),
            self.digits,
            self.step_secs
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A TOTP shared secret. `Debug` shows `[redacted]`; zeroed on drop.
#[derive(Debug, Clone)]
pub struct TotpSecret(Secret<Vec<u8>>);

impl TotpSecret {
    /// 160 fresh bits from the CSPRNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        TotpSecret(Secret::new(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(Secret::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// Unpadded RFC 4648 base32, what authenticator apps take when typed in.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(self.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    /// RFC 4226 Appendix D: the secret "12345678901234567890", counters 0..=9.
    #[test]
    fn rfc4226_appendix_d() {
        let key = b"12345678901234567890";
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(Algorithm::Sha1, key, counter as u64, 6), *want, "counter {counter}");
        }
    }

    /// RFC 6238 Appendix B: 8 digits, 30 s steps, each hash with its own seed length
    /// (20, 32 and 64 bytes of the repeated ASCII digits).
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: &[(i64, &str, &str, &str)] = &[
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for &(t, s1, s256, s512) in vectors {
            for (alg, key, want) in
                [(Algorithm::Sha1, &sha1, s1), (Algorithm::Sha256, &sha256, s256), (Algorithm::Sha512, &sha512, s512)]
            {
                let totp = Totp { algorithm: alg, digits: 8, step_secs: 30, skew_steps: 1 };
                assert_eq!(totp.code(key, t), want, "{alg:?} at {t}");
                assert_eq!(totp.verify(key, want, t), Some(totp.step(t)), "{alg:?} at {t} verifies");
            }
        }
    }

    #[test]
    fn verify_accepts_one_step_either_side_and_nothing_further() {
        let totp = Totp::default();
        let secret = TotpSecret::generate(&mut OsRng);
        let key = secret.expose();
        let t = 1_800_000_015;
        let step = totp.step(t);
        assert_eq!(totp.verify(key, &totp.code_at_step(key, step), t), Some(step));
        assert_eq!(totp.verify(key, &totp.code_at_step(key, step - 1), t), Some(step - 1));
        assert_eq!(totp.verify(key, &totp.code_at_step(key, step + 1), t), Some(step + 1));
        let far = totp.code_at_step(key, step - 2);
        // (A far code could collide with a near one by chance: 3 in a million.)
        if ![step - 1, step, step + 1].iter().any(|s| totp.code_at_step(key, *s) == far) {
            assert_eq!(totp.verify(key, &far, t), None);
        }
        let code = totp.code_at_step(key, step);
        assert_eq!(totp.verify(key, &format!("{} {}", &code[..3], &code[3..]), t), Some(step), "spaces ignored");
        assert_eq!(totp.verify(key, "12345", t), None, "wrong length");
        assert_eq!(totp.verify(key, "12345a", t), None, "not digits");
        assert_eq!(totp.verify(key, "", t), None);
    }

    #[test]
    fn secrets_are_160_bits_base32_and_redacted() {
        let a = TotpSecret::generate(&mut OsRng);
        let b = TotpSecret::generate(&mut OsRng);
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.base32().len(), 32, "160 bits = 32 base32 characters");
        assert!(!format!("{a:?}").contains(&a.base32()));
        let known = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(known.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn otpauth_uri_names_issuer_and_account() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = Totp::default().otpauth_uri(&secret, "Acme Co", "ann@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Co:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }
}
