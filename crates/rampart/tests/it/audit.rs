//! The audit log beyond the bare chain (whose tampering tests are in `store_contract`): signed
//! checkpoints against a chain rewritten whole, retention purges that leave the rest
//! verifiable, the query/stats/export API, aggregation of high-volume events, the SIEM output
//! (exporting a million events in bounded memory and `kill -9` durability are in `cli`, which
//! runs the real binary).

use rampart_domain::audit::{AuditFilter, AuditKeys, ChainFault, Checkpoint, NO_CHECKPOINT};
use rampart_domain::{Action, Actor, Outcome, SecurityEvent};
use rampart_store::Store;
use rampart_testkit::{Backend, TestApp, TestDb, for_each_backend};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    rampart_domain::Clock::now(&rampart_domain::SystemClock)
}

fn event_at(ts: OffsetDateTime, i: usize) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), ts, Action::Login, Outcome::Success)
        .actor(Actor::System)
        .details(json!({ "i": i }))
}

fn keys() -> AuditKeys {
    AuditKeys::derive(&rampart_testkit::test_master_key())
}

/// A migrated store with one event per time in `times`, a checkpoint signed (as the server
/// does, over the newest link) right after each event whose index is in `signed_after`.
async fn chain_of(db: &TestDb, times: &[OffsetDateTime], signed_after: &[usize]) -> (Store, Vec<i64>) {
    let store = db.store().await;
    store.migrate().await.unwrap();
    for (i, t) in times.iter().enumerate() {
        store.append_event(&event_at(*t, i)).await.unwrap();
        if signed_after.contains(&i) {
            store.sign_checkpoint(now()).await.unwrap().expect("a new link to sign");
        }
    }
    let mut seqs: Vec<i64> = store.recent_events(1000).await.unwrap().iter().map(|e| e.seq).collect();
    seqs.sort();
    (store, seqs)
}

fn blob(db: &TestDb, bytes: &[u8]) -> String {
    match db.backend() {
        Backend::Sqlite => format!("X'{}'", hex::encode(bytes)),
        Backend::Postgres => format!("decode('{}', 'hex')", hex::encode(bytes)),
    }
}

/// What an attacker who owns the database but not the master key can try: change one event
/// and recompute every link after it with `link` (they can compute the old unkeyed hash, or an
/// HMAC under a key of their own), and the head, so the chain looks consistent again.
async fn rewrite_from(db: &TestDb, store: &Store, seq: i64, link: impl Fn(&[u8; 32], &SecurityEvent) -> [u8; 32]) {
    let events = store.export_page(&AuditFilter::default(), i64::MIN, 1000).await.unwrap();
    let mut prev = rampart_domain::event::CHAIN_GENESIS;
    for e in events {
        let mut ev = e.event.clone();
        if e.seq == seq {
            ev.details = json!({ "i": "rewritten" });
            db.execute(&format!("UPDATE audit_events SET details = '{}' WHERE seq = {seq}", ev.details)).await;
        }
        let hash = link(&prev, &ev);
        if e.seq >= seq {
            db.execute(&format!(
                "UPDATE audit_events SET prev_hash = {}, hash = {} WHERE seq = {}",
                blob(db, &prev),
                blob(db, &hash),
                e.seq
            ))
            .await;
        }
        prev = hash;
    }
    db.execute(&format!("UPDATE audit_head SET hash = {} WHERE id = 1", blob(db, &prev))).await;
}

/// Issue 15, item 2: the link was an unkeyed SHA-256, so whoever could write the database could
/// recompute a rewritten chain. Links are now an HMAC under a key derived from the master key:
/// neither the unkeyed hash nor an HMAC under another key passes, at the first rewritten event.
#[tokio::test]
async fn a_chain_rewritten_without_the_master_key_fails_at_the_first_rewritten_event() {
    let forger = AuditKeys::derive(&rampart_domain::MasterKey::from_bytes([9; 32]));
    type Link = Box<dyn Fn(&[u8; 32], &SecurityEvent) -> [u8; 32]>;
    let attempts: [(&str, Link); 2] = [
        ("unkeyed SHA-256", Box::new(|prev, e| e.legacy_chain_hash(prev))),
        ("HMAC under another key", Box::new(move |prev, e| forger.link(prev, &NO_CHECKPOINT, e))),
    ];
    for (name, link) in attempts {
        for_each_backend!(|db| {
            let (store, s) = chain_of(&db, &[now(); 8], &[]).await;
            assert!(store.verify_audit_chain().await.unwrap().ok);
            rewrite_from(&db, &store, s[2], &link).await;
            let r = store.verify_audit_chain().await.unwrap();
            assert_eq!(
                (r.ok, r.fault, r.first_bad_seq),
                (false, Some(ChainFault::BrokenLink), Some(s[2])),
                "{name} on {:?}",
                db.backend()
            );
        });
    }
}

