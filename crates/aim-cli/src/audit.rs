//! `aim audit`: read the server's audit log.

use clap::Args;

use crate::admin_client::{AdminArgs, block_on, print};

/// `aim audit`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim audit --limit 20
  aim audit --agent billing-bot --json")]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Only entries about this agent (name or id).
    #[arg(long)]
    agent: Option<String>,
    /// At most this many entries (newest first).
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub(crate) fn run(args: AuditArgs) -> anyhow::Result<()> {
    block_on(async move {
        let client = args.admin.client()?;
        let entries = client.audit(args.agent.as_deref(), args.limit).await?;
        print(
            &entries,
            args.admin.json,
            &[
                ("TIME", "at"),
                ("ACTOR", "actor_type"),
                ("ACTOR ID", "actor_id"),
                ("ACTION", "action"),
                ("TARGET", "target_type"),
                ("TARGET ID", "target_id"),
            ],
        )
    })
}
