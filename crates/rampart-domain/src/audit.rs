//! The audit log's rules beyond the canonical event encoding (which lives with
//! [`SecurityEvent`]): the keyed hash chain, signed checkpoints, the chain's origin, the query
//! filter, and the export encodings (JSON Lines, CSV, and the Elastic Common Schema document
//! used by the SIEM output).
//!
//! - A *link* is an HMAC-SHA256, under a key derived from the master key ([`AuditKeys`]), over
//!   the previous link, the MAC of the newest checkpoint signed before the event, and the event.
//!   Someone who can write the database but does not hold the master key cannot compute a link:
//!   editing, deleting, inserting or re-ordering an event breaks the chain at that event, and so
//!   does deleting a checkpoint that events were appended after.
//! - A *checkpoint* vouches for one link `(seq, hash)`, carries the MAC of the checkpoint before
//!   it (a missing or re-ordered checkpoint shows), and the time it was signed; a retention
//!   purge may cut the log at one, which then anchors the remaining chain.
//! - The chain's *origin* records where the events written before the keyed chain existed end
//!   (they keep their unkeyed SHA-256 links) and that link, under a MAC, sealed once by the
//!   migration that introduced the keyed chain: nothing else ever links or re-links an event.

use crate::crypto::MasterKey;
use crate::event::SecurityEvent;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

/// The purpose string the checkpoint key is derived under (`MasterKey::derive`).
pub const CHECKPOINT_KEY_PURPOSE: &str = "audit-checkpoint-v1";
/// The purpose string the chain's link key is derived under.
pub const CHAIN_KEY_PURPOSE: &str = "audit-chain-v1";
/// The purpose string of the key person keys are wrapped under and addresses tagged with
/// ([`crate::personal`]).
pub const PERSONAL_KEY_PURPOSE: &str = "audit-personal-v1";
/// The MAC "before the first checkpoint" that links and the first checkpoint carry.
pub const NO_CHECKPOINT: [u8; 32] = [0; 32];

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; the error arm cannot happen with 32 bytes.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return [0; 32] };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn hmac_verify(key: &[u8; 32], parts: &[&[u8]], tag: &[u8; 32]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return false };
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(tag).is_ok()
}

