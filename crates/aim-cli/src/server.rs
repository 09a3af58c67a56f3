//! `aim server`: run the AIM identity server, and `aim server init` to create the first
//! organization, its admin and an admin API key (printed once, on a line of its own).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

/// Run the AIM identity server (`aim server`), or initialize its data directory (`aim server init`).
///
/// On an empty data directory `aim server` initializes it first and prints the admin API key,
/// so one command starts a working server.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    command: Option<ServerCommand>,
    #[command(flatten)]
    serve: ServeOpts,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Create the first organization and admin; prints the admin API key once.
    Init(InitArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct DataDir {
    /// Directory holding the server's SQLite database.
    #[arg(long, env = "AIM_DATA_DIR", default_value = "./aim-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct FirstOrg {
    /// Name of the first organization (used only when initializing).
    #[arg(long, env = "AIM_ORG_NAME", default_value = "default")]
    org_name: String,
    /// E-mail of the first admin (used only when initializing).
    #[arg(long, env = "AIM_ADMIN_EMAIL", default_value = "admin@localhost")]
    admin_email: String,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    org: FirstOrg,
}

#[derive(Debug, Args)]
struct ServeOpts {
    #[command(flatten)]
    data: DataDir,
    /// Address to listen on.
    #[arg(long, env = "AIM_ADDR", default_value = aim_server::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Base URL agents are told to use (`aim_url`); defaults to `http://ADDR`.
    #[arg(long, env = "AIM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds a pending verification waits for a person before it expires.
    #[arg(long, env = "AIM_PENDING_TTL_SECS", default_value_t = 900)]
    pending_ttl_secs: u64,
    /// Log format.
    #[arg(long, env = "AIM_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    edge: EdgeOpts,
    #[command(flatten)]
    org: FirstOrg,
}

/// TLS, proxies, `/metrics` access, timeouts and limits.
#[derive(Debug, Args)]
struct EdgeOpts {
    /// TLS certificate chain (PEM). Reloaded when the file changes or on SIGHUP.
    #[arg(long, env = "AIM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "AIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A TLS-terminating proxy forwards to this server: allows plaintext on a non-loopback address.
    #[arg(long, env = "AIM_BEHIND_PROXY")]
    behind_proxy: bool,
    /// Address of a proxy whose X-Forwarded-For is believed (repeat, or comma-separate in the env).
    #[arg(
        long = "trusted-proxy",
        env = "AIM_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Bearer token `/metrics` requires (at least 16 characters; prefer the environment variable).
    #[arg(long, env = "AIM_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve `/metrics` (only) on this separate address instead.
    #[arg(long, env = "AIM_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "AIM_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, env = "AIM_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Most open connections.
    #[arg(long, env = "AIM_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Most open connections from one client address.
    #[arg(long, env = "AIM_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    max_connections_per_address: usize,
    /// Requests per client address: `PER_SECOND/BURST`, or `off`.
    #[arg(long, env = "AIM_RATE_PER_ADDRESS", default_value = "10000/20000", value_parser = parse_rate)]
    rate_per_address: aim_server::Rate,
    /// Requests per API key: `PER_SECOND/BURST`, or `off`.
    #[arg(long, env = "AIM_RATE_PER_API_KEY", default_value = "1000/2000", value_parser = parse_rate)]
    rate_per_api_key: aim_server::Rate,
    /// Requests per agent: `PER_SECOND/BURST`, or `off`.
    #[arg(long, env = "AIM_RATE_PER_AGENT", default_value = "300/600", value_parser = parse_rate)]
    rate_per_agent: aim_server::Rate,
}

/// Parses `PER_SECOND/BURST`, `PER_SECOND` (burst = 2 × rate) or `off`.
fn parse_rate(text: &str) -> std::result::Result<aim_server::Rate, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(aim_server::Rate::OFF);
    }
    let bad = || format!("`{text}` is not a rate: use PER_SECOND/BURST (e.g. 300/600) or off");
    let (rate, burst) = match text.split_once('/') {
        Some((r, b)) => (
            r.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let r: u32 = text.trim().parse().map_err(|_| bad())?;
            (r, r.saturating_mul(2))
        }
    };
    if rate == 0 || burst == 0 {
        return Err(format!(
            "{}; a zero rate would refuse everything (use off)",
            bad()
        ));
    }
    Ok(aim_server::Rate::new(rate, burst))
}

impl EdgeOpts {
    fn apply(&self, config: &mut aim_server::ServerConfig) -> Result<()> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(aim_server::TlsFiles::new(cert, key));
        }
        config.behind_proxy = self.behind_proxy;
        config.trusted_proxies = self.trusted_proxies.clone();
        if let Some(t) = &self.metrics_token {
            config.metrics_token =
                Some(aim_server::MetricsToken::new(t.as_str()).map_err(anyhow::Error::msg)?);
        }
        config.metrics_addr = self.metrics_addr;
        let l = &mut config.limits;
        l.header_read_timeout = Duration::from_secs(self.header_read_timeout_secs.max(1));
        l.idle_timeout = Duration::from_secs(self.idle_timeout_secs.max(1));
        l.max_connections = self.max_connections.max(1);
        l.max_connections_per_address = self.max_connections_per_address.max(1);
        l.per_address = self.rate_per_address;
        l.per_api_key = self.rate_per_api_key;
        l.per_agent = self.rate_per_agent;
        Ok(())
    }
}

pub(crate) fn run(args: ServerArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        Some(ServerCommand::Init(init)) => runtime.block_on(init_cmd(init)),
        None => {
            init_logging(args.serve.log_format);
            runtime.block_on(serve(args.serve))
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Ignore the error of a second initialization (tests, embedding).
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn print_first_key(out: &aim_server::InitOutput, org: &FirstOrg) {
    println!(
        "Initialized organization '{}' (id {}) with admin {}.",
        org.org_name.trim(),
        out.organization_id,
        org.admin_email.trim()
    );
    println!("Admin API key (shown once; store it now, it cannot be retrieved again):");
    println!("{}", out.admin_api_key.expose());
}

async fn init_cmd(args: InitArgs) -> Result<()> {
    let config = aim_server::ServerConfig::new(&args.data.data_dir);
    let out = aim_server::init(&config, &args.org.org_name, &args.org.admin_email)
        .await
        .with_context(|| format!("initializing {}", args.data.data_dir.display()))?;
    print_first_key(&out, &args.org);
    Ok(())
}

async fn serve(opts: ServeOpts) -> Result<()> {
    let mut config = aim_server::ServerConfig::new(&opts.data.data_dir).with_addr(opts.addr);
    config.public_url = opts.public_url.clone();
    config.pending_ttl = Duration::from_secs(opts.pending_ttl_secs.max(1));
    opts.edge.apply(&mut config)?;
    if !aim_server::is_initialized(&config).await? {
        let out = aim_server::init(&config, &opts.org.org_name, &opts.org.admin_email)
            .await
            .with_context(|| format!("initializing {}", opts.data.data_dir.display()))?;
        print_first_key(&out, &opts.org);
    }
    let server = aim_server::Server::start(config)
        .await
        .with_context(|| format!("starting the server on {}", opts.addr))?;
    println!("AIM server listening on {}", server.url());
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