#[tokio::test]
async fn a_forged_checkpoint_or_one_past_the_end_is_caught() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 6], &[1]).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok && r.checkpoints_checked == 1, "{:?}: {r:?}", db.backend());
        // A checkpoint the attacker signed without the key.
        let e = store.export_page(&AuditFilter::default(), s[3] - 1, 1).await.unwrap().remove(0);
        let hash: [u8; 32] = e.hash.unwrap().try_into().unwrap();
        let forged = Checkpoint::sign(&[1; 32], keys().key_id(), s[3], hash, Some([0; 32]), now());
        store.insert_checkpoint(&forged).await.unwrap();
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!((r.ok, r.fault, r.first_bad_seq), (false, Some(ChainFault::BadCheckpointSignature), Some(s[3])));
        db.execute(&format!("DELETE FROM audit_checkpoints WHERE seq = {}", s[3])).await;
        assert!(store.verify_audit_chain().await.unwrap().ok);

        // Cutting the newest events off and moving the head back passes the head check, but
        // not a checkpoint of a cut event.
        store.sign_checkpoint(now()).await.unwrap().unwrap();
        let kept = store.export_page(&AuditFilter::default(), s[3] - 1, 1).await.unwrap().remove(0);
        db.execute(&format!("DELETE FROM audit_events WHERE seq > {}", s[3])).await;
        db.execute(&format!("UPDATE audit_head SET hash = {} WHERE id = 1", blob(&db, &kept.hash.unwrap()))).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!(r.fault, Some(ChainFault::CheckpointMismatch), "{:?}: {r:?}", db.backend());
        assert_eq!(r.first_bad_seq, Some(s[2]), "the first event after the last checkpoint that held");
    });
}

/// Issue 15, item 2: checkpoints are chained (each carries the MAC of the one before it) and
/// every event links to the newest checkpoint before it: deleting one, the newest, or all of
/// them shows as a missing checkpoint, even with the head's record of it reset too.
#[tokio::test]
async fn a_deleted_checkpoint_is_reported_missing() {
    // Given the seqs: the checkpoints to delete, whether to reset the head's record of the
    // newest, and the verdict's fault and first bad seq.
    type Case = fn(&[i64]) -> (String, bool, ChainFault, i64);
    let cases: [(&str, Case); 4] = [
        ("one in the middle", |s| (format!("seq = {}", s[3]), false, ChainFault::MissingCheckpoint, s[4])),
        ("the newest", |s| (format!("seq = {}", s[5]), false, ChainFault::MissingCheckpoint, s[6])),
        ("all", |s| ("seq > 0".into(), false, ChainFault::MissingCheckpoint, s[2])),
        ("all, and the head's record", |s| ("seq > 0".into(), true, ChainFault::BrokenLink, s[2])),
    ];
    for (name, case) in cases {
        for_each_backend!(|db| {
            let (store, s) = chain_of(&db, &[now(); 8], &[1, 3, 5]).await;
            assert_eq!(store.verify_audit_chain().await.unwrap().checkpoints_checked, 3);
            let (filter, reset_head, fault, first_bad) = case(&s);
            db.execute(&format!("DELETE FROM audit_checkpoints WHERE {filter}")).await;
            if reset_head {
                db.execute(&format!(
                    "UPDATE audit_head SET checkpoint_seq = NULL, checkpoint_mac = {} WHERE id = 1",
                    blob(&db, &[0; 32])
                ))
                .await;
            }
            let r = store.verify_audit_chain().await.unwrap();
            assert_eq!(
                (r.ok, r.fault, r.first_bad_seq),
                (false, Some(fault), Some(first_bad)),
                "{name} on {:?}",
                db.backend()
            );
        });
    }
}

