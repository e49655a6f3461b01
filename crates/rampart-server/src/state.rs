//! [`AppState`]: what the HTTP doors need — the use cases' [`App`] plus the server's own parts
//! (the shield's compiled rules, the rendered OpenAPI document). Derefs to [`App`], so a
//! handler passes `&state` wherever a use case takes `&App`. Cheap to clone.

use crate::shield::Shield;
use rampart_config::Config;
use rampart_core::App;
use rampart_core::master_key::KeyOrigin;
use rampart_core::startup::StartupError;
use rampart_domain::{Clock, KeyRing};
use rampart_store::MigrationReport;
use std::ops::Deref;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub core: App,
    pub shield: Shield,
    /// The gateway's built-in proxy (`[gateway] upstream`), when configured.
    pub built_in_proxy: Option<crate::gateway_proxy::BuiltInProxy>,
    /// The OpenAPI document, rendered on its first request (building it walks every route's
    /// schema: start-up and idle memory need not pay for a document nobody asked for).
    pub(crate) openapi_json: std::sync::OnceLock<axum::body::Bytes>,
    /// The web pages' branding, assets and text.
    pub ui: crate::ui::Ui,
    /// The guarded client requests to identity providers go through.
    pub providers: Providers,
    /// Layers 2–7 of the request stack, configured once (`crate::stack`).
    pub(crate) stack: crate::stack::Core,
    /// `GET /v1/me`'s bodies, kept per user while their account is unchanged.
    pub(crate) rendered_accounts: crate::views::RenderedAccounts,
    /// `POST /v1/keys/verify`'s valid answers, kept per key while its lookup is the same.
    pub(crate) rendered_keys: crate::views::RenderedKeys,
}

/// The way to identity providers ([`crate::oauth_transport::OAuthTransport`]).
pub struct Providers(pub Arc<dyn rampart_core::services::oauth::ProviderHttp>);

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Providers")
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Deref for Inner {
    type Target = App;
    fn deref(&self) -> &App {
        &self.core
    }
}

impl AppState {
    /// Opens the use cases' [`App`] (database, migrations, keys) and compiles the shield.
    pub async fn open(
        config: Config,
        master_key: impl Into<KeyRing>,
        key_origin: KeyOrigin,
        clock: Arc<dyn Clock>,
    ) -> Result<(AppState, MigrationReport), StartupError> {
        let config_redacted = config.to_redacted_toml();
        let (core, report) = App::open(config, master_key, key_origin, clock).await?;
        let shield = Shield::from_settings(&core.settings).map_err(StartupError::Config)?;
        let built_in_proxy = crate::gateway_proxy::BuiltInProxy::from_settings(
            &core.settings.gateway,
            core.metrics.clone(),
            core.events.clone(),
        )
        .map_err(StartupError::Config)?;
        Ok((AppState::with_proxy(core, shield, built_in_proxy, config_redacted), report))
    }

    pub fn new(core: App, shield: Shield) -> AppState {
        AppState::with_proxy(core, shield, None, String::new())
    }

    fn with_proxy(
        core: App,
        shield: Shield,
        built_in_proxy: Option<crate::gateway_proxy::BuiltInProxy>,
        config_redacted: String,
    ) -> AppState {
        let openapi_json = std::sync::OnceLock::new();
        let mut ui = crate::ui::Ui::new(&core.settings.ui);
        ui.config_redacted = config_redacted;
        let providers = Providers(Arc::new(crate::oauth_transport::OAuthTransport::new(
            &core,
            rampart_proxy::outbound::system_resolver(),
        )));
        let redaction = crate::telemetry::Redaction::new(&core.settings.log.redact);
        let stack = crate::stack::Core::new(&core.settings.server, core.metrics.clone(), redaction);
        AppState(Arc::new(Inner {
            core,
            shield,
            built_in_proxy,
            openapi_json,
            ui,
            providers,
            stack,
            rendered_accounts: crate::views::RenderedAccounts::default(),
            rendered_keys: crate::views::RenderedKeys::default(),
        }))
    }
}
