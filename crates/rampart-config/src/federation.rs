//! The `[federation]` section: signing in with an identity another service vouches for: the
//! Telegram Login Widget (`[federation.telegram]`) and OpenID Connect / OAuth2 providers
//! (`[[federation.providers]]`, generic or a preset: Google, Microsoft, Apple, GitHub, GitLab,
//! Discord). A preset fills in what that provider always has (issuer or endpoints, scopes,
//! claim names, how the client authenticates); the file can still override any of it.

use crate::mail::SecretString;
use crate::settings::{checked, millis, secs, span};
use rampart_domain::federation::Provider;
use rampart_domain::federation::oidc::{ClaimMap, JwsAlgorithm, safe_algorithm};
use serde::{Deserialize, Serialize};

/// The shortest and longest `federation.telegram.max_age_secs`: a minute, a week.
const MIN_MAX_AGE_SECS: u64 = 60;
const MAX_MAX_AGE_SECS: u64 = 7 * 86_400;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// An unknown external identity creates an account when on; off, it is refused (403
    /// `federation_registration_closed`) and only identities linked by signed-in users sign in.
    pub auto_register: bool,
    /// A provider's *verified* e-mail address signs in (and links) the existing account with
    /// that address. Off (the default): such an account must sign in and link the provider
    /// itself (`mode=link`) first; the sign-in is refused with `federation_link_required`.
    pub trust_email_for_linking: bool,
    /// Networks a provider may be reached in although they are not public (loopback, private
    /// and link-local addresses are refused otherwise), e.g. `["127.0.0.1/32"]` for a test
    /// provider on this machine. Checked on the address actually connected to.
    pub allow_networks: Vec<String>,
    /// Time for one request to a provider (discovery, keys, token, user info).
    pub timeout_ms: u64,
    /// Clock skew allowed on an `id_token`'s `exp` and `iat`.
    pub leeway_secs: u64,
    /// How long a started sign-in may take at the provider (the flow cookie's life).
    pub flow_ttl_secs: u64,
    /// This server's public base URL (`https://auth.example.com`): the providers' redirect
    /// URI is `<public_url>/v1/auth/oauth/<name>/callback`, registered with each provider.
    /// Unset: the `Host` the browser used (`https`, or `http` for a loopback host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    pub telegram: TelegramConfig,
    /// OpenID Connect and OAuth2 providers, each at `/v1/auth/oauth/<name>/start`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderConfig>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            auto_register: false,
            trust_email_for_linking: false,
            allow_networks: Vec::new(),
            timeout_ms: 10_000,
            leeway_secs: 60,
            flow_ttl_secs: 600,
            public_url: None,
            telegram: TelegramConfig::default(),
            providers: Vec::new(),
        }
    }
}

/// What a provider is: a generic protocol or a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenID Connect by issuer URL (discovery, JWKS, `id_token`).
    #[default]
    Oidc,
    /// OAuth2 with a user-info endpoint and a claim mapping.
    Oauth2,
    Google,
    Microsoft,
    Apple,
    Github,
    Gitlab,
    Discord,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with the client id and secret (the OpenID default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
}

/// `[federation.providers.claims]`: where the user-info answer keeps each thing (dotted
/// paths reach into objects).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// One `[[federation.providers]]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// In URLs and stored identities: `a-z`, `0-9`, `-`, `_`, starting with a letter.
    pub name: String,
    pub kind: ProviderKind,
    /// On the sign-in button ("Sign in with …"); the preset's name by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub client_id: String,
    /// The client secret, or the same sealed with the master key (`rampart seal`:
    /// `sealed:v1.…`). Never logged. Apple has none: see `team_id`, `key_id`, `private_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// OpenID Connect: the issuer (its discovery document is `<issuer>/.well-known/openid-configuration`).
    /// GitLab: your instance (`https://gitlab.com` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Microsoft: the tenant (`common`, `organizations`, `consumers` or a tenant id; `common` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// OAuth2 (or to override a preset): the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    /// OpenID Connect: a key set to use instead of the discovery document's `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimsConfig>,
    /// The `id_token` algorithms allowed (asymmetric only; `["RS256"]` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<TokenAuth>,
    /// How the provider returns to the callback: `query` (a redirect) or `form_post` (a form the
    /// browser posts, `response_mode=form_post`). Apple: always `form_post`; others: `query`
    /// by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    /// Apple: the team id, the key id and the `.p8` private key (PEM, may be sealed) the
    /// client secret JWT is signed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// The bot's token from @BotFather (`123456:ABC…`): the widget's data is signed with its
    /// SHA-256. A secret: never logged, shown as `[redacted]`. Unset: Telegram sign-in is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<SecretString>,
    /// How old, in seconds, the widget's `auth_date` may be (60 to 604800).
    pub max_age_secs: u64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self { bot_token: None, max_age_secs: 86_400 }
    }
}

