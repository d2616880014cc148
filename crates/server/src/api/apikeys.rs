//! API keys and tokens (spec/auth.md §1.12, §2.3, §3).

use std::time::Duration;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::TimeDelta;
use gatehouse_httpmw::{
    Actor, ApiError, Json, JsonBody, NoStore,
    audit::{AuditAction, AuditContext, AuditResource},
    client_ip::ClientIp,
    params::user::resolve_user,
    token,
};
use gatehouse_rbac::{AllowList, Subject, scope::ScopeName};
use gatehouse_sdk::{
    Response as Envelope,
    apikeys::{ApiKey, ApiKeyWithOwner, CreateTokenRequest, GenerateApiKeyResponse, TokenConfig},
    gofmt::go_duration_string,
};
use gatehouse_store::models::{self, NewApiKey, now};
use serde::Deserialize;

use crate::{api::convert, app::AppState};

/// What a new key is for.
pub struct KeySpec {
    pub user_id: uuid::Uuid,
    pub login_type: &'static str,
    pub lifetime: Duration,
    pub scopes: Vec<String>,
    pub allow_list: Vec<String>,
    pub token_name: String,
    pub ip: String,
}

/// Generates and stores a key; returns the token (shown once) and the stored row.
pub async fn issue_key(
    app: &AppState,
    subject: &Subject,
    spec: KeySpec,
) -> Result<(String, models::ApiKey), ApiError> {
    let generated = token::generate();
    let lifetime_seconds = i64::try_from(spec.lifetime.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    let expires_at = TimeDelta::from_std(spec.lifetime)
        .ok()
        .and_then(|d| now().checked_add_signed(d))
        .ok_or_else(|| {
            ApiError::bad_request("Failed to validate create API key request.")
                .with_detail("lifetime is too large to represent an expiry date")
        })?;
    let row = app
        .store
        .insert_api_key(
            subject,
            NewApiKey {
                id: generated.id.clone(),
                hashed_secret: generated.hashed_secret.clone(),
                user_id: spec.user_id,
                expires_at,
                login_type: spec.login_type.to_owned(),
                lifetime_seconds,
                ip_address: spec.ip,
                token_name: spec.token_name,
                scopes: spec.scopes,
                allow_list: spec.allow_list,
            },
        )
        .await?;
    Ok((generated.token(), row))
}

fn create_failed(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("Failed to create API key.").with_detail(detail)
}

/// Turns the requested scopes into canonical stored names (decisions.md 20: `scopes`
/// absent or `[]` means "not given"; legacy names are accepted in both forms).
fn requested_scopes(req: &CreateTokenRequest) -> Result<Vec<String>, ApiError> {
    let raw: Vec<&str> = match &req.scopes {
        Some(list) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        _ if !req.scope.is_empty() => vec![req.scope.as_str()],
        _ => vec!["coder:all"],
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for s in raw {
        let name = ScopeName::parse_request(s)
            .ok_or_else(|| create_failed(format!("invalid or unsupported API key scope: {s:?}")))?;
        let canonical = name.to_string();
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

fn max_lifetime(app: &AppState, user: &models::User) -> Duration {
    if user.rbac_roles.iter().any(|r| r == "owner") {
        app.config.max_admin_token_lifetime
    } else {
        app.config.max_token_lifetime
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Create a token for a user.
#[utoipa::path(
    post,
    path = "/api/v2/users/{user}/keys/tokens",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = GenerateApiKeyResponse),
        (status = 400, body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, body = Envelope),
        (status = 409, body = Envelope),
    )
)]
pub async fn create_token(
    State(app): State<AppState>,
    actor: Actor,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    Path(user): Path<String>,
    JsonBody(req): JsonBody<CreateTokenRequest>,
) -> Result<NoStore<Json<GenerateApiKeyResponse>>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    if user.is_system {
        return Err(ApiError::forbidden());
    }
    let max = max_lifetime(&app, &user);
    let lifetime = match req.lifetime {
        0 => app.config.default_token_lifetime,
        n if n < 0 => {
            return Err(
                ApiError::bad_request("Failed to validate create API key request.")
                    .with_detail("lifetime must be positive number greater than 0"),
            );
        }
        n if n > nanos(max) => {
            return Err(
                ApiError::bad_request("Failed to validate create API key request.").with_detail(
                    format!(
                        "lifetime must be less than {}",
                        go_duration_string(nanos(max))
                    ),
                ),
            );
        }
        n => Duration::from_nanos(n.unsigned_abs()),
    };
    let scopes = requested_scopes(&req)?;
    let allow_list = match &req.allow_list {
        Some(list) if !list.is_empty() => AllowList::parse(list)
            .map_err(|e| create_failed(e.to_string()))?
            .to_strings(),
        _ => vec!["*:*".to_owned()],
    };
    let generated = req.token_name.is_empty();
    let mut token_name = if generated {
        crate::names::random_name()
    } else {
        req.token_name
    };
    if token_name.len() > 64 || token_name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("Validation failed.")
            .with_validation("token_name", "must be at most 64 printable characters"));
    }
    // A generated name may collide with one of the user's tokens: draw another.
    let mut attempts_left = if generated { 8 } else { 1 };
    loop {
        attempts_left -= 1;
        let spec = KeySpec {
            user_id: user.id,
            login_type: "token",
            lifetime,
            scopes: scopes.clone(),
            allow_list: allow_list.clone(),
            token_name: token_name.clone(),
            ip: ip.clone(),
        };
        match issue_key(&app, actor.subject(), spec).await {
            Ok((key, _)) => {
                let fields = serde_json::json!({"login_type": "token", "scopes": scopes});
                audit_key(
                    &app,
                    &audit,
                    AuditAction::Create,
                    user.id,
                    &key,
                    &token_name,
                    fields,
                )
                .await;
                return Ok(NoStore(Json(
                    StatusCode::CREATED,
                    GenerateApiKeyResponse { key },
                )));
            }
            Err(e) if e.status == StatusCode::CONFLICT && attempts_left > 0 => {
                token_name = crate::names::random_name();
            }
            Err(e) if e.status == StatusCode::CONFLICT => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("A token with name {token_name:?} already exists."),
                )
                .with_validation("name", "This value is already in use and should be unique."));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create a session-like key for a user (`POST …/keys`); no cookie is set.
