//! Workspace agents: authentication (spec/auth.md §5.2, decisions.md 36: one query on
//! success; one diagnostic query only when it returns nothing) and the
//! `{workspaceagent}` lookup with its workspace.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use uuid::Uuid;

use super::{
    columns::agent_columns,
    subject_sql::{groups_postgres, groups_sqlite, memberships_postgres, memberships_sqlite},
};
use crate::{
    Store,
    auth_cache::{AgentTokenHash, CachedAgent},
    authz::{allowed, check},
    db::on_db,
    error::{Result, StoreError},
    models::{AgentAuthDiagnosis, AgentAuthRow, Workspace, WorkspaceAgent, now},
    objects::workspace_object,
    subjects::agent_subject,
};

/// The agent's build must be the workspace's latest, or (the shutdown window) a
/// succeeded `start` whose successor is the latest build: a `stop` numbered one higher,
/// still pending or running, of the same template version.
macro_rules! agent_auth_sql {
    ($memberships:expr, $groups:expr) => {
        concat!(
            "SELECT a.id AS agent_id, a.name AS agent_name, a.resource_id AS agent_resource_id, \
             a.parent_id AS agent_parent_id, a.api_key_scope AS agent_api_key_scope, a.directory AS agent_directory, \
             b.id AS build_id, b.build_number, b.transition AS build_transition, \
             b.template_version_id AS build_template_version_id, b.job_id AS build_job_id, \
             w.id AS workspace_id, w.name AS workspace_name, w.owner_id AS workspace_owner_id, \
             w.organization_id AS workspace_organization_id, w.template_id AS workspace_template_id, \
             u.username AS owner_username, u.status AS owner_status, u.rbac_roles AS owner_rbac_roles, \
             u.is_service_account AS owner_is_service_account, \
             (SELECT t.id FROM tasks t WHERE t.workspace_id = w.id AND t.deleted_at IS NULL LIMIT 1) AS task_id, ",
            $memberships,
            " AS memberships, ",
            $groups,
            " AS group_ids \
             FROM workspace_agents a \
             JOIN workspace_resources r ON r.id = a.resource_id \
             JOIN workspace_builds b ON b.job_id = r.job_id \
             JOIN provisioner_jobs j ON j.id = b.job_id \
             JOIN workspaces w ON w.id = b.workspace_id \
             JOIN users u ON u.id = w.owner_id \
             WHERE a.auth_token_hash = $1 AND a.deleted = FALSE AND w.deleted = FALSE \
             AND ( \
               b.build_number = (SELECT MAX(mb.build_number) FROM workspace_builds mb WHERE mb.workspace_id = w.id) \
               OR ( \
                 b.transition = 'start' AND j.job_status = 'succeeded' AND EXISTS ( \
                   SELECT 1 FROM workspace_builds nb JOIN provisioner_jobs nj ON nj.id = nb.job_id \
                   WHERE nb.workspace_id = w.id AND nb.build_number = b.build_number + 1 \
                   AND nb.transition = 'stop' AND nj.job_status IN ('pending', 'running') \
                   AND nb.template_version_id = b.template_version_id \
                   AND nb.build_number = (SELECT MAX(mb.build_number) FROM workspace_builds mb WHERE mb.workspace_id = w.id) \
                 ) \
               ) \
             ) \
             ORDER BY b.build_number DESC LIMIT 1"
        )
    };
}

const AGENT_AUTH_SQLITE: &str =
    agent_auth_sql!(memberships_sqlite!("u.id"), groups_sqlite!("u.id"));
const AGENT_AUTH_POSTGRES: &str =
    agent_auth_sql!(memberships_postgres!("u.id"), groups_postgres!("u.id"));