/// The audit log's keys, derived from the master key: one for the chain's links, one for
/// checkpoints and the origin. Only the store holds them (it links every append).
#[derive(Clone)]
pub struct AuditKeys {
    chain: zeroize::Zeroizing<[u8; 32]>,
    checkpoint: zeroize::Zeroizing<[u8; 32]>,
    personal: zeroize::Zeroizing<[u8; 32]>,
    key_id: String,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl AuditKeys {
    pub fn derive(master: &MasterKey) -> AuditKeys {
        AuditKeys {
            chain: zeroize::Zeroizing::new(master.derive(CHAIN_KEY_PURPOSE)),
            checkpoint: zeroize::Zeroizing::new(master.derive(CHECKPOINT_KEY_PURPOSE)),
            personal: zeroize::Zeroizing::new(master.derive(PERSONAL_KEY_PURPOSE)),
            key_id: master.key_id(),
        }
    }

    /// Keys kept from an earlier derivation (the store keeps them sealed, so they outlive the
    /// master key they were derived from): `key_id` names that master key, as checkpoints do.
    pub fn from_keys(chain: [u8; 32], checkpoint: [u8; 32], personal: [u8; 32], key_id: String) -> AuditKeys {
        AuditKeys {
            chain: zeroize::Zeroizing::new(chain),
            checkpoint: zeroize::Zeroizing::new(checkpoint),
            personal: zeroize::Zeroizing::new(personal),
            key_id,
        }
    }

    /// The id of the master key these were derived from (stored with checkpoints).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A person key wrapped for storage ([`crate::personal::wrap_key`]).
    pub fn wrap_person_key(
        &self,
        user: uuid::Uuid,
        key: &crate::personal::PersonKey,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Vec<u8> {
        crate::personal::wrap_key(&self.personal, user, key, rng)
    }

    pub fn unwrap_person_key(&self, user: uuid::Uuid, wrapped: &[u8]) -> Option<crate::personal::PersonKey> {
        crate::personal::unwrap_key(&self.personal, user, wrapped)
    }

    /// The searchable tag of a sealed event's address: an HMAC, so the table holds no address,
    /// yet `?ip=` finds the events.
    pub fn ip_tag(&self, ip: std::net::IpAddr) -> [u8; 32] {
        hmac(&self.personal, &[b"rampart.audit.ip.v1\n", ip.to_string().as_bytes()])
    }

    /// An event's link: HMAC over the previous link, the newest checkpoint's MAC (or
    /// [`NO_CHECKPOINT`]) and the event's canonical encoding.
    pub fn link(&self, prev: &[u8; 32], checkpoint_mac: &[u8; 32], event: &SecurityEvent) -> [u8; 32] {
        hmac(&self.chain, &[b"rampart.audit.link.v2\n", prev, checkpoint_mac, &event.canonical()])
    }

    /// Signs `(seq, hash)` at `signed_at` (microsecond precision, what storage keeps), chained to
    /// the previous checkpoint's MAC.
    pub fn sign_checkpoint(
        &self,
        seq: i64,
        hash: [u8; 32],
        prev_mac: [u8; 32],
        signed_at: OffsetDateTime,
    ) -> Checkpoint {
        Checkpoint::sign(&self.checkpoint, &self.key_id, seq, hash, Some(prev_mac), signed_at)
    }

    /// Whether a checkpoint was signed under these keys (a checkpoint of another master key
    /// cannot be vouched for).
    pub fn checkpoint_valid(&self, cp: &Checkpoint) -> bool {
        cp.key_id == self.key_id && cp.verify(&self.checkpoint)
    }

    /// Seals the chain's origin: where the unkeyed (pre-HMAC) links end, and that link.
    pub fn seal_origin(&self, legacy_through: Option<i64>, legacy_head: [u8; 32]) -> ChainOrigin {
        let mac = hmac(&self.checkpoint, &[&ChainOrigin::message(legacy_through, &legacy_head)]);
        ChainOrigin { legacy_through, legacy_head, key_id: self.key_id.clone(), mac }
    }

    pub fn origin_valid(&self, o: &ChainOrigin) -> bool {
        o.key_id == self.key_id
            && hmac_verify(&self.checkpoint, &[&ChainOrigin::message(o.legacy_through, &o.legacy_head)], &o.mac)
    }
}

/// Where the chain's unkeyed links end (see the module docs), sealed under the checkpoint key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOrigin {
    /// The last event with an unkeyed link; `None` when the log was empty.
    pub legacy_through: Option<i64>,
    /// That event's link (the chain's genesis when there was none).
    pub legacy_head: [u8; 32],
    pub key_id: String,
    pub mac: [u8; 32],
}

impl ChainOrigin {
    fn message(through: Option<i64>, head: &[u8; 32]) -> Vec<u8> {
        let through = through.map_or_else(|| "-".to_string(), |s| s.to_string());
        format!("rampart.audit.origin.v1\n{through}\n{}", hex::encode(head)).into_bytes()
    }

    /// Whether `seq` was linked the old, unkeyed way.
    pub fn is_legacy(&self, seq: i64) -> bool {
        self.legacy_through.is_some_and(|t| seq <= t)
    }
}

/// One signed link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: [u8; 32],
    pub signed_at: OffsetDateTime,
    /// The id of the master key whose derived key made `mac`.
    pub key_id: String,
    /// The previous checkpoint's MAC ([`NO_CHECKPOINT`] for the first); `None` only for
    /// checkpoints signed before checkpoints were chained (within the chain's legacy part).
    pub prev_mac: Option<[u8; 32]>,
    pub mac: [u8; 32],
}

impl Checkpoint {
    fn message(seq: i64, hash: &[u8; 32], prev_mac: Option<&[u8; 32]>, signed_at: OffsetDateTime) -> Vec<u8> {
        let micros = signed_at.unix_timestamp_nanos() / 1000;
        match prev_mac {
            None => format!("rampart.audit.checkpoint.v1\n{seq}\n{}\n{micros}", hex::encode(hash)).into_bytes(),
            Some(prev) => {
                format!("rampart.audit.checkpoint.v2\n{seq}\n{}\n{}\n{micros}", hex::encode(hash), hex::encode(prev))
                    .into_bytes()
            }
        }
    }