/// Checkpoints whose signing times run backwards against their order (a replayed checkpoint,
/// or an instance with a clock far behind) are reported.
#[tokio::test]
async fn checkpoints_signed_out_of_order_are_reported() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 4], &[1]).await;
        // The signer keeps its checkpoints in order, whatever the clock it is given.
        let kept = store.sign_checkpoint(now() - Duration::hours(1)).await.unwrap().unwrap();
        assert!(kept.signed_at > now() - Duration::minutes(1), "{kept:?}");
        assert!(store.verify_audit_chain().await.unwrap().ok);
        // One signed with the key but an hour behind its predecessor (planted as the newest).
        db.execute(&format!("DELETE FROM audit_checkpoints WHERE seq = {}", s[3])).await;
        let first_mac = store.newest_checkpoint_at_or_before(s[1]).await.unwrap().unwrap().mac;
        let last = store.export_page(&AuditFilter::default(), s[3] - 1, 1).await.unwrap().remove(0);
        let late =
            keys().sign_checkpoint(s[3], last.hash.unwrap().try_into().unwrap(), first_mac, now() - Duration::hours(1));
        store.insert_checkpoint(&late).await.unwrap();
        db.execute(&format!("UPDATE audit_head SET checkpoint_mac = {} WHERE id = 1", blob(&db, &late.mac))).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!(
            (r.ok, r.fault, r.first_bad_seq),
            (false, Some(ChainFault::CheckpointOutOfOrder), Some(s[3])),
            "{:?}",
            db.backend()
        );
    });
}

/// Checkpoints signed by two instances at once still form one chain (the head lock orders them).
#[tokio::test]
async fn concurrent_signers_and_writers_keep_one_checkpoint_chain() {
    for_each_backend!(|db| {
        let (store, _) = chain_of(&db, &[now(); 2], &[]).await;
        let other = db.store().await;
        let tasks = (0..60).map(|i| {
            let s = if i % 2 == 0 { store.clone() } else { other.clone() };
            async move {
                if i % 3 == 0 {
                    s.sign_checkpoint(now()).await.unwrap();
                } else {
                    s.append_event(&event_at(now(), i)).await.unwrap();
                }
            }
        });
        futures::future::join_all(tasks).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok && r.checkpoints_checked >= 2, "{:?}: {r:?}", db.backend());
    });
}

#[tokio::test]
async fn a_retention_purge_leaves_the_rest_verifiable_from_its_checkpoint() {
    for_each_backend!(|db| {
        let old = now() - Duration::days(400);
        let times = [old, old, old, old, old, now(), now()];
        let purged = |n| {
            SecurityEvent::new(Uuid::now_v7(), now(), Action::AuditPurged, Outcome::Success).details(json!({ "n": n }))
        };
        // No checkpoint old enough: nothing may go, whatever the age of the events.
        let (store, s) = chain_of(&db, &times, &[]).await;
        assert_eq!(store.purge_audit_before(now() - Duration::days(365), purged(0)).await.unwrap(), None);
        drop(store);
        let db = match db.backend() {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().await.unwrap(),
        };
        let _ = s;
        let (store, s) = chain_of(&db, &times, &[3, 6]).await;
        let report = store.purge_audit_before(now() - Duration::days(365), purged(1)).await.unwrap().unwrap();
        assert_eq!((report.through_seq, report.deleted), (s[3], 4));
        let left = store.export_page(&AuditFilter::default(), i64::MIN, 100).await.unwrap();
        assert_eq!(left.first().map(|e| e.seq), Some(s[4]), "s[4] is older than the cutoff but after the checkpoint");
        let purge_event = left.last().unwrap();
        assert_eq!(purge_event.event.action, Action::AuditPurged);
        assert_eq!(purge_event.event.details["through_seq"], s[3]);
        assert_eq!(purge_event.event.details["deleted"], 4);

        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok, "{:?}: {r:?}", db.backend());
        assert_eq!(r.anchored_at, Some(s[3]));
        assert_eq!(r.events_checked, 4, "s[4], s[5], s[6] and the purge event");

        // Deleting the first event after the anchor is still caught.
        db.execute(&format!("DELETE FROM audit_events WHERE seq = {}", s[4])).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!((r.fault, r.first_bad_seq), (Some(ChainFault::BrokenLink), Some(s[5])), "{:?}", db.backend());
    });
}

