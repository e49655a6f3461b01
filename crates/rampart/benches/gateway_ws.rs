//! WebSockets through the gateway's built-in proxy: `cargo bench -p rampart --bench gateway_ws`
//! (after `cargo build --release`; `bench/run --only ws` does both). Starts a WebSocket echo
//! upstream here, the release `rampart serve` with `[gateway] upstream` and `listen`, opens
//! `WS_CONNECTIONS` (default 1000) connections through Rampart and keeps them all open, then
//! sends `WS_MESSAGES` (default 20) messages on each, one at a time per connection, all
//! connections at once. Prints the round-trip p50/p99 and Rampart's resident memory before and
//! with every connection open, as one JSON line (what `bench/run` reads). Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures::{SinkExt, StreamExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn echo_upstream() -> std::net::SocketAddr {
    use axum::extract::ws::WebSocketUpgrade;
    let app = axum::Router::new().fallback(|up: WebSocketUpgrade| async move {
        up.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if socket.send(msg).await.is_err() {
                    break;
                }
            }
        })
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let connections = env_usize("WS_CONNECTIONS", 1000);
    let messages = env_usize("WS_MESSAGES", 20);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), |t| root.join(t));
    let binary = std::env::var("RAMPART_BIN").map_or_else(|_| target.join("release/rampart"), Into::into);
    assert!(binary.exists(), "build the release binary first: {}", binary.display());

    let upstream = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (api, gw) = (free_port(), free_port());
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{api}\"\n[data]\ndir = \"{}/data\"\n[log]\nlevel = \"warn\"\n\
             [gateway]\nupstream = \"http://{upstream}\"\nlisten = \"127.0.0.1:{gw}\"\n\
             login_url = \"https://auth.example.com/ui/login\"\n\
             [[gateway.rules]]\nid = \"ws\"\npaths = [\"/**\"]\npolicy = \"public\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&binary)
        .args(["--config", config.to_str().unwrap(), "serve"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("http://127.0.0.1:{api}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "rampart did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle_rss = rss_kib(pid);

    // Open every connection (100 handshakes at a time), and keep them.
    let url = format!("ws://127.0.0.1:{gw}/echo");
    let opened = Instant::now();
    let mut sockets = Vec::with_capacity(connections);
    for chunk in (0..connections).collect::<Vec<_>>().chunks(100) {
        let batch =
            futures::future::join_all(chunk.iter().map(|_| tokio_tungstenite::connect_async(url.clone()))).await;
        for r in batch {
            sockets.push(r.expect("a WebSocket through the gateway").0);
        }
    }
    let open_secs = opened.elapsed().as_secs_f64();
    let open_rss = rss_kib(pid);

    // Every connection sends its messages one after another; all connections at once.
    let started = Instant::now();
    let tasks = sockets.into_iter().map(|mut ws| {
        tokio::spawn(async move {
            let mut rtts = Vec::with_capacity(messages);
            for i in 0..messages {
                let t = Instant::now();
                ws.send(Message::Text(format!("message {i}").into())).await.unwrap();
                let echoed = ws.next().await.unwrap().unwrap();
                assert!(echoed.is_text());
                rtts.push(t.elapsed());
            }
            (rtts, ws)
        })
    });
    let results = futures::future::join_all(tasks).await;
    let busy_rss = rss_kib(pid);
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<Duration> = Vec::with_capacity(connections * messages);
    let mut keep = Vec::with_capacity(connections);
    for r in results {
        let (rtts, ws) = r.unwrap();
        all.extend(rtts);
        keep.push(ws);
    }
    all.sort();
    let report = serde_json::json!({
        "connections": connections,
        "messages_per_connection": messages,
        "open_secs": open_secs,
        "messages_per_sec": (connections * messages) as f64 / elapsed,
        "p50_ms": percentile(&all, 0.50).as_secs_f64() * 1000.0,
        "p99_ms": percentile(&all, 0.99).as_secs_f64() * 1000.0,
        "rss_idle_mib": idle_rss as f64 / 1024.0,
        "rss_open_mib": open_rss as f64 / 1024.0,
        "rss_busy_mib": busy_rss as f64 / 1024.0,
        "per_connection_kib": (open_rss.saturating_sub(idle_rss)) as f64 / connections as f64,
    });
    println!("{report}");
    drop(keep);
    let _ = child.kill();
    let _ = child.wait();
}
