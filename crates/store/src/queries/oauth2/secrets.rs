//! Client secrets of OAuth2 apps.

use super::*;

/// A new client secret: the hash and what is displayed afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOAuth2Secret {
    pub id: Uuid,
    pub secret_prefix: String,
    pub hashed_secret: Vec<u8>,
    pub display_secret: String,
}

impl Store {
    pub async fn insert_oauth2_secret(
        &self,
        subject: &Subject,
        app_id: Uuid,
        secret: &NewOAuth2Secret,
    ) -> Result<OAuth2AppSecret> {
        check(subject, Action::Create, &secret_object(app_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO oauth2_provider_app_secrets (id, app_id, created_at, secret_prefix, \
                 hashed_secret, display_secret) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(secret.id)
            .bind(app_id)
            .bind(now)
            .bind(&secret.secret_prefix)
            .bind(&secret.hashed_secret)
            .bind(&secret.display_secret)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        self.oauth2_secret(subject, secret.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn list_oauth2_secrets(
        &self,
        subject: &Subject,
        app_id: Uuid,
    ) -> Result<Vec<OAuth2AppSecret>> {
        check(subject, Action::Read, &secret_object(app_id))?;
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM oauth2_provider_app_secrets WHERE app_id = $1 \
             ORDER BY created_at, id"
        );
        Ok(on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2AppSecret>(sql)
                .bind(app_id)
                .fetch_all(pool)
                .await
        })?)
    }

    /// One secret by id, `None` when there is none.
    pub async fn oauth2_secret(
        &self,
        subject: &Subject,
        id: Uuid,
    ) -> Result<Option<OAuth2AppSecret>> {
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM oauth2_provider_app_secrets WHERE id = $1"
        );
        let secret = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2AppSecret>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(secret) = &secret {
            check(subject, Action::Read, &secret_object(secret.app_id))?;
        }
        Ok(secret)
    }

    /// Deletes a secret; the grants issued under it, and their tokens, go with it.
    pub async fn delete_oauth2_secret(
        &self,
        subject: &Subject,
        secret: &OAuth2AppSecret,
    ) -> Result<()> {
        check(subject, Action::Delete, &secret_object(secret.app_id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_app_secrets WHERE id = $1")
                .bind(secret.id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed_all();
        Ok(done?)
    }

    /// Records that a secret authenticated a client (at most the bookkeeping the
    /// management API shows).
    pub async fn touch_oauth2_secret(
        &self,
        subject: &Subject,
        secret: &OAuth2AppSecret,
    ) -> Result<()> {
        check(subject, Action::Update, &secret_object(secret.app_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE oauth2_provider_app_secrets SET last_used_at = $2 WHERE id = $1")
                .bind(secret.id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }
}
