//! Links to an outside identity: `user_links`, one per (user, login type), holding the
//! identity provider's tokens for an OIDC (or GitHub) login (spec/auth.md §1.4). The
//! tokens are encrypted at rest (decisions.md 35), bound to their row.

use base64::Engine;
use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::check,
    crypto::TokenCipher,
    db::on_db,
    error::{Result, StoreError},
    models::User,
};

/// A user's link to their identity provider, tokens in the clear.
#[derive(Clone, PartialEq)]
pub struct UserLink {
    pub user_id: Uuid,
    pub login_type: String,
    /// The provider's stable id for the person (`<issuer>||<sub>` for OIDC).
    pub linked_id: String,
    pub oauth_access_token: String,
    pub oauth_refresh_token: String,
    /// When the access token expires; the zero time means never.
    pub oauth_expiry: DateTime<Utc>,
    pub claims: serde_json::Value,
}

impl std::fmt::Debug for UserLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserLink")
            .field("user_id", &self.user_id)
            .field("login_type", &self.login_type)
            .field("linked_id", &self.linked_id)
            .field("oauth_expiry", &self.oauth_expiry)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    user_id: Uuid,
    login_type: String,
    linked_id: String,
    oauth_access_token: String,
    oauth_refresh_token: String,
    oauth_expiry: DateTime<Utc>,
    claims: Json<serde_json::Value>,
}

/// What a token is bound to: its row and its role, so a ciphertext cannot be moved.
fn context(user_id: Uuid, login_type: &str, which: &str) -> Vec<u8> {
    format!("user_links/{user_id}/{login_type}/{which}").into_bytes()
}

/// The stored form of a token: empty stays empty, anything else is sealed and base64'd.
pub(crate) fn seal(cipher: &TokenCipher, plain: &str, context: &[u8]) -> String {
    if plain.is_empty() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(cipher.encrypt(plain.as_bytes(), context))
}

pub(crate) fn open(cipher: &TokenCipher, stored: &str, context: &[u8]) -> Result<String> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(stored)
        .ok()
        .and_then(|blob| cipher.decrypt(&blob, context))
        .and_then(|plain| String::from_utf8(plain).ok())
        .ok_or_else(|| {
            StoreError::Corrupt("an identity-provider token does not decrypt".to_owned())
        })
}

/// The key-id column: which cipher sealed the tokens (informational; the blob names it).
pub(crate) const SEALED_BY: &str = "xchacha20poly1305";

impl Store {
    fn link_from_row(&self, row: LinkRow) -> Result<UserLink> {
        let cipher = self.cipher()?;
        let access = open(
            cipher,
            &row.oauth_access_token,
            &context(row.user_id, &row.login_type, "access"),
        )?;
        let refresh = open(
            cipher,
            &row.oauth_refresh_token,
            &context(row.user_id, &row.login_type, "refresh"),
        )?;
        Ok(UserLink {
            user_id: row.user_id,
            login_type: row.login_type,
            linked_id: row.linked_id,
            oauth_access_token: access,
            oauth_refresh_token: refresh,
            oauth_expiry: row.oauth_expiry,
            claims: row.claims.0,
        })
    }

