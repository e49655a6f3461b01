//! The audit log beyond the bare chain (whose tampering tests are in `store_contract`): signed
//! checkpoints against a chain rewritten whole, retention purges that leave the rest
//! verifiable, the query/stats/export API, aggregation of high-volume events, the SIEM output
//! (exporting a million events in bounded memory and `kill -9` durability are in `cli`, which
//! runs the real binary).

use rampart_domain::audit::{AuditFilter, ChainFault, Checkpoint};
use rampart_domain::{Action, Actor, Outcome, SecurityEvent};
use rampart_store::Store;
use rampart_testkit::{Backend, TestApp, TestDb, for_each_backend};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const KEY: [u8; 32] = [42; 32];

fn now() -> OffsetDateTime {
    rampart_domain::Clock::now(&rampart_domain::SystemClock)
}

fn event_at(ts: OffsetDateTime, i: usize) -> SecurityEvent {
    SecurityEvent::new(Uuid::now_v7(), ts, Action::Login, Outcome::Success)
        .actor(Actor::System)
        .details(json!({ "i": i }))
}

async fn chain_of(db: &TestDb, times: &[OffsetDateTime]) -> (Store, Vec<i64>) {
    let store = db.store().await;
    store.migrate().await.unwrap();
    for (i, t) in times.iter().enumerate() {
        store.append_event(&event_at(*t, i)).await.unwrap();
    }
    let mut seqs: Vec<i64> = store.recent_events(1000).await.unwrap().iter().map(|e| e.seq).collect();
    seqs.sort();
    (store, seqs)
}

/// Signs the link at `seq` with the test key, as the server does with its derived key.
async fn sign_at(store: &Store, seq: i64) -> Checkpoint {
    let e = store.export_page(&AuditFilter::default(), seq - 1, 1).await.unwrap().remove(0);
    assert_eq!(e.seq, seq);
    let hash: [u8; 32] = e.hash.unwrap().try_into().unwrap();
    let cp = Checkpoint::sign(&KEY, "test", seq, hash, now());
    assert!(store.insert_checkpoint(&cp).await.unwrap());
    cp
}

fn with_key(cp: &Checkpoint) -> bool {
    cp.verify(&KEY)
}

fn blob(db: &TestDb, bytes: &[u8]) -> String {
    match db.backend() {
        Backend::Sqlite => format!("X'{}'", hex::encode(bytes)),
        Backend::Postgres => format!("decode('{}', 'hex')", hex::encode(bytes)),
    }
}

/// What an attacker who owns the database but not the master key can do: change one event and
/// recompute every hash after it, and the head, so the chain itself is consistent again.
async fn rewrite_from(db: &TestDb, store: &Store, seq: i64) {
    let events = store.export_page(&AuditFilter::default(), i64::MIN, 1000).await.unwrap();
    let mut prev = rampart_domain::event::CHAIN_GENESIS;
    for e in events {
        let mut ev = e.event.clone();
        if e.seq == seq {
            ev.details = json!({ "i": "rewritten" });
            db.execute(&format!("UPDATE audit_events SET details = '{}' WHERE seq = {seq}", ev.details)).await;
        }
        let hash = ev.chain_hash(&prev);
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

#[tokio::test]
async fn a_chain_rewritten_whole_fails_at_its_signed_checkpoint() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 8]).await;
        sign_at(&store, s[5]).await;
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert!(r.ok && r.checkpoints_checked == 1, "{:?}: {r:?}", db.backend());

        rewrite_from(&db, &store, s[2]).await;
        // The links alone cannot tell (the attacker recomputed them: no `broken_link`); the
        // checkpoint can, since its MAC vouches for the old hash at s[5].
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert!(!r.ok, "{:?}", db.backend());
        assert_eq!(r.fault, Some(ChainFault::CheckpointMismatch));
        assert_eq!(r.first_bad_seq, Some(s[0]), "nothing before the checkpoint is vouched for any more");
    });
}

