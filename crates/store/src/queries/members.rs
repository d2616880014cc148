//! Organizations beyond the default one, their members, and role assignment.

use gatehouse_rbac::{Action, Object, ResourceType, Subject, roles::can_assign};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{MemberWithUser, NewOrganization, Organization, OrganizationMember, User, now},
};

macro_rules! org_columns {
    () => {
        "id, name, display_name, description, icon, is_default, deleted, default_org_member_roles, \
         created_at, updated_at"
    };
}

macro_rules! member_with_user_columns {
    () => {
        "m.user_id, m.organization_id, m.roles, m.created_at, m.updated_at, u.username, u.name, \
         u.avatar_url, u.email, u.status, u.login_type, u.last_seen_at, u.created_at AS user_created_at, \
         u.updated_at AS user_updated_at, u.is_service_account, u.rbac_roles"
    };
}

pub(crate) fn organization_object<'a>(id: Uuid) -> Object<'a> {
    Object::of(ResourceType::Organization)
        .with_id(id)
        .in_org(id)
}

pub(crate) fn member_object<'a>(org: Uuid, user: Uuid) -> Object<'a> {
    Object::of(ResourceType::OrganizationMember)
        .with_id(user)
        .in_org(org)
        .owned_by(user)
}

/// Checks that `subject` may move a principal from `old` to `new` roles: `assign` for each
/// added role, `unassign` for each removed one, and the assignment matrix for both.
fn check_role_change(
    subject: &Subject,
    old: &[String],
    new: &[String],
    org: Option<Uuid>,
) -> Result<()> {
    let object = match org {
        Some(org) => Object::of(ResourceType::AssignOrgRole).in_org(org),
        None => Object::of(ResourceType::AssignRole),
    };
    let added: Vec<&String> = new.iter().filter(|r| !old.contains(r)).collect();
    let removed: Vec<&String> = old.iter().filter(|r| !new.contains(r)).collect();
    // A write of the roles is a write even when it changes nothing: who may not assign
    // roles gets the same 403 for a no-op as for a change, not a 200 and an audit entry
    // that reads like a role write (issue #29).
    let no_op = added.is_empty() && removed.is_empty();
    if !added.is_empty() || no_op {
        check(subject, Action::Assign, &object)?;
    }
    if !removed.is_empty() {
        check(subject, Action::Unassign, &object)?;
    }
    if let Some(role) = added
        .into_iter()
        .chain(removed)
        .find(|r| !can_assign(subject, r, org))
    {
        return Err(StoreError::CannotAssign(role.clone()));
    }
    Ok(())
}

