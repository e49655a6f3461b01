//! The storage contract: every backend gives the same answers.

use rampart_domain::audit::AuditFilter;
use rampart_domain::{Action, Actor, Email, NewUser, Outcome, Resource, RoleName, SecurityEvent, Severity, UserId};
use rampart_store::{Backend, Store, StoreError};
use rampart_testkit::{TestDb, for_each_backend};
use time::OffsetDateTime;
use uuid::Uuid;

async fn migrated(db: &TestDb) -> Store {
    let store = db.store().await;
    let report = store.migrate().await.unwrap();
    assert!(!report.applied.is_empty(), "a fresh database gets every migration");
    assert_eq!(report.applied.len(), report.total);
    store
}

fn now() -> OffsetDateTime {
    rampart_domain::Clock::now(&rampart_domain::SystemClock)
}

fn new_user(email: &str, roles: &[&str]) -> NewUser {
    NewUser {
        id: UserId(Uuid::now_v7()),
        email: Email::parse(email).unwrap(),
        name: Some("Ada".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        roles: roles.iter().map(|r| RoleName::parse(r).unwrap()).collect(),
        created_at: now(),
    }
}

fn created_event(user: &NewUser) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), now(), Action::UserCreated, Outcome::Success)
        .actor(Actor::System)
        .resource(Resource::new("user", user.id))
}

#[tokio::test]
async fn migrations_are_idempotent_and_seed_the_builtin_roles() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let again = store.migrate().await.unwrap();
        assert!(again.applied.is_empty(), "{:?}: second run applies nothing", db.backend());
        let roles = store.list_roles().await.unwrap();
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["admin", "moderator", "user"]);
        let admin = roles.iter().find(|r| r.name == "admin").unwrap();
        assert_eq!(admin.permissions, ["*"]);
        assert!(roles.iter().all(|r| r.builtin));
        store.ping().await.unwrap();
        let expected = match db.backend() {
            rampart_testkit::Backend::Sqlite => Backend::Sqlite,
            rampart_testkit::Backend::Postgres => Backend::Postgres,
        };
        assert_eq!(store.backend(), expected);
    });
}

#[tokio::test]
async fn create_user_stores_user_roles_and_event_together() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let before = store.count_events().await.unwrap();
        let user = new_user("Ada@Example.com", &["admin", "user"]);
        let event = created_event(&user);
        let created = store.create_user(&user, &event).await.unwrap();
        assert_eq!(created.email, "ada@example.com");
        assert_eq!(created.roles, ["admin", "user"]);

        let by_id = store.get_user(user.id).await.unwrap().unwrap();
        let by_email = store.find_user_by_email(&Email::parse("ADA@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(by_id, by_email);
        assert_eq!(by_id, created);
        assert!(!by_id.email_verified && !by_id.disabled);
        assert_eq!(store.password_hash(user.id).await.unwrap().as_deref(), Some(user.password_hash.as_str()));
        assert_eq!(store.count_events().await.unwrap(), before + 1);
        let last = store.recent_events(1).await.unwrap().remove(0);
        assert_eq!(last.event, event);
        assert!(store.get_user(UserId(Uuid::now_v7())).await.unwrap().is_none());
    });
}

/// Rows stored before addresses were normalised (a Unicode domain, a fullwidth letter kept as
/// typed) are found by the spelling they were stored with; where a row in the normal form exists
/// too, it wins.
#[tokio::test]
async fn lookups_find_the_normal_form_first_then_a_row_stored_before_normalisation() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let stored =
            |email: &str| NewUser { email: Email::from_stored(email.into()), ..new_user("x@example.com", &[]) };
        let legacy = stored("bob@bücher.example");
        store.create_user(&legacy, &created_event(&legacy)).await.unwrap();
        for spelling in ["bob@bücher.example", "Bob@BÜCHER.example"] {
            let lookup = rampart_domain::EmailLookup::parse(spelling).unwrap();
            assert_eq!(lookup.normal().as_str(), "bob@xn--bcher-kva.example");
            let found = store.find_user_by_email(lookup.clone()).await.unwrap().unwrap();
            assert_eq!(found.id, legacy.id, "{spelling}");
            assert_eq!(store.login_candidate(&lookup).await.unwrap().unwrap().0, legacy.id, "{spelling}");
        }

        let impostor = stored("\u{ff41}dmin@example.com");
        store.create_user(&impostor, &created_event(&impostor)).await.unwrap();
        let lookup = rampart_domain::EmailLookup::parse("\u{ff41}dmin@example.com").unwrap();
        assert_eq!(store.login_candidate(&lookup).await.unwrap().unwrap().0, impostor.id, "alone, still reachable");
        let admin = new_user("admin@example.com", &[]);
        store.create_user(&admin, &created_event(&admin)).await.unwrap();
        assert_eq!(store.login_candidate(&lookup).await.unwrap().unwrap().0, admin.id, "the normal form wins");
        assert_eq!(store.find_user_by_email(lookup).await.unwrap().unwrap().id, admin.id);
        let none = rampart_domain::EmailLookup::parse("nobody@example.com").unwrap();
        assert!(store.login_candidate(&none).await.unwrap().is_none());
    });
}

#[tokio::test]
async fn a_taken_email_or_unknown_role_stores_nothing() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let first = new_user("taken@example.com", &["user"]);
        store.create_user(&first, &created_event(&first)).await.unwrap();
        let (users, events) = (store.count_users().await.unwrap(), store.count_events().await.unwrap());

        let dup = new_user("TAKEN@example.com", &["admin"]);
        let err = store.create_user(&dup, &created_event(&dup)).await.unwrap_err();
        assert!(matches!(err, StoreError::EmailTaken), "{err:?}");

        let bad_role = new_user("new@example.com", &["user", "superhero"]);
        let err = store.create_user(&bad_role, &created_event(&bad_role)).await.unwrap_err();
        assert!(matches!(&err, StoreError::UnknownRole(r) if r == "superhero"), "{err:?}");

        assert_eq!(store.count_users().await.unwrap(), users, "no user row left behind");
        assert_eq!(store.count_events().await.unwrap(), events, "no event for a change that did not happen");
        assert!(store.get_user(dup.id).await.unwrap().is_none());
        assert!(store.get_user(bad_role.id).await.unwrap().is_none());
    });
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_exactly_one_user() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    let user = new_user("race@example.com", &["user"]);
                    barrier.wait().await;
                    store.create_user(&user, &created_event(&user)).await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::EmailTaken) => {}
                Err(e) => panic!("{:?}: unexpected {e:?}", db.backend()),
            }
        }
        assert_eq!(ok, 1, "{:?}", db.backend());
        assert_eq!(store.count_users().await.unwrap(), 1);
        assert_eq!(store.count_events().await.unwrap(), 1, "exactly one user.created event");
    });
}

#[tokio::test]
async fn events_round_trip_every_field_in_order() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let full = SecurityEvent::new(Uuid::now_v7(), now(), Action::UserCreated, Outcome::Denied)
            .severity(Severity::Critical)
            .actor(Actor::ApiKey(Uuid::now_v7()))
            .resource(Resource::new("user", "u-1"))
            .ip(Some("2001:db8::1".parse().unwrap()))
            .user_agent(Some("curl/8.0 ünïcode"))
            .request_id(Some("req-42"))
            .details(serde_json::json!({"reason": "test", "n": [1, 2, 3], "nested": {"ok": true}}));
        let bare = SecurityEvent::new(Uuid::now_v7(), now(), Action::ConfigLoaded, Outcome::Success);
        store.append_event(&full).await.unwrap();
        store.append_event(&bare).await.unwrap();
        let got = store.recent_events(10).await.unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].seq > got[1].seq, "newest first, by seq");
        assert_eq!(got[0].event, bare);
        assert_eq!(got[1].event, full);
        assert!(store.append_event(&bare).await.is_err(), "event ids are unique");
    });
}

