//! The management API (`/api/v2/oauth2-provider/...`, spec/oauth2.md §8; decisions.md 2,
//! 16, 45) and `DELETE /oauth2/tokens?client_id=`. These are session routes: errors use
//! the `{message, detail}` envelope, and a missing app is 404, never 401 (a 401 would sign
//! the browser out).

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    Actor, ApiError, Json, JsonBody,
    audit::{AuditAction, AuditContext, AuditResource},
    params::uuid::parse_uuid_param,
};
use gatehouse_rbac::Action;
use gatehouse_sdk::{
    Response as Envelope,
    oauth2::{
        ClientType, OAuth2AppEndpoints, OAuth2AppRequest, OAuth2ProviderApp,
        OAuth2ProviderAppSecret, OAuth2ProviderAppSecretFull, OAuth2ProviderSettings,
        TokenEndpointAuthMethod,
    },
};
use gatehouse_store::{
    StoreError,
    models::{JsonColumn, OAuth2App, now},
    queries::oauth2::NewOAuth2Secret,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{DCR_SETTING, SharedProvider, redirect_uri, scopes, secrets::AppSecret};

const APP_NOT_FOUND: &str = "OAuth2 application not found.";

fn app_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, APP_NOT_FOUND)
}

fn store_error(e: StoreError, context: &str) -> ApiError {
    match e {
        StoreError::NotFound => app_not_found(),
        e => ApiError::from_store(e, context),
    }
}

