//! The metrics layer: counts every answered request in [`Metrics`] by method, route template
//! and status, and names the route label request logs share.

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use rampart_core::metrics::Metrics;
use std::time::Instant;

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route template a request matched (`/v1/admin/users/{id}`), or `unmatched`: the label
/// metrics and request logs both use, never the raw path.
pub(crate) fn route_label(req: &Request) -> &str {
    req.extensions().get::<MatchedPath>().map_or_else(|| unrouted_label(req), MatchedPath::as_str)
}

/// The label of a request the router did not see or did not match: a hot route's template
/// (`crate::router::hot_template`: answered before the router), else `unmatched`.
fn unrouted_label(req: &Request) -> &'static str {
    crate::router::hot_template(req.method(), req.uri().path()).unwrap_or("unmatched")
}

/// A request's label as [`Observed`] keeps it until the answer is counted.
#[derive(Debug)]
enum Route {
    // The template is shared (an `Arc`): kept without a copy.
    Matched(MatchedPath),
    Unrouted(&'static str),
}

/// Layer 4 of `crate::stack`: what the request is counted by (method, route template, start),
/// read before it goes in; [`Observed::finish`] counts its answer and latency.
#[derive(Debug)]
pub(crate) struct Observed {
    method: &'static str,
    route: Route,
    started: Instant,
}

impl Observed {
    pub(crate) fn start(req: &Request) -> Self {
        let route = match req.extensions().get::<MatchedPath>() {
            Some(m) => Route::Matched(m.clone()),
            None => Route::Unrouted(unrouted_label(req)),
        };
        Self { method: method_label(req.method()), route, started: Instant::now() }
    }

    pub(crate) fn finish(self, metrics: &Metrics, res: &Response) {
        let secs = self.started.elapsed().as_secs_f64();
        let route = match &self.route {
            Route::Matched(m) => m.as_str(),
            Route::Unrouted(label) => label,
        };
        metrics.observe_request(self.method, route, res.status().as_u16(), secs);
    }
}
