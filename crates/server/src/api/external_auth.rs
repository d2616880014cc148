//! External-auth routes (spec/oauth2.md §13): the user links an account through
//! `/external-auth/{id}/callback` (PKCE S256 unless the provider says `none`); the agent
//! reads the token from `/api/v2/workspaceagents/me/external-auth`, refreshed when
//! expired. The provider side is the [`crate::external_auth`] service.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{Actor, ApiError, Json, authn::AgentActor};
use gatehouse_store::{
    models::{now, zero_time},
    queries::links::ExternalAuthLink,
    system::system_restricted,
};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    external_auth::{ExternalAuth, ProviderConfig, expiry},
    oauth_client::{
        FLOW_COOKIE_SECONDS, STATE_COOKIE, VERIFIER_COOKIE, check_state, flow_cookie, parsed_query,
        pkce_verifier, provider_error,
    },
};

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /external-auth/{id}/callback` (and the legacy `/gitauth/{id}/callback`): links
/// the signed-in user's account at the provider (spec/oauth2.md §13.3).
pub async fn callback(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = parsed_query(query)?;
    let Some(external) = app.external_auth.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("External auth provider {id:?} is not configured."),
        ));
    };
    let provider = external.provider(&id)?;
    let redirect_uri = format!("{}/external-auth/{}/callback", app.access_url, provider.id);
    if let Some(error) = &query.error {
        return Err(provider_error(error, query.error_description.as_deref()));
    }
    let Some(code) = query.code.as_deref() else {
        return Ok(start(&app, &external, provider, &redirect_uri));
    };
    check_state(query.state.as_deref(), &headers)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let verifier = if provider.pkce_s256 {
        Some(pkce_verifier(&headers)?)
    } else {
        None
    };
    if let Some(verifier) = &verifier {
        form.push(("code_verifier", verifier));
    }
    let tokens = external.token_request(provider, &form).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "Failed to exchange the code.").with_detail(e)
    })?;
    let user_id = actor.0.key.user_id;
    let when = now();
    app.store
        .upsert_external_auth_link(
            actor.subject(),
            &ExternalAuthLink {
                provider_id: provider.id.clone(),
                user_id,
                created_at: when,
                updated_at: when,
                oauth_access_token: tokens.access_token,
                oauth_refresh_token: tokens.refresh_token.unwrap_or_default(),
                oauth_expiry: expiry(tokens.expires_in),
            },
        )
        .await?;
    tracing::info!(user_id = %user_id, provider = %provider.id, "external auth linked");
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html><title>Connected</title><p>Your {} account is connected. You may close this page.</p>",
            html_escape(&provider.display_name)
        ),
    )
        .into_response();
    for name in [STATE_COOKIE, VERIFIER_COOKIE] {
        if let Some(c) = flow_cookie(app.secure_cookies(), name, "", 0) {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(res)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The first leg: off to the provider, with the state (and PKCE verifier) in cookies.
fn start(
    app: &AppState,
    external: &ExternalAuth,
    provider: &ProviderConfig,
    redirect_uri: &str,
) -> Response {
    let leg = external.first_leg(provider, redirect_uri);
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(leg.url.as_str()) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    let mut cookies = vec![(STATE_COOKIE, leg.state)];
    cookies.extend(leg.verifier.map(|v| (VERIFIER_COOKIE, v)));
    for (name, value) in cookies {
        if let Some(c) = flow_cookie(app.secure_cookies(), name, &value, FLOW_COOKIE_SECONDS) {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    res
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AgentExternalAuthQuery {
    /// The provider id.
    id: Option<String>,
    /// A Git URL; the provider whose pattern matches it.
    r#match: Option<String>,
}

/// What a workspace's Git credential helper needs (`agentsdk.ExternalAuthResponse`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentExternalAuthResponse {
    pub access_token: String,
    pub token_extra: serde_json::Map<String, serde_json::Value>,
    /// When not linked yet: where the user links the account.
    pub url: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub username: String,
    pub password: String,
}

/// A workspace's Git token for its owner: the linked account's access token (refreshed
/// first if it expired), or, when the owner has not linked one, the URL to do so.
#[utoipa::path(
    get,
    path = "/api/v2/workspaceagents/me/external-auth",
    tag = "Agents",
    params(AgentExternalAuthQuery),
    security(("CoderSessionToken" = [])),
    responses(
        (status = 200, body = AgentExternalAuthResponse),
        (status = 400, body = gatehouse_sdk::Response),
        (status = 401, body = gatehouse_sdk::Response),
        (status = 404, body = gatehouse_sdk::Response),
    )
)]
pub async fn agent_token(
    State(app): State<AppState>,
    agent: AgentActor,
    query: Result<Query<AgentExternalAuthQuery>, QueryRejection>,
) -> Result<Json<AgentExternalAuthResponse>, ApiError> {
    let query = parsed_query(query)?;
    let none = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "No matching external auth provider found in Coder for the given URL or ID.",
        )
    };
    let external = app.external_auth.clone().ok_or_else(none)?;
    let provider = match (&query.id, &query.r#match) {
        (Some(id), _) => external.provider(id)?,
        (None, Some(url)) => external.provider_for_url(url).ok_or_else(none)?,
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "'url' or 'id' must be provided.",
            ));
        }
    };
    let owner = agent.0.row.workspace_owner_id;
    let system = system_restricted();
    let link = app
        .store
        .external_auth_link(system, &provider.id, owner)
        .await?;
    let mut response = AgentExternalAuthResponse {
        access_token: String::new(),
        token_extra: serde_json::Map::new(),
        url: String::new(),
        kind: provider.kind.clone(),
        username: String::new(),
        password: String::new(),
    };
    let link_url = format!("{}/external-auth/{}", app.access_url, provider.id);
    let Some(mut link) = link else {
        response.url = link_url;
        return Ok(Json(StatusCode::OK, response));
    };
    let expired = link.oauth_expiry != zero_time() && link.oauth_expiry <= now();
    if expired {
        if link.oauth_refresh_token.is_empty() {
            response.url = link_url;
            return Ok(Json(StatusCode::OK, response));
        }
        match external
            .token_request(
                provider,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &link.oauth_refresh_token),
                ],
            )
            .await
        {
            Ok(tokens) => {
                link.oauth_access_token = tokens.access_token;
                if let Some(refresh) = tokens.refresh_token {
                    link.oauth_refresh_token = refresh;
                }
                link.oauth_expiry = expiry(tokens.expires_in);
                link.updated_at = now();
                app.store.upsert_external_auth_link(system, &link).await?;
            }
            Err(e) => {
                tracing::info!(provider = %provider.id, error = %e, "external auth refresh failed");
                response.url = link_url;
                return Ok(Json(StatusCode::OK, response));
            }
        }
    }
    // How Git hosts take a token over HTTPS (Coder's `formatGitAuthResponse`).
    let token = link.oauth_access_token;
    match provider.kind.as_str() {
        "gitlab" => {
            response.username = "oauth2".to_owned();
            response.password = token.clone();
        }
        "bitbucket-cloud" | "bitbucket" | "bitbucket-server" => {
            response.username = "x-token-auth".to_owned();
            response.password = token.clone();
        }
        _ => response.username = token.clone(),
    }
    response.access_token = token;
    Ok(Json(StatusCode::OK, response))
}
