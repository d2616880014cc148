//! Workspaces, builds (each with its provisioner job), resources and agents.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use super::templates::{INSERT_JOB, job_columns};
use crate::{
    Store,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Conflict, Result, StoreError},
    models::{ProvisionerJob, Workspace, WorkspaceAgent, WorkspaceBuild, WorkspaceResource, now},
    objects::workspace_object,
};

macro_rules! workspace_columns {
    () => {
        "w.id, w.created_at, w.updated_at, w.owner_id, w.organization_id, w.template_id, w.deleted, w.name, \
         w.autostart_schedule, w.ttl, w.last_used_at, w.dormant_at, w.deleting_at, w.automatic_updates, w.favorite"
    };
}

macro_rules! build_columns {
    () => {
        "b.id, b.created_at, b.updated_at, b.workspace_id, b.template_version_id, b.build_number, \
         b.transition, b.initiator_id, b.job_id, b.deadline, b.max_deadline, b.reason, b.daily_cost"
    };
}

macro_rules! agent_columns {
    () => {
        "a.id, a.created_at, a.updated_at, a.name, a.resource_id, a.architecture, a.operating_system, \
         a.directory, a.version, a.api_version, a.lifecycle_state, a.parent_id, a.api_key_scope, a.deleted, \
         a.first_connected_at, a.last_connected_at, a.disconnected_at, a.started_at, a.ready_at, \
         a.connection_timeout_seconds, a.troubleshooting_url, a.display_order"
    };
}

/// The two rows every new build writes: its provisioner job, then the build itself.
struct BuildRows<'a> {
    job_id: Uuid,
    build_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    organization_id: Uuid,
    workspace_id: Uuid,
    template_version_id: Uuid,
    build_number: i32,
    transition: &'a str,
    initiator: Uuid,
    provisioner: &'a str,
    file_id: Uuid,
}

const INSERT_BUILD: &str = "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, \
    template_version_id, build_number, transition, initiator_id, job_id, reason, daily_cost) \
    VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, 'initiator', 0)";

