//! 100 MB up and 100 MB down through the proxy, in bounded memory: the bodies are made chunk by
//! chunk as they are read and checked chunk by chunk as they arrive, so whatever the process
//! holds is what the proxy holds. Its own test binary, one transfer at a time, so the resident
//! set measured is this transfer's alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use http_body_util::BodyExt;
use rampart_proxy::UpstreamSettings;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use support::*;
use tokio::sync::Mutex;

const SIZE: u64 = 100 * 1024 * 1024;
/// How much the resident set may grow during a transfer. Kernel socket buffers do not count in
/// it; a proxy holding the whole body would add 100 MB.
const RSS_BUDGET: u64 = 64 * 1024 * 1024;

/// One transfer at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_100_mb_streams_through_in_bounded_memory() {
    let _one = ONE_AT_A_TIME.lock().await;
    let produced = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    // When the upstream saw its first byte: how much the client had produced by then.
    let produced_at_first_byte = Arc::new(AtomicU64::new(u64::MAX));
    let peak_rss = Arc::new(AtomicU64::new(0));

    let up = {
        let (produced, received, first, peak) =
            (produced.clone(), received.clone(), produced_at_first_byte.clone(), peak_rss.clone());
        upstream(move |req| {
            let (produced, received, first, peak) = (produced.clone(), received.clone(), first.clone(), peak.clone());
            async move {
                let mut body = req.into_body();
                let mut offset = 0u64;
                let mut next_sample = 0u64;
                while let Some(frame) = body.frame().await {
                    let Ok(data) = frame.unwrap().into_data() else { continue };
                    if offset == 0 {
                        first.store(produced.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    check_chunk(offset, &data);
                    offset += data.len() as u64;
                    received.store(offset, Ordering::Relaxed);
                    if offset >= next_sample {
                        peak.fetch_max(rss(), Ordering::Relaxed);
                        next_sample += 1024 * 1024;
                    }
                }
                http::Response::new(full(offset.to_string()))
            }
        })
        .await
    };
    let (front, _) = proxied(up, UpstreamSettings::default()).await;

    // Warm up the connections and allocator, then take the baseline.
    assert_eq!(get(front, "/warm-up").await.status, 200);
    let before = rss();
    let req = http::Request::post(format!("http://{front}/upload"))
        .body(Generated::new(SIZE, produced.clone()).boxed_unsync())
        .unwrap();
    let res = client().request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, SIZE.to_string());
    assert_eq!(received.load(Ordering::Relaxed), SIZE);

    let growth = peak_rss.load(Ordering::Relaxed).saturating_sub(before);
    let first = produced_at_first_byte.load(Ordering::Relaxed);
    eprintln!(
        "upload: resident set grew {:.1} MB at most; the client had produced {:.1} MB when the upstream got its first byte",
        mb(growth),
        mb(first)
    );
    assert!(growth < RSS_BUDGET, "resident set grew {:.1} MB", mb(growth));
    // Streaming, not store-and-forward: the upstream read before the client had sent it all.
    assert!(first < SIZE / 2, "the upstream saw nothing until {:.1} MB were sent", mb(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_of_100_mb_streams_through_in_bounded_memory() {
    let _one = ONE_AT_A_TIME.lock().await;
    let produced = Arc::new(AtomicU64::new(0));
    let up = {
        let produced = produced.clone();
        upstream(move |req| {
            let produced = produced.clone();
            async move {
                if req.uri().path() == "/warm-up" {
                    return http::Response::new(full("ok"));
                }
                http::Response::new(Generated::new(SIZE, produced).boxed_unsync())
            }
        })
        .await
    };
    let (front, _) = proxied(up, UpstreamSettings::default()).await;
    assert_eq!(get(front, "/warm-up").await.status, 200);

    let before = rss();
    let res = client().request(http::Request::get(format!("http://{front}/download")).body(empty()).unwrap()).await;
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], SIZE.to_string());
    let mut body = res.into_body();
    let (mut offset, mut next_sample, mut peak) = (0u64, 0u64, 0u64);
    let mut produced_at_first_byte = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else { continue };
        produced_at_first_byte.get_or_insert(produced.load(Ordering::Relaxed));
        check_chunk(offset, &data);
        offset += data.len() as u64;
        if offset >= next_sample {
            peak = peak.max(rss());
            next_sample += 1024 * 1024;
        }
    }
    assert_eq!(offset, SIZE);

    let growth = peak.saturating_sub(before);
    let first = produced_at_first_byte.unwrap();
    eprintln!(
        "download: resident set grew {:.1} MB at most; the upstream had produced {:.1} MB when the client got its first byte",
        mb(growth),
        mb(first)
    );
    assert!(growth < RSS_BUDGET, "resident set grew {:.1} MB", mb(growth));
    assert!(first < SIZE / 2, "the client saw nothing until {:.1} MB were produced", mb(first));
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