/// `[federation]`, ready to use.
#[derive(Debug, Clone)]
pub struct FederationSettings {
    pub auto_register: bool,
    pub trust_email_for_linking: bool,
    pub allow_networks: Vec<ipnet::IpNet>,
    pub timeout: std::time::Duration,
    pub leeway: time::Duration,
    pub flow_ttl: time::Duration,
    /// Without a trailing `/`.
    pub public_url: Option<String>,
    /// `None`: no bot token, Telegram sign-in is off.
    pub telegram: Option<TelegramSettings>,
    /// In configuration order.
    pub providers: Vec<ProviderSettings>,
}

impl FederationSettings {
    pub fn provider(&self, name: &str) -> Option<&ProviderSettings> {
        self.providers.iter().find(|p| p.name.as_str() == name)
    }
}

/// Where a provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// OpenID Connect: `<discovery>/.well-known/openid-configuration`, whose `issuer` must be
    /// `issuer` (a `{tenantid}` in it stands for the token's `tid`); `jwks_uri` overrides the
    /// document's.
    Discovery { discovery: String, issuer: String, jwks_uri: Option<String> },
    /// OAuth2: fixed endpoints, the profile from the user-info answer.
    OAuth2 { authorization_url: String, token_url: String, userinfo_url: String },
}

/// Apple's client-secret JWT material.
#[derive(Debug, Clone)]
pub struct AppleSecret {
    pub team_id: String,
    pub key_id: String,
    /// The PEM, possibly sealed (`sealed:v1.…`).
    pub private_key: SecretString,
}

/// One provider, presets resolved.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub name: Provider,
    pub kind: ProviderKind,
    pub display_name: String,
    pub client_id: String,
    /// As configured: plain or sealed (`sealed:v1.…`), opened with the master key when used.
    pub client_secret: Option<SecretString>,
    pub apple: Option<AppleSecret>,
    pub endpoints: Endpoints,
    pub scopes: Vec<String>,
    pub algorithms: Vec<JwsAlgorithm>,
    pub token_auth: TokenAuth,
    /// The claim names of the user-info answer (OAuth2) or of the `id_token`.
    pub claims: ClaimMap,
    /// The callback comes as a form post (`response_mode=form_post`: Apple).
    pub form_post: bool,
    /// The verified primary address comes from GitHub's `/user/emails`.
    pub github_emails: Option<String>,
}

/// The prefix of a value sealed with the master key (`rampart seal`).
pub const SEALED_PREFIX: &str = "sealed:";

