//! The accept loop: connection caps (in total and per client address), a header-read timeout
//! and an idle timeout (slowloris), optional TLS, and the peer address of every request.
//!
//! HTTP/1.1 only: hyper's header-read timeout then runs from the first byte the server waits
//! for, with no protocol-sniffing phase a slow client could stretch.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::config::{Limits, ServerConfig};
use crate::metrics::Metrics;
use crate::ratelimit::Peer;
use crate::tls::TlsSource;

/// What every connection of one listener shares.
#[derive(Debug)]
pub(crate) struct Edge {
    limits: Limits,
    trusted_proxies: Vec<IpAddr>,
    tls: Option<Arc<TlsSource>>,
    connections: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    metrics: Arc<Metrics>,
}

impl Edge {
    /// The edge of a server with `config`, serving TLS from `tls` when given.
    pub(crate) fn new(
        config: &ServerConfig,
        tls: Option<Arc<TlsSource>>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits: config.limits.clone(),
            trusted_proxies: if config.behind_proxy {
                config.trusted_proxies.clone()
            } else {
                Vec::new()
            },
            tls,
            connections: Arc::new(Semaphore::new(config.limits.max_connections.max(1))),
            per_address: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// A slot for a new connection from `ip`, or `None` when a limit is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let permit = Arc::clone(&self.connections).try_acquire_owned().ok()?;
        if self.trusted_proxies.contains(&ip) {
            return Some(Slot {
                _permit: permit,
                address: None,
            });
        }
        let mut map = self.per_address.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= self.limits.max_connections_per_address {
            return None;
        }
        *n += 1;
        Some(Slot {
            _permit: permit,
            address: Some((Arc::clone(self), ip)),
        })
    }
}

/// An admitted connection; dropping it frees its places.
struct Slot {
    _permit: OwnedSemaphorePermit,
    address: Option<(Arc<Edge>, IpAddr)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((edge, ip)) = &self.address
            && let Ok(mut map) = edge.per_address.lock()
            && let Some(n) = map.get_mut(ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop`, then lets open connections finish (at most 30 s).
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    edge: Arc<Edge>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            stopped = stop.wait_for(|s| *s) => {
                drop(stopped);
                None
            }
        };
        let (tcp, peer) = match accepted {
            None => break,
            Some(Ok(pair)) => pair,
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = edge.admit(peer.ip()) else {
            edge.metrics.connection_refused();
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            peer,
            app: app.clone(),
            edge: Arc::clone(&edge),
            stop: stop.clone(),
        };
        let open = open_rx.clone();
        tokio::spawn(async move {
            conn.run(tcp).await;
            drop(slot);
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    let _ = tokio::time::timeout(Duration::from_secs(30), open_tx.closed()).await;
    Ok(())
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    app: axum::Router,
    edge: Arc<Edge>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, tcp: TcpStream) {
        let Some(tls) = self.edge.tls.clone() else {
            return self.http(tcp).await;
        };
        let handshake = tls.acceptor().accept(tcp);
        match tokio::time::timeout(self.edge.limits.header_read_timeout, handshake).await {
            Ok(Ok(stream)) => self.http(stream).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn http<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let io = Tracked {
            inner: io,
            started,
            last: Arc::clone(&activity),
        };
        let peer = self.peer;
        let app = self.app.clone();
        let busy = Arc::clone(&in_flight);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            let app = app.clone();
            let guard = InFlight::enter(&busy);
            async move {
                let response = app.oneshot(req.map(Body::new)).await;
                drop(guard);
                response
            }
        });
        let limits = &self.edge.limits;
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle = limits.idle_timeout;
        let mut check = tokio::time::interval((idle / 4).max(Duration::from_millis(20)));
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                stopped = self.stop.wait_for(|s| *s), if !closing => {
                    drop(stopped);
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = check.tick() => {
                    let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                    let quiet = started.elapsed().saturating_sub(last);
                    if quiet >= idle && in_flight.load(Ordering::Relaxed) == 0 {
                        tracing::debug!(peer = %peer, "closing an idle connection");
                        return;
                    }
                }
            }
        }
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that records when bytes last moved (for the idle timeout).
struct Tracked<I> {
    inner: I,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<I> Tracked<I> {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
