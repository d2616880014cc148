//! Provisioner jobs: a daemon takes the oldest, reports its outcome, keeps it alive; hung
//! jobs are ended.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use uuid::Uuid;

use super::{builds::NewResource, templates::job_columns};
use crate::{
    Store,
    authz::check,
    db::on_db,
    error::Result,
    models::{ProvisionerJob, now},
};

impl Store {
    /// Takes the oldest pending job for a provisioner daemon, or `None`.
    pub async fn acquire_job(
        &self,
        subject: &Subject,
        worker_id: Uuid,
    ) -> Result<Option<ProvisionerJob>> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::ProvisionerJobs),
        )?;
        const SQLITE: &str = concat!(
            "UPDATE provisioner_jobs SET started_at = $1, updated_at = $1, worker_id = $2 WHERE id = \
             (SELECT id FROM provisioner_jobs WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL \
             ORDER BY created_at, id LIMIT 1) RETURNING ",
            job_columns!()
        );
        // Several replicas' daemons may poll at once: each takes a different job.
        const POSTGRES: &str = concat!(
            "UPDATE provisioner_jobs SET started_at = $1, updated_at = $1, worker_id = $2 WHERE id = \
             (SELECT id FROM provisioner_jobs WHERE started_at IS NULL AND canceled_at IS NULL AND completed_at IS NULL \
             ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
            job_columns!()
        );
        let now = now();
        // No agent-cache invalidation: pending and running open and close nothing (the
        // shutdown window accepts either), so a started job decides no token anew.
        let job = on_db!(self, write, |pool, sql = (SQLITE, POSTGRES)| {
            sqlx::query_as::<_, ProvisionerJob>(sql).bind(now).bind(worker_id).fetch_optional(pool).await
        })?;
        Ok(job)
    }

    /// Finishes an import job.
    pub async fn complete_import_job(
        &self,
        subject: &Subject,
        job_id: Uuid,
        error: Option<&str>,
    ) -> Result<()> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::ProvisionerJobs),
        )?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE provisioner_jobs SET completed_at = $2, updated_at = $2, error = $3 WHERE id = $1 AND completed_at IS NULL")
                .bind(job_id)
                .bind(now)
                .bind(error)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Finishes a build job: on success, stores its resources and agents, retires the
    /// agents of earlier builds, and marks a deleted workspace deleted; all in one
    /// transaction.
    pub async fn complete_build_job(
        &self,
        subject: &Subject,
        job_id: Uuid,
        error: Option<&str>,
        resources: &[NewResource],
    ) -> Result<()> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::ProvisionerJobs),
        )?;
        check(
            subject,
            Action::CreateAgent,
            &Object::of(ResourceType::Workspace),
        )?;
        let now = now();
        let owner = on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let (workspace_id, build_number, transition, owner): (Uuid, i32, String, Uuid) =
                sqlx::query_as(
                    "SELECT b.workspace_id, b.build_number, b.transition, w.owner_id FROM workspace_builds b \
                     JOIN workspaces w ON w.id = b.workspace_id WHERE b.job_id = $1",
                )
                .bind(job_id)
                .fetch_one(&mut *tx)
                .await?;
            // A job canceled while it ran ends canceled: its results are discarded.
            let (canceled, completed): (
                Option<chrono::DateTime<chrono::Utc>>,
                Option<chrono::DateTime<chrono::Utc>>,
            ) = sqlx::query_as(
                "SELECT canceled_at, completed_at FROM provisioner_jobs WHERE id = $1",
            )
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?;
            // Already ended (the hung-job detector gave up on it): that result stands.
            if completed.is_some() {
                return Ok(());
            }
            if error.is_none() && canceled.is_none() {
                for resource in resources {
                    let resource_id = Uuid::now_v7();
                    sqlx::query(
                        "INSERT INTO workspace_resources (id, created_at, job_id, transition, type, name, hide, icon, daily_cost) \
                         VALUES ($1, $2, $3, $4, $5, $6, FALSE, '', 0)",
                    )
                    .bind(resource_id)
                    .bind(now)
                    .bind(job_id)
                    .bind(&transition)
                    .bind(&resource.resource_type)
                    .bind(&resource.name)
                    .execute(&mut *tx)
                    .await?;
                    for (order, agent) in resource.agents.iter().enumerate() {
                        sqlx::query(
                            "INSERT INTO workspace_agents (id, created_at, updated_at, name, resource_id, auth_token_hash, \
                             architecture, operating_system, directory, lifecycle_state, api_key_scope, deleted, \
                             connection_timeout_seconds, troubleshooting_url, display_order) \
                             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, 'created', 'all', FALSE, 120, '', $9)",
                        )
                        .bind(Uuid::now_v7())
                        .bind(now)
                        .bind(&agent.name)
                        .bind(resource_id)
                        .bind(&agent.auth_token_hash)
                        .bind(&agent.architecture)
                        .bind(&agent.operating_system)
                        .bind(&agent.directory)
                        .bind(i32::try_from(order).unwrap_or(i32::MAX))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                // Agents of earlier builds stop authenticating once a newer build succeeds.
                sqlx::query(
                    "UPDATE workspace_agents SET deleted = TRUE, updated_at = $3 WHERE deleted = FALSE AND resource_id IN \
                     (SELECT r.id FROM workspace_resources r JOIN workspace_builds b ON b.job_id = r.job_id \
                      WHERE b.workspace_id = $1 AND b.build_number < $2)",
                )
                .bind(workspace_id)
                .bind(build_number)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if transition == "delete" {
                    sqlx::query(
                        "UPDATE workspaces SET deleted = TRUE, updated_at = $2 WHERE id = $1",
                    )
                    .bind(workspace_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query("UPDATE provisioner_jobs SET completed_at = $2, updated_at = $2, error = $3 WHERE id = $1")
                .bind(job_id)
                .bind(now)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE workspace_builds SET updated_at = $2 WHERE job_id = $1")
                .bind(job_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            owner
        });
        // The job's status, the agents it retired and a deleted workspace all decide
        // whether the owner's agent tokens authenticate.
        self.agents_changed(owner);
        Ok(())
    }

    /// The provisioner's heartbeat: a running job it still works on is not hung.
    pub async fn touch_job(&self, subject: &Subject, job_id: Uuid) -> Result<()> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::ProvisionerJobs),
        )?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE provisioner_jobs SET updated_at = $2 WHERE id = $1 AND completed_at IS NULL",
            )
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Ends jobs a provisioner took and never finished (Coder's hung-job detector): those
    /// running and not updated since `updated_before` fail with `message`, and their builds
    /// with them (updated at the same time). Guarded, so a job its provisioner finishes at
    /// the same moment keeps its own result. Returns how many were ended.
    pub async fn fail_hung_jobs(
        &self,
        subject: &Subject,
        updated_before: chrono::DateTime<chrono::Utc>,
        message: &str,
    ) -> Result<u64> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::ProvisionerJobs),
        )?;
        let now = now();
        let ended = on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(
                "UPDATE provisioner_jobs SET completed_at = $2, updated_at = $2, error = $3 \
                 WHERE started_at IS NOT NULL AND completed_at IS NULL AND updated_at < $1",
            )
            .bind(updated_before)
            .bind(now)
            .bind(message)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE workspace_builds SET updated_at = $1 WHERE job_id IN \
                 (SELECT id FROM provisioner_jobs WHERE completed_at = $1 AND error = $2)",
            )
            .bind(now)
            .bind(message)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(ended)
        })?;
        if ended > 0 {
            // A failed stop closes its start's shutdown window; whose is not known here.
            self.auth_cache.invalidate_agents();
        }
        Ok(ended)
    }
}
