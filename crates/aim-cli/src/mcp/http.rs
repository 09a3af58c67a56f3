//! `aim mcp vault --http ADDR`: the same server over MCP streamable HTTP at `/mcp`. Loopback
//! addresses may go without a token (rmcp also checks the `Host` header against loopback names
//! there, against DNS rebinding); any other address needs a bearer token (`--token-fd N`), and
//! when a token is given every request must carry `Authorization: Bearer <token>` (compared in
//! constant time) or gets 401.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use vault_store::SecretBytes;

use super::tools::VaultServer;

/// Serves `make()` sessions on `addr` until Ctrl-C.
pub(crate) async fn serve(
    addr: SocketAddr,
    token: Option<SecretBytes>,
    make: impl Fn() -> VaultServer + Send + Sync + 'static,
) -> Result<()> {
    if !addr.ip().is_loopback() && token.is_none() {
        bail!("--http {addr} is not a loopback address: give a bearer token with --token-fd N");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let mut config = StreamableHttpServerConfig::default();
    if !local.ip().is_loopback() {
        // Reached by names we cannot list; the bearer token is the gate.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(make()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut app = axum::Router::new().nest_service("/mcp", service);
    if let Some(token) = token {
        let token = Arc::new(token);
        app = app.layer(axum::middleware::from_fn(move |req, next| {
            let token = token.clone();
            async move { bearer(&token, req, next).await }
        }));
    }
    eprintln!("aim mcp vault listening on http://{local}/mcp");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the HTTP server failed")
}

/// Lets the request through only with `Authorization: Bearer <token>`.
async fn bearer(token: &SecretBytes, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(g) if bool::from(g.ct_eq(token.expose())) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required",
        )
            .into_response(),
    }
}