#[utoipa::path(
    post,
    path = "/api/v2/users/{user}/keys",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 201, body = GenerateApiKeyResponse), (status = 403, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn create_session_key(
    State(app): State<AppState>,
    actor: Actor,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    Path(user): Path<String>,
) -> Result<NoStore<Json<GenerateApiKeyResponse>>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    if user.is_system {
        return Err(ApiError::forbidden());
    }
    let spec = KeySpec {
        user_id: user.id,
        login_type: "password",
        lifetime: app.config.default_token_lifetime,
        scopes: vec!["coder:all".to_owned()],
        allow_list: vec!["*:*".to_owned()],
        token_name: String::new(),
        ip,
    };
    let (key, _) = issue_key(&app, actor.subject(), spec).await?;
    let fields = serde_json::json!({"login_type": "password"});
    audit_key(&app, &audit, AuditAction::Create, user.id, &key, "", fields).await;
    Ok(NoStore(Json(
        StatusCode::CREATED,
        GenerateApiKeyResponse { key },
    )))
}

/// Records a key created, deleted or expired (issue #9): its id, never its secret.
async fn audit_key(
    app: &AppState,
    audit: &AuditContext,
    action: AuditAction,
    owner: uuid::Uuid,
    key: &str,
    name: &str,
    mut fields: serde_json::Value,
) {
    let key_id = key.split_once('-').map_or(key, |(id, _)| id);
    fields["api_key_id"] = serde_json::Value::from(key_id);
    let status = match action {
        AuditAction::Create => StatusCode::CREATED,
        _ => StatusCode::NO_CONTENT,
    };
    let resource = AuditResource::new("api_key", owner, name).with_fields(fields);
    app.auth
        .audit
        .record(audit.entry(action, resource, status))
        .await;
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// List every user's tokens the caller may read.
    #[serde(default)]
    pub include_all: bool,
    /// Include expired tokens.
    #[serde(default)]
    pub include_expired: bool,
}

