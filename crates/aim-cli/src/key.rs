//! `aim key`: create, list and revoke API keys. Agents registering through an SDK get a
//! `registration` key: it registers agents and does nothing else, so an agent's process can
//! never approve its own actions.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin_client::{AdminArgs, block_on, done, print};

/// `aim key`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  aim key create agents --role registration   # for SDKs registering agents; printed once
  aim key create approvals                     # your own role, for a person
  aim key list
  aim key revoke 0b0f...-...")]
pub(crate) struct KeyArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key; the key is printed once (store it now).
    Create {
        /// A label for the key.
        name: String,
        /// `registration` (registers agents, nothing else), `viewer`, `member` or `admin`
        /// [default: the owner's role].
        #[arg(long)]
        role: Option<String>,
        /// Owner's user id (admins only; default: you).
        #[arg(long)]
        user: Option<String>,
    },
    /// List the organization's API keys (never the keys themselves).
    List,
    /// Revoke an API key by id.
    Revoke {
        /// Key id.
        id: String,
    },
}

pub(crate) fn run(args: KeyArgs) -> anyhow::Result<()> {
    let KeyArgs { admin, command } = args;
    block_on(async move {
        let client = admin.client()?;
        match command {
            KeyCommand::Create { name, role, user } => {
                let mut body = json!({ "name": name });
                if let Some(role) = role {
                    body["role"] = json!(role);
                }
                if let Some(user) = user {
                    body["user_id"] = json!(user);
                }
                let key = client.post("/api/v1/api-keys", &body).await?;
                let secret = key["api_key"].as_str().unwrap_or_default();
                done(
                    &key,
                    admin.json,
                    &format!(
                        "API key '{}' (role {}, id {}); shown only this once:\n{secret}",
                        key["name"].as_str().unwrap_or_default(),
                        key["role"].as_str().unwrap_or_default(),
                        key["id"].as_str().unwrap_or_default(),
                    ),
                )
            }
            KeyCommand::List => {
                let keys = client.get("/api/v1/api-keys").await?;
                print(
                    &keys["api_keys"],
                    admin.json,
                    &[
                        ("ID", "id"),
                        ("NAME", "name"),
                        ("ROLE", "role"),
                        ("PREFIX", "prefix"),
                        ("OWNER", "user_email|user_id"),
                        ("REVOKED", "revoked_at"),
                    ],
                )
            }
            KeyCommand::Revoke { id } => {
                let path = format!(
                    "/api/v1/api-keys/{}",
                    aim_client::admin::encode_component(&id)
                );
                let value = client.delete(&path).await?;
                done(&value, admin.json, &format!("API key {id} revoked"))
            }
        }
    })
}
