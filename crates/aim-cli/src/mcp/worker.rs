//! The vault thread: owns the open vault and the one unlocked session, and runs the MCP
//! server's requests on them one at a time (a `Session` borrows its `Vault` and holds a SQLite
//! connection, so it lives on one thread; gates such as the AIM approver may block it while a
//! person decides).

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};
use vault_store::Session;

use super::McpVaultArgs;

/// A request for the vault thread.
type Job = Box<dyn for<'v> FnOnce(&mut Session<'v>) + Send>;

/// The MCP side's handle on the vault thread. The thread closes the session and ends when the
/// last handle is dropped.
#[derive(Clone)]
pub(crate) struct VaultHandle {
    jobs: mpsc::Sender<Job>,
}

/// The vault thread stopped (it only does when the session failed to close or panicked).
#[derive(Debug, thiserror::Error)]
#[error("the vault thread has stopped")]
pub(crate) struct VaultGone;

impl VaultHandle {
    /// Opens the vault and unlocks the profile on a new thread; returns once unlocked (or with
    /// the reason it could not be).
    pub(crate) fn start(args: McpVaultArgs) -> Result<(Self, JoinHandle<Result<()>>)> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name("aim-mcp-vault".into())
            .spawn(move || serve(&args, &inbox, &ready_tx))
            .map_err(|e| anyhow!("cannot start the vault thread: {e}"))?;
        match ready.recv() {
            Ok(Ok(())) => Ok((Self { jobs }, thread)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow!("the vault thread stopped while unlocking")),
        }
    }

    /// Runs `f` on the session and returns its result.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, VaultGone>
    where
        T: Send + 'static,
        F: for<'v> FnOnce(&mut Session<'v>) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.jobs.send(job).map_err(|_| VaultGone)?;
        rx.await.map_err(|_| VaultGone)
    }
}

/// The thread's body: unlock once, answer jobs until every handle is gone, close.
fn serve(
    args: &McpVaultArgs,
    inbox: &mpsc::Receiver<Job>,
    ready: &mpsc::SyncSender<Result<()>>,
) -> Result<()> {
    let vault = match args.open() {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    let mut session = match args.unlock(&vault) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(job) = inbox.recv() {
        job(&mut session);
    }
    Ok(session.close()?)
}