    /// Signs `(seq, hash)` at `signed_at` (microsecond precision, what storage keeps) under
    /// `key`; `prev_mac: None` makes the unchained form of checkpoints signed before chaining.
    pub fn sign(
        key: &[u8; 32],
        key_id: &str,
        seq: i64,
        hash: [u8; 32],
        prev_mac: Option<[u8; 32]>,
        signed_at: OffsetDateTime,
    ) -> Checkpoint {
        let signed_at = truncate_to_micros(signed_at);
        let mac = hmac(key, &[&Self::message(seq, &hash, prev_mac.as_ref(), signed_at)]);
        Checkpoint { seq, hash, signed_at, key_id: key_id.to_string(), prev_mac, mac }
    }

    /// Whether the MAC holds under `key` (compared in constant time).
    pub fn verify(&self, key: &[u8; 32]) -> bool {
        hmac_verify(key, &[&Self::message(self.seq, &self.hash, self.prev_mac.as_ref(), self.signed_at)], &self.mac)
    }
}

fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1000).unwrap_or(t)
}

/// Why the chain does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFault {
    /// An event's `prev_hash`/`hash` do not follow from its predecessor, the newest checkpoint
    /// before it and its content (edited, after a deleted, inserted or moved event, or after a
    /// deleted checkpoint), the link is missing, or the row does not decode.
    BrokenLink,
    /// The chain head does not match the newest event (events cut off the end).
    HeadMismatch,
    /// A checkpoint's MAC does not hold (forged or edited checkpoint, or an unknown key).
    BadCheckpointSignature,
    /// A validly signed checkpoint names a link the chain no longer has: the chain was
    /// rewritten up to that point, or cut off before it.
    CheckpointMismatch,
    /// A checkpoint does not carry the MAC of the one before it: one between them was deleted.
    MissingCheckpoint,
    /// Checkpoints whose order by position and by signing time disagree.
    CheckpointOutOfOrder,
    /// The log starts after a checkpoint (events purged) but no `audit.purged` event records
    /// that purge.
    UnrecordedPurge,
    /// The chain's origin (where the unkeyed links end) is missing, unsealed or not sealed
    /// under this master key.
    BadOrigin,
}

impl ChainFault {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainFault::BrokenLink => "broken_link",
            ChainFault::HeadMismatch => "head_mismatch",
            ChainFault::BadCheckpointSignature => "bad_checkpoint_signature",
            ChainFault::CheckpointMismatch => "checkpoint_mismatch",
            ChainFault::MissingCheckpoint => "missing_checkpoint",
            ChainFault::CheckpointOutOfOrder => "checkpoint_out_of_order",
            ChainFault::UnrecordedPurge => "unrecorded_purge",
            ChainFault::BadOrigin => "bad_origin",
        }
    }
}

/// A filter over the audit log (`GET /v1/admin/audit`, stats, export). Every field narrows;
/// `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<uuid::Uuid>,
    /// The acting user by e-mail address, in its normal form (`Email::normalise`): the console
    /// lets an administrator type an address where the API takes an id.
    pub actor_email: Option<String>,
    /// An action name or a prefix of dotted segments: `auth` matches `auth.login` and
    /// `auth.refresh.reused`, `auth.refresh` matches `auth.refresh` and `auth.refresh.reused`.
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<crate::event::Outcome>,
    pub severity: Option<crate::event::Severity>,
    pub ip: Option<std::net::IpAddr>,
    /// Inclusive lower bound on the event time.
    pub since: Option<OffsetDateTime>,
    /// Exclusive upper bound on the event time.
    pub until: Option<OffsetDateTime>,
}

/// What is wrong with a filter value (field, stable code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub field: &'static str,
    pub code: &'static str,
}

impl AuditFilter {
    /// Checks the values a client supplied: an action filter is dotted lowercase segments
    /// (so it can go into a `LIKE` pattern with nothing to escape), free-text fields are
    /// bounded, and the time range is not inverted.
    pub fn validate(&self) -> Result<(), Vec<FilterError>> {
        let mut errs = Vec::new();
        if let Some(a) = &self.action {
            let seg_ok =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if a.len() > 64 || !a.split('.').all(seg_ok) {
                errs.push(FilterError { field: "action", code: "invalid_action" });
            }
        }
        for (field, v) in [("resource_type", &self.resource_type), ("resource_id", &self.resource_id)] {
            if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 200) {
                errs.push(FilterError { field, code: "invalid_length" });
            }
        }
        if let (Some(s), Some(u)) = (self.since, self.until)
            && s > u
        {
            errs.push(FilterError { field: "until", code: "before_since" });
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// Whether an action name passes the action filter (the same rule the store's SQL applies).
    pub fn action_matches(&self, action: &str) -> bool {
        match &self.action {
            None => true,
            Some(p) => action == p || (action.starts_with(p.as_str()) && action.as_bytes().get(p.len()) == Some(&b'.')),
        }
    }
}

/// The columns of the CSV export, in order.
pub const CSV_HEADER: &str = "seq,id,ts,action,outcome,severity,actor_type,actor_id,resource_type,resource_id,ip,user_agent,request_id,details,prev_hash,hash\n";

/// An event as exported, with its place in the chain.
#[derive(Debug, Clone, Copy)]
pub struct ChainedEvent<'a> {
    pub seq: i64,
    pub event: &'a SecurityEvent,
    pub prev_hash: Option<&'a [u8]>,
    pub hash: Option<&'a [u8]>,
}

