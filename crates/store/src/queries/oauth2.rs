//! The OAuth2 authorization server's data: apps, client secrets, codes, grants and
//! refresh-token rows (spec/oauth2.md §8.1, §10). Access tokens are API keys; a token row
//! points at its key, and the delete trigger removes the key with the row.

use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    Store,
    authz::{allowed, check, check_or_hide},
    db::on_db,
    error::{Result, StoreError},
    models::{
        NewApiKey, NewOAuth2Grant, NewOAuth2Token, OAuth2App, OAuth2AppSecret, OAuth2Code,
        OAuth2Token, epoch, now,
    },
    queries::rotation::Rotation,
};

macro_rules! app_columns {
    () => {
        "id, created_at, updated_at, name, icon, redirect_uris, client_type, \
     dynamically_registered, scope, grant_types, response_types, token_endpoint_auth_method, \
     metadata, client_id_issued_at, registration_access_token"
    };
}

macro_rules! secret_columns {
    () => {
        "id, app_id, created_at, last_used_at, secret_prefix, hashed_secret, display_secret"
    };
}

macro_rules! code_columns {
    () => {
        "id, app_id, user_id, created_at, expires_at, secret_prefix, \
     hashed_secret, code_challenge, redirect_uri, resource_uri, scope, state_hash, used_at, grant_id"
    };
}

macro_rules! token_select {
    () => {
        "SELECT t.id, t.grant_id, t.hash_prefix, t.refresh_hash, t.api_key_id, \
     t.created_at, t.expires_at, t.rotated_at, g.app_id, g.user_id, g.app_secret_id, \
     g.resource_uri, g.scope, u.status AS user_status FROM oauth2_provider_app_tokens t \
     JOIN oauth2_provider_grants g ON g.id = t.grant_id JOIN users u ON u.id = g.user_id"
    };
}

const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, hashed_secret, user_id, last_used, \
     expires_at, created_at, updated_at, login_type, lifetime_seconds, ip_address, token_name, \
     scopes, allow_list) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12)";

const INSERT_TOKEN: &str = "INSERT INTO oauth2_provider_app_tokens (id, grant_id, hash_prefix, \
     refresh_hash, api_key_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The app (`a`) and the hash of its secret (`s`) whose prefix is `$2`.
macro_rules! client_columns {
    () => {
        "a.id, a.created_at, a.updated_at, a.name, a.icon, \
     a.redirect_uris, a.client_type, a.dynamically_registered, a.scope, a.grant_types, \
     a.response_types, a.token_endpoint_auth_method, a.metadata, a.client_id_issued_at, \
     a.registration_access_token, s.id AS secret_id, s.hashed_secret AS secret_hash"
    };
}

macro_rules! client_from {
    () => {
        " FROM oauth2_provider_apps a LEFT JOIN oauth2_provider_app_secrets s \
     ON s.app_id = a.id AND s.secret_prefix = $2"
    };
}

const CLIENT_SQL: &str = concat!(
    "SELECT ",
    client_columns!(),
    client_from!(),
    " WHERE a.id = $1"
);

#[derive(sqlx::FromRow)]
struct ClientRow {
    #[sqlx(flatten)]
    app: OAuth2App,
    secret_id: Option<Uuid>,
    secret_hash: Option<Vec<u8>>,
}

/// [`CLIENT_SQL`] with the refresh-token row whose lookup prefix is `$3`, when there is
/// one: the refresh grant reads both in one round trip. The token's columns carry a
/// `token_` prefix, apart from the app's.
const CLIENT_AND_TOKEN_SQL: &str = concat!(
    "SELECT ",
    client_columns!(),
    ", t.id AS token_id, t.grant_id AS token_grant_id, t.refresh_hash AS token_refresh_hash, \
     t.api_key_id AS token_api_key_id, t.created_at AS token_created_at, \
     t.expires_at AS token_expires_at, t.rotated_at AS token_rotated_at, \
     g.app_id AS token_app_id, g.user_id AS token_user_id, \
     g.app_secret_id AS token_app_secret_id, g.resource_uri AS token_resource_uri, \
     g.scope AS token_scope, u.status AS token_user_status",
    client_from!(),
    " LEFT JOIN oauth2_provider_app_tokens t ON t.hash_prefix = $3 \
     LEFT JOIN oauth2_provider_grants g ON g.id = t.grant_id \
     LEFT JOIN users u ON u.id = g.user_id WHERE a.id = $1"
);