fn signing_key(kid: &str, created_at: OffsetDateTime) -> rampart_store::StoredSigningKey {
    rampart_store::StoredSigningKey {
        kid: kid.into(),
        alg: "EdDSA".into(),
        private_sealed: format!("v1.test.{kid}"),
        public_jwk: serde_json::json!({"kid": kid}),
        created_at,
        retired_at: None,
    }
}

fn key_event(kid: &str) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), now(), Action::SigningKeyRotated, Outcome::Success)
        .resource(Resource::new("signing_key", kid))
}

#[tokio::test]
async fn signing_key_rotation_is_compare_and_swap() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let t0 = now();
        store.rotate_signing_key(&signing_key("k1", t0), None, &key_event("k1")).await.unwrap();
        // A second "first key" loses: there is a current key already.
        let err = store.rotate_signing_key(&signing_key("k1b", t0), None, &key_event("k1b")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        // Replacing a key that is not current loses too, and changes nothing.
        let err = store.rotate_signing_key(&signing_key("k2", t0), Some("nope"), &key_event("k2")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let t1 = t0 + time::Duration::seconds(10);
        store.rotate_signing_key(&signing_key("k2", t1), Some("k1"), &key_event("k2")).await.unwrap();
        // k1 is now retired at t1; the same stale rotation cannot happen twice.
        let err = store.rotate_signing_key(&signing_key("k3", t1), Some("k1"), &key_event("k3")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let all = store.signing_keys(t0 - time::Duration::seconds(1)).await.unwrap();
        let kids: Vec<_> = all.iter().map(|k| (k.kid.as_str(), k.retired_at.is_some())).collect();
        assert_eq!(kids, [("k2", false), ("k1", true)], "newest first; losers left nothing");
        assert_eq!(all[1].retired_at, Some(t1));
        // Keys retired before the window are left out; the current one never is.
        let later = store.signing_keys(t1 + time::Duration::seconds(1)).await.unwrap();
        assert_eq!(later.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k2"]);
        let rotations = store.recent_events(10).await.unwrap();
        assert_eq!(
            rotations.iter().filter(|e| e.event.action == Action::SigningKeyRotated).count(),
            2,
            "one event per successful change"
        );
    });
}

/// Times compare as times on both backends, also within one second (SQLite keeps them as text:
/// a variable-length fraction would sort `.15` before `.1`).
#[tokio::test]
async fn time_windows_are_exact_below_one_second() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let t0 = time::macros::datetime!(2026-11-23 12:00:00.1 UTC);
        store.rotate_signing_key(&signing_key("a", t0), None, &key_event("a")).await.unwrap();
        let retired = time::macros::datetime!(2026-11-23 12:00:00.15 UTC);
        store.rotate_signing_key(&signing_key("b", retired), Some("a"), &key_event("b")).await.unwrap();
        let kids = |keys: Vec<rampart_store::StoredSigningKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
        let since = time::macros::datetime!(2026-11-23 12:00:00.1 UTC);
        assert_eq!(
            kids(store.signing_keys(since).await.unwrap()),
            ["b", "a"],
            "{:?}: retired .15 is after .1",
            db.backend()
        );
        let since = time::macros::datetime!(2026-11-23 12:00:00.150001 UTC);
        assert_eq!(kids(store.signing_keys(since).await.unwrap()), ["b"], "{:?}", db.backend());
        let since = time::macros::datetime!(2026-11-23 11:59:59.9 UTC);
        assert_eq!(kids(store.signing_keys(since).await.unwrap()), ["b", "a"], "{:?}", db.backend());
    });
}

fn event(action: Action) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), now(), action, Outcome::Success).actor(Actor::System)
}

fn session_for(user: UserId, at: OffsetDateTime, policy: rampart_domain::SessionPolicy) -> rampart_domain::Session {
    let (idle, absolute) = policy.start(at);
    rampart_domain::Session {
        id: rampart_domain::SessionId(Uuid::now_v7()),
        user_id: user,
        created_at: at,
        last_active_at: at,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
        amr: vec![rampart_domain::mfa::Amr::Pwd],
        revoked_at: None,
    }
}

#[tokio::test]
async fn concurrent_refreshes_rotate_once_and_reuse_revokes_the_session() {
    use rampart_domain::{OpaqueToken, SessionPolicy, TokenKind};
    use rampart_store::RefreshOutcome;
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let user = new_user("r@example.com", &["user"]);
        store.create_user(&user, &created_event(&user)).await.unwrap();
        let policy = SessionPolicy { idle: time::Duration::days(30), absolute: time::Duration::days(90) };
        let session = session_for(user.id, now(), policy);
        let first = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
        store.create_session(&session, Some(first.hash()), None, &event(Action::Login)).await.unwrap();
        assert_eq!(store.get_session(session.id).await.unwrap().unwrap(), session, "{:?}", db.backend());

        let tasks = (0..20).map(|_| {
            let store = store.clone();
            let presented = first.hash();
            async move {
                let next = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
                store
                    .refresh_session(presented, next.hash(), now(), policy, |o| match o {
                        RefreshOutcome::Rotated(_) => Some(event(Action::TokenRefreshed)),
                        RefreshOutcome::Reused(_) => Some(event(Action::RefreshTokenReused)),
                        _ => None,
                    })
                    .await
                    .unwrap()
                    .0
            }
        });
        let outcomes = futures::future::join_all(tasks).await;
        let rotated = outcomes.iter().filter(|o| matches!(o, RefreshOutcome::Rotated(_))).count();
        let reused = outcomes.iter().filter(|o| matches!(o, RefreshOutcome::Reused(_))).count();
        assert_eq!((rotated, reused), (1, 19), "{:?}", db.backend());
        let stored = store.get_session(session.id).await.unwrap().unwrap();
        assert!(stored.revoked_at.is_some(), "reuse revoked the session");
        assert!(store.list_sessions(user.id, now()).await.unwrap().is_empty());
        let unknown = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
        let (o, ev) = store.refresh_session(unknown.hash(), first.hash(), now(), policy, |_| None).await.unwrap();
        assert_eq!((o, ev), (RefreshOutcome::Unknown, None));
    });
}

#[tokio::test]
async fn refreshing_an_ended_session_records_its_event() {
    use rampart_domain::{OpaqueToken, SessionPolicy, TokenKind};
    use rampart_store::{RefreshOutcome, RevokeSessions};
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let user = new_user("ended@example.com", &["user"]);
        store.create_user(&user, &created_event(&user)).await.unwrap();
        let policy = SessionPolicy { idle: time::Duration::days(30), absolute: time::Duration::days(90) };
        let session = session_for(user.id, now(), policy);
        let token = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
        store.create_session(&session, Some(token.hash()), None, &event(Action::Login)).await.unwrap();
        store
            .revoke_sessions(user.id, RevokeSessions::All, now(), "test", &event(Action::SessionRevoked))
            .await
            .unwrap();

        let failed = SecurityEvent::new(Uuid::now_v7(), now(), Action::TokenRefreshed, Outcome::Failure)
            .details(serde_json::json!({ "reason": "session_ended" }));
        let next = OpaqueToken::generate(TokenKind::Refresh, &mut rand::rngs::OsRng);
        let (outcome, ev) = store
            .refresh_session(token.hash(), next.hash(), now(), policy, |o| {
                matches!(o, RefreshOutcome::Inactive(_)).then(|| failed.clone())
            })
            .await
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Inactive(_)), "{outcome:?} {:?}", db.backend());
        assert_eq!(ev.as_ref(), Some(&failed));
        let newest = store.recent_events(1).await.unwrap();
        assert_eq!(newest[0].event, failed, "the refusal is recorded, in the exchange's transaction");
        assert!(store.refresh_token_session(next.hash()).await.unwrap().is_none(), "no new token");
        assert!(store.verify_audit_chain().await.unwrap().ok);
    });
}

