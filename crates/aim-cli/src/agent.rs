//! `aim agent`: register, list, show, suspend, reactivate, revoke, label.

use aim_client::{AimClient, RegistrationDetails};
use clap::{Args, Subcommand};

use crate::admin_client::{AdminArgs, block_on, done, print};

/// `aim agent`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim agent register billing-bot --server http://127.0.0.1:8080   # key generated locally
  aim agent list
  aim agent show billing-bot --json
  aim agent suspend billing-bot
  aim agent label billing-bot payments prod   # policies then select `label:payments`")]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent: generate its key here, send only the public key, store it encrypted
    /// in ~/.aim/agents/NAME.json (set AIM_PASSPHRASE, or use a keyring build). Loads the
    /// stored identity instead when NAME is already registered.
    Register {
        /// Agent name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Description shown to administrators.
        #[arg(long)]
        description: Option<String>,
        /// Register again with a new key even if NAME is stored.
        #[arg(long)]
        force: bool,
    },
    /// List the organization's agents.
    List,
    /// Show one agent (by name or id).
    Show {
        /// Agent name or id.
        agent: String,
    },
    /// Suspend an agent: its actions are denied until reactivated.
    Suspend {
        /// Agent name or id.
        agent: String,
    },
    /// Reactivate a suspended agent.
    Reactivate {
        /// Agent name or id.
        agent: String,
    },
    /// Revoke an agent permanently.
    Revoke {
        /// Agent name or id.
        agent: String,
    },
    /// Set an agent's labels (admin), replacing the current ones; policies select agents by
    /// id or `label:NAME`, never by name. No labels clears them.
    Label {
        /// Agent name or id.
        agent: String,
        /// Labels (ASCII letters, digits, `-`, `_`, `.`, `:`, `=`).
        labels: Vec<String>,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id|agent_id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("TRUST", "trust_score"),
    ("CREATED", "created_at"),
];

pub(crate) fn run(args: AgentArgs) -> anyhow::Result<()> {
    let AgentArgs { admin, command } = args;
    block_on(async move {
        match command {
            AgentCommand::Register {
                name,
                description,
                force,
            } => {
                let config = admin.config()?;
                let details = RegistrationDetails {
                    description,
                    ..Default::default()
                };
                let client = if force {
                    AimClient::register(&name, config, details).await?
                } else {
                    AimClient::secure_with(&name, config).await?
                };
                let id = client.identity();
                let value = serde_json::json!({
                    "name": id.name(), "agent_id": id.agent_id(),
                    "server": id.server_url(), "public_key": id.public_key_b64(),
                });
                done(
                    &value,
                    admin.json,
                    &format!(
                        "agent {} ready: id {} on {}\npublic key {}\n(the private key stays in this machine's credential store)",
                        id.name(),
                        id.agent_id(),
                        id.server_url(),
                        id.public_key_b64()
                    ),
                )
            }
            AgentCommand::List => print(&admin.client()?.list_agents().await?, admin.json, COLUMNS),
            AgentCommand::Show { agent } => {
                let value = admin.client()?.get_agent(&agent).await?;
                if admin.json {
                    print(&value, true, COLUMNS)
                } else {
                    print(
                        &value,
                        false,
                        &[
                            ("ID", "id"),
                            ("NAME", "name"),
                            ("STATUS", "status"),
                            ("TRUST", "trust_score"),
                            ("PUBLIC KEY", "public_key"),
                        ],
                    )
                }
            }
            AgentCommand::Suspend { agent } => status(&admin, &agent, "suspend", "suspended").await,
            AgentCommand::Reactivate { agent } => {
                status(&admin, &agent, "reactivate", "reactivated").await
            }
            AgentCommand::Revoke { agent } => status(&admin, &agent, "revoke", "revoked").await,
            AgentCommand::Label { agent, labels } => {
                let client = admin.client()?;
                let id = client.resolve_agent(&agent).await?;
                let value = client
                    .put(
                        &format!("/api/v1/agents/{id}/labels"),
                        &serde_json::json!({ "labels": labels }),
                    )
                    .await?;
                done(
                    &value,
                    admin.json,
                    &format!("agent {agent} labels: {}", labels.join(", ")),
                )
            }
        }
    })
}

async fn status(admin: &AdminArgs, agent: &str, action: &str, past: &str) -> anyhow::Result<()> {
    let value = admin.client()?.agent_action(agent, action).await?;
    done(&value, admin.json, &format!("agent {agent} {past}"))
}
