//! Group commit: one task owns the write connection and commits the writes of many requests in
//! one transaction (one fsync), answering each request only after its batch committed.
//!
//! Each job runs inside its own SAVEPOINT, so a job that fails (say, a replayed signature hitting
//! the replay guard's primary key) rolls back alone while the rest of the batch commits.
//! Chunkable jobs (uniform writes that cannot fail on input, such as recording a verification)
//! are sent to SQLite up to 64 at a time, as a few multi-row statements in one round trip: a
//! round trip to sqlx's connection thread, and each statement's journal of the pages it touches,
//! cost far more than the rows themselves.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{ReplayMark, record_replay};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Called once the batch holding a job has committed (`None`) or failed (`Some`).
pub(crate) type Completion = Box<dyn FnOnce(Option<&Error>) + Send>;

/// A unit of work for the writer: runs against the write connection inside the batch's
/// transaction and returns how to answer its caller once the batch is durable.
pub(crate) enum Job {
    /// Arbitrary statements, run on their own.
    Run(Box<RunJob>),
    /// A uniform statement group that is sent together with its neighbours of the same kind.
    Chunk(Box<dyn ChunkItem>),
}

/// A query under construction.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// A kind of chunkable write: a few multi-row statements that record `n` items at once (one
/// statement per table, not per item: SQLite journals each page a statement touches once per
/// statement, so per-item statements cost a page copy per table per item). The statements never
/// fail on input (they are conditional) and return at most one row per item, whose first
/// column is the item's [`ChunkItem::key`].
#[derive(Debug)]
pub(crate) struct ChunkKind {
    /// Builds `SAVEPOINT chunk; statements for n items; RELEASE chunk`; `optional`: whether the
    /// kind's optional statement is included.
    build: fn(n: usize, optional: bool) -> String,
    /// Statement parts each item binds, in order.
    parts: usize,
    /// The part only run when some item of the chunk needs it.
    optional_part: Option<usize>,
    /// The built strings, by chunk size and `optional`, built on first use (so the statements
    /// stay in the prepared-statement cache).
    sql: [std::sync::OnceLock<String>; 2 * MAX_CHUNK],
}

/// The most items sent in one chunk. A batch is sent as few chunks as possible (one for a batch
/// of up to this many distinct keys): statements, not rows, are what cost.
pub(crate) const MAX_CHUNK: usize = 64;

impl ChunkKind {
    /// A kind whose items bind `parts` statement parts, `optional_part` of which is only run when
    /// needed.
    pub(crate) const fn new(
        build: fn(usize, bool) -> String,
        parts: usize,
        optional_part: Option<usize>,
    ) -> Self {
        Self {
            build,
            parts,
            optional_part,
            sql: [const { std::sync::OnceLock::new() }; 2 * MAX_CHUNK],
        }
    }

    /// The statements for a chunk of `n` items (1 ≤ `n` ≤ [`MAX_CHUNK`]).
    fn sql_for(&self, n: usize, optional: bool) -> &str {
        let n = n.clamp(1, MAX_CHUNK);
        self.sql[(n - 1) * 2 + usize::from(optional)].get_or_init(|| (self.build)(n, optional))
    }
}

