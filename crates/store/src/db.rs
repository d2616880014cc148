//! The two backends behind one type, and the one place that dispatches between them.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::error::Result;

/// A connection to SQLite (embedded default) or PostgreSQL (production).
#[derive(Debug, Clone)]
pub enum Db {
    /// Writes go through one connection so SQLite never fights itself for the lock;
    /// reads use a pool of WAL readers.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool. Each arm is compiled for its own
/// driver, so one SQL text serves both wherever the dialects agree.
///
/// `$store` is a [`Store`](crate::Store); every use is counted as one database call
/// (a statement, or one transaction block), so tests can assert round trips.
macro_rules! on_db {
    ($store:expr, read, |$pool:ident| $body:expr) => {{
        $store.note_query();
        match &$store.db {
            $crate::db::Db::Sqlite { read: $pool, .. } => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    }};
    ($store:expr, write, |$pool:ident| $body:expr) => {{
        $store.note_query();
        match &$store.db {
            $crate::db::Db::Sqlite { write: $pool, .. } => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    }};
    // Where the dialects differ: `$sql` is bound to the backend's own text.
    ($store:expr, $access:ident, |$pool:ident, $sql:ident = ($sqlite:expr, $postgres:expr)| $body:expr) => {{
        match &$store.db {
            $crate::db::Db::Sqlite { .. } => {
                let $sql: &'static str = $sqlite;
                on_db!($store, $access, |$pool| $body)
            }
            $crate::db::Db::Postgres(_) => {
                let $sql: &'static str = $postgres;
                on_db!($store, $access, |$pool| $body)
            }
        }
    }};
}
pub(crate) use on_db;

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle for longer than this is pinged before it is handed out.
/// sqlx's own `test_before_acquire` pings on every acquire: a round trip to the server
/// (or to SQLite's worker thread) before every statement, on top of the one sqlx makes
/// when the connection is released. A connection in steady use has just proved itself;
/// one that sat idle may have been cut (a database restart, a proxy's idle timeout).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The `before_acquire` check for every pool: ping only a connection that sat idle.
macro_rules! ping_if_idle {
    () => {
        |conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        }
    };
}

impl Db {
    /// Opens (creating if needed) a SQLite database file.
    pub async fn sqlite(path: &std::path::Path) -> Result<Db> {
        Db::sqlite_with_busy_timeout(path, Duration::from_secs(5)).await
    }

    /// As [`Db::sqlite`], waiting at most `busy_timeout` for a lock held by another
    /// process before the operation fails as unavailable.
    pub async fn sqlite_with_busy_timeout(
        path: &std::path::Path,
        busy_timeout: Duration,
    ) -> Result<Db> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection a failed COMMIT may have left inside a transaction is closed
            // (SQLite rolls it back) and replaced, instead of carrying later writes into a
            // transaction that never commits. Costs an atomic load per write otherwise.
            .test_before_acquire(false)
            .before_acquire(|_conn, _meta| {
                Box::pin(async {
                    let suspect = crate::error::SQLITE_WRITER_SUSPECT
                        .swap(false, std::sync::atomic::Ordering::AcqRel);
                    if suspect {
                        tracing::warn!(
                            "replacing the SQLite write connection after a failed write"
                        );
                    }
                    Ok(!suspect)
                })
            })
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle!())
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Db::Sqlite { read, write })
    }

    /// Connects to PostgreSQL. `schema`, when given, is put first on the search path (tests
    /// use one schema per test).
    pub async fn postgres(url: &str, schema: Option<&str>) -> Result<Db> {
        let mut opts = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            opts = opts.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle!())
            .connect_with(opts)
            .await?;
        Ok(Db::Postgres(pool))
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, for readiness checks and outage tests.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Db::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
