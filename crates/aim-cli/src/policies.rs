//! `aim policies`: list, add, update (from JSON) and remove policies.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::admin_client::{AdminArgs, block_on, done, print};

/// `aim policies`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim policies list
  aim policies add --file require-approval.json
  aim policies add --json-body '{\"name\": \"approve deletes\", \"action_pattern\": \"delete_*\", \"effect\": \"require_approval\"}'
  aim policies update \"approve deletes\" --json-body '{\"enabled\": false}'
  aim policies remove \"approve deletes\"")]
pub(crate) struct PoliciesArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: PoliciesCommand,
}

#[derive(Debug, Subcommand)]
enum PoliciesCommand {
    /// List policies.
    List,
    /// Add a policy described in JSON: {name, priority?, action_pattern?, resource_pattern?,
    /// agent_pattern?, effect: allow|deny|require_approval, min_trust?, enabled?}.
    Add {
        /// Read the policy from this file.
        #[arg(
            long,
            conflicts_with = "json_body",
            required_unless_present = "json_body"
        )]
        file: Option<PathBuf>,
        /// The policy as a JSON string.
        #[arg(long)]
        json_body: Option<String>,
    },
    /// Update a policy: only the JSON fields given change (e.g. {"enabled": false}).
    Update {
        /// Policy id or name.
        id: String,
        /// Read the changes from this file.
        #[arg(
            long,
            conflicts_with = "json_body",
            required_unless_present = "json_body"
        )]
        file: Option<PathBuf>,
        /// The changes as a JSON string.
        #[arg(long)]
        json_body: Option<String>,
    },
    /// Remove a policy.
    Remove {
        /// Policy id or name.
        id: String,
    },
}

pub(crate) fn run(args: PoliciesArgs) -> anyhow::Result<()> {
    let PoliciesArgs { admin, command } = args;
    block_on(async move {
        let client = admin.client()?;
        match command {
            PoliciesCommand::List => print(
                &client.list_policies().await?,
                admin.json,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("PRIORITY", "priority"),
                    ("ACTION", "action_pattern"),
                    ("RESOURCE", "resource_pattern"),
                    ("AGENT", "agent_pattern"),
                    ("EFFECT", "effect"),
                    ("ENABLED", "enabled"),
                ],
            ),
            PoliciesCommand::Add { file, json_body } => {
                let policy = read_json(file, json_body)?;
                let v = client.create_policy(&policy).await?;
                let id = v.get("id").and_then(|i| i.as_str()).unwrap_or("?");
                done(&v, admin.json, &format!("policy {id} added"))
            }
            PoliciesCommand::Update {
                id,
                file,
                json_body,
            } => {
                let v = client
                    .update_policy(&id, &read_json(file, json_body)?)
                    .await?;
                done(&v, admin.json, &format!("policy {id} updated"))
            }
            PoliciesCommand::Remove { id } => {
                let v = client.delete_policy(&id).await?;
                done(&v, admin.json, &format!("policy {id} removed"))
            }
        }
    })
}

fn read_json(
    file: Option<PathBuf>,
    json_body: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let text = match (file, json_body) {
        (Some(path), _) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        (None, Some(text)) => text,
        (None, None) => anyhow::bail!("give --file or --json-body"),
    };
    serde_json::from_str(&text).context("the policy is not valid JSON")
}
