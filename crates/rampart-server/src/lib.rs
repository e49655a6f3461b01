//! Rampart's HTTP server: the only crate that speaks HTTP. The JSON API's handlers extract,
//! call one use case of `rampart_core`, and render; the shield's layers guard every route.
//!
//! - [`state`]: [`AppState`], the use cases' `App` plus the server's parts;
//! - [`router`]: every route and the whole layer stack, in order;
//! - [`startup`]: [`Application`] (build, serve, shut down);
//! - [`background`]: the periodic jobs while serving;
//! - [`gateway_proxy`]: the gateway's built-in proxy, on a listener of its own;
//! - [`routes`]: the handlers, by API area; [`views`]: domain → wire conversions;
//! - [`ui`]: the web pages under `/ui/` (askama templates, embedded assets, the catalogue);
//! - [`auth`]: the extractors for who is calling; [`error`]: [`ApiError`] and its one table;
//! - [`shield`], [`limits`], [`request_id`], [`telemetry`], [`http_metrics`]: the layers, run
//!   in order by one middleware (`stack`).
// The layer stack is one future nesting eleven layers, the rate limiter's identity lookup
// (API keys, the store) among them: proving it `Send` takes more than the default 128 steps.
#![recursion_limit = "256"]

pub mod auth;
pub mod background;
pub mod deprecation;
pub mod error;
pub mod gateway_proxy;
pub mod http_metrics;
#[cfg(test)]
mod layer_tests;
pub mod limits;
pub mod oauth_transport;
pub mod openapi;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod shield;
mod stack;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ui;
pub mod views;
pub mod webhook_transport;

pub use error::ApiError;
pub use router::{openapi_doc, router};
pub use startup::{Application, serve_gracefully, shutdown_signal};
pub use state::AppState;