#[tokio::test]
async fn throttle_counts_atomically_and_success_takes_attempts_back() {
    use rampart_domain::ThrottlePolicy;
    use rampart_store::AttemptDecision;
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let policy = ThrottlePolicy {
            max_failures: 4,
            window: time::Duration::minutes(15),
            lockout: time::Duration::minutes(15),
            delay_base: time::Duration::ZERO,
        };
        let t = now();
        let tasks = (0..12).map(|_| {
            let store = store.clone();
            async move { store.throttle_attempt(&[("id:x", policy)], t).await.unwrap() }
        });
        let decisions = futures::future::join_all(tasks).await;
        let counted = decisions.iter().filter(|d| matches!(d, AttemptDecision::Counted(_))).count();
        assert_eq!(counted, 4, "{:?}: {decisions:?}", db.backend());
        assert!(decisions.iter().any(|d| *d == AttemptDecision::Counted(vec![true])), "the 4th locks");
        assert!(store.throttle_clear("id:x").await.unwrap());
        assert!(matches!(store.throttle_attempt(&[("id:x", policy)], t).await.unwrap(), AttemptDecision::Counted(_)));

        // A shared address: each right attempt is taken back, so it never locks.
        for _ in 0..10 {
            assert!(matches!(
                store.throttle_attempt(&[("ip:1", policy)], t).await.unwrap(),
                AttemptDecision::Counted(_)
            ));
            store.throttle_succeeded(&[], &[("ip:1", policy, false)], t).await.unwrap();
        }
    });
}

#[tokio::test]
async fn password_history_and_single_use_account_tokens() {
    use rampart_domain::{OpaqueToken, TokenKind};
    use rampart_store::{RevokeSessions, TokenPurpose};
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let user = new_user("h@example.com", &["user"]);
        store.create_user(&user, &created_event(&user)).await.unwrap();
        for i in 1..=3 {
            let t = now();
            store
                .set_password(user.id, &format!("hash-{i}"), t, RevokeSessions::All, &event(Action::PasswordChanged))
                .await
                .unwrap();
        }
        let recent = store.recent_password_hashes(user.id, 3).await.unwrap();
        assert_eq!(recent, ["hash-3", "hash-2", "hash-1"], "{:?}", db.backend());
        assert_eq!(store.recent_password_hashes(user.id, 1).await.unwrap(), ["hash-3"]);

        let token = OpaqueToken::generate(TokenKind::ResetPassword, &mut rand::rngs::OsRng);
        let t = now();
        store
            .create_account_token(
                token.hash(),
                TokenPurpose::ResetPassword,
                user.id,
                "h@example.com",
                t,
                t + time::Duration::minutes(30),
                None,
            )
            .await
            .unwrap();
        let found = store.find_account_token(token.hash(), t).await.unwrap().unwrap();
        assert_eq!(found.user_id, user.id);
        assert!(
            store.find_account_token(token.hash(), t + time::Duration::minutes(31)).await.unwrap().is_none(),
            "expired"
        );
        store
            .complete_password_reset(token.hash(), user.id, "hash-4", now(), "id:h", &event(Action::PasswordReset))
            .await
            .unwrap();
        let again = store
            .complete_password_reset(token.hash(), user.id, "hash-5", now(), "id:h", &event(Action::PasswordReset))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "single use");
        assert_eq!(store.password_hash(user.id).await.unwrap().unwrap(), "hash-4");
    });
}

async fn chained(db: &TestDb, n: usize) -> Store {
    let store = migrated(db).await;
    for i in 0..n {
        let ev = event(Action::Login).details(serde_json::json!({ "i": i, "nested": {"b": 1, "a": [1.5, null]} }));
        store.append_event(&ev).await.unwrap();
    }
    store
}

async fn seqs(store: &Store) -> Vec<i64> {
    let mut s: Vec<i64> = store.recent_events(1000).await.unwrap().iter().map(|e| e.seq).collect();
    s.sort();
    s
}

/// The attacker owns the database: on PostgreSQL they first let themselves set `seq` by hand.
async fn attacker_owns(db: &TestDb) {
    if db.backend() == rampart_testkit::Backend::Postgres {
        db.execute("ALTER TABLE audit_events ALTER COLUMN seq SET GENERATED BY DEFAULT").await;
    }
}

#[tokio::test]
async fn the_audit_chain_verifies_and_names_the_first_tampered_event() {
    for_each_backend!(|db| {
        let store = chained(&db, 8).await;
        let report = store.verify_audit_chain().await.unwrap();
        assert!(report.ok, "{:?}: {report:?}", db.backend());
        assert_eq!(report.events_checked, 8);
        assert_eq!(report.first_bad_seq, None);
    });
    // Each kind of tampering, on a fresh chain each time, straight in the database.
    /// Given the chain's seqs: the tampering SQL and the seq the verdict must name.
    type Tamper = fn(&[i64]) -> (String, i64);
    let kinds: [(&str, Tamper); 4] = [
        ("edit", |s| (format!("UPDATE audit_events SET outcome = 'failure' WHERE seq = {}", s[3]), s[3])),
        ("delete", |s| (format!("DELETE FROM audit_events WHERE seq = {}", s[3]), s[4])),
        ("delete the newest", |s| (format!("DELETE FROM audit_events WHERE seq = {}", s[7]), s[7])),
        ("insert", |s| {
            let sql = format!(
                "INSERT INTO audit_events (seq, id, ts, action, outcome, severity, actor_type, details, prev_hash, hash) \
                 SELECT {0} + 1000, NEW_ID, ts, action, outcome, severity, actor_type, details, prev_hash, hash \
                 FROM audit_events WHERE seq = {0}",
                s[2]
            );
            (sql, s[2] + 1000)
        }),
    ];
    for (name, tamper) in kinds {
        for_each_backend!(|db| {
            let store = chained(&db, 8).await;
            let s = seqs(&store).await;
            let (sql, first_bad) = tamper(&s);
            let pg = db.backend() == rampart_testkit::Backend::Postgres;
            let sql = sql.replace("NEW_ID", if pg { "gen_random_uuid()" } else { "randomblob(16)" });
            attacker_owns(&db).await;
            db.execute(&sql).await;
            let report = store.verify_audit_chain().await.unwrap();
            assert!(!report.ok, "{name} on {:?} went unnoticed", db.backend());
            assert_eq!(report.first_bad_seq, Some(first_bad), "{name} on {:?}", db.backend());
        });
    }
}

