//! API keys: creation, the authentication lookup, the hourly usage write, and the
//! token-management queries.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use super::subject_sql::{
    groups_postgres, groups_sqlite, memberships_postgres, memberships_sqlite,
};
use crate::{
    Store,
    auth_cache::CachedKey,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{ApiKey, ApiKeyWithOwner, AuthRow, NewApiKey, epoch, now},
    subjects::key_subject,
};

macro_rules! key_columns {
    () => {
        "k.id, k.hashed_secret, k.user_id, k.last_used, k.expires_at, k.created_at, k.updated_at, \
         k.login_type, k.lifetime_seconds, k.ip_address, k.token_name, k.scopes, k.allow_list"
    };
}

/// The hot path: key, user, memberships and groups in one round trip. The aggregate
/// functions differ between the dialects, so this is a query with two texts.
macro_rules! auth_row_sql {
    ($memberships:expr, $groups:expr) => {
        concat!(
            "SELECT ",
            key_columns!(),
            ", u.username, u.email, u.status, u.rbac_roles, u.is_service_account, u.deleted AS user_deleted, \
             u.name AS user_name, u.avatar_url AS user_avatar_url, u.created_at AS user_created_at, \
             u.updated_at AS user_updated_at, u.last_seen_at AS user_last_seen_at, u.login_type AS user_login_type, \
             u.is_system AS user_is_system, ",
            $memberships,
            " AS memberships, ",
            $groups,
            " AS group_ids, CASE WHEN k.login_type = 'oauth2_provider_app' THEN \
             (SELECT COALESCE(g.resource_uri, '') FROM oauth2_provider_app_tokens t \
             JOIN oauth2_provider_grants g ON g.id = t.grant_id WHERE t.api_key_id = k.id) END AS oauth2_audience, \
             CASE WHEN k.login_type IN ('oidc', 'github') THEN (SELECT l.oauth_expiry FROM user_links l \
             WHERE l.user_id = k.user_id AND l.login_type = k.login_type) END AS link_expiry \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1"
        )
    };
}

const AUTH_ROW_SQLITE: &str = auth_row_sql!(memberships_sqlite!("u.id"), groups_sqlite!("u.id"));
const AUTH_ROW_POSTGRES: &str =
    auth_row_sql!(memberships_postgres!("u.id"), groups_postgres!("u.id"));

