//! The OAuth2 authorization server's data (spec/oauth2.md §8.1, §10), a module each:
//! [`apps`] (and client lookups), [`secrets`], [`codes`], and [`tokens`] (grants and
//! refresh-token rows). Access tokens are API keys; a token row points at its key, and the
//! delete trigger removes the key with the row. What they share (column lists, the key
//! and token inserts, the RBAC objects) is here.

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

pub mod apps;
pub mod codes;
pub mod secrets;
pub mod tokens;

pub use codes::{Redeemed, code_expiry};
pub use secrets::NewOAuth2Secret;
