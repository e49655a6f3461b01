//! The floor every scenario of `bench/run` is compared with: the same HTTP stack Rampart uses
//! (tokio, hyper through axum), with no middleware, no storage and no logging, answering every
//! request with a fixed JSON body. Also the upstream behind nginx's `proxy_pass`.
//!
//! Usage: `bench-bare 127.0.0.1:PORT`

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;

const BODY: &str = r#"{"status":"ok"}"#;

async fn fixed() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().fallback(fixed);
    axum::serve(listener, app).await
}
