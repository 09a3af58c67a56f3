//! Starting, embedding and stopping the server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::init::{InitOutput, create_organization};
use crate::metrics::Metrics;
use crate::state::{AppState, Inner};
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
        let metrics = Arc::new(Metrics::default());
        let (db, writer_task) = Db::open(&config, Arc::clone(&metrics)).await?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
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
        let state = AppState(Arc::new(Inner {
            config,
            db,
            metrics,
            public_url,
            decisions: Default::default(),
            legacy_replay_until_ms,
        }));
        let app = routes::router(state.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut serve_stop = stop_rx.clone();
        let serve_task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = serve_stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        let sweep_task = tokio::spawn(sweep::run(state.clone(), stop_rx));
        tracing::info!(%addr, "AIM server listening");
        Ok(RunningServer {
            addr,
            state: Some(state),
            stop_tx,
            serve_task,
            sweep_task,
            writer_task,
        })
    }
}

/// A server running in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
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

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
