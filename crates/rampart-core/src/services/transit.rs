//! Transit encryption as a service, Vault-compatible in paths and shapes: named keys with
//! versions (sealed with the master key), encrypt/decrypt/rewrap with `batch_input` and
//! derivation contexts, data keys, HMAC, and Ed25519 signatures. Key management is audited;
//! every use is counted in the metrics (by key and operation), not written to the audit log
//! (that would be one event per field an application reads).

use crate::App;
use crate::error::ServiceError;
use crate::events::RequestContext;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rampart_domain::transit::{self, KeyType, MATERIAL_LEN, NONCE_LEN, TransitError};
use rampart_domain::{Action, Actor, Outcome, Resource, Severity};
use rampart_store::{StoredTransitKey, TransitVersion};
use rand::RngCore as _;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroize as _;

/// Why a transit request failed: a status and a message for Vault's `{"errors": [...]}`, and a
/// stable code beside it.
#[derive(Debug)]
pub enum TransitFailure {
    /// 400 with a stable code.
    BadRequest(&'static str, String),
    /// 404: no such key.
    NoKey,
    Service(ServiceError),
}

impl From<ServiceError> for TransitFailure {
    fn from(e: ServiceError) -> Self {
        TransitFailure::Service(e)
    }
}

impl From<rampart_store::StoreError> for TransitFailure {
    fn from(e: rampart_store::StoreError) -> Self {
        TransitFailure::Service(e.into())
    }
}

impl From<TransitError> for TransitFailure {
    fn from(e: TransitError) -> Self {
        TransitFailure::BadRequest(e.code(), e.to_string())
    }
}

type Result<T> = std::result::Result<T, TransitFailure>;

/// A key name: 1 to 64 of `a-z 0-9 _ - .`, so that scopes can name it (`transit:encrypt:<name>`).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(TransitFailure::BadRequest("invalid_key_name", "a key name is 1 to 64 of a-z 0-9 _ - .".into()))
    }
}

fn aad(name: &str, version: i32) -> Vec<u8> {
    rampart_store::sealed::aad::transit(name, version)
}

fn seal(state: &App, name: &str, version: i32, material: &[u8]) -> String {
    state.master_key.seal(material, &aad(name, version), &mut rand::rngs::OsRng)
}

fn open(state: &App, name: &str, v: &TransitVersion) -> Result<Vec<u8>> {
    state.master_key.open(&v.material, &aad(name, v.version)).map_err(|_| {
        TransitFailure::Service(ServiceError::Internal("a transit key cannot be opened with this master key".into()))
    })
}

fn new_material() -> [u8; MATERIAL_LEN] {
    let mut m = [0u8; MATERIAL_LEN];
    rand::rngs::OsRng.fill_bytes(&mut m);
    m
}

/// A key and its versions, as `GET /v1/transit/keys/{name}` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub key: StoredTransitKey,
    /// (version, created at, Ed25519 public key).
    pub versions: Vec<(i32, time::OffsetDateTime, Option<String>)>,
}

impl KeyInfo {
    pub fn kind(&self) -> KeyType {
        KeyType::parse(&self.key.kind).unwrap_or(KeyType::Aes256Gcm96)
    }
}

async fn key(state: &App, name: &str) -> Result<(StoredTransitKey, KeyType)> {
    check_name(name)?;
    let key = state.store.transit_key(name).await?.ok_or(TransitFailure::NoKey)?;
    let kind = KeyType::parse(&key.kind)
        .ok_or_else(|| TransitFailure::Service(ServiceError::Internal("unknown transit key type".into())))?;
    Ok((key, kind))
}

/// How long a cached transit key is trusted when no change notice arrives (another instance's
/// notices are lost while the PostgreSQL bus is down): the API-key cache's bound.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Material of one version, wiped when the last holder lets go.
type Material = Arc<zeroize::Zeroizing<Vec<u8>>>;

/// Transit keys by name with the versions opened so far, so a request needs no database read
/// and no unsealing once a key is warm. An entry is kept only while the store's transit epoch
/// has not moved (every create, rotate, configure and delete moves it, here at commit and on
/// other instances when its notice arrives) and for at most [`CACHE_TTL`]. Versions are
/// immutable once made, so an opened one stays right for the entry's life.
#[derive(Default)]
pub struct TransitCache {
    keys: std::sync::Mutex<HashMap<String, Arc<CachedKey>>>,
}

impl std::fmt::Debug for TransitCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitCache").finish_non_exhaustive()
    }
}

struct CachedKey {
    epoch: u64,
    at: std::time::Instant,
    key: StoredTransitKey,
    kind: KeyType,
    opened: std::sync::Mutex<HashMap<i32, Material>>,
}