#[derive(sqlx::FromRow)]
struct ClientAndTokenRow {
    #[sqlx(flatten)]
    client: ClientRow,
    token_id: Option<Uuid>,
    token_grant_id: Option<Uuid>,
    token_refresh_hash: Option<Vec<u8>>,
    token_api_key_id: Option<String>,
    token_created_at: Option<DateTime<Utc>>,
    token_expires_at: Option<DateTime<Utc>>,
    token_rotated_at: Option<DateTime<Utc>>,
    token_app_id: Option<Uuid>,
    token_user_id: Option<Uuid>,
    token_app_secret_id: Option<Uuid>,
    token_resource_uri: Option<String>,
    token_scope: Option<String>,
    token_user_status: Option<String>,
}

impl ClientAndTokenRow {
    /// The token row, when the prefix found one (its grant and user are foreign keys, so
    /// a found token has them).
    fn token(&mut self, prefix: &str) -> Option<OAuth2Token> {
        Some(OAuth2Token {
            id: self.token_id?,
            grant_id: self.token_grant_id?,
            hash_prefix: prefix.to_owned(),
            refresh_hash: self.token_refresh_hash.take()?,
            api_key_id: self.token_api_key_id.take(),
            created_at: self.token_created_at?,
            expires_at: self.token_expires_at?,
            rotated_at: self.token_rotated_at,
            app_id: self.token_app_id?,
            user_id: self.token_user_id?,
            app_secret_id: self.token_app_secret_id,
            resource_uri: self.token_resource_uri.take(),
            scope: self.token_scope.take()?,
            user_status: self.token_user_status.take()?,
        })
    }
}

/// What client authentication needs of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretHash {
    pub id: Uuid,
    pub hashed_secret: Vec<u8>,
}