/// Whether a URL may be a provider's: https, or http to a loopback host (a provider on this
/// machine, for tests and development).
fn provider_url_ok(u: &str) -> bool {
    match url::Url::parse(u) {
        Ok(url) if url.scheme() == "https" => url.host_str().is_some(),
        Ok(url) if url.scheme() == "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

impl ProviderConfig {
    fn preset_name(&self) -> &'static str {
        match self.kind {
            ProviderKind::Oidc | ProviderKind::Oauth2 => "",
            ProviderKind::Google => "Google",
            ProviderKind::Microsoft => "Microsoft",
            ProviderKind::Apple => "Apple",
            ProviderKind::Github => "GitHub",
            ProviderKind::Gitlab => "GitLab",
            ProviderKind::Discord => "Discord",
        }
    }

    /// The resolved provider, or the problems, each naming `federation.providers[i].<key>`.
    fn resolve(&self, at: &str) -> Result<ProviderSettings, Vec<String>> {
        let mut p = Vec::new();
        let name = Provider::parse(&self.name).filter(|n| !n.is_telegram());
        if name.is_none() {
            p.push(format!(
                "{at}.name: must be 1 to 32 of a-z, 0-9, - and _, starting with a letter, and not \"telegram\"; got {:?}",
                self.name
            ));
        }
        if self.client_id.trim().is_empty() {
            p.push(format!("{at}.client_id: required"));
        }
        let url = |key: &str, v: &Option<String>, p: &mut Vec<String>| {
            if let Some(u) = v
                && !provider_url_ok(u)
            {
                p.push(format!("{at}.{key}: must be an https URL (http only to a loopback host); got {u:?}"));
            }
        };
        url("issuer", &self.issuer, &mut p);
        url("authorization_url", &self.authorization_url, &mut p);
        url("token_url", &self.token_url, &mut p);
        url("userinfo_url", &self.userinfo_url, &mut p);
        url("jwks_uri", &self.jwks_uri, &mut p);
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let oidc = |issuer: String| Endpoints::Discovery {
            discovery: issuer.trim_end_matches('/').to_string(),
            issuer,
            jwks_uri: self.jwks_uri.clone(),
        };
        let need = |key: &str, v: &Option<String>, p: &mut Vec<String>| {
            if v.is_none() {
                p.push(format!("{at}.{key}: required for kind = {:?}", self.kind));
            }
            v.clone().unwrap_or_default()
        };
        let oauth2 = |auth: &str, token: &str, info: &str| Endpoints::OAuth2 {
            authorization_url: self.authorization_url.clone().unwrap_or_else(|| auth.into()),
            token_url: self.token_url.clone().unwrap_or_else(|| token.into()),
            userinfo_url: self.userinfo_url.clone().unwrap_or_else(|| info.into()),
        };
        let oidc_scopes = strings(&["openid", "email", "profile"]);
        let basic = TokenAuth::ClientSecretBasic;
        let post = TokenAuth::ClientSecretPost;
        let mut claims = ClaimMap::default();
        let mut form_post = false;
        let mut github_emails = None;
        match self.response_mode.as_deref() {
            None | Some("query") => {}
            Some("form_post") => form_post = true,
            Some(other) => p.push(format!("{at}.response_mode: {other:?} is not query or form_post")),
        }
        let (endpoints, scopes, token_auth) = match self.kind {
            ProviderKind::Oidc => (oidc(need("issuer", &self.issuer, &mut p)), oidc_scopes, basic),
            ProviderKind::Oauth2 => {
                let e = Endpoints::OAuth2 {
                    authorization_url: need("authorization_url", &self.authorization_url, &mut p),
                    token_url: need("token_url", &self.token_url, &mut p),
                    userinfo_url: need("userinfo_url", &self.userinfo_url, &mut p),
                };
                (e, Vec::new(), basic)
            }
            ProviderKind::Google => (oidc("https://accounts.google.com".into()), oidc_scopes, basic),
            ProviderKind::Gitlab => {
                (oidc(self.issuer.clone().unwrap_or_else(|| "https://gitlab.com".into())), oidc_scopes, basic)
            }
            ProviderKind::Microsoft => {
                let tenant = self.tenant.clone().unwrap_or_else(|| "common".into());
                if tenant.is_empty() || !tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                    p.push(format!("{at}.tenant: a tenant id, a domain, or common / organizations / consumers"));
                }
                let base = format!("https://login.microsoftonline.com/{tenant}/v2.0");
                let multi = matches!(tenant.as_str(), "common" | "organizations" | "consumers");
                let issuer =
                    if multi { "https://login.microsoftonline.com/{tenantid}/v2.0".to_string() } else { base.clone() };
                (Endpoints::Discovery { discovery: base, issuer, jwks_uri: self.jwks_uri.clone() }, oidc_scopes, basic)
            }
            ProviderKind::Apple => {
                if self.response_mode.as_deref() == Some("query") {
                    p.push(format!("{at}.response_mode: Apple answers only with form_post"));
                }
                form_post = true;
                (oidc("https://appleid.apple.com".into()), strings(&["openid", "name", "email"]), post)
            }
            ProviderKind::Github => {
                claims = ClaimMap {
                    subject: "id".into(),
                    email: None,
                    email_verified: None,
                    name: Some("name".into()),
                    username: Some("login".into()),
                };
                github_emails = Some("https://api.github.com/user/emails".to_string());
                let e = oauth2(
                    "https://github.com/login/oauth/authorize",
                    "https://github.com/login/oauth/access_token",
                    "https://api.github.com/user",
                );
                (e, strings(&["read:user", "user:email"]), post)
            }
            ProviderKind::Discord => {
                claims = ClaimMap {
                    subject: "id".into(),
                    email: Some("email".into()),
                    email_verified: Some("verified".into()),
                    name: Some("global_name".into()),
                    username: Some("username".into()),
                };
                let e = oauth2(
                    "https://discord.com/oauth2/authorize",
                    "https://discord.com/api/oauth2/token",
                    "https://discord.com/api/users/@me",
                );
                (e, strings(&["identify", "email"]), post)
            }
        };
        if let Some(c) = &self.claims {
            let or = |v: &Option<String>, d: Option<String>| v.clone().or(d);
            claims = ClaimMap {
                subject: c.subject.clone().unwrap_or(claims.subject),
                email: or(&c.email, claims.email),
                email_verified: or(&c.email_verified, claims.email_verified),
                name: or(&c.name, claims.name),
                username: or(&c.username, claims.username),
            };
        }
        let mut algorithms = Vec::new();
        for a in self.algorithms.clone().unwrap_or_else(|| vec!["RS256".into()]) {
            match safe_algorithm(&a) {
                Some(alg) => algorithms.push(alg),
                None => p.push(format!(
                    "{at}.algorithms: {a:?} is not allowed (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA; never none or HS*)"
                )),
            }
        }
        if algorithms.is_empty() {
            p.push(format!("{at}.algorithms: at least one"));
        }
        let apple = if self.kind == ProviderKind::Apple {
            match (&self.team_id, &self.key_id, &self.private_key) {
                (Some(team_id), Some(key_id), Some(private_key)) => Some(AppleSecret {
                    team_id: team_id.clone(),
                    key_id: key_id.clone(),
                    private_key: private_key.clone(),
                }),
                _ => {
                    p.push(format!("{at}: kind = \"apple\" needs team_id, key_id and private_key"));
                    None
                }
            }
        } else {
            if self.client_secret.is_none() {
                p.push(format!("{at}.client_secret: required"));
            }
            None
        };
        let display_name = self.display_name.clone().unwrap_or_else(|| {
            let preset = self.preset_name();
            if preset.is_empty() { self.name.clone() } else { preset.to_string() }
        });
        match name {
            Some(name) if p.is_empty() => Ok(ProviderSettings {
                name,
                kind: self.kind,
                display_name,
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.clone(),
                apple,
                endpoints,
                scopes: self.scopes.clone().unwrap_or(scopes),
                algorithms,
                token_auth: self.token_auth.unwrap_or(token_auth),
                claims,
                form_post,
                github_emails,
            }),
            _ => Err(p),
        }
    }
}

