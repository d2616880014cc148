//! The store's one error type. Connection-level failures are `Unavailable` so the HTTP
//! layer answers 503 (decisions.md 14); nothing here is ever turned into "not found"
//! except an actual missing row or a denied read.

use std::sync::atomic::{AtomicBool, Ordering};

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Username,
    Email,
    TokenName,
    FirstUser,
    OrganizationName,
    Membership,
    TemplateName,
    WorkspaceName,
    TaskName,
    /// The version already belongs to a template.
    VersionInUse,
    /// The workspace already has a build in progress.
    BuildInProgress,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The subject may read the object but not do this action to it.
    #[error("forbidden")]
    Forbidden,
    /// The subject's role allows the action but the credential's scope does not; carries
    /// the smallest catalog scope that would.
    #[error("the credential's scope does not allow this; it needs {0}")]
    InsufficientScope(&'static str),
    /// The subject may assign roles, but not this one.
    #[error("not allowed to assign the {0:?} role")]
    CannotAssign(String),
    #[error("unique constraint violated: {0:?}")]
    Conflict(Conflict),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Set when a SQLite statement failed in a way that can leave its connection inside a
/// transaction SQLite kept open (a COMMIT that failed with SQLITE_FULL, an I/O error, or
/// SQLITE_BUSY stays active): the write pool then replaces its connection before the next
/// write, so no later statement runs inside a transaction that will never commit.
pub(crate) static SQLITE_WRITER_SUSPECT: AtomicBool = AtomicBool::new(false);

/// SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR and SQLITE_FULL, with their extended codes.
fn leaves_sqlite_transaction_open(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13))
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return StoreError::Conflict(conflict_of(db.constraint(), db.message()));
                }
                // SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6) past the busy timeout, and
                // SQLITE_FULL (13): the disk is full; writes fail until space is freed.
                // PostgreSQL: class 08 (connection exception), 57P0x (shutdown / cannot connect now),
                // 53100 (disk_full). The client gets a 503 to retry; the cause is logged.
                let code = db.code().unwrap_or_default();
                if leaves_sqlite_transaction_open(&code) {
                    SQLITE_WRITER_SUSPECT.store(true, Ordering::Release);
                }
                let busy = matches!(code.as_ref(), "5" | "6" | "517" | "262" | "13" | "53100")
                    || code.starts_with("08")
                    || code.starts_with("57P0");
                if busy {
                    StoreError::Unavailable(err)
                } else {
                    StoreError::Database(err)
                }
            }
            _ => StoreError::Database(err),
        }
    }
}

fn conflict_of(constraint: Option<&str>, message: &str) -> Conflict {
    let text = constraint.unwrap_or(message);
    let has = |needle: &str| text.contains(needle) || message.contains(needle);
    if has("first_user_claim") {
        Conflict::FirstUser
    } else if has("idx_users_username") {
        Conflict::Username
    } else if has("idx_users_email") {
        Conflict::Email
    } else if has("idx_api_keys_token_name") || has("token_name") {
        Conflict::TokenName
    } else if has("idx_organizations_name") {
        Conflict::OrganizationName
    } else if has("idx_templates_name") {
        Conflict::TemplateName
    } else if has("idx_tasks_owner_name") {
        Conflict::TaskName
    } else if has("idx_workspaces_owner_name") {
        Conflict::WorkspaceName
    } else if has("idx_workspace_builds_number") {
        Conflict::BuildInProgress
    } else if has("organization_members") {
        Conflict::Membership
    } else {
        Conflict::Other
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