#[tokio::test]
async fn a_batch_append_links_like_single_appends() {
    for_each_backend!(|db| {
        let store = chained(&db, 3).await;
        // More than one multi-row INSERT (1,000 rows each), then single appends after it.
        let batch: Vec<SecurityEvent> =
            (0..2500).map(|i| event(Action::Login).details(serde_json::json!({ "i": i }))).collect();
        store.append_events(&batch).await.unwrap();
        store.append_event(&event(Action::Logout)).await.unwrap();
        let report = store.verify_audit_chain().await.unwrap();
        assert!(report.ok, "{:?}: {report:?}", db.backend());
        assert_eq!(report.events_checked, 3 + 2500 + 1);
        let newest = store.recent_events(2).await.unwrap();
        assert_eq!(newest[1].event, batch[2499], "in order, every field kept");
    });
}

#[tokio::test]
async fn reordered_events_break_the_chain() {
    for_each_backend!(|db| {
        let store = chained(&db, 6).await;
        let s = seqs(&store).await;
        // Swap two neighbours' positions.
        attacker_owns(&db).await;
        let parking = s[5] + 100;
        db.execute(&format!("UPDATE audit_events SET seq = {parking} WHERE seq = {}", s[1])).await;
        db.execute(&format!("UPDATE audit_events SET seq = {} WHERE seq = {}", s[1], s[2])).await;
        db.execute(&format!("UPDATE audit_events SET seq = {} WHERE seq = {parking}", s[2])).await;
        let report = store.verify_audit_chain().await.unwrap();
        assert!(!report.ok, "{:?}", db.backend());
        assert_eq!(report.first_bad_seq, Some(s[1]), "{:?}", db.backend());
    });
}

#[tokio::test]
async fn concurrent_writers_keep_one_valid_chain() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let other = db.store().await; // a second pool: another instance
        let tasks = (0..40).map(|i| {
            let s = if i % 2 == 0 { store.clone() } else { other.clone() };
            async move { s.append_event(&event(Action::Login)).await.unwrap() }
        });
        futures::future::join_all(tasks).await;
        let report = store.verify_audit_chain().await.unwrap();
        assert!(report.ok, "{:?}: {report:?}", db.backend());
        assert!(report.events_checked >= 40);
    });
}

/// Issue 15, item 15: verification on a live server raised false tamper alarms
/// (`head_mismatch`): it read the chain page by page, then compared with a head that had moved.
/// It now verifies up to the head it read first, so concurrent appends are no fault.
#[tokio::test]
async fn verification_under_concurrent_appends_never_reports_a_fault() {
    for_each_backend!(|db| {
        let store = chained(&db, 1200).await;
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    let ev = event(Action::Login).details(serde_json::json!({ "live": i }));
                    store.append_event(&ev).await.unwrap();
                }
            })
        };
        let mut reports = Vec::new();
        while !writer.is_finished() {
            reports.push(store.verify_audit_chain().await.unwrap());
        }
        writer.await.unwrap();
        reports.push(store.verify_audit_chain().await.unwrap());
        assert!(reports.len() >= 2, "{:?}: verified while writing", db.backend());
        for r in &reports {
            assert!(r.ok, "{:?}: a live chain is not tampered with: {r:?}", db.backend());
        }
        assert_eq!(reports.last().unwrap().events_checked, 1500, "{:?}", db.backend());
    });
}

/// The e-mails a user search finds, sorted: through the admin API's `list_users` (followed
/// page by page, two at a time) and the console's `search_users`, which must agree.
async fn searched(store: &Store, q: &str) -> Vec<String> {
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_users(Some(q), after, 2).await.unwrap();
        listed.extend(page.users.into_iter().map(|u| u.email.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let search = rampart_store::UserSearch { q: Some(q.to_string()), ..Default::default() };
    let (console, more) = store.search_users(&search, None, 50, now()).await.unwrap();
    assert!(!more);
    let mut console: Vec<String> = console.into_iter().map(|u| u.user.email.to_string()).collect();
    listed.sort();
    console.sort();
    assert_eq!(listed, console, "{q:?}: the API's search and the console's agree");
    listed
}

/// User search finds a substring of the e-mail or the name, case-insensitively, through the
/// trigram index of migration 0016 (FTS5 on SQLite, pg_trgm on PostgreSQL), with exactly the
/// answers of the full scan it replaced: LIKE's own characters in a query are literal, queries
/// shorter than a trigram still work, and the index follows creation, rename and deletion.
#[tokio::test]
async fn user_search_finds_substrings_and_follows_every_change() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let mk = |email: &str, name: Option<&str>| NewUser { name: name.map(Into::into), ..new_user(email, &["user"]) };
        let users = [
            mk("ada.lovelace@example.com", Some("Ada Lovelace")),
            mk("grace@navy.example", Some("Grace HOPPER")),
            mk("percent%sign@example.org", None),
            mk("under_score@example.org", Some("Back\\Slash")),
            mk("underxscore@example.org", None),
            mk("zoe@example.net", Some("Zoë")),
        ];
        for u in &users {
            store.create_user(u, &created_event(u)).await.unwrap();
        }
        let b = db.backend();
        assert_eq!(searched(&store, "lovelace").await, ["ada.lovelace@example.com"], "{b:?}");
        assert_eq!(searched(&store, "HOPPER").await, ["grace@navy.example"], "{b:?}: a name, any case");
        assert_eq!(
            searched(&store, "example.org").await,
            ["percent%sign@example.org", "under_score@example.org", "underxscore@example.org"],
            "{b:?}"
        );
        assert_eq!(searched(&store, "%").await, ["percent%sign@example.org"], "{b:?}: % is literal");
        assert_eq!(searched(&store, "r_s").await, ["under_score@example.org"], "{b:?}: _ is literal");
        assert_eq!(searched(&store, "k\\s").await, ["under_score@example.org"], "{b:?}: \\ is literal");
        assert_eq!(searched(&store, "ov").await, ["ada.lovelace@example.com"], "{b:?}: two letters");
        assert_eq!(searched(&store, "zoë").await, ["zoe@example.net"], "{b:?}: a non-ASCII name");
        assert_eq!(searched(&store, "nobody").await, Vec::<String>::new(), "{b:?}");
        assert_eq!(searched(&store, "e").await.len(), 6, "{b:?}: every user, over three pages");

        // A rename: the old name no longer finds the user, the new one does.
        let grace = users[1].id;
        let renamed = || {
            SecurityEvent::new(Uuid::now_v7(), now(), Action::UserUpdated, Outcome::Success)
                .actor(Actor::System)
                .resource(Resource::new("user", grace))
        };
        assert!(store.update_user(grace, Some(Some("Rear Admiral")), None, None, now(), &renamed()).await.unwrap());
        assert_eq!(searched(&store, "hopper").await, Vec::<String>::new(), "{b:?}");
        assert_eq!(searched(&store, "admiral").await, ["grace@navy.example"], "{b:?}");
        assert!(store.update_user(grace, Some(None), None, None, now(), &renamed()).await.unwrap());
        assert_eq!(searched(&store, "admiral").await, Vec::<String>::new(), "{b:?}: a name removed");
        assert_eq!(searched(&store, "navy").await, ["grace@navy.example"], "{b:?}: the e-mail still");

        // A deletion, then a new user.
        let ada = users[0].id;
        let erased = SecurityEvent::new(Uuid::now_v7(), now(), Action::UserDeleted, Outcome::Success)
            .actor(Actor::System)
            .resource(Resource::new("user", ada));
        assert!(store.delete_user(ada, &erased).await.unwrap());
        assert_eq!(searched(&store, "lovelace").await, Vec::<String>::new(), "{b:?}");
        let late = mk("late.lovelace@example.com", None);
        store.create_user(&late, &created_event(&late)).await.unwrap();
        assert_eq!(searched(&store, "lovelace").await, ["late.lovelace@example.com"], "{b:?}");
    });
}