/// Binds an API key insert and a token row insert on one transaction.
macro_rules! insert_key_and_token {
    ($tx:expr, $key:expr, $token:expr, $grant_id:expr, $now:expr) => {{
        sqlx::query(INSERT_API_KEY)
            .bind(&$key.id)
            .bind(&$key.hashed_secret)
            .bind($key.user_id)
            .bind(epoch())
            .bind($key.expires_at)
            .bind($now)
            .bind(&$key.login_type)
            .bind($key.lifetime_seconds)
            .bind(&$key.ip_address)
            .bind(&$key.token_name)
            .bind(Json(&$key.scopes))
            .bind(Json(&$key.allow_list))
            .execute(&mut *$tx)
            .await?;
        sqlx::query(INSERT_TOKEN)
            .bind($token.id)
            .bind($grant_id)
            .bind(&$token.hash_prefix)
            .bind(&$token.refresh_hash)
            .bind(&$key.id)
            .bind($now)
            .bind($token.expires_at)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// The app and the secret a client row found, when the subject may read them.
fn client_of(subject: &Subject, row: ClientRow) -> Result<(OAuth2App, Option<ClientSecretHash>)> {
    check_or_hide(subject, Action::Read, &app_object(row.app.id))?;
    let secret = match (row.secret_id, row.secret_hash) {
        (Some(id), Some(hashed_secret)) => {
            check(subject, Action::Read, &secret_object(row.app.id))?;
            Some(ClientSecretHash { id, hashed_secret })
        }
        _ => None,
    };
    Ok((row.app, secret))
}

fn app_object<'a>(id: Uuid) -> Object<'a> {
    Object::of(ResourceType::Oauth2App).with_id(id)
}

fn secret_object<'a>(app_id: Uuid) -> Object<'a> {
    Object::of(ResourceType::Oauth2AppSecret).with_id(app_id)
}

fn code_token_object<'a>(user_id: Uuid) -> Object<'a> {
    Object::of(ResourceType::Oauth2AppCodeToken).owned_by(user_id)
}

/// A new client secret: the hash and what is displayed afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOAuth2Secret {
    pub id: Uuid,
    pub secret_prefix: String,
    pub hashed_secret: Vec<u8>,
    pub display_secret: String,
}

/// How a code redemption ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    Issued,
    /// Another request used the code first.
    AlreadyUsed,
}

impl Store {
    /// Authorizes an app operation before the request is validated, so a caller who may
    /// not act learns nothing from validation errors.
    pub fn authorize_oauth2_app(
        &self,
        subject: &Subject,
        action: Action,
        id: Option<Uuid>,
    ) -> Result<()> {
        let object = match id {
            Some(id) => app_object(id),
            None => Object::of(ResourceType::Oauth2App),
        };
        check(subject, action, &object)
    }

    /// Inserts an app and, for confidential DCR clients, its first secret, in one
    /// transaction (spec/oauth2.md §6 rule 6).
    pub async fn insert_oauth2_app(
        &self,
        subject: &Subject,
        app: &OAuth2App,
        secret: Option<&NewOAuth2Secret>,
    ) -> Result<OAuth2App> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::Oauth2App),
        )?;
        if secret.is_some() {
            check(subject, Action::Create, &secret_object(app.id))?;
        }
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO oauth2_provider_apps (id, created_at, updated_at, name, icon, \
                 redirect_uris, client_type, dynamically_registered, scope, grant_types, \
                 response_types, token_endpoint_auth_method, metadata, client_id_issued_at, \
                 registration_access_token) \
                 VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(app.id)
            .bind(now)
            .bind(&app.name)
            .bind(&app.icon)
            .bind(&app.redirect_uris)
            .bind(&app.client_type)
            .bind(app.dynamically_registered)
            .bind(&app.scope)
            .bind(&app.grant_types)
            .bind(&app.response_types)
            .bind(&app.token_endpoint_auth_method)
            .bind(&app.metadata)
            .bind(app.client_id_issued_at)
            .bind(&app.registration_access_token)
            .execute(&mut *tx)
            .await?;
            if let Some(secret) = secret {
                sqlx::query(
                    "INSERT INTO oauth2_provider_app_secrets (id, app_id, created_at, \
                     secret_prefix, hashed_secret, display_secret) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(secret.id)
                .bind(app.id)
                .bind(now)
                .bind(&secret.secret_prefix)
                .bind(&secret.hashed_secret)
                .bind(&secret.display_secret)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.oauth2_app(subject, app.id).await
    }

    /// Rewrites an app's mutable fields (name, icon, redirect URIs, scope, metadata).
    pub async fn update_oauth2_app(&self, subject: &Subject, app: &OAuth2App) -> Result<OAuth2App> {
        check_or_hide(subject, Action::Update, &app_object(app.id))?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE oauth2_provider_apps SET updated_at = $2, name = $3, icon = $4, \
                 redirect_uris = $5, scope = $6, grant_types = $7, response_types = $8, \
                 token_endpoint_auth_method = $9, metadata = $10 WHERE id = $1",
            )
            .bind(app.id)
            .bind(now)
            .bind(&app.name)
            .bind(&app.icon)
            .bind(&app.redirect_uris)
            .bind(&app.scope)
            .bind(&app.grant_types)
            .bind(&app.response_types)
            .bind(&app.token_endpoint_auth_method)
            .bind(&app.metadata)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.oauth2_app(subject, app.id).await
    }

    /// One app, by id (= its `client_id`).
    pub async fn oauth2_app(&self, subject: &Subject, id: Uuid) -> Result<OAuth2App> {
        let sql = concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth2_provider_apps WHERE id = $1"
        );
        let app = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2App>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &app_object(id))?;
        Ok(app)
    }

    /// A client for the protocol endpoints: the app, with the hash of its secret whose
    /// prefix is `secret_prefix` when it has one, in one query (a token request reads
    /// nothing else before its grant).
    pub async fn oauth2_client(
        &self,
        subject: &Subject,
        id: Uuid,
        secret_prefix: Option<&str>,
    ) -> Result<(OAuth2App, Option<ClientSecretHash>)> {
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ClientRow>(CLIENT_SQL)
                .bind(id)
                .bind(secret_prefix)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        client_of(subject, row)
    }

    /// [`Store::oauth2_client`] and [`Store::oauth2_token_by_prefix`] in one query: the
    /// refresh grant's two reads before its rotation.
    pub async fn oauth2_client_and_token(
        &self,
        subject: &Subject,
        id: Uuid,
        secret_prefix: Option<&str>,
        token_prefix: &str,
    ) -> Result<(OAuth2App, Option<ClientSecretHash>, Option<OAuth2Token>)> {
        let mut row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ClientAndTokenRow>(CLIENT_AND_TOKEN_SQL)
                .bind(id)
                .bind(secret_prefix)
                .bind(token_prefix)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        let token = row.token(token_prefix);
        let (app, secret) = client_of(subject, row.client)?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok((app, secret, token))
    }

    /// Every app the subject may read, by name; with `authorized_by`, only those the user
    /// holds a grant for.
    pub async fn list_oauth2_apps(
        &self,
        subject: &Subject,
        authorized_by: Option<Uuid>,
    ) -> Result<Vec<OAuth2App>> {
        let sql = concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth2_provider_apps a WHERE $1 IS NULL OR EXISTS \
             (SELECT 1 FROM oauth2_provider_grants g WHERE g.app_id = a.id AND g.user_id = $1) \
             ORDER BY name, id"
        );
        if let Some(user) = authorized_by {
            check(subject, Action::Read, &code_token_object(user))?;
        }
        let apps = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2App>(sql)
                .bind(authorized_by)
                .fetch_all(pool)
                .await
        })?;
        Ok(apps
            .into_iter()
            .filter(|a| allowed(subject, Action::Read, &app_object(a.id)))
            .collect())
    }

    /// Deletes an app; its secrets, codes, grants, token rows and access tokens go with it.
    pub async fn delete_oauth2_app(&self, subject: &Subject, id: Uuid) -> Result<()> {
        self.oauth2_app(subject, id).await?;
        check_or_hide(subject, Action::Delete, &app_object(id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_apps WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        // Every user's tokens from this app died with it.
        self.auth_changed_all();
        Ok(done?)
    }

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

    pub async fn insert_oauth2_code(&self, subject: &Subject, code: &OAuth2Code) -> Result<()> {
        check(subject, Action::Create, &code_token_object(code.user_id))?;
        let sql = concat!(
            "INSERT INTO oauth2_provider_app_codes (",
            code_columns!(),
            ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL)"
        );
        on_db!(self, write, |pool| {
            sqlx::query(sql)
                .bind(code.id)
                .bind(code.app_id)
                .bind(code.user_id)
                .bind(code.created_at)
                .bind(code.expires_at)
                .bind(&code.secret_prefix)
                .bind(&code.hashed_secret)
                .bind(&code.code_challenge)
                .bind(&code.redirect_uri)
                .bind(&code.resource_uri)
                .bind(&code.scope)
                .bind(&code.state_hash)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// A code by its prefix, with its user's status (`deleted` for a deleted user): a code
    /// issued before a suspension must not be redeemed during it (issue #29).
    pub async fn oauth2_code_by_prefix(
        &self,
        subject: &Subject,
        prefix: &str,
    ) -> Result<Option<(OAuth2Code, String)>> {
        const SQL: &str = "SELECT c.id, c.app_id, c.user_id, c.created_at, c.expires_at, \
             c.secret_prefix, c.hashed_secret, c.code_challenge, c.redirect_uri, c.resource_uri, \
             c.scope, c.state_hash, c.used_at, c.grant_id, \
             CASE WHEN u.deleted THEN 'deleted' ELSE u.status END AS user_status \
             FROM oauth2_provider_app_codes c JOIN users u ON u.id = c.user_id \
             WHERE c.secret_prefix = $1";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            code: OAuth2Code,
            user_status: String,
        }
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Row>(SQL)
                .bind(prefix)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(row) = &row {
            check(subject, Action::Read, &code_token_object(row.code.user_id))?;
        }
        Ok(row.map(|r| (r.code, r.user_status)))
    }

    /// Burns a code that failed verification (spec/oauth2.md §3.2 rule 12).
    pub async fn delete_oauth2_code(&self, subject: &Subject, code: &OAuth2Code) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(code.user_id))?;
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_app_codes WHERE id = $1")
                .bind(code.id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Redeems a code: marks it used (so a replay is recognised), creates the grant, its
    /// access token and its refresh-token row, all in one transaction. The conditional
    /// update makes two concurrent redemptions of one code issue at most once.
    pub async fn redeem_oauth2_code(
        &self,
        subject: &Subject,
        code: &OAuth2Code,
        grant: &NewOAuth2Grant,
        key: &NewApiKey,
        token: &NewOAuth2Token,
    ) -> Result<Redeemed> {
        check(subject, Action::Delete, &code_token_object(code.user_id))?;
        check(subject, Action::Create, &code_token_object(grant.user_id))?;
        check(subject, Action::Create, &Object::api_key(key.user_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE oauth2_provider_app_codes SET used_at = $2, grant_id = $3 \
                 WHERE id = $1 AND used_at IS NULL",
            )
            .bind(code.id)
            .bind(now)
            .bind(grant.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                return Ok(Redeemed::AlreadyUsed);
            }
            sqlx::query(
                "INSERT INTO oauth2_provider_grants (id, app_id, user_id, app_secret_id, \
                 resource_uri, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(grant.id)
            .bind(grant.app_id)
            .bind(grant.user_id)
            .bind(grant.app_secret_id)
            .bind(&grant.resource_uri)
            .bind(&grant.scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_key_and_token!(tx, key, token, grant.id, now);
            tx.commit().await?;
        });
        Ok(Redeemed::Issued)
    }

    /// Deletes a grant: its refresh tokens and access tokens die with it.
    pub async fn revoke_oauth2_grant(
        &self,
        subject: &Subject,
        user_id: Uuid,
        grant_id: Uuid,
    ) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(user_id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_grants WHERE id = $1")
                .bind(grant_id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed(user_id);
        Ok(done?)
    }

    /// A user withdraws an app: every grant and code of (app, user) goes.
    pub async fn revoke_oauth2_app_for_user(
        &self,
        subject: &Subject,
        app_id: Uuid,
        user_id: Uuid,
    ) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(user_id))?;
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM oauth2_provider_grants WHERE app_id = $1 AND user_id = $2")
                .bind(app_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM oauth2_provider_app_codes WHERE app_id = $1 AND user_id = $2")
                .bind(app_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.auth_changed(user_id);
        Ok(())
    }

    /// The refresh-token row with this lookup prefix, with its grant.
    pub async fn oauth2_token_by_prefix(
        &self,
        subject: &Subject,
        prefix: &str,
    ) -> Result<Option<OAuth2Token>> {
        let sql = concat!(token_select!(), " WHERE t.hash_prefix = $1");
        let token = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2Token>(sql)
                .bind(prefix)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok(token)
    }

    /// The live token row whose access token is this API key.
    pub async fn oauth2_token_by_api_key(
        &self,
        subject: &Subject,
        api_key_id: &str,
    ) -> Result<Option<OAuth2Token>> {
        let sql = concat!(token_select!(), " WHERE t.api_key_id = $1");
        let token = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2Token>(sql)
                .bind(api_key_id)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok(token)
    }

    /// Rotates a refresh token (spec/oauth2.md §3.3 rule 21): the old row is marked
    /// rotated (kept for reuse detection), its access token deleted, and a new access token
    /// and row are issued under the same grant, atomically. `false` when another request
    /// rotated it first. Rotations waiting at the same moment share one commit
    /// ([`rotation`](super::rotation)).
    pub async fn rotate_oauth2_token(
        &self,
        subject: &Subject,
        old: &OAuth2Token,
        key: &NewApiKey,
        token: &NewOAuth2Token,
    ) -> Result<bool> {
        check(subject, Action::Delete, &code_token_object(old.user_id))?;
        check(subject, Action::Create, &Object::api_key(key.user_id))?;
        let rotation = Rotation::new(old, key, token, now());
        let rotated = self.rotations.rotate(rotation).await?;
        if rotated {
            self.auth_changed(old.user_id);
        }
        Ok(rotated)
    }

    /// A site-wide setting, `None` when never saved. Served from the auth cache once read:
    /// a change on this replica drops it after its commit, and on PostgreSQL the
    /// `site_configs` trigger tells every other replica (migration 0010).
    pub async fn site_config(&self, subject: &Subject, key: &str) -> Result<Option<String>> {
        check(
            subject,
            Action::Read,
            &Object::of(ResourceType::DeploymentConfig),
        )?;
        if let Some(cached) = self.auth_cache.site_config(key) {
            return Ok(cached.map(String::from));
        }
        let ticket = self.auth_cache.ticket();
        let value = on_db!(self, read, |pool| {
            sqlx::query_scalar::<_, String>("SELECT value FROM site_configs WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        self.auth_cache
            .insert_site_config(ticket, key, value.as_deref());
        Ok(value)
    }

    pub async fn set_site_config(&self, subject: &Subject, key: &str, value: &str) -> Result<()> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::DeploymentConfig),
        )?;
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO site_configs (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .map(|_| ())
        });
        // Even a failed write may have committed (a lost reply): drop the cached value.
        self.auth_changed_all();
        Ok(done?)
    }
}

/// `expires_at` of a code issued now (spec/oauth2.md §3.4 rule 24).
pub fn code_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::TimeDelta::minutes(10)
}
