//! The `rampart` command: the service (`serve`) and its operator commands.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad usage or configuration.

mod ip_rules;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use rampart_config::Config;
use rampart_core::master_key::{self, KeyOrigin, MasterKeySource};
use rampart_core::{App, ServiceError, services};
use rampart_domain::{Actor, Secret, SystemClock};
use rampart_server::Application;
use rampart_server::telemetry::{self, LogTarget};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

/// mimalloc: small, short-lived allocations dominate the request path (see `bench/README.md`).
#[global_allocator]
static GLOBAL: rampart_alloc::MiMalloc = rampart_alloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "rampart", version, about = "One self-hosted service for the whole web-backend security roadmap.")]
struct Cli {
    /// Configuration file (TOML). Every setting can also be set as RAMPART_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "RAMPART_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (migrations are applied on start).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// User administration.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key management: API keys, and the access-token signing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The master key ring: re-seal every secret under the current key, and see what each key seals.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// IP allow and block rules (`clear` is the break-glass when locked out).
    #[command(subcommand)]
    IpRules(ip_rules::IpRulesCommand),
    /// Seal a secret for the configuration file with the master key (a provider's
    /// `client_secret` or Apple `private_key`): reads it from standard input, prints
    /// `sealed:v1.…`, which the configuration accepts in its place.
    Seal,
    /// Print the OpenAPI 3.1 document of the HTTP API.
    Openapi,
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it in effect, secrets redacted.
    Check,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the audit log's hash chain and signed checkpoints; exits 1 and names the first
    /// bad event if it is broken.
    Verify,
    /// Sign the chain head now (the server does this every `audit.checkpoint_interval_secs`).
    Checkpoint,
    /// Export events to stdout (or --output), oldest first, in constant memory; progress on stderr.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
struct AuditExportArgs {
    /// jsonl or csv.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
    format: String,
    /// RFC 3339, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339, exclusive.
    #[arg(long)]
    until: Option<String>,
    /// An action or dotted prefix (`auth`, `api_key.created`).
    #[arg(long)]
    action: Option<String>,
    /// Write here instead of stdout (created 0600, refused if it exists).
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Replace the access-token signing key. Tokens signed by the old key stay valid until
    /// they expire; running servers pick the new key up within 30 seconds.
    RotateSigning,
    /// Create an API key for a user (for scripts and bootstrap). Prints the key once, as JSON.
    Create(CreateKeyArgs),
    /// Revoke an API key by id.
    Revoke {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum MasterKeyCommand {
    /// Re-seal every sealed secret under the ring's current key (the first of
    /// RAMPART_MASTER_KEYS), in batches, while the service runs; progress on stderr. Safe to
    /// stop and run again. Says at the end whether any value is left under an older key.
    Rotate(RotateArgs),
    /// The ring's key ids and how many stored values each key seals, per column, as JSON.
    Status,
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// Values re-sealed per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Test hook: exit abruptly (status 3) after this many batches, as a crash would.
    #[arg(long, hide = true)]
    crash_after_batches: Option<usize>,
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// The owner's e-mail address.
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// A scope (repeatable), within the owner's permissions: `resource:action`, `resource:*`, `*`.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    #[arg(long)]
    expires_in_days: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user (for bootstrap and scripts). The password is read from standard input.
    Create(CreateUserArgs),
}

#[derive(Debug, Args)]
struct CreateUserArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: Option<String>,
    /// A role to grant (repeatable). Default: `user`.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// Read the password from standard input (passwords are never taken as arguments, where
    /// `ps` and shell history would see them).
    #[arg(long, required = true)]
    password_stdin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rampart: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Version => {
            println!("rampart {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Openapi => {
            print!("{}", rampart_server::openapi::render(&rampart_server::openapi_doc()));
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => config_check(&config),
        Command::Seal => seal(&config),
        Command::Serve => runtime(config.log.clone(), LogTarget::Stdout, serve(config)),
        Command::Migrate => runtime(config.log.clone(), LogTarget::Stderr, migrate(config)),
        Command::Keys(KeysCommand::RotateSigning) => {
            runtime(config.log.clone(), LogTarget::Stderr, rotate_signing(config))
        }
        Command::Audit(AuditCommand::Verify) => runtime(config.log.clone(), LogTarget::Stderr, audit_verify(config)),
        Command::Audit(AuditCommand::Checkpoint) => {
            runtime(config.log.clone(), LogTarget::Stderr, audit_checkpoint(config))
        }
        Command::Audit(AuditCommand::Export(args)) => {
            runtime(config.log.clone(), LogTarget::Stderr, audit_export(config, args))
        }
        Command::Keys(KeysCommand::Create(args)) => {
            runtime(config.log.clone(), LogTarget::Stderr, create_key(config, args))
        }
        Command::Keys(KeysCommand::Revoke { id }) => {
            runtime(config.log.clone(), LogTarget::Stderr, revoke_key(config, id))
        }
        Command::MasterKey(MasterKeyCommand::Rotate(args)) => {
            runtime(config.log.clone(), LogTarget::Stderr, master_key_rotate(config, args))
        }
        Command::MasterKey(MasterKeyCommand::Status) => {
            runtime(config.log.clone(), LogTarget::Stderr, master_key_status(config))
        }
        Command::IpRules(cmd) => runtime(config.log.clone(), LogTarget::Stderr, ip_rules::run(config, cmd)),
        Command::Users(UsersCommand::Create(args)) => {
            runtime(config.log.clone(), LogTarget::Stderr, create_user(config, args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs logging, then runs `work` on a multi-threaded runtime.
fn runtime(
    log: rampart_config::LogConfig,
    target: LogTarget,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    telemetry::init(&log, target).context("cannot set up logging")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(work)
}

fn key_source() -> MasterKeySource {
    MasterKeySource {
        env_value: std::env::var("RAMPART_MASTER_KEY").ok().filter(|v| !v.is_empty()).map(Secret::new),
        env_file: std::env::var_os("RAMPART_MASTER_KEY_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
        ring_value: std::env::var("RAMPART_MASTER_KEYS").ok().filter(|v| !v.is_empty()).map(Secret::new),
        ring_file: std::env::var_os("RAMPART_MASTER_KEYS_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
    }
}

fn resolve_master_key(config: &Config) -> anyhow::Result<(rampart_domain::KeyRing, KeyOrigin)> {
    let generation =
        if config.is_embedded_database() { master_key::Generation::Allowed } else { master_key::Generation::Refused };
    let (key, origin) = master_key::resolve(&key_source(), &config.data.dir, generation)?;
    match &origin {
        KeyOrigin::Generated(path) => tracing::warn!(
            path = %path.display(),
            "no RAMPART_MASTER_KEY, RAMPART_MASTER_KEYS or their _FILE given: generated a master key into the data directory. \
             Production should supply its own key (and back it up): without it, encrypted secrets cannot be read."
        ),
        KeyOrigin::PreviouslyGenerated(path) => tracing::warn!(
            path = %path.display(),
            "using the master key generated into the data directory; production should supply RAMPART_MASTER_KEY or RAMPART_MASTER_KEY_FILE"
        ),
        KeyOrigin::Environment | KeyOrigin::File(_) => {}
    }
    Ok((key, origin))
}

/// `rampart seal`: the secret from standard input (a trailing newline dropped), sealed.
fn seal(config: &Config) -> anyhow::Result<()> {
    use std::io::Read as _;
    let (key, _) = resolve_master_key(config)?;
    let mut secret = String::new();
    std::io::stdin().read_to_string(&mut secret).context("cannot read the secret from standard input")?;
    let secret = secret.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&secret);
    anyhow::ensure!(!secret.is_empty(), "nothing to seal: give the secret on standard input");
    println!("{}", rampart_core::services::oauth::seal_secret(&key, secret));
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let (key, origin) = resolve_master_key(&config)?;
    let app = Application::build(config, key, origin, Arc::new(SystemClock)).await?;
    // Start-up ran on this thread, which from here on only waits: what it freed goes back to
    // the system now rather than staying resident for the process's life.
    rampart_alloc::release_free_memory();
    app.run_until(rampart_server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    // The master key too: the migration's own event is linked into the keyed audit chain.
    let (key, _) = resolve_master_key(&config)?;
    let opened = rampart_core::startup::open_store(&config.settings()?, &key, &SystemClock, "cli").await?;
    let (store, report) = (opened.store, opened.report);
    println!(
        "{} backend: {} migration(s) applied, {} in total",
        store.backend().as_str(),
        report.applied.len(),
        report.total
    );
    store.close().await;
    Ok(())
}

fn config_check(config: &Config) -> anyhow::Result<()> {
    let source = key_source();
    let key = match source.is_supplied() {
        false if !config.is_embedded_database() => {
            anyhow::bail!("{}", master_key::MasterKeyError::Required)
        }
        false => {
            let path = config.data.dir.join(master_key::KEY_FILE_NAME);
            let state = if path.exists() { "exists" } else { "will be generated on first start" };
            format!("generated file {} ({state}); production should supply RAMPART_MASTER_KEY", path.display())
        }
        true => {
            let (ring, origin) = master_key::resolve(&source, &config.data.dir, master_key::Generation::Refused)?;
            let older: Vec<&str> = ring.older_ids().collect();
            if older.is_empty() {
                format!("{origin:?}, key id {}", ring.key_id())
            } else {
                format!("{origin:?}, key id {} (older: {})", ring.key_id(), older.join(", "))
            }
        }
    };
    let db = config.database.url.as_ref().map_or_else(|| config.database_url(), |u| u.redacted());
    println!("# rampart {}: configuration is valid", env!("CARGO_PKG_VERSION"));
    println!("# database: {db}");
    println!("# master key: {key}");
    print!("{}", config.to_redacted_toml());
    Ok(())
}

async fn rotate_signing(config: Config) -> anyhow::Result<()> {
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let old = state.signing.ring().current.kid().to_string();
    let result = state.signing.rotate("cli").await;
    state.store.close().await;
    let new = result?;
    println!("{}", serde_json::json!({ "kid": new, "replaced": old }));
    Ok(())
}

async fn create_user(config: Config, args: CreateUserArgs) -> anyhow::Result<()> {
    if !args.password_stdin {
        bail!("pass --password-stdin and the password on standard input");
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("cannot read the password from standard input")?;
    let password = Secret::new(
        password.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&password).to_string(),
    );
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let input = services::users::CreateUser { email: args.email, password, name: args.name, roles: args.roles };
    let result = services::users::create_user(&state, input, Actor::System, "cli").await;
    state.store.close().await;
    match result {
        Ok(user) => {
            println!("{}", serde_json::json!({ "id": user.id.to_string(), "email": user.email, "roles": user.roles }));
            Ok(())
        }
        Err(e) => Err(explain("create the user", e)),
    }
}

/// What a service error means to an operator at a terminal (who, unlike an HTTP client, may
/// see internal causes).
/// Opens the state for an operator command (database, master key), on the wall clock.
async fn open_state(config: Config) -> anyhow::Result<App> {
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    Ok(state)
}

fn explain(what: &str, e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Validation(errors) => {
            let lines: Vec<String> =
                errors.iter().map(|e| format!("  {}: {} ({})", e.field, e.message, e.code)).collect();
            anyhow::anyhow!("cannot {what}:\n{}", lines.join("\n"))
        }
        e @ (ServiceError::Internal(_) | ServiceError::Unavailable(_)) => {
            let cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            anyhow::anyhow!("cannot {what}: {cause}")
        }
        e => anyhow::anyhow!("cannot {what}: {e} ({})", e.code()),
    }
}

async fn create_key(config: Config, args: CreateKeyArgs) -> anyhow::Result<()> {
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let result = async {
        let email = rampart_domain::EmailLookup::parse(&args.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
        let owner = state
            .store
            .find_user_by_email(email.clone())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user {}", email.normal()))?;
        let new = services::api_keys::NewKey {
            name: args.name,
            scopes: args.scopes,
            expires_in_days: args.expires_in_days,
            rate_limit: None,
        };
        services::api_keys::create(&state, owner.id, Actor::System, None, new)
            .await
            .map_err(|e| explain("create the key", e))
    }
    .await;
    state.store.close().await;
    let (stored, secret) = result?;
    println!(
        "{}",
        serde_json::json!({
            "id": stored.id.to_string(),
            "key": secret.expose(),
            "prefix": stored.prefix,
            "owner": args.email,
            "scopes": stored.scopes,
        })
    );
    Ok(())
}

async fn revoke_key(config: Config, id: String) -> anyhow::Result<()> {
    let id: uuid::Uuid = id.parse().map_err(|_| anyhow::anyhow!("--id: not a key id"))?;
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let result = async {
        let stored = state.store.api_key_by_id(id).await?.ok_or_else(|| anyhow::anyhow!("no API key {id}"))?;
        let owner = rampart_domain::UserId(stored.user_id);
        services::api_keys::revoke(&state, owner, id, Actor::System, None)
            .await
            .map_err(|e| explain("revoke the key", e))
    }
    .await;
    state.store.close().await;
    if !result? {
        bail!("API key {id} is already revoked");
    }
    println!("{}", serde_json::json!({ "revoked": id.to_string() }));
    Ok(())
}

async fn audit_verify(config: Config) -> anyhow::Result<()> {
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let result =
        services::audit::verify(&state, Actor::System, None).await.map_err(|e| explain("verify the audit log", e));
    state.store.close().await;
    let report = result?;
    println!("{}", serde_json::to_string(&rampart_server::views::verification(&report))?);
    if !report.ok {
        bail!(
            "the audit log's hash chain is broken at seq {} ({})",
            report.first_bad_seq.unwrap_or_default(),
            report.fault.map_or("unknown", |f| f.as_str())
        );
    }
    Ok(())
}

async fn audit_checkpoint(config: Config) -> anyhow::Result<()> {
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let result = services::audit::sign_checkpoint(&state).await;
    state.store.close().await;
    match result.map_err(|e| explain("sign a checkpoint", e.into()))? {
        Some(cp) => println!("{}", serde_json::json!({ "signed": true, "seq": cp.seq, "hash": hex::encode(cp.hash) })),
        None => println!(
            "{}",
            serde_json::json!({ "signed": false, "reason": "the head is signed already, or the log is empty" })
        ),
    }
    Ok(())
}

async fn audit_export(config: Config, args: AuditExportArgs) -> anyhow::Result<()> {
    use futures::StreamExt;
    use std::io::Write;
    let parse = |s: &Option<String>, what: &str| -> anyhow::Result<Option<time::OffsetDateTime>> {
        s.as_ref()
            .map(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
            .transpose()
            .map_err(|_| anyhow::anyhow!("--{what}: not an RFC 3339 time (2026-11-23T00:00:00Z)"))
    };
    let filter = rampart_domain::audit::AuditFilter {
        since: parse(&args.since, "since")?,
        until: parse(&args.until, "until")?,
        action: args.action.clone(),
        ..Default::default()
    };
    if let Err(errs) = filter.validate() {
        let names: Vec<String> = errs.iter().map(|e| format!("--{} ({})", e.field, e.code)).collect();
        bail!("invalid filter: {}", names.join(", "));
    }
    let format = if args.format == "csv" {
        services::audit::ExportFormat::Csv
    } else {
        services::audit::ExportFormat::JsonLines
    };
    let mut out: Box<dyn Write> = match &args.output {
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(path) => {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            Box::new(std::io::BufWriter::new(
                o.open(path).with_context(|| format!("cannot create {}", path.display()))?,
            ))
        }
    };
    let (key, origin) = resolve_master_key(&config)?;
    let (state, _) = App::open(config, key, origin, Arc::new(SystemClock)).await?;
    let result = async {
        let mut stream = Box::pin(
            services::audit::export_by_operator(&state, filter, format)
                .await
                .map_err(|e| explain("export the audit log", e))?,
        );
        let (mut bytes, mut lines, mut reported) = (0u64, 0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.write_all(&chunk)?;
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            if lines - reported >= 100_000 {
                reported = lines;
                eprintln!("exported {lines} lines ({:.1} MB)", bytes as f64 / 1e6);
            }
        }
        out.flush()?;
        eprintln!("done: {lines} lines, {:.1} MB", bytes as f64 / 1e6);
        anyhow::Ok(())
    }
    .await;
    state.store.close().await;
    result
}

async fn master_key_rotate(config: Config, args: RotateArgs) -> anyhow::Result<()> {
    let state = open_state(config).await?;
    let older: Vec<&str> = state.master_key.older_ids().collect();
    eprintln!(
        "re-sealing every secret under master key {} (older keys in the ring: {})",
        state.master_key.key_id(),
        if older.is_empty() { "none".to_string() } else { older.join(", ") }
    );
    let mut batches = 0usize;
    let result = services::master_keys::rotate(&state, args.batch, "cli", |p| {
        eprintln!("{}: {}/{}", p.column, p.done, p.total);
        batches += 1;
        if args.crash_after_batches.is_some_and(|n| batches >= n) {
            eprintln!("stopping abruptly after {batches} batch(es) (--crash-after-batches)");
            std::process::exit(3);
        }
    })
    .await
    .map_err(|e| explain("rotate the master key", e));
    state.store.close().await;
    let report = result?;
    let older: Vec<_> = report
        .older
        .iter()
        .map(|c| serde_json::json!({ "column": c.column, "key_id": c.key_id, "count": c.count }))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "key_id": report.key_id,
            "resealed": report.resealed(),
            "remaining_under_older_keys": report.remaining(),
            "older": older,
        })
    );
    if report.remaining() == 0 {
        eprintln!("done: every value is sealed under {}; older keys may be removed from the ring", report.key_id);
    } else {
        eprintln!(
            "done, but {} value(s) are still under older keys (changed while this ran): run it again before removing any key",
            report.remaining()
        );
    }
    Ok(())
}

async fn master_key_status(config: Config) -> anyhow::Result<()> {
    let state = open_state(config).await?;
    let result = services::master_keys::status(&state).await.map_err(|e| explain("read the key ring's status", e));
    state.store.close().await;
    let status = result?;
    let counts: Vec<_> = status
        .counts
        .iter()
        .map(|c| serde_json::json!({ "column": c.column, "key_id": c.key_id, "count": c.count }))
        .collect();
    println!("{}", serde_json::json!({ "ring": status.ring, "current": status.ring.first(), "counts": counts }));
    Ok(())
}
