//! `aim mcp`: MCP servers. `aim mcp vault` serves the memory vault to any MCP client over stdio.

mod errors;
mod http;
mod hygiene;
mod tools;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use rmcp::ServiceExt;
use vault_store::{Gates, KeySource, Session, Vault};

use crate::vault::aim_approver::AimServerApprover;
use crate::vault::secrets::{self, Source};
use tools::VaultServer;

pub(crate) use hygiene::{HygieneRule, Rule};

/// Serve AIM over the Model Context Protocol.
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    #[command(subcommand)]
    command: McpCommand,
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// The memory vault as an MCP server on stdin/stdout (tools: store, recall, search, list,
    /// tombstone). Unlocks the profile once at start; never prompts on the MCP channel.
    ///
    /// Example (in an MCP client's configuration):
    /// `aim mcp vault --vault ~/.aim/vault.db --profile agent --keyfile ~/.aim/agent.key --aim-agent my-agent`
    Vault(McpVaultArgs),
}

/// `aim mcp vault` options: the same vault and unlock options as `aim vault`, plus the
/// memory-hygiene rules applied to every store.
#[derive(Debug, Args)]
pub(crate) struct McpVaultArgs {
    /// The vault file (default `~/.aim/vault.db`).
    #[arg(long, env = "AIM_VAULT", value_name = "PATH")]
    vault: Option<PathBuf>,
    /// The profile to unlock.
    #[arg(long, short = 'p', default_value = "agent")]
    profile: String,
    /// Read the passphrase from this file descriptor (e.g. `3` with `3<file`). Without it,
    /// `--keyfile` or `--tpm`, the passphrase is asked once on the controlling terminal
    /// (`/dev/tty`), never on stdin.
    #[arg(long, value_name = "N")]
    passphrase_fd: Option<u32>,
    /// Unlock with this key file (exactly 32 bytes, mode 0600).
    #[arg(long, value_name = "PATH", conflicts_with = "passphrase_fd")]
    keyfile: Option<PathBuf>,
    /// Unlock with the TPM the profile was sealed to (TCTI from `AIM_TPM_TCTI`).
    #[cfg(feature = "tpm")]
    #[arg(long, conflicts_with_all = ["passphrase_fd", "keyfile"])]
    tpm: bool,
    /// Ask the AIM server, as this registered agent, for a person's approval of recalls that
    /// need one (level 3 and up). Without it such recalls are refused with an MCP error that
    /// says so. Settings come from `AIM_SERVER`, `AIM_HOME`, `AIM_PASSPHRASE`, ...
    #[arg(long, env = "AIM_AGENT", value_name = "NAME")]
    aim_agent: Option<String>,
    /// What a store containing something that looks like a secret (API key, private key,
    /// token) gets: `refuse`, or `elevate` to --elevate-to.
    #[arg(long, value_enum, default_value = "refuse")]
    on_secret: Rule,
    /// What a store containing prompt-injection markers gets: `refuse`, or `elevate`.
    #[arg(long, value_enum, default_value = "elevate")]
    on_injection: Rule,
    /// The classification an elevated store is raised to (at least; 3 = recall needs a
    /// person's approval).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=5))]
    elevate_to: u8,
    /// Serve MCP streamable HTTP at `http://ADDR/mcp` instead of stdio (e.g. `127.0.0.1:8765`).
    /// A non-loopback address needs --token-fd.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// With --http: read the bearer token every request must carry from this file descriptor.
    #[arg(long, value_name = "N", requires = "http")]
    token_fd: Option<u32>,
}

/// Runs `aim mcp ...`.
pub(crate) fn run(args: McpArgs) -> Result<()> {
    match args.command {
        McpCommand::Vault(args) => serve_vault(args),
    }
}

impl McpVaultArgs {
    fn path(&self) -> Result<PathBuf> {
        match &self.vault {
            Some(p) => Ok(p.clone()),
            None => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| anyhow!("HOME is not set; pass --vault PATH"))?;
                Ok(PathBuf::from(home).join(".aim").join("vault.db"))
            }
        }
    }

    fn key_source(&self) -> Result<KeySource> {
        if let Some(k) = &self.keyfile {
            return Ok(KeySource::key_file(k));
        }
        #[cfg(feature = "tpm")]
        if self.tpm {
            return Ok(KeySource::external(Arc::new(
                vault_hw::tpm::TpmKeySource::from_env(),
            )));
        }
        let source = self.passphrase_fd.map_or(Source::Prompt, Source::Fd);
        Ok(KeySource::passphrase(secrets::read(
            source,
            &format!("Passphrase for profile `{}`", self.profile),
        )?))
    }

    /// The gates: the AIM server as approver with `--aim-agent`, else none (approval-gated
    /// recalls are refused, never asked on a terminal). No presence check is plugged in: a
    /// person cannot be present through an MCP client, so level 5 is refused. Boundary daemons
    /// come from the profile's authenticated configuration.
    fn gates(&self) -> Gates {
        match self.aim_agent.as_deref() {
            Some(agent) => Gates::new().approver(Arc::new(AimServerApprover::new(agent))),
            None => Gates::new(),
        }
    }

    fn hygiene(&self) -> HygieneRule {
        HygieneRule {
            on_secret: self.on_secret,
            on_injection: self.on_injection,
            elevate_to: self.elevate_to,
        }
    }

    /// Opens the vault (on the calling thread).
    fn open(&self) -> Result<Vault> {
        let path = self.path()?;
        Vault::options()
            .gates(self.gates())
            .open_existing(&path)
            .with_context(|| format!("cannot open the vault at {}", path.display()))
    }

    /// Opens the vault and unlocks the profile once (on the calling thread).
    fn unlock<'v>(&self, vault: &'v Vault) -> Result<Session<'v>> {
        Ok(vault.unlock(&self.profile, self.key_source()?)?)
    }
}

/// Unlocks the vault on its own thread, then serves MCP on stdio until the client leaves (or
/// over HTTP with `--http` until Ctrl-C).
fn serve_vault(args: McpVaultArgs) -> Result<()> {
    init_logging();
    let identity = tools::ServerIdentity {
        profile: args.profile.clone(),
        aim_agent: args.aim_agent.clone(),
    };
    let hygiene = args.hygiene();
    let http = match args.http {
        Some(addr) => {
            let token = args
                .token_fd
                .map(|fd| secrets::read(Source::Fd(fd), "bearer token"))
                .transpose()?;
            Some((addr, token))
        }
        None => None,
    };
    let (handle, thread) = worker::VaultHandle::start(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        match http {
            Some((addr, token)) => {
                let make = move || VaultServer::new(handle.clone(), identity.clone(), hygiene);
                http::serve(addr, token, make).await
            }
            None => serve_stdio(VaultServer::new(handle, identity, hygiene)).await,
        }
    });
    runtime.shutdown_background();
    let closed = thread
        .join()
        .map_err(|_| anyhow!("the vault thread panicked"))?;
    served.and(closed)
}

/// Serves one MCP session on stdin/stdout until the client leaves.
async fn serve_stdio(server: VaultServer) -> Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow!("MCP initialisation failed: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| anyhow!("MCP server stopped: {e}"))?;
    Ok(())
}

/// Logs go to stderr (stdout is the MCP channel), filtered by `AIM_LOG` (default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rmcp::service=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
