//! The purge job's work (spec/ops.md §11; decisions.md 22): one transaction per tick under a
//! database lock, so replicas sharing PostgreSQL never purge at once. Runs as the
//! least-privilege purge subject.

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};

use crate::{Store, authz::check, db::on_db, error::Result};

/// `pg_try_advisory_xact_lock` key of the purge job ("db_purge" in ASCII).
const PURGE_LOCK_ID: i64 = 0x6462_5f70_7572_6765;

/// How long expired or finished rows are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Expired API keys (`--api-keys-retention`, 7d); 0 keeps them.
    pub api_keys: TimeDelta,
    /// Agent logs (`--workspace-agent-logs-retention`, 7d); the latest build's are kept.
    pub workspace_agent_logs: TimeDelta,
}

/// What one tick removed, by Coder's `record_type` label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub expired_api_keys: u64,
    pub workspace_agent_logs: u64,
    pub oauth2_codes: u64,
    pub oauth2_tokens: u64,
    /// Dynamically registered clients never used within [`UNUSED_CLIENT_TTL`].
    pub unused_oauth2_clients: u64,
}

/// How long a client that registered itself may sit without a grant or a pending code
/// before the purge deletes it (issue #29: registration is open to anyone, so what it
/// stores must not pile up). A client that comes back after that registers again.
pub const UNUSED_CLIENT_TTL: TimeDelta = TimeDelta::hours(24);

/// Rows per table per tick (spec/ops.md §11.3 `LimitCount`).
const BATCH: i64 = 10_000;

const DELETE_KEYS: &str = "DELETE FROM api_keys WHERE id IN (SELECT k.id FROM api_keys k \
     WHERE k.expires_at < $1 AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_tokens t \
     WHERE t.api_key_id = k.id AND t.rotated_at IS NULL AND t.expires_at > $2) LIMIT $3)";

const DELETE_AGENT_LOGS: &str = "DELETE FROM workspace_agent_logs WHERE id IN (SELECT l.id \
     FROM workspace_agent_logs l JOIN workspace_agents a ON a.id = l.agent_id \
     JOIN workspace_resources r ON r.id = a.resource_id \
     JOIN workspace_builds b ON b.job_id = r.job_id \
     WHERE l.created_at < $1 AND b.build_number < (SELECT MAX(b2.build_number) \
     FROM workspace_builds b2 WHERE b2.workspace_id = b.workspace_id) LIMIT $2)";

const DELETE_CODES: &str = "DELETE FROM oauth2_provider_app_codes WHERE expires_at < $1";

/// Refresh-token rows past their expiry (their access keys go with them), then grants
/// left with no token.
const DELETE_TOKENS: &str = "DELETE FROM oauth2_provider_app_tokens WHERE expires_at < $1";
const DELETE_EMPTY_GRANTS: &str = "DELETE FROM oauth2_provider_grants g WHERE NOT EXISTS \
     (SELECT 1 FROM oauth2_provider_app_tokens t WHERE t.grant_id = g.id)";
const DELETE_EMPTY_GRANTS_SQLITE: &str = "DELETE FROM oauth2_provider_grants WHERE NOT EXISTS \
     (SELECT 1 FROM oauth2_provider_app_tokens t WHERE t.grant_id = oauth2_provider_grants.id)";

const DELETE_UNUSED_CLIENTS: &str = "DELETE FROM oauth2_provider_apps WHERE id IN \
     (SELECT a.id FROM oauth2_provider_apps a WHERE a.dynamically_registered \
     AND a.created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM oauth2_provider_grants g WHERE g.app_id = a.id) \
     AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_codes c WHERE c.app_id = a.id) \
     LIMIT $2)";

impl Store {
    /// One purge tick. `Ok(None)` when another replica holds the lock.
    pub async fn purge(
        &self,
        subject: &Subject,
        now: DateTime<Utc>,
        retention: Retention,
    ) -> Result<Option<Purged>> {
        check(subject, Action::Delete, &Object::of(ResourceType::ApiKey))?;
        check(subject, Action::Delete, &Object::of(ResourceType::System))?;
        let key_cutoff = now - retention.api_keys;
        let log_cutoff = now - retention.workspace_agent_logs;
        let keys_on = retention.api_keys > TimeDelta::zero();
        let logs_on = retention.workspace_agent_logs > TimeDelta::zero();
        let mut purged = Purged::default();
        on_db!(self, write, |pool, empty_grants = (DELETE_EMPTY_GRANTS_SQLITE, DELETE_EMPTY_GRANTS)| {
            let mut tx = pool.begin().await?;
            if self.db.backend() == "postgres" {
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(PURGE_LOCK_ID)
                    .fetch_one(&mut *tx)
                    .await?;
                if !locked {
                    return Ok(None);
                }
            }
            if keys_on {
                purged.expired_api_keys = sqlx::query(DELETE_KEYS)
                    .bind(key_cutoff)
                    .bind(now)
                    .bind(BATCH)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            if logs_on {
                purged.workspace_agent_logs = sqlx::query(DELETE_AGENT_LOGS)
                    .bind(log_cutoff)
                    .bind(BATCH)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            purged.oauth2_codes = sqlx::query(DELETE_CODES)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            purged.oauth2_tokens = sqlx::query(DELETE_TOKENS)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(empty_grants).execute(&mut *tx).await?;
            purged.unused_oauth2_clients = sqlx::query(DELETE_UNUSED_CLIENTS)
                .bind(now - UNUSED_CLIENT_TTL)
                .bind(BATCH)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        });
        if purged.expired_api_keys > 0 || purged.oauth2_tokens > 0 {
            self.auth_changed_all();
        }
        Ok(Some(purged))
    }
}