/// Keys kept before the cache starts over.
const CACHE_CAP: usize = 10_000;

impl TransitCache {
    fn get(&self, name: &str, epoch: u64) -> Option<Arc<CachedKey>> {
        let keys = self.keys.lock().ok()?;
        keys.get(name).filter(|c| c.epoch == epoch && c.at.elapsed() < CACHE_TTL).cloned()
    }

    fn put(&self, name: &str, c: CachedKey) -> Arc<CachedKey> {
        let c = Arc::new(c);
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= CACHE_CAP {
                keys.clear();
            }
            keys.insert(name.to_string(), Arc::clone(&c));
        }
        c
    }
}

/// A key's versions opened for one request: each version is read and unsealed once, however
/// many items of a batch use it, and kept in the [`TransitCache`] for the next requests.
struct Ring<'a> {
    state: &'a App,
    key: StoredTransitKey,
    kind: KeyType,
    cached: Arc<CachedKey>,
    opened: HashMap<i32, Material>,
}

impl<'a> Ring<'a> {
    async fn load(state: &'a App, name: &str) -> Result<Ring<'a>> {
        check_name(name)?;
        // The epoch is read before the key: a change committed after the read moves it, so
        // what was read is never kept past that change.
        let epoch = state.store.transit_epoch();
        let cached = match state.transit.get(name, epoch) {
            Some(c) => c,
            None => {
                let (key, kind) = key(state, name).await?;
                let entry = CachedKey {
                    epoch,
                    at: std::time::Instant::now(),
                    key,
                    kind,
                    opened: std::sync::Mutex::new(HashMap::new()),
                };
                state.transit.put(name, entry)
            }
        };
        Ok(Ring { state, key: cached.key.clone(), kind: cached.kind, cached, opened: HashMap::new() })
    }

    /// The material of `version` (`None`: the latest); the inner error is a version the key
    /// refuses, the outer one a failure of the service.
    async fn material(&mut self, version: Option<i32>) -> Result<std::result::Result<(i32, &[u8]), TransitError>> {
        let version = version.unwrap_or(self.key.latest_version);
        if version < 1 || version > self.key.latest_version {
            return Ok(Err(TransitError::NoSuchVersion));
        }
        if version < self.key.min_decryption_version {
            return Ok(Err(TransitError::VersionTooOld));
        }
        if !self.opened.contains_key(&version) {
            let kept = self.cached.opened.lock().ok().and_then(|m| m.get(&version).cloned());
            let material = match kept {
                Some(m) => m,
                None => {
                    let Some(v) = self.state.store.transit_version(&self.key.name, version).await? else {
                        return Ok(Err(TransitError::NoSuchVersion));
                    };
                    let m: Material = Arc::new(zeroize::Zeroizing::new(open(self.state, &self.key.name, &v)?));
                    if let Ok(mut opened) = self.cached.opened.lock() {
                        opened.insert(version, Arc::clone(&m));
                    }
                    m
                }
            };
            self.opened.insert(version, material);
        }
        Ok(Ok((version, self.opened.get(&version).map_or(&[][..], |m| m.as_slice()))))
    }

    /// Opens one ciphertext (`vault:v<N>:…`) with its version and the item's context.
    async fn open_item(&mut self, item: &Item) -> Result<std::result::Result<Vec<u8>, TransitError>> {
        let (version, body) = match transit::unarmor(item.ciphertext.as_deref().unwrap_or_default()) {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        let context = match context_of(item) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let (kind, derived) = (self.kind, self.key.derived);
        Ok(match self.material(Some(i32::try_from(version).unwrap_or(i32::MAX))).await? {
            Ok((_, m)) => transit::decrypt(kind, m, derived, context.as_deref(), &body),
            Err(e) => Err(e),
        })
    }
}

pub async fn read(state: &App, name: &str) -> Result<KeyInfo> {
    let (key, kind) = key(state, name).await?;
    let mut versions = Vec::new();
    for v in state.store.transit_versions(name).await? {
        let public = if kind.signs() { transit::public_key(kind, &open(state, name, &v)?) } else { None };
        versions.push((v.version, v.created_at, public));
    }
    Ok(KeyInfo { key, versions })
}

fn management_event(
    state: &App,
    ctx: &RequestContext,
    actor: Actor,
    action: Action,
    name: &str,
) -> rampart_domain::SecurityEvent {
    ctx.event(&state.events, action, Outcome::Success)
        .actor(actor)
        .severity(if action == Action::TransitKeyDeleted { Severity::Critical } else { Severity::Warning })
        .resource(Resource::new("transit_key", name))
}

/// Creates a key (`type` default `aes256-gcm96`). Creating one that exists changes nothing and
/// answers it, as Vault does.
pub async fn create(
    state: &App,
    ctx: &RequestContext,
    actor: Actor,
    name: &str,
    kind: Option<&str>,
    derived: bool,
) -> Result<KeyInfo> {
    check_name(name)?;
    let kind = match kind {
        None => KeyType::Aes256Gcm96,
        Some(k) => KeyType::parse(k).ok_or_else(|| {
            TransitFailure::BadRequest(
                "invalid_key_type",
                format!("unknown key type {k:?}: aes256-gcm96, chacha20-poly1305, ed25519 or hmac"),
            )
        })?,
    };
    if derived && !kind.encrypts() {
        return Err(TransitFailure::BadRequest("unsupported_operation", "only encryption keys can be derived".into()));
    }
    if state.store.transit_key(name).await?.is_some() {
        return read(state, name).await;
    }
    let now = state.clock.now();
    let key = StoredTransitKey {
        name: name.to_string(),
        kind: kind.as_str().to_string(),
        derived,
        deletion_allowed: false,
        min_decryption_version: 1,
        latest_version: 1,
        created_by: actor.id(),
        created_at: now,
        updated_at: now,
    };
    let mut m = new_material();
    let sealed = seal(state, name, 1, &m);
    m.zeroize();
    let ev = management_event(state, ctx, actor, Action::TransitKeyCreated, name)
        .details(serde_json::json!({ "type": kind.as_str(), "derived": derived }));
    match state.store.create_transit_key(&key, &sealed, &ev).await {
        Ok(()) => state.events.observed(&ev),
        Err(rampart_store::StoreError::Conflict(_)) => {} // created meanwhile: answer it
        Err(e) => return Err(e.into()),
    }
    read(state, name).await
}

pub async fn rotate(state: &App, ctx: &RequestContext, actor: Actor, name: &str) -> Result<KeyInfo> {
    check_name(name)?;
    let ev = management_event(state, ctx, actor, Action::TransitKeyRotated, name);
    let version = state
        .store
        .rotate_transit_key(
            name,
            |version| {
                let mut m = new_material();
                let sealed = seal(state, name, version, &m);
                m.zeroize();
                sealed
            },
            state.clock.now(),
            &ev,
        )
        .await?
        .ok_or(TransitFailure::NoKey)?;
    state.events.observed(&ev.details(serde_json::json!({ "version": version })));
    read(state, name).await
}

pub async fn configure(
    state: &App,
    ctx: &RequestContext,
    actor: Actor,
    name: &str,
    min_decryption_version: Option<i64>,
    deletion_allowed: Option<bool>,
) -> Result<KeyInfo> {
    let (key, _) = key(state, name).await?;
    let min = match min_decryption_version {
        None => None,
        Some(v) if v >= 1 && v <= i64::from(key.latest_version) => Some(v as i32),
        Some(_) => {
            return Err(TransitFailure::BadRequest(
                "invalid_key_version",
                format!("min_decryption_version must be between 1 and the latest version ({})", key.latest_version),
            ));
        }
    };
    let ev = management_event(state, ctx, actor, Action::TransitKeyConfigured, name)
        .details(serde_json::json!({ "min_decryption_version": min, "deletion_allowed": deletion_allowed }));
    if !state.store.configure_transit_key(name, min, deletion_allowed, state.clock.now(), &ev).await? {
        return Err(TransitFailure::NoKey);
    }
    state.events.observed(&ev);
    read(state, name).await
}

pub async fn delete(state: &App, ctx: &RequestContext, actor: Actor, name: &str) -> Result<()> {
    check_name(name)?;
    let ev = management_event(state, ctx, actor, Action::TransitKeyDeleted, name);
    match state.store.delete_transit_key(name, &ev).await? {
        None => Err(TransitFailure::NoKey),
        Some(false) => {
            Err(TransitFailure::BadRequest("deletion_not_allowed", "deletion is not allowed for this key".into()))
        }
        Some(true) => {
            state.events.observed(&ev);
            Ok(())
        }
    }
}

/// One item of an encrypt, decrypt or rewrap batch (base64 fields as sent).
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub plaintext: Option<String>,
    pub ciphertext: Option<String>,
    pub context: Option<String>,
}

fn context_of(item: &Item) -> std::result::Result<Option<Vec<u8>>, TransitError> {
    item.context.as_deref().map(|c| transit::decode_b64(c, "context")).transpose()
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Encrypts each item under the latest version: a ciphertext or an error per item.
pub async fn encrypt(
    state: &App,
    name: &str,
    items: &[Item],
) -> Result<Vec<std::result::Result<String, TransitError>>> {
    let mut ring = Ring::load(state, name).await?;
    let (kind, derived) = (ring.kind, ring.key.derived);
    if !kind.encrypts() {
        return Err(TransitError::Unsupported(kind.as_str()).into());
    }
    let (version, m) = ring.material(None).await??;
    let out = items
        .iter()
        .map(|item| {
            let plaintext = transit::decode_b64(item.plaintext.as_deref().unwrap_or_default(), "plaintext")?;
            let body = transit::encrypt(kind, m, derived, context_of(item)?.as_deref(), nonce(), &plaintext)?;
            Ok(transit::armor(version as u32, &body))
        })
        .collect();
    state.metrics.observe_transit(name, "encrypt", items.len());
    Ok(out)
}

/// Decrypts each item: its plaintext (base64) or an error.
pub async fn decrypt(
    state: &App,
    name: &str,
    items: &[Item],
) -> Result<Vec<std::result::Result<String, TransitError>>> {
    let mut ring = Ring::load(state, name).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(ring.open_item(item).await?.map(|p| STANDARD.encode(p)));
    }
    state.metrics.observe_transit(name, "decrypt", items.len());
    Ok(out)
}

/// Decrypts each item and encrypts it again under the latest version.
pub async fn rewrap(state: &App, name: &str, items: &[Item]) -> Result<Vec<std::result::Result<String, TransitError>>> {
    let mut ring = Ring::load(state, name).await?;
    let (kind, derived) = (ring.kind, ring.key.derived);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let result = match ring.open_item(item).await? {
            Ok(mut plain) => {
                let (latest, m) = ring.material(None).await??;
                let sealed = context_of(item).and_then(|ctx| {
                    transit::encrypt(kind, m, derived, ctx.as_deref(), nonce(), &plain)
                        .map(|body| transit::armor(latest as u32, &body))
                });
                plain.zeroize();
                sealed
            }
            Err(e) => Err(e),
        };
        out.push(result);
    }
    state.metrics.observe_transit(name, "rewrap", items.len());
    Ok(out)
}

