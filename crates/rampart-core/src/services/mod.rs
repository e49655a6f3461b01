//! Use cases: the orchestration of domain rules, storage and events that every door (the JSON
//! API, the CLI, background work) calls, so the doors cannot drift apart. Each takes typed
//! input and returns a domain result or a [`crate::ServiceError`].
//!
//! Dependencies run one way: `login` → `step_up` → (`mfa`, `webauthn`) → `factors` (the
//! re-authentication before a factor change, code checks, the second-factor throttle) →
//! `login::check_password`; `registration` → `users`; `federation` → (`login`, `step_up`).

pub mod admin;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod console;
pub mod exports;
pub mod factors;
pub mod federation;
pub mod gateway;
pub mod ip_rules;
pub mod login;
pub mod maintenance;
pub mod master_keys;
pub mod mfa;
mod notices;
pub mod notifications;
pub mod oauth;
pub mod passwords;
pub mod privacy;
pub mod registration;
pub mod sessions;
pub mod step_up;
pub mod tokens;
pub mod transit;
pub mod users;
pub mod webauthn;
pub mod webhooks;
