//! Access tokens: JWS-signed JWTs (`typ: at+jwt`, RFC 9068 shape) and the keys that sign them.
//!
//! Signing keys are EdDSA/Ed25519 by default, ES256 as an option, generated from the caller's
//! CSPRNG. Verification is strict and pinned: only EdDSA and ES256 are accepted whatever the
//! header says (so `alg: none` and HMAC-keyed-with-the-public-key tokens fail), the `kid` must
//! name a known key of that same algorithm, `typ` must be `at+jwt`, and `iss`, `aud`, `exp`,
//! `nbf` are checked against the time the caller passes in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The JWT `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    EdDSA,
    ES256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::ES256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<SigningAlg> {
        match s {
            "EdDSA" => Some(SigningAlg::EdDSA),
            "ES256" => Some(SigningAlg::ES256),
            _ => None,
        }
    }
}

/// A public key as published in the JWKS (RFC 7517 / RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyMaterialError {
    #[error("signing key material is not a valid {0} private key")]
    Invalid(&'static str),
}

/// A private signing key with its public half. `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    private: Zeroizing<Vec<u8>>,
    jwk: PublicJwk,
    /// The parsed private key (an Ed25519 key holds its expanded secret and public point), so
    /// signing does no parsing.
    signer: Signer,
}

/// A parsed private key of either algorithm.
#[derive(Clone)]
enum Signer {
    Ed(Box<ed25519_dalek::SigningKey>),
    Es(Box<p256::ecdsa::SigningKey>),
}

impl Signer {
    /// The public half, parsed (both keys hold it already).
    fn verifier(&self) -> Verifier {
        match self {
            Signer::Ed(k) => Verifier::Ed(k.verifying_key()),
            Signer::Es(k) => Verifier::Es(k.verifying_key().to_encoded_point(false).as_bytes().into()),
        }
    }
}

/// A parsed public key: the Ed25519 point already decompressed, the P-256 point already
/// checked on the curve, so a verification costs the signature check alone.
#[derive(Clone)]
enum Verifier {
    Ed(ed25519_dalek::VerifyingKey),
    /// The uncompressed point (0x04 ‖ x ‖ y), checked on the curve by `p256` when the key set
    /// is built; verified with `ring`.
    Es(std::sync::Arc<[u8]>),
}

impl Verifier {
    fn alg(&self) -> SigningAlg {
        match self {
            Verifier::Ed(_) => SigningAlg::EdDSA,
            Verifier::Es(_) => SigningAlg::ES256,
        }
    }

    fn from_jwk(jwk: &PublicJwk) -> Option<Verifier> {
        let x = URL_SAFE_NO_PAD.decode(&jwk.x).ok()?;
        match (SigningAlg::parse(&jwk.alg)?, &jwk.y) {
            (SigningAlg::EdDSA, None) => {
                ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().ok()?).ok().map(Verifier::Ed)
            }
            (SigningAlg::ES256, Some(y)) => {
                let y = URL_SAFE_NO_PAD.decode(y).ok()?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?;
                Some(Verifier::Es(point.as_bytes().into()))
            }
            _ => None,
        }
    }

    /// Whether `sig` (the JWS signature: 64 bytes, R ‖ S for ES256) signs `message`.
    /// Ed25519 is checked strictly (no small-order keys, no malleable signatures).
    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Verifier::Ed(k) => {
                ed25519_dalek::Signature::from_slice(sig).is_ok_and(|sig| k.verify_strict(message, &sig).is_ok())
            }
            Verifier::Es(point) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} {}, [redacted])", self.alg.as_str(), self.kid)
    }
}

