//! The `[gateway]` section: the forward-auth gateway's default policy, where unsigned-in
//! browsers are sent, where `rd=` may lead, the upstream of the built-in proxy, and the
//! per-route rules (`[[gateway.rules]]`, or a rules file holding `[[rules]]`).
//!
//! The rules are checked and compiled by [`RuleSet::compile`]; every refusal names the rule's
//! id. Rules that can never match (an earlier rule takes all their requests) are not refused:
//! [`GatewaySettings::rules`]`.shadowed()` lists them for start-up to warn about.

use crate::settings::{secs, span};
use rampart_domain::gateway::{AuthnKind, HostPattern, OnUnauthenticated, Policy, Require, RuleSet, RuleSpec};
use rampart_domain::ratelimit::Quota;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// What a request no rule matches gets: `deny` (default), `public` or `authenticated`.
    pub default_policy: Policy,
    /// Hosts (`app.example.com`, `*.example.com`) a sign-in may send the browser back to
    /// (`rd=`); others are ignored.
    pub allowed_redirect_hosts: Vec<String>,
    /// The sign-in page unsigned-in browsers are sent to, with `rd=<original URL>`: a path on
    /// Rampart (`/ui/login`) or an absolute `https://` URL.
    pub login_url: String,
    /// The built-in reverse proxy's upstream (`http://127.0.0.1:8000`); unset: forward-auth only.
    pub upstream: Option<String>,
    /// Where the built-in proxy listens (`0.0.0.0:8080`): every request there is decided by the
    /// rules and, when allowed, forwarded to `upstream`. Required with `upstream`.
    pub listen: Option<std::net::SocketAddr>,
    /// The built-in proxy's timeouts, limits and circuit breaker.
    pub proxy: GatewayProxyConfig,
    /// A TOML file holding the rules as `[[rules]]`, instead of `[[gateway.rules]]` here.
    pub rules_file: Option<PathBuf>,
    /// The rules, in order: the first that matches a request decides it.
    pub rules: Vec<GatewayRuleConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            default_policy: Policy::Deny,
            allowed_redirect_hosts: Vec::new(),
            login_url: "/ui/login".into(),
            upstream: None,
            listen: None,
            proxy: GatewayProxyConfig::default(),
            rules_file: None,
            rules: Vec::new(),
        }
    }
}

/// `[gateway.proxy]`: the built-in proxy's timeouts, limits and circuit breaker (Envoy's
/// outlier detection: ejected after `breaker_consecutive_failures` 5xx or connection failures in
/// a row, or a failure ratio over `breaker_failure_ratio` among at least 20 requests in 10 s; the
/// n-th ejection lasts n × `breaker_base_ejection_secs`, at most `breaker_max_ejection_secs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayProxyConfig {
    pub connect_timeout_secs: u64,
    /// From the request sent to the response's first byte.
    pub first_byte_timeout_secs: u64,
    /// The longest pause between two body chunks, either way.
    pub idle_timeout_secs: u64,
    /// Requests in flight to the upstream at once; beyond, 503 `overloaded` at once.
    pub max_concurrent: usize,
    /// Retries of body-less idempotent requests after a connection failure.
    pub max_retries: u32,
    pub breaker_consecutive_failures: u32,
    pub breaker_failure_ratio: f64,
    pub breaker_base_ejection_secs: u64,
    pub breaker_max_ejection_secs: u64,
    /// Event loops serving the proxy's listener, each a thread of its own that accepts and
    /// serves its share of the connections from start to end (nginx's `worker_processes`).
    /// Default: the number of cores.
    pub threads: Option<usize>,
}

impl Default for GatewayProxyConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 5,
            first_byte_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_concurrent: 1024,
            max_retries: 2,
            breaker_consecutive_failures: 5,
            breaker_failure_ratio: 0.5,
            breaker_base_ejection_secs: 30,
            breaker_max_ejection_secs: 300,
            threads: None,
        }
    }
}