const AGENT_DIAGNOSIS: &str = "SELECT a.deleted AS agent_deleted, w.deleted AS workspace_deleted, \
    b.build_number, b.transition, j.job_status, lb.build_number AS latest_build_number, \
    lb.transition AS latest_transition, lj.job_status AS latest_job_status \
    FROM workspace_agents a \
    JOIN workspace_resources r ON r.id = a.resource_id \
    JOIN workspace_builds b ON b.job_id = r.job_id \
    JOIN provisioner_jobs j ON j.id = b.job_id \
    JOIN workspaces w ON w.id = b.workspace_id \
    JOIN workspace_builds lb ON lb.workspace_id = w.id \
      AND lb.build_number = (SELECT MAX(mb.build_number) FROM workspace_builds mb WHERE mb.workspace_id = w.id) \
    JOIN provisioner_jobs lj ON lj.id = lb.job_id \
    WHERE a.auth_token_hash = $1 ORDER BY b.build_number DESC LIMIT 1";

impl Store {
    /// Agent authentication through the cache: a hit costs no database call; a miss reads
    /// [`Store::agent_for_auth`] and builds the subject once. `Ok(None)` when the token
    /// does not (or no longer) authenticate.
    pub async fn authenticate_agent(
        &self,
        subject: &Subject,
        token_hash: &AgentTokenHash,
    ) -> Result<Option<Arc<CachedAgent>>> {
        check(subject, Action::Read, &Object::of(ResourceType::Workspace))?;
        if let Some(hit) = self.auth_cache.agent(token_hash) {
            return Ok(Some(hit));
        }
        let ticket = self.auth_cache.ticket();
        let Some(row) = self.agent_for_auth(subject, token_hash).await? else {
            return Ok(None);
        };
        let agent_subject = agent_subject(&row)
            .map_err(|e| StoreError::Corrupt(format!("workspace owner's roles: {e}")))?;
        let entry = Arc::new(CachedAgent {
            row,
            subject: agent_subject,
        });
        self.auth_cache
            .insert_agent(ticket, *token_hash, entry.clone());
        Ok(Some(entry))
    }

    /// The agent-authentication lookup by SHA-256 of the token. `Ok(None)` when the token
    /// does not (or no longer) authenticate.
    pub async fn agent_for_auth(
        &self,
        subject: &Subject,
        token_hash: &[u8],
    ) -> Result<Option<AgentAuthRow>> {
        check(subject, Action::Read, &Object::of(ResourceType::Workspace))?;
        let row = on_db!(self, read, |pool, sql = (AGENT_AUTH_SQLITE, AGENT_AUTH_POSTGRES)| {
            sqlx::query_as::<_, AgentAuthRow>(sql).bind(token_hash).fetch_optional(pool).await
        })?;
        Ok(row)
    }

