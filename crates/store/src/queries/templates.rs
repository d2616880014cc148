//! Files, template versions (with their import jobs) and templates.

use std::collections::BTreeMap;

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Conflict, Result, StoreError},
    models::{File, ProvisionerJob, Template, TemplateVersion, now},
    objects::{file_object, orphan_version_object, template_acl, template_base},
};

macro_rules! job_columns {
    () => {
        "id, created_at, updated_at, started_at, canceled_at, completed_at, error, error_code, \
         organization_id, initiator_id, provisioner, storage_method, type, input, worker_id, file_id, \
         tags, job_status"
    };
}
pub(crate) use job_columns;

macro_rules! template_columns {
    () => {
        "id, created_at, updated_at, organization_id, deleted, name, display_name, description, icon, \
         provisioner, active_version_id, created_by, user_acl, group_acl, default_ttl_ms, \
         activity_bump_ms, allow_user_autostart, allow_user_autostop, allow_user_cancel_workspace_jobs, \
         require_active_version"
    };
}

macro_rules! version_columns {
    () => {
        "id, template_id, organization_id, created_at, updated_at, name, message, readme, job_id, \
         created_by, archived"
    };
}

pub(crate) const INSERT_JOB: &str = "INSERT INTO provisioner_jobs (id, created_at, updated_at, \
    organization_id, initiator_id, provisioner, storage_method, type, input, file_id, tags) \
    VALUES ($1, $2, $2, $3, $4, $5, 'file', $6, $7, $8, $9)";

/// A new template version and the import job that goes with it.
#[derive(Debug, Clone)]
pub struct NewTemplateVersion {
    pub id: Uuid,
    pub template_id: Option<Uuid>,
    pub organization_id: Uuid,
    pub name: String,
    pub message: String,
    pub file_id: Uuid,
    pub provisioner: String,
    pub created_by: Uuid,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub active_version_id: Uuid,
    pub created_by: Uuid,
    /// Whether the org's "Everyone" group gets `read` and `use`.
    pub everyone_can_use: bool,
}