impl GatewayProxyConfig {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, v, lo, hi) in [
            ("connect_timeout_secs", self.connect_timeout_secs, 1, 300),
            ("first_byte_timeout_secs", self.first_byte_timeout_secs, 1, 3600),
            ("idle_timeout_secs", self.idle_timeout_secs, 1, 86_400),
            ("breaker_base_ejection_secs", self.breaker_base_ejection_secs, 1, 86_400),
            ("breaker_max_ejection_secs", self.breaker_max_ejection_secs, 1, 86_400),
        ] {
            if !(lo..=hi).contains(&v) {
                p.push(format!("gateway.proxy.{key}: between {lo} and {hi}; got {v}"));
            }
        }
        if self.max_concurrent == 0 {
            p.push("gateway.proxy.max_concurrent: at least 1".into());
        }
        if let Some(t) = self.threads
            && !(1..=256).contains(&t)
        {
            p.push(format!("gateway.proxy.threads: between 1 and 256; got {t}"));
        }
        if self.max_retries > 10 {
            p.push(format!("gateway.proxy.max_retries: at most 10; got {}", self.max_retries));
        }
        if !(self.breaker_failure_ratio > 0.0 && self.breaker_failure_ratio <= 1.0) {
            p.push(format!(
                "gateway.proxy.breaker_failure_ratio: above 0, at most 1; got {}",
                self.breaker_failure_ratio
            ));
        }
        if self.breaker_base_ejection_secs > self.breaker_max_ejection_secs {
            p.push("gateway.proxy.breaker_base_ejection_secs: at most breaker_max_ejection_secs".into());
        }
        p
    }
}

/// One `[[gateway.rules]]` entry as written (see [`RuleSpec`] for what each field means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRuleConfig {
    /// Unique; names the rule in refusals, warnings, explanations, metrics and assertions.
    #[serde(default)]
    pub id: String,
    /// `app.example.com` or `*.example.com`; empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Exact (`/healthz`), globs (`/v1/orders/**`, `/v1/*/items`) or `re:<regex>`; empty: any.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Upper-case methods; empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `public`, `authenticated` or `deny`. Required.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// `{ all = [...] }` or `{ any = [...] }` of permissions (`orders:write`, `orders:*`) and
    /// roles (`role:admin`).
    #[serde(default)]
    pub require: Option<Require<String>>,
    /// A second factor in the principal's `amr`.
    #[serde(default)]
    pub mfa: bool,
    /// The most seconds since the principal last authenticated (step-up freshness).
    #[serde(default)]
    pub max_auth_age_secs: Option<u64>,
    /// Which credentials count: `session`, `bearer`, `api_key` (default: all three).
    #[serde(default = "all_authn")]
    pub authn: Vec<AuthnKind>,
    /// `auto` (a redirect for browser page loads, else 401), `redirect` or `401`.
    #[serde(default)]
    pub on_unauthenticated: OnUnauthenticated,
    /// The identity assertion's `aud`; unset: the forwarded host.
    #[serde(default)]
    pub audience: Option<String>,
    /// Requests per principal (anonymous callers: per address).
    #[serde(default)]
    pub rate_limit: Option<GatewayRateLimit>,
    /// CORS preflights pass unauthenticated.
    #[serde(default)]
    pub allow_preflight: bool,
    /// Send plain `Remote-User`, `Remote-Email` and `Remote-Groups` headers upstream too.
    #[serde(default)]
    pub forward_headers: bool,
}

fn all_authn() -> Vec<AuthnKind> {
    AuthnKind::ALL.to_vec()
}

/// A rule's rate limit: `requests` per `per_seconds` for each principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRateLimit {
    pub requests: u32,
    pub per_seconds: u64,
}