#[tokio::test]
async fn cutting_the_log_at_a_checkpoint_without_a_purge_is_caught() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 6], &[2]).await;
        db.execute(&format!("DELETE FROM audit_events WHERE seq <= {}", s[2])).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!((r.ok, r.fault, r.first_bad_seq), (false, Some(ChainFault::UnrecordedPurge), Some(s[3])));
    });
}

/// Takes a migrated database back to the schema before the keyed chain (migration 10), with
/// its events linked as they were then: the unkeyed hash (`legacy`), or not at all (events from
/// before the chain existed).
async fn back_before_the_keyed_chain(db: &TestDb, store: &Store, legacy: bool) {
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 10").await;
    db.execute("DROP TABLE audit_chain_origin").await;
    db.execute("ALTER TABLE audit_head DROP COLUMN checkpoint_seq").await;
    db.execute("ALTER TABLE audit_head DROP COLUMN checkpoint_mac").await;
    db.execute("ALTER TABLE audit_checkpoints DROP COLUMN prev_mac").await;
    db.execute("CREATE INDEX audit_events_unchained ON audit_events (seq) WHERE hash IS NULL").await;
    let mut prev = rampart_domain::event::CHAIN_GENESIS;
    for e in store.export_page(&AuditFilter::default(), i64::MIN, 1000).await.unwrap() {
        let hash = e.event.legacy_chain_hash(&prev);
        let (p, h) = if legacy { (blob(db, &prev), blob(db, &hash)) } else { ("NULL".into(), "NULL".into()) };
        db.execute(&format!("UPDATE audit_events SET prev_hash = {p}, hash = {h} WHERE seq = {}", e.seq)).await;
        prev = hash;
    }
    let head = if legacy { prev } else { rampart_domain::event::CHAIN_GENESIS };
    db.execute(&format!("UPDATE audit_head SET hash = {} WHERE id = 1", blob(db, &head))).await;
}

/// Issue 15, item 2: events linked before the chain was keyed keep their unkeyed links, which
/// the run that applies the keyed chain's migration seals (where they end, under a MAC), and
/// their old unchained checkpoints stay valid; new events link on, keyed. Rewriting that old
/// part consistently is caught, since the seal vouches for its last link.
#[tokio::test]
async fn an_upgraded_log_keeps_its_unkeyed_part_sealed() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 3], &[]).await;
        back_before_the_keyed_chain(&db, &store, true).await;
        // A checkpoint of the time: unchained, over the second event.
        let second = store.export_page(&AuditFilter::default(), s[1] - 1, 1).await.unwrap().remove(0);
        let key = rampart_testkit::test_master_key().derive(rampart_domain::audit::CHECKPOINT_KEY_PURPOSE);
        let old = Checkpoint::sign(&key, keys().key_id(), s[1], second.hash.unwrap().try_into().unwrap(), None, now());
        db.execute(&format!(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, mac) VALUES ({}, {}, {}, '{}', {})",
            old.seq,
            blob(&db, &old.hash),
            ts_literal(&db, old.signed_at),
            old.key_id,
            blob(&db, &old.mac),
        ))
        .await;

        let report = store.migrate().await.unwrap();
        assert_eq!(report.applied, vec![10], "{:?}", db.backend());
        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok && r.events_checked == 3 && r.checkpoints_checked == 1, "{:?}: {r:?}", db.backend());
        for i in 0..2 {
            store.append_event(&event_at(now(), 10 + i)).await.unwrap();
            store.sign_checkpoint(now()).await.unwrap().unwrap();
        }
        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok && r.events_checked == 5 && r.checkpoints_checked == 3, "{:?}: {r:?}", db.backend());

        // The unkeyed part rewritten consistently, its checkpoint deleted: the seal holds the
        // old last link.
        db.execute(
            "DELETE FROM audit_events WHERE seq > 0 AND seq NOT IN (SELECT seq FROM audit_events ORDER BY seq LIMIT 3)",
        )
        .await;
        db.execute("DELETE FROM audit_checkpoints").await;
        rewrite_from(&db, &store, s[0], |prev, e| e.legacy_chain_hash(prev)).await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!((r.ok, r.fault), (false, Some(ChainFault::BadOrigin)), "{:?}: {r:?}", db.backend());
    });
}

