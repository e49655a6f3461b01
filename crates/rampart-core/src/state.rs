//! [`App`]: everything a use case needs, built once at start-up from the configuration and
//! the master key, shared by every door (HTTP, CLI, background work). Cheap to clone.

use crate::authz::AuthKeys;
use crate::error::ServiceError;
use crate::events::SecurityEvents;
use crate::hashing::HashingPool;
use crate::master_key::KeyOrigin;
use crate::metrics::Metrics;
use crate::services;
use crate::startup::{Opened, StartupError, open_store};
use crate::{mail, signing};
use rampart_config::{Config, Settings};
use rampart_domain::{
    Action, Actor, Clock, KeyRing, Outcome, PasswordHasher, PasswordPolicy, Resource, SessionPolicy, Severity,
    ThrottlePolicy,
};
use rampart_store::{MigrationReport, Store};
use std::ops::Deref;
use std::sync::Arc;

/// The application state. Derefs to [`Inner`], whose fields are the parts.
#[derive(Debug, Clone)]
pub struct App(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    /// The configuration in force, as runtime values (durations, policies, compiled rules).
    pub settings: Settings,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The master key ring: seals under the current key, opens with any (`rampart master-key`).
    pub master_key: Arc<KeyRing>,
    /// The keys one-time codes are hashed with (kept in the store's root keys).
    pub codes: crate::root_keys::CodeKeys,
    pub metrics: Arc<Metrics>,
    pub events: SecurityEvents,
    pub hashing: HashingPool,
    pub signing: signing::SigningKeys,
    pub auth: AuthKeys,
    pub mailer: mail::Mailer,
    pub mail_pacing: services::registration::MailPacing,
    pub api_keys: services::api_keys::ApiKeys,
    /// The WebAuthn relying party (`[webauthn]`).
    pub webauthn: services::webauthn::RelyingParty,
    /// The SIEM output, opened by `serve`'s background work (never by CLI commands).
    pub siem: tokio::sync::Mutex<Option<services::audit::SiemTail>>,
    pub ip_rules: services::ip_rules::IpRules,
    /// The gateway's rules in force and its caches (`[gateway]`).
    pub gateway: services::gateway::Gateway,
    /// Transit keys and their opened versions, while no change to a transit key is committed.
    pub transit: services::transit::TransitCache,
    /// OpenID providers' discovery documents and key sets (`services::oauth`).
    pub oauth: services::oauth::Directory,
    /// A hash of a random password at the configured cost, verified for unknown e-mail
    /// addresses so that their login costs what a real one does. Made on first use.
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Connects and migrates the database, wires the state, loads (or creates) the token
    /// signing keys, and records the start-up events (migrations applied, master key
    /// generated). Used by `serve` and by CLI commands.
    pub async fn open(
        config: Config,
        master_key: impl Into<KeyRing>,
        key_origin: KeyOrigin,
        clock: Arc<dyn Clock>,
    ) -> Result<(App, MigrationReport), StartupError> {
        let master_key: KeyRing = master_key.into();
        let settings = Settings::from_config(&config).map_err(|e| StartupError::Config(e.to_string()))?;
        let Opened { store, root_keys, report, migrated } =
            open_store(&settings, &master_key, clock.as_ref(), "startup").await?;
        let metrics = Arc::new(Metrics::new(store.backend().as_str()));
        let mailer = mail::Mailer::new(&settings.mail).map_err(|e| StartupError::Config(format!("mail: {e}")))?;
        let events = SecurityEvents::new(store.clone(), metrics.clone(), clock.clone()).waking(mailer.wake_handle());
        let master_key = Arc::new(master_key);
        if let Some(event) = &migrated {
            events.observed(event);
        }
        if let KeyOrigin::Generated(path) = &key_origin {
            events
                .record(
                    events
                        .event(Action::MasterKeyGenerated, Outcome::Success)
                        .actor(Actor::System)
                        .severity(Severity::Warning)
                        .resource(Resource::new("master_key", master_key.key_id()))
                        .details(serde_json::json!({ "path": path.display().to_string() })),
                )
                .await?;
        }
        let signing = signing::SigningKeys::load(
            store.clone(),
            master_key.clone(),
            settings.tokens.clone(),
            clock.clone(),
            events.clone(),
        )
        .await
        .map_err(|e| StartupError::Signing(e.to_string()))?;
        let p = &settings.passwords;
        let hasher = PasswordHasher::new(p.argon2).map_err(|e| StartupError::Config(e.to_string()))?;
        let hashing = HashingPool::new(hasher, p.hashing_threads, p.hashing_nice, p.hashing_queue)
            .map_err(|e| StartupError::Config(format!("cannot start the password hashing threads: {e}")))?;
        let webauthn = services::webauthn::RelyingParty::from_config(&settings.webauthn)
            .map_err(|e| StartupError::Config(format!("webauthn: {e}")))?;
        for s in settings.gateway.rules.shadowed() {
            tracing::warn!(rule = %s.rule, by = %s.by, "gateway rule can never match: an earlier rule takes all its requests");
        }
        let app = App(Arc::new(Inner {
            ip_rules: Default::default(),
            transit: Default::default(),
            oauth: Default::default(),
            gateway: services::gateway::Gateway::new(
                settings.gateway.rules.clone(),
                settings.gateway.rules_file.as_deref(),
            ),
            webauthn,
            hashing,
            auth: root_keys.auth,
            codes: root_keys.codes,
            mailer,
            mail_pacing: Default::default(),
            api_keys: Default::default(),
            siem: Default::default(),
            dummy_hash: tokio::sync::OnceCell::new(),
            settings,
            store,
            clock,
            master_key,
            metrics,
            events,
            signing,
        }));
        app.ip_rules.reload(&app).await;
        Ok((app, report))
    }

    pub fn password_policy(&self) -> PasswordPolicy {
        self.settings.passwords.policy.clone()
    }

    pub fn session_policy(&self) -> SessionPolicy {
        self.settings.sessions.policy
    }

    /// The throttle rules for login identifiers and, unless `login.ip_max_failures = 0`, for
    /// client addresses.
    pub fn throttle_policies(&self) -> (ThrottlePolicy, Option<ThrottlePolicy>) {
        (self.settings.login.identifier, self.settings.login.address)
    }

    /// See `Inner::dummy_hash`.
    pub async fn dummy_hash(&self) -> Result<String, ServiceError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let mut bytes = [0u8; 24];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                let password = rampart_domain::Password::parse(hex::encode(bytes), &PasswordPolicy::ACCEPT_ANY)
                    .map_err(|_| ServiceError::internal(std::io::Error::other("dummy password refused")))?;
                self.hashing.hash(password).await.map_err(ServiceError::from)
            })
            .await
            .cloned()
    }
}
