//! Refresh-token rotation with group commit (spec/oauth2.md §3.3 rule 21).
//!
//! A rotation marks the old refresh-token row rotated (kept for reuse detection), deletes
//! its access token, and issues a new access token and row under the same grant,
//! atomically. Every rotation costs a commit: on SQLite the single writer's WAL frames
//! and, now and then, a checkpoint; on PostgreSQL a WAL flush and the notification lock
//! the key's delete trigger takes. So rotations are queued to one task, which commits
//! the ones that arrived while the previous commit ran in one transaction: under load,
//! many rotations share a commit; alone, a rotation waits for nothing.
//!
//! Each rotation in a batch is independent of the others: its steps only touch its own
//! rows, and each reports its own outcome. A batch that fails is retried one rotation at
//! a time, so a rotation that cannot be written never fails another; a database that is
//! down fails them all at once instead of one after the other.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, Utc};
use sqlx::{Row, types::Json};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    db::Db,
    error::{Result, StoreError},
    models::{NewApiKey, NewOAuth2Token, OAuth2Token, epoch},
};

/// The most rotations committed together. Bounds one statement's parameters (19 each).
const MAX_BATCH: usize = 16;

/// One rotation's steps on SQLite, which has no data-modifying CTEs: every step after the
/// first runs only if the step before changed its one row (`changes()`), and the last
/// returns the rotation's index in its batch (`#`) only then. The first step both claims
/// and removes the old access token (its row's `api_key_id` goes NULL through the foreign
/// key), so no commit can leave a half-rotated chain. Parameters: $1 old row, $2 now,
/// $3 old access token, $4–$14 the new key, $15–$19 the new row.
const SQLITE_STEPS: &str = "DELETE FROM api_keys WHERE id = $3 AND EXISTS (SELECT 1 FROM \
     oauth2_provider_app_tokens WHERE id = $1 AND rotated_at IS NULL AND api_key_id = $3);\n\
     INSERT INTO api_keys (id, hashed_secret, user_id, last_used, expires_at, created_at, \
     updated_at, login_type, lifetime_seconds, ip_address, token_name, scopes, allow_list) \
     SELECT $4, $5, $6, $7, $8, $2, $2, $9, $10, $11, $12, $13, $14 WHERE changes() = 1;\n\
     INSERT INTO oauth2_provider_app_tokens (id, grant_id, hash_prefix, refresh_hash, \
     api_key_id, created_at, expires_at) SELECT $15, $16, $17, $18, $4, $2, $19 \
     WHERE changes() = 1;\n\
     UPDATE oauth2_provider_app_tokens SET rotated_at = $2 \
     WHERE id = $1 AND rotated_at IS NULL AND changes() = 1 RETURNING #;\n";

/// One rotation's data-modifying CTEs on PostgreSQL, in one statement with the batch's
/// others: one implicit transaction. Under READ COMMITTED a concurrent rotation of the
/// same row waits on the lock `claimed#` takes and then finds `rotated_at` set.
const POSTGRES_STEPS: &str = "claimed# AS (\
     UPDATE oauth2_provider_app_tokens SET rotated_at = $2 \
     WHERE id = $1 AND rotated_at IS NULL AND api_key_id = $3 RETURNING id), \
     gone# AS (DELETE FROM api_keys WHERE id = $3 AND EXISTS (SELECT 1 FROM claimed#)), \
     new_key# AS (INSERT INTO api_keys (id, hashed_secret, user_id, last_used, expires_at, \
     created_at, updated_at, login_type, lifetime_seconds, ip_address, token_name, scopes, \
     allow_list) SELECT $4, $5, $6, $7, $8, $2, $2, $9, $10, $11, $12, $13, $14 FROM claimed# \
     RETURNING id), \
     rotated# AS (INSERT INTO oauth2_provider_app_tokens (id, grant_id, hash_prefix, \
     refresh_hash, api_key_id, created_at, expires_at) \
     SELECT $15, $16, $17, $18, new_key#.id, $2, $19 FROM new_key# RETURNING #::int8 AS job)";

const PARAMS_PER_ROTATION: usize = 19;

