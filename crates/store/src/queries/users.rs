//! Users, the first user and organization membership of users.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::{check, check_or_hide},
    db::on_db,
    error::{Conflict, Result, StoreError},
    models::{NewUser, Organization, User, now, zero_time},
};

macro_rules! user_columns {
    () => {
        "id, email, username, name, avatar_url, hashed_password, created_at, updated_at, status, \
         rbac_roles, login_type, deleted, last_seen_at, is_system, is_service_account"
    };
}

const INSERT_USER: &str = "INSERT INTO users (id, email, username, name, avatar_url, hashed_password, \
    created_at, updated_at, status, rbac_roles, login_type, deleted, last_seen_at, is_system, \
    is_service_account) VALUES ($1, $2, $3, $4, '', $5, $6, $6, $7, $8, $9, FALSE, $10, FALSE, FALSE)";

const INSERT_MEMBER: &str = "INSERT INTO organization_members (user_id, organization_id, roles, \
    created_at, updated_at) VALUES ($1, $2, $3, $4, $4)";

/// Why the first user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum FirstUserError {
    #[error("the first user has already been created")]
    AlreadyCreated,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Whether a (non-system) user exists, i.e. the deployment has been set up.
    pub async fn has_first_user(&self) -> Result<bool> {
        let count: i64 = on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM first_user_claim")
                .fetch_one(pool)
                .await
        })?;
        Ok(count > 0)
    }

    /// Creates the first user as an active `owner` in the default organization. Atomic:
    /// of two concurrent calls exactly one succeeds (the `first_user_claim` row).
    pub async fn create_first_user(
        &self,
        user: NewUser,
        default_org: &Organization,
    ) -> Result<User, FirstUserError> {
        match self.insert_first_user(&user, default_org).await {
            Ok(true) => {}
            Ok(false) | Err(StoreError::Conflict(Conflict::FirstUser)) => {
                return Err(FirstUserError::AlreadyCreated);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.user_by_id_unchecked(user.id).await?)
    }

    /// Returns false when a user already exists.
    async fn insert_first_user(&self, user: &NewUser, default_org: &Organization) -> Result<bool> {
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let existing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_system = FALSE")
                    .fetch_one(&mut *tx)
                    .await?;
            if existing > 0 {
                return Ok(false);
            }
            sqlx::query(INSERT_USER)
                .bind(user.id)
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.name)
                .bind(&user.hashed_password)
                .bind(now)
                .bind("active")
                .bind(Json(vec!["owner".to_owned()]))
                .bind("password")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO first_user_claim (singleton, user_id, created_at) VALUES (1, $1, $2)",
            )
            .bind(user.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(INSERT_MEMBER)
                .bind(user.id)
                .bind(default_org.id)
                .bind(Json(Vec::<String>::new()))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Creates a user and their organization memberships in one transaction.
    pub async fn create_user(&self, subject: &Subject, user: NewUser) -> Result<User> {
        self.create_user_with_link(subject, user, None).await
    }

    /// Creates a user and, in the same transaction, their link to an identity provider
    /// (a first OIDC sign-in), so neither exists without the other.
    pub async fn create_user_with_link(
        &self,
        subject: &Subject,
        user: NewUser,
        link: Option<&super::links::UserLink>,
    ) -> Result<User> {
        check(subject, Action::Create, &Object::of(ResourceType::User))?;
        let sealed = match link {
            Some(link) => {
                check(subject, Action::Update, &Object::of(ResourceType::System))?;
                Some((link, self.seal_link(link)?))
            }
            None => None,
        };
        for org in &user.organization_ids {
            check(
                subject,
                Action::Create,
                &Object::of(ResourceType::OrganizationMember).in_org(*org),
            )?;
        }
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for org in &user.organization_ids {
                let found: Option<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM organizations WHERE id = $1 AND deleted = FALSE",
                )
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            sqlx::query(INSERT_USER)
                .bind(user.id)
                .bind(&user.email)
                .bind(&user.username)
                .bind(&user.name)
                .bind(&user.hashed_password)
                .bind(now)
                .bind(&user.status)
                .bind(Json(&user.rbac_roles))
                .bind(&user.login_type)
                .bind(zero_time())
                .execute(&mut *tx)
                .await?;
            for org in &user.organization_ids {
                sqlx::query(INSERT_MEMBER)
                    .bind(user.id)
                    .bind(org)
                    .bind(Json(Vec::<String>::new()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((link, (access, refresh))) = &sealed {
                sqlx::query(super::links::UPSERT_LINK)
                    .bind(user.id)
                    .bind(&link.login_type)
                    .bind(&link.linked_id)
                    .bind(access)
                    .bind(super::links::SEALED_BY)
                    .bind(refresh)
                    .bind(link.oauth_expiry)
                    .bind(Json(&link.claims))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.user_by_id_unchecked(user.id).await
    }

    pub(crate) async fn user_by_id_unchecked(&self, id: Uuid) -> Result<User> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let user = on_db!(self, read, |pool| {
            sqlx::query_as::<_, User>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        user.ok_or(StoreError::NotFound)
    }

    /// A user by id (deleted users included, as Coder's `GetUserByID`).
    pub async fn user_by_id(&self, subject: &Subject, id: Uuid) -> Result<User> {
        let user = self.user_by_id_unchecked(id).await?;
        check_or_hide(subject, Action::Read, &Object::user(user.id))?;
        Ok(user)
    }

    /// A non-deleted user by username, case-insensitively.
    pub async fn user_by_username(&self, subject: &Subject, username: &str) -> Result<User> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(username) = lower($1) AND deleted = FALSE"
        );
        let user = on_db!(self, read, |pool| {
            sqlx::query_as::<_, User>(sql)
                .bind(username)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &Object::user(user.id))?;
        Ok(user)
    }

    /// A non-deleted user by email, case-insensitively.
    pub async fn user_by_email(&self, subject: &Subject, email: &str) -> Result<User> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(email) = lower($1) AND deleted = FALSE AND email <> ''"
        );
        let user = on_db!(self, read, |pool| {
            sqlx::query_as::<_, User>(sql)
                .bind(email)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &Object::user(user.id))?;
        Ok(user)
    }

    /// Sets a user's status (suspend, activate, dormant → active).
    pub async fn update_user_status(
        &self,
        subject: &Subject,
        id: Uuid,
        status: &str,
    ) -> Result<User> {
        check_or_hide(subject, Action::Update, &Object::user(id))?;
        let now = now();
        let reactivating = status == "active";
        let done = on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            // Reactivating a suspended user restores the account, not the credentials that
            // were in circulation when it was suspended (issue #29): its sessions, API
            // tokens, OAuth2 grants (their tokens go with them) and pending codes are
            // revoked in the same transaction. While suspended they are refused with the
            // account's status; a dormant user (no punishment, only idle) keeps them.
            if reactivating {
                for sql in [
                    "DELETE FROM oauth2_provider_app_codes WHERE user_id = $1 AND EXISTS \
                     (SELECT 1 FROM users u WHERE u.id = $1 AND u.status = 'suspended')",
                    "DELETE FROM oauth2_provider_grants WHERE user_id = $1 AND EXISTS \
                     (SELECT 1 FROM users u WHERE u.id = $1 AND u.status = 'suspended')",
                    "DELETE FROM api_keys WHERE user_id = $1 AND EXISTS \
                     (SELECT 1 FROM users u WHERE u.id = $1 AND u.status = 'suspended')",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
            }
            let done = sqlx::query(
                "UPDATE users SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = FALSE",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            done
        });
        self.auth_changed(id);
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_by_id_unchecked(id).await
    }

    /// Soft-deletes a user; their API keys and links go in the same transaction.
    pub async fn delete_user(&self, subject: &Subject, id: Uuid) -> Result<()> {
        check_or_hide(subject, Action::Delete, &Object::user(id))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE users SET deleted = TRUE, updated_at = $2 WHERE id = $1 AND deleted = FALSE")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            for sql in [
                "DELETE FROM api_keys WHERE user_id = $1",
                "DELETE FROM user_links WHERE user_id = $1",
                "DELETE FROM group_members WHERE user_id = $1",
                "DELETE FROM organization_members WHERE user_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        self.auth_changed(id);
        Ok(())
    }

    /// The organizations a user belongs to.
    pub async fn user_organization_ids(
        &self,
        subject: &Subject,
        user_id: Uuid,
    ) -> Result<Vec<Uuid>> {
        check_or_hide(subject, Action::Read, &Object::user(user_id))?;
        let ids = on_db!(self, read, |pool| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT organization_id FROM organization_members WHERE user_id = $1 ORDER BY created_at, organization_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(ids)
    }

    /// Whether the subject may read a user, without a query (for rows already loaded,
    /// such as the authenticated user's).
    pub fn check_user_read(&self, subject: &Subject, user_id: Uuid) -> Result<()> {
        check_or_hide(subject, Action::Read, &Object::user(user_id))
    }

    /// Records activity: `last_seen_at` = now (used with the hourly key refresh).
    pub async fn touch_user_last_seen(&self, subject: &Subject, user_id: Uuid) -> Result<()> {
        check(subject, Action::Update, &Object::user(user_id))?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query("UPDATE users SET last_seen_at = $2, updated_at = $2 WHERE id = $1")
                .bind(user_id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        });
        // The cached user carries `last_seen_at`.
        self.auth_changed(user_id);
        Ok(done?)
    }
}