pub fn to_sdk(provider: &SharedProvider, app: &OAuth2App) -> OAuth2ProviderApp {
    OAuth2ProviderApp {
        id: app.id,
        name: app.name.clone(),
        callback_url: app.callback_url().to_owned(),
        icon: app.icon.clone(),
        endpoints: OAuth2AppEndpoints {
            authorization: provider.endpoint("/oauth2/authorize"),
            token: provider.endpoint("/oauth2/tokens"),
            token_revoke: provider.endpoint("/oauth2/revoke"),
            device_authorization: String::new(),
        },
        redirect_uris: app.redirect_uris.0.clone(),
        client_type: if app.is_public() {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        dynamically_registered: app.dynamically_registered,
        scope: app.scope.clone(),
    }
}

async fn load_app(
    provider: &SharedProvider,
    actor: &Actor,
    raw: &str,
) -> Result<OAuth2App, ApiError> {
    let id = parse_uuid_param("app", raw)?;
    provider
        .store
        .oauth2_app(actor.subject(), id)
        .await
        .map_err(|e| store_error(e, "Internal error fetching OAuth2 app."))
}

/// Checks name and redirect URIs of a create or update; `existing` supplies what an
/// omitted field keeps.
fn validated_uris(
    req: &OAuth2AppRequest,
    existing: Option<&[String]>,
) -> Result<Vec<String>, ApiError> {
    let uris = match (&req.redirect_uris, &req.callback_url) {
        (Some(uris), Some(cb)) if uris.first() != Some(cb) => {
            return Err(ApiError::bad_request("Invalid OAuth2 app request.")
                .with_validation("callback_url", "callback_url must equal redirect_uris[0]"));
        }
        (Some(uris), _) => uris.clone(),
        (None, Some(cb)) => vec![cb.clone()],
        (None, None) => match existing {
            Some(e) => e.to_vec(),
            None => {
                return Err(ApiError::bad_request("Invalid OAuth2 app request.")
                    .with_validation("redirect_uris", "at least one redirect URI is required"));
            }
        },
    };
    if uris.is_empty() || uris.len() > redirect_uri::MAX_URIS {
        return Err(
            ApiError::bad_request("Invalid OAuth2 app request.").with_validation(
                "redirect_uris",
                format!(
                    "between 1 and {} redirect URIs are required",
                    redirect_uri::MAX_URIS
                ),
            ),
        );
    }
    for uri in &uris {
        // Admin-created apps are confidential.
        redirect_uri::validate(uri, false).map_err(|e| {
            ApiError::bad_request("Invalid OAuth2 app request.")
                .with_validation("redirect_uris", format!("{uri:?}: {e}"))
        })?;
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request("Invalid OAuth2 app request.")
            .with_validation("name", "name is required and at most 64 characters"));
    }
    if req.scope.as_ref().is_some_and(|s| s.len() > 4096) {
        return Err(ApiError::bad_request("Invalid OAuth2 app request.")
            .with_validation("scope", "scope is longer than 4096 bytes"));
    }
    Ok(uris)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListAppsQuery {
    /// Only apps this user has authorized.
    pub user_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v2/oauth2-provider/apps",
    tag = "OAuth2",
    params(ListAppsQuery),
    responses((status = 200, body = Vec<OAuth2ProviderApp>), (status = 400, body = Envelope))
)]
pub async fn list_apps(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Query(q): Query<ListAppsQuery>,
) -> Result<Json<Vec<OAuth2ProviderApp>>, ApiError> {
    let user = match q.user_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            Some(Uuid::parse_str(raw).map_err(|_| ApiError::bad_request("Invalid user UUID"))?)
        }
    };
    let apps = provider
        .store
        .list_oauth2_apps(actor.subject(), user)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error listing OAuth2 apps."))?;
    Ok(Json(
        StatusCode::OK,
        apps.iter().map(|a| to_sdk(&provider, a)).collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v2/oauth2-provider/apps",
    tag = "OAuth2",
    request_body = OAuth2AppRequest,
    responses((status = 201, body = OAuth2ProviderApp), (status = 400, body = Envelope), (status = 403, body = Envelope))
)]
pub async fn create_app(
    State(provider): State<SharedProvider>,
    actor: Actor,
    JsonBody(req): JsonBody<OAuth2AppRequest>,
) -> Result<Json<OAuth2ProviderApp>, ApiError> {
    provider
        .store
        .authorize_oauth2_app(actor.subject(), Action::Create, None)
        .map_err(|e| ApiError::from_store(e, "Internal error creating OAuth2 app."))?;
    let uris = validated_uris(&req, None)?;
    let now = now();
    let app = OAuth2App {
        id: Uuid::new_v4(),
        created_at: now,
        updated_at: now,
        name: req.name.trim().to_owned(),
        icon: req.icon.clone().unwrap_or_default(),
        redirect_uris: JsonColumn(uris),
        client_type: "confidential".to_owned(),
        dynamically_registered: false,
        scope: req
            .scope
            .as_deref()
            .map(|s| scopes::join(&scopes::parse_stored(s)))
            .unwrap_or_default(),
        grant_types: JsonColumn(vec!["authorization_code".into(), "refresh_token".into()]),
        response_types: JsonColumn(vec!["code".into()]),
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretPost
            .as_str()
            .to_owned(),
        metadata: JsonColumn(serde_json::json!({})),
        client_id_issued_at: Some(now),
        registration_access_token: None,
    };
    let app = provider
        .store
        .insert_oauth2_app(actor.subject(), &app, None)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error creating OAuth2 app."))?;
    Ok(Json(StatusCode::CREATED, to_sdk(&provider, &app)))
}

#[utoipa::path(
    get,
    path = "/api/v2/oauth2-provider/apps/{app}",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id")),
    responses((status = 200, body = OAuth2ProviderApp), (status = 404, body = Envelope))
)]
pub async fn get_app(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path(app): Path<String>,
) -> Result<Json<OAuth2ProviderApp>, ApiError> {
    let app = load_app(&provider, &actor, &app).await?;
    Ok(Json(StatusCode::OK, to_sdk(&provider, &app)))
}