impl GatewayRuleConfig {
    /// The rule in the domain's terms (a missing policy reads as `authenticated`; it is
    /// reported by [`GatewayConfig::rule_set`]).
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            id: self.id.clone(),
            hosts: self.hosts.clone(),
            paths: self.paths.clone(),
            methods: self.methods.clone(),
            policy: self.policy.unwrap_or(Policy::Authenticated),
            require: self.require.clone(),
            mfa: self.mfa,
            max_auth_age: self.max_auth_age_secs.map(|s| span(secs(s))),
            authn: self.authn.clone(),
            on_unauthenticated: self.on_unauthenticated,
            audience: self.audience.clone(),
            rate_limit: self.rate_limit.map(|r| Quota { limit: r.requests, period: secs(r.per_seconds) }),
            allow_preflight: self.allow_preflight,
            forward_headers: self.forward_headers,
        }
    }
}

/// The shape of a rules file: `[[rules]]` entries, as `[[gateway.rules]]` in the configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRulesFile {
    #[serde(default)]
    pub rules: Vec<GatewayRuleConfig>,
}

impl GatewayRulesFile {
    /// Reads and parses a rules file; the error names the file.
    pub fn read(path: &Path) -> Result<GatewayRulesFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("gateway.rules_file: cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let e = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            format!("gateway.rules_file: {}: {e}", path.display())
        })
    }
}

/// `[gateway]`, ready to use.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where `rd=` may send a browser after sign-in.
    pub allowed_redirect_hosts: Vec<HostPattern>,
    /// The sign-in page (a path on Rampart or an absolute URL), without `rd=`.
    pub login_url: String,
    /// The built-in proxy's upstream; `None`: forward-auth only.
    pub upstream: Option<::url::Url>,
    /// Where the built-in proxy listens (set exactly when `upstream` is).
    pub listen: Option<std::net::SocketAddr>,
    /// The built-in proxy's timeouts, limits and breaker.
    pub proxy: GatewayProxyConfig,
    /// The rules file, when the rules come from one (what a reload reads again).
    pub rules_file: Option<PathBuf>,
    /// The compiled rules and the default policy (`rules.default_policy()`).
    pub rules: RuleSet,
}

impl GatewaySettings {
    /// Whether `rd=` may lead to `host` (as [`normalize_host`] gives it).
    ///
    /// [`normalize_host`]: rampart_domain::gateway::normalize_host
    pub fn redirect_allowed(&self, host: &str) -> bool {
        self.allowed_redirect_hosts.iter().any(|h| h.matches(host))
    }
}

