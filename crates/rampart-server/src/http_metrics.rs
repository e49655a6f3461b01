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
    template(req.extensions().get::<MatchedPath>())
}

/// The label of a matched template, or of none.
fn template(matched: Option<&MatchedPath>) -> &str {
    matched.map_or("unmatched", MatchedPath::as_str)
}

/// Layer 4 of `crate::stack`: what the request is counted by (method, route template, start),
/// read before it goes in; [`Observed::finish`] counts its answer and latency.
#[derive(Debug)]
pub(crate) struct Observed {
    method: &'static str,
    // The template is shared (an `Arc`): kept without a copy until the answer is counted.
    route: Option<MatchedPath>,
    started: Instant,
}

impl Observed {
    pub(crate) fn start(req: &Request) -> Self {
        Self {
            method: method_label(req.method()),
            route: req.extensions().get::<MatchedPath>().cloned(),
            started: Instant::now(),
        }
    }

    pub(crate) fn finish(self, metrics: &Metrics, res: &Response) {
        let secs = self.started.elapsed().as_secs_f64();
        metrics.observe_request(self.method, template(self.route.as_ref()), res.status().as_u16(), secs);
    }
}