    /// Why a token that failed [`Store::agent_for_auth`] failed; `None` when it matches
    /// no agent at all.
    pub async fn diagnose_agent_auth(
        &self,
        subject: &Subject,
        token_hash: &[u8],
    ) -> Result<Option<AgentAuthDiagnosis>> {
        check(subject, Action::Read, &Object::of(ResourceType::Workspace))?;
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, AgentAuthDiagnosis>(AGENT_DIAGNOSIS)
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row)
    }

    /// Appends log lines from an agent, as that agent's workspace owner.
    pub async fn insert_agent_logs(
        &self,
        subject: &Subject,
        workspace_object: &Object<'_>,
        agent_id: Uuid,
        lines: &[(String, String)],
    ) -> Result<()> {
        check(subject, Action::Update, workspace_object)?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for (level, output) in lines {
                sqlx::query("INSERT INTO workspace_agent_logs (agent_id, created_at, level, output) VALUES ($1, $2, $3, $4)")
                    .bind(agent_id)
                    .bind(now)
                    .bind(level)
                    .bind(output)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Up to `limit` of an agent's log lines with an id above `after`, oldest first.
    pub async fn agent_logs_after(
        &self,
        subject: &Subject,
        workspace_object: &Object<'_>,
        agent_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AgentLogLine>> {
        check(subject, Action::Read, workspace_object)?;
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, AgentLogLine>(
                "SELECT id, created_at, level, output FROM workspace_agent_logs \
                 WHERE agent_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(agent_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}

/// One stored agent log line.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentLogLine {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub level: String,
    pub output: String,
}

/// A dev-container sub-agent to create under a parent agent (spec/ops.md §13).
#[derive(Debug, Clone)]
pub struct NewSubAgent {
    pub id: Uuid,
    pub name: String,
    pub directory: String,
    pub architecture: String,
    pub operating_system: String,
    /// The new agent's token: stored as SHA-256 and, encrypted, so it can be listed.
    pub token: Uuid,
    pub token_hash: Vec<u8>,
}

/// A sub-agent as its parent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubAgent {
    pub id: Uuid,
    pub name: String,
    pub auth_token: Option<Uuid>,
}

impl Store {
    /// Creates a sub-agent on the parent's resource, inheriting its connection settings
    /// and key scope. Fails with `NotFound` when the parent is gone.
    pub async fn insert_sub_agent(
        &self,
        subject: &Subject,
        workspace: &Object<'_>,
        parent: Uuid,
        new: &NewSubAgent,
    ) -> Result<()> {
        check(subject, Action::CreateAgent, workspace)?;
        let encrypted = self.cipher()?.encrypt(
            new.token.hyphenated().to_string().as_bytes(),
            new.id.as_bytes(),
        );
        let now = now();
        let inserted = on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO workspace_agents (id, created_at, updated_at, name, resource_id, auth_token_hash, \
                 auth_token_encrypted, architecture, operating_system, directory, lifecycle_state, parent_id, api_key_scope, \
                 deleted, connection_timeout_seconds, troubleshooting_url, display_order) \
                 SELECT $1, $2, $2, $3, p.resource_id, $4, $5, $6, $7, $8, 'created', p.id, p.api_key_scope, FALSE, \
                 p.connection_timeout_seconds, p.troubleshooting_url, 0 \
                 FROM workspace_agents p WHERE p.id = $9 AND p.deleted = FALSE",
            )
            .bind(new.id)
            .bind(now)
            .bind(&new.name)
            .bind(&new.token_hash)
            .bind(&encrypted)
            .bind(&new.architecture)
            .bind(&new.operating_system)
            .bind(&new.directory)
            .bind(parent)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The live sub-agents of a parent, with their tokens decrypted.
    pub async fn sub_agents(
        &self,
        subject: &Subject,
        workspace: &Object<'_>,
        parent: Uuid,
    ) -> Result<Vec<SubAgent>> {
        check(subject, Action::Read, workspace)?;
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, (Uuid, String, Option<Vec<u8>>)>(
                "SELECT id, name, auth_token_encrypted FROM workspace_agents WHERE parent_id = $1 AND deleted = FALSE \
                 ORDER BY created_at, id",
            )
            .bind(parent)
            .fetch_all(pool)
            .await
        })?;
        let cipher = self.cipher()?;
        Ok(rows
            .into_iter()
            .map(|(id, name, encrypted)| {
                let auth_token = encrypted
                    .and_then(|blob| cipher.decrypt(&blob, id.as_bytes()))
                    .and_then(|plain| String::from_utf8(plain).ok())
                    .and_then(|text| Uuid::parse_str(&text).ok());
                SubAgent {
                    id,
                    name,
                    auth_token,
                }
            })
            .collect())
    }

    /// Soft-deletes a parent's sub-agent; its token stops working at once.
    pub async fn delete_sub_agent(
        &self,
        subject: &Subject,
        workspace: &Object<'_>,
        parent: Uuid,
        id: Uuid,
    ) -> Result<()> {
        check(subject, Action::DeleteAgent, workspace)?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE workspace_agents SET deleted = TRUE, updated_at = $3 WHERE id = $1 AND parent_id = $2 AND deleted = FALSE",
            )
            .bind(id)
            .bind(parent)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        match workspace.owner {
            Some(owner) => self.agents_changed(owner),
            None => self.auth_cache.invalidate_agents(),
        }
        Ok(())
    }
}

