//! The `aim` command: identity server, agents, approvals, detection and the memory vault.
//!
//! Each top-level command lives in its own module with a clap `Args` type and a `run` function;
//! this file only parses the command line and dispatches.

mod admin_client;
mod agent;
mod approvals;
mod audit;
mod capabilities;
mod detect;
mod key;
mod mcp;
mod policies;
mod server;
mod vault;

use clap::{Parser, Subcommand};

/// mimalloc: the server's allocation-heavy request path (hyper, axum, sqlx) is measurably faster
/// with it than with glibc malloc (`docs/server.md`, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Agent identity and memory security: the AIM server and its administration, capability and
/// MCP detection, and the encrypted memory vault.
#[derive(Debug, Parser)]
#[command(name = "aim", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Top-level commands (one module each).
#[derive(Debug, Subcommand)]
enum Command {
    /// Agents: register (key generated locally), list, show, suspend, reactivate, revoke.
    Agent(agent::AgentArgs),
    /// Pending verifications: list, approve, deny.
    Approvals(approvals::ApprovalsArgs),
    /// Read the server's audit log.
    Audit(audit::AuditArgs),
    /// Capabilities: grant, revoke, review requests.
    Capabilities(capabilities::CapabilitiesArgs),
    /// Policies: list, add, update, remove.
    Policies(policies::PoliciesArgs),
    /// API keys: create (e.g. a registration key for agents), list, revoke.
    Key(key::KeyArgs),
    /// Detect an agent's capabilities and MCP servers (table, --json, or --report).
    Detect(detect::DetectArgs),
    /// MCP servers: `aim mcp vault` serves the memory vault to MCP clients over stdio.
    Mcp(mcp::McpArgs),
    /// Run the AIM identity server, or `aim server init` to create the first organization and admin key.
    Server(server::ServerArgs),
    /// The encrypted memory vault: store, recall (gated), search, lockdown, backup, rotate, verify.
    Vault(vault::VaultArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(args) => agent::run(args),
        Command::Approvals(args) => approvals::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Capabilities(args) => capabilities::run(args),
        Command::Policies(args) => policies::run(args),
        Command::Key(args) => key::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Server(args) => server::run(args),
        Command::Vault(args) => vault::run(args),
    }
}