/// The audit query's action filter (found actions, one branch per action and outcome read in
/// index order, merged: migration 0017) pages exactly like a filter applied to every event,
/// newest first: an action and its `.…` children, never a look-alike (`auth.log` is neither
/// `auth.login` nor `auth.logout`), with and without an outcome, across pages.
#[tokio::test]
async fn the_action_filter_pages_like_a_filter_over_every_event() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let mix = [
            (Action::Login, Outcome::Success),
            (Action::Login, Outcome::Failure),
            (Action::Logout, Outcome::Success),
            (Action::LoginLocked, Outcome::Failure),
            (Action::TokenRefreshed, Outcome::Success),
            (Action::RefreshTokenReused, Outcome::Denied),
            (Action::PasswordReset, Outcome::Success),
            (Action::PasswordResetRequested, Outcome::Success),
            (Action::AuthorizationDenied, Outcome::Denied),
        ];
        for i in 0..150 {
            let (action, outcome) = mix[(i * 7 + i / 5) % mix.len()];
            let ev = SecurityEvent::new(Uuid::now_v7(), now(), action, outcome).actor(Actor::System);
            store.append_event(&ev).await.unwrap();
        }
        let all = store.recent_events(1000).await.unwrap();
        assert_eq!(all.len(), 150);
        let filters = ["auth", "auth.login", "auth.refresh", "auth.log", "password.reset", "password", "nothing"];
        for action in filters.map(Some).into_iter().chain([None]) {
            for outcome in [None, Some(Outcome::Success), Some(Outcome::Failure), Some(Outcome::Denied)] {
                let filter = AuditFilter { action: action.map(Into::into), outcome, ..Default::default() };
                let expected: Vec<i64> = all
                    .iter()
                    .filter(|e| filter.action_matches(e.event.action.as_str()))
                    .filter(|e| outcome.is_none_or(|o| e.event.outcome == o))
                    .map(|e| e.seq)
                    .collect();
                let mut got = Vec::new();
                let mut cursor = None;
                loop {
                    let page = store.query_events(&filter, cursor, 7).await.unwrap();
                    got.extend(page.iter().map(|e| e.seq));
                    if page.len() < 7 {
                        break;
                    }
                    cursor = page.last().map(|e| e.seq);
                }
                assert_eq!(got, expected, "{:?}: action {action:?}, outcome {outcome:?}", db.backend());
                if action == Some("auth.log") {
                    assert!(got.is_empty(), "a look-alike prefix matches nothing");
                }
                if action == Some("auth") && outcome.is_none() {
                    assert!(got.len() > 50, "the category matches many actions");
                }
            }
        }
    });
}

/// The mail outbox (migration 0019): a notice row commits with its event (and none for a user
/// that does not exist), 50 claimers racing take each row once, a claim that runs out is taken
/// again, and an alert rule raced by 50 firers fires once per cooldown.
#[tokio::test]
async fn the_mail_outbox_gives_each_row_to_one_claimer_and_an_alert_fires_once() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let user = new_user("notice@example.com", &[]);
        store.create_user(&user, &created_event(&user)).await.unwrap();
        let t = now();
        let changed = |who: Uuid| {
            SecurityEvent::new(Uuid::now_v7(), t, Action::PasswordChanged, Outcome::Success)
                .actor(Actor::User(who))
                .resource(Resource::new("user", who))
        };
        store.append_event(&changed(user.id.0)).await.unwrap();
        store.append_event(&changed(Uuid::now_v7())).await.unwrap(); // nobody: no row, no error
        for i in 0..19 {
            store.queue_mail(Uuid::now_v7(), None, &format!("sealed-{i}"), t).await.unwrap();
        }
        assert_eq!(store.mail_counts().await.unwrap().pending, 20, "{:?}", db.backend());

        let claims = (0..50).map(|_| {
            let store = store.clone();
            async move { store.claim_mail(t, t + time::Duration::minutes(1), 3).await.unwrap() }
        });
        let claimed: Vec<_> = futures::future::join_all(claims).await.into_iter().flatten().collect();
        let mut ids: Vec<Uuid> = claimed.iter().map(|m| m.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!((claimed.len(), ids.len()), (20, 20), "{:?}: each row to one claimer", db.backend());
        let notice = claimed.iter().find(|m| m.kind == "password_changed").unwrap();
        assert_eq!((notice.user_id, notice.sealed.as_deref()), (Some(user.id.0), None));
        // Held: nothing more now; after the claim runs out, everything again.
        assert!(store.claim_mail(t, t + time::Duration::minutes(1), 50).await.unwrap().is_empty());
        let later = t + time::Duration::minutes(2);
        let again = store.claim_mail(later, later + time::Duration::minutes(1), 50).await.unwrap();
        assert_eq!(again.len(), 20);
        store.finish_mail(notice.id, 1, &rampart_store::MailOutcome::Sent(later)).await.unwrap();
        let (total, same) = store.notices_sent_since(user.id.0, "password_changed", t, t).await.unwrap();
        assert_eq!((total, same), (1, 1));
        // Each count has its own window.
        let soon = later + time::Duration::seconds(1);
        assert_eq!(store.notices_sent_since(user.id.0, "password_changed", t, soon).await.unwrap(), (1, 0));
        assert_eq!(store.notices_sent_since(user.id.0, "password_changed", soon, t).await.unwrap(), (0, 1));
        assert_eq!(store.notices_sent_since(user.id.0, "factor_added", t, t).await.unwrap(), (1, 0));

        // One alert however many race to fire it.
        let rule = store.list_alert_rules().await.unwrap().into_iter().find(|r| r.name == "lockouts").unwrap();
        let fire = (0..50).map(|_| {
            let store = store.clone();
            async move {
                let ev = SecurityEvent::new(Uuid::now_v7(), now(), Action::AlertFired, Outcome::Success);
                let cooled = now() - time::Duration::seconds(i64::from(rule.cooldown_secs));
                store.fire_alert(rule.id, cooled, &ev, &rampart_store::AlertSends::default()).await.unwrap()
            }
        });
        let fired = futures::future::join_all(fire).await.into_iter().filter(|f| *f).count();
        assert_eq!(fired, 1, "{:?}: one alert per cooldown", db.backend());
    });
}

