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
    Template::of(req).label()
}

/// Where a request's route template comes from: the router's match, or the hot routes' table
/// (`crate::router::hot_template`: answered before the router), or neither.
#[derive(Debug)]
enum Template<M> {
    Matched(M),
    Hot(&'static str),
    Unmatched,
}

impl<'a> Template<&'a MatchedPath> {
    fn of(req: &'a Request) -> Self {
        match req.extensions().get::<MatchedPath>() {
            Some(m) => Template::Matched(m),
            None => {
                crate::router::hot_template(req.method(), req.uri().path()).map_or(Template::Unmatched, Template::Hot)
            }
        }
    }

    fn label(self) -> &'a str {
        match self {
            Template::Matched(m) => m.as_str(),
            Template::Hot(t) => t,
            Template::Unmatched => "unmatched",
        }
    }
}

impl Template<MatchedPath> {
    fn as_ref(&self) -> Template<&MatchedPath> {
        match self {
            Template::Matched(m) => Template::Matched(m),
            Template::Hot(t) => Template::Hot(t),
            Template::Unmatched => Template::Unmatched,
        }
    }
}

/// Layer 4 of `crate::stack`: what the request is counted by (method, route template, start),
/// read before it goes in; [`Observed::finish`] counts its answer and latency.
#[derive(Debug)]
pub(crate) struct Observed {
    method: &'static str,
    // The template is shared (an `Arc`): kept without a copy until the answer is counted.
    route: Template<MatchedPath>,
    started: Instant,
}

impl Observed {
    pub(crate) fn start(req: &Request) -> Self {
        let route = match Template::of(req) {
            Template::Matched(m) => Template::Matched(m.clone()),
            Template::Hot(t) => Template::Hot(t),
            Template::Unmatched => Template::Unmatched,
        };
        Self { method: method_label(req.method()), route, started: Instant::now() }
    }

    pub(crate) fn finish(self, metrics: &Metrics, res: &Response) {
        let secs = self.started.elapsed().as_secs_f64();
        metrics.observe_request(self.method, self.route.as_ref().label(), res.status().as_u16(), secs);
    }
}
