//! One upstream: where it is, its settings, its circuit breaker and its concurrency slots.
//! Cheap to clone (an `Arc`); the gateway builds one per configured upstream at start-up and
//! keeps it for the process's life, so the breaker's memory spans requests.

use crate::breaker::{Admission, Breaker, BreakerState, Outcome, Ticket, Transition};
use crate::pool::Pool;
use crate::settings::UpstreamSettings;
use http::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Called on every change of an upstream's breaker state, with the upstream's name: the caller
/// writes audit events on open and close and sets its state metric. It runs on the request's
/// task, outside the breaker's lock; it should be quick (send on a channel for slow work).
/// The breaker changes state only when a request arrives or ends, so open → half-open is
/// reported with the first request after the ejection (until then [`Upstream::state`] already
/// reads half-open).
pub type TransitionHook = Arc<dyn Fn(&str, &Transition) + Send + Sync>;

/// Why an upstream could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not an absolute `http://` or `https://` URL without query.
    #[error("upstream {name}: invalid base URL: {reason}")]
    InvalidUrl {
        /// The upstream's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("upstream {name}: {reason}")]
    InvalidSettings {
        /// The upstream's name.
        name: String,
        /// Which setting, and why.
        reason: &'static str,
    },
}

/// An upstream the proxy forwards to. See the module documentation.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without its trailing slash (empty for `/`).
    base_path: String,
    /// `Host` for requests that do not keep the client's.
    host_header: HeaderValue,
    settings: UpstreamSettings,
    breaker: Mutex<Breaker>,
    slots: Arc<Semaphore>,
    hook: Option<TransitionHook>,
    /// Where a plain `http://` upstream is dialled; `None` for `https://` (the TLS client's).
    plain: Option<Dial>,
    /// The idle connections of a plain upstream.
    pool: Pool,
}

/// Where to dial a plain upstream: its host (without an IPv6 literal's brackets) and port, and
/// the address itself when the host is one (no resolution then).
#[derive(Debug)]
pub(crate) struct Dial {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) literal: Option<SocketAddr>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field(
                "base_url",
                &format_args!("{}://{}{}", self.inner.scheme, self.inner.authority, self.inner.base_path),
            )
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream named `name` (for logs, metrics and the hook) at `base_url`
    /// (`http://127.0.0.1:8000`, `https://api.internal/prefix`): a request for `/a?b` goes to
    /// `<base_url>/a?b`.
    pub fn new(name: impl Into<String>, base_url: &str, settings: UpstreamSettings) -> Result<Self, UpstreamError> {
        Self::build(name.into(), base_url, settings, None)
    }

    /// As [`Upstream::new`], with a hook told of every breaker transition.
    pub fn with_hook(
        name: impl Into<String>,
        base_url: &str,
        settings: UpstreamSettings,
        hook: TransitionHook,
    ) -> Result<Self, UpstreamError> {
        Self::build(name.into(), base_url, settings, Some(hook))
    }

    fn build(
        name: String,
        base_url: &str,
        settings: UpstreamSettings,
        hook: Option<TransitionHook>,
    ) -> Result<Self, UpstreamError> {
        let bad = |reason| UpstreamError::InvalidUrl { name: name.clone(), reason };
        if let Some(reason) = settings.problem() {
            return Err(UpstreamError::InvalidSettings { name, reason });
        }
        let uri: Uri = base_url.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| bad("no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(bad("the scheme must be http or https"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(bad("a base URL has no query"));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid host"))?;
        let breaker = Breaker::new(settings.breaker.clone(), now());
        let slots = Arc::new(Semaphore::new(settings.max_concurrent.min(Semaphore::MAX_PERMITS)));
        let plain = (scheme == Scheme::HTTP).then(|| {
            let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = authority.port_u16().unwrap_or(80);
            let literal = host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port));
            Dial { host, port, literal }
        });
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                scheme,
                authority,
                base_path,
                host_header,
                settings,
                breaker: Mutex::new(breaker),
                slots,
                hook,
                plain,
                pool: Pool::default(),
            }),
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its settings.
    pub fn settings(&self) -> &UpstreamSettings {
        &self.inner.settings
    }

    /// The breaker's state now (for a state metric or a status page).
    pub fn state(&self) -> BreakerState {
        self.breaker().state(now())
    }

    /// How many requests are in flight to it now.
    pub fn in_flight(&self) -> usize {
        self.inner.settings.max_concurrent.min(Semaphore::MAX_PERMITS) - self.inner.slots.available_permits()
    }

    pub(crate) fn host_header(&self) -> &HeaderValue {
        &self.inner.host_header
    }

    /// Where a plain `http://` upstream is dialled (`None` for `https://`): its requests go over
    /// the proxy's own connections, driven by the request's task.
    pub(crate) fn plain(&self) -> Option<&Dial> {
        self.inner.plain.as_ref()
    }

    /// The idle connections of a plain upstream.
    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The upstream target for a request target (its path and query; the client's authority,
    /// if the target was absolute, is not the upstream's): the origin form (`/a?b`) for a plain
    /// upstream, whose connection is the proxy's own, and the absolute URL for the TLS client.
    pub(crate) fn target(&self, uri: &Uri) -> Option<Uri> {
        let path = match uri.path_and_query() {
            // The usual case: nothing to join, and the path is shared, not copied.
            Some(pq) if self.inner.base_path.is_empty() && pq.as_str().starts_with('/') => pq.clone(),
            pq => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                let pq = if pq.starts_with('/') { pq.to_owned() } else { format!("/{pq}") };
                format!("{}{}", self.inner.base_path, pq).parse().ok()?
            }
        };
        if self.inner.plain.is_some() {
            return Some(Uri::from(path));
        }
        Uri::builder()
            .scheme(self.inner.scheme.clone())
            .authority(self.inner.authority.clone())
            .path_and_query(path)
            .build()
            .ok()
    }

    /// A concurrency slot, if one is free.
    pub(crate) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.slots.clone().try_acquire_owned().ok()
    }

    /// Asks the breaker; `Err(retry_after)` when it refuses.
    pub(crate) fn admit(&self) -> Result<Pass, Duration> {
        let (admission, transition) = self.breaker().admit(now());
        self.notify(transition);
        match admission {
            Admission::Admit(ticket) => Ok(Pass { upstream: self.clone(), ticket: Some(ticket) }),
            Admission::Reject { retry_after } => Err(retry_after),
        }
    }

    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        // The breaker holds only counters: after a panic elsewhere they are still usable.
        self.inner.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        match t.to {
            BreakerState::Open => tracing::warn!(
                upstream = %self.inner.name, from = t.from.as_str(), reason = ?t.reason,
                ejected_for = ?t.ejected_for, ejections = t.ejections, "upstream ejected: circuit open"
            ),
            _ => tracing::info!(
                upstream = %self.inner.name, from = t.from.as_str(), to = t.to.as_str(), "upstream circuit state"
            ),
        }
        if let Some(hook) = &self.inner.hook {
            hook(&self.inner.name, &t);
        }
    }
}

/// A request the breaker let through. Reports its outcome once; dropped without one, it gives
/// a probe's slot back.
pub(crate) struct Pass {
    upstream: Upstream,
    ticket: Option<Ticket>,
}

impl Pass {
    pub(crate) fn record(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            let transition = self.upstream.breaker().record(now(), &ticket, outcome);
            self.upstream.notify(transition);
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.upstream.breaker().cancel(&ticket);
        }
    }
}

/// The breaker's clock: tokio's (which tests may pause), as a std instant.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
