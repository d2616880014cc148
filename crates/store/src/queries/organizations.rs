//! Organizations (the default one is created at start-up).

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::{check, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{Organization, now},
};

macro_rules! org_columns {
    () => {
        "id, name, display_name, description, icon, is_default, deleted, default_org_member_roles, \
         created_at, updated_at"
    };
}

/// The default organization's name, as Coder names it.
pub const DEFAULT_ORGANIZATION_NAME: &str = "coder";

impl Store {
    /// Creates the default organization if there is none, and returns it. Idempotent and
    /// safe when several replicas start at once.
    pub async fn ensure_default_organization(&self, subject: &Subject) -> Result<Organization> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::Organization),
        )?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO organizations (id, name, display_name, description, icon, is_default, \
                 deleted, shareable_workspace_owners, default_org_member_roles, created_at, updated_at) \
                 VALUES ($1, $2, 'Coder', 'Builtin default organization.', '', TRUE, FALSE, 'everyone', $3, $4, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(DEFAULT_ORGANIZATION_NAME)
            .bind(Json(vec!["organization-workspace-access".to_owned()]))
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        let org = self.default_organization(subject).await?;
        // The prebuilds system user belongs to the default organization (decisions.md 24).
        let now = crate::models::now();
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO organization_members (user_id, organization_id, roles, created_at, updated_at) \
                 VALUES ($1, $2, '[]', $3, $3) ON CONFLICT DO NOTHING",
            )
            .bind(crate::PREBUILDS_USER_ID)
            .bind(org.id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(org)
    }

    pub async fn default_organization(&self, subject: &Subject) -> Result<Organization> {
        let sql = concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE is_default = TRUE"
        );
        let org = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Organization>(sql)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(
            subject,
            Action::Read,
            &super::members::organization_object(org.id),
        )?;
        Ok(org)
    }
}
