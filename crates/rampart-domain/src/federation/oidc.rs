//! OpenID Connect and OAuth2 sign-in, the pure parts: PKCE (RFC 7636, S256 only), the checks of
//! an `id_token` (OpenID Connect Core §3.1.3.7) with the clock passed in, claims read from a
//! user-info answer through a configured mapping, and Apple's client secret (an ES256 JWT).
//!
//! The JWS itself is verified by `jsonwebtoken` with the provider's JWK picked by `kid`; what
//! is checked here is which algorithm and key may be used at all: only asymmetric algorithms
//! from the provider's allowlist (never `none`, never an HMAC keyed with a public key), and a
//! key whose type fits the algorithm. The time claims are checked against `now`, not the
//! system clock (`jsonwebtoken`'s own time checks are off).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{CryptoRng, RngCore};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// The JWS algorithms, as configured providers name them.
pub use jsonwebtoken::Algorithm as JwsAlgorithm;
/// A provider's key set (RFC 7517).
pub use jsonwebtoken::jwk::JwkSet;

/// The algorithms an `id_token` may be signed with: asymmetric ones only. A provider's
/// configured allowlist is a subset of these.
pub const SAFE_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Parses an algorithm name of [`SAFE_ALGORITHMS`] (`RS256`, `ES256`, `EdDSA`…); `None` for
/// anything else, `none` and `HS*` included.
pub fn safe_algorithm(name: &str) -> Option<Algorithm> {
    let alg: Algorithm = name.parse().ok()?;
    SAFE_ALGORITHMS.contains(&alg).then_some(alg)
}

/// 32 random bytes, base64url: a `state`, a `nonce` or a PKCE verifier (43 characters,
/// within RFC 7636's 43 to 128).
pub fn random_token(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The S256 code challenge of a PKCE verifier: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What an `id_token` must say to be accepted.
#[derive(Debug, Clone)]
pub struct IdTokenRules<'a> {
    /// The provider's issuer, exactly. A `{tenantid}` in it (Microsoft's multi-tenant
    /// issuer) stands for the token's own `tid` claim.
    pub issuer: &'a str,
    /// Our client id: must be in `aud`; and `azp`, when present or when `aud` has several.
    pub client_id: &'a str,
    /// The nonce sent with this flow's authorization request.
    pub nonce: &'a str,
    /// The provider's allowlist, a subset of [`SAFE_ALGORITHMS`].
    pub algorithms: &'a [Algorithm],
    /// Clock skew allowed on `exp` and `iat`.
    pub leeway: Duration,
}

/// Why an `id_token` is refused (each a reason recorded in events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the id_token is not a JWS")]
    Malformed,
    #[error("the id_token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("no key of the provider's key set fits the id_token")]
    UnknownKey,
    #[error("the id_token's signature does not verify")]
    BadSignature,
    #[error("the id_token's issuer is not the provider")]
    WrongIssuer,
    #[error("the id_token is not for this client")]
    WrongAudience,
    #[error("the id_token's authorized party is not this client")]
    WrongAuthorizedParty,
    #[error("the id_token has expired")]
    Expired,
    #[error("the id_token was issued in the future")]
    IssuedInTheFuture,
    #[error("the id_token's nonce is not this flow's")]
    WrongNonce,
    #[error("the id_token lacks a required claim")]
    MissingClaim,
}

impl IdTokenError {
    pub fn reason(self) -> &'static str {
        match self {
            IdTokenError::Malformed => "malformed",
            IdTokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            IdTokenError::UnknownKey => "unknown_key",
            IdTokenError::BadSignature => "bad_signature",
            IdTokenError::WrongIssuer => "wrong_issuer",
            IdTokenError::WrongAudience => "wrong_audience",
            IdTokenError::WrongAuthorizedParty => "wrong_azp",
            IdTokenError::Expired => "expired",
            IdTokenError::IssuedInTheFuture => "issued_in_the_future",
            IdTokenError::WrongNonce => "wrong_nonce",
            IdTokenError::MissingClaim => "missing_claim",
        }
    }

    /// Whether fetching the key set again might help (the provider rotated its keys).
    pub fn key_set_may_be_stale(self) -> bool {
        self == IdTokenError::UnknownKey
    }
}

/// The `alg` a token's header names, read without trusting anything else in it (so `none`,
/// which `jsonwebtoken` cannot even parse, is told apart from garbage).
fn header_alg(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(head.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_string)
}

