//! Rampart's use cases and the application state they run in, with no HTTP: the JSON API,
//! the web pages, the gateway and the CLI are doors onto the same functions.
//!
//! - [`App`] ([`state`]): everything a use case needs, built once from the configuration.
//! - [`services`]: the use cases, by area; each takes typed input and returns a domain result
//!   or a [`ServiceError`].
//! - [`authz`]: who is calling ([`authz::Principal`], [`authz::Caller`]) and the permission
//!   checks, in one module.
//! - [`events`]: the security-event pipeline; [`mail`], [`signing`], [`hashing`],
//!   [`limiter`], [`metrics`], [`master_key`], [`root_keys`]: the machinery the use cases drive.

pub mod authz;
/// A map on a hot path keyed by values no client picks freely (SHA-256 digests, server-made
/// ids, configured labels), hashed with foldhash's keyed hash (a random seed per process)
/// instead of std's SipHash, which cost more than the rest of such a lookup.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub mod error;
pub mod events;
pub mod hashing;
pub mod limiter;
pub mod mail;
pub mod master_key;
pub mod metrics;
pub mod root_keys;
pub mod services;
pub mod signing;
pub mod startup;
pub mod state;

pub use error::{FieldProblem, ServiceError, ServiceErrorKind};
pub use events::{RequestContext, SecurityEvents};
pub use state::App;

/// RFC 3339 in UTC: how Rampart writes instants in events, exports and API bodies.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The use cases stay free of HTTP: the crate may not even depend on an HTTP crate.
    #[test]
    fn no_http_dependency() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or_default();
        let deps = deps.split("\n[").next().unwrap_or_default();
        for line in deps.lines() {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default().trim();
            assert!(
                !["axum", "http", "http-body-util", "hyper", "tower", "tower-http", "rampart-wire", "rampart-server"]
                    .contains(&name),
                "rampart-core depends on {name}"
            );
        }
    }
}