/// `template` for the rotation at `index` of a batch: `#` becomes the index and each
/// `$n` the rotation's own parameter number.
fn steps_for(template: &str, index: usize) -> String {
    let offset = index * PARAMS_PER_ROTATION;
    let mut out = String::with_capacity(template.len() + 64);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => out.push_str(&index.to_string()),
            '$' => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            c => out.push(c),
        }
    }
    out
}

fn sqlite_batch(size: usize) -> String {
    let steps: String = (0..size).map(|i| steps_for(SQLITE_STEPS, i)).collect();
    format!("BEGIN IMMEDIATE;\n{steps}COMMIT;")
}

fn postgres_batch(size: usize) -> String {
    let ctes: Vec<String> = (0..size).map(|i| steps_for(POSTGRES_STEPS, i)).collect();
    let results: Vec<String> = (0..size)
        .map(|i| format!("SELECT job FROM rotated{i}"))
        .collect();
    format!("WITH {} {}", ctes.join(", "), results.join(" UNION ALL "))
}

/// The statement text for a batch of `size` rotations, built once per size.
fn batch_sql(db: &Db, size: usize) -> &'static str {
    static SQLITE: OnceLock<Vec<String>> = OnceLock::new();
    static POSTGRES: OnceLock<Vec<String>> = OnceLock::new();
    let texts = match db {
        Db::Sqlite { .. } => {
            SQLITE.get_or_init(|| (0..=MAX_BATCH).map(sqlite_batch).collect::<Vec<_>>())
        }
        Db::Postgres(_) => {
            POSTGRES.get_or_init(|| (0..=MAX_BATCH).map(postgres_batch).collect::<Vec<_>>())
        }
    };
    &texts[size]
}

/// One queued rotation.
pub(crate) struct Rotation {
    pub old_id: Uuid,
    pub old_grant_id: Uuid,
    pub old_api_key_id: Option<String>,
    pub key: NewApiKey,
    pub token: NewOAuth2Token,
    pub now: DateTime<Utc>,
}

impl Rotation {
    pub(crate) fn new(
        old: &OAuth2Token,
        key: &NewApiKey,
        token: &NewOAuth2Token,
        now: DateTime<Utc>,
    ) -> Rotation {
        Rotation {
            old_id: old.id,
            old_grant_id: old.grant_id,
            old_api_key_id: old.api_key_id.clone(),
            key: key.clone(),
            token: token.clone(),
            now,
        }
    }
}

struct Queued {
    rotation: Rotation,
    /// `true` when this rotation claimed its row; `false` when another had first.
    reply: oneshot::Sender<Result<bool>>,
}

/// The queue in front of the rotation task. The task starts with the first rotation
/// (on the runtime that asks for it) and ends when the store's last clone is dropped.
pub(crate) struct RotationQueue {
    db: Db,
    queries: Arc<AtomicU64>,
    sender: OnceLock<mpsc::UnboundedSender<Queued>>,
}

impl std::fmt::Debug for RotationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationQueue")
            .field("started", &self.sender.get().is_some())
            .finish()
    }
}

impl RotationQueue {
    /// A queue for `db`; `queries` counts one database call per batch.
    pub(crate) fn new(db: Db, queries: Arc<AtomicU64>) -> RotationQueue {
        RotationQueue {
            db,
            queries,
            sender: OnceLock::new(),
        }
    }

    /// Commits `rotation`, with whichever others are waiting.
    pub(crate) async fn rotate(&self, rotation: Rotation) -> Result<bool> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(self.db.clone(), self.queries.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        sender
            .send(Queued { rotation, reply })
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }
}

/// The rotation task: takes what is waiting (at most [`MAX_BATCH`]), commits it,
/// answers each rotation, and goes again. One batch at a time: SQLite has one writer, and
/// on PostgreSQL a second batch in flight measured no faster.
async fn run(db: Db, queries: Arc<AtomicU64>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let mut carried: Vec<Queued> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        if batch.is_empty() {
            match receiver.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // PostgreSQL does not support updating one row twice in one statement (which
        // update wins is unspecified): a second rotation of a row waits for the next
        // batch, where it finds the row rotated, as it would have one commit later.
        let mut index = 0;
        while index < batch.len() {
            let old_id = batch[index].rotation.old_id;
            if batch[..index].iter().any(|q| q.rotation.old_id == old_id) {
                carried.push(batch.remove(index));
            } else {
                index += 1;
            }
        }
        commit(&db, &queries, batch).await;
    }
}