/// Whether `jwk` may verify a signature made with `alg`.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(ka) = &jwk.common.key_algorithm
        && format!("{ka:?}") != format!("{alg:?}")
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => ec.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == EllipticCurve::Ed25519,
        _ => false,
    }
}

/// The claims of an accepted `id_token`.
pub type Claims = serde_json::Map<String, Value>;

/// Verifies an `id_token`: the algorithm (allowlisted, asymmetric), the key (by `kid`, of the
/// right type; without `kid` the set's only fitting key), the signature, then `iss`, `aud`,
/// `azp`, `exp` and `iat` against `now` with `leeway`, `nonce`, and a `sub`.
pub fn verify_id_token(
    token: &str,
    keys: &JwkSet,
    rules: &IdTokenRules<'_>,
    now: OffsetDateTime,
) -> Result<Claims, IdTokenError> {
    let raw_alg = header_alg(token).ok_or(IdTokenError::Malformed)?;
    let alg = safe_algorithm(&raw_alg).ok_or(IdTokenError::AlgorithmNotAllowed)?;
    if !rules.algorithms.contains(&alg) {
        return Err(IdTokenError::AlgorithmNotAllowed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if header.alg != alg {
        return Err(IdTokenError::Malformed);
    }
    let fitting: Vec<&Jwk> = keys.keys.iter().filter(|k| key_fits(k, alg)).collect();
    let jwk = match &header.kid {
        Some(kid) => fitting.iter().find(|k| k.common.key_id.as_deref() == Some(kid.as_str())).copied(),
        None if fitting.len() == 1 => fitting.first().copied(),
        None => None,
    }
    .ok_or(IdTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| IdTokenError::UnknownKey)?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdTokenError::AlgorithmNotAllowed,
        _ => IdTokenError::Malformed,
    })?;
    let claims = data.claims;
    check_claims(&claims, rules, now)?;
    Ok(claims)
}

fn check_claims(claims: &Claims, rules: &IdTokenRules<'_>, now: OffsetDateTime) -> Result<(), IdTokenError> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let issuer = match (rules.issuer.contains("{tenantid}"), text("tid")) {
        (true, Some(tid)) => rules.issuer.replace("{tenantid}", tid),
        (true, None) => return Err(IdTokenError::WrongIssuer),
        (false, _) => rules.issuer.to_string(),
    };
    if text("iss") != Some(issuer.as_str()) {
        return Err(IdTokenError::WrongIssuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::WrongAudience),
    };
    if !audiences.contains(&rules.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match text("azp") {
        Some(azp) if azp != rules.client_id => return Err(IdTokenError::WrongAuthorizedParty),
        None if audiences.len() > 1 => return Err(IdTokenError::WrongAuthorizedParty),
        _ => {}
    }
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_f64)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t as i64).ok())
            .ok_or(IdTokenError::MissingClaim)
    };
    if now > time("exp")? + rules.leeway {
        return Err(IdTokenError::Expired);
    }
    if time("iat")? > now + rules.leeway {
        return Err(IdTokenError::IssuedInTheFuture);
    }
    let nonce = text("nonce").ok_or(IdTokenError::WrongNonce)?;
    if !bool::from(nonce.as_bytes().ct_eq(rules.nonce.as_bytes())) {
        return Err(IdTokenError::WrongNonce);
    }
    match text("sub") {
        Some(s) if !s.is_empty() => Ok(()),
        _ => Err(IdTokenError::MissingClaim),
    }
}

/// Where a provider's answer keeps each thing we read (claim names; dotted paths reach into
/// objects: `data.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
}

impl Default for ClaimMap {
    /// The OpenID Connect standard claims.
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            email: Some("email".into()),
            email_verified: Some("email_verified".into()),
            name: Some("name".into()),
            username: Some("preferred_username".into()),
        }
    }
}

/// What a provider said about the person, read through a [`ClaimMap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub subject: String,
    pub email: Option<String>,
    /// `true` only when the provider said so (a JSON `true`, or Apple's `"true"`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub username: Option<String>,
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| cur.get(part))
}