impl Store {
    /// Inserts a key for `key.user_id`. Keys cannot be created for deleted users.
    pub async fn insert_api_key(&self, subject: &Subject, key: NewApiKey) -> Result<ApiKey> {
        check_or_hide(subject, Action::Read, &Object::user(key.user_id))?;
        check(subject, Action::Create, &Object::api_key(key.user_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let live: Option<bool> = sqlx::query_scalar("SELECT deleted FROM users WHERE id = $1")
                .bind(key.user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if live != Some(false) {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO api_keys (id, hashed_secret, user_id, last_used, expires_at, created_at, \
                 updated_at, login_type, lifetime_seconds, ip_address, token_name, scopes, allow_list) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&key.id)
            .bind(&key.hashed_secret)
            .bind(key.user_id)
            .bind(epoch())
            .bind(key.expires_at)
            .bind(now)
            .bind(&key.login_type)
            .bind(key.lifetime_seconds)
            .bind(&key.ip_address)
            .bind(&key.token_name)
            .bind(Json(&key.scopes))
            .bind(Json(&key.allow_list))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.api_key_unchecked(&key.id).await
    }

    async fn api_key_unchecked(&self, id: &str) -> Result<ApiKey> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.id = $1"
        );
        on_db!(self, read, |pool| {
            sqlx::query_as::<_, ApiKey>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)
    }

    /// The authentication lookup: one query for key, user, memberships and groups.
    /// `Ok(None)` when no key has this id.
    pub async fn api_key_for_auth(&self, subject: &Subject, id: &str) -> Result<Option<AuthRow>> {
        let row = on_db!(self, read, |pool, sql = (AUTH_ROW_SQLITE, AUTH_ROW_POSTGRES)| {
            sqlx::query_as::<_, AuthRow>(sql).bind(id).fetch_optional(pool).await
        })?;
        match row {
            Some(row) => {
                check(subject, Action::Read, &Object::api_key(row.key.user_id))?;
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }

    /// The authentication lookup through the cache: a hit costs no database call; a miss
    /// reads [`Store::api_key_for_auth`] and builds the subject once. `Ok(None)` when no
    /// key has this id. The caller still checks the secret, expiry and audience.
    pub async fn authenticate_key(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Option<Arc<CachedKey>>> {
        if let Some(hit) = self.auth_cache.get(id) {
            check(subject, Action::Read, &Object::api_key(hit.key.user_id))?;
            return Ok(Some(hit));
        }
        let ticket = self.auth_cache.ticket();
        let Some(row) = self.api_key_for_auth(subject, id).await? else {
            return Ok(None);
        };
        let (key_subject, organization_ids) =
            key_subject(&row).map_err(|e| StoreError::Corrupt(format!("user's roles: {e}")))?;
        let entry = Arc::new(CachedKey {
            user: self.auth_cache.share_user(row.user()),
            organization_ids,
            subject: key_subject,
            oauth2_audience: row.oauth2_audience,
            link_expiry: row.link_expiry,
            key: row.key,
        });
        self.auth_cache.insert(ticket, entry.clone());
        Ok(Some(entry))
    }

    /// The hourly bookkeeping write: key usage and expiry, and the user's `last_seen_at`,
    /// in one transaction.
    pub async fn record_api_key_use(
        &self,
        subject: &Subject,
        key: &ApiKey,
        last_used: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        ip_address: &str,
    ) -> Result<()> {
        check(subject, Action::Update, &Object::api_key(key.user_id))?;
        check(subject, Action::Update, &Object::user(key.user_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE api_keys SET last_used = $2, expires_at = $3, ip_address = $4, updated_at = $5 WHERE id = $1",
            )
            .bind(&key.id)
            .bind(last_used)
            .bind(expires_at)
            .bind(ip_address)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE users SET last_seen_at = $2, updated_at = $2 WHERE id = $1")
                .bind(key.user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.auth_changed(key.user_id);
        Ok(())
    }

    /// `token` keys of one user (or of every user with `all_users`), filtered to what the
    /// subject may read, oldest first.
    pub async fn list_tokens(
        &self,
        subject: &Subject,
        user_id: Uuid,
        all_users: bool,
        include_expired: bool,
    ) -> Result<Vec<ApiKeyWithOwner>> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            ", u.username FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.login_type = 'token' AND ($1 OR k.user_id = $2) ORDER BY k.created_at, k.id"
        );
        let rows = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ApiKeyWithOwner>(sql)
                .bind(all_users)
                .bind(user_id)
                .fetch_all(pool)
                .await
        })?;
        let now = now();
        Ok(rows
            .into_iter()
            .filter(|r| include_expired || r.key.expires_at > now)
            .filter(|r| allowed(subject, Action::Read, &Object::api_key(r.key.user_id)))
            .collect())
    }

    /// One key of a user, by id.
    pub async fn api_key_by_id(
        &self,
        subject: &Subject,
        user_id: Uuid,
        id: &str,
    ) -> Result<ApiKey> {
        let key = self.api_key_unchecked(id).await?;
        if key.user_id != user_id {
            return Err(StoreError::NotFound);
        }
        check_or_hide(subject, Action::Read, &Object::api_key(key.user_id))?;
        Ok(key)
    }

    /// One `token` key of a user, by name.
    pub async fn api_key_by_name(
        &self,
        subject: &Subject,
        user_id: Uuid,
        name: &str,
    ) -> Result<ApiKey> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys k WHERE k.user_id = $1 AND k.token_name = $2 AND k.login_type = 'token'"
        );
        let key = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ApiKey>(sql)
                .bind(user_id)
                .bind(name)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &Object::api_key(key.user_id))?;
        Ok(key)
    }

    pub async fn delete_api_key(&self, subject: &Subject, user_id: Uuid, id: &str) -> Result<()> {
        let key = self.api_key_by_id(subject, user_id, id).await?;
        check_or_hide(subject, Action::Delete, &Object::api_key(key.user_id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM api_keys WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        self.auth_changed(key.user_id);
        if done? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets `expires_at` = now unless the key has already expired.
    pub async fn expire_api_key(&self, subject: &Subject, user_id: Uuid, id: &str) -> Result<()> {
        let key = self.api_key_by_id(subject, user_id, id).await?;
        check_or_hide(subject, Action::Update, &Object::api_key(key.user_id))?;
        let now = now();
        if key.expires_at <= now {
            return Ok(());
        }
        let done = on_db!(self, write, |pool| {
            sqlx::query("UPDATE api_keys SET expires_at = $2, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed(key.user_id);
        Ok(done?)
    }
}