#[tokio::test]
async fn a_forged_checkpoint_or_one_past_the_end_is_caught() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 6]).await;
        let good = sign_at(&store, s[1]).await;
        // A checkpoint the attacker signed without the key.
        let e = store.export_page(&AuditFilter::default(), s[3] - 1, 1).await.unwrap().remove(0);
        let forged = Checkpoint::sign(&[1; 32], "test", s[3], e.hash.unwrap().try_into().unwrap(), now());
        store.insert_checkpoint(&forged).await.unwrap();
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert_eq!((r.ok, r.fault, r.first_bad_seq), (false, Some(ChainFault::BadCheckpointSignature), Some(s[3])));
        db.execute(&format!("DELETE FROM audit_checkpoints WHERE seq = {}", s[3])).await;

        // Cutting the newest events off and moving the head back passes the head check, but
        // not a checkpoint of a cut event.
        sign_at(&store, s[5]).await;
        let kept = store.export_page(&AuditFilter::default(), s[3] - 1, 1).await.unwrap().remove(0);
        db.execute(&format!("DELETE FROM audit_events WHERE seq > {}", s[3])).await;
        db.execute(&format!("UPDATE audit_head SET hash = {} WHERE id = 1", blob(&db, &kept.hash.unwrap()))).await;
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert_eq!(r.fault, Some(ChainFault::CheckpointMismatch), "{:?}: {r:?}", db.backend());
        assert_eq!(r.first_bad_seq, Some(s[2]), "the first event after the last checkpoint that held ({})", good.seq);
    });
}

#[tokio::test]
async fn a_retention_purge_leaves_the_rest_verifiable_from_its_checkpoint() {
    for_each_backend!(|db| {
        let old = now() - Duration::days(400);
        let times = [old, old, old, old, old, now(), now()];
        let (store, s) = chain_of(&db, &times).await;
        // No checkpoint old enough: nothing may go, whatever the age of the events.
        let purged = |n| {
            SecurityEvent::new(Uuid::now_v7(), now(), Action::AuditPurged, Outcome::Success).details(json!({ "n": n }))
        };
        assert_eq!(store.purge_audit_before(now() - Duration::days(365), purged(0)).await.unwrap(), None);
        sign_at(&store, s[3]).await;
        sign_at(&store, s[6]).await;
        let report = store.purge_audit_before(now() - Duration::days(365), purged(1)).await.unwrap().unwrap();
        assert_eq!((report.through_seq, report.deleted), (s[3], 4));
        let left = store.export_page(&AuditFilter::default(), i64::MIN, 100).await.unwrap();
        assert_eq!(left.first().map(|e| e.seq), Some(s[4]), "s[4] is older than the cutoff but after the checkpoint");
        let purge_event = left.last().unwrap();
        assert_eq!(purge_event.event.action, Action::AuditPurged);
        assert_eq!(purge_event.event.details["through_seq"], s[3]);
        assert_eq!(purge_event.event.details["deleted"], 4);

        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert!(r.ok, "{:?}: {r:?}", db.backend());
        assert_eq!(r.anchored_at, Some(s[3]));
        assert_eq!(r.events_checked, 4, "s[4], s[5], s[6] and the purge event");

        // Deleting the first event after the anchor is still caught.
        db.execute(&format!("DELETE FROM audit_events WHERE seq = {}", s[4])).await;
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert_eq!((r.fault, r.first_bad_seq), (Some(ChainFault::BrokenLink), Some(s[5])), "{:?}", db.backend());
    });
}

#[tokio::test]
async fn cutting_the_log_at_a_checkpoint_without_a_purge_is_caught() {
    for_each_backend!(|db| {
        let (store, s) = chain_of(&db, &[now(); 6]).await;
        sign_at(&store, s[2]).await;
        db.execute(&format!("DELETE FROM audit_events WHERE seq <= {}", s[2])).await;
        let r = store.verify_audit_chain(with_key).await.unwrap();
        assert_eq!((r.ok, r.fault, r.first_bad_seq), (false, Some(ChainFault::UnrecordedPurge), Some(s[3])));
    });
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
    assert!(rest.get("next_cursor").is_none(), "last page");
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
    assert_eq!(
        lines.last().unwrap()["action"],
        "audit.exported",
        "recorded before the first byte, so in its own export"
    );
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
    // Rewrite the chain whole from the first event: only the checkpoint notices.
    let first = app.state.store.export_page(&AuditFilter::default(), i64::MIN, 1).await.unwrap().remove(0).seq;
    rewrite_from(&app.db, &app.state.store, first).await;
    let (_, v) = app.get_bearer("/v1/admin/audit/verify", &token).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["fault"], "checkpoint_mismatch");
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