/// Issue 15, item 2: events never linked (written before the chain existed) are linked once,
/// by the run that introduces the keyed chain; a later start links nothing, so nulling a hash
/// and restarting (`rampart migrate`) leaves a broken link, not a fresh chain.
#[tokio::test]
async fn unlinked_events_are_linked_once_and_never_again() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 3], &[]).await;
        back_before_the_keyed_chain(&db, &store, false).await;
        assert_eq!(store.migrate().await.unwrap().applied, vec![10]);
        let r = store.verify_audit_chain().await.unwrap();
        assert!(r.ok && r.events_checked == 3, "{:?}: {r:?}", db.backend());

        db.execute(&format!("UPDATE audit_events SET prev_hash = NULL, hash = NULL WHERE seq >= {}", s[1])).await;
        assert!(store.migrate().await.unwrap().applied.is_empty());
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!(
            (r.ok, r.fault, r.first_bad_seq),
            (false, Some(ChainFault::BrokenLink), Some(s[1])),
            "{:?}",
            db.backend()
        );
        // Nor does removing the seal make a chain without one pass.
        db.execute("UPDATE audit_chain_origin SET mac = NULL").await;
        let r = store.verify_audit_chain().await.unwrap();
        assert_eq!((r.ok, r.fault), (false, Some(ChainFault::BadOrigin)), "{:?}", db.backend());
    });
}

fn ts_literal(db: &TestDb, t: OffsetDateTime) -> String {
    let f = t
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap();
    match db.backend() {
        Backend::Sqlite => format!("'{f}'"),
        Backend::Postgres => format!("TIMESTAMPTZ '{f}'"),
    }
}

// ---------------------------------------------------------------------------------------------
// Over HTTP.

async fn admin_app(configure: impl FnOnce(&mut rampart_config::Config)) -> (TestApp, String) {
    let app = TestApp::spawn_with(TestDb::fresh().await, configure).await;
    let token = app.create_and_login("root@example.com", "correct horse battery", &["admin"]).await.access_token;
    (app, token)
}

