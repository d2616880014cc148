//! External auth: Gatehouse as an OAuth2 client of Git hosts, so a workspace can get its
//! owner's Git token (spec/oauth2.md §13). The user links an account through
//! `/external-auth/{id}/callback` (PKCE S256 unless the provider says `none`); the agent
//! reads the token from `/api/v2/workspaceagents/me/external-auth`, refreshed when
//! expired.

pub mod config;

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use chrono::Utc;
use gatehouse_httpmw::{Actor, ApiError, Json, agent::AgentActor};
use gatehouse_store::{
    models::{now, zero_time},
    queries::links::ExternalAuthLink,
    system::system_restricted,
};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::config::ProviderConfig;
use crate::{
    app::AppState,
    oauth_client::{
        FLOW_COOKIE_SECONDS, STATE_COOKIE, VERIFIER_COOKIE, check_state, flow_cookie, parsed_query,
        pkce_verifier, provider_error,
    },
};

/// The configured providers and the client that talks to them.
#[derive(Debug)]
pub struct ExternalAuth {
    pub providers: Vec<ProviderConfig>,
    http: reqwest::Client,
}

pub type SharedExternalAuth = Arc<ExternalAuth>;

impl ExternalAuth {
    /// `http` comes from the outbound factory ([`crate::outbound`]).
    pub fn new(providers: Vec<ProviderConfig>, http: reqwest::Client) -> ExternalAuth {
        ExternalAuth { providers, http }
    }

    fn provider(&self, id: &str) -> Result<&ProviderConfig, ApiError> {
        self.providers.iter().find(|p| p.id == id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("External auth provider {id:?} is not configured."),
            )
        })
    }

    /// RFC 6749 §4.1.3 / §6: one token request; returns the link's new tokens.
    async fn token_request(
        &self,
        provider: &ProviderConfig,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, String> {
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("client_id", &provider.client_id));
        if !provider.client_secret.is_empty() {
            all.push(("client_secret", &provider.client_secret));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(all)
            .finish();
        let res = self
            .http
            .post(provider.token_url.clone())
            // GitHub answers form-encoded unless asked for JSON.
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the provider could not be reached: {}",
                    crate::outbound::describe(&e)
                )
            })?;
        let status = res.status();
        let value: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("the provider's answer is not JSON ({status}): {e}"))?;
        if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
            let description = value
                .get("error_description")
                .and_then(|e| e.as_str())
                .unwrap_or_default();
            return Err(format!("{error}: {description}"));
        }
        serde_json::from_value::<TokenResponse>(value)
            .map_err(|e| format!("the provider's token response is malformed: {e}"))
    }
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn expiry(expires_in: Option<u64>) -> chrono::DateTime<Utc> {
    crate::oidc::expiry_of(expires_in.map(std::time::Duration::from_secs))
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
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
        return Ok(start(&app, provider, &redirect_uri));
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
        if let Some(c) = flow_cookie(&app, name, "", 0) {
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

/// The first leg: off to the provider, with a PKCE challenge unless it is turned off.
fn start(app: &AppState, provider: &ProviderConfig, redirect_uri: &str) -> Response {
    let state = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let mut url = provider.auth_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", &state)
            .append_pair("access_type", "offline");
        if !provider.scopes.is_empty() {
            q.append_pair("scope", &provider.scopes.join(" "));
        }
    }
    let verifier = provider
        .pkce_s256
        .then(|| Alphanumeric.sample_string(&mut rand::rng(), 64));
    if let Some(verifier) = &verifier {
        url.query_pairs_mut()
            .append_pair("code_challenge", &s256(verifier))
            .append_pair("code_challenge_method", "S256");
    }
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    let mut cookies = vec![(STATE_COOKIE, state)];
    cookies.extend(verifier.map(|v| (VERIFIER_COOKIE, v)));
    for (name, value) in cookies {
        if let Some(c) = flow_cookie(app, name, &value, FLOW_COOKIE_SECONDS) {
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
        (None, Some(url)) => external
            .providers
            .iter()
            .find(|p| {
                p.regex
                    .as_deref()
                    .and_then(|r| regex::Regex::new(r).ok())
                    .is_some_and(|r| r.is_match(url))
            })
            .ok_or_else(none)?,
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