/// A fresh data key of `bits` (128, 256 or 512), encrypted under the key; with its plaintext
/// (base64) unless `wrapped`.
pub async fn datakey(
    state: &App,
    name: &str,
    wrapped: bool,
    bits: u32,
    context: Option<String>,
) -> Result<(Option<String>, String)> {
    if !matches!(bits, 128 | 256 | 512) {
        return Err(TransitFailure::BadRequest("invalid_bits", "bits must be 128, 256 or 512".into()));
    }
    let mut data = vec![0u8; bits as usize / 8];
    rand::rngs::OsRng.fill_bytes(&mut data);
    let item = Item { plaintext: Some(STANDARD.encode(&data)), ciphertext: None, context };
    let ciphertext = encrypt(state, name, std::slice::from_ref(&item)).await?.remove(0)?;
    let plaintext = (!wrapped).then(|| STANDARD.encode(&data));
    data.zeroize();
    Ok((plaintext, ciphertext))
}

/// `vault:v<N>:<base64 HMAC>` of `input` (base64).
pub async fn hmac(state: &App, name: &str, input: &str, algorithm: &str, version: Option<i32>) -> Result<String> {
    let mut ring = Ring::load(state, name).await?;
    let input = transit::decode_b64(input, "input")?;
    let kind = ring.kind;
    let (version, m) = ring.material(version).await??;
    let mac = transit::hmac(kind, m, algorithm, &input)?;
    state.metrics.observe_transit(name, "hmac", 1);
    Ok(transit::armor(version as u32, &mac))
}

/// `vault:v<N>:<base64 signature>` of `input` (base64).
pub async fn sign(state: &App, name: &str, input: &str) -> Result<String> {
    let mut ring = Ring::load(state, name).await?;
    let input = transit::decode_b64(input, "input")?;
    let kind = ring.kind;
    let (version, m) = ring.material(None).await??;
    let sig = transit::sign(kind, m, &input)?;
    state.metrics.observe_transit(name, "sign", 1);
    Ok(transit::armor(version as u32, &sig))
}

/// Whether `signature` (`vault:v<N>:…`) signs `input` (base64).
pub async fn verify(state: &App, name: &str, input: &str, signature: &str) -> Result<bool> {
    let mut ring = Ring::load(state, name).await?;
    let input = transit::decode_b64(input, "input")?;
    let (version, sig) = transit::unarmor(signature)?;
    let kind = ring.kind;
    let (_, m) = ring.material(Some(i32::try_from(version).unwrap_or(i32::MAX))).await??;
    let valid = transit::verify(kind, m, &input, &sig)?;
    state.metrics.observe_transit(name, "verify", 1);
    Ok(valid)
}
