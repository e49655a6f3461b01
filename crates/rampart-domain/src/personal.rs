//! Personal data in audit events, sealed under a key of the person it belongs to, so erasing
//! the person (destroying their key: crypto-shredding) makes it unreadable while the event stays
//! in the verified hash chain.
//!
//! - An event's *subject* is the user who acted ([`Actor::User`]), or, for an anonymous caller,
//!   the user whose account it acted on (a sign-in attempt, a re-authentication that failed):
//!   the address, the browser and the names in the details are theirs, or were used against
//!   their account. Events of the system and of API keys, and anonymous events about no user,
//!   keep their fields in the clear.
//! - Its *personal fields*: `ip`, `user_agent`, and the detail keys in [`PERSONAL_DETAILS`].
//!   (A search of the audit log by address records the address's keyed tag, not the address.)
//!   [`seal`] moves them into one AES-256-GCM blob (`p1.<base64url(nonce ‖ ciphertext)>`, bound
//!   to the event id and the subject) held in [`SecurityEvent::sealed_personal`]; the chain
//!   links the event in that form ([`SecurityEvent::canonical`]'s second version), so the link
//!   never depends on the plaintext nor on the key.
//! - [`reveal`] puts them back for whoever reads the event, or, when the subject's key is gone,
//!   marks the event `details.personal = "erased"`.

use crate::event::{Actor, SecurityEvent};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use uuid::Uuid;

/// Detail keys that hold personal data: names people give things, addresses, devices.
pub const PERSONAL_DETAILS: &[&str] =
    &["personal", "email", "name", "ip", "user_agent", "device", "network", "address", "document_uri"];

/// What a revealed event whose subject was erased carries in `details.personal`.
pub const ERASED: &str = "erased";

const PREFIX: &str = "p1.";
const NONCE_LEN: usize = 12;

/// A person's data key (AES-256), random per user, stored wrapped by the audit keys.
pub type PersonKey = zeroize::Zeroizing<[u8; 32]>;

/// The user whose personal data the event holds, if any.
pub fn subject(e: &SecurityEvent) -> Option<Uuid> {
    match e.actor {
        Actor::User(id) => Some(id),
        Actor::Anonymous => e
            .resource
            .as_ref()
            .filter(|r| r.kind == "user")
            .and_then(|r| r.id.as_deref())
            .and_then(|id| id.parse().ok()),
        Actor::ApiKey(_) | Actor::System => None,
    }
}

/// Whether the event holds anything [`seal`] would move.
pub fn has_personal_fields(e: &SecurityEvent) -> bool {
    e.ip.is_some()
        || e.user_agent.is_some()
        || e.details.as_object().is_some_and(|m| PERSONAL_DETAILS.iter().any(|k| m.contains_key(*k)))
}

/// A new person key.
pub fn new_key(rng: &mut (impl RngCore + CryptoRng)) -> PersonKey {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(k.as_mut());
    k
}

fn aad(event: Uuid, subject: Uuid) -> Vec<u8> {
    let mut a = b"rampart.audit.personal.v1".to_vec();
    a.extend_from_slice(event.as_bytes());
    a.extend_from_slice(subject.as_bytes());
    a
}

fn take_personal(e: &mut SecurityEvent) -> serde_json::Value {
    let mut details = serde_json::Map::new();
    if let Some(m) = e.details.as_object_mut() {
        for k in PERSONAL_DETAILS {
            if let Some(v) = m.remove(*k) {
                details.insert((*k).to_string(), v);
            }
        }
    }
    serde_json::json!({
        "ip": e.ip.take().map(|ip| ip.to_string()),
        "user_agent": e.user_agent.take(),
        "details": details,
    })
}

/// Moves the event's personal fields into a blob sealed under `key` (the subject's), leaving the
/// rest as stored. Events without a subject or personal fields are left alone.
// AES-GCM refuses only inputs over 64 GiB; an event's fields are bounded far below that.
#[allow(clippy::unreachable)]
pub fn seal(e: &mut SecurityEvent, key: &PersonKey, rng: &mut (impl RngCore + CryptoRng)) {
    let Some(subject) = subject(e) else { return };
    if !has_personal_fields(e) {
        return;
    }
    let plain = take_personal(e);
    let msg = serde_json::to_vec(&plain).unwrap_or_default();
    let cipher = Aes256Gcm::new(key.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let Ok(ct) = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: &msg, aad: &aad(e.id, subject) }) else {
        unreachable!("AES-GCM encryption only fails for inputs over 64 GiB");
    };
    let mut body = nonce.to_vec();
    body.extend_from_slice(&ct);
    e.sealed_personal = Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body)));
}

/// For a subject already erased: the personal fields are dropped, not kept in the clear.
pub fn drop_personal(e: &mut SecurityEvent) {
    if subject(e).is_some() && has_personal_fields(e) {
        take_personal(e);
        if let Some(m) = e.details.as_object_mut() {
            m.insert("personal".into(), ERASED.into());
        }
    }
}