impl Store {
    /// Organizations the subject may read, oldest first.
    pub async fn list_organizations(&self, subject: &Subject) -> Result<Vec<Organization>> {
        let sql = concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE deleted = FALSE ORDER BY created_at, id"
        );
        let rows = on_db!(self, read, |pool| sqlx::query_as::<_, Organization>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .filter(|o| allowed(subject, Action::Read, &organization_object(o.id)))
            .collect())
    }

    pub async fn organization_by_id(&self, subject: &Subject, id: Uuid) -> Result<Organization> {
        let sql = concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE id = $1 AND deleted = FALSE"
        );
        let org = on_db!(self, read, |pool| sqlx::query_as::<_, Organization>(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &organization_object(org.id))?;
        Ok(org)
    }

    /// A non-deleted organization by name, case-insensitively.
    pub async fn organization_by_name(
        &self,
        subject: &Subject,
        name: &str,
    ) -> Result<Organization> {
        let sql = concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE lower(name) = lower($1) AND deleted = FALSE"
        );
        let org = on_db!(self, read, |pool| sqlx::query_as::<_, Organization>(sql)
            .bind(name)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &organization_object(org.id))?;
        Ok(org)
    }

    /// Creates an organization with `creator` as its first member, an organization-admin.
    pub async fn create_organization(
        &self,
        subject: &Subject,
        new: NewOrganization,
        creator: Uuid,
    ) -> Result<Organization> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::Organization),
        )?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO organizations (id, name, display_name, description, icon, is_default, deleted, \
                 shareable_workspace_owners, default_org_member_roles, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, FALSE, 'everyone', $6, $7, $7)",
            )
            .bind(new.id)
            .bind(&new.name)
            .bind(&new.display_name)
            .bind(&new.description)
            .bind(&new.icon)
            .bind(Json(vec!["organization-workspace-access".to_owned()]))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO organization_members (user_id, organization_id, roles, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(creator)
            .bind(new.id)
            .bind(Json(vec!["organization-admin".to_owned()]))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.auth_changed(creator);
        self.organization_by_id(crate::system::system_restricted(), new.id)
            .await
    }

    /// Memberships (of one org or all, of one user or all) joined with their users,
    /// filtered to what the subject may read. Deleted users are left out.
    pub async fn organization_members(
        &self,
        subject: &Subject,
        org: Option<Uuid>,
        user: Option<Uuid>,
    ) -> Result<Vec<MemberWithUser>> {
        let sql = concat!(
            "SELECT ",
            member_with_user_columns!(),
            " FROM organization_members m JOIN users u ON u.id = m.user_id \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE u.deleted = FALSE AND o.deleted = FALSE \
             AND ($1 OR m.organization_id = $2) AND ($3 OR m.user_id = $4) \
             ORDER BY lower(u.username), m.organization_id"
        );
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, MemberWithUser>(sql)
                .bind(org.is_none())
                .bind(org.unwrap_or_default())
                .bind(user.is_none())
                .bind(user.unwrap_or_default())
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                allowed(
                    subject,
                    Action::Read,
                    &member_object(r.member.organization_id, r.member.user_id),
                )
            })
            .collect())
    }

    async fn member_unchecked(&self, org: Uuid, user: Uuid) -> Result<OrganizationMember> {
        on_db!(self, read, |pool| {
            sqlx::query_as::<_, OrganizationMember>(
                "SELECT user_id, organization_id, roles, created_at, updated_at FROM organization_members \
                 WHERE organization_id = $1 AND user_id = $2",
            )
            .bind(org)
            .bind(user)
            .fetch_optional(pool)
            .await
        })?
        .ok_or(StoreError::NotFound)
    }

    /// Adds a user to an organization with no explicit roles.
    pub async fn insert_organization_member(
        &self,
        subject: &Subject,
        org: Uuid,
        user: Uuid,
    ) -> Result<OrganizationMember> {
        check_or_hide(subject, Action::Read, &organization_object(org))?;
        check(subject, Action::Create, &member_object(org, user))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let live: Option<bool> = sqlx::query_scalar("SELECT deleted FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
            if live != Some(false) {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO organization_members (user_id, organization_id, roles, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(user)
            .bind(org)
            .bind(Json(Vec::<String>::new()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.auth_changed(user);
        self.member_unchecked(org, user).await
    }

    /// Removes a user from an organization, with their group memberships there.
    pub async fn delete_organization_member(
        &self,
        subject: &Subject,
        org: Uuid,
        user: Uuid,
    ) -> Result<()> {
        check_or_hide(subject, Action::Delete, &member_object(org, user))?;
        let removed = on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "DELETE FROM group_members WHERE user_id = $1 AND group_id IN \
                 (SELECT id FROM groups WHERE organization_id = $2)",
            )
            .bind(user)
            .bind(org)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(
                "DELETE FROM organization_members WHERE user_id = $1 AND organization_id = $2",
            )
            .bind(user)
            .bind(org)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            done.rows_affected()
        });
        self.auth_changed(user);
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replaces a membership's roles. Every added or removed role must be one the
    /// subject may grant in this organization.
    pub async fn update_organization_member_roles(
        &self,
        subject: &Subject,
        org: Uuid,
        user: Uuid,
        roles: Vec<String>,
    ) -> Result<OrganizationMember> {
        check_or_hide(subject, Action::Read, &member_object(org, user))?;
        let current = self.member_unchecked(org, user).await?;
        check_role_change(subject, &current.roles, &roles, Some(org))?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query("UPDATE organization_members SET roles = $3, updated_at = $4 WHERE organization_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .bind(Json(&roles))
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed(user);
        done?;
        self.member_unchecked(org, user).await
    }

    /// Replaces a user's site roles (`member` is implicit and never stored).
    pub async fn update_user_site_roles(
        &self,
        subject: &Subject,
        user: Uuid,
        roles: Vec<String>,
    ) -> Result<User> {
        let current = self.user_by_id(subject, user).await?;
        check_role_change(subject, &current.rbac_roles, &roles, None)?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query("UPDATE users SET rbac_roles = $2, updated_at = $3 WHERE id = $1")
                .bind(user)
                .bind(Json(&roles))
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed(user);
        done?;
        self.user_by_id_unchecked(user).await
    }
}

impl Store {
    /// Whether the subject may list site roles (`assign_role: read`).
    pub fn check_can_read_site_roles(&self, subject: &Subject) -> Result<()> {
        check(subject, Action::Read, &Object::of(ResourceType::AssignRole))
    }
}