#[tokio::test]
async fn the_audit_api_filters_pages_counts_and_records_its_own_use() {
    let (app, token) = admin_app(|_| {}).await;
    let since = rampart_server::views::rfc3339(now());
    for i in 0..3 {
        let (status, _) = app
            .post_json(
                "/v1/auth/login",
                &json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Failed logins, newest first, by action prefix and outcome.
    let (st, page) = app.get_bearer("/v1/admin/audit?action=auth&outcome=failure&limit=2", &token).await;
    assert_eq!(st, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0]["seq"].as_i64() > items[1]["seq"].as_i64(), "newest first");
    assert!(items.iter().all(|e| e["action"] == "auth.login" && e["outcome"] == "failure"));
    assert_eq!(items[0]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(items[0]["actor"]["type"], "anonymous");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) =
        app.get_bearer(&format!("/v1/admin/audit?action=auth&outcome=failure&limit=2&cursor={cursor}"), &token).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["next_cursor"], serde_json::Value::Null, "last page: null, not left out");
    // A segment prefix, not a string prefix; since/until.
    let (_, none) = app.get_bearer("/v1/admin/audit?action=auth.log", &token).await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let (_, later) = app.get_bearer(&format!("/v1/admin/audit?action=user.created&since={since}"), &token).await;
    assert_eq!(later["items"].as_array().unwrap().len(), 0, "the admin was created before `since`");

    // Stats by action and outcome.
    let (st, stats) = app.get_bearer(&format!("/v1/admin/audit/stats?since={since}&action=auth.login"), &token).await;
    assert_eq!(st, 200, "{stats}");
    let failures = stats["items"].as_array().unwrap().iter().find(|r| r["outcome"] == "failure").unwrap();
    assert_eq!(failures["count"], 3);
    assert_eq!(stats["total"], 3);

    // Every read above was itself recorded, with its filter.
    let (_, reads) = app.get_bearer("/v1/admin/audit?action=audit.read&limit=100", &token).await;
    let reads = reads["items"].as_array().unwrap();
    assert!(reads.len() >= 5, "{reads:?}");
    assert!(reads.iter().any(|e| e["details"]["filter"]["action"] == "auth.login" && e["details"]["view"] == "stats"));

    // Reading a user's record is data access, recorded against that user (resource filter).
    let ada = app.create_user("ada@example.com", "correct horse battery", &["user"]).await;
    assert_eq!(app.get_bearer(&format!("/v1/admin/users/{}", ada.id.0), &token).await.0, 200);
    let (_, read) = app
        .get_bearer(&format!("/v1/admin/audit?action=user.read&resource_type=user&resource_id={}", ada.id.0), &token)
        .await;
    let read = read["items"].as_array().unwrap();
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0]["actor"]["type"], "user");

    // Bad filters: all reported at once, with stable codes.
    let (st, p) =
        app.get_bearer("/v1/admin/audit?action=auth%25&since=yesterday&outcome=maybe&limit=0&format=csv", &token).await;
    assert_eq!(st, 400);
    assert_eq!(p["code"], "validation_failed");
    let codes: Vec<(&str, &str)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    for want in [
        ("action", "invalid_action"),
        ("since", "invalid_time"),
        ("outcome", "invalid_outcome"),
        ("limit", "out_of_range"),
        ("format", "not_allowed"),
    ] {
        assert!(codes.contains(&want), "{want:?} in {codes:?}");
    }
    let (st, p) = app.get_bearer("/v1/admin/audit?colour=blue", &token).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "unknown parameters are refused");
}