/// A claim as text: a string, or a number (GitHub's and Discord's ids are numbers or strings).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a profile from claims or a user-info answer; `None` without a subject.
pub fn profile(v: &Value, map: &ClaimMap) -> Option<Profile> {
    let get = |p: &Option<String>| p.as_deref().and_then(|p| lookup(v, p)).and_then(as_text);
    let subject = lookup(v, &map.subject).and_then(as_text)?;
    let email_verified = map
        .email_verified
        .as_deref()
        .and_then(|p| lookup(v, p))
        .is_some_and(|v| matches!(v, Value::Bool(true)) || v.as_str() == Some("true"));
    Some(Profile {
        subject,
        email: get(&map.email),
        email_verified,
        name: get(&map.name),
        username: get(&map.username),
    })
}

/// GitHub's `/user/emails`: the primary address, verified or not (`None` without one).
pub fn github_primary_email(v: &Value) -> Option<(String, bool)> {
    v.as_array()?.iter().find(|e| e.get("primary") == Some(&Value::Bool(true))).and_then(|e| {
        let email = e.get("email")?.as_str()?.to_string();
        Some((email, e.get("verified") == Some(&Value::Bool(true))))
    })
}

/// Why Apple's client secret could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Apple private key is not a PKCS#8 P-256 key in PEM")]
pub struct AppleKeyError;

