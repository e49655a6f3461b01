//! Criterion benchmark of the proxy's cost per request: a small GET answered by a local hyper
//! upstream, sent directly and through an axum front door calling `Proxy::forward` (as the
//! gateway does), one at a time on a kept-alive connection and 32 at once. Loopback only; the
//! client, the proxy and the upstream share the machine's cores.
//!
//! `cargo bench -p rampart-proxy --bench proxy`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use rampart_proxy::UpstreamSettings;
use std::net::SocketAddr;
use support::*;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (direct, proxied_addr) = rt.block_on(async {
        let up = upstream(|_req| async { http::Response::new(full("hello from upstream")) }).await;
        let (front, _) = proxied(up, UpstreamSettings::default()).await;
        (up, front)
    });
    let client = client();
    let one = |addr: SocketAddr| {
        let client = client.clone();
        async move {
            let req = http::Request::get(format!("http://{addr}/bench")).body(empty()).unwrap();
            let res = client.request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            res.into_body().collect().await.unwrap();
        }
    };

    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    for (name, addr) in [("direct", direct), ("proxied", proxied_addr)] {
        g.bench_function(format!("{name}/sequential"), |b| b.iter(|| rt.block_on(one(addr))));
    }
    g.throughput(Throughput::Elements(32));
    for (name, addr) in [("direct", direct), ("proxied", proxied_addr)] {
        g.bench_function(format!("{name}/32_concurrent"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let all: Vec<_> = (0..32).map(|_| tokio::spawn(one(addr))).collect();
                    for h in all {
                        h.await.unwrap();
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