#[tokio::test]
async fn exporting_needs_its_own_permission_streams_both_formats_and_is_recorded() {
    let (app, token) = admin_app(|_| {}).await;
    let mod_token = app.create_and_login("mod@example.com", "correct horse battery", &["moderator"]).await.access_token;
    // A moderator reads the log (audit:read) but may not export it.
    assert_eq!(app.get_bearer("/v1/admin/audit", &mod_token).await.0, 200);
    let (st, p) = app.get_bearer("/v1/admin/audit/export", &mod_token).await;
    assert_eq!((st, p["code"].as_str()), (403, Some("forbidden")), "{p}");

    let r = app.authed(Method::GET, "/v1/admin/audit/export?format=jsonl", &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 4, "{body}");
    assert!(lines.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()), "oldest first");
    // Recorded before the first byte, with the rows it holds: those up to the newest event when
    // it was counted, so not its own record (export controls: the rows sent are those counted).
    assert_ne!(lines.last().unwrap()["action"], "audit.exported");
    let recorded = app.wait_for_event(Action::AuditExported).await;
    assert_eq!(recorded.details["rows"].as_u64(), Some(lines.len() as u64), "{}", recorded.details);
    // The export's chain links match what verify checks.
    for w in lines.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }

    let r = app.authed(Method::GET, "/v1/admin/audit/export?format=csv&action=user", &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("rampart-audit.csv"));
    let csv = r.text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some(rampart_domain::audit::CSV_HEADER.trim_end()));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 2, "two users were created: {csv}");
    assert!(rows.iter().all(|r| r.split(',').nth(3) == Some("user.created")));

    let (st, p) = app.get_bearer("/v1/admin/audit/export?format=xml", &token).await;
    assert_eq!((st, p["errors"][0]["code"].as_str()), (400, Some("invalid_format")));
    let (_, exports) = app.get_bearer("/v1/admin/audit?action=audit.exported", &token).await;
    let formats: Vec<&str> =
        exports["items"].as_array().unwrap().iter().map(|e| e["details"]["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["csv", "jsonl"]);
}

#[tokio::test]
async fn the_verify_endpoint_checks_checkpoints_signed_by_the_server() {
    let (app, token) = admin_app(|_| {}).await;
    rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().expect("a first checkpoint");
    assert!(rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().is_none(), "the head is signed");
    let (st, v) = app.get_bearer("/v1/admin/audit/verify", &token).await;
    assert_eq!(st, 200);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checkpoints_checked"].as_u64() >= Some(1), "{v}");
    // Rewrite the chain whole from the first event, the unkeyed way an attacker can: the
    // first rewritten link gives it away.
    let first = app.state.store.export_page(&AuditFilter::default(), i64::MIN, 1).await.unwrap().remove(0).seq;
    rewrite_from(&app.db, &app.state.store, first, |prev, e| e.legacy_chain_hash(prev)).await;
    let (_, v) = app.get_bearer("/v1/admin/audit/verify", &token).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!((v["fault"].as_str(), v["first_bad_seq"].as_i64()), (Some("broken_link"), Some(first)), "{v}");
    let (_, alarms) = app.get_bearer("/v1/admin/audit?action=audit.verified&severity=critical", &token).await;
    assert_eq!(alarms["items"].as_array().unwrap().len(), 1, "a broken chain is a critical event");
}

#[tokio::test]
async fn high_volume_refusals_are_written_once_then_summarised() {
    let (app, token) = admin_app(|c| c.audit.aggregate_interval_secs = 3600).await;
    let plain = app.create_and_login("plain@example.com", "correct horse battery", &["user"]).await.access_token;
    for _ in 0..20 {
        assert_eq!(app.get_bearer("/v1/admin/users", &plain).await.0, 403);
    }
    let denied = |app: &TestApp| {
        let store = app.state.store.clone();
        async move {
            let f = AuditFilter { action: Some("authz.denied".into()), ..Default::default() };
            store.query_events(&f, None, 100).await.unwrap()
        }
    };
    assert_eq!(denied(&app).await.len(), 1, "the first refusal at once, the rest held back");
    app.state.events.flush_aggregated(3600).await;
    let events = denied(&app).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.details["aggregated"]["count"], 19, "{:?}", events[0].event.details);
    assert_eq!(events[0].event.details["permission"], "users:read");
    // The metrics count every refusal.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = metrics.lines().find(|l| l.contains("authz.denied")).unwrap_or_default().to_string();
    assert!(line.trim_end().ends_with(" 20"), "{line}");
    // A new interval writes the next first occurrence at once again.
    assert_eq!(app.get_bearer("/v1/admin/users", &plain).await.0, 403);
    assert_eq!(denied(&app).await.len(), 3);
    drop(token);
}

#[tokio::test]
async fn the_siem_output_ships_every_event_as_ecs_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("siem.jsonl");
    let p = path.clone();
    let (app, token) = admin_app(move |c| {
        c.audit.siem = rampart_config::SiemOutput::File;
        c.audit.siem_file = Some(p);
    })
    .await;
    let (status, _) =
        app.post_json("/v1/auth/login", &json!({"email": "ghost@example.com", "password": "wrong password"})).await;
    assert_eq!(status, 401);
    let cp = rampart_core::services::audit::sign_checkpoint(&app.state).await.unwrap().expect("the head moved");
    // The output follows the table about once a second.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["rampart"]["checkpoint"]["seq"] == cp.seq) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let failed = lines
        .iter()
        .find(|l| l["event"]["action"] == "auth.login" && l["event"]["outcome"] == "failure")
        .unwrap_or_else(|| panic!("the failed login in {lines:#?}"));
    assert_eq!(failed["ecs"]["version"], "8.11.0");
    assert_eq!(failed["event"]["category"][0], "authentication");
    assert_eq!(failed["source"]["ip"], "127.0.0.1");
    assert_eq!(failed["rampart"]["hash"].as_str().unwrap().len(), 64);
    assert!(failed["@timestamp"].as_str().unwrap().ends_with('Z'));
    let seqs: Vec<i64> = lines.iter().filter_map(|l| l["event"]["sequence"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1 || app.db.backend() == Backend::Postgres),
        "no gaps on SQLite: {seqs:?}"
    );
    let line = lines.iter().find(|l| l["rampart"]["checkpoint"]["seq"] == cp.seq).expect("the checkpoint shipped");
    assert_eq!(line["rampart"]["checkpoint"]["mac"], hex::encode(cp.mac));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    drop(token);
}
