//! `aim approvals`: list pending verifications, approve or deny them.

use clap::{Args, Subcommand};

use crate::admin_client::{AdminArgs, block_on, done, print};

/// `aim approvals`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim approvals list
  aim approvals approve 0b0f...-... --reason \"monthly export, ticket 42\"
  aim approvals deny 0b0f...-... --reason \"not during the freeze\"")]
pub(crate) struct ApprovalsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
enum ApprovalsCommand {
    /// List verifications waiting for a person.
    List,
    /// Approve a pending verification.
    Approve {
        /// Verification id.
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Deny a pending verification.
    Deny {
        /// Verification id.
        id: String,
        /// Why (returned to the agent and recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
}

pub(crate) fn run(args: ApprovalsArgs) -> anyhow::Result<()> {
    let ApprovalsArgs { admin, command } = args;
    block_on(async move {
        let client = admin.client()?;
        match command {
            ApprovalsCommand::List => print(
                &client.pending_verifications().await?,
                admin.json,
                &[
                    ("ID", "id"),
                    ("AGENT", "agent_name|agent_id"),
                    ("ACTION", "action_type"),
                    ("RESOURCE", "resource"),
                    ("REQUESTED", "created_at|requested_at"),
                ],
            ),
            ApprovalsCommand::Approve { id, reason } => {
                let v = client.decide_verification(&id, "approve", &reason).await?;
                done(&v, admin.json, &format!("verification {id} approved"))
            }
            ApprovalsCommand::Deny { id, reason } => {
                let v = client.decide_verification(&id, "deny", &reason).await?;
                done(&v, admin.json, &format!("verification {id} denied"))
            }
        }
    })
}
