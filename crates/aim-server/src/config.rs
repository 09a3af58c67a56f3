//! Server configuration and the injectable clock.

use std::fmt;
use std::net::SocketAddr;
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
