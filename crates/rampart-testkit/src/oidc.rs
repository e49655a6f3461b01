//! A real OpenID provider for the federation tests: panva's `oidc-provider` (OpenID
//! Certified), run by Node from `oidc-provider/` beside this crate (`npm ci` there: `.ci/run`
//! does it), on a free loopback port, killed on drop. One confidential client
//! ([`CLIENT_ID`], HTTP Basic, PKCE S256 required); interactions sign in the account the test
//! set ([`TestIdp::account`]) without pages; [`TestIdp::tamper`] rewrites the next `id_token`s
//! (a wrong nonce, expired, another key, `alg: none`…) to show what Rampart refuses.
//!
//! ```ignore
//! let idp = TestIdp::start().await;
//! let app = TestApp::spawn_with(db, |c| c.federation.providers.push(idp.provider("test"))).await;
//! idp.setup(&[app.url("/v1/auth/oauth/test/callback")]).await;
//! let (to_provider, flow_cookie) = start(&app).await;            // GET …/start, 302
//! let back = idp.authorize(&to_provider).await;                  // the callback URL with code
//! ```

use crate::proxies::{Running, START};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

pub const CLIENT_ID: &str = "rampart-test";
pub const CLIENT_SECRET: &str = "rampart-test-secret-0123456789abcdef";

/// The provider, listening on `port`.
#[derive(Debug)]
pub struct TestIdp {
    pub port: u16,
    client: reqwest::Client,
    _process: Running,
}

impl TestIdp {
    pub async fn start() -> TestIdp {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("idp.mjs"))
            .current_dir(&dir)
            // Kept open: the script stops when its standard input closes.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = Running::spawn("the OpenID provider (node idp.mjs)", &mut cmd, None);
        let stdout = process.child.stdout.take().expect("piped stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        let line = tokio::time::timeout(START, line).await.expect("the provider starts in time").expect("read");
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the OpenID provider did not start: {line:?}"));
        process.wait_for(port, String::new).await;
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestIdp { port, client, _process: process }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `[[federation.providers]]` entry for this provider named `name` (generic OpenID
    /// Connect by issuer), with its loopback network allowed.
    pub fn provider(&self, name: &str) -> rampart_config::ProviderConfig {
        rampart_config::ProviderConfig {
            name: name.into(),
            kind: rampart_config::ProviderKind::Oidc,
            display_name: Some("Test IdP".into()),
            client_id: CLIENT_ID.into(),
            client_secret: Some(rampart_config::SecretString::new(CLIENT_SECRET)),
            issuer: Some(self.issuer()),
            ..Default::default()
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let res = self.client.post(format!("{}{path}", self.issuer())).json(&body).send().await.expect("control");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// Registers the client's redirect URIs; the provider serves OpenID from now on.
    pub async fn setup(&self, redirect_uris: &[String]) {
        self.control("/_test/setup", json!({ "redirect_uris": redirect_uris })).await;
    }

    /// Who signs in next: `{sub, email, email_verified, name}`.
    pub async fn account(&self, claims: Value) {
        self.control("/_test/account", claims).await;
    }

    /// The next token answers' `id_token` rewritten (`nonce`, `expired`, `other_key`,
    /// `alg_none`, `aud`, `iss`), or the real one (`None`).
    pub async fn tamper(&self, mode: Option<&str>) {
        self.control("/_test/tamper", json!({ "mode": mode })).await;
    }

    /// Follows the provider from the authorization URL Rampart redirected to, as a browser
    /// would (its cookies kept), until a redirect leaves the provider: that URL (Rampart's
    /// callback with `code` and `state`, or `error`).
    pub async fn authorize(&self, url: &str) -> String {
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        let mut url = url.to_string();
        for _ in 0..12 {
            assert!(url.starts_with(&self.issuer()), "left the provider for {url}");
            let cookies = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let mut req = self.client.get(&url);
            if !cookies.is_empty() {
                req = req.header("cookie", cookies);
            }
            let res = req.send().await.expect("provider answers");
            for c in res.headers().get_all("set-cookie") {
                let c = c.to_str().unwrap_or_default();
                let pair = c.split(';').next().unwrap_or_default();
                if let Some((k, v)) = pair.split_once('=') {
                    let expired = c.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
                    if v.is_empty() || expired {
                        jar.remove(k.trim());
                    } else {
                        jar.insert(k.trim().to_string(), v.to_string());
                    }
                }
            }
            let status = res.status();
            let Some(location) = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string) else {
                let page = res.text().await.unwrap_or_default();
                if let Some(form) = posted_form(&page) {
                    // `response_mode=form_post`: the page a browser submits to the callback.
                    return FORM_PREFIX.to_string() + &serde_json::to_string(&form).unwrap_or_default();
                }
                panic!("the provider answered {status} without a redirect: {page}");
            };
            url = if location.starts_with('/') { format!("{}{location}", self.issuer()) } else { location };
            if !url.starts_with(&self.issuer()) {
                return url;
            }
        }
        panic!("the provider kept redirecting");
    }

    /// [`TestIdp::authorize`] for `response_mode=form_post`: the form the provider's last page
    /// posts, as (its action, its fields).
    pub async fn authorize_form(&self, url: &str) -> (String, Vec<(String, String)>) {
        let answer = self.authorize(url).await;
        let form = answer.strip_prefix(FORM_PREFIX).unwrap_or_else(|| panic!("a redirect, not a form post: {answer}"));
        serde_json::from_str(form).expect("the form")
    }
}

const FORM_PREFIX: &str = "form:";

/// The action and hidden fields of the auto-submitting form oidc-provider answers with in
/// `form_post` mode (its own fixed markup: `<form method="post" action="…">` and
/// `<input type="hidden" name="…" value="…"/>`).
fn posted_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&").replace("&#x2F;", "/").replace("&#x3D;", "="))
    }
    let form = &page[page.find("<form")?..];
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>')?];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((name, value));
        }
    }
    Some((action, fields))
}