/// List a user's tokens.
#[utoipa::path(
    get,
    path = "/api/v2/users/{user}/keys/tokens",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username"), ListTokensQuery),
    responses((status = 200, body = Vec<ApiKeyWithOwner>), (status = 404, body = Envelope))
)]
pub async fn list_tokens(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
    query: Result<Query<ListTokensQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ApiKeyWithOwner>>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request("Query parameters have invalid values.").with_detail(e.body_text())
    })?;
    let user = resolve_user(&app.store, &actor, &user).await?;
    let rows = app
        .store
        .list_tokens(
            actor.subject(),
            user.id,
            query.include_all,
            query.include_expired,
        )
        .await?;
    let list = rows
        .iter()
        .map(|r| ApiKeyWithOwner {
            key: convert::api_key(&r.key),
            username: r.username.clone(),
        })
        .collect();
    Ok(Json(StatusCode::OK, list))
}

/// The largest token lifetime this user may ask for.
#[utoipa::path(
    get,
    path = "/api/v2/users/{user}/keys/tokens/tokenconfig",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 200, body = TokenConfig), (status = 404, body = Envelope))
)]
pub async fn token_config(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
) -> Result<Json<TokenConfig>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    Ok(Json(
        StatusCode::OK,
        TokenConfig {
            max_token_lifetime: nanos(max_lifetime(&app, &user)),
        },
    ))
}

/// Get a token by name.
#[utoipa::path(
    get,
    path = "/api/v2/users/{user}/keys/tokens/{keyname}",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username"), ("keyname" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = Envelope))
)]
pub async fn token_by_name(
    State(app): State<AppState>,
    actor: Actor,
    Path((user, name)): Path<(String, String)>,
) -> Result<Json<ApiKey>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    let key = app
        .store
        .api_key_by_name(actor.subject(), user.id, &name)
        .await?;
    Ok(Json(StatusCode::OK, convert::api_key(&key)))
}

/// Get a key by id.
#[utoipa::path(
    get,
    path = "/api/v2/users/{user}/keys/{keyid}",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username"), ("keyid" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = Envelope))
)]
pub async fn key_by_id(
    State(app): State<AppState>,
    actor: Actor,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<ApiKey>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    let key = app
        .store
        .api_key_by_id(actor.subject(), user.id, &id)
        .await?;
    Ok(Json(StatusCode::OK, convert::api_key(&key)))
}

/// Delete a key.
#[utoipa::path(
    delete,
    path = "/api/v2/users/{user}/keys/{keyid}",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username"), ("keyid" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn delete_key(
    State(app): State<AppState>,
    actor: Actor,
    audit: AuditContext,
    Path((user, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    let name = app
        .store
        .api_key_by_id(actor.subject(), user.id, &id)
        .await
        .map(|k| k.token_name)
        .unwrap_or_default();
    app.store
        .delete_api_key(actor.subject(), user.id, &id)
        .await?;
    audit_key(
        &app,
        &audit,
        AuditAction::Delete,
        user.id,
        &id,
        &name,
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Expire a key now.
#[utoipa::path(
    put,
    path = "/api/v2/users/{user}/keys/{keyid}/expire",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username"), ("keyid" = String, Path)),
    responses((status = 204, description = "Expired"), (status = 403, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn expire_key(
    State(app): State<AppState>,
    actor: Actor,
    audit: AuditContext,
    Path((user, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    app.store
        .expire_api_key(actor.subject(), user.id, &id)
        .await?;
    let fields = serde_json::json!({"expired": true});
    audit_key(&app, &audit, AuditAction::Write, user.id, &id, "", fields).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
