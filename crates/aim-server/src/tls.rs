//! TLS with rustls (the aws-lc-rs provider reqwest already brings, so there is one crypto
//! provider in the process). The certificate and key are PEM files, read at start and read again
//! when their modification times change or on `SIGHUP`; a reload that fails keeps the previous
//! certificate and logs why.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// The current TLS configuration, replaced when the files change.
#[derive(Debug)]
pub(crate) struct TlsSource {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
    stamps: RwLock<Stamps>,
}

/// Modification times of the certificate and key files.
type Stamps = (Option<SystemTime>, Option<SystemTime>);

fn stamps(files: &TlsFiles) -> Stamps {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

/// Reads the PEM files into a rustls server configuration.
fn load(files: &TlsFiles) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Config(format!(
                "cannot read the TLS certificate {}: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "the TLS certificate file {} holds no PEM certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        Error::Config(format!(
            "cannot read the TLS private key {}: {e}",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Config(format!(
                "the TLS certificate {} and key {} do not form a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    // HTTP/1.1 only (see `listen`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl TlsSource {
    /// Reads the files; fails when they are missing or unusable.
    pub(crate) fn open(files: &TlsFiles) -> Result<Arc<Self>> {
        let before = stamps(files);
        let config = load(files)?;
        Ok(Arc::new(Self {
            files: files.clone(),
            current: RwLock::new(Arc::new(config)),
            stamps: RwLock::new(before),
        }))
    }

    /// An acceptor with the current certificate.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        TlsAcceptor::from(config)
    }

    /// Reads the files again when their modification times changed (or when `force`).
    /// Returns whether a new certificate is in use.
    pub(crate) fn reload(&self, force: bool) -> Result<bool> {
        let now = stamps(&self.files);
        let unchanged = self.stamps.read().map(|s| *s == now).unwrap_or(false);
        if unchanged && !force {
            return Ok(false);
        }
        let config = load(&self.files)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(config);
        }
        if let Ok(mut s) = self.stamps.write() {
            *s = now;
        }
        Ok(true)
    }

    /// Reloads on file changes and on `SIGHUP` until `stop`.
    pub(crate) async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.files.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hup = sighup();
        loop {
            let force = tokio::select! {
                _ = tick.tick() => false,
                _ = next_hup(&mut hup) => true,
                _ = stop.wait_for(|s| *s) => return,
            };
            match self.reload(force) {
                Ok(true) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; still serving the previous certificate")
                }
            }
        }
    }
}

#[cfg(unix)]
type Hup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hup = Option<()>;

#[cfg(unix)]
fn sighup() -> Hup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are reloaded on change only");
            None
        }
    }
}

#[cfg(not(unix))]
fn sighup() -> Hup {
    None
}

async fn next_hup(hup: &mut Hup) {
    #[cfg(unix)]
    if let Some(s) = hup
        && s.recv().await.is_some()
    {
        return;
    }
    let _ = hup;
    std::future::pending::<()>().await
}
