//! Prometheus metrics: request count and latency histogram by method, route and status, plus
//! security events by action and outcome. The server serves them at `GET /metrics` (OpenMetrics
//! text) and feeds the request series from its metrics layer.
//!
//! Routes are labelled by their template (`/v1/admin/users/{id}`), never the raw path, and
//! unknown methods and unmatched paths collapse into one label each, so a scanner cannot
//! blow up the number of series.

use crate::FastMap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    action: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    backend: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
    outcome: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// The request series already met, by route template, then method and status: the series'
/// handles (each an `Arc`), so counting a request needs no allocation and no hash of the whole
/// label set. Bounded as the label set is (templates, eight methods, the statuses answered).
type HttpSeries = std::sync::RwLock<FastMap<Box<str>, Vec<(&'static str, u16, Counter, Histogram)>>>;

/// The gateway's decision series already met, by rule id, then outcome: the same for
/// [`Metrics::observe_gateway`] (rule ids are configured: bounded).
type GatewaySeries = std::sync::RwLock<FastMap<Box<str>, Vec<(&'static str, Counter)>>>;

/// One series' counter (a shared handle): fetched once by who counts often, then
/// [`SeriesCounter::inc`] is one atomic add.
#[derive(Debug, Clone)]
pub struct SeriesCounter(Counter);

impl SeriesCounter {
    pub fn inc(&self) {
        self.0.inc();
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: HistogramFamily,
    http_series: HttpSeries,
    events: Family<EventLabels, Counter>,
    rate_limit: Family<RuleLabels, Counter>,
    rate_limit_degraded: Gauge,
    bus_down: Gauge,
    csp_reports: Counter,
    ip_blocks: Family<ScopeLabels, Counter>,
    gateway: Family<RuleLabels, Counter>,
    gateway_series: GatewaySeries,
    upstream_state: Family<UpstreamLabels, Gauge>,
    transit: Family<TransitLabels, Counter>,
    deprecated: Family<DeprecatedLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeprecatedLabels {
    what: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitLabels {
    key: String,
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s, doubling.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    pub fn new(backend: &'static str) -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let events = Family::<EventLabels, Counter>::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), backend }).set(1);
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests", latency.clone());
        registry.register("security_events", "Security events recorded", events.clone());
        registry.register("build_info", "Version and storage backend", build);
        let rate_limit = Family::<RuleLabels, Counter>::default();
        let rate_limit_degraded = Gauge::default();
        let csp_reports = Counter::default();
        let bus_down = Gauge::default();
        registry.register(
            "invalidation_bus_down",
            "1 while this instance does not hear other instances' changes (PostgreSQL LISTEN down): \
             they are seen within the caches' TTL only",
            bus_down.clone(),
        );
        registry.register(
            "rate_limit_decisions",
            "Rate-limit decisions by rule and outcome (allowed, limited, shadow_limited, fallback)",
            rate_limit.clone(),
        );
        registry.register(
            "rate_limit_degraded",
            "1 while the shared rate-limit store (Redis) fails and rules count locally",
            rate_limit_degraded.clone(),
        );
        registry.register("csp_reports", "CSP violation reports received", csp_reports.clone());
        let ip_blocks = Family::<ScopeLabels, Counter>::default();
        registry.register("ip_blocks", "Requests refused by IP rules, by route scope", ip_blocks.clone());
        let gateway = Family::<RuleLabels, Counter>::default();
        registry.register(
            "gateway_decisions",
            "Gateway decisions by rule and outcome (allow, unauthenticated, step_up, forbidden, rate_limited)",
            gateway.clone(),
        );
        let upstream_state = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "gateway_upstream_state",
            "The built-in proxy's circuit breaker per upstream: 0 closed, 1 half-open, 2 open",
            upstream_state.clone(),
        );
        let transit = Family::<TransitLabels, Counter>::default();
        registry.register(
            "transit_operations",
            "Transit values processed, by key and operation (a batch counts each item)",
            transit.clone(),
        );
        let deprecated = Family::<DeprecatedLabels, Counter>::default();
        registry.register(
            "deprecated_uses",
            "Requests that used a deprecated endpoint, parameter or shape (answered with Deprecation and Sunset headers)",
            deprecated.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            http_series: HttpSeries::default(),
            gateway_series: GatewaySeries::default(),
            events,
            rate_limit,
            rate_limit_degraded,
            bus_down,
            csp_reports,
            ip_blocks,
            gateway,
            upstream_state,
            transit,
            deprecated,
        }
    }

    /// Counts one answered request of `route` (a template) and observes its latency.
    pub fn observe_request(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let series = self.http_series.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((.., requests, latency)) =
            series.get(route).and_then(|known| known.iter().find(|(m, s, ..)| *m == method && *s == status))
        {
            requests.inc();
            latency.observe(seconds);
            return;
        }
        drop(series);
        // First of its series: create it in the registry's families and remember its handles.
        let labels = HttpLabels { method, route: route.to_owned(), status };
        let requests = self.requests.get_or_create(&labels).clone();
        let latency = self.latency.get_or_create(&labels).clone();
        requests.inc();
        latency.observe(seconds);
        let mut series = self.http_series.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = series.entry(route.into()).or_default();
        if !known.iter().any(|(m, s, ..)| *m == method && *s == status) {
            known.push((method, status, requests, latency));
        }
    }

    pub fn observe_event(&self, action: &'static str, outcome: &'static str) {
        self.events.get_or_create(&EventLabels { action, outcome }).inc();
    }

    /// The counter of one rule's decisions with one outcome (`allowed`, `limited`,
    /// `shadow_limited`, or `fallback`: decided locally because Redis failed), for the caller
    /// to keep: counting through it is one atomic add, with no label set built or hashed.
    /// Labels are configured rule names: bounded.
    pub fn rate_limit_series(&self, rule: &str, outcome: &'static str) -> SeriesCounter {
        SeriesCounter(self.rate_limit.get_or_create(&RuleLabels { rule: rule.to_string(), outcome }).clone())
    }

    pub fn set_rate_limit_degraded(&self, degraded: bool) {
        self.rate_limit_degraded.set(i64::from(degraded));
    }

    pub fn set_bus_down(&self, down: bool) {
        self.bus_down.set(i64::from(down));
    }

    /// Counts one gateway decision: on a series already met, a read lock, a lookup and an
    /// atomic add (no label set built, allocated or hashed).
    pub fn observe_gateway(&self, rule: &str, outcome: &'static str) {
        let series = self.gateway_series.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, counter)) = series.get(rule).and_then(|known| known.iter().find(|(o, _)| *o == outcome)) {
            counter.inc();
            return;
        }
        drop(series);
        let counter = self.gateway.get_or_create(&RuleLabels { rule: rule.to_string(), outcome }).clone();
        counter.inc();
        let mut series = self.gateway_series.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = series.entry(rule.into()).or_default();
        if !known.iter().any(|(o, _)| *o == outcome) {
            known.push((outcome, counter));
        }
    }

    pub fn observe_transit(&self, key: &str, operation: &'static str, items: usize) {
        self.transit.get_or_create(&TransitLabels { key: key.to_string(), operation }).inc_by(items as u64);
    }

    pub fn set_upstream_state(&self, upstream: &str, state: i64) {
        self.upstream_state.get_or_create(&UpstreamLabels { upstream: upstream.to_string() }).set(state);
    }

    pub fn observe_ip_block(&self, scope: &'static str) {
        self.ip_blocks.get_or_create(&ScopeLabels { scope }).inc();
    }

    /// `what` names one entry of the server's deprecation table: bounded.
    pub fn observe_deprecated_use(&self, what: &'static str) {
        self.deprecated.get_or_create(&DeprecatedLabels { what }).inc();
    }

    pub fn observe_csp_report(&self) {
        self.csp_reports.inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// The Prometheus text exposition format (0.0.4) of an OpenMetrics document, for scrapers and
/// parsers that do not speak OpenMetrics: a counter's `# TYPE`/`# HELP` name its `_total`
/// samples, `info` becomes a gauge of its `_info` samples, `unknown` is `untyped`, and there is
/// no `# UNIT`, `_created` sample or `# EOF`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for line in openmetrics.lines() {
        if let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|rest| rest.split_once(' ')) {
            match kind {
                "counter" => {
                    renamed.insert(name, format!("{name}_total"));
                }
                "info" => {
                    renamed.insert(name, format!("{name}_info"));
                }
                _ => {}
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# TYPE ", "# HELP "].into_iter().find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = renamed.get(name).map_or(name, String::as_str);
            let tail = match (prefix, tail) {
                ("# TYPE ", "info") => "gauge",
                ("# TYPE ", "unknown") => "untyped",
                _ => tail,
            };
            out.push_str(format!("{prefix}{name} {tail}").trim_end());
            out.push('\n');
            continue;
        }
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        if sample_name.ends_with("_created") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prometheus_text_form_names_counters_by_their_samples() {
        let m = Metrics::new("sqlite");
        m.observe_request("GET", "/healthz", 200, 0.001);
        m.observe_event("user.created", "success");
        let om = m.render();
        assert!(om.trim_end().ends_with("# EOF"), "{om}");
        let text = to_prometheus_text(&om);
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(text.contains("# TYPE rampart_http_requests_total counter"), "{text}");
        assert!(
            text.contains(r#"rampart_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
            "{text}"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ") && l.ends_with(" counter")) {
            assert!(line.split(' ').nth(2).unwrap().ends_with("_total"), "{line}");
        }
    }

    #[test]
    fn each_method_route_and_status_is_its_own_series_however_often_it_is_met() {
        let m = Metrics::new("sqlite");
        let calls = [
            ("GET", "/v1/me", 200),
            ("GET", "/v1/me", 401),
            ("POST", "/v1/me", 200),
            ("GET", "/v1/me/sessions", 200),
            ("GET", "/v1/me", 200),
            ("GET", "/v1/me", 401),
            ("GET", "/v1/me", 200),
        ];
        for (method, route, status) in calls {
            m.observe_request(method, route, status, 0.001);
        }
        let out = m.render();
        for (series, n) in [
            (r#"method="GET",route="/v1/me",status="200""#, 3),
            (r#"method="GET",route="/v1/me",status="401""#, 2),
            (r#"method="POST",route="/v1/me",status="200""#, 1),
            (r#"method="GET",route="/v1/me/sessions",status="200""#, 1),
        ] {
            assert!(out.contains(&format!("rampart_http_requests_total{{{series}}} {n}\n")), "{series}: {out}");
            assert!(
                out.contains(&format!("rampart_http_request_duration_seconds_count{{{series}}} {n}\n")),
                "{series}: {out}"
            );
        }
        assert_eq!(out.matches("rampart_http_requests_total{").count(), 4, "{out}");
    }

    #[test]
    fn renders_counters_and_histograms_with_labels() {
        let m = Metrics::new("sqlite");
        m.observe_request("GET", "/healthz", 200, 0.001);
        m.observe_request("GET", "/healthz", 200, 0.002);
        m.observe_event("user.created", "success");
        let out = m.render();
        assert!(out.contains(r#"rampart_http_requests_total{method="GET",route="/healthz",status="200"} 2"#), "{out}");
        assert!(
            out.contains(
                r#"rampart_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 2"#
            ),
            "{out}"
        );
        assert!(out.contains(r#"rampart_security_events_total{action="user.created",outcome="success"} 1"#), "{out}");
        assert!(out.contains(r#"rampart_build_info{version=""#), "{out}");
    }
}