    /// A user's link for one login type, `None` when there is none.
    pub async fn user_link(
        &self,
        subject: &Subject,
        user_id: Uuid,
        login_type: &str,
    ) -> Result<Option<UserLink>> {
        check(subject, Action::Read, &Object::of(ResourceType::System))?;
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, LinkRow>(
                "SELECT user_id, login_type, linked_id, oauth_access_token, oauth_refresh_token, \
                 oauth_expiry, claims FROM user_links WHERE user_id = $1 AND login_type = $2",
            )
            .bind(user_id)
            .bind(login_type)
            .fetch_optional(pool)
            .await
        })?;
        row.map(|row| self.link_from_row(row)).transpose()
    }

    /// The user a provider identity is linked to, if any.
    pub async fn user_by_linked_id(
        &self,
        subject: &Subject,
        login_type: &str,
        linked_id: &str,
    ) -> Result<Option<User>> {
        check(subject, Action::Read, &Object::of(ResourceType::System))?;
        let user_id: Option<Uuid> = on_db!(self, read, |pool| {
            sqlx::query_scalar(
                "SELECT user_id FROM user_links WHERE login_type = $1 AND linked_id = $2",
            )
            .bind(login_type)
            .bind(linked_id)
            .fetch_optional(pool)
            .await
        })?;
        match user_id {
            Some(id) => Ok(Some(self.user_by_id_unchecked(id).await?)),
            None => Ok(None),
        }
    }

    /// Creates or replaces a user's link (a sign-in writes what the provider said).
    pub async fn upsert_user_link(&self, subject: &Subject, link: &UserLink) -> Result<()> {
        check(subject, Action::Update, &Object::of(ResourceType::System))?;
        let sealed = self.seal_link(link)?;
        on_db!(self, write, |pool| {
            sqlx::query(UPSERT_LINK)
                .bind(link.user_id)
                .bind(&link.login_type)
                .bind(&link.linked_id)
                .bind(&sealed.0)
                .bind(SEALED_BY)
                .bind(&sealed.1)
                .bind(link.oauth_expiry)
                .bind(Json(&link.claims))
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        self.auth_changed(link.user_id);
        Ok(())
    }

    /// Stores refreshed tokens, keeping the linked id and claims (spec/auth.md §1.4
    /// step 3). `false` when the link is gone.
    pub async fn update_user_link_tokens(
        &self,
        subject: &Subject,
        link: &UserLink,
    ) -> Result<bool> {
        check(subject, Action::Update, &Object::of(ResourceType::System))?;
        let sealed = self.seal_link(link)?;
        let updated = on_db!(self, write, |pool| {
            sqlx::query(UPDATE_LINK_TOKENS)
                .bind(link.user_id)
                .bind(&link.login_type)
                .bind(&sealed.0)
                .bind(SEALED_BY)
                .bind(&sealed.1)
                .bind(link.oauth_expiry)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        self.auth_changed(link.user_id);
        Ok(updated == 1)
    }

    /// Refreshes a user's link while holding it. `refresh` gets the current link (`None`
    /// when there is none) and returns the link to store, `None` to leave it, or its own
    /// error. On PostgreSQL the row stays locked (`SELECT … FOR UPDATE`) across `refresh`,
    /// so replicas refreshing the same link take turns and the second sees the first's
    /// tokens instead of presenting a refresh token the provider has already rotated.
    /// SQLite serves one replica, whose caller already serialises per user; it is not
    /// held in a transaction, which would stop every other writer during the call.
    pub async fn refresh_user_link<F, Fut, E>(
        &self,
        subject: &Subject,
        user_id: Uuid,
        login_type: &str,
        refresh: F,
    ) -> Result<std::result::Result<(), E>>
    where
        F: FnOnce(Option<UserLink>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Option<UserLink>, E>>,
    {
        check(subject, Action::Update, &Object::of(ResourceType::System))?;
        match &self.db {
            crate::db::Db::Sqlite { .. } => {
                let link = self.user_link(subject, user_id, login_type).await?;
                match refresh(link).await {
                    Ok(Some(new)) => {
                        self.update_user_link_tokens(subject, &new).await?;
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(Err(e)),
                }
            }
            crate::db::Db::Postgres(pool) => {
                self.note_query();
                let mut tx = pool.begin().await?;
                let row = sqlx::query_as::<_, LinkRow>(
                    "SELECT user_id, login_type, linked_id, oauth_access_token, oauth_refresh_token, \
                     oauth_expiry, claims FROM user_links WHERE user_id = $1 AND login_type = $2 \
                     FOR UPDATE",
                )
                .bind(user_id)
                .bind(login_type)
                .fetch_optional(&mut *tx)
                .await?;
                let link = row.map(|row| self.link_from_row(row)).transpose()?;
                match refresh(link).await {
                    Ok(Some(new)) => {
                        let sealed = self.seal_link(&new)?;
                        sqlx::query(UPDATE_LINK_TOKENS)
                            .bind(new.user_id)
                            .bind(&new.login_type)
                            .bind(&sealed.0)
                            .bind(SEALED_BY)
                            .bind(&sealed.1)
                            .bind(new.oauth_expiry)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                    }
                    Ok(None) => tx.commit().await?,
                    Err(e) => return Ok(Err(e)),
                }
            }
        }
        self.auth_changed(user_id);
        Ok(Ok(()))
    }

    /// (access, refresh) as stored.
    pub(crate) fn seal_link(&self, link: &UserLink) -> Result<(String, String)> {
        let cipher = self.cipher()?;
        Ok((
            seal(
                cipher,
                &link.oauth_access_token,
                &context(link.user_id, &link.login_type, "access"),
            ),
            seal(
                cipher,
                &link.oauth_refresh_token,
                &context(link.user_id, &link.login_type, "refresh"),
            ),
        ))
    }
}

/// A refresh's write: new tokens and expiry; the linked id and claims stay.
const UPDATE_LINK_TOKENS: &str = "UPDATE user_links SET oauth_access_token = $3, \
     oauth_access_token_key_id = $4, oauth_refresh_token = $5, oauth_refresh_token_key_id = $4, \
     oauth_expiry = $6 WHERE user_id = $1 AND login_type = $2";

pub(crate) const UPSERT_LINK: &str = "INSERT INTO user_links (user_id, login_type, linked_id, \
     oauth_access_token, oauth_access_token_key_id, oauth_refresh_token, oauth_refresh_token_key_id, \
     oauth_expiry, claims) VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8) \
     ON CONFLICT (user_id, login_type) DO UPDATE SET linked_id = excluded.linked_id, \
     oauth_access_token = excluded.oauth_access_token, \
     oauth_access_token_key_id = excluded.oauth_access_token_key_id, \
     oauth_refresh_token = excluded.oauth_refresh_token, \
     oauth_refresh_token_key_id = excluded.oauth_refresh_token_key_id, \
     oauth_expiry = excluded.oauth_expiry, claims = excluded.claims";

/// A user's tokens at an external auth provider, in the clear.
#[derive(Clone, PartialEq)]
pub struct ExternalAuthLink {
    pub provider_id: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub oauth_access_token: String,
    pub oauth_refresh_token: String,
    /// The zero time: the access token does not expire.
    pub oauth_expiry: DateTime<Utc>,
}

impl std::fmt::Debug for ExternalAuthLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAuthLink")
            .field("provider_id", &self.provider_id)
            .field("user_id", &self.user_id)
            .field("oauth_expiry", &self.oauth_expiry)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct ExternalLinkRow {
    provider_id: String,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    oauth_access_token: String,
    oauth_refresh_token: String,
    oauth_expiry: DateTime<Utc>,
}

fn external_context(provider_id: &str, user_id: Uuid, which: &str) -> Vec<u8> {
    format!("external_auth_links/{provider_id}/{user_id}/{which}").into_bytes()
}

impl Store {
    /// A user's link to one external auth provider, `None` when not linked.
    pub async fn external_auth_link(
        &self,
        subject: &Subject,
        provider_id: &str,
        user_id: Uuid,
    ) -> Result<Option<ExternalAuthLink>> {
        check(subject, Action::ReadPersonal, &Object::user(user_id))?;
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ExternalLinkRow>(
                "SELECT provider_id, user_id, created_at, updated_at, oauth_access_token, \
                 oauth_refresh_token, oauth_expiry FROM external_auth_links \
                 WHERE provider_id = $1 AND user_id = $2",
            )
            .bind(provider_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cipher = self.cipher()?;
        Ok(Some(ExternalAuthLink {
            oauth_access_token: open(
                cipher,
                &row.oauth_access_token,
                &external_context(&row.provider_id, row.user_id, "access"),
            )?,
            oauth_refresh_token: open(
                cipher,
                &row.oauth_refresh_token,
                &external_context(&row.provider_id, row.user_id, "refresh"),
            )?,
            provider_id: row.provider_id,
            user_id: row.user_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            oauth_expiry: row.oauth_expiry,
        }))
    }

    /// Creates or replaces a user's link to an external auth provider (a finished flow
    /// or a refresh).
    pub async fn upsert_external_auth_link(
        &self,
        subject: &Subject,
        link: &ExternalAuthLink,
    ) -> Result<()> {
        check(subject, Action::UpdatePersonal, &Object::user(link.user_id))?;
        let cipher = self.cipher()?;
        let access = seal(
            cipher,
            &link.oauth_access_token,
            &external_context(&link.provider_id, link.user_id, "access"),
        );
        let refresh = seal(
            cipher,
            &link.oauth_refresh_token,
            &external_context(&link.provider_id, link.user_id, "refresh"),
        );
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO external_auth_links (provider_id, user_id, created_at, updated_at, \
                 oauth_access_token, oauth_refresh_token, oauth_expiry) VALUES ($1, $2, $3, $3, $4, $5, $6) \
                 ON CONFLICT (provider_id, user_id) DO UPDATE SET updated_at = excluded.updated_at, \
                 oauth_access_token = excluded.oauth_access_token, \
                 oauth_refresh_token = excluded.oauth_refresh_token, oauth_expiry = excluded.oauth_expiry",
            )
            .bind(&link.provider_id)
            .bind(link.user_id)
            .bind(link.updated_at)
            .bind(&access)
            .bind(&refresh)
            .bind(link.oauth_expiry)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }
}
