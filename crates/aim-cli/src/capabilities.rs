//! `aim capabilities`: grant, revoke, and review capability requests.

use clap::{Args, Subcommand};

use crate::admin_client::{AdminArgs, block_on, done, print};

/// `aim capabilities`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim capabilities grant billing-bot db:query
  aim capabilities revoke billing-bot db:query
  aim capabilities requests
  aim capabilities requests --approve 7c1e...   (or --reject ID)")]
pub(crate) struct CapabilitiesArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: CapabilitiesCommand,
}

#[derive(Debug, Subcommand)]
enum CapabilitiesCommand {
    /// List an agent's granted and declared capabilities (declared ones are not grants).
    List {
        /// Agent name or id.
        agent: String,
    },
    /// Grant a capability to an agent.
    Grant {
        /// Agent name or id.
        agent: String,
        /// Capability type, e.g. db:query.
        capability: String,
    },
    /// Revoke a capability from an agent.
    Revoke {
        /// Agent name or id.
        agent: String,
        /// Capability type.
        capability: String,
    },
    /// List capability requests, or approve/reject one.
    Requests {
        /// Approve this request.
        #[arg(long, value_name = "ID", conflicts_with = "reject")]
        approve: Option<String>,
        /// Reject this request.
        #[arg(long, value_name = "ID")]
        reject: Option<String>,
        /// Only requests with this status (pending, approved, rejected).
        #[arg(long)]
        status: Option<String>,
    },
}

pub(crate) fn run(args: CapabilitiesArgs) -> anyhow::Result<()> {
    let CapabilitiesArgs { admin, command } = args;
    block_on(async move {
        let client = admin.client()?;
        match command {
            CapabilitiesCommand::List { agent } => {
                let v = client.capabilities(&agent).await?;
                if admin.json {
                    return print(&v, true, &[]);
                }
                let rows = |key: &str, kind: &str| -> Vec<serde_json::Value> {
                    v[key]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .map(|item| {
                                    let mut row = item.clone();
                                    row["kind"] = kind.into();
                                    row
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mut all = rows("granted", "granted");
                all.extend(rows("declared", "declared (not granted)"));
                print(
                    &serde_json::Value::Array(all),
                    false,
                    &[
                        ("CAPABILITY", "capability"),
                        ("KIND", "kind"),
                        ("BY", "granted_by|source"),
                        ("SINCE", "granted_at|declared_at"),
                    ],
                )
            }
            CapabilitiesCommand::Grant { agent, capability } => {
                let v = client.grant_capability(&agent, &capability).await?;
                done(&v, admin.json, &format!("granted {capability} to {agent}"))
            }
            CapabilitiesCommand::Revoke { agent, capability } => {
                let v = client.revoke_capability(&agent, &capability).await?;
                done(
                    &v,
                    admin.json,
                    &format!("revoked {capability} from {agent}"),
                )
            }
            CapabilitiesCommand::Requests {
                approve: Some(id), ..
            } => {
                let v = client
                    .decide_capability_request(&id, "approve", None)
                    .await?;
                done(&v, admin.json, &format!("capability request {id} approved"))
            }
            CapabilitiesCommand::Requests {
                reject: Some(id), ..
            } => {
                let v = client
                    .decide_capability_request(&id, "reject", None)
                    .await?;
                done(&v, admin.json, &format!("capability request {id} rejected"))
            }
            CapabilitiesCommand::Requests { status, .. } => print(
                &client.capability_requests(status.as_deref()).await?,
                admin.json,
                &[
                    ("ID", "id"),
                    ("AGENT", "agent_name|agent_id"),
                    ("CAPABILITY", "capability_type"),
                    ("STATUS", "status"),
                    ("REASON", "reason"),
                ],
            ),
        }
    })
}
