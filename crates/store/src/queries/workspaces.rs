//! Workspaces: creating one with its first build (and task), reading and listing them.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    builds::{BuildRows, BuildWithJob, INSERT_BUILD, insert_build_rows},
    columns::workspace_columns,
    templates::INSERT_JOB,
};
use crate::{
    Store,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{Workspace, now},
    objects::workspace_object,
};

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
}
