//! Access-token signing keys at run time.
//!
//! The key ring (the current key for signing; every key whose tokens may still be alive, for
//! verifying and for the JWKS) lives in memory, so signing and verifying never touch the
//! database. It is refreshed from storage every [`REFRESH_INTERVAL`] (so a rotation made by
//! `rampart keys rotate-signing` or another instance reaches this one), at once when a token
//! names a `kid` the ring does not know (at most once per [`MISS_RELOAD_INTERVAL`]), and the
//! current key is rotated when it is `tokens.rotate_after_days` old (`TokensSettings::rotate_after`).

use crate::events::SecurityEvents;
use rampart_config::TokensSettings;
use rampart_domain::crypto::KeyRing as MasterKeyRing;
use rampart_domain::tokens::{
    self, AccessClaims, Expectation, PublicJwk, SigningAlg, SigningKey, TokenError, VerifyingKeys,
};
use rampart_domain::{Action, Actor, Clock, Outcome, Resource, Severity};
use rampart_store::{Store, StoreError, StoredSigningKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How often the ring is re-read from storage.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The least time between two reloads caused by unknown `kid`s (a flood of junk tokens must
/// not become a flood of queries).
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The keys in force at one moment.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub current_created_at: OffsetDateTime,
    pub verifying: VerifyingKeys,
    /// Public keys to publish: the current one first, then retired ones still in their window.
    pub jwks: Vec<PublicJwk>,
    /// Tokens this ring has verified, so a token used again is not verified again.
    verified: VerifiedTokens,
}

/// The most tokens a ring remembers as verified (each about 0.5 KiB); when full, expired ones
/// are swept, and if none are, new ones are verified every time.
pub const VERIFIED_TOKENS_MAX: usize = 20_000;

/// Access tokens already verified against one key ring, by the SHA-256 of the whole token,
/// with their claims. The signature and claims of a token cannot change, so only the time
/// checks run again on a hit ([`tokens::check_validity`]). The cache belongs to the ring:
/// every reload (at least every [`REFRESH_INTERVAL`]) and every rotation starts an empty one,
/// so a key that leaves the ring takes its tokens with it. Revocation is not this cache's
/// concern: the session behind every token is checked on each request.
#[derive(Default)]
struct VerifiedTokens(RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>);

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.len()).unwrap_or_default();
        write!(f, "VerifiedTokens({n})")
    }
}

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<AccessClaims>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(digest).cloned()
    }

    fn put(&self, digest: [u8; 32], claims: &Arc<AccessClaims>, now: OffsetDateTime) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= VERIFIED_TOKENS_MAX {
            let now = now.unix_timestamp();
            map.retain(|_, c| c.exp > now);
            if map.len() >= VERIFIED_TOKENS_MAX {
                return;
            }
        }
        map.insert(digest, claims.clone());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {reason}")]
    BadKey { kid: String, reason: String },
}

#[derive(Debug)]
pub struct SigningKeys {
    ring: RwLock<Arc<KeyRing>>,
    last_miss_reload: Mutex<Option<Instant>>,
    /// What every token must say; fixed by configuration, so built once, not per verify.
    expectation: Expectation,
    store: Store,
    master_key: Arc<MasterKeyRing>,
    config: TokensSettings,
    clock: Arc<dyn Clock>,
    events: SecurityEvents,
}

fn aad(kid: &str) -> Vec<u8> {
    rampart_store::sealed::aad::signing_key(kid)
}

impl SigningKeys {
    /// Loads the ring, generating the first key if there is none.
    pub async fn load(
        store: Store,
        master_key: Arc<MasterKeyRing>,
        config: TokensSettings,
        clock: Arc<dyn Clock>,
        events: SecurityEvents,
    ) -> Result<SigningKeys, SigningError> {
        let mut ring = read_ring(&store, &master_key, &config, clock.now()).await?;
        if ring.is_none() {
            match create(&store, &master_key, &config, clock.now(), None, &events, "startup", Actor::System).await {
                Ok(_) | Err(SigningError::Store(StoreError::Conflict(_))) => {}
                Err(e) => return Err(e),
            }
            ring = read_ring(&store, &master_key, &config, clock.now()).await?;
        }
        let Some(ring) = ring else {
            return Err(SigningError::BadKey {
                kid: "-".into(),
                reason: "no current signing key after creating one".into(),
            });
        };
        let expectation = config.expectation.clone();
        Ok(SigningKeys {
            ring: RwLock::new(Arc::new(ring)),
            last_miss_reload: Mutex::new(None),
            expectation,
            store,
            master_key,
            config,
            clock,
            events,
        })
    }