impl Store {
    /// Stores an uploaded file. The same bytes uploaded again by the same user return
    /// the existing file and `false`.
    pub async fn insert_file(
        &self,
        subject: &Subject,
        created_by: Uuid,
        mimetype: &str,
        data: Vec<u8>,
    ) -> Result<(File, bool)> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::File).owned_by(created_by),
        )?;
        let hash: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let existing = on_db!(self, read, |pool| {
            sqlx::query_as::<_, File>(
                "SELECT id, hash, created_by, created_at, mimetype, data FROM files WHERE hash = $1 AND created_by = $2",
            )
            .bind(&hash)
            .bind(created_by)
            .fetch_optional(pool)
            .await
        })?;
        if let Some(file) = existing {
            return Ok((file, false));
        }
        let file = File {
            id: Uuid::now_v7(),
            hash,
            created_by,
            created_at: now(),
            mimetype: mimetype.to_owned(),
            data,
        };
        on_db!(self, write, |pool| {
            sqlx::query("INSERT INTO files (id, hash, created_by, created_at, mimetype, data) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(file.id)
                .bind(&file.hash)
                .bind(file.created_by)
                .bind(file.created_at)
                .bind(&file.mimetype)
                .bind(&file.data)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok((file, true))
    }

    pub async fn file_by_id(&self, subject: &Subject, id: Uuid) -> Result<File> {
        let file = on_db!(self, read, |pool| {
            sqlx::query_as::<_, File>(
                "SELECT id, hash, created_by, created_at, mimetype, data FROM files WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &file_object(&file))?;
        Ok(file)
    }

    pub(crate) async fn job_unchecked(&self, id: Uuid) -> Result<ProvisionerJob> {
        let sql = concat!(
            "SELECT ",
            job_columns!(),
            " FROM provisioner_jobs WHERE id = $1"
        );
        on_db!(self, read, |pool| sqlx::query_as::<_, ProvisionerJob>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// Creates a version and enqueues its import job.
    pub async fn create_template_version(
        &self,
        subject: &Subject,
        v: NewTemplateVersion,
    ) -> Result<(TemplateVersion, ProvisionerJob)> {
        match v.template_id {
            Some(tid) => {
                let template = self.template_by_id(subject, tid).await?;
                template_acl(&template).with(template_base(&template), |o| {
                    check(subject, Action::Update, o)
                })?;
            }
            None => check(
                subject,
                Action::Create,
                &Object::of(ResourceType::Template).in_org(v.organization_id),
            )?,
        }
        let file = self.file_by_id(subject, v.file_id).await?;
        let now = now();
        let job_id = Uuid::now_v7();
        let input = serde_json::json!({"template_version_id": v.id});
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_JOB)
                .bind(job_id)
                .bind(now)
                .bind(v.organization_id)
                .bind(v.created_by)
                .bind(&v.provisioner)
                .bind("template_version_import")
                .bind(Json(&input))
                .bind(file.id)
                .bind(Json(&v.tags))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at, name, \
                 message, readme, job_id, created_by, archived) VALUES ($1, $2, $3, $4, $4, $5, $6, '', $7, $8, FALSE)",
            )
            .bind(v.id)
            .bind(v.template_id)
            .bind(v.organization_id)
            .bind(now)
            .bind(&v.name)
            .bind(&v.message)
            .bind(job_id)
            .bind(v.created_by)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.template_version_by_id(subject, v.id).await
    }

    /// A version and its import job, if the subject may read the version's template.
    pub async fn template_version_by_id(
        &self,
        subject: &Subject,
        id: Uuid,
    ) -> Result<(TemplateVersion, ProvisionerJob)> {
        let sql = concat!(
            "SELECT ",
            version_columns!(),
            " FROM template_versions WHERE id = $1"
        );
        let version = on_db!(self, read, |pool| sqlx::query_as::<_, TemplateVersion>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        self.check_version(subject, Action::Read, &version).await?;
        let job = self.job_unchecked(version.job_id).await?;
        Ok((version, job))
    }

    async fn check_version(
        &self,
        subject: &Subject,
        action: Action,
        version: &TemplateVersion,
    ) -> Result<()> {
        match version.template_id {
            Some(tid) => {
                let template = self.template_unchecked(tid).await?;
                template_acl(&template).with(template_base(&template), |o| {
                    check_or_hide(subject, action, o)
                })
            }
            None => check_or_hide(subject, action, &orphan_version_object(version)),
        }
    }

    async fn template_unchecked(&self, id: Uuid) -> Result<Template> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE id = $1 AND deleted = FALSE"
        );
        on_db!(self, read, |pool| sqlx::query_as::<_, Template>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// Creates a template whose first active version is an existing, unattached version.
    pub async fn create_template(&self, subject: &Subject, t: NewTemplate) -> Result<Template> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::Template).in_org(t.organization_id),
        )?;
        let (version, job) = self
            .template_version_by_id(subject, t.active_version_id)
            .await?;
        if version.template_id.is_some() || version.organization_id != t.organization_id {
            return Err(StoreError::Conflict(Conflict::VersionInUse));
        }
        let now = now();
        let everyone: BTreeMap<Uuid, Vec<String>> = if t.everyone_can_use {
            BTreeMap::from([(t.organization_id, vec!["read".to_owned(), "use".to_owned()])])
        } else {
            BTreeMap::new()
        };
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO templates (id, created_at, updated_at, organization_id, deleted, name, display_name, \
                 description, icon, provisioner, active_version_id, created_by, user_acl, group_acl) \
                 VALUES ($1, $2, $2, $3, FALSE, $4, $5, $6, $7, $8, $9, $10, '{}', $11)",
            )
            .bind(t.id)
            .bind(now)
            .bind(t.organization_id)
            .bind(&t.name)
            .bind(&t.display_name)
            .bind(&t.description)
            .bind(&t.icon)
            .bind(&job.provisioner)
            .bind(t.active_version_id)
            .bind(t.created_by)
            .bind(Json(&everyone))
            .execute(&mut *tx)
            .await?;
            let attached = sqlx::query("UPDATE template_versions SET template_id = $1, updated_at = $2 WHERE id = $3 AND template_id IS NULL")
                .bind(t.id)
                .bind(now)
                .bind(t.active_version_id)
                .execute(&mut *tx)
                .await?;
            if attached.rows_affected() != 1 {
                return Err(StoreError::Conflict(Conflict::VersionInUse));
            }
            tx.commit().await?;
        });
        self.template_unchecked(t.id).await
    }

    pub async fn template_by_id(&self, subject: &Subject, id: Uuid) -> Result<Template> {
        let template = self.template_unchecked(id).await?;
        template_acl(&template).with(template_base(&template), |o| {
            check_or_hide(subject, Action::Read, o)
        })?;
        Ok(template)
    }

    pub async fn template_by_name(
        &self,
        subject: &Subject,
        org: Uuid,
        name: &str,
    ) -> Result<Template> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE organization_id = $1 AND lower(name) = lower($2) AND deleted = FALSE"
        );
        let template = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Template>(sql)
                .bind(org)
                .bind(name)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        template_acl(&template).with(template_base(&template), |o| {
            check_or_hide(subject, Action::Read, o)
        })?;
        Ok(template)
    }

    /// Templates the subject may read (of one org, or all), by name.
    pub async fn list_templates(
        &self,
        subject: &Subject,
        org: Option<Uuid>,
    ) -> Result<Vec<Template>> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE deleted = FALSE AND ($1 OR organization_id = $2) ORDER BY lower(name), id"
        );
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Template>(sql)
                .bind(org.is_none())
                .bind(org.unwrap_or_default())
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .filter(|t| {
                template_acl(t).with(template_base(t), |o| allowed(subject, Action::Read, o))
            })
            .collect())
    }

    /// Whether the subject may `update` a template (template administrators).
    pub fn check_template_update(&self, subject: &Subject, template: &Template) -> Result<()> {
        template_acl(template).with(template_base(template), |o| {
            check(subject, Action::Update, o)
        })
    }

    /// Whether the subject may `use` a template (to build workspaces from it).
    pub fn check_template_use(&self, subject: &Subject, template: &Template) -> Result<()> {
        template_acl(template).with(template_base(template), |o| {
            check_or_hide(subject, Action::Use, o)
        })
    }
}