impl GatewayConfig {
    /// Broken rules, each naming its key; rule problems name the rule's id.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.key_problems();
        if let Err(rules) = self.rule_set() {
            p.extend(rules);
        }
        p
    }

    /// Checks the section and converts it (the rules compiled once).
    pub fn settings(&self) -> Result<GatewaySettings, Vec<String>> {
        let mut p = self.key_problems();
        let rules = self.rule_set().map_err(|rules| p.extend(rules)).ok();
        match rules {
            Some(rules) if p.is_empty() => Ok(GatewaySettings {
                allowed_redirect_hosts: self
                    .allowed_redirect_hosts
                    .iter()
                    .filter_map(|h| HostPattern::parse(h).ok())
                    .collect(),
                login_url: self.login_url.clone(),
                upstream: self.upstream.as_deref().and_then(|u| ::url::Url::parse(u).ok()),
                listen: self.listen,
                proxy: self.proxy.clone(),
                rules_file: self.rules_file.clone(),
                rules,
            }),
            _ => Err(p),
        }
    }

    /// The rules in effect, compiled: read from `rules_file` when set, else the inline ones.
    /// What a reload calls again. Each problem starts with its key and names the rule's id.
    pub fn rule_set(&self) -> Result<RuleSet, Vec<String>> {
        let (rules, prefix) = match &self.rules_file {
            Some(path) if !self.rules.is_empty() => {
                return Err(vec![format!(
                    "gateway.rules_file: set either rules_file or [[gateway.rules]], not both (got {} and {} inline rules)",
                    path.display(),
                    self.rules.len()
                )]);
            }
            Some(path) => (
                GatewayRulesFile::read(path).map_err(|e| vec![e])?.rules,
                format!("gateway.rules_file: {}: ", path.display()),
            ),
            None => (self.rules.clone(), "gateway.".to_string()),
        };
        let mut p = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.policy.is_none() {
                let at = if r.id.is_empty() { format!("rules[{i}]") } else { format!("rules[{:?}]", r.id) };
                p.push(format!("{prefix}{at}.policy: required: public, authenticated or deny"));
            }
        }
        let specs: Vec<RuleSpec> = rules.iter().map(GatewayRuleConfig::spec).collect();
        match RuleSet::compile(&specs, self.default_policy) {
            Ok(set) if p.is_empty() => Ok(set),
            Ok(_) => Err(p),
            Err(problems) => {
                p.extend(problems.iter().map(|problem| format!("{prefix}{problem}")));
                Err(p)
            }
        }
    }

    /// The section's own keys (the rules aside).
    fn key_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for h in &self.allowed_redirect_hosts {
            if let Err(e) = HostPattern::parse(h) {
                p.push(format!("gateway.allowed_redirect_hosts: {e}"));
            }
        }
        if let Err(e) = check_login_url(&self.login_url) {
            p.push(format!("gateway.login_url: {e}; got {:?}", self.login_url));
        }
        if let Some(u) = &self.upstream
            && let Err(e) = check_upstream(u)
        {
            p.push(format!("gateway.upstream: {e}; got {u:?}"));
        }
        match (&self.upstream, self.listen) {
            (Some(_), None) => p.push(
                "gateway.listen: required with gateway.upstream: the address the built-in proxy serves on (0.0.0.0:8080)"
                    .into(),
            ),
            (None, Some(_)) => p.push("gateway.upstream: required with gateway.listen: where allowed requests go".into()),
            (Some(_), Some(_)) if self.login_url.starts_with('/') => p.push(format!(
                "gateway.login_url: with the built-in proxy, an absolute URL of Rampart's own sign-in page \
                 (https://auth.example.com/ui/login): a path would be read on the proxied app; got {:?}",
                self.login_url
            )),
            _ => {}
        }
        p.extend(self.proxy.problems());
        p
    }
}

/// A path on Rampart (`/ui/login`, not `//host`) or an absolute http(s) URL with a host.
fn check_login_url(s: &str) -> Result<(), &'static str> {
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("no spaces or control characters");
    }
    if s.starts_with('/') {
        return if s.starts_with("//") || s.starts_with("/\\") {
            Err("a path starts with a single '/' ('//' names another host)")
        } else {
            Ok(())
        };
    }
    match ::url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.fragment().is_none() => Ok(()),
        _ => Err("a path on Rampart (/ui/login) or an absolute http(s):// URL without a fragment"),
    }
}

