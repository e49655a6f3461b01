//! Use cases: the orchestration of domain rules, storage and events that both the HTTP
//! handlers and the CLI call, so the two paths cannot drift apart.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod ip_rules;
pub mod mfa;
pub mod users;
pub mod webauthn;
