//! An MCP server (stdio) whose tools are verified by AIM before they run.
//!
//! ```text
//! export AIM_SERVER=http://127.0.0.1:8080
//! export AIM_API_KEY=aim_live_...            # registers the agent on first use
//! export AIM_PASSPHRASE='a long passphrase'  # encrypts the agent's key in ~/.aim/agents/
//! cargo run -p aim-client --features rmcp --example mcp_guarded_server
//! ```
//!
//! Point an MCP client at that command. `read_notes` needs the capability `read_notes`;
//! `delete_note` is verified as `delete_file` on the note's name, which is high risk: a person
//! approves it with `aim approvals approve ID --reason ...` while the call waits (up to 2 min).

use std::time::Duration;

use aim_client::AimClient;
use aim_client::mcp::{GuardedToolRouter, ToolGuard, ToolMapping};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};

/// The arguments of `delete_note`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoteArg {
    /// The note's name.
    name: String,
}

/// A toy notes server.
struct Notes {
    tools: GuardedToolRouter<Notes>,
}

#[tool_router]
impl Notes {
    #[tool(description = "List the notes")]
    async fn read_notes(&self) -> String {
        "shopping, ideas".into()
    }

    #[tool(description = "Delete a note")]
    async fn delete_note(&self, Parameters(NoteArg { name }): Parameters<NoteArg>) -> String {
        format!("deleted {name}")
    }
}

// The guard replaces the router in `#[tool_handler]`: that is the whole integration.
#[tool_handler(router = self.tools)]
impl ServerHandler for Notes {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let aim = AimClient::secure("mcp-notes").await?;
    let guard = ToolGuard::new(aim)
        .map_tool(
            "delete_note",
            ToolMapping::capability("delete_file").resource_arg("name"),
        )
        .timeout(Duration::from_secs(120));
    let server = Notes {
        tools: guard.guard(Notes::tool_router()),
    };
    server
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}