/// Removing a webhook endpoint takes its filters, queued deliveries and delivery log with it
/// (the foreign keys cascade on both backends), in the transaction that records the removal.
#[tokio::test]
async fn a_removed_webhook_endpoint_leaves_no_deliveries_or_log_behind() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let t = now();
        let id = Uuid::now_v7();
        let endpoint = rampart_store::StoredWebhook {
            id,
            url: "https://hooks.example.com/in".into(),
            description: String::new(),
            enabled: true,
            filters: vec![rampart_domain::webhook::EventFilter::parse("auth.*").unwrap()],
            secret_sealed: "sealed".into(),
            previous_secret_sealed: None,
            previous_until: None,
            created_by: None,
            created_at: t,
            updated_at: t,
            failing_since: None,
            disabled_reason: None,
            format: "standard".into(),
        };
        let made = SecurityEvent::new(Uuid::now_v7(), t, Action::WebhookCreated, Outcome::Success);
        store.create_webhook(&endpoint, &made).await.unwrap();
        let login = SecurityEvent::new(Uuid::now_v7(), t, Action::Login, Outcome::Failure);
        store.append_event(&login).await.unwrap();
        assert_eq!(store.webhook_message_counts().await.unwrap(), [("pending".to_string(), 1)]);
        let claimed = store.claim_webhook_messages(t, t + time::Duration::minutes(1), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let attempt = rampart_store::WebhookAttempt {
            id: Uuid::now_v7(),
            event_id: login.id,
            endpoint_id: id,
            attempt: 1,
            at: t,
            status: "failed".into(),
            http_status: Some(500),
            latency_ms: 3,
            error: Some("http_500".into()),
            response: None,
            next_attempt_at: Some(t + time::Duration::seconds(5)),
        };
        let retry = rampart_store::AttemptOutcome::RetryAt(t + time::Duration::seconds(5));
        store.record_webhook_attempt(&attempt, retry, None).await.unwrap();
        assert_eq!(store.list_webhook_attempts(id, None, None, 10).await.unwrap().len(), 1);
        // Retention: nothing is old enough yet; a day on, the log goes, the pending delivery stays.
        assert_eq!(store.purge_webhook_deliveries(t - time::Duration::seconds(1)).await.unwrap(), 0);
        assert_eq!(store.purge_webhook_deliveries(t + time::Duration::days(1)).await.unwrap(), 1);
        assert_eq!(store.webhook_message_counts().await.unwrap(), [("pending".to_string(), 1)]);
        store.record_webhook_attempt(&attempt, retry, None).await.unwrap(); // the log again, for the cascade

        let gone = SecurityEvent::new(Uuid::now_v7(), t, Action::WebhookDeleted, Outcome::Success);
        assert!(store.delete_webhook(id, &gone).await.unwrap());
        assert!(store.webhook_message_counts().await.unwrap().is_empty(), "{:?}", db.backend());
        assert!(store.list_webhook_attempts(id, None, None, 10).await.unwrap().is_empty());
        assert!(store.get_webhook(id).await.unwrap().is_none());
        assert!(!store.delete_webhook(id, &gone).await.unwrap(), "a second removal finds nothing");
    });
}

/// Transit keys (migration 0020): 50 rotations racing each get their own version; a key is
/// deleted only once allowed, with every version.
#[tokio::test]
async fn transit_rotations_racing_get_one_version_each_and_deletion_waits_for_permission() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let t = now();
        let key = rampart_store::StoredTransitKey {
            name: "orders".into(),
            kind: "aes256-gcm96".into(),
            derived: false,
            deletion_allowed: false,
            min_decryption_version: 1,
            latest_version: 1,
            created_by: None,
            created_at: t,
            updated_at: t,
        };
        let ev = || SecurityEvent::new(Uuid::now_v7(), now(), Action::TransitKeyRotated, Outcome::Success);
        store.create_transit_key(&key, "sealed-1", &ev()).await.unwrap();
        assert!(matches!(store.create_transit_key(&key, "again", &ev()).await, Err(StoreError::Conflict(_))));
        let rotations = (0..50).map(|_| {
            let store = store.clone();
            async move { store.rotate_transit_key("orders", |v| format!("sealed-{v}"), now(), &ev()).await.unwrap() }
        });
        let mut versions: Vec<i32> =
            futures::future::join_all(rotations).await.into_iter().map(Option::unwrap).collect();
        versions.sort_unstable();
        assert_eq!(versions, (2..=51).collect::<Vec<_>>(), "{:?}", db.backend());
        let stored = store.transit_versions("orders").await.unwrap();
        assert_eq!(stored.len(), 51);
        assert!(stored.iter().all(|v| v.material == format!("sealed-{}", v.version)), "each version its own material");
        assert_eq!(store.transit_key("orders").await.unwrap().unwrap().latest_version, 51);
        assert_eq!(store.rotate_transit_key("nope", |_| String::new(), now(), &ev()).await.unwrap(), None);

        assert_eq!(store.delete_transit_key("orders", &ev()).await.unwrap(), Some(false), "not allowed yet");
        assert!(store.configure_transit_key("orders", Some(3), Some(true), now(), &ev()).await.unwrap());
        assert_eq!(store.transit_key("orders").await.unwrap().unwrap().min_decryption_version, 3);
        assert_eq!(store.delete_transit_key("orders", &ev()).await.unwrap(), Some(true));
        assert!(store.transit_versions("orders").await.unwrap().is_empty(), "the versions go with it");
        assert_eq!(store.delete_transit_key("orders", &ev()).await.unwrap(), None);
    });
}

/// Known devices (the new-sign-in notice): the first device of a user is recorded without being
/// "known"; the same one is known while seen within the window, another is not; an out-of-order
/// older sighting never moves `last_seen` back.
#[tokio::test]
async fn known_devices_answer_for_the_window_whatever_else_the_user_did() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let user = new_user("devices@example.com", &[]);
        store.create_user(&user, &created_event(&user)).await.unwrap();
        let u = user.id.0;
        let t = now();
        let window = time::Duration::days(90);
        let phone = "Safari|iOS|203.0.113.0/24";
        assert_eq!(store.see_device(u, phone, t, t - window).await.unwrap(), (false, false), "the first device");
        assert_eq!(store.see_device(u, phone, t, t - window).await.unwrap(), (true, true));
        assert_eq!(store.see_device(u, "Firefox|Linux|198.51.100.0/24", t, t - window).await.unwrap(), (false, true));
        // An older sighting processed late keeps the newer time.
        store.see_device(u, phone, t - time::Duration::days(30), t - window).await.unwrap();
        let later = t + time::Duration::days(80);
        assert_eq!(
            store.see_device(u, phone, later, later - window).await.unwrap(),
            (true, true),
            "{:?}",
            db.backend()
        );
        // Past the window: not known any more.
        let much_later = later + time::Duration::days(91);
        assert_eq!(store.see_device(u, phone, much_later, much_later - window).await.unwrap(), (false, true));
        assert_eq!(store.known_devices(u).await.unwrap().len(), 2);
    });
}

