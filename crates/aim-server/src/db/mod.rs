//! Storage: one SQLite file in the data directory (WAL, `synchronous=FULL`), schema migrations
//! embedded in the binary and applied at start, a pool of read connections and a single
//! group-committing writer.

mod backfill;
pub(crate) mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqlSafeStr, SqliteConnection};

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub(crate) use writer::Writer;

/// The embedded migrations, applied in order at start.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (2, "authz", include_str!("../../migrations/0002_authz.sql")),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn connect_options(config: &ServerConfig) -> Result<SqliteConnectOptions> {
    let path = config.database_path();
    let url = format!("sqlite://{}", path.display());
    let opts = SqliteConnectOptions::from_str(&url)
        .map_err(|e| Error::Config(format!("database path {}: {e}", path.display())))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .statement_cache_capacity(384)
        // Statement and savepoint journals in memory: they only ever roll back work of the
        // open transaction, so they never need to survive a crash.
        .pragma("temp_store", "memory")
        .disable_statement_logging();
    Ok(opts)
}

/// Opens (creating if needed) the database and applies the migrations; returns the write
/// connection.
pub(crate) async fn open_write_connection(config: &ServerConfig) -> Result<SqliteConnection> {
    std::fs::create_dir_all(&config.data_dir)?;
    restrict_permissions(&config.data_dir);
    let mut conn = connect_options(config)?.connect().await?;
    migrator().run(&mut conn).await?;
    backfill::run(&mut conn).await?;
    Ok(conn)
}

#[cfg(unix)]
fn restrict_permissions(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        tracing::warn!(error = %e, "could not restrict the data directory to its owner");
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_dir: &std::path::Path) {}

/// Read connections plus the writer.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    /// Pool of read-only connections (WAL readers never block the writer).
    pub(crate) read: SqlitePool,
    /// The group-committing writer.
    pub(crate) writer: Writer,
}

impl Db {
    /// Opens the database: migrations, writer task, read pool.
    pub(crate) async fn open(
        config: &ServerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        let conn = open_write_connection(config).await?;
        let (writer, handle) = Writer::spawn(conn, config.max_batch, metrics);
        let read = SqlitePoolOptions::new()
            .max_connections(config.read_connections.max(1))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect_options(config)?.read_only(true))
            .await?;
        Ok((Self { read, writer }, handle))
    }
}

/// A fresh random id (UUID v4, lowercase hyphenated).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh time-ordered id (UUID v7), for append-only tables listed in insertion order.
pub(crate) fn new_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path());
        let mut conn = open_write_connection(&config).await.unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
        drop(conn);
        // A second open finds the schema in place.
        let mut conn = open_write_connection(&config).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organizations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
