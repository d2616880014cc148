//! What the store's and the server's tests share (issue #25): which backends a data-layer
//! test runs on, a fresh PostgreSQL schema per test, and the clean-up of a SQLite file.
//!
//! Every data-layer behaviour is tested on SQLite and on PostgreSQL. The PostgreSQL half
//! runs against `TEST_POSTGRES_URL` (`scripts/test.sh` sets it). Without it a test's
//! PostgreSQL run is skipped and says so, with a count, unless `CI` is set: in CI a
//! missing database fails the run instead of letting half the suite pass unseen.

#![allow(clippy::print_stderr)]

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

/// What a test crate runs its data-layer scenarios on: built fresh per test, on SQLite
/// always and on PostgreSQL when [`postgres_url`] gives one.
pub trait Backends: Sized {
    fn sqlite() -> impl Future<Output = Self>;
    fn postgres() -> impl Future<Output = Option<Self>>;
}

/// Implements [`Backends`] for a type with inherent `async fn sqlite() -> Self` and
/// `async fn postgres() -> Option<Self>` constructors.
#[macro_export]
macro_rules! backends {
    ($backend:ty) => {
        impl $crate::Backends for $backend {
            async fn sqlite() -> Self {
                <$backend>::sqlite().await
            }

            async fn postgres() -> Option<Self> {
                <$backend>::postgres().await
            }
        }
    };
}

/// Runs each named scenario once per backend: `<name>::sqlite`, and `<name>::postgres`
/// (skipped without a database, see [`postgres_url`]). The scenarios take the calling
/// crate's `crate::TestBackend` (a [`Backends`]); `on_both_backends!(T; a, b)` names
/// another.
#[macro_export]
#[allow(
    clippy::crate_in_macro_def,
    reason = "the short form runs on the calling crate's TestBackend"
)]
macro_rules! on_both_backends {
    ($backend:ty; $($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario(<$backend as $crate::Backends>::sqlite().await).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(backend) = <$backend as $crate::Backends>::postgres().await {
                        super::$scenario(backend).await;
                    }
                }
            }
        )*
    };
    ($($scenario:ident),* $(,)?) => {
        $crate::on_both_backends!(crate::TestBackend; $($scenario),*);
    };
}

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether `CI` is set to something that means yes (as CI systems set it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `TEST_POSTGRES_URL`, or `None` after saying that this test's PostgreSQL run is
/// skipped (and how many have been in this test binary).
///
/// # Panics
/// When it is not set and `CI` is: a CI run must not pass without PostgreSQL.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "TEST_POSTGRES_URL is not set and CI is: the PostgreSQL half of the suite must run \
             in CI (scripts/test.sh starts PostgreSQL and sets it)"
        ),
        _ => {
            let skipped = SKIPPED.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!(
                "skipped: the PostgreSQL run of this test (TEST_POSTGRES_URL is not set; \
                 {skipped} PostgreSQL run(s) skipped in this test binary so far)"
            );
            None
        }
    }
}

/// Creates a schema of its own (`<prefix>_<uuid>`) on the server at `url` and returns its
/// name, so concurrent tests never see each other's rows.
///
/// # Panics
/// When the server cannot be reached or the schema cannot be created.
pub async fn fresh_schema(url: &str, prefix: &str) -> String {
    use sqlx::Connection;
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to TEST_POSTGRES_URL: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
    let _ = conn.close().await;
    schema
}

/// A fresh SQLite file name in the temporary directory.
pub fn sqlite_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{}.db", uuid::Uuid::new_v4().simple()))
}

/// Removes a SQLite database and its `-wal` and `-shm` files.
pub fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
