//! Server configuration and the injectable clock.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request body accepted (1 MiB); larger bodies get 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// The server reads time only through this trait, so tests can move time forward (pending
/// verification expiry, signature freshness, key-rotation grace) without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to: for tests.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock set to `ms` milliseconds since the epoch.
    pub fn new(ms: i64) -> Self {
        Self {
            ms: AtomicI64::new(ms),
        }
    }

    /// A clock set to the current system time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_ms())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let add = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ms.fetch_add(add, Ordering::SeqCst);
    }

    /// Sets the clock to `ms` milliseconds since the epoch.
    pub fn set_ms(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs to run. Build with [`ServerConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory holding the SQLite database (`aim.db`); created when missing.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (see [`crate::RunningServer::addr`]).
    pub addr: SocketAddr,
    /// How long a pending verification waits for a person before it expires.
    pub pending_ttl: Duration,
    /// How long an approval stays valid (`expires_at` in approved answers).
    pub approval_ttl: Duration,
    /// Accepted clock skew for signed requests and verification timestamps (± this).
    pub signature_window: Duration,
    /// Default grace period during which an agent's previous key still verifies after rotation.
    pub key_rotation_grace: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time limit for one request.
    pub request_timeout: Duration,
    /// Number of read connections (the single writer is separate).
    pub read_connections: u32,
    /// Most writes committed in one transaction (group commit).
    pub max_batch: usize,
    /// How often expired pending verifications and replay-guard rows are swept.
    pub sweep_interval: Duration,
    /// Base URL returned to registering agents as `aim_url`; defaults to `http://<addr>`.
    pub public_url: Option<String>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// TLS certificate and key (PEM files); `None` serves plaintext HTTP, which
    /// [`crate::Server::start`] allows only on a loopback address or with `behind_proxy`.
    pub tls: Option<TlsFiles>,
    /// A TLS-terminating proxy forwards to this server: plaintext on a non-loopback address is
    /// allowed, and `X-Forwarded-For` is believed from the `trusted_proxies` only.
    pub behind_proxy: bool,
    /// Peers whose `X-Forwarded-For` header names the client (only with `behind_proxy`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Timeouts, connection caps and rate limits of the network edge.
    pub limits: Limits,
    /// Bearer token that `/metrics` on the API listener requires; without one (and without
    /// `metrics_addr`) the API listener does not serve metrics.
    pub metrics_token: Option<MetricsToken>,
    /// A separate listener serving only `/metrics` (keep it on a private address).
    pub metrics_addr: Option<SocketAddr>,
}

/// PEM files of the server's TLS certificate chain and private key. They are read at start and
/// read again when they change (checked every `reload_interval`) or on `SIGHUP`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files' modification times are checked.
    pub reload_interval: Duration,
}

impl TlsFiles {
    /// Certificate and key paths, checked for changes every 10 s.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: Duration::from_secs(10),
        }
    }
}

/// The `/metrics` bearer token; never shown in `Debug` output.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Wraps a token; it must be at least 16 characters (it guards every tenant's counters).
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.trim().len() < 16 {
            return Err("the metrics token must be at least 16 characters".into());
        }
        Ok(Self(token.trim().to_owned()))
    }

    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// A token-bucket rate: `per_second` sustained, up to `burst` at once. `per_second == 0`
/// switches the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl Rate {
    /// `per_second` sustained with a burst of `burst`.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// No limit.
    pub const OFF: Rate = Rate::new(0, 0);
}

/// Limits of the network edge. The defaults hold a 64-agent load from one host (the load test:
/// ≈ 5,000 verifications/s, ≈ 80/s per agent) with room to spare.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's headers must arrive within this time (slowloris).
    pub header_read_timeout: Duration,
    /// A connection that sends and receives nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Most open connections; more are closed at once.
    pub max_connections: usize,
    /// Most open connections from one client address (trusted proxies exempt).
    pub max_connections_per_address: usize,
    /// Requests per client address (IPv6: per /64).
    pub per_address: Rate,
    /// Requests per API key (requests refused with 401 are not counted).
    pub per_api_key: Rate,
    /// Requests per agent (`X-Agent-ID`; requests refused with 401 are not counted).
    pub per_agent: Rate,
    /// Largest body of `POST /api/v1/sdk-api/verifications` (checked before any signature).
    pub max_verification_body_bytes: usize,
    /// Most pending capability requests one agent may have open at once.
    pub max_open_capability_requests_per_agent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_address: 256,
            per_address: Rate::new(10_000, 20_000),
            per_api_key: Rate::new(1_000, 2_000),
            per_agent: Rate::new(300, 600),
            max_verification_body_bytes: 128 * 1024,
            max_open_capability_requests_per_agent: 20,
        }
    }
}

impl ServerConfig {
    /// Defaults: listen on 127.0.0.1:8080, pending verifications expire after 15 minutes,
    /// approvals last 24 hours, ±300 s signature window, 24 h key-rotation grace, 1 MiB bodies,
    /// 30 s request timeout.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            pending_ttl: Duration::from_secs(15 * 60),
            approval_ttl: Duration::from_secs(24 * 3600),
            signature_window: Duration::from_secs(300),
            key_rotation_grace: Duration::from_secs(24 * 3600),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(30),
            read_connections: 4,
            max_batch: 512,
            sweep_interval: Duration::from_secs(30),
            public_url: None,
            clock: Arc::new(SystemClock),
            tls: None,
            behind_proxy: false,
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            metrics_token: None,
            metrics_addr: None,
        }
    }

    /// Same configuration listening on `addr`.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Same configuration with another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Path of the SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("aim.db")
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        clock.set_ms(10);
        assert_eq!(clock.now_ms(), 10);
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = ServerConfig::new("/tmp/x");
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.database_path(), PathBuf::from("/tmp/x/aim.db"));
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
