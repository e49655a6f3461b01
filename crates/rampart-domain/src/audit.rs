//! The audit log's rules beyond the hash chain itself (which lives with [`SecurityEvent`]):
//! signed checkpoints, the query filter, and the export encodings (JSON Lines, CSV, and the
//! Elastic Common Schema document used by the SIEM output).
//!
//! A *checkpoint* vouches for one link of the chain: `(seq, hash)` plus the time it was signed,
//! under an HMAC-SHA256 key derived from the master key. Someone who can write the database but
//! does not hold the master key can recompute every hash of a rewritten chain, but not the
//! checkpoints' MACs: verification then fails at the first checkpoint whose link changed. A
//! checkpoint is also where a retention purge may cut the log: the remaining chain starts from
//! the checkpoint's hash, which the MAC vouches for.

use crate::event::SecurityEvent;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

/// The purpose string the checkpoint key is derived under (`MasterKey::derive`).
pub const CHECKPOINT_KEY_PURPOSE: &str = "audit-checkpoint-v1";

/// One signed link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: [u8; 32],
    pub signed_at: OffsetDateTime,
    /// The id of the master key whose derived key made `mac`.
    pub key_id: String,
    pub mac: [u8; 32],
}

impl Checkpoint {
    fn message(seq: i64, hash: &[u8; 32], signed_at: OffsetDateTime) -> Vec<u8> {
        let micros = signed_at.unix_timestamp_nanos() / 1000;
        format!("rampart.audit.checkpoint.v1\n{seq}\n{}\n{micros}", hex::encode(hash)).into_bytes()
    }

    fn compute(key: &[u8; 32], seq: i64, hash: &[u8; 32], signed_at: OffsetDateTime) -> [u8; 32] {
        // HMAC accepts keys of any length; the error arm cannot happen with 32 bytes.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return [0; 32] };
        mac.update(&Self::message(seq, hash, signed_at));
        mac.finalize().into_bytes().into()
    }

    /// Signs `(seq, hash)` at `signed_at` (microsecond precision, what storage keeps).
    pub fn sign(key: &[u8; 32], key_id: &str, seq: i64, hash: [u8; 32], signed_at: OffsetDateTime) -> Checkpoint {
        let signed_at = truncate_to_micros(signed_at);
        let mac = Self::compute(key, seq, &hash, signed_at);
        Checkpoint { seq, hash, signed_at, key_id: key_id.to_string(), mac }
    }

    /// Whether the MAC holds under `key` (compared in constant time).
    pub fn verify(&self, key: &[u8; 32]) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return false };
        mac.update(&Self::message(self.seq, &self.hash, self.signed_at));
        mac.verify_slice(&self.mac).is_ok()
    }
}

fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1000).unwrap_or(t)
}

/// Why the chain does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFault {
    /// An event's `prev_hash`/`hash` do not follow from its predecessor and its content
    /// (edited, or after a deleted, inserted or moved event), or the row does not decode.
    BrokenLink,
    /// The chain head does not match the newest event (events cut off the end).
    HeadMismatch,
    /// A checkpoint's MAC does not hold (forged or edited checkpoint, or an unknown key).
    BadCheckpointSignature,
    /// A validly signed checkpoint names a link the chain no longer has: the chain was
    /// rewritten up to that point, or cut off before it.
    CheckpointMismatch,
    /// The log starts after a checkpoint (events purged) but no `audit.purged` event records
    /// that purge.
    UnrecordedPurge,
}

impl ChainFault {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainFault::BrokenLink => "broken_link",
            ChainFault::HeadMismatch => "head_mismatch",
            ChainFault::BadCheckpointSignature => "bad_checkpoint_signature",
            ChainFault::CheckpointMismatch => "checkpoint_mismatch",
            ChainFault::UnrecordedPurge => "unrecorded_purge",
        }
    }
}

/// A filter over the audit log (`GET /v1/admin/audit`, stats, export). Every field narrows;
/// `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<uuid::Uuid>,
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

fn csv_field(out: &mut String, f: &str) {
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
        let cp = Checkpoint::sign(&key, "k1", 42, [9; 32], t);
        assert_eq!(cp.signed_at, datetime!(2026-11-23 12:00:00.123456 UTC), "kept at storage precision");
        assert!(cp.verify(&key));
        assert!(!cp.verify(&[8u8; 32]), "another key");
        for forged in [
            Checkpoint { seq: 43, ..cp.clone() },
            Checkpoint { hash: [1; 32], ..cp.clone() },
            Checkpoint { signed_at: cp.signed_at + time::Duration::microseconds(1), ..cp.clone() },
            Checkpoint { mac: [0; 32], ..cp.clone() },
        ] {
            assert!(!forged.verify(&key), "{forged:?}");
        }
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