/// Puts the sealed personal fields back with the subject's key, or marks them erased when there
/// is no key (or it does not open them). The sealed blob stays, so the event still links.
pub fn reveal(e: &mut SecurityEvent, key: Option<&PersonKey>) {
    let Some(sealed) = e.sealed_personal.as_deref() else { return };
    let opened = key.zip(subject(e)).and_then(|(key, subject)| {
        let body = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if body.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(key.as_ref().into());
        let plain = cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad(e.id, subject) }).ok()?;
        serde_json::from_slice::<serde_json::Value>(&plain).ok()
    });
    let Some(plain) = opened else {
        if let Some(m) = e.details.as_object_mut() {
            m.insert("personal".into(), ERASED.into());
        }
        return;
    };
    e.ip = plain["ip"].as_str().and_then(|s| s.parse().ok());
    e.user_agent = plain["user_agent"].as_str().map(str::to_string);
    if let (Some(m), Some(p)) = (e.details.as_object_mut(), plain["details"].as_object()) {
        for (k, v) in p {
            m.insert(k.clone(), v.clone());
        }
    }
}

/// The encoded person key's wrapping: AES-256-GCM under the audit log's personal-data key,
/// bound to the user id.
pub fn wrap_key(wrapping: &[u8; 32], user: Uuid, key: &PersonKey, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
    let cipher = Aes256Gcm::new(wrapping.into());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.as_ref(), aad: user.as_bytes() })
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

pub fn unwrap_key(wrapping: &[u8; 32], user: Uuid, wrapped: &[u8]) -> Option<PersonKey> {
    if wrapped.len() != NONCE_LEN + 32 + 16 {
        return None;
    }
    let (nonce, ct) = wrapped.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(wrapping.into());
    let plain = zeroize::Zeroizing::new(
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: user.as_bytes() }).ok()?,
    );
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&plain);
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Outcome, Resource};
    use rand::rngs::OsRng;

    fn event(actor: Actor) -> SecurityEvent {
        SecurityEvent::new(Uuid::now_v7(), time::OffsetDateTime::now_utc(), Action::ApiKeyCreated, Outcome::Success)
            .actor(actor)
            .resource(Resource::new("api_key", "k1"))
            .ip(Some("203.0.113.9".parse().unwrap()))
            .user_agent(Some("Agent/1"))
            .details(serde_json::json!({"name": "laptop key", "scopes": ["a:b"]}))
    }

    #[test]
    fn sealed_fields_leave_the_stored_form_and_come_back_with_the_key() {
        let user = Uuid::now_v7();
        let key = new_key(&mut OsRng);
        let original = event(Actor::User(user));
        let mut e = original.clone();
        seal(&mut e, &key, &mut OsRng);
        assert_eq!((e.ip, e.user_agent.as_deref()), (None, None));
        assert_eq!(e.details, serde_json::json!({"scopes": ["a:b"]}));
        let stored = String::from_utf8(e.canonical()).unwrap();
        for secret in ["203.0.113.9", "Agent/1", "laptop key"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        let linked = e.canonical();
        reveal(&mut e, Some(&key));
        assert_eq!(
            (e.ip, e.user_agent.clone(), e.details.clone()),
            (original.ip, original.user_agent, original.details)
        );
        assert_eq!(e.canonical(), linked, "revealing does not change what the chain links");
    }

    #[test]
    fn without_the_key_the_fields_read_as_erased() {
        let user = Uuid::now_v7();
        let mut e = event(Actor::User(user));
        seal(&mut e, &new_key(&mut OsRng), &mut OsRng);
        let linked = e.canonical();
        let mut other = e.clone();
        reveal(&mut e, None);
        assert_eq!(e.details["personal"], ERASED);
        assert_eq!((e.ip, e.user_agent.as_deref()), (None, None));
        assert_eq!(e.canonical(), linked);
        reveal(&mut other, Some(&new_key(&mut OsRng)));
        assert_eq!(other.details["personal"], ERASED, "another person's key opens nothing");
    }

    #[test]
    fn a_blob_moved_to_another_event_does_not_open() {
        let user = Uuid::now_v7();
        let key = new_key(&mut OsRng);
        let mut a = event(Actor::User(user));
        seal(&mut a, &key, &mut OsRng);
        let mut b = event(Actor::User(user));
        seal(&mut b, &key, &mut OsRng);
        b.sealed_personal = a.sealed_personal.clone();
        reveal(&mut b, Some(&key));
        assert_eq!(b.details["personal"], ERASED);
    }

    #[test]
    fn events_about_no_user_stay_in_the_clear() {
        for actor in [Actor::Anonymous, Actor::System, Actor::ApiKey(Uuid::now_v7())] {
            let mut e = event(actor);
            seal(&mut e, &new_key(&mut OsRng), &mut OsRng);
            assert!(e.sealed_personal.is_none());
            assert!(e.ip.is_some());
        }
    }

    #[test]
    fn an_anonymous_attempt_on_an_account_is_that_persons() {
        let user = Uuid::now_v7();
        let e = event(Actor::Anonymous).resource(Resource::new("user", user));
        assert_eq!(subject(&e), Some(user));
        assert_eq!(subject(&event(Actor::System).resource(Resource::new("user", user))), None);
    }

    #[test]
    fn person_keys_wrap_bound_to_their_user() {
        let wrapping = [7u8; 32];
        let (u1, u2) = (Uuid::now_v7(), Uuid::now_v7());
        let key = new_key(&mut OsRng);
        let w = wrap_key(&wrapping, u1, &key, &mut OsRng);
        assert_eq!(unwrap_key(&wrapping, u1, &w).as_deref(), Some(&*key));
        assert!(unwrap_key(&wrapping, u2, &w).is_none());
        assert!(unwrap_key(&[8u8; 32], u1, &w).is_none());
    }
}
