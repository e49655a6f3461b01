//! Rampart's integration tests: one binary, real HTTP against the real server, real databases.
//!
//! - `store_contract`: the storage contract, run against SQLite always and PostgreSQL when
//!   `RAMPART_TEST_DATABASE_URL` is set (always in CI).
//! - `caches`: the hot-path caches (verified tokens, sessions, the caller's account) never
//!   change an answer: expiry, revocation at once (and from another instance within the TTL).
//! - `http_core`: service endpoints, problem documents, request ids, metrics, OpenAPI.
//! - `cli`: the `rampart` binary itself: serve, config check, migrate, users create.
//! - `tokens`: access-token signing keys: JWKS, rotation, cross-instance pick-up.
//! - `accounts`: registration, login throttling, sessions, refresh rotation, cookie mode and
//!   CSRF, password change/reset/expiry, e-mail verification (over a real SMTP sink).
//! - `api_keys`: keys within the owner's permissions, verify, rotation grace, limits, usage.
//! - `audit`: checkpoints, retention, the query/stats/export API, aggregation, SIEM output,
//!   a million-event export in bounded memory, no acknowledged event lost to `kill -9`.
//! - `master_keys`: master-key rotation with the real binary under load, twice, then the newest
//!   key alone; a ring lacking a needed key refuses to start; a run stopped half-way resumes.
//! - `mfa`: TOTP (with pyotp as the independent implementation), backup codes, step-up login
//!   and its lockout, the enrolment policy, single-use races on both backends.
//! - `ip_rules`: IP allow/block rules, admin allowlist, break-glass, automatic blocks.
//! - `gateway`: the forward-auth doors (Traefik/Caddy, nginx, Envoy shapes), rules, the
//!   identity assertion, caches against revocation and role changes, reloads, explain.
//! - `proxies`: real nginx (`auth_request`) and Caddy (`forward_auth`) with the README's
//!   configurations in front of Rampart and a PyJWT upstream (`tests/upstream/echo_app.py`).
//! - `ui`: the web pages over HTTP: CSP and caching, sign-in and `rd`, the step-up, CSRF.
//! - `ui_admin`: the administrator's console over HTTP: a moderator's reads and refused
//!   writes, CSRF, confirmation and re-authentication, role ceilings, search and paging,
//!   dashboard counts against the audit viewer and its export, IP rules from the page.
//! - `browser`: the pages in a real Chromium (Playwright for Python, axe-core, screenshots):
//!   register, verify, sign in, TOTP, devices, API keys, reset (`tests/browser/`).
//! - `clients`: the Python and Node client libraries (`clients/`) and their FastAPI, Starlette,
//!   Django, Express and Fastify example apps against a seeded server.
//! - `notifications`: security e-mails from the mail outbox (what they say, preferences,
//!   merging, the hourly cap, `kill -9`), alert rules (once per burst, cooldown, channels).
//! - `privacy`: the personal-data export (the person's and an administrator's), no secrets in
//!   it; transit encryption through hvac, Vault's Python client (`py/transit_hvac.py`).
//! - `federation`: Telegram sign-in (payloads signed by `py/telegram_widget.py`, an
//!   independent implementation of Telegram's check), linked identities, replay races.
//! - `webhooks`: signed webhooks from the outbox, every delivery checked by the reference
//!   `standardwebhooks` package in a real receiver; retries, rotation, the SSRF guard.
//! - `shield`: rate limits (memory and Redis, shadow mode, outage), client IP, security
//!   headers, CSP reports, CORS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod api_keys;
mod audit;
mod browser;
mod caches;
mod cli;
mod clients;
mod conformance;
mod exports;
mod federation;
mod gateway;
mod hardening;
mod http_core;
mod ip_rules;
mod lists;
mod master_keys;
mod mfa;
mod notifications;
mod privacy;
mod proxies;
mod scale_out;
mod shield;
mod store_contract;
mod tokens;
mod ui;
mod ui_admin;
mod webauthn;
mod webhooks;
