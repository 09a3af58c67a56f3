//! A software TPM (`swtpm`) on loopback ports with a fresh state directory: for tests and
//! demonstrations of TPM key sources on machines without a TPM (feature `tpm`).
//!
//! A fresh state is a different TPM: a blob sealed by one [`SoftwareTpm`] never opens on
//! another. The process is killed when the value is dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tpm::TpmKeySource;
use crate::{HwError, Result};

/// A running `swtpm socket --tpm2` process; killed when dropped.
#[derive(Debug)]
pub struct SoftwareTpm {
    child: Child,
    port: u16,
    /// Removed when dropped, after the process is killed.
    _state: tempfile::TempDir,
}

impl SoftwareTpm {
    /// Starts `swtpm` with a new state directory under the system's temporary directory, on two
    /// free adjacent loopback ports, and waits (up to 10 s) until it listens.
    pub fn start() -> Result<Self> {
        if Command::new("swtpm").arg("--version").output().is_err() {
            return Err(HwError::Unavailable(
                "swtpm is not installed: run `cargo xtask system-deps` (or `apt-get install swtpm swtpm-tools`)"
                    .into(),
            ));
        }
        for _ in 0..5 {
            let state = tempfile::Builder::new()
                .prefix("aim-swtpm-")
                .tempdir()
                .map_err(|e| HwError::Unavailable(format!("cannot create a TPM state dir: {e}")))?;
            let port = free_port_pair()?;
            let child = Command::new("swtpm")
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", state.path().display()))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| HwError::Unavailable(format!("cannot start swtpm: {e}")))?;
            let mut tpm = Self {
                child,
                port,
                _state: state,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = tpm.child.try_wait() {
                    break; // exited (a port was taken meanwhile): try other ports
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(tpm);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(HwError::Unavailable(
            "swtpm did not start listening on loopback".into(),
        ))
    }

    /// The TCTI string that reaches this TPM (`swtpm:host=127.0.0.1,port=P`).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// A key source sealing to this TPM.
    pub fn key_source(&self) -> TpmKeySource {
        TpmKeySource::new(self.tcti())
    }
}

impl Drop for SoftwareTpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port `p` such that `p` and `p + 1` are free on 127.0.0.1 (swtpm's server and control).
fn free_port_pair() -> Result<u16> {
    for _ in 0..50 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| HwError::Unavailable(format!("cannot bind a loopback port: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| HwError::Unavailable(e.to_string()))?
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(HwError::Unavailable(
        "no two adjacent free ports on 127.0.0.1".into(),
    ))
}
