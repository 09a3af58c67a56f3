//! Starting, embedding and stopping the server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::init::{InitOutput, create_organization};
use crate::listen::{self, Edge};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::state::{AppState, Inner};
use crate::tls::TlsSource;
use crate::{routes, sweep};

/// Entry point: `Server::start(config).await` opens the database, applies migrations, binds the
/// listener and serves until [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts serving on `config.addr` (port 0 picks a free port).
    pub async fn start(config: ServerConfig) -> Result<RunningServer> {
        if config.max_body_bytes == 0 {
            return Err(Error::Config("max_body_bytes must be positive".into()));
        }
        check_exposure(&config)?;
        let tls = config.tls.as_ref().map(TlsSource::open).transpose()?;
        let metrics = Arc::new(Metrics::default());
        let (db, writer_task) = Db::open(&config, Arc::clone(&metrics)).await?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let origin = aim_crypto::request_v2::origin_of(&public_url).map_err(|e| {
            Error::Config(format!("public URL {public_url} has no usable origin: {e}"))
        })?;
        let metrics_listener = match config.metrics_addr {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
            None => None,
        };
        // Verifications recorded by a version that stored bare-digest replay keys (they sort
        // before every current `t…` key): such a signature can be replayed only while it is
        // fresh, i.e. if signed before now + window.
        let (legacy,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM verifications WHERE body_signature_hash < 't')",
        )
        .fetch_one(&db.read)
        .await?;
        let legacy_replay_until_ms = if legacy {
            config.clock.now_ms() + crate::config::duration_ms(config.signature_window)
        } else {
            0
        };
        let rate_limits = RateLimits::new(&config);
        let state = AppState(Arc::new(Inner {
            config,
            db,
            metrics,
            public_url,
            decisions: Default::default(),
            legacy_replay_until_ms,
            rate_limits,
            origin,
        }));
        let app = routes::router(state.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let edge = Edge::new(&state.config, tls.clone(), Arc::clone(&state.metrics));
        let serve_task = tokio::spawn(listen::serve(listener, app, edge, stop_rx.clone()));
        let mut metrics_addr = None;
        if let Some(l) = metrics_listener {
            metrics_addr = Some(l.local_addr()?);
            let edge = Edge::new(&state.config, tls.clone(), Arc::clone(&state.metrics));
            let app = routes::metrics_router(state.clone());
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                if let Err(e) = listen::serve(l, app, edge, stop).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        if let Some(tls) = tls {
            tokio::spawn(tls.watch(stop_rx.clone()));
        }
        let sweep_task = tokio::spawn(sweep::run(state.clone(), stop_rx));
        tracing::info!(%addr, "AIM server listening");
        tracing::info!("{}", exposure_note(&state.config, addr, metrics_addr));
        Ok(RunningServer {
            addr,
            scheme,
            metrics_addr,
            state: Some(state),
            stop_tx,
            serve_task,
            sweep_task,
            writer_task,
        })
    }
}

/// Refuses plaintext on an address other machines can reach, unless a TLS-terminating proxy is
/// declared in front.
fn check_exposure(config: &ServerConfig) -> Result<()> {
    if config.tls.is_some() || config.behind_proxy {
        return Ok(());
    }
    let addrs =
        std::iter::once(("API", config.addr)).chain(config.metrics_addr.map(|a| ("metrics", a)));
    for (what, addr) in addrs {
        if !addr.ip().is_loopback() {
            return Err(Error::Config(format!(
                "refusing to serve the {what} listener on {addr} without TLS: agent signatures \
                 and API keys would cross the network in clear. Give --tls-cert and --tls-key \
                 (PEM files), or --behind-proxy (with --trusted-proxy ADDRESS) when a \
                 TLS-terminating proxy forwards to this server, or listen on a loopback address"
            )));
        }
    }
    Ok(())
}

/// One start-up line saying how the server is exposed and why that is allowed.
fn exposure_note(config: &ServerConfig, addr: SocketAddr, metrics: Option<SocketAddr>) -> String {
    let transport = match (&config.tls, config.behind_proxy) {
        (Some(t), _) => format!(
            "TLS on {addr} with {} (reloaded when it changes or on SIGHUP)",
            t.cert.display()
        ),
        (None, true) if config.trusted_proxies.is_empty() => format!(
            "plaintext on {addr} behind a proxy; no --trusted-proxy given, so X-Forwarded-For is ignored and limits apply per proxy address"
        ),
        (None, true) => format!(
            "plaintext on {addr} behind a proxy; X-Forwarded-For is believed from {:?} only",
            config.trusted_proxies
        ),
        (None, false) => format!("plaintext on loopback address {addr} only (no TLS configured)"),
    };
    let metrics = match (metrics, &config.metrics_token) {
        (Some(m), _) => format!("/metrics on its own listener {m}"),
        (None, Some(_)) => "/metrics requires the metrics token".to_owned(),
        (None, None) => "/metrics is not served (no --metrics-token or --metrics-addr)".to_owned(),
    };
    format!("{transport}; {metrics}")
}

/// A server running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    scheme: &'static str,
    metrics_addr: Option<SocketAddr>,
    state: Option<AppState>,
    stop_tx: watch::Sender<bool>,
    serve_task: JoinHandle<std::io::Result<()>>,
    sweep_task: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or `https://<addr>` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The address of the separate metrics listener, when one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Creates another organization with its admin and an admin API key (through the server's
    /// writer, so it works while serving). For tests of tenant isolation and for operators.
    pub async fn create_organization(&self, name: &str, admin_email: &str) -> Result<InitOutput> {
        let state = self
            .state
            .as_ref()
            .ok_or_else(|| Error::Unavailable("the server is stopped".into()))?;
        let now = state.now_ms();
        let name = name.to_owned();
        let email = admin_email.to_owned();
        state
            .db
            .writer
            .write(move |conn| {
                Box::pin(async move { create_organization(conn, now, &name, &email).await })
            })
            .await
    }

    /// Stops accepting connections, lets in-flight requests finish, flushes the writer and
    /// closes the database.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop_tx.send(true);
        let served = (&mut self.serve_task)
            .await
            .map_err(|e| Error::Internal(format!("server task failed: {e}")))?;
        let _ = (&mut self.sweep_task).await;
        // Dropping the last state handle drops the writer's sender; the writer then drains and
        // closes the connection.
        if let Some(state) = self.state.take() {
            state.db.read.close().await;
            drop(state);
        }
        let _ = (&mut self.writer_task).await;
        served.map_err(Error::Io)
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> Result<()> {
        signal.await;
        self.shutdown().await
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // A server dropped without `shutdown` still stops serving.
        let _ = self.stop_tx.send(true);
    }
}
