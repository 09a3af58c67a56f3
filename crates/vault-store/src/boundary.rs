//! Client for the Agent-OS boundary daemon: one JSON object per line over a Unix socket.
//!
//! Request: `{"command":"check_recall","params":{"memory_class":N,"memory_id":"..",
//! "requester":"..","justification":".."}}` followed by `\n`. Response: one JSON object with
//! `permitted` (must be the boolean `true` to permit), `reason` and `operational_mode`.
//! Connection failures, timeouts, oversized or malformed answers all deny.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::gates::{Boundary, BoundaryDecision, BoundaryRequest, GateError};

/// Largest answer accepted from the daemon.
pub const MAX_RESPONSE: usize = 65_536;

/// A boundary daemon reached over a Unix socket.
#[derive(Debug, Clone)]
pub struct UnixSocketBoundary {
    path: PathBuf,
    timeout: Duration,
}

impl UnixSocketBoundary {
    /// A client for the daemon at `path` with the default 5-second timeout.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sets the overall timeout of one check.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn exchange(&self, request: &[u8]) -> Result<serde_json::Value, GateError> {
        let deadline = Instant::now() + self.timeout;
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut stream = UnixStream::connect(&self.path).map_err(|e| {
            GateError::Unavailable(format!("cannot connect to {}: {e}", self.path.display()))
        })?;
        let io_err = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                GateError::Timeout(timeout_ms)
            }
            _ => GateError::Unavailable(format!("boundary socket: {e}")),
        };
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(io_err)?;
        stream.write_all(request).map_err(io_err)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(GateError::Timeout(timeout_ms));
            }
            stream.set_read_timeout(Some(left)).map_err(io_err)?;
            let n = stream.read(&mut chunk).map_err(io_err)?;
            if n == 0 {
                return Err(GateError::Protocol(
                    "the daemon closed the connection without an answer".into(),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(GateError::Protocol(format!(
                    "answer longer than {MAX_RESPONSE} bytes"
                )));
            }
            let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) {
                return Ok(v);
            }
            if buf.contains(&b'\n') {
                return Err(GateError::Protocol("the answer line is not JSON".into()));
            }
        }
    }
}

impl Boundary for UnixSocketBoundary {
    fn check_recall(&self, r: &BoundaryRequest) -> Result<BoundaryDecision, GateError> {
        let req = serde_json::json!({
            "command": "check_recall",
            "params": {
                "memory_class": r.classification.level(),
                "memory_id": r.memory_id.to_string(),
                "requester": r.requester,
                "justification": r.justification,
            }
        });
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        let v = self.exchange(&line)?;
        let obj = v
            .as_object()
            .ok_or_else(|| GateError::Protocol("the answer is not a JSON object".into()))?;
        let permitted = obj.get("permitted").and_then(serde_json::Value::as_bool) == Some(true);
        let text = |k: &str| {
            obj.get(k)
                .and_then(serde_json::Value::as_str)
                .map(|s| s.chars().take(200).collect::<String>())
        };
        Ok(BoundaryDecision {
            permitted,
            reason: text("reason").unwrap_or_default(),
            operational_mode: text("operational_mode"),
        })
    }
}
