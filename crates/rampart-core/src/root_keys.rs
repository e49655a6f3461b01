//! The keys Rampart once derived from the master key on every start, now kept sealed in the
//! store (`root_keys`, migration 0021) so that their values outlive a master-key rotation: the
//! audit chain's link and checkpoint keys (old checkpoints keep verifying), the personal-data
//! key (person keys stay unwrappable, address tags keep matching), the backup-code
//! hashing key (stored codes keep working), the e-mail login code key, and the login-throttle
//! and CSRF keys. A purpose seen for the first time is stored as the current master key's
//! derivation, exactly what every start derived before the table existed.

use crate::authz::{AuthKeys, CSRF_KEY_PURPOSE, THROTTLE_KEY_PURPOSE};
use rampart_domain::KeyRing;
use rampart_domain::audit::{AuditKeys, CHAIN_KEY_PURPOSE, CHECKPOINT_KEY_PURPOSE, PERSONAL_KEY_PURPOSE};
use rampart_store::{Store, StoreError, sealed};
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub const BACKUP_CODES_PURPOSE: &str = "rampart backup codes v1";
pub const EMAIL_CODES_PURPOSE: &str = "rampart email login codes v1";

/// Every purpose kept, in the order they are loaded.
pub const PURPOSES: &[&str] = &[
    CHAIN_KEY_PURPOSE,
    CHECKPOINT_KEY_PURPOSE,
    PERSONAL_KEY_PURPOSE,
    BACKUP_CODES_PURPOSE,
    EMAIL_CODES_PURPOSE,
    THROTTLE_KEY_PURPOSE,
    CSRF_KEY_PURPOSE,
];

/// The keys the one-time codes are hashed with.
#[derive(Clone)]
pub struct CodeKeys {
    pub backup_codes: Zeroizing<[u8; 32]>,
    pub email_codes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKeys([redacted])")
    }
}

/// Every root key, opened.
#[derive(Debug)]
pub struct RootKeys {
    pub audit: AuditKeys,
    pub auth: AuthKeys,
    pub codes: CodeKeys,
}

#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("root key {purpose:?} does not open: {reason}")]
    Open { purpose: String, reason: String },
}

/// Reads every root key, storing those missing (see the module docs).
pub async fn load(store: &Store, ring: &KeyRing, now: OffsetDateTime) -> Result<RootKeys, RootKeyError> {
    let mut keys = Vec::with_capacity(PURPOSES.len());
    for purpose in PURPOSES {
        keys.push(one(store, ring, purpose, now).await?);
    }
    let [chain, checkpoint, personal, backup, email, throttle, csrf] = <[_; 7]>::try_from(keys)
        .map_err(|_| RootKeyError::Open { purpose: "*".into(), reason: "wrong number of root keys".into() })?;
    Ok(RootKeys {
        // Checkpoints name the master key the checkpoint key was first derived from.
        audit: AuditKeys::from_keys(*chain.0, *checkpoint.0, *personal.0, checkpoint.1),
        auth: AuthKeys::from_keys(*throttle.0, *csrf.0),
        codes: CodeKeys { backup_codes: backup.0, email_codes: email.0 },
    })
}

async fn one(
    store: &Store,
    ring: &KeyRing,
    purpose: &str,
    now: OffsetDateTime,
) -> Result<(Zeroizing<[u8; 32]>, String), RootKeyError> {
    let aad = sealed::aad::root_key(purpose);
    let derived = Zeroizing::new(ring.current().derive(purpose));
    let fresh = ring.seal(derived.as_ref(), &aad, &mut rand::rngs::OsRng);
    let stored = store.root_key_or_insert(purpose, &fresh, ring.key_id(), now).await?;
    let bad = |reason: String| RootKeyError::Open { purpose: purpose.to_string(), reason };
    let plain = Zeroizing::new(ring.open(&stored.sealed, &aad).map_err(|e| bad(e.to_string()))?);
    let key = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| bad("not 32 bytes".into()))?;
    Ok((Zeroizing::new(key), stored.origin_key_id))
}

/// Refuses to start when a stored value is sealed under a master key the ring lacks: it would
/// fail later, one request at a time. Names the key ids and where their values are.
pub async fn check_every_value_opens(store: &Store, ring: &KeyRing) -> Result<(), String> {
    let counts = store.sealed_counts().await.map_err(|e| e.to_string())?;
    let missing: Vec<String> = counts
        .iter()
        .filter(|c| !ring.contains(&c.key_id))
        .map(|c| format!("{} in {} under master key {}", c.count, c.column, c.key_id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "values are sealed under master keys not in the key ring ({}): put those keys back in \
         RAMPART_MASTER_KEYS (after the current key), run `rampart master-key rotate` until it reports \
         nothing left under older keys, and only then remove them",
        missing.join(", ")
    ))
}