/// `http(s)://host[:port][/path]`: no credentials, query or fragment.
fn check_upstream(s: &str) -> Result<(), &'static str> {
    let u = ::url::Url::parse(s).map_err(|_| "not a URL (http://127.0.0.1:8000)")?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    if u.host().is_none() {
        return Err("the URL needs a host");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("no credentials in the URL");
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("no query or fragment");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use rampart_domain::gateway::{DEFAULT_RULE_ID, Need, RequestFacts};

    fn load(jail: &Jail, toml: &str) -> crate::Settings {
        jail.create_file("rampart.toml", toml).unwrap();
        crate::Settings::load(Some(Path::new("rampart.toml"))).unwrap().1
    }

    fn rule_for(s: &crate::Settings, method: &str, host: &str, path: &str) -> String {
        s.gateway.rules.matching(&RequestFacts { method, host, path }).rule_id().to_string()
    }

    #[test]
    fn the_default_gateway_denies_and_has_no_rules() {
        let s = Config::default().settings().unwrap().gateway;
        assert_eq!(s.rules.default_policy(), Policy::Deny);
        assert!(s.rules.rules().is_empty());
        assert_eq!(s.login_url, "/ui/login");
        assert!(s.upstream.is_none() && s.rules_file.is_none());
        assert!(!s.redirect_allowed("app.example.com"));
    }

    #[test]
    fn the_built_in_proxy_needs_an_upstream_a_listener_and_an_absolute_sign_in_page() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[gateway]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"127.0.0.1:8080\"\n");
            assert!(msg.contains("gateway.login_url: with the built-in proxy, an absolute URL"), "{msg}");
            let msg = load_err(jail, "[gateway]\nlisten = \"127.0.0.1:8080\"\n");
            assert!(msg.contains("gateway.upstream: required with gateway.listen"), "{msg}");
            let msg = load_err(
                jail,
                "[gateway]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"127.0.0.1:8080\"\n\
                 login_url = \"https://auth.example.com/ui/login\"\n[gateway.proxy]\nmax_concurrent = 0\n\
                 breaker_failure_ratio = 1.5\nthreads = 0\n",
            );
            assert!(msg.contains("gateway.proxy.max_concurrent: at least 1"), "{msg}");
            assert!(msg.contains("gateway.proxy.breaker_failure_ratio"), "{msg}");
            assert!(msg.contains("gateway.proxy.threads: between 1 and 256; got 0"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn inline_rules_load_and_match() {
        Jail::expect_with(|jail| {
            let s = load(
                jail,
                r#"
[gateway]
default_policy = "authenticated"
allowed_redirect_hosts = ["app.example.com", "*.apps.example.com"]
login_url = "https://auth.example.com/ui/login"
upstream = "http://127.0.0.1:8000"
listen = "127.0.0.1:8080"

[[gateway.rules]]
id = "health"
paths = ["/healthz"]
policy = "public"

[[gateway.rules]]
id = "orders-write"
hosts = ["api.example.com"]
paths = ["/v1/orders/**"]
methods = ["POST", "PUT", "DELETE"]
policy = "authenticated"
require = { any = ["orders:write", "role:admin"] }
mfa = true
max_auth_age_secs = 300
authn = ["session", "bearer"]
on_unauthenticated = "401"
audience = "orders"
rate_limit = { requests = 10, per_seconds = 60 }
allow_preflight = true
forward_headers = true
"#,
            );
            let g = &s.gateway;
            assert_eq!(g.rules.default_policy(), Policy::Authenticated);
            assert!(g.redirect_allowed("app.example.com") && g.redirect_allowed("x.apps.example.com"));
            assert!(!g.redirect_allowed("evil.example.com"));
            assert_eq!(g.upstream.as_ref().map(|u| u.as_str()), Some("http://127.0.0.1:8000/"));
            assert_eq!(g.login_url, "https://auth.example.com/ui/login");
            let r = &g.rules.rules()[1];
            assert_eq!(r.id(), "orders-write");
            let need = |s: &str| Need::parse(s).unwrap();
            assert_eq!(r.require, Some(Require::Any(vec![need("orders:write"), need("role:admin")])));
            assert!(r.mfa && r.allow_preflight && r.forward_headers);
            assert_eq!(r.max_auth_age, Some(time::Duration::minutes(5)));
            assert_eq!(r.authn, [AuthnKind::Session, AuthnKind::Bearer]);
            assert_eq!(r.on_unauthenticated, OnUnauthenticated::Status401);
            assert_eq!(r.audience.as_deref(), Some("orders"));
            assert_eq!(r.rate_limit, Quota::new(10, std::time::Duration::from_secs(60)));
            assert_eq!(g.rules.rules()[0].authn, AuthnKind::ALL, "authn defaults to every kind");
            assert_eq!(rule_for(&s, "GET", "x", "/healthz"), "health");
            assert_eq!(rule_for(&s, "POST", "API.example.com:443", "/v1/orders/7"), "orders-write");
            assert_eq!(rule_for(&s, "GET", "api.example.com", "/v1/orders/7"), DEFAULT_RULE_ID);
            Ok(())
        });
    }

    #[test]
    fn each_refusal_names_the_rule_id() {
        Jail::expect_with(|jail| {
            let msg = load_err(
                jail,
                r#"
[gateway]
default_policy = "public"
allowed_redirect_hosts = ["*"]
login_url = "//evil.example.com/login"
upstream = "ftp://x"

[[gateway.rules]]
id = "bad-regex"
paths = ["re:/a("]
policy = "public"

[[gateway.rules]]
id = "bad-glob"
paths = ["/a/**b"]
policy = "public"

[[gateway.rules]]
id = "bad-method"
methods = ["FETCH"]
policy = "deny"

[[gateway.rules]]
id = "public-require"
policy = "public"
require = { all = ["orders:read"] }

[[gateway.rules]]
id = "empty-require"
policy = "authenticated"
require = { any = [] }

[[gateway.rules]]
id = "zero-rate"
policy = "authenticated"
rate_limit = { requests = 0, per_seconds = 0 }

[[gateway.rules]]
id = "zero-age"
policy = "authenticated"
max_auth_age_secs = 0

[[gateway.rules]]
id = "no-policy"
paths = ["/x"]

[[gateway.rules]]
id = "bad-glob"
policy = "deny"
"#,
            );
            for line in [
                "gateway.allowed_redirect_hosts: \"*\" is not a host",
                "gateway.login_url: a path starts with a single '/'",
                "gateway.upstream: the scheme must be http or https",
                "gateway.listen: required with gateway.upstream",
                "gateway.rules[\"bad-regex\"].paths: not a valid regex",
                "gateway.rules[\"bad-glob\"].paths: \"/a/**b\": '**' must be a whole segment",
                "gateway.rules[\"bad-method\"].methods: unknown method \"FETCH\"",
                "gateway.rules[\"public-require\"].require: a public rule lets everyone in",
                "gateway.rules[\"empty-require\"].require: an empty list requires nothing",
                "gateway.rules[\"zero-rate\"].rate_limit.requests: must be at least 1",
                "gateway.rules[\"zero-rate\"].rate_limit.per_seconds: must be at least 1",
                "gateway.rules[\"zero-age\"].max_auth_age_secs: must be at least 1",
                "gateway.rules[\"no-policy\"].policy: required",
                "gateway.rules[\"bad-glob\"].id: is used by an earlier rule",
            ] {
                assert!(msg.lines().any(|l| l.starts_with(line)), "{line}\n{msg}");
            }
            assert_eq!(msg.lines().count(), 1 + 14, "{msg}");
            // Unknown keys inside a rule, and bad values, are named by serde.
            let msg = load_err(jail, "[[gateway.rules]]\nid = \"x\"\npolicy = \"public\"\npathz = [\"/a\"]\n");
            assert!(msg.contains("pathz"), "{msg}");
            let msg = load_err(jail, "[[gateway.rules]]\nid = \"x\"\npolicy = \"open\"\n");
            assert!(msg.contains("open") && msg.contains("gateway.rules"), "{msg}");
            let msg =
                load_err(jail, "[[gateway.rules]]\nid = \"x\"\npolicy = \"authenticated\"\nauthn = [\"cookie\"]\n");
            assert!(msg.contains("cookie"), "{msg}");
            let msg = load_err(
                jail,
                "[[gateway.rules]]\nid = \"x\"\npolicy = \"authenticated\"\nrequire = { some = [\"a:b\"] }\n",
            );
            assert!(msg.contains("some"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn a_rules_file_holds_the_rules() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "rules.toml",
                "[[rules]]\nid = \"api\"\npaths = [\"/v1/**\"]\npolicy = \"authenticated\"\n\n[[rules]]\nid = \"health\"\npaths = [\"/v1/health\"]\npolicy = \"public\"\n",
            )?;
            let s = load(jail, "[gateway]\nrules_file = \"rules.toml\"\n");
            assert_eq!(s.gateway.rules_file.as_deref(), Some(Path::new("rules.toml")));
            assert_eq!(rule_for(&s, "GET", "h", "/v1/x"), "api");
            let shadowed: Vec<String> = s.gateway.rules.shadowed().iter().map(ToString::to_string).collect();
            assert_eq!(shadowed.len(), 1);
            assert!(shadowed[0].starts_with("rules[\"health\"] never matches: rules[\"api\"]"), "{shadowed:?}");

            jail.create_file("bad.toml", "[[rules]]\nid = \"x\"\npolicy = \"public\"\nmfa = true\n")?;
            let msg = load_err(jail, "[gateway]\nrules_file = \"bad.toml\"\n");
            assert!(msg.contains("gateway.rules_file: bad.toml: rules[\"x\"].mfa: a public rule"), "{msg}");
            jail.create_file("typo.toml", "[[rule]]\nid = \"x\"\n")?;
            let msg = load_err(jail, "[gateway]\nrules_file = \"typo.toml\"\n");
            assert!(msg.contains("gateway.rules_file: typo.toml:") && msg.contains("rule"), "{msg}");
            let msg = load_err(jail, "[gateway]\nrules_file = \"missing.toml\"\n");
            assert!(msg.contains("gateway.rules_file: cannot read missing.toml"), "{msg}");
            let msg = load_err(
                jail,
                "[gateway]\nrules_file = \"rules.toml\"\n[[gateway.rules]]\nid = \"x\"\npolicy = \"public\"\n",
            );
            assert!(msg.contains("gateway.rules_file: set either rules_file or [[gateway.rules]], not both"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn login_and_upstream_urls() {
        for ok in ["/ui/login", "/login?x=1", "https://auth.example.com/ui/login", "http://localhost:8080/ui/login"] {
            assert_eq!(check_login_url(ok), Ok(()), "{ok}");
        }
        for bad in ["//evil.example.com", "/\\evil", "ui/login", "javascript:alert(1)", "https://a/x#f", "/a b", ""] {
            assert!(check_login_url(bad).is_err(), "{bad}");
        }
        for ok in ["http://127.0.0.1:8000", "https://app.internal/base"] {
            assert_eq!(check_upstream(ok), Ok(()), "{ok}");
        }
        for bad in ["127.0.0.1:8000", "ftp://x", "http://u:p@x", "http://x/?a=1", "http://x/#f", "unix:/tmp/s"] {
            assert!(check_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../../../README.md");
        let section = readme.split("## Gateway rules").nth(1).expect("a Gateway rules section");
        let block = section.split("```toml").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
        Jail::expect_with(|jail| {
            let s = load(jail, block);
            assert!(!s.gateway.rules.rules().is_empty());
            assert!(s.gateway.rules.shadowed().is_empty(), "{:?}", s.gateway.rules.shadowed());
            Ok(())
        });
    }

    #[test]
    fn the_rendered_configuration_loads_again() {
        let mut c = Config::default();
        c.gateway.rules = vec![GatewayRuleConfig {
            require: Some(Require::All(vec!["a:b".into()])),
            rate_limit: Some(GatewayRateLimit { requests: 5, per_seconds: 60 }),
            on_unauthenticated: OnUnauthenticated::Status401,
            ..toml::from_str("id = \"x\"\npolicy = \"authenticated\"\npaths = [\"/a/**\"]\n").unwrap()
        }];
        let text = c.to_redacted_toml();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.gateway.rules, c.gateway.rules, "{text}");
    }
}