/// One item of a chunkable write.
pub(crate) trait ChunkItem: Send {
    /// Its kind (all items sent together share it).
    fn kind(&self) -> &'static ChunkKind;
    /// Items with the same key never share a chunk; the item's result row carries the key in its
    /// first column.
    fn key(&self) -> &str;
    /// Whether this item needs the kind's optional statement.
    fn needs_optional(&self) -> bool;
    /// Binds this item's parameters of statement part `part`, in the order of its placeholders.
    fn bind<'q>(&'q self, part: usize, q: Query<'q>) -> Query<'q>;
    /// Receives this item's result row (`None`: its statements returned none), or the chunk's
    /// error, and says how to answer once the batch committed.
    fn finish(self: Box<Self>, row: Result<Option<sqlx::sqlite::SqliteRow>>) -> Completion;
}

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
        self.submit(move |conn| Box::pin(run_in_savepoint(conn, f)))
            .await
    }

    /// Like [`Writer::write`], for a signed request: first records the signature's replay mark
    /// (if any) in a savepoint of its own, then runs `f` in another. When `f` fails, only its
    /// own writes roll back: the mark stays and commits with the batch, so a signature is
    /// consumed when it is checked, whatever the outcome, and a refused request cannot be
    /// replayed later when it might succeed. A replayed mark fails the job before `f` runs.
    pub(crate) async fn write_signed<T, F>(&self, mark: Option<ReplayMark>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.submit(move |conn| {
            Box::pin(async move {
                if let Some(mark) = mark {
                    run_in_savepoint(conn, move |c: &mut SqliteConnection| {
                        Box::pin(async move { record_replay(c, &mark).await })
                    })
                    .await?;
                }
                run_in_savepoint(conn, f).await
            })
        })
        .await
    }

    /// Queues `f` (which manages its own savepoints) and answers once its batch committed.
    async fn submit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job = Job::Run(Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let outcome = f(conn).await;
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

impl Writer {
    /// Queues a chunkable item; its `finish` answers the caller (through whatever channel the
    /// item carries) once the batch is durable.
    pub(crate) async fn write_chunked(&self, item: Box<dyn ChunkItem>) -> Result<()> {
        self.tx
            .send(Job::Chunk(item))
            .await
            .map_err(|_| Error::Unavailable("the server is shutting down".into()))
    }
}

/// Sends the pending chunkable items of one kind, in chunks of up to [`MAX_CHUNK`] items, one
/// round trip per chunk.
async fn run_chunks(
    conn: &mut SqliteConnection,
    pending: &mut Vec<Box<dyn ChunkItem>>,
    completions: &mut Vec<Completion>,
) {
    let mut items = std::mem::take(pending).into_iter().peekable();
    while items.peek().is_some() {
        let n = items.len().min(MAX_CHUNK);
        let chunk: Vec<Box<dyn ChunkItem>> = items.by_ref().take(n).collect();
        let kind = chunk[0].kind();
        let optional = chunk.iter().any(|i| i.needs_optional());
        let sql = kind.sql_for(n, optional);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for part in 0..kind.parts {
            if kind.optional_part == Some(part) && !optional {
                continue;
            }
            for item in &chunk {
                q = item.bind(part, q);
            }
        }
        match q.fetch_all(&mut *conn).await {
            Ok(rows) => {
                use sqlx::Row;
                let mut rows: Vec<Option<sqlx::sqlite::SqliteRow>> =
                    rows.into_iter().map(Some).collect();
                for item in chunk {
                    let found = rows.iter_mut().find(|r| {
                        r.as_ref()
                            .and_then(|r| r.try_get::<&str, _>(0).ok())
                            .is_some_and(|key| key == item.key())
                    });
                    let row = found.and_then(Option::take);
                    completions.push(item.finish(Ok(row)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "chunked write failed");
                let _ = sqlx::raw_sql("ROLLBACK TO chunk; RELEASE chunk")
                    .execute(&mut *conn)
                    .await;
                for item in chunk {
                    completions.push(item.finish(Err(Error::Unavailable(
                        "the write could not be recorded; retry".into(),
                    ))));
                }
            }
        }
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
        let started = std::time::Instant::now();
        let mut completions = Vec::with_capacity(jobs.len());
        let mut pending: Vec<Box<dyn ChunkItem>> = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Run(run) => {
                    run_chunks(&mut tx, &mut pending, &mut completions).await;
                    completions.push(run(&mut tx).await);
                }
                Job::Chunk(item) => {
                    // A chunk holds one kind, and never two items with the same key.
                    if pending.first().is_some_and(|p| {
                        !std::ptr::eq(p.kind(), item.kind())
                            || pending.iter().any(|p| p.key() == item.key())
                    }) {
                        run_chunks(&mut tx, &mut pending, &mut completions).await;
                    }
                    pending.push(item);
                    if pending.len() == MAX_CHUNK {
                        run_chunks(&mut tx, &mut pending, &mut completions).await;
                    }
                }
            }
        }
        run_chunks(&mut tx, &mut pending, &mut completions).await;
        let ran = started.elapsed();
        let committed = tx.commit().await;
        metrics.observe_batch_time(ran.as_secs_f64(), (started.elapsed() - ran).as_secs_f64());
        match committed {
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
