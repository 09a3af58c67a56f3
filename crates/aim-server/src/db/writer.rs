//! Group commit: one task owns the write connection and commits the writes of many requests in
//! one transaction (one fsync), answering each request only after its batch committed.
//!
//! Each job runs inside its own SAVEPOINT, so a job that fails (say, a replayed signature hitting
//! the replay guard's primary key) rolls back alone while the rest of the batch commits.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Called once the batch holding a job has committed (`None`) or failed (`Some`).
type Completion = Box<dyn FnOnce(Option<&Error>) + Send>;

/// A unit of work for the writer: runs against the write connection inside the batch's
/// transaction and returns how to answer its caller once the batch is durable.
pub(crate) struct Job(Box<RunJob>);

/// The body of a [`Job`].
type RunJob = dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Completion> + Send;

/// Handle to the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer task on `conn`.
    pub(crate) fn spawn(
        conn: SqliteConnection,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let handle = tokio::spawn(run(conn, rx, max_batch.max(1), metrics));
        (Self { tx }, handle)
    }

    /// Runs `f` in the next batch and returns its result once the batch is committed.
    /// If `f` fails, its writes are rolled back and its error returned; other jobs of the batch
    /// are unaffected.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job = Job(Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let outcome = run_in_savepoint(conn, f).await;
                let completion: Completion = Box::new(move |commit: Option<&Error>| {
                    let answer = match (commit, outcome) {
                        (None, outcome) => outcome,
                        (Some(_), Err(e)) => Err(e),
                        (Some(e), Ok(_)) => Err(Error::Unavailable(format!(
                            "the write could not be committed: {}",
                            e.public_message()
                        ))),
                    };
                    // The caller may have gone away (timeout); nothing to do then.
                    let _ = done_tx.send(answer);
                });
                completion
            })
        }));
        self.tx
            .send(job)
            .await
            .map_err(|_| Error::Unavailable("the server is shutting down".into()))?;
        done_rx
            .await
            .map_err(|_| Error::Unavailable("the write was abandoned (database failure)".into()))?
    }
}

async fn run_in_savepoint<T, F>(conn: &mut SqliteConnection, f: F) -> Result<T>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>>,
{
    sqlx::query("SAVEPOINT job").execute(&mut *conn).await?;
    let outcome = f(conn).await;
    let finish = if outcome.is_ok() {
        sqlx::query("RELEASE job").execute(&mut *conn).await
    } else {
        match sqlx::query("ROLLBACK TO job").execute(&mut *conn).await {
            Ok(_) => sqlx::query("RELEASE job").execute(&mut *conn).await,
            Err(e) => Err(e),
        }
    };
    match (outcome, finish) {
        (Ok(v), Ok(_)) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    metrics: Arc<Metrics>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics.observe_batch(jobs.len());
        let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, jobs = jobs.len(), "cannot begin a write transaction");
                // Dropping the jobs drops their answer channels: callers get 503.
                jobs.clear();
                continue;
            }
        };
        let mut completions = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            completions.push((job.0)(&mut tx).await);
        }
        match tx.commit().await {
            Ok(()) => {
                for c in completions {
                    c(None);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch commit failed");
                let err = Error::Database(e);
                for c in completions {
                    c(Some(&err));
                }
            }
        }
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the write connection failed");
    }
}