/// One row for the `{workspaceagent}` extractor: the agent, its workspace and the owner's
/// username (Coder's `GetWorkspaceAgentAndWorkspaceByID`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct AgentWorkspaceRow {
    #[sqlx(flatten)]
    agent: WorkspaceAgent,
    ws_id: Uuid,
    ws_created_at: chrono::DateTime<chrono::Utc>,
    ws_updated_at: chrono::DateTime<chrono::Utc>,
    ws_owner_id: Uuid,
    ws_organization_id: Uuid,
    ws_template_id: Uuid,
    ws_deleted: bool,
    ws_name: String,
    ws_autostart_schedule: Option<String>,
    ws_ttl: Option<i64>,
    ws_last_used_at: chrono::DateTime<chrono::Utc>,
    ws_dormant_at: Option<chrono::DateTime<chrono::Utc>>,
    ws_deleting_at: Option<chrono::DateTime<chrono::Utc>>,
    ws_automatic_updates: String,
    ws_favorite: bool,
    owner_username: String,
}

/// An agent with its workspace and the owner's username.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentWithWorkspace {
    pub agent: WorkspaceAgent,
    pub workspace: Workspace,
    pub owner_username: String,
}

const AGENT_WITH_WORKSPACE: &str = concat!(
    "SELECT ",
    agent_columns!(),
    ", w.id AS ws_id, w.created_at AS ws_created_at, w.updated_at AS ws_updated_at, w.owner_id AS ws_owner_id, \
     w.organization_id AS ws_organization_id, w.template_id AS ws_template_id, w.deleted AS ws_deleted, \
     w.name AS ws_name, w.autostart_schedule AS ws_autostart_schedule, w.ttl AS ws_ttl, \
     w.last_used_at AS ws_last_used_at, w.dormant_at AS ws_dormant_at, w.deleting_at AS ws_deleting_at, \
     w.automatic_updates AS ws_automatic_updates, w.favorite AS ws_favorite, u.username AS owner_username \
     FROM workspace_agents a \
     JOIN workspace_resources r ON r.id = a.resource_id \
     JOIN provisioner_jobs j ON j.id = r.job_id \
     JOIN workspace_builds b ON b.job_id = j.id \
     JOIN workspaces w ON w.id = b.workspace_id \
     JOIN users u ON u.id = w.owner_id \
     WHERE a.id = $1 AND a.deleted = FALSE AND j.type = 'workspace_build' AND w.deleted = FALSE \
     AND u.deleted = FALSE LIMIT 1"
);

impl Store {
    /// The `{workspaceagent}` lookup, in one query, as the caller (read on the
    /// workspace). Not found and not readable are both `NotFound`.
    pub async fn agent_with_workspace(
        &self,
        subject: &Subject,
        agent_id: Uuid,
    ) -> Result<AgentWithWorkspace> {
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, AgentWorkspaceRow>(AGENT_WITH_WORKSPACE)
                .bind(agent_id)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        let workspace = Workspace {
            id: row.ws_id,
            created_at: row.ws_created_at,
            updated_at: row.ws_updated_at,
            owner_id: row.ws_owner_id,
            organization_id: row.ws_organization_id,
            template_id: row.ws_template_id,
            deleted: row.ws_deleted,
            name: row.ws_name,
            autostart_schedule: row.ws_autostart_schedule,
            ttl: row.ws_ttl,
            last_used_at: row.ws_last_used_at,
            dormant_at: row.ws_dormant_at,
            deleting_at: row.ws_deleting_at,
            automatic_updates: row.ws_automatic_updates,
            favorite: row.ws_favorite,
        };
        if allowed(subject, Action::Read, &workspace_object(&workspace)) {
            Ok(AgentWithWorkspace {
                agent: row.agent,
                workspace,
                owner_username: row.owner_username,
            })
        } else {
            Err(StoreError::NotFound)
        }
    }
}
