//! Builds (each with its provisioner job), their resources and agents.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    columns::{agent_columns, build_columns},
    templates::INSERT_JOB,
};
use crate::{
    Store,
    authz::{check, check_or_hide},
    db::on_db,
    error::{Conflict, Result, StoreError},
    models::{ProvisionerJob, Workspace, WorkspaceAgent, WorkspaceBuild, WorkspaceResource, now},
    objects::workspace_object,
};

/// The two rows every new build writes: its provisioner job, then the build itself.
pub(crate) struct BuildRows<'a> {
    pub(crate) job_id: Uuid,
    pub(crate) build_id: Uuid,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) organization_id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) template_version_id: Uuid,
    pub(crate) build_number: i32,
    pub(crate) transition: &'a str,
    pub(crate) initiator: Uuid,
    pub(crate) provisioner: &'a str,
    pub(crate) file_id: Uuid,
}

pub(crate) const INSERT_BUILD: &str = "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, \
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

pub(crate) use insert_build_rows;

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