/// Bulk exports (migration 0022): the requester never approves (the row refuses it too), one
/// approval wins, 50 racing downloads claim it once, an expired one cannot be claimed; the
/// count and the pages stop at the frozen `seq` and creation time, whatever is added later.
#[tokio::test]
async fn an_export_is_approved_by_another_and_claimed_once_and_its_rows_stay_frozen() {
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let t = now();
        let ev = || SecurityEvent::new(Uuid::now_v7(), now(), Action::ExportRequested, Outcome::Success);
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let new = |status: &str, expires: OffsetDateTime| rampart_store::StoredExport {
            id: Uuid::now_v7(),
            kind: "audit".into(),
            format: "jsonl".into(),
            filter: "{}".into(),
            through_seq: Some(1),
            as_of: t,
            rows: 3,
            status: status.into(),
            requested_by: alice,
            approved_by: None,
            approved_at: None,
            downloaded_at: None,
            created_at: t,
            expires_at: expires,
        };
        let later = t + time::Duration::hours(1);
        let e = new("pending_approval", later);
        store.create_export(&e, &ev()).await.unwrap();
        assert_eq!(store.export(e.id).await.unwrap().unwrap(), e, "{:?}", db.backend());
        assert!(!store.claim_export_download(e.id, alice, t, &ev()).await.unwrap(), "not approved");
        assert!(!store.approve_export(e.id, alice, t, later, &ev()).await.unwrap(), "not by the requester");
        let before = store.count_events().await.unwrap();
        assert!(store.approve_export(e.id, bob, t, later, &ev()).await.unwrap());
        assert_eq!(store.count_events().await.unwrap(), before + 1, "the approval and its event together");
        assert!(!store.approve_export(e.id, bob, t, later, &ev()).await.unwrap(), "once");
        let approved = store.export(e.id).await.unwrap().unwrap();
        assert_eq!((approved.status.as_str(), approved.approved_by), ("ready", Some(bob)));
        assert!(!store.claim_export_download(e.id, bob, t, &ev()).await.unwrap(), "only the requester");
        let claims = (0..50).map(|_| {
            let store = store.clone();
            async move { store.claim_export_download(e.id, alice, now(), &ev()).await.unwrap() }
        });
        let won = futures::future::join_all(claims).await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "{:?}", db.backend());
        assert_eq!(store.export(e.id).await.unwrap().unwrap().status, "downloaded");

        let expired = new("ready", t);
        store.create_export(&expired, &ev()).await.unwrap();
        assert!(!store.claim_export_download(expired.id, alice, t, &ev()).await.unwrap(), "expired");
        let stale = new("pending_approval", t);
        store.create_export(&stale, &ev()).await.unwrap();
        assert!(!store.approve_export(stale.id, bob, t, later, &ev()).await.unwrap(), "expired");
        let waiting = store.list_exports(Some("pending_approval"), 10).await.unwrap();
        assert_eq!(waiting.iter().map(|x| x.id).collect::<Vec<_>>(), [stale.id]);
        assert_eq!(store.list_exports(None, 10).await.unwrap().len(), 3);
        assert_eq!(store.purge_exports(t).await.unwrap(), 0, "none expired or downloaded before t");
        assert_eq!(store.purge_exports(t + time::Duration::minutes(1)).await.unwrap(), 3);
        assert!(store.list_exports(None, 10).await.unwrap().is_empty());

        // Frozen rows: events after `through_seq` and users created after `as_of` are out.
        let filter = AuditFilter { action: Some("auth.refresh".into()), ..AuditFilter::default() };
        let refresh = || SecurityEvent::new(Uuid::now_v7(), now(), Action::TokenRefreshed, Outcome::Success);
        store.append_events(&(0..5).map(|_| refresh()).collect::<Vec<_>>()).await.unwrap();
        let through = store.newest_seq().await.unwrap();
        store.append_events(&(0..4).map(|_| refresh()).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(store.count_matching(&filter, through, None).await.unwrap(), 5);
        assert_eq!(store.count_matching(&filter, through, Some(3)).await.unwrap(), 3, "capped");
        assert_eq!(store.count_matching(&filter, i64::MAX, None).await.unwrap(), 9);
        let page = store.export_page_through(&filter, i64::MIN, through, 100).await.unwrap();
        assert_eq!(page.len(), 5);
        assert!(page.iter().all(|e| e.seq <= through));

        let early = new_user("early@example.com", &[]);
        store.create_user(&early, &created_event(&early)).await.unwrap();
        let as_of = now();
        let mut late = new_user("late@example.com", &[]);
        late.created_at = as_of + time::Duration::seconds(1);
        store.create_user(&late, &created_event(&late)).await.unwrap();
        assert_eq!(store.count_users_as_of(Some("example.com"), as_of).await.unwrap(), 1);
        let page = store.list_users_as_of(Some("example.com"), Some(as_of), None, 10).await.unwrap();
        assert_eq!(page.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["early@example.com"]);
        assert_eq!(store.count_users_as_of(None, as_of + time::Duration::seconds(2)).await.unwrap(), 2);
    });
}

/// Person keys (migration 0023) under races and across instances: 50 concurrent first events of
/// one person through two stores (two instances) agree on one key, so every event opens; after
/// one instance erases the person, the other, which still holds the key in its append cache,
/// reads every event as erased, and what it appends later opens for nobody either.
#[tokio::test]
async fn person_keys_agree_under_races_and_erasure_holds_on_every_instance() {
    for_each_backend!(|db| {
        let a = migrated(&db).await;
        let b = db.store().await;
        let b_name = db.backend();
        let person = new_user("racer@example.com", &[]);
        a.create_user(&person, &created_event(&person)).await.unwrap();
        let ip: std::net::IpAddr = "203.0.113.50".parse().unwrap();
        let ev = |i: usize| {
            SecurityEvent::new(Uuid::now_v7(), now(), Action::TokenRefreshed, Outcome::Success)
                .actor(Actor::User(person.id.0))
                .ip(Some(ip))
                .user_agent(Some(&format!("Racer/{i}")))
        };
        let writes = (0..50).map(|i| {
            let (store, e) = (if i % 2 == 0 { a.clone() } else { b.clone() }, ev(i));
            async move { store.append_event(&e).await }
        });
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        let filter = AuditFilter { actor_id: Some(person.id.0), ..Default::default() };
        for store in [&a, &b] {
            let seen = store.query_events(&filter, None, 100).await.unwrap();
            assert_eq!(seen.len(), 50, "{b_name:?}");
            assert!(
                seen.iter().all(|e| e.event.ip == Some(ip) && e.event.details.get("personal").is_none()),
                "{b_name:?}: every event opens with the one key"
            );
        }
        let by_ip = AuditFilter { ip: Some(ip), ..Default::default() };
        assert_eq!(a.query_events(&by_ip, None, 100).await.unwrap().len(), 50, "{b_name:?}: found by the address tag");

        // Instance b erases; instance a (its append cache holds the key) reads them erased.
        let t = now();
        let scheduled = SecurityEvent::new(Uuid::now_v7(), t, Action::UserErasureScheduled, Outcome::Success)
            .actor(Actor::System)
            .resource(Resource::new("user", person.id));
        assert!(b.schedule_erasure(person.id, t, t, &scheduled).await.unwrap());
        let erased = SecurityEvent::new(Uuid::now_v7(), t, Action::UserDeleted, Outcome::Success)
            .actor(Actor::System)
            .resource(Resource::new("user", person.id));
        assert!(b.erase_user(person.id, t, &erased).await.unwrap());
        assert!(!b.erase_user(person.id, t, &erased).await.unwrap(), "{b_name:?}: once");
        a.append_event(&ev(99)).await.unwrap();
        let seen = a.query_events(&filter, None, 100).await.unwrap();
        assert_eq!(seen.len(), 51, "{b_name:?}");
        for e in &seen {
            assert_eq!(e.event.details["personal"], "erased", "{b_name:?}: {:?}", e.event);
            assert_eq!((e.event.ip, e.event.user_agent.as_deref()), (None, None), "{b_name:?}");
        }
        assert!(a.query_events(&by_ip, None, 100).await.unwrap().is_empty(), "{b_name:?}: tags cleared");
        assert!(a.verify_audit_chain().await.unwrap().ok, "{b_name:?}: the chain still verifies");
        let dump = db.dump().await;
        assert!(!dump.contains("203.0.113.50") && !dump.contains("Racer/"), "{b_name:?}: nothing in the clear");
    });
}