/// `[federation.telegram]` with a bot token set.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub bot_token: SecretString,
    pub max_age: time::Duration,
}

impl FederationConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for n in &self.allow_networks {
            if n.parse::<ipnet::IpNet>().is_err() && n.parse::<std::net::IpAddr>().is_err() {
                p.push(format!("federation.allow_networks: {n:?} is not a network (127.0.0.1/32) or an address"));
            }
        }
        if !(1_000..=120_000).contains(&self.timeout_ms) {
            p.push(format!("federation.timeout_ms: must be between 1000 and 120000; got {}", self.timeout_ms));
        }
        if self.leeway_secs > 300 {
            p.push(format!("federation.leeway_secs: at most 300; got {}", self.leeway_secs));
        }
        if !(60..=3_600).contains(&self.flow_ttl_secs) {
            p.push(format!("federation.flow_ttl_secs: must be between 60 and 3600; got {}", self.flow_ttl_secs));
        }
        if let Some(u) = &self.public_url
            && !provider_url_ok(u)
        {
            p.push(format!("federation.public_url: must be an https URL (http only to a loopback host); got {u:?}"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, provider) in self.providers.iter().enumerate() {
            if let Err(e) = provider.resolve(&format!("federation.providers[{i}]")) {
                p.extend(e);
            }
            if !seen.insert(provider.name.as_str()) {
                p.push(format!("federation.providers[{i}].name: {:?} is used twice", provider.name));
            }
        }
        let t = &self.telegram;
        if !(MIN_MAX_AGE_SECS..=MAX_MAX_AGE_SECS).contains(&t.max_age_secs) {
            p.push(format!(
                "federation.telegram.max_age_secs: must be between {MIN_MAX_AGE_SECS} and {MAX_MAX_AGE_SECS}; got {}",
                t.max_age_secs
            ));
        }
        if let Some(token) = &t.bot_token {
            // `<bot id>:<secret>`, as @BotFather hands it out; the value itself is never echoed.
            let ok = token
                .expose()
                .split_once(':')
                .is_some_and(|(id, rest)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && rest.len() >= 20);
            if !ok {
                p.push("federation.telegram.bot_token: must be the token @BotFather gave (<bot id>:<secret>)".into());
            }
        }
        p
    }

    /// Checks the section and converts it.
    pub fn settings(&self) -> Result<FederationSettings, Vec<String>> {
        checked(self.problems(), || FederationSettings {
            auto_register: self.auto_register,
            trust_email_for_linking: self.trust_email_for_linking,
            allow_networks: self
                .allow_networks
                .iter()
                .filter_map(|n| {
                    n.parse::<ipnet::IpNet>()
                        .ok()
                        .or_else(|| n.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
                })
                .collect(),
            timeout: millis(self.timeout_ms),
            leeway: span(secs(self.leeway_secs)),
            flow_ttl: span(secs(self.flow_ttl_secs)),
            public_url: self.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
            providers: self
                .providers
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.resolve(&format!("federation.providers[{i}]")).ok())
                .collect(),
            telegram: self
                .telegram
                .bot_token
                .clone()
                .map(|bot_token| TelegramSettings { bot_token, max_age: span(secs(self.telegram.max_age_secs)) }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use super::{Endpoints, TokenAuth};
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    const TOKEN: &str = "123456:AAH-s3cr3t-bot-token-value-xyz";

    #[test]
    fn telegram_is_off_without_a_token_and_on_with_one() {
        Jail::expect_with(|jail| {
            let s = Config::load(None).unwrap().settings().unwrap();
            assert!(!s.federation.auto_register);
            assert!(s.federation.telegram.is_none());

            jail.create_file(
                "rampart.toml",
                &format!("[federation]\nauto_register = true\n[federation.telegram]\nbot_token = \"{TOKEN}\"\n"),
            )?;
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert!(s.federation.auto_register);
            let t = s.federation.telegram.unwrap();
            assert_eq!(t.bot_token.expose(), TOKEN);
            assert_eq!(t.max_age, time::Duration::days(1));
            Ok(())
        });
    }

    #[test]
    fn the_bot_token_never_prints() {
        Jail::expect_with(|jail| {
            jail.set_env("RAMPART_FEDERATION__TELEGRAM__BOT_TOKEN", TOKEN);
            let c = Config::load(None).unwrap();
            for out in [format!("{c:?}"), c.to_redacted_toml(), format!("{:?}", c.settings().unwrap())] {
                assert!(!out.contains("s3cr3t"), "{out}");
            }
            assert!(c.to_redacted_toml().contains("bot_token = \"[redacted]\""));
            Ok(())
        });
    }

    #[test]
    fn bounds_and_token_shape_are_refused_by_name() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[federation.telegram]\nmax_age_secs = 59\n");
            assert!(e.contains("federation.telegram.max_age_secs: must be between 60 and 604800; got 59"), "{e}");
            let e = load_err(jail, "[federation.telegram]\nmax_age_secs = 604801\n");
            assert!(e.contains("federation.telegram.max_age_secs"), "{e}");
            let e = load_err(jail, "[federation.telegram]\nbot_token = \"not-a-token-s3cr3t\"\n");
            assert!(e.contains("federation.telegram.bot_token"), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
            let e = load_err(jail, "[federation]\nauto_registre = true\n");
            assert!(e.contains("auto_registre"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn providers_resolve_presets_and_refuse_unsafe_settings_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "rampart.toml",
                r#"
[federation]
trust_email_for_linking = true
allow_networks = ["127.0.0.1/32"]
[[federation.providers]]
name = "google"
kind = "google"
client_id = "g-id"
client_secret = "g-s3cr3t"
[[federation.providers]]
name = "ms"
kind = "microsoft"
client_id = "m-id"
client_secret = "sealed:v1.abc.s3cr3t"
[[federation.providers]]
name = "gh"
kind = "github"
client_id = "h-id"
client_secret = "h-s3cr3t"
[[federation.providers]]
name = "apple"
kind = "apple"
client_id = "com.example.web"
team_id = "TEAM"
key_id = "KEY"
private_key = "-----BEGIN PRIVATE KEY-----s3cr3t"
[[federation.providers]]
name = "corp"
issuer = "http://127.0.0.1:4444"
client_id = "c"
client_secret = "c-s3cr3t"
algorithms = ["ES256", "EdDSA"]
"#,
            )?;
            let c = Config::load(Some(Path::new("rampart.toml"))).unwrap();
            let s = c.settings().unwrap();
            let f = &s.federation;
            assert!(f.trust_email_for_linking);
            assert_eq!(f.allow_networks.len(), 1);
            let names: Vec<&str> = f.providers.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["google", "ms", "gh", "apple", "corp"]);
            let g = f.provider("google").unwrap();
            assert_eq!(g.display_name, "Google");
            assert!(
                matches!(&g.endpoints, Endpoints::Discovery { issuer, .. } if issuer == "https://accounts.google.com")
            );
            let ms = f.provider("ms").unwrap();
            assert!(matches!(&ms.endpoints, Endpoints::Discovery { discovery, issuer, .. }
                    if discovery == "https://login.microsoftonline.com/common/v2.0" && issuer.contains("{tenantid}")));
            let gh = f.provider("gh").unwrap();
            assert!(gh.github_emails.is_some() && gh.token_auth == TokenAuth::ClientSecretPost);
            assert!(
                matches!(&gh.endpoints, Endpoints::OAuth2 { userinfo_url, .. } if userinfo_url == "https://api.github.com/user")
            );
            assert_eq!(gh.claims.subject, "id");
            let apple = f.provider("apple").unwrap();
            assert!(apple.form_post && apple.apple.is_some());
            assert_eq!(f.provider("corp").unwrap().algorithms.len(), 2);
            for out in [format!("{c:?}"), c.to_redacted_toml(), format!("{s:?}")] {
                assert!(!out.contains("s3cr3t"), "{out}");
            }

            for (toml, want) in [
                (
                    "name = \"x\"\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret = \"s\"\nalgorithms = [\"none\"]",
                    "federation.providers[0].algorithms",
                ),
                (
                    "name = \"x\"\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret = \"s\"\nalgorithms = [\"HS256\"]",
                    "federation.providers[0].algorithms",
                ),
                (
                    "name = \"telegram\"\nissuer = \"https://i\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                    "federation.providers[0].name",
                ),
                ("name = \"x\"\nclient_id = \"c\"\nclient_secret = \"s\"", "federation.providers[0].issuer: required"),
                (
                    "name = \"x\"\nissuer = \"http://idp.example\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                    "federation.providers[0].issuer: must be an https URL",
                ),
                (
                    "name = \"x\"\nissuer = \"https://i\"\nclient_id = \"c\"",
                    "federation.providers[0].client_secret: required",
                ),
                (
                    "name = \"x\"\nkind = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                    "federation.providers[0].token_url: required",
                ),
                ("name = \"x\"\nkind = \"apple\"\nclient_id = \"c\"", "needs team_id, key_id and private_key"),
            ] {
                let e = load_err(jail, &format!("[[federation.providers]]\n{toml}\n"));
                assert!(e.contains(want), "{toml}: {e}");
            }
            Ok(())
        });
    }
}