async fn commit(db: &Db, queries: &AtomicU64, batch: Vec<Queued>) {
    let rotations: Vec<&Rotation> = batch.iter().map(|q| &q.rotation).collect();
    queries.fetch_add(1, Ordering::Relaxed);
    match execute(db, &rotations).await {
        Ok(claimed) => {
            for (index, queued) in batch.into_iter().enumerate() {
                let _ = queued.reply.send(Ok(claimed.contains(&(index as i64))));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(queued) = batch.into_iter().next() {
                let _ = queued.reply.send(Err(e));
            }
        }
        Err(StoreError::Unavailable(e)) => {
            tracing::warn!(error = %e, rotations = batch.len(), "refresh-token rotations failed: database unavailable");
            let message = e.to_string();
            for queued in batch {
                let _ = queued
                    .reply
                    .send(Err(StoreError::Unavailable(sqlx::Error::Protocol(
                        message.clone(),
                    ))));
            }
        }
        Err(_) => {
            // One rotation broke the batch (a constraint, say): each on its own, so only
            // that one fails.
            for queued in batch {
                queries.fetch_add(1, Ordering::Relaxed);
                let result = execute(db, &[&queued.rotation])
                    .await
                    .map(|claimed| !claimed.is_empty());
                let _ = queued.reply.send(result);
            }
        }
    }
}

/// The batch's statement with every rotation's parameters bound, for either backend.
macro_rules! bound {
    ($sql:expr, $rotations:expr) => {{
        let mut query = sqlx::query($sql);
        for r in $rotations {
            query = query
                .bind(r.old_id)
                .bind(r.now)
                .bind(&r.old_api_key_id)
                .bind(&r.key.id)
                .bind(&r.key.hashed_secret)
                .bind(r.key.user_id)
                .bind(epoch())
                .bind(r.key.expires_at)
                .bind(&r.key.login_type)
                .bind(r.key.lifetime_seconds)
                .bind(&r.key.ip_address)
                .bind(&r.key.token_name)
                .bind(Json(&r.key.scopes))
                .bind(Json(&r.key.allow_list))
                .bind(r.token.id)
                .bind(r.old_grant_id)
                .bind(&r.token.hash_prefix)
                .bind(&r.token.refresh_hash)
                .bind(r.token.expires_at);
        }
        query
    }};
}

/// Runs one batch; the indexes of the rotations that claimed their row.
async fn execute(db: &Db, rotations: &[&Rotation]) -> Result<Vec<i64>> {
    let sql = batch_sql(db, rotations.len());
    let claimed: std::result::Result<Vec<i64>, sqlx::Error> = match db {
        Db::Sqlite { write, .. } => {
            let mut conn = write.acquire().await?;
            match bound!(sql, rotations).fetch_all(&mut *conn).await {
                Ok(rows) => rows.iter().map(|row| row.try_get(0)).collect(),
                Err(e) => {
                    // The batch stopped at the failing statement, inside its transaction:
                    // end it here, or replace the connection.
                    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                        conn.close_on_drop();
                    }
                    return Err(e.into());
                }
            }
        }
        Db::Postgres(pool) => bound!(sql, rotations)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect(),
    };
    Ok(claimed?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rotation_in_a_batch_has_its_own_parameters_and_index() {
        let second = steps_for(SQLITE_STEPS, 1);
        assert!(second.contains("WHERE id = $20 AND rotated_at IS NULL AND api_key_id = $22"));
        assert!(second.contains("SELECT $34, $35, $36, $37, $23, $21, $38"));
        assert!(second.ends_with("RETURNING 1;\n"));
        assert!(!second.contains("$1,") && !second.contains('#'));
        let sql = postgres_batch(2);
        assert!(sql.starts_with("WITH claimed0 AS ("));
        assert!(sql.contains("FROM claimed1 RETURNING id)"));
        assert!(sql.contains("RETURNING 1::int8 AS job)"));
        assert!(sql.ends_with("SELECT job FROM rotated0 UNION ALL SELECT job FROM rotated1"));
        assert_eq!(sql.matches("$38").count(), 1);
        let sqlite = sqlite_batch(2);
        assert!(sqlite.starts_with("BEGIN IMMEDIATE;\n") && sqlite.ends_with("COMMIT;"));
    }
}