fn rfc3339_micros(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default()
}

impl ChainedEvent<'_> {
    /// The event in the shape of the audit API (`../shared/API.md`, Audit event).
    pub fn to_json(&self) -> serde_json::Value {
        let e = self.event;
        serde_json::json!({
            "id": e.id,
            "seq": self.seq,
            "ts": rfc3339_micros(e.ts),
            "action": e.action.as_str(),
            "outcome": e.outcome.as_str(),
            "severity": e.severity.as_str(),
            "actor": { "type": e.actor.kind(), "id": e.actor.id() },
            "resource": e.resource.as_ref().map(|r| serde_json::json!({ "type": r.kind, "id": r.id })),
            "ip": e.ip.map(|ip| ip.to_string()),
            "user_agent": e.user_agent,
            "request_id": e.request_id,
            "details": e.details,
            "prev_hash": self.prev_hash.map(hex::encode),
            "hash": self.hash.map(hex::encode),
        })
    }

    /// One CSV record (RFC 4180: fields with a comma, quote or line break are quoted, quotes
    /// doubled), ending in `\n`. A field that a spreadsheet would run as a formula (starting
    /// with `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'` (OWASP CSV
    /// injection), since user agents and details are attacker-controlled.
    pub fn to_csv(&self) -> String {
        let e = self.event;
        let fields: [String; 16] = [
            self.seq.to_string(),
            e.id.to_string(),
            rfc3339_micros(e.ts),
            e.action.as_str().to_string(),
            e.outcome.as_str().to_string(),
            e.severity.as_str().to_string(),
            e.actor.kind().to_string(),
            e.actor.id().map(|i| i.to_string()).unwrap_or_default(),
            e.resource.as_ref().map(|r| r.kind.clone()).unwrap_or_default(),
            e.resource.as_ref().and_then(|r| r.id.clone()).unwrap_or_default(),
            e.ip.map(|i| i.to_string()).unwrap_or_default(),
            e.user_agent.clone().unwrap_or_default(),
            e.request_id.clone().unwrap_or_default(),
            e.details.to_string(),
            self.prev_hash.map(hex::encode).unwrap_or_default(),
            self.hash.map(hex::encode).unwrap_or_default(),
        ];
        let mut out = String::with_capacity(256);
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        out.push('\n');
        out
    }

    /// The event as an Elastic Common Schema (8.x) document: the ECS fields where one maps
    /// (`@timestamp`, `event.*`, `user.id`, `source.ip`, `user_agent.original`, …), the rest
    /// under `rampart.*`.
    pub fn to_ecs(&self) -> serde_json::Value {
        let e = self.event;
        let action = e.action.as_str();
        let category = match action.split('.').next().unwrap_or("") {
            "auth" | "mfa" => "authentication",
            "session" => "session",
            "user" | "role" | "password" | "email" | "api_key" | "authz" => "iam",
            "system" | "token" | "audit" => "configuration",
            _ => "host",
        };
        let (outcome, types) = match e.outcome {
            crate::event::Outcome::Success => ("success", serde_json::json!(["info"])),
            crate::event::Outcome::Failure => ("failure", serde_json::json!(["info"])),
            crate::event::Outcome::Denied => ("failure", serde_json::json!(["denied"])),
        };
        let severity = match e.severity {
            crate::event::Severity::Info => 1,
            crate::event::Severity::Warning => 4,
            crate::event::Severity::Critical => 8,
        };
        let mut doc = serde_json::json!({
            "@timestamp": rfc3339_micros(e.ts),
            "ecs": { "version": "8.11.0" },
            "event": {
                "id": e.id,
                "kind": "event",
                "action": action,
                "category": [category],
                "type": types,
                "outcome": outcome,
                "severity": severity,
                "sequence": self.seq,
                "provider": "rampart",
                "dataset": "rampart.audit",
            },
            "log": { "level": e.severity.as_str() },
            "rampart": {
                "actor": { "type": e.actor.kind(), "id": e.actor.id() },
                "outcome": e.outcome.as_str(),
                "resource": e.resource.as_ref().map(|r| serde_json::json!({ "type": r.kind, "id": r.id })),
                "details": e.details,
                "prev_hash": self.prev_hash.map(hex::encode),
                "hash": self.hash.map(hex::encode),
            },
        });
        if let Some(map) = doc.as_object_mut() {
            if let crate::event::Actor::User(id) = &e.actor {
                map.insert("user".into(), serde_json::json!({ "id": id }));
            }
            if let Some(ip) = e.ip {
                map.insert("source".into(), serde_json::json!({ "ip": ip.to_string() }));
                map.insert("client".into(), serde_json::json!({ "ip": ip.to_string() }));
            }
            if let Some(ua) = &e.user_agent {
                map.insert("user_agent".into(), serde_json::json!({ "original": ua }));
            }
            if let Some(rid) = &e.request_id {
                map.insert("http".into(), serde_json::json!({ "request": { "id": rid } }));
            }
        }
        doc
    }
}

