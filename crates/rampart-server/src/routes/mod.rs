//! The HTTP routes, each documented with `#[utoipa::path]` and mounted through
//! `utoipa_axum::routes!`, so a route cannot exist without its OpenAPI entry.

pub mod admin;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod csp;
pub mod exports;
pub mod federation;
pub mod gateway;
pub mod ip_rules;
pub mod me;
pub mod mfa;
pub mod oauth;
pub mod paging;
pub mod service;
pub mod tokens;
pub mod transit;
pub mod webauthn;
pub mod webhooks;
