//! The `rampart` binary itself, run as a user would: in an empty directory, no configuration.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A scratch working directory and a clean environment for the binary.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli { dir: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rampart"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RAMPART_LOG__FORMAT", "json");
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// Starts `rampart serve` on a free port; returns once it logged that it is ready.
    fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// [`Cli::serve`] with extra environment variables.
    fn serve_with(&self, env: &[(&str, &str)]) -> Server {
        let mut child = self
            .cmd(&["serve"])
            .env("RAMPART_SERVER__LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let ready = line.split("ready on http://").nth(1).map(|r| r.split('"').next().unwrap().to_string());
                    log.push(line);
                    if let Some(addr) = ready {
                        return Server { child, addr, log, rx };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("server did not become ready; output so far:\n{}", log.join("\n"));
                }
            }
        }
    }
}

struct Server {
    child: Child,
    addr: String,
    log: Vec<String>,
    rx: mpsc::Receiver<String>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then the exit status and every log line.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        // The reader thread may still be passing on the last lines: read until it hangs up
        // (end of the child's output), not just what already arrived.
        while let Ok(line) = self.rx.recv_timeout(std::time::Duration::from_secs(10)) {
            self.log.push(line);
        }
        (exit, std::mem::take(&mut self.log))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_prints_the_version() {
    let out = Cli::new().run(&["version"], &[], None);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("rampart {}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_serve_answers_and_keeps_data_across_restarts() {
    let cli = Cli::new();
    let created = cli.run(
        &["users", "create", "--email", "Root@Example.com", "--role", "admin", "--password-stdin"],
        &[],
        Some("correct horse battery staple\n"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let user: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(user["email"], "root@example.com");
    assert_eq!(user["roles"], serde_json::json!(["admin"]));
    assert!(text(&created.stderr).contains("generated a master key"), "the operator is warned");

    let data = cli.dir.path().join("rampart-data");
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    let key_file = data.join("master.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let key_before = std::fs::read_to_string(&key_file).unwrap();
    for db_file in ["rampart.db", "rampart.db-wal", "rampart.db-shm"] {
        let path = data.join(db_file);
        if path.exists() {
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{db_file}");
        }
    }
    assert!(data.join("rampart.db").exists());

    let server = cli.serve();
    let client = reqwest::Client::new();
    assert_eq!(client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(server.url("/metrics")).send().await.unwrap().status(), 200);
    let doc: serde_json::Value = client.get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let res = client.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!((p["code"].as_str(), p["request_id"].as_str()), (Some("not_found"), Some(id.as_str())));
    let (exit, log) = server.terminate();
    assert!(exit.success(), "SIGTERM is a clean exit: {exit:?}");
    let log = log.join("\n");
    assert!(log.contains("shutting down") && log.contains("\"stopped\""), "{log}");
    assert!(log.contains(&id), "the 404's log line carries its request id");
    assert!(log.contains("\"migrations_applied\":0"), "the CLI already migrated: {log}");

    // Restart: the same key, the same data.
    let server = cli.serve();
    assert_eq!(client.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    let (exit, _) = server.terminate();
    assert!(exit.success());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_before, "the key is generated once");
    let again = cli.run(
        &["users", "create", "--email", "root@example.com", "--password-stdin"],
        &[],
        Some("another long password"),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("e-mail address exists"), "{}", text(&again.stderr));
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_redacted() {
    let cli = Cli::new();
    let file = cli.write("rampart.toml", "[server]\nlisten = \"127.0.0.1:9999\"\n");
    let db = ("RAMPART_DATABASE__URL", "postgres://rampart:sup3r-s3cret@db.internal/rampart");
    let without_key = cli.run(&["config", "check", "--config", &file], &[db], None);
    assert!(!without_key.status.success(), "a shared database needs a supplied master key");
    assert!(text(&without_key.stderr).contains("RAMPART_MASTER_KEY"));
    let key = "q7xRk2d1l0bMgJ3oYVzN2lC6pS8wE4tH9uA5fK1jX0c=";
    let out = cli.run(&["config", "check", "--config", &file], &[db, ("RAMPART_MASTER_KEY", key)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(key) && !text(&out.stderr).contains(key), "the key is never printed");
    assert!(text(&out.stdout).contains("key id"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("configuration is valid"));
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(stdout.contains("postgres://rampart:[redacted]@db.internal/rampart"), "{stdout}");
    assert!(!stdout.contains("sup3r-s3cret") && !text(&out.stderr).contains("sup3r-s3cret"));
    assert!(!cli.dir.path().join("rampart-data").exists(), "checking creates nothing");
}

#[test]
fn bad_configuration_stops_every_command_with_a_message_naming_the_problem() {
    let cli = Cli::new();
    let unknown = cli.write("unknown.toml", "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 4\n");
    let malformed = cli.write("malformed.toml", "[server\nlisten = ");
    for args in [vec!["serve", "--config", &unknown], vec!["config", "check", "--config", &unknown]] {
        let out = cli.run(&args, &[], None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("workers") && err.contains("unknown.toml"), "{err}");
    }
    let out = cli.run(&["serve", "--config", &malformed], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("malformed.toml"), "{}", text(&out.stderr));
    let out = cli.run(&["serve"], &[("RAMPART_SERVER__LISTEN", "not-an-address")], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("server.listen"), "{}", text(&out.stderr));
    let out = cli.run(&["serve", "--config", "missing.toml"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.toml"));
    let out = cli.run(&["serve"], &[("RAMPART_DATABASE__URL", "postgres://127.0.0.1:1/nowhere")], None);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("RAMPART_MASTER_KEY or RAMPART_MASTER_KEY_FILE is required"),
        "{}",
        text(&out.stderr)
    );
    assert!(!cli.dir.path().join("rampart-data").exists(), "no key generated for a shared database");
    let out = cli.run(&["serve"], &[("RAMPART_MASTER_KEY", "too-short")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("RAMPART_MASTER_KEY"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("too-short"), "the bad key is not echoed");
}

#[test]
fn migrate_applies_once() {
    let cli = Cli::new();
    let first = cli.run(&["migrate"], &[], None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // "sqlite backend: N migration(s) applied, N in total": a fresh database gets them all.
    let out = text(&first.stdout);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[..2], ["sqlite", "backend:"], "{out}");
    assert!(words[2].parse::<u32>().unwrap() >= 1, "{out}");
    assert_eq!(words[2], words[5], "{out}");
    let second = cli.run(&["migrate"], &[], None);
    assert!(text(&second.stdout).starts_with("sqlite backend: 0 migration(s) applied"), "{}", text(&second.stdout));
}

#[test]
fn users_create_validates_every_field_and_never_takes_a_password_argument() {
    let cli = Cli::new();
    let out = cli.run(
        &["users", "create", "--email", "not-an-email", "--role", "Not A Role", "--password-stdin"],
        &[],
        Some("short\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for code in ["email_invalid", "password_too_short", "role_invalid"] {
        assert!(err.contains(code), "{code} missing from: {err}");
    }
    let out = cli.run(
        &["users", "create", "--email", "a@example.com", "--role", "wizard", "--password-stdin"],
        &[],
        Some("long enough password"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("wizard"), "{}", text(&out.stderr));
    let out = cli.run(&["users", "create", "--email", "a@example.com"], &[], None);
    assert_eq!(out.status.code(), Some(2), "--password-stdin is required");
}

#[test]
fn keys_rotate_signing_replaces_the_current_key() {
    let cli = Cli::new();
    let first = cli.run(&["keys", "rotate-signing"], &[], None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let a: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let second = cli.run(&["keys", "rotate-signing"], &[], None);
    let b: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(b["replaced"], a["kid"], "each rotation replaces the previous one");
    assert_ne!(a["kid"], b["kid"]);
    assert!(
        !text(&first.stdout).contains("private") && !text(&first.stderr).contains("v1."),
        "no key material is printed"
    );
}

#[test]
fn keys_create_prints_the_key_once_and_revoke_ends_it() {
    let cli = Cli::new();
    let out = cli.run(
        &["users", "create", "--email", "ops@example.com", "--role", "admin", "--password-stdin"],
        &[],
        Some("a long operator passphrase"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out =
        cli.run(&["keys", "create", "--email", "ops@example.com", "--name", "ci", "--scope", "keys:verify"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("rk_") && key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["scopes"], serde_json::json!(["keys:verify"]));

    // A user without the permission cannot be given the scope.
    cli.run(
        &["users", "create", "--email", "dev@example.com", "--password-stdin"],
        &[],
        Some("another long passphrase"),
    );
    let out =
        cli.run(&["keys", "create", "--email", "dev@example.com", "--name", "x", "--scope", "users:write"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("scope_not_held"), "{}", text(&out.stderr));

    let id = created["id"].as_str().unwrap();
    let out = cli.run(&["keys", "revoke", "--id", id], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["keys", "revoke", "--id", id], &[], None);
    assert_eq!(out.status.code(), Some(1), "a second revoke says so");
    assert!(text(&out.stderr).contains("already revoked"));
}

#[test]
fn audit_verify_checks_the_chain() {
    let cli = Cli::new();
    cli.run(&["migrate"], &[], None);
    let out = cli.run(&["audit", "verify"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["events_checked"].as_u64().unwrap() >= 1);
}

/// `kill -9` under load loses no event of a change the client saw succeed: each
/// acknowledged registration's `user.created` event is in the log after a restart, and the
/// chain verifies (SQLite, the default: the database lives in the killed process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let cli = Cli::new();
    // The load comes from one address: the shipped rate limits (register: 5 a minute) are off
    // for this server, or they, not the kill, would end the run.
    let mut server = cli.serve_with(&[("RAMPART_RATE_LIMIT__ENABLED", "false")]);
    let base = server.url("");
    let client = reqwest::Client::new();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (client, base, acked, stop) = (client.clone(), base.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let body = serde_json::json!({ "email": format!("w{w}-{i}@example.com"), "password": "correct horse battery staple" });
                    match client.post(format!("{base}/v1/auth/register")).json(&body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let v: serde_json::Value = match r.json().await {
                                Ok(v) => v,
                                Err(_) => break, // cut off mid-body: not acknowledged
                            };
                            acked.lock().unwrap().push(v["user"]["id"].as_str().unwrap().to_string());
                        }
                        Ok(r) => return Err(format!("registration answered {}", r.status())),
                        Err(_) => break, // the server is gone
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    // Let the load run, then kill the server mid-flight.
    while acked.lock().unwrap().len() < 30 {
        assert!(workers.iter().any(|w| !w.is_finished()), "every client stopped before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 30);

    let verify = cli.run(&["audit", "verify"], &[], None);
    assert!(verify.status.success(), "{}\n{}", text(&verify.stdout), text(&verify.stderr));
    let export = cli.run(&["audit", "export", "--action", "user.created"], &[], None);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let logged: std::collections::HashSet<String> = text(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged registrations have no event: {lost:?}", lost.len(), acked.len());
    assert!(text(&export.stderr).contains("done:"), "progress on stderr: {}", text(&export.stderr));
}

/// The resident memory of a process, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A million events export through `GET /v1/admin/audit/export` while the server's resident
/// memory stays within a small bound: the export is streamed page by page, never gathered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_events_export_in_bounded_server_memory() {
    const N: u64 = 1_000_000;
    let cli = Cli::new();
    let pw = "correct horse battery staple\n";
    let created = cli.run(
        &["users", "create", "--email", "root@example.com", "--role", "admin", "--password-stdin"],
        &[],
        Some(pw),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    // A million rows in one statement, straight into the (stopped) server's SQLite file. Their
    // hashes are placeholders: the export does not verify.
    let file = cli.dir.path().join("rampart-data/rampart.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO audit_events (id, ts, action, outcome, severity, actor_type, ip, user_agent, details, prev_hash, hash) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N}) \
         SELECT randomblob(16), '2026-01-01T00:00:00.000000Z', 'auth.login', 'failure', 'info', 'anonymous', \
         '203.0.113.7', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', json_object('i', i, 'reason', 'bad_password'), \
         zeroblob(32), zeroblob(32) FROM n"
    ))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // A million rows is over any sensible approval threshold: this one lets it through directly.
    let server = cli.serve_with(&[("RAMPART_EXPORTS__APPROVAL_THRESHOLD_ROWS", "2000000")]);
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(server.url("/v1/auth/login"))
        .json(&serde_json::json!({ "email": "root@example.com", "password": pw.trim() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let pid = server.child.id();
    let baseline = rss_bytes(pid);
    let r = client
        .get(server.url("/v1/admin/audit/export?format=jsonl&action=auth.login&outcome=failure&since=2025-12-31T00:00:00Z&until=2026-01-02T00:00:00Z"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let (mut lines, mut bytes, mut peak, mut chunks) = (0u64, 0u64, baseline, 0u64);
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk.unwrap();
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += chunk.len() as u64;
        chunks += 1;
        if chunks % 32 == 0 {
            peak = peak.max(rss_bytes(pid));
        }
    }
    assert_eq!(lines, N, "every event, once");
    assert!(bytes > 300_000_000, "the export is large ({bytes} bytes)");
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "exported {lines} events, {} MB; server RSS {} MB before, {} MB at most during",
        bytes / 1_000_000,
        baseline / 1_000_000,
        peak / 1_000_000
    );
    assert!(grew < 64 * 1024 * 1024, "server memory grew by {grew} bytes while streaming {bytes} bytes");
}

/// Issue 15, item 2, the review's sequence against the real binary: with write access to the
/// database but not the master key, delete events, edit an address, delete the checkpoints,
/// null the hashes, reset the head, run `rampart migrate`. `rampart audit verify` said ok; it
/// now names the fault, for the whole sequence and for each step alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewed_audit_rewrite_is_caught_whole_and_step_by_step() {
    let cli = Cli::new();
    // A log with checkpoints: two runs of the server (each signs the head as it stops), with
    // refused logins from a client address, and a user created between them.
    let http = reqwest::Client::new();
    for round in 0..2 {
        let server = cli.serve();
        for i in 0..3 {
            let body =
                serde_json::json!({ "email": format!("r{round}x{i}@example.com"), "password": "not the password" });
            http.post(server.url("/v1/auth/login")).json(&body).send().await.unwrap();
        }
        let (status, _) = server.terminate();
        assert!(status.success());
        let email = format!("u{round}@example.com");
        let out =
            cli.run(&["users", "create", "--email", &email, "--password-stdin"], &[], Some("Plum-Kettle-Orbit-93"));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let data = cli.dir.path().join("rampart-data");
    let verified = cli.run(&["audit", "verify"], &[], None);
    assert!(verified.status.success(), "{}", text(&verified.stderr));

    let steps: [(&str, &str); 5] = [
        (
            "delete events",
            "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events ORDER BY seq LIMIT 2 OFFSET 3)",
        ),
        (
            "edit an address",
            "UPDATE audit_events SET ip = '198.51.100.7' WHERE seq = (SELECT MIN(seq) FROM audit_events WHERE ip IS NOT NULL)",
        ),
        ("delete the checkpoints", "DELETE FROM audit_checkpoints"),
        ("null the hashes", "UPDATE audit_events SET prev_hash = NULL, hash = NULL"),
        (
            "reset the head",
            "UPDATE audit_head SET hash = zeroblob(32), checkpoint_seq = NULL, checkpoint_mac = zeroblob(32)",
        ),
    ];
    let whole: Vec<&str> = steps.iter().map(|(_, sql)| *sql).collect();
    let mut cases: Vec<(String, Vec<&str>)> = steps.iter().map(|(name, sql)| (name.to_string(), vec![*sql])).collect();
    cases.push(("the whole sequence".into(), whole));
    for (name, sqls) in cases {
        let case = Cli::new();
        let copy = case.dir.path().join("rampart-data");
        std::fs::create_dir(&copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o700)).unwrap();
        for entry in std::fs::read_dir(&data).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        {
            use sqlx::Connection as _;
            let url = format!("sqlite://{}", copy.join("rampart.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for sql in sqls {
                sqlx::Executor::execute(&mut conn, sql).await.unwrap_or_else(|e| panic!("{name}: {sql}: {e}"));
            }
            conn.close().await.unwrap();
        }
        let migrated = case.run(&["migrate"], &[], None);
        assert!(migrated.status.success(), "{name}: {}", text(&migrated.stderr));
        let out = case.run(&["audit", "verify"], &[], None);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(out.status.code(), Some(1), "{name} went unnoticed: {report}");
        assert_eq!(report["ok"], false, "{name}: {report}");
        assert!(report["fault"].as_str().is_some_and(|f| !f.is_empty()), "{name}: {report}");
        println!("{name}: {}", report["fault"]);
    }
}

/// `rampart seal`: a secret from standard input, sealed with the master key, which the
/// server opens (`rampart_core::services::oauth::CONFIG_SECRET_AAD`); nothing is echoed.
#[test]
fn seal_seals_a_secret_from_stdin_with_the_master_key() {
    let cli = Cli::new();
    let key = rampart_domain::MasterKey::from_bytes([9u8; 32]);
    let env = [("RAMPART_MASTER_KEY", key.encode())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli.run(&["seal"], &env, Some("gh-client-s3cret\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sealed = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let body = sealed.strip_prefix("sealed:").expect("sealed: prefix");
    assert!(!sealed.contains("s3cret") && !String::from_utf8_lossy(&out.stderr).contains("s3cret"));
    let opened = key.open(body, rampart_core::services::oauth::CONFIG_SECRET_AAD).unwrap();
    assert_eq!(opened, b"gh-client-s3cret", "the trailing newline is not part of the secret");
    // Another key cannot open it; nothing on stdin is refused.
    assert!(
        rampart_domain::MasterKey::from_bytes([8u8; 32])
            .open(body, rampart_core::services::oauth::CONFIG_SECRET_AAD)
            .is_err()
    );
    let out = cli.run(&["seal"], &env, Some(""));
    assert_eq!(out.status.code(), Some(1));
}