/// Apple's client secret: an ES256 JWT by the team (`iss`), for the client (`sub`), to
/// `https://appleid.apple.com`, signed with the key `key_id` (a PKCS#8 PEM from Apple), valid
/// for five minutes from `now`.
pub fn apple_client_secret(
    team_id: &str,
    key_id: &str,
    client_id: &str,
    private_key_pem: &str,
    now: OffsetDateTime,
) -> Result<String, AppleKeyError> {
    let key = EncodingKey::from_ec_pem(private_key_pem.as_bytes()).map_err(|_| AppleKeyError)?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key_id.to_string());
    let iat = now.unix_timestamp();
    let claims = serde_json::json!({
        "iss": team_id, "iat": iat, "exp": iat + 300, "aud": "https://appleid.apple.com", "sub": client_id,
    });
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| AppleKeyError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use serde_json::json;

    const ISS: &str = "https://idp.example";
    const CLIENT: &str = "rampart-client";
    const NONCE: &str = "n-0S6_WzA2Mj";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    struct Key {
        enc: EncodingKey,
        jwk: Jwk,
    }

    fn ed_key(seed: u8, kid: &str) -> Key {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let der = sk.to_pkcs8_der().unwrap();
        let x = URL_SAFE_NO_PAD.encode(sk.verifying_key().to_bytes());
        let jwk =
            serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig"})).unwrap();
        Key { enc: EncodingKey::from_ed_der(der.as_bytes()), jwk }
    }

    fn claims() -> Value {
        let t = now().unix_timestamp();
        json!({"iss": ISS, "aud": CLIENT, "sub": "248289761001", "exp": t + 300, "iat": t - 5, "nonce": NONCE,
               "email": "ada@example.com", "email_verified": true})
    }

    fn sign(key: &Key, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &key.enc).unwrap()
    }

    fn rules() -> IdTokenRules<'static> {
        IdTokenRules {
            issuer: ISS,
            client_id: CLIENT,
            nonce: NONCE,
            algorithms: &[Algorithm::EdDSA, Algorithm::RS256],
            leeway: Duration::seconds(60),
        }
    }

    fn set(keys: &[&Key]) -> JwkSet {
        JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() }
    }

    fn check(token: &str, keys: &JwkSet) -> Result<Claims, IdTokenError> {
        verify_id_token(token, keys, &rules(), now())
    }

    fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut c = claims();
        f(c.as_object_mut().unwrap());
        c
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let mut rng = rand::rngs::OsRng;
        let t = random_token(&mut rng);
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token(&mut rng));
    }

    #[test]
    fn a_good_token_is_accepted_and_its_claims_returned() {
        let k = ed_key(1, "k1");
        let other = ed_key(2, "k2");
        let c = check(&sign(&k, Some("k1"), &claims()), &set(&[&other, &k])).unwrap();
        assert_eq!(c["sub"], "248289761001");
        // Without kid, the only fitting key.
        assert!(check(&sign(&k, None, &claims()), &set(&[&k])).is_ok());
        // Several audiences with azp = us; and within the leeway.
        let t = now().unix_timestamp();
        let c = with(|m| {
            m.insert("aud".into(), json!([CLIENT, "other"]));
            m.insert("azp".into(), json!(CLIENT));
            m.insert("exp".into(), json!(t - 59));
            m.insert("iat".into(), json!(t + 59));
        });
        assert!(check(&sign(&k, Some("k1"), &c), &set(&[&k])).is_ok());
    }

    #[test]
    fn signature_key_and_algorithm_are_checked() {
        let k = ed_key(1, "k1");
        let forger = ed_key(3, "k1");
        // Another key under the same kid.
        assert_eq!(check(&sign(&forger, Some("k1"), &claims()), &set(&[&k])), Err(IdTokenError::BadSignature));
        // An unknown kid; no kid with two candidate keys.
        assert_eq!(check(&sign(&k, Some("k9"), &claims()), &set(&[&k])), Err(IdTokenError::UnknownKey));
        let k2 = ed_key(2, "k2");
        assert_eq!(check(&sign(&k, None, &claims()), &set(&[&k, &k2])), Err(IdTokenError::UnknownKey));
        // A tampered payload.
        let good = sign(&k, Some("k1"), &claims());
        let parts: Vec<&str> = good.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&with(|m| {
                m.insert("sub".into(), json!("admin"));
            }))
            .unwrap(),
        );
        assert_eq!(check(&format!("{}.{evil}.{}", parts[0], parts[2]), &set(&[&k])), Err(IdTokenError::BadSignature));
        // alg none, unsigned.
        let none_head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        for t in [format!("{none_head}.{body}."), format!("{none_head}.{body}")] {
            assert_eq!(check(&t, &set(&[&k])), Err(IdTokenError::AlgorithmNotAllowed));
        }
        // HS256 keyed with the public key's bytes (the classic confusion), and HS256 with a
        // symmetric JWK in the set: both refused before any verification.
        let x = URL_SAFE_NO_PAD.decode(serde_json::to_value(&k.jwk).unwrap()["x"].as_str().unwrap()).unwrap();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&x)).unwrap();
        assert_eq!(check(&hs, &set(&[&k])), Err(IdTokenError::AlgorithmNotAllowed));
        let oct: Jwk =
            serde_json::from_value(json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(&x), "kid": "k1"})).unwrap();
        assert_eq!(check(&hs, &JwkSet { keys: vec![oct.clone()] }), Err(IdTokenError::AlgorithmNotAllowed));
        // A safe algorithm outside this provider's allowlist.
        let r = IdTokenRules { algorithms: &[Algorithm::RS256], ..rules() };
        assert_eq!(verify_id_token(&good, &set(&[&k]), &r, now()), Err(IdTokenError::AlgorithmNotAllowed));
        // A key whose type does not fit the algorithm (an EdDSA token, an RSA-only set).
        let rsa: Jwk = serde_json::from_value(json!({"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "k1"})).unwrap();
        assert_eq!(check(&good, &JwkSet { keys: vec![rsa, oct] }), Err(IdTokenError::UnknownKey));
        // An encryption key is no signing key.
        let mut enc_key = k.jwk.clone();
        enc_key.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert_eq!(check(&good, &JwkSet { keys: vec![enc_key] }), Err(IdTokenError::UnknownKey));
        assert_eq!(check("not-a-jwt", &set(&[&k])), Err(IdTokenError::Malformed));
        assert!(safe_algorithm("none").is_none() && safe_algorithm("HS256").is_none());
        assert_eq!(safe_algorithm("ES256"), Some(Algorithm::ES256));
    }

    #[test]
    fn claims_are_checked_against_the_flow_and_the_clock() {
        let k = ed_key(1, "k1");
        let keys = set(&[&k]);
        let t = now().unix_timestamp();
        let cases: Vec<(Value, IdTokenError)> = vec![
            (
                with(|m| {
                    m.insert("iss".into(), json!("https://evil.example"));
                }),
                IdTokenError::WrongIssuer,
            ),
            (
                with(|m| {
                    m.remove("iss");
                }),
                IdTokenError::WrongIssuer,
            ),
            (
                with(|m| {
                    m.insert("aud".into(), json!("someone-else"));
                }),
                IdTokenError::WrongAudience,
            ),
            (
                with(|m| {
                    m.insert("aud".into(), json!([CLIENT, "other"]));
                }),
                IdTokenError::WrongAuthorizedParty,
            ),
            (
                with(|m| {
                    m.insert("azp".into(), json!("other"));
                }),
                IdTokenError::WrongAuthorizedParty,
            ),
            (
                with(|m| {
                    m.insert("exp".into(), json!(t - 61));
                }),
                IdTokenError::Expired,
            ),
            (
                with(|m| {
                    m.remove("exp");
                }),
                IdTokenError::MissingClaim,
            ),
            (
                with(|m| {
                    m.insert("iat".into(), json!(t + 61));
                }),
                IdTokenError::IssuedInTheFuture,
            ),
            (
                with(|m| {
                    m.remove("iat");
                }),
                IdTokenError::MissingClaim,
            ),
            (
                with(|m| {
                    m.insert("nonce".into(), json!("another-flow"));
                }),
                IdTokenError::WrongNonce,
            ),
            (
                with(|m| {
                    m.remove("nonce");
                }),
                IdTokenError::WrongNonce,
            ),
            (
                with(|m| {
                    m.insert("sub".into(), json!(""));
                }),
                IdTokenError::MissingClaim,
            ),
        ];
        for (c, want) in cases {
            assert_eq!(check(&sign(&k, Some("k1"), &c), &keys), Err(want), "{c}");
        }
    }

    #[test]
    fn a_tenant_issuer_takes_the_tokens_tid() {
        let k = ed_key(1, "k1");
        let r = IdTokenRules { issuer: "https://login.microsoftonline.com/{tenantid}/v2.0", ..rules() };
        let c = with(|m| {
            m.insert("iss".into(), json!("https://login.microsoftonline.com/t-42/v2.0"));
            m.insert("tid".into(), json!("t-42"));
        });
        assert!(verify_id_token(&sign(&k, Some("k1"), &c), &set(&[&k]), &r, now()).is_ok());
        let wrong = with(|m| {
            m.insert("iss".into(), json!("https://login.microsoftonline.com/t-42/v2.0"));
            m.insert("tid".into(), json!("t-43"));
        });
        assert_eq!(
            verify_id_token(&sign(&k, Some("k1"), &wrong), &set(&[&k]), &r, now()),
            Err(IdTokenError::WrongIssuer)
        );
    }

    #[test]
    fn profiles_are_read_through_the_mapping() {
        let p = profile(&claims(), &ClaimMap::default()).unwrap();
        assert_eq!(
            (p.subject.as_str(), p.email.as_deref(), p.email_verified),
            ("248289761001", Some("ada@example.com"), true)
        );
        // GitHub: a numeric id, no verified flag in /user.
        let gh = ClaimMap {
            subject: "id".into(),
            email: Some("email".into()),
            email_verified: None,
            name: Some("name".into()),
            username: Some("login".into()),
        };
        let p = profile(&json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}), &gh).unwrap();
        assert_eq!(
            (p.subject.as_str(), p.username.as_deref(), p.email, p.email_verified),
            ("583231", Some("octocat"), None, false)
        );
        // Apple's "true" as a string counts; "false" and a missing flag do not.
        for (v, want) in [(json!("true"), true), (json!("false"), false), (json!(1), false)] {
            let c = with(|m| {
                m.insert("email_verified".into(), v);
            });
            assert_eq!(profile(&c, &ClaimMap::default()).unwrap().email_verified, want);
        }
        // Dotted paths; no subject, no profile.
        let nested = ClaimMap { subject: "data.id".into(), ..ClaimMap::default() };
        assert_eq!(profile(&json!({"data": {"id": "7"}}), &nested).unwrap().subject, "7");
        assert!(profile(&json!({"email": "x@y"}), &ClaimMap::default()).is_none());
        let emails = json!([{"email": "a@x", "primary": false, "verified": true}, {"email": "b@x", "primary": true, "verified": false}]);
        assert_eq!(github_primary_email(&emails), Some(("b@x".to_string(), false)));
        assert_eq!(github_primary_email(&json!([])), None);
    }

    #[test]
    fn apples_client_secret_is_an_es256_jwt_it_can_verify() {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        let sk = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pem = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
        let secret = apple_client_secret("TEAM123456", "KEY1234567", "com.example.web", &pem, now()).unwrap();
        let h = jsonwebtoken::decode_header(&secret).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::ES256, Some("KEY1234567")));
        let point = sk.public_key().to_sec1_bytes();
        let jwk: Jwk = serde_json::from_value(json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}))
        .unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_exp = false;
        v.set_audience(&["https://appleid.apple.com"]);
        let c = jsonwebtoken::decode::<Value>(&secret, &DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap().claims;
        assert_eq!(c["iss"], "TEAM123456");
        assert_eq!(c["sub"], "com.example.web");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
        assert_eq!(apple_client_secret("T", "K", "C", "not a key", now()), Err(AppleKeyError));
    }
}