    /// The keys in force. Cheap: a read lock and an `Arc` clone.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn expectation(&self) -> &Expectation {
        &self.expectation
    }

    /// Signs access-token claims with the current key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        self.ring().current.sign(claims)
    }

    /// Verifies an access token against the ring; an unknown `kid` triggers one (rate-limited)
    /// reload first, in case another instance rotated.
    ///
    /// A token this ring verified before costs a hash and a lookup, not a signature check.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_shared(token).await.map(Arc::unwrap_or_clone)
    }

    /// [`SigningKeys::verify`], the claims shared with the cache: a token seen before costs no
    /// copy of its claims (the hot path of every bearer request).
    pub async fn verify_shared(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let now = self.clock.now();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let ring = self.ring();
        if let Some(claims) = ring.verified.get(&digest) {
            tokens::check_validity(&claims, &self.expectation, now)?;
            return Ok(claims);
        }
        let (ring, verdict) = match tokens::verify(token, &ring.verifying, &self.expectation, now) {
            Err(TokenError::UnknownKey) if self.may_reload_on_miss() => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "cannot reload signing keys");
                }
                let ring = self.ring();
                let verdict = tokens::verify(token, &ring.verifying, &self.expectation, now);
                (ring, verdict)
            }
            other => (ring, other),
        };
        let claims = Arc::new(verdict?);
        ring.verified.put(digest, &claims, now);
        Ok(claims)
    }

    fn may_reload_on_miss(&self) -> bool {
        let mut last = self.last_miss_reload.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= MISS_RELOAD_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Re-reads the ring from storage.
    pub async fn reload(&self) -> Result<(), SigningError> {
        if let Some(ring) = read_ring(&self.store, &self.master_key, &self.config, self.clock.now()).await? {
            *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        }
        Ok(())
    }

    /// Replaces the current key with a new one; the old one stays published (and accepted)
    /// until the tokens it signed have expired. Returns the new key id.
    pub async fn rotate(&self, via: &'static str) -> Result<String, SigningError> {
        self.rotate_by(via, Actor::System).await
    }

    /// [`SigningKeys::rotate`] on behalf of `actor` (an administrator in the console), who the
    /// event names.
    pub async fn rotate_by(&self, via: &'static str, actor: Actor) -> Result<String, SigningError> {
        let old = self.ring().current.kid().to_string();
        let now = self.clock.now();
        let kid =
            create(&self.store, &self.master_key, &self.config, now, Some(&old), &self.events, via, actor).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// One tick of the background task: rotate when the current key is due, else reload.
    pub async fn tick(&self) -> Result<(), SigningError> {
        let age = self.clock.now() - self.ring().current_created_at;
        if self.config.rotate_after.is_some_and(|after| age >= after) {
            match self.rotate("schedule").await {
                Ok(kid) => tracing::info!(kid, "rotated the access-token signing key on schedule"),
                Err(SigningError::Store(StoreError::Conflict(_))) => self.reload().await?,
                Err(e) => return Err(e),
            }
            Ok(())
        } else {
            self.reload().await
        }
    }
}

/// Generates a key, seals it, and stores it as current (replacing `replacing`); the event
/// names `actor` and says `via` which door.
#[allow(clippy::too_many_arguments)] // the signing state's parts, passed apart to be usable before it exists
async fn create(
    store: &Store,
    master_key: &MasterKeyRing,
    config: &TokensSettings,
    now: OffsetDateTime,
    replacing: Option<&str>,
    events: &SecurityEvents,
    via: &'static str,
    actor: Actor,
) -> Result<String, SigningError> {
    let key = SigningKey::generate(config.algorithm, &mut rand::rngs::OsRng);
    let kid = key.kid().to_string();
    let stored = StoredSigningKey {
        kid: kid.clone(),
        alg: key.alg().as_str().to_string(),
        private_sealed: master_key.seal(key.private_bytes(), &aad(&kid), &mut rand::rngs::OsRng),
        public_jwk: serde_json::to_value(key.jwk()).unwrap_or_default(),
        created_at: now,
        retired_at: None,
    };
    let action = if replacing.is_some() { Action::SigningKeyRotated } else { Action::SigningKeyCreated };
    let event = events
        .event(action, Outcome::Success)
        .actor(actor)
        .severity(if replacing.is_some() { Severity::Warning } else { Severity::Info })
        .resource(Resource::new("signing_key", &kid))
        .details(serde_json::json!({ "alg": key.alg().as_str(), "replaced": replacing, "via": via }));
    store.rotate_signing_key(&stored, replacing, &event).await?;
    events.observed(&event);
    Ok(kid)
}

/// Reads and opens every key still in its window. `None` when there is no current key yet.
async fn read_ring(
    store: &Store,
    master_key: &MasterKeyRing,
    config: &TokensSettings,
    now: OffsetDateTime,
) -> Result<Option<KeyRing>, SigningError> {
    let window = config.key_window;
    let rows = store.signing_keys(now - window).await?;
    let mut current = None;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let bad = |reason: String| SigningError::BadKey { kid: row.kid.clone(), reason };
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| bad(format!("unknown algorithm {:?}", row.alg)))?;
        let private = zeroize::Zeroizing::new(
            master_key.open(&row.private_sealed, &aad(&row.kid)).map_err(|e| bad(e.to_string()))?,
        );
        let key = SigningKey::from_private(alg, &private).map_err(|e| bad(e.to_string()))?;
        if key.kid() != row.kid {
            return Err(bad("stored key does not match its kid".into()));
        }
        if row.retired_at.is_none() {
            current = Some((key.clone(), row.created_at));
        }
        keys.push(key);
    }
    let Some((current, current_created_at)) = current else { return Ok(None) };
    let mut jwks = vec![current.jwk().clone()];
    jwks.extend(keys.iter().filter(|k| k.kid() != current.kid()).map(|k| k.jwk().clone()));
    Ok(Some(KeyRing {
        verifying: VerifyingKeys::from_signing_keys(&keys),
        current,
        current_created_at,
        jwks,
        verified: VerifiedTokens::default(),
    }))
}
