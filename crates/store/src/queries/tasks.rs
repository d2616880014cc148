//! Tasks (spec/auth.md §6.5): looked up by id, then by name for their owner; deleted
//! tasks are gone for every lookup.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use uuid::Uuid;

use crate::{
    Store,
    authz::{allowed, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{Task, now},
};

macro_rules! task_columns {
    () => {
        "id, organization_id, owner_id, name, display_name, workspace_id, template_version_id, prompt, created_at, deleted_at"
    };
}

pub fn task_object<'a>(t: &Task) -> Object<'a> {
    Object::of(ResourceType::Task)
        .with_id(t.id)
        .in_org(t.organization_id)
        .owned_by(t.owner_id)
}

impl Store {
    /// A live task by id.
    pub async fn task_by_id(&self, subject: &Subject, id: Uuid) -> Result<Task> {
        let sql = concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = $1 AND deleted_at IS NULL"
        );
        let task = on_db!(self, read, |pool| sqlx::query_as::<_, Task>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &task_object(&task))?;
        Ok(task)
    }

    /// A live task of `owner` by name, case-insensitively.
    pub async fn task_by_owner_and_name(
        &self,
        subject: &Subject,
        owner: Uuid,
        name: &str,
    ) -> Result<Task> {
        let sql = concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE owner_id = $1 AND lower(name) = lower($2) AND deleted_at IS NULL"
        );
        let task = on_db!(self, read, |pool| sqlx::query_as::<_, Task>(sql)
            .bind(owner)
            .bind(name)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &task_object(&task))?;
        Ok(task)
    }

    /// Live tasks the subject may read, newest first.
    pub async fn list_tasks(&self, subject: &Subject) -> Result<Vec<Task>> {
        let sql = concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE deleted_at IS NULL ORDER BY created_at DESC, id"
        );
        let rows = on_db!(self, read, |pool| sqlx::query_as::<_, Task>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .filter(|t| allowed(subject, Action::Read, &task_object(t)))
            .collect())
    }

    /// Soft-deletes a task.
    pub async fn delete_task(&self, subject: &Subject, task: &Task) -> Result<()> {
        check_or_hide(subject, Action::Delete, &task_object(task))?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE tasks SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(task.id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        // The workspace's agents lose the task from their scope.
        self.agents_changed(task.owner_id);
        Ok(())
    }
}