/// Writes [`BuildRows`] inside a transaction; each backend's arm compiles it for its driver.
macro_rules! insert_build_rows {
    ($tx:ident, $rows:expr) => {{
        let rows = $rows;
        sqlx::query(INSERT_JOB)
            .bind(rows.job_id)
            .bind(rows.now)
            .bind(rows.organization_id)
            .bind(rows.initiator)
            .bind(rows.provisioner)
            .bind("workspace_build")
            .bind(Json(serde_json::json!({"workspace_build_id": rows.build_id})))
            .bind(rows.file_id)
            .bind(Json(serde_json::json!({"owner": "", "scope": "organization"})))
            .execute(&mut *$tx)
            .await?;
        sqlx::query(INSERT_BUILD)
            .bind(rows.build_id)
            .bind(rows.now)
            .bind(rows.workspace_id)
            .bind(rows.template_version_id)
            .bind(rows.build_number)
            .bind(rows.transition)
            .bind(rows.initiator)
            .bind(rows.job_id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// A build transition and the RBAC action it needs (spec/auth.md §4.13).
pub fn transition_action(transition: &str, dormant: bool) -> Option<Action> {
    match transition {
        "start" if dormant => Some(Action::Update),
        "start" => Some(Action::Start),
        "stop" => Some(Action::Stop),
        "delete" => Some(Action::Delete),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub organization_id: Uuid,
    pub template_id: Uuid,
    pub template_version_id: Uuid,
    pub name: String,
    pub initiator_id: Uuid,
    pub automatic_updates: String,
    pub ttl_ms: Option<i64>,
    pub autostart_schedule: Option<String>,
    pub file_id: Uuid,
    pub provisioner: String,
}

/// A task created together with its workspace.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub prompt: String,
}

/// What the provisioner produced for a build.
#[derive(Debug, Clone, Default)]
pub struct NewResource {
    pub resource_type: String,
    pub name: String,
    pub agents: Vec<NewAgent>,
}

#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    /// SHA-256 of the agent token (decisions.md 35); the token itself is never stored.
    pub auth_token_hash: Vec<u8>,
    pub operating_system: String,
    pub architecture: String,
    pub directory: String,
}

/// A build to start: what it does, from which version (and its source file).
#[derive(Debug, Clone, Copy)]
pub struct NewBuild<'a> {
    pub transition: &'a str,
    pub template_version_id: Uuid,
    pub file_id: Uuid,
    pub provisioner: &'a str,
    pub initiator: Uuid,
}

/// A build with its job.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildWithJob {
    pub build: WorkspaceBuild,
    pub job: ProvisionerJob,
}

impl Store {
    pub(crate) async fn workspace_unchecked(&self, id: Uuid) -> Result<Workspace> {
        let sql = concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces w WHERE w.id = $1"
        );
        on_db!(self, read, |pool| sqlx::query_as::<_, Workspace>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// Creates a workspace and its first (start) build in one transaction.
    pub async fn create_workspace(
        &self,
        subject: &Subject,
        w: NewWorkspace,
    ) -> Result<(Workspace, BuildWithJob)> {
        self.create_workspace_with_task(subject, w, None).await
    }

    /// Creates a workspace, its first build and, when given, the task it runs, all in
    /// one transaction: a name conflict on either leaves nothing behind.
    pub async fn create_workspace_with_task(
        &self,
        subject: &Subject,
        w: NewWorkspace,
        task: Option<NewTask>,
    ) -> Result<(Workspace, BuildWithJob)> {
        let object = Object::of(ResourceType::Workspace)
            .in_org(w.organization_id)
            .owned_by(w.owner_id);
        check(subject, Action::Create, &object)?;
        if let Some(t) = &task {
            let object = Object::of(ResourceType::Task)
                .with_id(t.id)
                .in_org(w.organization_id)
                .owned_by(w.owner_id);
            check(subject, Action::Create, &object)?;
        }
        let now = now();
        let job_id = Uuid::now_v7();
        let build_id = Uuid::now_v7();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, deleted, \
                 name, autostart_schedule, ttl, last_used_at, automatic_updates, favorite, group_acl, user_acl) \
                 VALUES ($1, $2, $2, $3, $4, $5, FALSE, $6, $7, $8, $2, $9, FALSE, '{}', '{}')",
            )
            .bind(w.id)
            .bind(now)
            .bind(w.owner_id)
            .bind(w.organization_id)
            .bind(w.template_id)
            .bind(&w.name)
            .bind(&w.autostart_schedule)
            .bind(w.ttl_ms)
            .bind(&w.automatic_updates)
            .execute(&mut *tx)
            .await?;
            insert_build_rows!(
                tx,
                BuildRows {
                    job_id,
                    build_id,
                    now,
                    organization_id: w.organization_id,
                    workspace_id: w.id,
                    template_version_id: w.template_version_id,
                    build_number: 1,
                    transition: "start",
                    initiator: w.initiator_id,
                    provisioner: &w.provisioner,
                    file_id: w.file_id,
                }
            );
            if let Some(t) = &task {
                sqlx::query(
                    "INSERT INTO tasks (id, organization_id, owner_id, name, display_name, workspace_id, \
                     template_version_id, prompt, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(t.id)
                .bind(w.organization_id)
                .bind(w.owner_id)
                .bind(&t.name)
                .bind(&t.display_name)
                .bind(w.id)
                .bind(w.template_version_id)
                .bind(&t.prompt)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        let workspace = self.workspace_unchecked(w.id).await?;
        let build = self.build_unchecked(build_id).await?;
        Ok((workspace, build))
    }

    /// A non-deleted workspace the subject may read.
    pub async fn workspace_by_id(&self, subject: &Subject, id: Uuid) -> Result<Workspace> {
        let workspace = self.workspace_unchecked(id).await?;
        if workspace.deleted {
            return Err(StoreError::NotFound);
        }
        check_or_hide(subject, Action::Read, &workspace_object(&workspace))?;
        Ok(workspace)
    }

    pub async fn workspace_by_owner_and_name(
        &self,
        subject: &Subject,
        owner: Uuid,
        name: &str,
    ) -> Result<Workspace> {
        let sql = concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces w WHERE w.owner_id = $1 AND lower(w.name) = lower($2) AND w.deleted = FALSE"
        );
        let workspace = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Workspace>(sql)
                .bind(owner)
                .bind(name)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &workspace_object(&workspace))?;
        Ok(workspace)
    }

    /// Non-deleted workspaces the subject may read, by owner then name.
    pub async fn list_workspaces(
        &self,
        subject: &Subject,
        owner: Option<Uuid>,
    ) -> Result<Vec<Workspace>> {
        let sql = concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces w WHERE w.deleted = FALSE AND ($1 OR w.owner_id = $2) ORDER BY w.owner_id, lower(w.name)"
        );
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Workspace>(sql)
                .bind(owner.is_none())
                .bind(owner.unwrap_or_default())
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .filter(|w| allowed(subject, Action::Read, &workspace_object(w)))
            .collect())
    }

    /// The build one query selects (by `$1`), with its job.
    async fn build_with_job(&self, sql: &'static str, key: Uuid) -> Result<BuildWithJob> {
        let build = on_db!(self, read, |pool| {
            sqlx::query_as::<_, WorkspaceBuild>(sql)
                .bind(key)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        let job = self.job_unchecked(build.job_id).await?;
        Ok(BuildWithJob { build, job })
    }

    pub(crate) async fn build_unchecked(&self, id: Uuid) -> Result<BuildWithJob> {
        let sql = concat!(
            "SELECT ",
            build_columns!(),
            " FROM workspace_builds b WHERE b.id = $1"
        );
        self.build_with_job(sql, id).await
    }

    /// A build, if the subject may read its workspace.
    pub async fn build_by_id(
        &self,
        subject: &Subject,
        id: Uuid,
    ) -> Result<(Workspace, BuildWithJob)> {
        let build = self.build_unchecked(id).await?;
        let workspace = self.workspace_unchecked(build.build.workspace_id).await?;
        check_or_hide(subject, Action::Read, &workspace_object(&workspace))?;
        Ok((workspace, build))
    }

    /// The newest build of a workspace the subject may read.
    pub async fn latest_build(
        &self,
        subject: &Subject,
        workspace: &Workspace,
    ) -> Result<BuildWithJob> {
        check_or_hide(subject, Action::Read, &workspace_object(workspace))?;
        let sql = concat!(
            "SELECT ",
            build_columns!(),
            " FROM workspace_builds b WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1"
        );
        self.build_with_job(sql, workspace.id).await
    }

    /// Every build of a workspace, newest first.
    pub async fn builds(
        &self,
        subject: &Subject,
        workspace: &Workspace,
    ) -> Result<Vec<BuildWithJob>> {
        check_or_hide(subject, Action::Read, &workspace_object(workspace))?;
        let sql = concat!(
            "SELECT ",
            build_columns!(),
            " FROM workspace_builds b WHERE b.workspace_id = $1 ORDER BY b.build_number DESC"
        );
        let builds = on_db!(self, read, |pool| sqlx::query_as::<_, WorkspaceBuild>(sql)
            .bind(workspace.id)
            .fetch_all(pool)
            .await)?;
        let mut out = Vec::with_capacity(builds.len());
        for build in builds {
            let job = self.job_unchecked(build.job_id).await?;
            out.push(BuildWithJob { build, job });
        }
        Ok(out)
    }

    /// Starts a new build. Refused with a conflict while the latest build is unfinished.
    pub async fn create_build(
        &self,
        subject: &Subject,
        workspace: &Workspace,
        new: NewBuild<'_>,
    ) -> Result<BuildWithJob> {
        let NewBuild {
            transition,
            template_version_id,
            file_id,
            provisioner,
            initiator,
        } = new;
        let action = transition_action(transition, workspace.dormant_at.is_some())
            .ok_or_else(|| StoreError::Corrupt(format!("unknown transition {transition:?}")))?;
        let object = workspace_object(workspace);
        if let Err(denied) = check_or_hide(subject, action, &object) {
            // Prebuilt workspaces may be rebuilt or deleted with `prebuilt_workspace`
            // rights alone (spec/auth.md §4.13).
            let prebuilt = Object {
                resource: ResourceType::PrebuiltWorkspace,
                ..object
            };
            let is_prebuild = workspace.owner_id == crate::PREBUILDS_USER_ID;
            let alt = matches!(action, Action::Delete | Action::Update);
            if !(is_prebuild && alt && check(subject, action, &prebuilt).is_ok()) {
                return Err(denied);
            }
        }
        let now = now();
        let job_id = Uuid::now_v7();
        let build_id = Uuid::now_v7();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let latest: Option<(i32, String)> = sqlx::query_as(
                "SELECT b.build_number, j.job_status FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
                 WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1",
            )
            .bind(workspace.id)
            .fetch_optional(&mut *tx)
            .await?;
            let number = match latest {
                Some((_, status))
                    if matches!(status.as_str(), "pending" | "running" | "canceling") =>
                {
                    return Err(StoreError::Conflict(Conflict::BuildInProgress));
                }
                Some((n, _)) => n + 1,
                None => 1,
            };
            insert_build_rows!(
                tx,
                BuildRows {
                    job_id,
                    build_id,
                    now,
                    organization_id: workspace.organization_id,
                    workspace_id: workspace.id,
                    template_version_id,
                    build_number: number,
                    transition,
                    initiator,
                    provisioner,
                    file_id,
                }
            );
            tx.commit().await?;
        });
        // A newer build ends the agents of older ones, or opens their shutdown window.
        self.agents_changed(workspace.owner_id);
        self.build_unchecked(build_id).await
    }

    /// The resources a job produced, each with its (non-deleted) agents.
    pub async fn resources_for_job(
        &self,
        subject: &Subject,
        workspace: &Workspace,
        job_id: Uuid,
    ) -> Result<Vec<(WorkspaceResource, Vec<WorkspaceAgent>)>> {
        check_or_hide(subject, Action::Read, &workspace_object(workspace))?;
        let resources = on_db!(self, read, |pool| {
            sqlx::query_as::<_, WorkspaceResource>(
                "SELECT id, created_at, job_id, transition, type, name, hide, icon, daily_cost FROM workspace_resources \
                 WHERE job_id = $1 ORDER BY name, id",
            )
            .bind(job_id)
            .fetch_all(pool)
            .await
        })?;
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            " FROM workspace_agents a WHERE a.resource_id = $1 AND a.deleted = FALSE ORDER BY a.display_order, a.name"
        );
        let mut out = Vec::with_capacity(resources.len());
        for resource in resources {
            let agents = on_db!(self, read, |pool| sqlx::query_as::<_, WorkspaceAgent>(sql)
                .bind(resource.id)
                .fetch_all(pool)
                .await)?;
            out.push((resource, agents));
        }
        Ok(out)
    }

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

    /// Cancels a build's job: a pending job ends `canceled` at once; a running one becomes
    /// `canceling` and ends `canceled` when its provisioner finishes. `Ok(false)` when the
    /// job had already finished.
    pub async fn cancel_build(
        &self,
        subject: &Subject,
        workspace: &Workspace,
        build: &BuildWithJob,
    ) -> Result<bool> {
        check_or_hide(subject, Action::Update, &workspace_object(workspace))?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE provisioner_jobs SET canceled_at = $2, updated_at = $2, \
                 completed_at = CASE WHEN started_at IS NULL THEN $2 ELSE completed_at END \
                 WHERE id = $1 AND completed_at IS NULL AND canceled_at IS NULL",
            )
            .bind(build.job.id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 1 {
            self.agents_changed(workspace.owner_id);
        }
        Ok(done == 1)
    }

    /// The build a job belongs to (for the provisioner).
    pub async fn build_for_job(&self, subject: &Subject, job_id: Uuid) -> Result<WorkspaceBuild> {
        check(subject, Action::Read, &Object::of(ResourceType::Workspace))?;
        let sql = concat!(
            "SELECT ",
            build_columns!(),
            " FROM workspace_builds b WHERE b.job_id = $1"
        );
        on_db!(self, read, |pool| sqlx::query_as::<_, WorkspaceBuild>(sql)
            .bind(job_id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
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
