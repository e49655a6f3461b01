//! `rampart ip-rules list|add|remove|clear`: IP allow and block rules from the command line,
//! through the same service as the admin API. `clear` is the break-glass for an operator whose
//! own address got blocked (or left outside the admin allowlist). Running instances pick the
//! change up within a second.

use crate::{explain, open_state};
use clap::{Args, Subcommand};
use rampart_config::Config;
use rampart_core::services::ip_rules::{self, NewIpRule};
use rampart_domain::Actor;

#[derive(Debug, Subcommand)]
pub enum IpRulesCommand {
    /// List every rule as JSON lines.
    List,
    /// Add an allow or block rule.
    Add(AddArgs),
    /// Remove a rule by id.
    Remove {
        #[arg(long)]
        id: String,
    },
    /// Remove every rule (break-glass when locked out); recorded as a critical event.
    Clear {
        /// Required: this lifts every block and the admin allowlist.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A network (`192.0.2.0/24`, `2001:db8::/32`) or one address.
    #[arg(long)]
    network: String,
    /// `allow` or `block`.
    #[arg(long)]
    action: String,
    /// `all` (every route) or `admin` (admin routes only).
    #[arg(long, default_value = "all")]
    scope: String,
    #[arg(long, default_value = "")]
    reason: String,
    /// Expire after this many seconds (default: never).
    #[arg(long)]
    expires_in_secs: Option<u64>,
}

pub async fn run(config: Config, cmd: IpRulesCommand) -> anyhow::Result<()> {
    let state = open_state(config).await?;
    let result = async {
        match cmd {
            IpRulesCommand::List => {
                for r in state.store.list_ip_rules().await? {
                    let v = rampart_server::views::ip_rule_view(&r);
                    println!("{}", serde_json::to_string(&v)?);
                }
            }
            IpRulesCommand::Add(a) => {
                let now = state.clock.now();
                let expires_at =
                    a.expires_in_secs.map(|s| now + time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2)));
                let input =
                    NewIpRule { network: a.network, action: a.action, scope: a.scope, reason: a.reason, expires_at };
                let rule = ip_rules::create(&state, None, Actor::System, input)
                    .await
                    .map_err(|e| explain("add the rule", e))?;
                println!("{}", serde_json::to_string(&rampart_server::views::ip_rule_view(&rule))?);
            }
            IpRulesCommand::Remove { id } => {
                let id: uuid::Uuid = id.parse().map_err(|_| anyhow::anyhow!("--id: not a rule id"))?;
                if !ip_rules::remove(&state, None, Actor::System, id)
                    .await
                    .map_err(|e| explain("remove the rule", e))?
                {
                    anyhow::bail!("no IP rule {id}");
                }
                println!("{}", serde_json::json!({ "removed": id.to_string() }));
            }
            IpRulesCommand::Clear { yes } => {
                if !yes {
                    anyhow::bail!("clear removes every IP rule (blocks and the admin allowlist); confirm with --yes");
                }
                let n =
                    ip_rules::clear(&state, Actor::System, "cli").await.map_err(|e| explain("clear the rules", e))?;
                println!("{}", serde_json::json!({ "removed": n }));
            }
        }
        anyhow::Ok(())
    }
    .await;
    state.store.close().await;
    result
}