#[utoipa::path(
    put,
    path = "/api/v2/oauth2-provider/apps/{app}",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = OAuth2AppRequest,
    responses((status = 200, body = OAuth2ProviderApp), (status = 400, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn update_app(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path(app): Path<String>,
    JsonBody(req): JsonBody<OAuth2AppRequest>,
) -> Result<Json<OAuth2ProviderApp>, ApiError> {
    let mut app = load_app(&provider, &actor, &app).await?;
    provider
        .store
        .authorize_oauth2_app(actor.subject(), Action::Update, Some(app.id))
        .map_err(|e| ApiError::from_store(e, "Internal error updating OAuth2 app."))?;
    let uris = validated_uris(&req, Some(&app.redirect_uris))?;
    app.name = req.name.trim().to_owned();
    // spec/oauth2.md §8 rule 3: an omitted icon is cleared, an omitted scope kept.
    app.icon = req.icon.clone().unwrap_or_default();
    app.redirect_uris = JsonColumn(uris);
    if let Some(scope) = &req.scope {
        app.scope = scopes::join(&scopes::parse_stored(scope));
    }
    let app = provider
        .store
        .update_oauth2_app(actor.subject(), &app)
        .await
        .map_err(|e| store_error(e, "Internal error updating OAuth2 app."))?;
    Ok(Json(StatusCode::OK, to_sdk(&provider, &app)))
}

#[utoipa::path(
    delete,
    path = "/api/v2/oauth2-provider/apps/{app}",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Envelope))
)]
pub async fn delete_app(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = load_app(&provider, &actor, &app).await?;
    provider
        .store
        .delete_oauth2_app(actor.subject(), app.id)
        .await
        .map_err(|e| store_error(e, "Internal error deleting OAuth2 app."))?;
    tracing::info!(app_id = %app.id, "deleted OAuth2 app");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v2/oauth2-provider/apps/{app}/secrets",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id")),
    responses((status = 200, body = Vec<OAuth2ProviderAppSecret>), (status = 404, body = Envelope))
)]
pub async fn list_secrets(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path(app): Path<String>,
) -> Result<Json<Vec<OAuth2ProviderAppSecret>>, ApiError> {
    let app = load_app(&provider, &actor, &app).await?;
    let secrets = provider
        .store
        .list_oauth2_secrets(actor.subject(), app.id)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error listing secrets."))?;
    Ok(Json(
        StatusCode::OK,
        secrets
            .into_iter()
            .map(|s| OAuth2ProviderAppSecret {
                id: s.id,
                last_used_at: s.last_used_at,
                client_secret_truncated: s.display_secret,
            })
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v2/oauth2-provider/apps/{app}/secrets",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id")),
    responses((status = 201, body = OAuth2ProviderAppSecretFull), (status = 400, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn create_secret(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path(app): Path<String>,
) -> Result<Json<OAuth2ProviderAppSecretFull>, ApiError> {
    let app = load_app(&provider, &actor, &app).await?;
    if app.is_public() {
        return Err(ApiError::bad_request(
            "Cannot create a client secret for a public OAuth2 app.",
        ));
    }
    let secret = AppSecret::generate();
    let full = secret.formatted();
    let row = NewOAuth2Secret {
        id: Uuid::new_v4(),
        secret_prefix: secret.prefix.clone(),
        hashed_secret: secret.hash(),
        display_secret: full[full.len() - 6..].to_owned(),
    };
    let stored = provider
        .store
        .insert_oauth2_secret(actor.subject(), app.id, &row)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error creating secret."))?;
    Ok(Json(
        StatusCode::CREATED,
        OAuth2ProviderAppSecretFull {
            id: stored.id,
            client_secret_full: full,
        },
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v2/oauth2-provider/apps/{app}/secrets/{secret}",
    tag = "OAuth2",
    params(("app" = Uuid, Path, description = "App id"), ("secret" = Uuid, Path, description = "Secret id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn delete_secret(
    State(provider): State<SharedProvider>,
    actor: Actor,
    Path((app, secret)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = load_app(&provider, &actor, &app).await?;
    let secret_id = parse_uuid_param("secret", &secret)?;
    let secret = provider
        .store
        .oauth2_secret(actor.subject(), secret_id)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error fetching secret."))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "OAuth2 application secret not found.",
            )
        })?;
    if secret.app_id != app.id {
        return Err(ApiError::bad_request(
            "App ID does not match secret app ID.",
        ));
    }
    provider
        .store
        .delete_oauth2_secret(actor.subject(), &secret)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error deleting secret."))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn settings_of(
    provider: &SharedProvider,
    actor: &Actor,
) -> Result<OAuth2ProviderSettings, ApiError> {
    let enabled = match provider.dcr_flag {
        Some(flag) => flag,
        None => {
            let stored = provider
                .store
                .site_config(actor.subject(), DCR_SETTING)
                .await
                .map_err(|e| ApiError::from_store(e, "Internal error reading settings."))?;
            stored.as_deref() != Some("false")
        }
    };
    Ok(OAuth2ProviderSettings {
        dynamic_client_registration_enabled: Some(enabled),
    })
}

#[utoipa::path(
    get,
    path = "/api/v2/oauth2-provider/settings",
    tag = "OAuth2",
    responses((status = 200, body = OAuth2ProviderSettings), (status = 403, body = Envelope))
)]
pub async fn get_settings(
    State(provider): State<SharedProvider>,
    actor: Actor,
) -> Result<Json<OAuth2ProviderSettings>, ApiError> {
    Ok(Json(StatusCode::OK, settings_of(&provider, &actor).await?))
}

#[utoipa::path(
    put,
    path = "/api/v2/oauth2-provider/settings",
    tag = "OAuth2",
    request_body = OAuth2ProviderSettings,
    responses((status = 200, body = OAuth2ProviderSettings), (status = 400, body = Envelope), (status = 403, body = Envelope))
)]
pub async fn update_settings(
    State(provider): State<SharedProvider>,
    actor: Actor,
    JsonBody(req): JsonBody<OAuth2ProviderSettings>,
) -> Result<Json<OAuth2ProviderSettings>, ApiError> {
    if let Some(enabled) = req.dynamic_client_registration_enabled {
        if provider.dcr_flag.is_some() {
            return Err(ApiError::bad_request(
                "Dynamic client registration is set by --oauth2-dynamic-client-registration \
                 (CODER_OAUTH2_DYNAMIC_CLIENT_REGISTRATION); change the flag instead.",
            ));
        }
        provider
            .store
            .set_site_config(
                actor.subject(),
                DCR_SETTING,
                if enabled { "true" } else { "false" },
            )
            .await
            .map_err(|e| ApiError::from_store(e, "Internal error saving settings."))?;
        tracing::info!(enabled, "dynamic client registration changed");
    }
    Ok(Json(StatusCode::OK, settings_of(&provider, &actor).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RevokeAppQuery {
    pub client_id: Option<String>,
}

/// A user withdraws every grant they gave one app (spec/oauth2.md §4).
#[utoipa::path(
    delete,
    path = "/oauth2/tokens",
    tag = "OAuth2",
    operation_id = "oauth2_revoke_app_for_user",
    params(RevokeAppQuery),
    responses((status = 204, description = "Revoked"), (status = 400, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn revoke_app_for_user(
    State(provider): State<SharedProvider>,
    actor: Actor,
    audit: AuditContext,
    Query(q): Query<RevokeAppQuery>,
) -> Response {
    let result = async {
        let raw = q
            .client_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("Missing client_id parameter."))?;
        let app = load_app(&provider, &actor, &raw).await?;
        provider
            .store
            .revoke_oauth2_app_for_user(actor.subject(), app.id, actor.user_id())
            .await
            .map_err(|e| ApiError::from_store(e, "Internal error revoking tokens."))?;
        let resource = AuditResource::new("oauth2_provider_app", app.id, app.name.clone())
            .with_fields(serde_json::json!({"revoked": "all of the user's tokens"}));
        provider
            .audit
            .record(audit.entry(AuditAction::Delete, resource, StatusCode::NO_CONTENT))
            .await;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT)
    }
    .await;
    match result {
        Ok(s) => s.into_response(),
        Err(e) => e.into_response(),
    }
}