pub(crate) fn csv_field(out: &mut String, f: &str) {
    let formula = matches!(f.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    let needs_quotes = formula || f.contains([',', '"', '\n', '\r']);
    if !needs_quotes {
        out.push_str(f);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in f.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Actor, Outcome};
    use time::macros::datetime;
    use uuid::Uuid;

    #[test]
    fn a_checkpoint_verifies_only_under_its_key_and_for_its_exact_link() {
        let key = [7u8; 32];
        let t = datetime!(2026-11-23 12:00:00.123456789 UTC);
        let cp = Checkpoint::sign(&key, "k1", 42, [9; 32], Some([3; 32]), t);
        assert_eq!(cp.signed_at, datetime!(2026-11-23 12:00:00.123456 UTC), "kept at storage precision");
        assert!(cp.verify(&key));
        assert!(!cp.verify(&[8u8; 32]), "another key");
        let legacy = Checkpoint::sign(&key, "k1", 42, [9; 32], None, t);
        assert!(legacy.verify(&key));
        for forged in [
            Checkpoint { seq: 43, ..cp.clone() },
            Checkpoint { prev_mac: Some([4; 32]), ..cp.clone() },
            Checkpoint { prev_mac: None, ..cp.clone() },
            Checkpoint { prev_mac: Some([0; 32]), ..legacy.clone() },
            Checkpoint { hash: [1; 32], ..cp.clone() },
            Checkpoint { signed_at: cp.signed_at + time::Duration::microseconds(1), ..cp.clone() },
            Checkpoint { mac: [0; 32], ..cp.clone() },
        ] {
            assert!(!forged.verify(&key), "{forged:?}");
        }
    }

    #[test]
    fn links_need_the_key_and_bind_the_previous_link_the_checkpoint_and_every_field() {
        let keys = AuditKeys::derive(&MasterKey::from_bytes([5; 32]));
        let other = AuditKeys::derive(&MasterKey::from_bytes([6; 32]));
        let t = datetime!(2026-11-23 12:00:00 UTC);
        let e = SecurityEvent::new(Uuid::nil(), t, Action::ConfigLoaded, Outcome::Success).actor(Actor::System);
        let h = keys.link(&[1; 32], &NO_CHECKPOINT, &e);
        assert_eq!(h, keys.link(&[1; 32], &NO_CHECKPOINT, &e.clone()), "deterministic");
        assert_ne!(h, other.link(&[1; 32], &NO_CHECKPOINT, &e), "another master key");
        assert_ne!(h, keys.link(&[2; 32], &NO_CHECKPOINT, &e), "bound to the previous link");
        assert_ne!(h, keys.link(&[1; 32], &[7; 32], &e), "bound to the newest checkpoint");
        assert_ne!(h, e.legacy_chain_hash(&[1; 32]), "not the unkeyed hash");
        let mut edited = e.clone();
        edited.ip = Some("10.0.0.1".parse().unwrap());
        assert_ne!(h, keys.link(&[1; 32], &NO_CHECKPOINT, &edited), "bound to the content");
    }

    #[test]
    fn an_origin_verifies_only_as_sealed() {
        let keys = AuditKeys::derive(&MasterKey::from_bytes([5; 32]));
        let o = keys.seal_origin(Some(10), [4; 32]);
        assert!(keys.origin_valid(&o));
        assert!(o.is_legacy(10) && !o.is_legacy(11));
        for forged in [
            ChainOrigin { legacy_through: Some(11), ..o.clone() },
            ChainOrigin { legacy_through: None, ..o.clone() },
            ChainOrigin { legacy_head: [5; 32], ..o.clone() },
            ChainOrigin { key_id: "other".into(), ..o.clone() },
        ] {
            assert!(!keys.origin_valid(&forged), "{forged:?}");
        }
        assert!(!AuditKeys::derive(&MasterKey::from_bytes([6; 32])).origin_valid(&o));
        let none = keys.seal_origin(None, NO_CHECKPOINT);
        assert!(keys.origin_valid(&none) && !none.is_legacy(1));
    }

    #[test]
    fn action_filters_match_whole_dotted_segments() {
        let f = |a: &str| AuditFilter { action: Some(a.into()), ..Default::default() };
        assert!(f("auth").action_matches("auth.login"));
        assert!(f("auth.refresh").action_matches("auth.refresh.reused"));
        assert!(f("auth.refresh").action_matches("auth.refresh"));
        assert!(!f("auth.ref").action_matches("auth.refresh"), "not a segment prefix");
        assert!(!f("auth").action_matches("authz.denied"));
        assert!(AuditFilter::default().action_matches("anything"));
    }

    #[test]
    fn filters_reject_what_cannot_be_matched_safely() {
        let bad = |f: AuditFilter| f.validate().unwrap_err();
        for a in ["auth%", "Auth.login", "auth..login", "", "auth.", "a_b'c", &"a".repeat(65)] {
            let errs = bad(AuditFilter { action: Some(a.to_string()), ..Default::default() });
            assert_eq!(errs, vec![FilterError { field: "action", code: "invalid_action" }], "{a:?}");
        }
        let t = datetime!(2026-11-23 12:00 UTC);
        let errs = bad(AuditFilter { since: Some(t), until: Some(t - time::Duration::SECOND), ..Default::default() });
        assert_eq!(errs[0].field, "until");
        assert!(AuditFilter { action: Some("api_key.created".into()), ..Default::default() }.validate().is_ok());
    }

    fn sample() -> SecurityEvent {
        SecurityEvent::new(Uuid::nil(), datetime!(2026-11-23 12:00:00.5 UTC), Action::Login, Outcome::Denied)
            .actor(Actor::User(Uuid::nil()))
            .ip(Some("2001:db8::1".parse().unwrap()))
            .user_agent(Some("=HYPERLINK(\"x\"),\nevil"))
            .details(serde_json::json!({"reason": "a,b"}))
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let e = sample();
        let row = ChainedEvent { seq: 3, event: &e, prev_hash: Some(&[0; 32]), hash: Some(&[1; 32]) }.to_csv();
        assert!(row.ends_with('\n'));
        assert!(row.contains(r#""'=HYPERLINK(""x""),"#), "{row}");
        assert!(row.contains(r#""{""reason"":""a,b""}""#), "{row}");
        assert_eq!(CSV_HEADER.matches(',').count(), 15);
        assert!(
            row.starts_with("3,00000000-0000-0000-0000-000000000000,2026-11-23T12:00:00.500000Z,auth.login,denied,")
        );
    }

    #[test]
    fn ecs_documents_carry_the_mapped_fields() {
        let e = sample();
        let doc = ChainedEvent { seq: 3, event: &e, prev_hash: None, hash: None }.to_ecs();
        assert_eq!(doc["@timestamp"], "2026-11-23T12:00:00.500000Z");
        assert_eq!(doc["event"]["action"], "auth.login");
        assert_eq!(doc["event"]["category"][0], "authentication");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["event"]["type"][0], "denied");
        assert_eq!(doc["event"]["sequence"], 3);
        assert_eq!(doc["source"]["ip"], "2001:db8::1");
        assert_eq!(doc["user"]["id"], Uuid::nil().to_string());
        assert_eq!(doc["rampart"]["details"]["reason"], "a,b");
    }
}
