//! Several instances on one PostgreSQL database (issue 21): the singleton jobs (here the audit
//! checkpoints, signed every second) run on one instance at a time, not once per instance;
//! when the leading instance stops another takes over; writes from all of them leave one
//! audit chain that verifies.

use rampart_testkit::{TestApp, TestDb};
use serde_json::json;
use std::time::Duration;

fn config(c: &mut rampart_config::Config) {
    c.audit.checkpoint_interval_secs = 1;
    c.login.delay_base_ms = 0;
    // Every instance shares the per-address counter (one database): off, so the failed
    // sign-ins that make events here are never refused.
    c.login.ip_max_failures = 0;
}

/// Failed sign-ins on `app` (each one an audit event) for `secs` seconds.
async fn write_events(apps: &[&TestApp], secs: u64) {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut i = 0u32;
    while tokio::time::Instant::now() < until {
        let app = apps[i as usize % apps.len()];
        let (s, _) = app
            .post_json("/v1/auth/login", &json!({ "email": format!("nobody{i}@example.com"), "password": "wrong" }))
            .await;
        assert_eq!(s, 401);
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn three_instances_sign_one_checkpoint_per_interval_and_another_takes_over_from_a_stopped_leader() {
    let Some(db) = TestDb::postgres().await else { return };
    // The first instance signs at start and so leads the checkpoints.
    let a = TestApp::spawn_with(db.shared(), config).await;
    let b = TestApp::spawn_with(db.shared(), config).await;
    let c = TestApp::spawn_with(db.shared(), config).await;
    let store = db.store().await;

    let secs = 6;
    write_events(&[&a, &b, &c], secs).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "one chain from three writers: {report:?}");
    let signed = report.checkpoints_checked;
    // One signer: about one checkpoint a second (plus the start); three signers would sign
    // about three a second, each on the chain's newest link at its own moment.
    assert!((2..=secs + 2).contains(&signed), "{signed} checkpoints in {secs} s from three instances");

    // The leader stops: within a period or two another instance leads and signs.
    a.stop().await.unwrap();
    write_events(&[&b, &c], 4).await;
    let report = store.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    let after = report.checkpoints_checked - signed;
    assert!((1..=6).contains(&after), "{after} checkpoints in 4 s after the leader stopped");
}
