//! The `aim` command: identity server, agents, approvals, detection and the memory vault.

use clap::Parser;

/// Agent identity and memory security.
#[derive(Debug, Parser)]
#[command(name = "aim", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