/// The rotation's writes: a re-seal lands only over the value it read (a value the service
/// changed meanwhile is kept), keyset pages of values not under a key id (composite keys
/// included), counts per key id; and the first root key stored for a purpose is the one kept.
#[tokio::test]
async fn a_reseal_writes_only_over_the_value_it_read_and_the_first_root_key_wins() {
    use rampart_store::{RowKey, SEALED_COLUMNS};
    let (a, b, c) = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc");
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let first = store.root_key_or_insert("purpose x", &format!("v1.{a}.one"), a, now()).await.unwrap();
        let second = store.root_key_or_insert("purpose x", &format!("v1.{b}.two"), b, now()).await.unwrap();
        assert_eq!(second, first, "the first insert wins; both read it back");
        assert_eq!(first.origin_key_id, a);

        let col = SEALED_COLUMNS.iter().find(|c| c.table == "root_keys").unwrap();
        let key = RowKey::Text("purpose x".into());
        assert!(!store.reseal(col, &key, "a stale read", &format!("v1.{c}.new"), c).await.unwrap());
        assert_eq!(store.sealed_value(col, &key).await.unwrap(), Some(first.sealed.clone()), "not overwritten");
        assert!(store.reseal(col, &key, &first.sealed, &format!("v1.{c}.new"), c).await.unwrap());
        assert_eq!(store.sealed_value(col, &key).await.unwrap(), Some(format!("v1.{c}.new")));

        // Transit versions: a composite key, paged in key order after the last one seen.
        let t = now();
        let tk = rampart_store::StoredTransitKey {
            name: "k".into(),
            kind: "aes256-gcm96".into(),
            derived: false,
            deletion_allowed: false,
            min_decryption_version: 1,
            latest_version: 1,
            created_by: None,
            created_at: t,
            updated_at: t,
        };
        store
            .create_transit_key(&tk, &format!("v1.{a}.m1"), &created_event(&new_user("t@example.com", &[])))
            .await
            .unwrap();
        for _ in 0..4 {
            store
                .rotate_transit_key("k", |v| format!("v1.{a}.m{v}"), t, &created_event(&new_user("t@example.com", &[])))
                .await
                .unwrap();
        }
        let versions = SEALED_COLUMNS.iter().find(|c| c.table == "transit_key_versions").unwrap();
        let page1 = store.sealed_not_under(versions, c, None, 2).await.unwrap();
        assert_eq!(
            page1.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            [RowKey::TextInt("k".into(), 1), RowKey::TextInt("k".into(), 2)]
        );
        let page2 = store.sealed_not_under(versions, c, Some(&page1[1].key), 2).await.unwrap();
        assert_eq!(page2[0].key, RowKey::TextInt("k".into(), 3));
        assert!(store.reseal(versions, &page2[0].key, &page2[0].sealed, &format!("v1.{c}.m3"), c).await.unwrap());
        let left = store.sealed_not_under(versions, c, None, 10).await.unwrap();
        assert_eq!(left.len(), 4, "the re-sealed one is no longer pending");
        let counts = store.sealed_counts().await.unwrap();
        let count = |column: &str, id: &str| {
            counts.iter().find(|x| x.column == column && x.key_id == id).map_or(0, |x| x.count)
        };
        assert_eq!((count("transit_key_versions.material", a), count("transit_key_versions.material", c)), (4, 1));
        assert_eq!(count("root_keys.sealed", c), 1);
        store.close().await;
    });
}

fn telegram(subject: &str) -> rampart_domain::federation::ExternalIdentity {
    rampart_domain::federation::ExternalIdentity {
        provider: rampart_domain::federation::Provider::telegram(),
        subject: subject.into(),
        username: Some("ada".into()),
        display_name: Some("Ada L".into()),
        email: None,
        email_verified: false,
    }
}

fn event_about(user: UserId, action: Action) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), now(), action, Outcome::Success)
        .actor(Actor::User(user.0))
        .resource(Resource::new("user", user))
}

/// Linked identities: one account per (provider, subject); unlinking never leaves a
/// passwordless account without a way in; they go with the account; a replay claim is won once.
#[tokio::test]
async fn identities_link_once_keep_the_last_way_in_and_go_with_the_account() {
    use rampart_store::{LinkOutcome, NewFederatedUser, UnlinkOutcome};
    for_each_backend!(|db| {
        let store = migrated(&db).await;
        let with_pw = new_user("pw@example.com", &["user"]);
        store.create_user(&with_pw, &created_event(&with_pw)).await.unwrap();
        let fed = NewFederatedUser {
            id: UserId(Uuid::now_v7()),
            email: Email::parse("tg1@telegram.invalid").unwrap(),
            name: Some("Ada L".into()),
            email_verified: false,
            created_at: now(),
        };
        let user =
            store.create_federated_user(&fed, &telegram("1"), &event_about(fed.id, Action::UserCreated)).await.unwrap();
        assert_eq!(user.roles, [RoleName::USER]);
        assert_eq!(store.password_hash(fed.id).await.unwrap(), None, "no password");
        // The same identity again: refused, nothing left behind.
        let dup = NewFederatedUser {
            id: UserId(Uuid::now_v7()),
            email: Email::parse("tg1b@telegram.invalid").unwrap(),
            ..fed.clone()
        };
        let err = store.create_federated_user(&dup, &telegram("1"), &event_about(dup.id, Action::UserCreated)).await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
        assert!(store.get_user(dup.id).await.unwrap().is_none());

        let linked = store.identity_by_subject("telegram", "1").await.unwrap().unwrap();
        assert_eq!(linked.user_id, fed.id);
        let ev = event_about(with_pw.id, Action::IdentityLinked);
        assert_eq!(
            store.link_identity(with_pw.id, &telegram("1"), now(), &ev).await.unwrap(),
            LinkOutcome::LinkedElsewhere
        );
        assert!(matches!(
            store.link_identity(fed.id, &telegram("1"), now(), &ev).await.unwrap(),
            LinkOutcome::AlreadyLinked(_)
        ));
        let LinkOutcome::Linked(second) = store
            .link_identity(fed.id, &telegram("2"), now(), &event_about(fed.id, Action::IdentityLinked))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(store.list_identities(fed.id).await.unwrap().len(), 2);

        // Of two identities one may go, the last may not (no password).
        let unlinked = event_about(fed.id, Action::IdentityUnlinked);
        let unlink = |id| store.unlink_identity(fed.id, id, &unlinked);
        assert_eq!(unlink(linked.id).await.unwrap(), UnlinkOutcome::Unlinked);
        assert_eq!(unlink(second.id).await.unwrap(), UnlinkOutcome::LastWayIn);
        assert_eq!(unlink(linked.id).await.unwrap(), UnlinkOutcome::NotFound);
        assert_eq!(
            store.unlink_identity(with_pw.id, second.id, &ev).await.unwrap(),
            UnlinkOutcome::NotFound,
            "not theirs"
        );
        // An account with a password may unlink its only identity.
        let LinkOutcome::Linked(own) = store.link_identity(with_pw.id, &telegram("3"), now(), &ev).await.unwrap()
        else {
            panic!()
        };
        let ev = event_about(with_pw.id, Action::IdentityUnlinked);
        assert_eq!(store.unlink_identity(with_pw.id, own.id, &ev).await.unwrap(), UnlinkOutcome::Unlinked);

        // Deleting the account deletes its identities.
        assert!(store.delete_user(fed.id, &event_about(fed.id, Action::UserDeleted)).await.unwrap());
        assert!(store.identity_by_subject("telegram", "2").await.unwrap().is_none());

        // A payload is claimed once, also by 20 at once; an expired claim is purged.
        let later = now() + time::Duration::hours(1);
        let claims = (0..20).map(|_| store.claim_federation_nonce("telegram", "abc", later, now()));
        let won = futures::future::join_all(claims).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(won, 1, "{:?}", db.backend());
        assert!(!store.claim_federation_nonce("telegram", "abc", later, now()).await.unwrap());
        assert!(store.claim_federation_nonce("oidc", "abc", later, now()).await.unwrap(), "per provider");
        let after = later + time::Duration::seconds(1);
        assert!(
            store.claim_federation_nonce("telegram", "abc", after + time::Duration::hours(1), after).await.unwrap(),
            "purged once expired"
        );
    });
}