impl SigningKey {
    /// A new key from the caller's CSPRNG.
    // `from_private` refuses bytes of the wrong length or not a valid scalar: a stored key gone bad.
    // Fresh material is neither: a 32-byte seed, or a scalar `p256` itself drew.
    #[allow(clippy::unreachable)]
    pub fn generate(alg: SigningAlg, rng: &mut (impl RngCore + CryptoRng)) -> SigningKey {
        let private: Zeroizing<Vec<u8>> = match alg {
            SigningAlg::EdDSA => {
                let mut seed = Zeroizing::new(vec![0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                seed
            }
            SigningAlg::ES256 => Zeroizing::new(p256::SecretKey::random(rng).to_bytes().to_vec()),
        };
        match Self::from_private(alg, &private) {
            Ok(k) => k,
            Err(_) => unreachable!("freshly generated key material is valid"),
        }
    }

    /// Rebuilds a key from its raw private bytes (the Ed25519 seed or the P-256 scalar), as
    /// stored (sealed) by the storage layer. The key id is derived from the public key
    /// (RFC 7638 thumbprint), so it cannot disagree with the key.
    pub fn from_private(alg: SigningAlg, private: &[u8]) -> Result<SigningKey, KeyMaterialError> {
        let (der, crv, x, y, signer) = match alg {
            SigningAlg::EdDSA => {
                let seed: Zeroizing<[u8; 32]> =
                    Zeroizing::new(private.try_into().map_err(|_| KeyMaterialError::Invalid("Ed25519"))?);
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let der = key.to_pkcs8_der().map_err(|_| KeyMaterialError::Invalid("Ed25519"))?;
                let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
                (Zeroizing::new(der.as_bytes().to_vec()), "Ed25519", x, None, Signer::Ed(Box::new(key)))
            }
            SigningAlg::ES256 => {
                use p256::elliptic_curve::sec1::ToEncodedPoint as _;
                use p256::pkcs8::EncodePrivateKey as _;
                let key = p256::SecretKey::from_slice(private).map_err(|_| KeyMaterialError::Invalid("P-256"))?;
                let der = key.to_pkcs8_der().map_err(|_| KeyMaterialError::Invalid("P-256"))?;
                let point = key.public_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(KeyMaterialError::Invalid("P-256"));
                };
                let signing = p256::ecdsa::SigningKey::from(&key);
                (
                    Zeroizing::new(der.as_bytes().to_vec()),
                    "P-256",
                    URL_SAFE_NO_PAD.encode(x),
                    Some(URL_SAFE_NO_PAD.encode(y)),
                    Signer::Es(Box::new(signing)),
                )
            }
        };
        drop(der);
        let (kty, kid) = match &y {
            // RFC 7638: members in lexicographic order, no whitespace.
            Some(y) => ("EC", thumbprint(&format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#))),
            None => ("OKP", thumbprint(&format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#))),
        };
        let jwk = PublicJwk {
            kty: kty.into(),
            crv: crv.into(),
            x,
            y,
            kid: kid.clone(),
            alg: alg.as_str().into(),
            use_: "sig".into(),
        };
        Ok(SigningKey { kid, alg, private: Zeroizing::new(private.to_vec()), jwk, signer })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The raw private key, for sealing with the master key. Never log it.
    pub fn private_bytes(&self) -> &[u8] {
        &self.private
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        self.sign_typed(claims, ACCESS_TOKEN_TYP)
    }

    /// Signs any claims under a `typ` of their own (the gateway's identity assertion is not an
    /// access token: a different `typ`, which access-token verification refuses).
    pub fn sign_typed<C: Serialize>(&self, claims: &C, typ: &str) -> Result<String, TokenError> {
        #[derive(Serialize)]
        struct Header<'a> {
            typ: &'a str,
            alg: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header { typ, alg: self.alg.as_str(), kid: &self.kid })
            .map_err(|_| TokenError::Malformed)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Malformed)?;
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature: [u8; 64] = match &self.signer {
            Signer::Ed(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(token.as_bytes()).to_bytes()
            }
            Signer::Es(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(token.as_bytes());
                sig.to_bytes().into()
            }
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

fn thumbprint(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub roles: Vec<String>,
    pub amr: Vec<String>,
    /// When the user authenticated (the session's start, kept across refreshes), as in RFC
    /// 9068 §2.2.1, so a backend can ask for a recent sign-in or second factor offline. Absent
    /// from tokens issued before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// The public keys a token may be signed with, by `kid`.
#[derive(Clone, Default)]
pub struct VerifyingKeys {
    keys: HashMap<String, Verifier>,
}

impl fmt::Debug for VerifyingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl VerifyingKeys {
    pub fn from_jwks<'a>(jwks: impl IntoIterator<Item = &'a PublicJwk>) -> VerifyingKeys {
        let keys = jwks.into_iter().filter_map(|jwk| Some((jwk.kid.clone(), Verifier::from_jwk(jwk)?))).collect();
        VerifyingKeys { keys }
    }

    pub fn from_signing_keys<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> VerifyingKeys {
        VerifyingKeys { keys: keys.into_iter().map(|k| (k.kid.clone(), k.signer.verifier())).collect() }
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub issuer: String,
    pub audience: String,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub leeway_secs: i64,
}

/// Why a token was refused. Each has a stable code; all answer 401 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("token is not an access token (typ)")]
    WrongType,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::UnsupportedAlgorithm => "token_algorithm",
            TokenError::WrongType => "token_type",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::BadSignature => "token_signature",
            TokenError::WrongIssuer => "token_issuer",
            TokenError::WrongAudience => "token_audience",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
        }
    }
}

/// A JWS header as read before anything is trusted. Unknown members are ignored, except
/// `crit`: no extension is understood, so a header naming one is refused (RFC 7515 §4.1.11).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}

/// The three parts of a compact JWS: header, payload, signature (exactly two dots).
fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.splitn(4, '.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(TokenError::Malformed),
    }
}

/// Reads the unverified header's `kid`, e.g. to decide whether a key set needs refreshing.
pub fn unverified_kid(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let raw: RawHeader<'_> = serde_json::from_slice(&header).ok()?;
    raw.kid.map(std::borrow::Cow::into_owned)
}

/// Verifies signature and claims. Checks run from the cheapest to the signature, and every
/// refusal is specific (for logs and events); clients see one `invalid_token`.
///
/// The compact JWS is read here (RFC 7515 §7.1): the signature is checked over the token's
/// first two parts with the key parsed when the key set was built (`ed25519-dalek`, `p256`),
/// then the claims are read. The algorithm comes from the key, never from the header alone:
/// a header naming another algorithm than its key's is refused before any signature check.
pub fn verify(
    token: &str,
    keys: &VerifyingKeys,
    expect: &Expectation,
    now: OffsetDateTime,
) -> Result<AccessClaims, TokenError> {
    let header_b64 = token.split('.').next().ok_or(TokenError::Malformed)?;
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| TokenError::Malformed)?;
    let raw: RawHeader<'_> = serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    let alg = raw.alg.as_deref().and_then(SigningAlg::parse).ok_or(TokenError::UnsupportedAlgorithm)?;
    let typ = raw.typ.as_deref().unwrap_or_default();
    if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(TokenError::WrongType);
    }
    if raw.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let kid = raw.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let key = keys.keys.get(kid).ok_or(TokenError::UnknownKey)?;
    if key.alg() != alg {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let (_, payload_b64, sig_b64) = split(token)?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    let mut sig = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(sig_b64, &mut sig) {
        Ok(64) => {}
        _ => return Err(TokenError::BadSignature),
    }
    if !key.verifies(signed.as_bytes(), &sig) {
        return Err(TokenError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| TokenError::Malformed)?;
    // Every claim is required: a token without `exp`, `nbf`, `iat`, `iss`, `aud` or `sub`
    // does not deserialize.
    let claims: AccessClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.iss != expect.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if claims.aud != expect.audience {
        return Err(TokenError::WrongAudience);
    }
    check_validity(&claims, expect, now)?;
    Ok(claims)
}

/// The time checks of [`verify`] alone (`exp`, `nbf`, with the leeway): what a cache of tokens
/// already verified must still ask at every use.
pub fn check_validity(claims: &AccessClaims, expect: &Expectation, now: OffsetDateTime) -> Result<(), TokenError> {
    let now = now.unix_timestamp();
    if claims.exp <= now - expect.leeway_secs {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + expect.leeway_secs {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use rand::rngs::OsRng;

    /// The key for `jsonwebtoken`, an independent JWS implementation that forges the test
    /// tokens ours must refuse (and signs ones it must accept).
    fn enc(key: &SigningKey) -> EncodingKey {
        use p256::pkcs8::EncodePrivateKey as _;
        match key.alg() {
            SigningAlg::EdDSA => {
                let seed: [u8; 32] = key.private_bytes().try_into().unwrap();
                EncodingKey::from_ed_der(
                    ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der().unwrap().as_bytes(),
                )
            }
            SigningAlg::ES256 => EncodingKey::from_ec_der(
                p256::SecretKey::from_slice(key.private_bytes()).unwrap().to_pkcs8_der().unwrap().as_bytes(),
            ),
        }
    }

    const ISS: &str = "https://auth.example.com";
    const AUD: &str = "example-api";

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 12:00 UTC)
    }

    fn expect() -> Expectation {
        Expectation { issuer: ISS.into(), audience: AUD.into(), leeway_secs: 30 }
    }

    fn claims(at: OffsetDateTime) -> AccessClaims {
        let t = at.unix_timestamp();
        AccessClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "user-1".into(),
            sid: "session-1".into(),
            jti: "jti-1".into(),
            iat: t,
            nbf: t,
            exp: t + 600,
            roles: vec!["user".into()],
            amr: vec!["pwd".into()],
            auth_time: Some(t),
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// RFC 8037 Appendix A: the Ed25519 key, its public half, thumbprint and a signature.
    #[test]
    fn rfc8037_vectors() {
        let d = URL_SAFE_NO_PAD.decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
        let key = SigningKey::from_private(SigningAlg::EdDSA, &d).unwrap();
        assert_eq!(key.jwk().x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "RFC 8037 A.3 thumbprint");
        assert_eq!((key.jwk().kty.as_str(), key.jwk().crv.as_str()), ("OKP", "Ed25519"));
        use ed25519_dalek::Signer as _;
        let dalek = ed25519_dalek::SigningKey::from_bytes(&d.as_slice().try_into().unwrap());
        let sig = dalek.sign(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sig.to_bytes()),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn sign_and_verify_round_trip_for_each_algorithm() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
            let key = SigningKey::generate(alg, &mut OsRng);
            let token = key.sign(&claims(now())).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            let keys = VerifyingKeys::from_jwks([key.jwk()]);
            assert_eq!(verify(&token, &keys, &expect(), now()).unwrap(), claims(now()), "{alg:?}");
            // Reloading from the stored private bytes gives the same key.
            let again = SigningKey::from_private(alg, key.private_bytes()).unwrap();
            assert_eq!(again.jwk(), key.jwk());
            assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(key.private_bytes())));
        }
        let es = SigningKey::generate(SigningAlg::ES256, &mut OsRng);
        assert_eq!((es.jwk().kty.as_str(), es.jwk().crv.as_str()), ("EC", "P-256"));
        assert!(es.jwk().y.is_some());
    }

    /// Tokens signed by another implementation (`jsonwebtoken`, over `ring`) verify here, and
    /// ours verify there: the JWS is read as RFC 7515 writes it, not as we happen to write it.
    #[test]
    fn tokens_cross_check_with_an_independent_implementation() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
            let key = SigningKey::generate(alg, &mut OsRng);
            let keys = VerifyingKeys::from_jwks([key.jwk()]);
            let jalg = if alg == SigningAlg::EdDSA { Algorithm::EdDSA } else { Algorithm::ES256 };
            let mut h = Header::new(jalg);
            h.typ = Some("at+jwt".into());
            h.kid = Some(key.kid().into());
            let theirs = jsonwebtoken::encode(&h, &claims(now()), &enc(&key)).unwrap();
            assert_eq!(verify(&theirs, &keys, &expect(), now()).unwrap(), claims(now()), "{alg:?}");
            let ours = key.sign(&claims(now())).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::to_value(key.jwk()).unwrap()).unwrap();
            let mut v = jsonwebtoken::Validation::new(jalg);
            v.validate_exp = false;
            v.set_audience(&[AUD]);
            let read =
                jsonwebtoken::decode::<AccessClaims>(&ours, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &v);
            assert_eq!(read.unwrap().claims, claims(now()), "{alg:?}");
        }
    }

    #[test]
    fn critical_extensions_and_extra_parts_are_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        // A header with `crit`, properly signed by the right key.
        let header = b64(&serde_json::json!({"typ": "at+jwt", "alg": "EdDSA", "kid": key.kid(), "crit": ["exp"]}));
        let signing_input = format!("{header}.{}", b64(&serde_json::to_value(claims(now())).unwrap()));
        let seed: [u8; 32] = key.private_bytes().try_into().unwrap();
        let k = ed25519_dalek::SigningKey::from_bytes(&seed);
        let sig = ed25519_dalek::Signer::sign(&k, signing_input.as_bytes()).to_bytes();
        let crit = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(verify(&crit, &keys, &expect(), now()), Err(TokenError::Malformed));
        let token = key.sign(&claims(now())).unwrap();
        assert_eq!(verify(&format!("{token}.x"), &keys, &expect(), now()), Err(TokenError::Malformed));
        // A signature of the wrong length, and one with a bit flipped.
        let (head, sig) = token.rsplit_once('.').unwrap();
        let short = format!("{head}.{}", &sig[..sig.len() - 4]);
        assert_eq!(verify(&short, &keys, &expect(), now()), Err(TokenError::BadSignature));
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[10] ^= 1;
        let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(verify(&flipped, &keys, &expect(), now()), Err(TokenError::BadSignature));
    }

    /// Ed25519 signatures are checked strictly: S + L (the same signature, malleated) is refused.
    #[test]
    fn a_malleated_ed25519_signature_is_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let token = key.sign(&claims(now())).unwrap();
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        // L, the group order, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(raw[32 + i]) + u16::from(L[i]) + carry;
            raw[32 + i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        let malleated = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(verify(&malleated, &keys, &expect(), now()), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let payload = b64(&serde_json::to_value(claims(now())).unwrap());
        for alg in ["none", "None", "NONE", ""] {
            let header = b64(&serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": key.kid()}));
            for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
                assert_eq!(verify(&token, &keys, &expect(), now()), Err(TokenError::UnsupportedAlgorithm), "{alg}");
            }
        }
    }

    #[test]
    fn hmac_signed_with_the_public_key_is_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let public_forms = [
            key.jwk().x.clone().into_bytes(),
            URL_SAFE_NO_PAD.decode(&key.jwk().x).unwrap(),
            serde_json::to_vec(key.jwk()).unwrap(),
        ];
        for secret in public_forms {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut h = Header::new(alg);
                h.typ = Some("at+jwt".into());
                h.kid = Some(key.kid().into());
                let forged = jsonwebtoken::encode(&h, &claims(now()), &EncodingKey::from_secret(&secret)).unwrap();
                assert_eq!(verify(&forged, &keys, &expect(), now()), Err(TokenError::UnsupportedAlgorithm));
            }
        }
    }

    #[test]
    fn a_key_is_used_only_with_its_own_algorithm() {
        let ed = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let es = SigningKey::generate(SigningAlg::ES256, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&ed, &es]);
        // An ES256 token that claims the Ed25519 key's kid.
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(ed.kid().into());
        let mixed = jsonwebtoken::encode(&h, &claims(now()), &enc(&es)).unwrap();
        assert_eq!(verify(&mixed, &keys, &expect(), now()), Err(TokenError::UnsupportedAlgorithm));
    }

    #[test]
    fn unknown_or_missing_kid_and_foreign_signatures_are_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let other = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let by_other = other.sign(&claims(now())).unwrap();
        assert_eq!(verify(&by_other, &keys, &expect(), now()), Err(TokenError::UnknownKey));
        // Another key's signature under our kid.
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some("at+jwt".into());
        h.kid = Some(key.kid().into());
        let forged = jsonwebtoken::encode(&h, &claims(now()), &enc(&other)).unwrap();
        assert_eq!(verify(&forged, &keys, &expect(), now()), Err(TokenError::BadSignature));
        h.kid = None;
        let no_kid = jsonwebtoken::encode(&h, &claims(now()), &enc(&key)).unwrap();
        assert_eq!(verify(&no_kid, &keys, &expect(), now()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn tampered_claims_fail_the_signature() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let token = key.sign(&claims(now())).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(now());
        c.roles = vec!["admin".into()];
        let tampered = format!("{}.{}.{}", parts[0], b64(&serde_json::to_value(c).unwrap()), parts[2]);
        assert_eq!(verify(&tampered, &keys, &expect(), now()), Err(TokenError::BadSignature));
        for junk in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
            assert!(verify(junk, &keys, &expect(), now()).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn wrong_typ_issuer_and_audience_are_refused() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        for typ in [Some("JWT"), None, Some("id_token+jwt")] {
            let mut h = Header::new(Algorithm::EdDSA);
            h.typ = typ.map(str::to_string);
            h.kid = Some(key.kid().into());
            let t = jsonwebtoken::encode(&h, &claims(now()), &enc(&key)).unwrap();
            assert_eq!(verify(&t, &keys, &expect(), now()), Err(TokenError::WrongType), "{typ:?}");
        }
        let mut c = claims(now());
        c.iss = "https://evil.example".into();
        assert_eq!(verify(&key.sign(&c).unwrap(), &keys, &expect(), now()), Err(TokenError::WrongIssuer));
        let mut c = claims(now());
        c.aud = "another-api".into();
        assert_eq!(verify(&key.sign(&c).unwrap(), &keys, &expect(), now()), Err(TokenError::WrongAudience));
    }

    #[test]
    fn expiry_and_not_before_use_the_given_clock_with_leeway() {
        let key = SigningKey::generate(SigningAlg::EdDSA, &mut OsRng);
        let keys = VerifyingKeys::from_signing_keys([&key]);
        let token = key.sign(&claims(now())).unwrap();
        let at = |secs: i64| now() + time::Duration::seconds(secs);
        assert!(verify(&token, &keys, &expect(), at(599)).is_ok());
        assert!(verify(&token, &keys, &expect(), at(600 + 29)).is_ok(), "within leeway");
        assert_eq!(verify(&token, &keys, &expect(), at(600 + 30)), Err(TokenError::Expired));
        assert_eq!(verify(&token, &keys, &expect(), at(86_400)), Err(TokenError::Expired));
        assert!(verify(&token, &keys, &expect(), at(-30)).is_ok(), "within leeway");
        assert_eq!(verify(&token, &keys, &expect(), at(-31)), Err(TokenError::NotYetValid));
        let strict = Expectation { leeway_secs: 0, ..expect() };
        assert_eq!(verify(&token, &keys, &strict, at(600)), Err(TokenError::Expired));
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            TokenError::Malformed,
            TokenError::UnsupportedAlgorithm,
            TokenError::WrongType,
            TokenError::UnknownKey,
            TokenError::BadSignature,
            TokenError::WrongIssuer,
            TokenError::WrongAudience,
            TokenError::Expired,
            TokenError::NotYetValid,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(TokenError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
